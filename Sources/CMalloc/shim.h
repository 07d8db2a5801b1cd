// glibc's malloc extensions (malloc_trim), which the Glibc Swift module does not export.
#if defined(__GLIBC__) || defined(__linux__)
#include <malloc.h>
#endif
