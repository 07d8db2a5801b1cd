// Ingot's SIMD kernels: the forward pass's matrix products, attention and vector math.
//
// Written in C because Swift cannot compile one function for AVX2 + FMA while the rest of the binary stays
// baseline x86-64: each kernel has an AVX2 + FMA body chosen at run time (`ck_simd_level`) and a portable body
// (the scalar reference); on AVX-512 CPUs the matrix products also run 12-row tiles, bitwise equal to the AVX2
// ones. Every product is computed the same way wherever its row or column sits in a tile, so results do not depend
// on how the work is split (threads, batch, tile position); only the choice between the portable and the SIMD
// bodies changes their last bits, as it does for any BLAS.
#ifndef INGOT_CKERNELS_H
#define INGOT_CKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// 3 when the AVX-512 matrix tiles run beside the AVX2 + FMA bodies, 2 for AVX2 + FMA alone, 0 for the portable
/// bodies.
int ck_simd_level(void);
/// Forces the portable bodies (1) or lets the CPU choose (0) on the calling thread only; for tests comparing both.
void ck_force_portable(int portable);
/// Caps the level on the calling thread (3: no cap); for tests comparing the AVX-512 and AVX2 tiles.
void ck_cap_simd_level(int cap);

/// Element types a weight matrix can be read from (widened to f32 exactly while packing).
enum { CK_F32 = 0, CK_BF16 = 1, CK_F16 = 2 };

/// Output columns per group (`ck_linear_group`).
enum { CK_GROUP_COLUMNS = 64 };

/// y[r, c0 + j] = Σ_p x[r, p] · w[c0 + j, p] for r < rows, j < cols (≤ CK_GROUP_COLUMNS): one column group of
/// y = x · wᵀ. x is [rows, inputs] with row stride ldx; w row-major [·, inputs] (row stride ldw elements) of
/// `wtype`; y row stride ldy. Each sum runs over p in order, one fused multiply-add per step, whatever rows/cols.
/// Packing space is a per-thread buffer, reused across calls.
void ck_linear_group(const float *x, size_t ldx, size_t rows, size_t inputs, const void *w, int wtype, size_t ldw,
                     size_t c0, size_t cols, float *y, size_t ldy);

/// Causal softmax attention of one head for query rows [r0, r1) of a sequence whose rows start at q/k/v/out:
/// out[t] = Σ_{j ≤ t} softmax_j(scale · q[t]·k[j]) · v[j]. Row strides ldq, ldk, ldv, ldo (elements).
/// window > 0: row t sees only keys (t − window, t] (sliding window). sink (or NULL): a logit that joins each
/// row's softmax normalisation and whose share is dropped (gpt-oss).
/// Scores are scaled, then softmaxed per row in f32 (8 partial sums); only the block's rows of the score matrix
/// exist at any time (block × keys floats), never the whole context × context matrix.
void ck_attention_rows(const float *q, size_t ldq, const float *k, size_t ldk, const float *v, size_t ldv,
                       float *out, size_t ldo, size_t dk, size_t dv, size_t r0, size_t r1, float scale, size_t window,
                       const float *sink);

/// exp(x) for n floats: within 2 ulp where the result is a normal float; 0 below −103.97, +inf above 88.72.
void ck_exp(const float *x, float *y, size_t n);
/// g[i] = silu(g[i]) · u[i] = g / (1 + exp(−g)) · u.
void ck_silu_mul(float *g, const float *u, size_t n);
/// log Σ exp(x[i]) of a row (max-shifted; sums in f64 over f32 blocks).
double ck_logsumexp(const float *x, size_t n);

// Quantizer element loops (quant.c): the Swift references' arithmetic operation for operation, so results are
// bit-identical to them. `rounding`: CK_F32 (none), CK_BF16, CK_F16 — rounding to that precision after each step.

/// compressed-tensors codes of a group: out[i] = round(clamp(R(R(x/s) + zp), qmin, qmax)) + offset (x never NaN).
void ck_quant_ct_group(const float *x, size_t n, float s, float zp, float qmin, float qmax, float offset, int rounding,
                       uint8_t *out);
/// Minimum and maximum of a run (+inf / −inf when empty); returns 1 when it holds a NaN or an infinity.
int ck_min_max(const float *x, size_t n, float *mn, float *mx);
/// Largest finite |x| (NaN and infinities ignored), 0 for an empty run.
float ck_abs_max(const float *x, size_t n);
/// FP8 codes of a run sharing scale s: fp8(clamp(R(x/s), ±limit)), E4M3FN when e4m3 else E5M2 (`FP8Codec`).
void ck_quant_fp8_run(const float *x, size_t n, float s, float limit, int e4m3, int rounding, uint8_t *out);
/// One group of the weight health scan on bit patterns: OR of magnitudes, whether any value is NaN, infinite or
/// denormal, and the largest magnitude's bits.
void ck_scan_group(const float *x, size_t n, uint32_t *nonzero, uint32_t *special, uint32_t *max_magnitude);
/// out[i] = codes[2i] & 0xF | (codes[2i+1] & 0xF) << 4.
void ck_pack_nibbles(const uint8_t *codes, size_t pairs, uint8_t *out);

#ifdef __cplusplus
}
#endif
#endif
