#ifndef QUIVER_CVECTORKERNELS_H
#define QUIVER_CVECTORKERNELS_H

#include <stddef.h>

/// Distance kernels over float32 vectors of `dim` elements. These are the scalar reference
/// implementations; SIMD variants (AVX2+FMA, AVX-512, NEON) with one-time CPU dispatch are added
/// beside them and tested against them.

/// Sum of a[i] * b[i].
float quiver_dot_f32(const float *a, const float *b, size_t dim);
/// Sum of (a[i] - b[i])^2 (squared Euclidean distance).
float quiver_l2sq_f32(const float *a, const float *b, size_t dim);
/// Sum of |a[i] - b[i]| (Manhattan distance).
float quiver_l1_f32(const float *a, const float *b, size_t dim);
/// Scales `v` in place to unit length; leaves an all-zero vector unchanged. Returns the old norm.
float quiver_normalize_f32(float *v, size_t dim);

#endif
