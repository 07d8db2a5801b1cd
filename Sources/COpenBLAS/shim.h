#include <cblas.h>
/* LAPACK (exported by OpenBLAS): Cholesky factorization and inverse of a symmetric positive-definite matrix. */
void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info);
void dpotri_(const char *uplo, const int *n, double *a, const int *lda, int *info);
