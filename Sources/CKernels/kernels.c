// Ingot's SIMD kernels (see include/CKernels.h): packed-panel matrix products, causal attention, vector math.
//
// Layout of a product y = x · wᵀ (x [rows, inputs], w [outputs, inputs]): the output columns are cut into groups
// of CK_GROUP_COLUMNS; a group's weight rows are packed (widened to f32) into panels of 16 columns, k-major
// (panel[p·16 + j] = w[c + j, p]); then 6-row tiles of x run the 6×16 micro-kernel over every panel: 12 AVX
// accumulators, one broadcast of x and two loads of the panel per step of p. Each output element is one chain of
// fused multiply-adds over p in order, started from 0, so its value does not depend on the tile it falls in (nor
// on whether it falls in a 6-row AVX2 tile or, on AVX-512 CPUs, a 12-row tile of 16-lane accumulators).
#include "CKernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define CK_X86 1
#include <immintrin.h>
#endif

enum { MR = 6, NR = 16 };

static size_t round16(size_t n) { return (n + NR - 1) / NR * NR; }

// MARK: dispatch

static __thread int level_cap = 3;  // per thread: a test capping it does not change other threads

int ck_simd_level(void) {
#if CK_X86
    static int level = -1;
    if (level < 0) {
        __builtin_cpu_init();
        int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
        level = avx2 ? (__builtin_cpu_supports("avx512f") ? 3 : 2) : 0;
    }
    return level < level_cap ? level : level_cap;
#else
    return 0;
#endif
}

void ck_force_portable(int portable) { level_cap = portable ? 0 : 3; }

void ck_cap_simd_level(int cap) { level_cap = cap < 0 ? 0 : cap > 3 ? 3 : cap; }

// MARK: widening

/// Exact IEEE half → single (subnormals, infinities and NaN payloads kept).
static float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1F, man = h & 0x3FF, bits;
    if (exp == 0x1F) {
        bits = sign | 0x7F800000 | (man << 13);
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man == 0) {
        bits = sign;
    } else {  // subnormal: normalise
        int e = -1;
        do { man <<= 1; e++; } while ((man & 0x400) == 0);
        bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3FF) << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline float widen(const void *w, int wtype, size_t i) {
    switch (wtype) {
    case CK_BF16: {
        uint32_t b = (uint32_t)((const uint16_t *)w)[i] << 16;
        float f;
        memcpy(&f, &b, 4);
        return f;
    }
    case CK_F16: return f16_to_f32(((const uint16_t *)w)[i]);
    default: return ((const float *)w)[i];
    }
}

