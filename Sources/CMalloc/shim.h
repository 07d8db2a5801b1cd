// glibc extensions the Glibc Swift module does not export: malloc_trim, and sync_file_range (declared by fcntl.h
// only under _GNU_SOURCE, wrapped here).
#if defined(__GLIBC__) || defined(__linux__)
#include <malloc.h>
#include <fcntl.h>

extern int sync_file_range(int fd, __off64_t offset, __off64_t nbytes, unsigned int flags);

/// Starts writing back the dirty pages of [offset, offset + nbytes) of `fd` without waiting for them
/// (`SYNC_FILE_RANGE_WRITE`, value 2); a later fsync has less left to wait for. Returns 0 or −1 (errno).
static inline int ingot_start_writeback(int fd, __off64_t offset, __off64_t nbytes) {
    return sync_file_range(fd, offset, nbytes, 2);
}
#endif
