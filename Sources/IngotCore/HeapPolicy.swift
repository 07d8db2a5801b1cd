#if canImport(Glibc)
import CMalloc
#endif

/// How glibc's allocator serves Ingot's large buffers; set once by the `ingot` executable before any work.
///
/// The forward pass allocates and frees the same activation sizes over and over (every linear's output, every
/// layer). Served by fresh `mmap`s, each of those arrays was page-faulted in on first touch and unmapped when freed:
/// a quarter of `eval`'s wall time went to the kernel clearing and mapping pages. Served from the heap, a freed
/// array's pages are reused by the next one of its size.
///
/// Buffers from `reuseLimit` up still go straight to `mmap` and back to the kernel when freed: the weights of large
/// models (hundreds of MB per tensor) would otherwise stay in the heap, fragmented, while a layer streams past.
/// Freed heap memory is not handed back at every `free` (glibc's default trim threshold is 128 KiB, which would
/// unmap the top of the heap after nearly every layer-sized buffer); stages that stream layers return it with
/// `HeapTrimmer.trim()` between layers, and writers every 128 MB written. Streaming AWQ of a 2.4 GB synthetic MoE:
/// 139 s and 501 MB peak anonymous memory, against 251 s and 362 MB with every buffer from 1 MiB up mapped alone.
public enum HeapPolicy {
    /// Requests of at least this many bytes are mmap'd on their own.
    public static let reuseLimit = 256 << 20
    /// Free memory at the top of the heap above this is returned to the kernel.
    public static let trimThreshold = 1 << 30

    /// Applies the thresholds above (glibc only; elsewhere nothing). Setting them also stops glibc's adaptive
    /// threshold, which moved with each freed buffer and made memory use depend on the order of allocations.
    public static func install() {
        #if canImport(Glibc)
        _ = mallopt(M_MMAP_THRESHOLD, Int32(reuseLimit))
        _ = mallopt(M_TRIM_THRESHOLD, Int32(trimThreshold))
        #endif
    }
}