#if CK_X86
/// One whole 16-column panel from f32 or bf16 rows (the column at `row0 + j·ldw`), 16 × 16 blocks at a time: 16
/// row loads (bf16 widened exactly by a shift), an in-register transpose, 16 panel stores. The values are those of
/// the scalar loop; only the moves differ.
__attribute__((target("avx512f")))
static void pack_panel16_avx512(const void *w, int wtype, size_t ldw, size_t row0, size_t inputs, float *panel) {
    size_t p = 0;
    for (; p + 16 <= inputs; p += 16) {
        __m512 r[16], t[16], u[16];
        for (int j = 0; j < 16; j++) {
            size_t at = row0 + (size_t)j * ldw + p;
            if (wtype == CK_F32) {
                r[j] = _mm512_loadu_ps((const float *)w + at);
            } else {
                __m256i h = _mm256_loadu_si256((const __m256i *)((const uint16_t *)w + at));
                r[j] = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
            }
        }
        // Within 128-bit lanes: t[2i] / t[2i+1] interleave rows 2i and 2i+1; u[4q + k] holds element 4L + k of rows
        // 4q … 4q+3 in lane L.
        for (int i = 0; i < 8; i++) { t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]); t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]); }
        for (int q = 0; q < 4; q++) {
            u[4 * q + 0] = _mm512_shuffle_ps(t[4 * q], t[4 * q + 2], 0x44);
            u[4 * q + 1] = _mm512_shuffle_ps(t[4 * q], t[4 * q + 2], 0xEE);
            u[4 * q + 2] = _mm512_shuffle_ps(t[4 * q + 1], t[4 * q + 3], 0x44);
            u[4 * q + 3] = _mm512_shuffle_ps(t[4 * q + 1], t[4 * q + 3], 0xEE);
        }
        // Across lanes: element 4L + k of all 16 rows.
        for (int k = 0; k < 4; k++) {
            __m512 v = _mm512_shuffle_f32x4(u[k], u[4 + k], 0x88), x = _mm512_shuffle_f32x4(u[8 + k], u[12 + k], 0x88);
            __m512 v2 = _mm512_shuffle_f32x4(u[k], u[4 + k], 0xDD), x2 = _mm512_shuffle_f32x4(u[8 + k], u[12 + k], 0xDD);
            _mm512_storeu_ps(panel + (p + k) * NR, _mm512_shuffle_f32x4(v, x, 0x88));
            _mm512_storeu_ps(panel + (p + 8 + k) * NR, _mm512_shuffle_f32x4(v, x, 0xDD));
            _mm512_storeu_ps(panel + (p + 4 + k) * NR, _mm512_shuffle_f32x4(v2, x2, 0x88));
            _mm512_storeu_ps(panel + (p + 12 + k) * NR, _mm512_shuffle_f32x4(v2, x2, 0xDD));
        }
    }
    for (; p < inputs; p++)
        for (size_t j = 0; j < NR; j++) panel[p * NR + j] = widen(w, wtype, row0 + j * ldw + p);
}
#endif

/// Packs columns [c0, c0 + cols) of w (rows of `inputs` elements, stride ldw) into 16-column k-major panels,
/// zero-padding the last panel.
static void pack_panels(const void *w, int wtype, size_t ldw, size_t c0, size_t cols, size_t inputs, float *dst) {
    size_t panels = (cols + NR - 1) / NR;
    for (size_t pi = 0; pi < panels; pi++) {
        float *panel = dst + pi * NR * inputs;
#if CK_X86
        if (ck_simd_level() >= 3 && (wtype == CK_F32 || wtype == CK_BF16) && (pi + 1) * NR <= cols) {
            pack_panel16_avx512(w, wtype, ldw, (c0 + pi * NR) * ldw, inputs, panel);
            continue;
        }
#endif
        for (size_t j = 0; j < NR; j++) {
            size_t c = pi * NR + j;
            if (c >= cols) {
                for (size_t p = 0; p < inputs; p++) panel[p * NR + j] = 0;
                continue;
            }
            size_t row = (c0 + c) * ldw;
            if (wtype == CK_F32) {
                const float *src = (const float *)w + row;
                for (size_t p = 0; p < inputs; p++) panel[p * NR + j] = src[p];
            } else {
                for (size_t p = 0; p < inputs; p++) panel[p * NR + j] = widen(w, wtype, row + p);
            }
        }
    }
}

// MARK: micro-kernels: c[r, j] = Σ_p a_r[p] · b[p·NR + j] for r < mr, j < nr (b packed, 16 wide)

static void micro_portable(size_t k, const float *const a[MR], const float *b, float *c, size_t ldc, size_t mr, size_t nr) {
    float acc[MR][NR] = {{0}};
    for (size_t p = 0; p < k; p++) {
        const float *bp = b + p * NR;
        for (size_t r = 0; r < MR; r++) {
            float av = a[r][p];
            for (size_t j = 0; j < NR; j++) acc[r][j] += av * bp[j];
        }
    }
    for (size_t r = 0; r < mr; r++)
        for (size_t j = 0; j < nr; j++) c[r * ldc + j] = acc[r][j];
}

