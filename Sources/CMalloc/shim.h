// glibc extensions the Glibc Swift module does not export: malloc_trim, sync_file_range and O_DIRECT (declared by
// fcntl.h only under _GNU_SOURCE, wrapped here).
#if defined(__GLIBC__) || defined(__linux__)
#include <malloc.h>
#include <fcntl.h>

extern int sync_file_range(int fd, __off64_t offset, __off64_t nbytes, unsigned int flags);

/// Starts writing back the dirty pages of [offset, offset + nbytes) of `fd` without waiting for them
/// (`SYNC_FILE_RANGE_WRITE`, value 2); a later fsync has less left to wait for. Returns 0 or −1 (errno).
static inline int ingot_start_writeback(int fd, __off64_t offset, __off64_t nbytes) {
    return sync_file_range(fd, offset, nbytes, 2);
}

/// `O_DIRECT` (defined by fcntl.h only under _GNU_SOURCE; its value differs between architectures).
static inline int ingot_o_direct(void) {
#if defined(O_DIRECT)
    return O_DIRECT;
#elif defined(__O_DIRECT)
    return __O_DIRECT;
#else
    return 0;
#endif
}
#endif
