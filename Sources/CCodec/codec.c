// The chunk codec's inner loops (see include/CCodec.h).
#include "CCodec.h"

#include <string.h>

#if (defined(__x86_64__) || defined(__i386__)) && defined(__ELF__)
#define IC_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define IC_CLONES
#endif

IC_CLONES
void ic_planes_split(const uint8_t *restrict src, size_t n, size_t width, uint8_t *restrict dst) {
    if (width == 2) {
        uint8_t *restrict lo = dst, *restrict hi = dst + n;
        for (size_t i = 0; i < n; i++) {
            uint16_t v;
            memcpy(&v, src + 2 * i, 2);
            v = (uint16_t)((v << 1) | (v >> 15));
            lo[i] = (uint8_t)v;
            hi[i] = (uint8_t)(v >> 8);
        }
    } else {
        uint8_t *restrict p0 = dst, *restrict p1 = dst + n, *restrict p2 = dst + 2 * n, *restrict p3 = dst + 3 * n;
        for (size_t i = 0; i < n; i++) {
            uint32_t v;
            memcpy(&v, src + 4 * i, 4);
            v = (v << 1) | (v >> 31);
            p0[i] = (uint8_t)v;
            p1[i] = (uint8_t)(v >> 8);
            p2[i] = (uint8_t)(v >> 16);
            p3[i] = (uint8_t)(v >> 24);
        }
    }
}

IC_CLONES
void ic_planes_join(const uint8_t *const *planes, size_t n, size_t width, uint8_t *restrict dst) {
    if (width == 2) {
        const uint8_t *restrict lo = planes[0], *restrict hi = planes[1];
        for (size_t i = 0; i < n; i++) {
            uint16_t v = (uint16_t)(lo[i] | hi[i] << 8);
            v = (uint16_t)((v >> 1) | (v << 15));
            memcpy(dst + 2 * i, &v, 2);
        }
    } else {
        const uint8_t *restrict p0 = planes[0], *restrict p1 = planes[1], *restrict p2 = planes[2], *restrict p3 = planes[3];
        for (size_t i = 0; i < n; i++) {
            uint32_t v = (uint32_t)p0[i] | (uint32_t)p1[i] << 8 | (uint32_t)p2[i] << 16 | (uint32_t)p3[i] << 24;
            v = (v >> 1) | (v << 31);
            memcpy(dst + 4 * i, &v, 4);
        }
    }
}

void ic_histogram(const uint8_t *src, size_t n, uint64_t counts[256]) {
    // Four sub-histograms: consecutive bytes rarely increment the same counter, so increments do not wait on
    // each other's stores.
    uint32_t h[4][256];
    memset(h, 0, sizeof h);
    size_t i = 0;
    // 32-bit counters: flush every 2^30 bytes so none can overflow.
    while (i < n) {
        size_t end = n - i > ((size_t)1 << 30) ? i + ((size_t)1 << 30) : n;
        for (; i + 8 <= end; i += 8) {
            uint64_t w;
            memcpy(&w, src + i, 8);
            h[0][w & 0xFF]++; h[1][(w >> 8) & 0xFF]++; h[2][(w >> 16) & 0xFF]++; h[3][(w >> 24) & 0xFF]++;
            h[0][(w >> 32) & 0xFF]++; h[1][(w >> 40) & 0xFF]++; h[2][(w >> 48) & 0xFF]++; h[3][w >> 56]++;
        }
        for (; i < end; i++) h[0][src[i]]++;
        for (int b = 0; b < 256; b++) {
            counts[b] += (uint64_t)h[0][b] + h[1][b] + h[2][b] + h[3][b];
            h[0][b] = h[1][b] = h[2][b] = h[3][b] = 0;
        }
    }
}

size_t ic_huffman_pack(const uint8_t *src, size_t n, const uint32_t table[256], uint8_t *dst) {
    // Four codes (≤ 48 bits) on top of < 8 pending bits fit a 64-bit accumulator; its whole bytes are stored
    // with one unaligned 8-byte store (the bytes past them are rewritten by the next store).
    uint64_t acc = 0;
    unsigned bits = 0;
    size_t o = 0, i = 0;
#define IC_PUT(s) do { uint32_t e = table[(s)]; acc |= (uint64_t)(e & 0xFFFF) << bits; bits += e >> 16; } while (0)
    for (; i + 4 <= n; i += 4) {
        IC_PUT(src[i]); IC_PUT(src[i + 1]); IC_PUT(src[i + 2]); IC_PUT(src[i + 3]);
        memcpy(dst + o, &acc, 8);
        unsigned whole = bits & ~7u;
        o += whole >> 3;
        acc >>= whole;
        bits &= 7;
    }
    for (; i < n; i++) {
        IC_PUT(src[i]);
        memcpy(dst + o, &acc, 8);
        unsigned whole = bits & ~7u;
        o += whole >> 3;
        acc >>= whole;
        bits &= 7;
    }
#undef IC_PUT
    if (bits > 0) dst[o++] = (uint8_t)acc;
    return o;
}

