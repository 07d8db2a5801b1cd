// Element loops of the weight quantizers and the weight health scan (see include/CKernels.h).
//
// Each loop is plain branch-free C written once and compiled twice (`target_clones`): for x86-64-v3 (AVX2) and for
// the baseline; the loader picks the body the CPU runs. The arithmetic is the Swift references' own, operation for
// operation (no contraction into fused multiply-adds), so both bodies give the same bits as the Swift code does.
#include "CKernels.h"

#include <string.h>

#pragma clang fp contract(off)

#if (defined(__x86_64__) || defined(__i386__)) && defined(__ELF__)
#define CK_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define CK_CLONES
#endif

static inline uint32_t bits_of(float x) { uint32_t b; memcpy(&b, &x, 4); return b; }
static inline float float_of(uint32_t b) { float x; memcpy(&x, &b, 4); return x; }

/// RNE to bf16 and back (callers never pass NaN).
static inline float round_bf16(float x) {
    uint32_t b = bits_of(x);
    return float_of((b + 0x7FFF + ((b >> 16) & 1)) & 0xFFFF0000u);
}

/// RNE to f16 and back: `FloatCodecs.f16Bits` then `f32BitsFromF16`, as selects.
static inline float round_f16(float x) {
    uint32_t b = bits_of(x), sign = (b >> 16) & 0x8000, a = b & 0x7FFFFFFF;
    uint32_t normal = (a + 0xC8000FFFu + ((a >> 13) & 1)) >> 13;
    uint32_t sub = bits_of(float_of(a) + 0.5f) - 0x3F000000u;
    uint32_t h = a < 0x38800000u ? sub : normal;
    h = a >= 0x47800000u ? 0x7C00 : h;
    h = a > 0x7F800000u ? (0x7E00 | ((a >> 13) & 0x3FF)) : h;
    h |= sign;
    uint32_t s2 = (h & 0x8000) << 16, em = h & 0x7FFF, exp = em & 0x7C00;
    uint32_t o = (em << 13) + (112u << 23);
    o = exp == 0x7C00 ? o + (112u << 23) : o;
    uint32_t subo = bits_of(float_of((em << 13) + (113u << 23)) - 0x1p-14f);
    o = exp == 0 ? subo : o;
    return float_of(o | s2);
}

static inline float round_to(float x, int rounding) {
    return rounding == CK_BF16 ? round_bf16(x) : rounding == CK_F16 ? round_f16(x) : x;
}

static inline float fmin_(float a, float b) { return b < a ? b : a; }
static inline float fmax_(float a, float b) { return b > a ? b : a; }

#define MAGIC 12582912.0f  // 1.5 · 2²³: adding it rounds to an integer (ties to even) into the low mantissa bits

#define CT_LOOP(R)                                                                                                  \
    for (size_t i = 0; i < n; i++) {                                                                                \
        float t = fmin_(fmax_(R(R(x[i] / s) + zp), qmin), qmax);                                                    \
        out[i] = (uint8_t)bits_of(t + offset + MAGIC);                                                              \
    }

static inline float id_(float x) { return x; }

CK_CLONES
void ck_quant_ct_group(const float *x, size_t n, float s, float zp, float qmin, float qmax, float offset, int rounding,
                       uint8_t *out) {
    if (rounding == CK_BF16) { CT_LOOP(round_bf16) }
    else if (rounding == CK_F16) { CT_LOOP(round_f16) }
    else { CT_LOOP(id_) }
}

// Sixteen independent lanes, combined in a fixed order at the end: a single running min/max (a select-based
// float reduction) is not vectorized without fast-math. The result differs from a sequential sweep at most in the
// sign of a zero minimum or maximum, which no quantizer formula can see (min(mn, 0), max(mx, 0), differences and
// quotients of it, rounded to an integer); NaN and infinities are reported and left to the caller.
#define CK_LANES 16

