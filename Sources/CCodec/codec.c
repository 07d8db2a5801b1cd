// The chunk codec's inner loops (see include/CCodec.h).
#include "CCodec.h"

#include <string.h>

#if (defined(__x86_64__) || defined(__i386__)) && defined(__ELF__)
#define IC_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
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

void ic_huffman_tables(const uint8_t lengths[256], const uint32_t codes[256], uint16_t single[4096], uint64_t multi[4096]) {
    memset(single, 0, 4096 * sizeof single[0]);
    for (int s = 0; s < 256; s++) {
        unsigned l = lengths[s];
        if (l == 0) continue;
        for (uint32_t f = codes[s]; f < 4096; f += 1u << l) single[f] = (uint16_t)(s | l << 8);
    }
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
        multi[p] = e | (uint64_t)count << 32 | (uint64_t)bits << 35;
    }
}

typedef struct {
    const uint8_t *p;
    size_t length, bitpos, i, count;
    const uint64_t *multi;
    uint8_t *out;
} ic_state;

// Fast path: 8 readable payload bytes give ≥ 56 bits, enough for four lookups of ≤ 12 bits; each lookup stores
// 4 output bytes (≤ 4 valid), so 16 output bytes of room are needed.
static inline int ic_fast_ok(const ic_state *s) { return s->i + 16 <= s->count && (s->bitpos >> 3) + 8 <= s->length; }

static inline int ic_fast_step(ic_state *s) {
    uint64_t w;
    memcpy(&w, s->p + (s->bitpos >> 3), 8);
    w >>= s->bitpos & 7;
    unsigned used = 0, ok = 1;
    for (int k = 0; k < 4; k++) {
        uint64_t e = s->multi[w & 4095];
        unsigned c = (unsigned)(e >> 32) & 7, b = (unsigned)(e >> 35);
        ok &= c != 0;
        uint32_t y = (uint32_t)e;
        memcpy(s->out + s->i, &y, 4);
        s->i += c;
        w >>= b;
        used += b;
    }
    s->bitpos += used;
    return ok;
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

IC_CLONES
int ic_huffman_decode(ic_huffman_block *blocks, size_t n) {
    for (size_t b = 0; b < n; b += 2) {
        ic_state a = {blocks[b].payload, blocks[b].length, 0, 0, blocks[b].count, blocks[b].multi, blocks[b].out};
        if (b + 1 < n) {
            ic_state c = {blocks[b + 1].payload, blocks[b + 1].length, 0, 0, blocks[b + 1].count, blocks[b + 1].multi, blocks[b + 1].out};
            while (ic_fast_ok(&a) && ic_fast_ok(&c)) {
                if (!(ic_fast_step(&a) & ic_fast_step(&c))) return 1;
            }
            while (ic_fast_ok(&c)) if (!ic_fast_step(&c)) return 1;
            if (ic_tail(&c, blocks[b + 1].single)) return 1;
            blocks[b + 1].bits = c.bitpos;
        }
        while (ic_fast_ok(&a)) if (!ic_fast_step(&a)) return 1;
        if (ic_tail(&a, blocks[b].single)) return 1;
        blocks[b].bits = a.bitpos;
    }
    return 0;
}