#if (defined(__x86_64__) || defined(__i386__)) && defined(__ELF__)
#include <immintrin.h>
#define IC_AVX512 1

static int ic_has_avx512(void) {
    static int known = -1;
    int v = __atomic_load_n(&known, __ATOMIC_RELAXED);
    if (v < 0) {
        __builtin_cpu_init();
        v = __builtin_cpu_supports("avx512f") ? 1 : 0;
        __atomic_store_n(&known, v, __ATOMIC_RELAXED);
    }
    return v;
}

/// The multi-symbol table of `ic_huffman_tables`, 16 windows at a time: each of the four steps gathers the
/// one-symbol entry of every lane's remaining bits, and lanes whose next code is absent or does not fit stop.
/// Entries are exactly the scalar loop's.
__attribute__((target("avx512f")))
static void ic_multi_avx512(const uint32_t single32[4096], uint64_t multi[4096]) {
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i mask12 = _mm512_set1_epi32(4095), twelve = _mm512_set1_epi32(12), ff = _mm512_set1_epi32(0xFF);
    for (uint32_t p0 = 0; p0 < 4096; p0 += 16) {
        __m512i p = _mm512_add_epi32(_mm512_set1_epi32((int)p0), lane);
        __m512i bits = _mm512_setzero_si512(), count = bits, syms = bits;
        __mmask16 active = 0xFFFF;
        for (int step = 0; step < 4 && active; step++) {
            __m512i idx = _mm512_and_si512(_mm512_srlv_epi32(p, bits), mask12);
            __m512i t = _mm512_i32gather_epi32(idx, (const void *)single32, 4);
            __m512i l = _mm512_srli_epi32(t, 8);
            active = _mm512_mask_cmpneq_epi32_mask(active, l, _mm512_setzero_si512());
            active = _mm512_mask_cmple_epu32_mask(active, _mm512_add_epi32(bits, l), twelve);
            __m512i sym = _mm512_sllv_epi32(_mm512_and_si512(t, ff), _mm512_slli_epi32(count, 3));
            syms = _mm512_mask_or_epi32(syms, active, syms, sym);
            bits = _mm512_mask_add_epi32(bits, active, bits, l);
            count = _mm512_mask_add_epi32(count, active, count, _mm512_set1_epi32(1));
        }
        __m512i low = _mm512_or_si512(_mm512_slli_epi32(count, 8), bits);
        for (int half = 0; half < 2; half++) {
            __m256i lo = half ? _mm512_extracti64x4_epi64(low, 1) : _mm512_castsi512_si256(low);
            __m256i hi = half ? _mm512_extracti64x4_epi64(syms, 1) : _mm512_castsi512_si256(syms);
            __m512i e = _mm512_or_si512(_mm512_cvtepu32_epi64(lo), _mm512_slli_epi64(_mm512_cvtepu32_epi64(hi), 32));
            _mm512_storeu_si512((void *)(multi + p0 + 8 * half), e);
        }
    }
}
#endif

void ic_huffman_tables(const uint8_t lengths[256], const uint32_t codes[256], uint16_t single[4096], uint64_t multi[4096]) {
    memset(single, 0, 4096 * sizeof single[0]);
    for (int s = 0; s < 256; s++) {
        unsigned l = lengths[s];
        if (l == 0) continue;
        for (uint32_t f = codes[s]; f < 4096; f += 1u << l) single[f] = (uint16_t)(s | l << 8);
    }
#ifdef IC_AVX512
    if (ic_has_avx512()) {
        uint32_t single32[4096];
        for (int f = 0; f < 4096; f++) single32[f] = single[f];
        ic_multi_avx512(single32, multi);
        return;
    }
#endif
    for (uint32_t p = 0; p < 4096; p++) {
        unsigned bits = 0, count = 0;
        uint64_t e = 0;
        while (count < 4) {
            uint16_t t = single[(p >> bits) & 4095];
            unsigned l = t >> 8;
            if (l == 0 || bits + l > 12) break;
            e |= (uint64_t)(t & 0xFF) << (8 * count);
            bits += l;
            count++;
        }
        multi[p] = e << 32 | count << 8 | bits;
    }
}

typedef struct {
    const uint8_t *p;
    size_t length, bitpos, i, count;
    const uint64_t *multi;
    uint8_t *out;
} ic_state;

// Fast path: a step loads 8 payload bytes (≥ 57 valid bits after the bit offset) and makes four lookups of ≤ 12
// bits; each stores 4 output bytes (≤ 4 of them symbols), so a step consumes ≤ 48 bits and needs 16 bytes of
// output room. The number of steps that stay within both bounds is computed up front, so the steps themselves
// check nothing.
static inline size_t ic_safe_steps(const ic_state *s) {
    if (s->i + 16 > s->count || (s->bitpos >> 3) + 8 > s->length) return 0;
    size_t out = (s->count - s->i - 16) / 16 + 1, in = (s->length - 8 - (s->bitpos >> 3)) / 6 + 1;
    return out < in ? out : in;
}

