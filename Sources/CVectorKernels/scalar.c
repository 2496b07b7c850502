#include "CVectorKernels.h"
#include "kernels_internal.h"
#include <math.h>

float quiver_dot_f32_scalar(const float *a, const float *b, size_t dim) {
    float sum = 0.0f;
    for (size_t i = 0; i < dim; i++) sum += a[i] * b[i];
    return sum;
}

float quiver_l2sq_f32_scalar(const float *a, const float *b, size_t dim) {
    float sum = 0.0f;
    for (size_t i = 0; i < dim; i++) {
        float d = a[i] - b[i];
        sum += d * d;
    }
    return sum;
}

float quiver_l1_f32_scalar(const float *a, const float *b, size_t dim) {
    float sum = 0.0f;
    for (size_t i = 0; i < dim; i++) sum += fabsf(a[i] - b[i]);
    return sum;
}

float quiver_normalize_f32(float *v, size_t dim) {
    float norm = sqrtf(quiver_dot_f32_scalar(v, v, dim));
    if (norm > 0.0f) {
        float inv = 1.0f / norm;
        for (size_t i = 0; i < dim; i++) v[i] *= inv;
    }
    return norm;
}