#if CK_X86
__attribute__((target("avx2,fma")))
static void micro_avx2(size_t k, const float *const a[MR], const float *b, float *c, size_t ldc, size_t mr, size_t nr) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5];
    for (size_t p = 0; p < k; p++) {
        __m256 b0 = _mm256_load_ps(b + p * NR), b1 = _mm256_load_ps(b + p * NR + 8), v;
        v = _mm256_broadcast_ss(a0 + p); c00 = _mm256_fmadd_ps(v, b0, c00); c01 = _mm256_fmadd_ps(v, b1, c01);
        v = _mm256_broadcast_ss(a1 + p); c10 = _mm256_fmadd_ps(v, b0, c10); c11 = _mm256_fmadd_ps(v, b1, c11);
        v = _mm256_broadcast_ss(a2 + p); c20 = _mm256_fmadd_ps(v, b0, c20); c21 = _mm256_fmadd_ps(v, b1, c21);
        v = _mm256_broadcast_ss(a3 + p); c30 = _mm256_fmadd_ps(v, b0, c30); c31 = _mm256_fmadd_ps(v, b1, c31);
        v = _mm256_broadcast_ss(a4 + p); c40 = _mm256_fmadd_ps(v, b0, c40); c41 = _mm256_fmadd_ps(v, b1, c41);
        v = _mm256_broadcast_ss(a5 + p); c50 = _mm256_fmadd_ps(v, b0, c50); c51 = _mm256_fmadd_ps(v, b1, c51);
    }
    __m256 rows[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    if (nr == NR) {
        for (size_t r = 0; r < mr; r++) {
            _mm256_storeu_ps(c + r * ldc, rows[r][0]);
            _mm256_storeu_ps(c + r * ldc + 8, rows[r][1]);
        }
    } else {
        float tmp[NR] __attribute__((aligned(32)));
        for (size_t r = 0; r < mr; r++) {
            _mm256_store_ps(tmp, rows[r][0]);
            _mm256_store_ps(tmp + 8, rows[r][1]);
            memcpy(c + r * ldc, tmp, nr * sizeof(float));
        }
    }
}
#endif

#if CK_X86
enum { MR_WIDE = 12 };

/// The 12×16 tile in AVX-512: one 16-lane accumulator per row, the panel row loaded once per step of p and each
/// x value broadcast from memory into its fused multiply-add. Twelve independent chains keep both FMA units busy.
/// Every output element is the same chain as in `micro_avx2` (fused multiply-adds over p in order, from 0), so the
/// results are bitwise those of the AVX2 tile.
__attribute__((target("avx512f")))
static void micro_avx512(size_t k, const float *const a[MR_WIDE], const float *b, float *c, size_t ldc, size_t mr, size_t nr) {
    __m512 acc[MR_WIDE];
    for (int r = 0; r < MR_WIDE; r++) acc[r] = _mm512_setzero_ps();
    for (size_t p = 0; p < k; p++) {
        __m512 v = _mm512_loadu_ps(b + p * NR);
        for (int r = 0; r < MR_WIDE; r++) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(a[r][p]), v, acc[r]);
    }
    __mmask16 m = (__mmask16)(nr >= NR ? 0xFFFFu : (1u << nr) - 1);
    for (size_t r = 0; r < mr; r++) _mm512_mask_storeu_ps(c + r * ldc, m, acc[r]);
}
#endif

#if CK_X86
/// The 12×32 tile in AVX-512 (two adjacent panels: `b0` whole, `b1` with `nr1` ≤ 16 columns): 24 accumulators, two
/// panel loads and twelve broadcasts per step of p, so loads stay well under the two fused multiply-adds a cycle.
/// Same chains as `micro_avx512`, bitwise.
__attribute__((target("avx512f")))
static void micro_avx512_x2(size_t k, const float *const a[MR_WIDE], const float *b0, const float *b1, float *c, size_t ldc,
                            size_t mr, size_t nr1) {
    __m512 left[MR_WIDE], right[MR_WIDE];
    for (int r = 0; r < MR_WIDE; r++) left[r] = right[r] = _mm512_setzero_ps();
    for (size_t p = 0; p < k; p++) {
        __m512 u = _mm512_loadu_ps(b0 + p * NR), v = _mm512_loadu_ps(b1 + p * NR);
        for (int r = 0; r < MR_WIDE; r++) {
            __m512 x = _mm512_set1_ps(a[r][p]);
            left[r] = _mm512_fmadd_ps(x, u, left[r]);
            right[r] = _mm512_fmadd_ps(x, v, right[r]);
        }
    }
    __mmask16 m = (__mmask16)(nr1 >= NR ? 0xFFFFu : (1u << nr1) - 1);
    for (size_t r = 0; r < mr; r++) {
        _mm512_storeu_ps(c + r * ldc, left[r]);
        _mm512_mask_storeu_ps(c + r * ldc + NR, m, right[r]);
    }
}
#endif