static int ic_tail(ic_state *s, const uint16_t *single) {
    while (s->i < s->count) {
        uint64_t w = 0;
        size_t byte = s->bitpos >> 3;
        for (size_t k = 0; k < 3 && byte + k < s->length; k++) w |= (uint64_t)s->p[byte + k] << (8 * k);
        w >>= s->bitpos & 7;
        uint16_t e = single[w & 4095];
        unsigned l = e >> 8;
        if (l == 0) return 1;
        s->out[s->i++] = (uint8_t)e;
        s->bitpos += l;
    }
    return 0;
}

// `steps` fast steps of each of the first M streams, interleaved, on local copies of their positions (so they stay in
// registers). A lookup of a window that starts with no code yields no symbols and no bits, and so does every later
// lookup of that step: a step that consumes no bits marks the stream as stalled on invalid input.
#define IC_LOCALS(k) \
    const uint8_t *p##k = s[k].p; const uint64_t *t##k = s[k].multi; uint8_t *o##k = s[k].out + s[k].i; size_t b##k = s[k].bitpos;
#define IC_LOOKUP(k) do { \
        uint64_t e = t##k[w & 4095]; uint32_t y = (uint32_t)(e >> 32); \
        memcpy(o##k, &y, 4); o##k += (e >> 8) & 7; w >>= e & 63; u += (unsigned)(e & 0xFF); \
    } while (0)
#define IC_STEP(k) do { \
        uint64_t w; memcpy(&w, p##k + (b##k >> 3), 8); w >>= b##k & 7; unsigned u = 0; \
        IC_LOOKUP(k); IC_LOOKUP(k); IC_LOOKUP(k); IC_LOOKUP(k); \
        b##k += u; stalled |= u == 0; \
    } while (0)
#define IC_STORE(k) do { s[k].i = (size_t)(o##k - s[k].out); s[k].bitpos = b##k; } while (0)

static inline __attribute__((always_inline)) int ic_run4(ic_state *s, size_t steps) {
    IC_LOCALS(0) IC_LOCALS(1) IC_LOCALS(2) IC_LOCALS(3)
    unsigned stalled = 0;
    for (size_t j = 0; j < steps; j++) { IC_STEP(0); IC_STEP(1); IC_STEP(2); IC_STEP(3); }
    IC_STORE(0); IC_STORE(1); IC_STORE(2); IC_STORE(3);
    return (int)stalled;
}

static inline __attribute__((always_inline)) int ic_run3(ic_state *s, size_t steps) {
    IC_LOCALS(0) IC_LOCALS(1) IC_LOCALS(2)
    unsigned stalled = 0;
    for (size_t j = 0; j < steps; j++) { IC_STEP(0); IC_STEP(1); IC_STEP(2); }
    IC_STORE(0); IC_STORE(1); IC_STORE(2);
    return (int)stalled;
}

static inline __attribute__((always_inline)) int ic_run2(ic_state *s, size_t steps) {
    IC_LOCALS(0) IC_LOCALS(1)
    unsigned stalled = 0;
    for (size_t j = 0; j < steps; j++) { IC_STEP(0); IC_STEP(1); }
    IC_STORE(0); IC_STORE(1);
    return (int)stalled;
}

static inline __attribute__((always_inline)) int ic_run1(ic_state *s, size_t steps) {
    IC_LOCALS(0)
    unsigned stalled = 0;
    for (size_t j = 0; j < steps; j++) IC_STEP(0);
    IC_STORE(0);
    return (int)stalled;
}

IC_CLONES
int ic_huffman_decode(ic_huffman_block *blocks, size_t n) {
    // Up to four blocks at a time: independent lookup chains hide the table loads' latency (the tables of four
    // blocks do not fit L1). A block that runs out of fast-path room finishes with the one-symbol table and leaves
    // the group; the others go on interleaved.
    for (size_t b = 0; b < n; b += 4) {
        ic_state s[4];
        size_t id[4];
        unsigned m = n - b < 4 ? (unsigned)(n - b) : 4;
        for (unsigned k = 0; k < m; k++) {
            ic_huffman_block *x = blocks + b + k;
            s[k] = (ic_state){x->payload, x->length, 0, 0, x->count, x->multi, x->out};
            id[k] = b + k;
        }
        while (m > 0) {
            size_t steps = SIZE_MAX;
            for (unsigned k = 0; k < m; k++) { size_t t = ic_safe_steps(&s[k]); if (t < steps) steps = t; }
            if (steps > 0) {
                int bad = m == 4 ? ic_run4(s, steps) : m == 3 ? ic_run3(s, steps) : m == 2 ? ic_run2(s, steps) : ic_run1(s, steps);
                if (bad) return 1;
                continue;
            }
            // Finish the blocks with no fast-path room left; the last active one takes each one's place.
            for (unsigned k = 0; k < m;) {
                if (ic_safe_steps(&s[k]) > 0) { k++; continue; }
                if (ic_tail(&s[k], blocks[id[k]].single)) return 1;
                blocks[id[k]].bits = s[k].bitpos;
                m--;
                s[k] = s[m];
                id[k] = id[m];
            }
        }
    }
    return 0;
}
