// Inner loops of the `.ingot` chunk codec (formats/ingot.md §4): byte planes, byte histograms and the canonical
// Huffman coder's bit packing and table-driven decoding. Plain C with no build flags (IngotFormats, which calls it,
// is a library product other packages may depend on); each loop is compiled twice (`target_clones`): for x86-64-v3
// (AVX2) and the baseline, and the loader picks the one the CPU runs. Every loop has a Swift reference it is tested
// against (`BytePlanes`, `Huffman` in IngotFormats).
#ifndef INGOT_CCODEC_H
#define INGOT_CCODEC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Splits n elements of `width` bytes (2 or 4) into planes: element i rotated left by one bit, its byte k at
/// dst[k·n + i].
void ic_planes_split(const uint8_t *src, size_t n, size_t width, uint8_t *dst);
/// Inverse of `ic_planes_split`: plane k is planes[k] (n bytes each), elements written to dst.
void ic_planes_join(const uint8_t *const *planes, size_t n, size_t width, uint8_t *dst);

/// counts[b] += occurrences of byte b in src[0..<n].
void ic_histogram(const uint8_t *src, size_t n, uint64_t counts[256]);

/// Packs the codes of src[0..<n] LSB-first (table[s] = code | length << 16, code bit-reversed, length ≤ 12) at
/// dst; returns the bytes written (the last one zero-padded). dst needs ceil(12·n / 8) + 8 bytes.
size_t ic_huffman_pack(const uint8_t *src, size_t n, const uint32_t table[256], uint8_t *dst);

/// Lookup tables of a canonical code of lengths ≤ 12 (`codes[s]` bit-reversed, as packed): single[p] =
/// symbol | length << 8 for the code starting the 12-bit window p (length 0: no code), multi[p] = up to four whole
/// codes in the window: bits in bits 0-7, count in bits 8-10, the symbols in bytes 4-7.
void ic_huffman_tables(const uint8_t lengths[256], const uint32_t codes[256], uint16_t single[4096], uint64_t multi[4096]);

/// One block to decode: `length` payload bytes, `count` symbols into `out`, with its tables.
typedef struct {
    const uint8_t *payload;
    size_t length;
    const uint16_t *single;
    const uint64_t *multi;
    uint8_t *out;
    size_t count;
    /// Out: bits consumed.
    size_t bits;
} ic_huffman_block;

/// Decodes the blocks, four at a time with their lookups interleaved (independent blocks keep four dependency
/// chains in flight). Never reads past a payload nor writes past `count` symbols. Returns 0, or 1 when a
/// block's bits are not a code of its table.
int ic_huffman_decode(ic_huffman_block *blocks, size_t n);

#ifdef __cplusplus
}
#endif

#endif