static inline void micro(size_t k, const float *const a[MR], const float *b, float *c, size_t ldc, size_t mr, size_t nr) {
#if CK_X86
    if (ck_simd_level() >= 2) { micro_avx2(k, a, b, c, ldc, mr, nr); return; }
#endif
    micro_portable(k, a, b, c, ldc, mr, nr);
}

/// c[r, ·] for rows [0, rows) of a (stride lda) against `panels` packed panels (each k × 16), output columns
/// `cols` (≤ panels·16), in 6-row tiles; a tile short of 6 rows repeats its first row (results not stored).
static void tile_rows(size_t k, const float *a, size_t lda, size_t rows, const float *packed, size_t cols, float *c, size_t ldc) {
    size_t panels = (cols + NR - 1) / NR;
    size_t r = 0;
#if CK_X86
    // With AVX-512: 12-row tiles while more than 6 rows are left (a tile short of 12 repeats its first row).
    if (ck_simd_level() >= 3) {
        for (; r + MR < rows; r += MR_WIDE) {
            size_t mr = rows - r < MR_WIDE ? rows - r : MR_WIDE;
            const float *ap[MR_WIDE];
            for (size_t i = 0; i < MR_WIDE; i++) ap[i] = a + (r + (i < mr ? i : 0)) * lda;
            size_t pi = 0;
            for (; pi + 1 < panels; pi += 2) {
                size_t nr1 = cols - (pi + 1) * NR < NR ? cols - (pi + 1) * NR : NR;
                micro_avx512_x2(k, ap, packed + pi * NR * k, packed + (pi + 1) * NR * k, c + r * ldc + pi * NR, ldc, mr, nr1);
            }
            if (pi < panels) micro_avx512(k, ap, packed + pi * NR * k, c + r * ldc + pi * NR, ldc, mr, cols - pi * NR);
        }
    }
#endif
    for (; r < rows; r += MR) {
        size_t mr = rows - r < MR ? rows - r : MR;
        const float *ap[MR];
        for (size_t i = 0; i < MR; i++) ap[i] = a + (r + (i < mr ? i : 0)) * lda;
        for (size_t pi = 0; pi < panels; pi++) {
            size_t nr = cols - pi * NR < NR ? cols - pi * NR : NR;
            micro(k, ap, packed + pi * NR * k, c + r * ldc + pi * NR, ldc, mr, nr);
        }
    }
}

// MARK: scratch

/// This thread's packing buffer, at least `floats` long and 64-byte aligned (grown, never shrunk: its size is
/// bounded by the largest layer's inputs × 64 or one head's keys).
static float *thread_scratch(size_t floats) {
    static __thread float *buffer = NULL;
    static __thread size_t capacity = 0;
    if (floats > capacity) {
        free(buffer);
        buffer = NULL;
        size_t want = floats + floats / 4;
        if (posix_memalign((void **)&buffer, 64, want * sizeof(float)) != 0) abort();
        capacity = want;
    }
    return buffer;
}

// MARK: linear

void ck_linear_group(const float *x, size_t ldx, size_t rows, size_t inputs, const void *w, int wtype, size_t ldw,
                     size_t c0, size_t cols, float *y, size_t ldy) {
    if (cols > CK_GROUP_COLUMNS) cols = CK_GROUP_COLUMNS;
    if (rows == 0 || cols == 0) return;
    if (inputs == 0) {
        for (size_t r = 0; r < rows; r++) memset(y + r * ldy + c0, 0, cols * sizeof(float));
        return;
    }
    float *scratch = thread_scratch(round16(cols) * inputs);
    pack_panels(w, wtype, ldw, c0, cols, inputs, scratch);
    tile_rows(inputs, x, ldx, rows, scratch, cols, y + c0, ldy);
}

