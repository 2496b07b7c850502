#ifndef QUIVER_KERNELS_INTERNAL_H
#define QUIVER_KERNELS_INTERNAL_H

#include <stddef.h>

float quiver_dot_f32_scalar(const float *a, const float *b, size_t dim);
float quiver_l2sq_f32_scalar(const float *a, const float *b, size_t dim);
float quiver_l1_f32_scalar(const float *a, const float *b, size_t dim);

#if defined(__x86_64__)
float quiver_dot_f32_avx2(const float *a, const float *b, size_t dim);
float quiver_l2sq_f32_avx2(const float *a, const float *b, size_t dim);
float quiver_l1_f32_avx2(const float *a, const float *b, size_t dim);
float quiver_dot_f32_avx512(const float *a, const float *b, size_t dim);
float quiver_l2sq_f32_avx512(const float *a, const float *b, size_t dim);
float quiver_l1_f32_avx512(const float *a, const float *b, size_t dim);
#endif

#if defined(__aarch64__)
float quiver_dot_f32_neon(const float *a, const float *b, size_t dim);
float quiver_l2sq_f32_neon(const float *a, const float *b, size_t dim);
float quiver_l1_f32_neon(const float *a, const float *b, size_t dim);
#endif

#endif