CK_CLONES
int ck_min_max(const float *x, size_t n, float *mn_out, float *mx_out) {
    float mn[CK_LANES], mx[CK_LANES];
    uint32_t special[CK_LANES];
    for (int j = 0; j < CK_LANES; j++) { mn[j] = __builtin_inff(); mx[j] = -__builtin_inff(); special[j] = 0; }
    size_t i = 0;
    for (; i + CK_LANES <= n; i += CK_LANES) {
        for (int j = 0; j < CK_LANES; j++) {
            float v = x[i + j];
            mn[j] = v < mn[j] ? v : mn[j];
            mx[j] = v > mx[j] ? v : mx[j];
            special[j] |= (bits_of(v) & 0x7F800000u) == 0x7F800000u;
        }
    }
    for (; i < n; i++) {
        float v = x[i];
        mn[0] = v < mn[0] ? v : mn[0];
        mx[0] = v > mx[0] ? v : mx[0];
        special[0] |= (bits_of(v) & 0x7F800000u) == 0x7F800000u;
    }
    float lo = mn[0], hi = mx[0];
    uint32_t sp = special[0];
    for (int j = 1; j < CK_LANES; j++) {
        lo = mn[j] < lo ? mn[j] : lo;
        hi = mx[j] > hi ? mx[j] : hi;
        sp |= special[j];
    }
    *mn_out = lo;
    *mx_out = hi;
    return sp != 0;
}

CK_CLONES
float ck_abs_max(const float *x, size_t n) {
    uint32_t m = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t b = bits_of(x[i]) & 0x7FFFFFFF;
        b = b < 0x7F800000u ? b : 0;
        m = b > m ? b : m;
    }
    return float_of(m);
}

static inline uint8_t encode_e4m3(float x) {
    uint32_t bits = bits_of(x), sign = (bits >> 24) & 0x80, a = bits & 0x7FFFFFFF;
    uint32_t sub = bits_of(float_of(a) * 512 + MAGIC) & 0xFF;
    uint32_t r = (a + 0x7FFFF + ((a >> 20) & 1)) >> 20;
    uint32_t code = r - 960 < 0x7E ? r - 960 : 0x7E;
    code = a < 0x3C800000u ? sub : code;
    code = a >= 0x43E00000u ? 0x7E : code;
    code = a > 0x7F800000u ? 0x7F : code;
    return (uint8_t)(sign | code);
}

static inline uint8_t encode_e5m2(float x) {
    uint32_t bits = bits_of(x), sign = (bits >> 24) & 0x80, a = bits & 0x7FFFFFFF;
    uint32_t sub = bits_of(float_of(a) * 65536 + MAGIC) & 0xFF;
    uint32_t r = (a + 0xFFFFF + ((a >> 21) & 1)) >> 21;
    uint32_t code = r - 448 < 0x7B ? r - 448 : 0x7B;
    code = a < 0x38800000u ? sub : code;
    code = a >= 0x47600000u ? 0x7B : code;
    code = a > 0x7F800000u ? 0x7F : code;
    return (uint8_t)(sign | code);
}

#define FP8_LOOP(R, ENC)                                                                                            \
    for (size_t i = 0; i < n; i++) out[i] = ENC(fmin_(fmax_(R(x[i] / s), -limit), limit));

CK_CLONES
void ck_quant_fp8_run(const float *x, size_t n, float s, float limit, int e4m3, int rounding, uint8_t *out) {
    if (e4m3) {
        if (rounding == CK_BF16) { FP8_LOOP(round_bf16, encode_e4m3) }
        else if (rounding == CK_F16) { FP8_LOOP(round_f16, encode_e4m3) }
        else { FP8_LOOP(id_, encode_e4m3) }
    } else {
        if (rounding == CK_BF16) { FP8_LOOP(round_bf16, encode_e5m2) }
        else if (rounding == CK_F16) { FP8_LOOP(round_f16, encode_e5m2) }
        else { FP8_LOOP(id_, encode_e5m2) }
    }
}

CK_CLONES
void ck_scan_group(const float *x, size_t n, uint32_t *nonzero, uint32_t *special, uint32_t *max_magnitude) {
    uint32_t nz = 0, sp = 0, mm = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t m = bits_of(x[i]) & 0x7FFFFFFF, e = m & 0x7F800000u;
        nz |= m;
        sp |= (e == 0x7F800000u) | ((e == 0) & (m != 0));
        mm = m > mm ? m : mm;
    }
    *nonzero = nz;
    *special = sp;
    *max_magnitude = mm;
}

CK_CLONES
void ck_pack_nibbles(const uint8_t *codes, size_t pairs, uint8_t *out) {
    for (size_t i = 0; i < pairs; i++) out[i] = (uint8_t)((codes[2 * i] & 0xF) | (codes[2 * i + 1] & 0xF) << 4);
}