// MARK: vector math

static const float EXP_HI = 88.7228394f;  // exp(x) overflows f32 above this
static const float EXP_LO = -103.972084f; // exp(x) rounds to 0 below this

#if CK_X86
/// exp on 8 lanes (Cephes expf): n = round(x·log2 e), r = x − n·ln 2 (ln 2 in two parts), degree-6 polynomial in
/// r, times 2ⁿ applied as 2^⌊n/2⌋ · 2^(n−⌊n/2⌋) so that results near overflow and in the subnormal range are right.
__attribute__((target("avx2,fma")))
static inline __m256 exp8(__m256 x) {
    const __m256 hi = _mm256_set1_ps(EXP_HI), lo = _mm256_set1_ps(EXP_LO);
    __m256 xc = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.6666665459e-1f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(5.0000001201e-1f));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i ni = _mm256_cvtps_epi32(n), n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
    const __m256i bias = _mm256_set1_epi32(127);
    y = _mm256_mul_ps(y, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23)));
    y = _mm256_mul_ps(y, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23)));
    y = _mm256_blendv_ps(y, _mm256_setzero_ps(), _mm256_cmp_ps(x, lo, _CMP_LT_OQ));
    y = _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(x, hi, _CMP_GT_OQ));
    return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));  // NaN stays NaN
}

__attribute__((target("avx2,fma")))
static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma")))
static inline float hmax8(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/// Loads n < 8 floats, the other lanes `fill`.
__attribute__((target("avx2,fma")))
static inline __m256 load_partial(const float *x, size_t n, float fill) {
    float tmp[8] __attribute__((aligned(32)));
    for (size_t i = 0; i < 8; i++) tmp[i] = i < n ? x[i] : fill;
    return _mm256_load_ps(tmp);
}

__attribute__((target("avx2,fma")))
static void exp_avx2(const float *x, float *y, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, exp8(_mm256_loadu_ps(x + i)));
    if (i < n) {
        float tmp[8] __attribute__((aligned(32)));
        _mm256_store_ps(tmp, exp8(load_partial(x + i, n - i, 0)));
        memcpy(y + i, tmp, (n - i) * sizeof(float));
    }
}

__attribute__((target("avx2,fma")))
static void silu_mul_avx2(float *g, const float *u, size_t n) {
    size_t i = 0;
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    for (; i + 8 <= n; i += 8) {
        __m256 a = _mm256_loadu_ps(g + i);
        __m256 d = _mm256_add_ps(one, exp8(_mm256_sub_ps(zero, a)));
        _mm256_storeu_ps(g + i, _mm256_mul_ps(_mm256_div_ps(a, d), _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++) { float a = g[i]; g[i] = a / (1 + expf(-a)) * u[i]; }
}

__attribute__((target("avx2,fma")))
static double logsumexp_avx2(const float *x, size_t n) {
    __m256 mv = _mm256_set1_ps(-INFINITY);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) mv = _mm256_max_ps(mv, _mm256_loadu_ps(x + i));
    float m = hmax8(mv);
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    if (!(m > -INFINITY) || isinf(m)) {  // empty, all −inf, NaN or +inf: the exact answer is m (or NaN)
        double s = 0;
        for (i = 0; i < n; i++) s += exp((double)x[i] - m);
        return (double)m + log(s);
    }
    const __m256 mm = _mm256_set1_ps(m);
    double total = 0;
    for (i = 0; i + 8 <= n;) {
        __m256 acc = _mm256_setzero_ps();
        size_t end = i + 64 <= n ? i + 64 : n / 8 * 8;
        for (; i < end; i += 8) acc = _mm256_add_ps(acc, exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), mm)));
        total += hsum8(acc);
    }
    if (i < n) total += hsum8(exp8(_mm256_sub_ps(load_partial(x + i, n - i, -INFINITY), mm)));
    return (double)m + log(total);
}
#endif

void ck_exp(const float *x, float *y, size_t n) {
#if CK_X86
    if (ck_simd_level() >= 2) { exp_avx2(x, y, n); return; }
#endif
    for (size_t i = 0; i < n; i++) y[i] = expf(x[i]);
}

void ck_silu_mul(float *g, const float *u, size_t n) {
#if CK_X86
    if (ck_simd_level() >= 2) { silu_mul_avx2(g, u, n); return; }
#endif
    for (size_t i = 0; i < n; i++) { float a = g[i]; g[i] = a / (1 + expf(-a)) * u[i]; }
}

double ck_logsumexp(const float *x, size_t n) {
#if CK_X86
    if (ck_simd_level() >= 2) return logsumexp_avx2(x, n);
#endif
    float m = -INFINITY;
    for (size_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    double s = 0;
    for (size_t i = 0; i < n; i++) s += exp((double)x[i] - m);
    return (double)m + log(s);
}

#if CK_X86
/// Softmax of row[0..count) in place after scaling by `scale`; a sink logit (if any) joins the normalisation.
__attribute__((target("avx2,fma")))
static void softmax_avx2(float *row, size_t count, float scale, const float *sink) {
    const __m256 sc = _mm256_set1_ps(scale);
    __m256 mv = _mm256_set1_ps(-INFINITY);
    size_t j = 0;
    for (; j + 8 <= count; j += 8) {
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(row + j), sc);
        _mm256_storeu_ps(row + j, v);
        mv = _mm256_max_ps(mv, v);
    }
    float m = hmax8(mv);
    for (; j < count; j++) { row[j] *= scale; m = row[j] > m ? row[j] : m; }
    if (sink && *sink > m) m = *sink;
    const __m256 mm = _mm256_set1_ps(m);
    __m256 acc = _mm256_setzero_ps();
    for (j = 0; j + 8 <= count; j += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(row + j), mm));
        _mm256_storeu_ps(row + j, e);
        acc = _mm256_add_ps(acc, e);
    }
    if (j < count) {
        float tmp[8] __attribute__((aligned(32)));
        __m256 e = exp8(_mm256_sub_ps(load_partial(row + j, count - j, -INFINITY), mm));
        _mm256_store_ps(tmp, e);
        memcpy(row + j, tmp, (count - j) * sizeof(float));
        acc = _mm256_add_ps(acc, e);
    }
    float sum = hsum8(acc);
    if (sink) {
        float tmp[8] __attribute__((aligned(32)));
        _mm256_store_ps(tmp, exp8(_mm256_set1_ps(*sink - m)));
        sum += tmp[0];
    }
    const float inv = 1 / sum;
    const __m256 iv = _mm256_set1_ps(inv);
    for (j = 0; j + 8 <= count; j += 8) _mm256_storeu_ps(row + j, _mm256_mul_ps(_mm256_loadu_ps(row + j), iv));
    for (; j < count; j++) row[j] *= inv;
}
#endif

/// Softmax of row[0..count) in place after scaling by `scale`; a sink logit (if any) joins the normalisation and its
/// share is dropped (the row then sums to less than one). The sum runs in 8 interleaved partial sums (as the AVX2
/// body's lanes) so that both bodies add in the same order.
static void softmax(float *row, size_t count, float scale, const float *sink) {
#if CK_X86
    if (ck_simd_level() >= 2) { softmax_avx2(row, count, scale, sink); return; }
#endif
    float m = -INFINITY;
    for (size_t j = 0; j < count; j++) { row[j] *= scale; m = row[j] > m ? row[j] : m; }
    if (sink && *sink > m) m = *sink;
    float lanes[8] = {0};
    for (size_t j = 0; j < count; j++) { float e = expf(row[j] - m); row[j] = e; lanes[j % 8] += e; }
    float sum = ((lanes[0] + lanes[4]) + (lanes[2] + lanes[6])) + ((lanes[1] + lanes[5]) + (lanes[3] + lanes[7]));
    if (sink) sum += expf(*sink - m);
    float inv = 1 / sum;
    for (size_t j = 0; j < count; j++) row[j] *= inv;
}

// MARK: attention

void ck_attention_rows(const float *q, size_t ldq, const float *k, size_t ldk, const float *v, size_t ldv,
                       float *out, size_t ldo, size_t dk, size_t dv, size_t r0, size_t r1, float scale, size_t window,
                       const float *sink) {
    if (r1 <= r0) return;
    // Keys [kb, r1) are the only ones rows [r0, r1) see (all from 0 without a window).
    size_t kb = window && r0 + 1 > window ? r0 + 1 - window : 0;
    size_t keys = r1 - kb, lk = round16(keys);
    float *scratch = thread_scratch(lk * dk + round16(dv) * lk + (r1 - r0) * lk);
    float *kp = scratch;                 // keys as 16-key panels: kp[panel][d][16]
    float *vp = kp + lk * dk;            // values as 16-column panels: vp[panel][key][16]
    float *s = vp + round16(dv) * lk;    // scores / probabilities of the block: s[t − r0][key − kb], row stride lk
    pack_panels(k + kb * ldk, CK_F32, ldk, 0, keys, dk, kp);
    size_t vpanels = (dv + NR - 1) / NR;
    for (size_t g = 0; g < vpanels; g++) {
        float *panel = vp + g * NR * lk;
        size_t w = dv - g * NR < NR ? dv - g * NR : NR;
        for (size_t j = 0; j < keys; j++) {
            memcpy(panel + j * NR, v + (kb + j) * ldv + g * NR, w * sizeof(float));
            if (w < NR) memset(panel + j * NR + w, 0, (NR - w) * sizeof(float));
        }
    }
    // Tiles of 6 query rows, 12 with AVX-512 (whose 12-row products then take both steps).
#if CK_X86
    size_t tile = ck_simd_level() >= 3 ? MR_WIDE : MR;
#else
    size_t tile = MR;
#endif
    for (size_t t0 = r0; t0 < r1; t0 += tile) {
        size_t mr = r1 - t0 < tile ? r1 - t0 : tile, te = t0 + mr - kb;  // this tile needs keys [kb, kb + te)
        float *st = s + (t0 - r0) * lk;
        tile_rows(dk, q + t0 * ldq, ldq, mr, kp, te, st, lk);
        for (size_t i = 0; i < mr; i++) {
            size_t t = t0 + i, first = window && t + 1 > window ? t + 1 - window : 0;
            size_t lo = first - kb, hi = t + 1 - kb;  // the row's keys, local
            float *row = st + i * lk;
            softmax(row + lo, hi - lo, scale, sink);
            if (lo > 0) memset(row, 0, lo * sizeof(float));
            if (hi < te) memset(row + hi, 0, (te - hi) * sizeof(float));
        }
        // out[t] = Σ_j p[t, j] · v[j] over the tile's keys: the zeros outside each row's own keys add nothing.
#if CK_X86
        if (mr > MR) {
            const float *ap[MR_WIDE];
            for (size_t i = 0; i < MR_WIDE; i++) ap[i] = st + (i < mr ? i : 0) * lk;
            size_t g = 0;
            for (; g + 1 < vpanels; g += 2) {
                size_t nr1 = dv - (g + 1) * NR < NR ? dv - (g + 1) * NR : NR;
                micro_avx512_x2(te, ap, vp + g * NR * lk, vp + (g + 1) * NR * lk, out + t0 * ldo + g * NR, ldo, mr, nr1);
            }
            if (g < vpanels) micro_avx512(te, ap, vp + g * NR * lk, out + t0 * ldo + g * NR, ldo, mr, dv - g * NR);
            continue;
        }
#endif
        for (size_t g = 0; g < vpanels; g++) {
            const float *ap[MR];
            for (size_t i = 0; i < MR; i++) ap[i] = st + (i < mr ? i : 0) * lk;
            size_t nr = dv - g * NR < NR ? dv - g * NR : NR;
            micro(te, ap, vp + g * NR * lk, out + t0 * ldo + g * NR, ldo, mr, nr);
        }
    }
}
