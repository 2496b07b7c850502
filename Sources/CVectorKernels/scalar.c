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

float quiver_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff, bits;
    if (exponent == 0x1f) {
        bits = sign | 0x7f800000 | (mantissa << 13);
    } else if (exponent != 0) {
        bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
    } else if (mantissa == 0) {
        bits = sign;
    } else {
        // Subnormal: normalise.
        exponent = 113;
        while (!(mantissa & 0x400)) { mantissa <<= 1; exponent--; }
        bits = sign | (exponent << 23) | ((mantissa & 0x3ff) << 13);
    }
    float f;
    __builtin_memcpy(&f, &bits, 4);
    return f;
}

float quiver_dot_f16_scalar(const float *q, const uint16_t *v, size_t dim) {
    float sum = 0.0f;
    for (size_t i = 0; i < dim; i++) sum += q[i] * quiver_f16_to_f32(v[i]);
    return sum;
}

float quiver_l2sq_f16_scalar(const float *q, const uint16_t *v, size_t dim) {
    float sum = 0.0f;
    for (size_t i = 0; i < dim; i++) {
        float d = q[i] - quiver_f16_to_f32(v[i]);
        sum += d * d;
    }
    return sum;
}

float quiver_l1_f16_scalar(const float *q, const uint16_t *v, size_t dim) {
    float sum = 0.0f;
    for (size_t i = 0; i < dim; i++) sum += fabsf(q[i] - quiver_f16_to_f32(v[i]));
    return sum;
}

float quiver_dot_u8_scalar(const float *q, const uint8_t *v, size_t dim) {
    float sum = 0.0f;
    for (size_t i = 0; i < dim; i++) sum += q[i] * (float)v[i];
    return sum;
}

float quiver_l2sq_u8_scalar(const float *q, const uint8_t *v, size_t dim) {
    float sum = 0.0f;
    for (size_t i = 0; i < dim; i++) {
        float d = q[i] - (float)v[i];
        sum += d * d;
    }
    return sum;
}

float quiver_l1_u8_scalar(const float *q, const uint8_t *v, size_t dim) {
    float sum = 0.0f;
    for (size_t i = 0; i < dim; i++) sum += fabsf(q[i] - (float)v[i]);
    return sum;
}

int32_t quiver_dot_u8s8_scalar(const uint8_t *codes, const int8_t *query, size_t n) {
    int32_t sum = 0;
    for (size_t i = 0; i < n; i++) sum += (int32_t)codes[i] * (int32_t)query[i];
    return sum;
}

uint32_t quiver_sad_u8_scalar(const uint8_t *a, const uint8_t *b, size_t n) {
    uint32_t sum = 0;
    for (size_t i = 0; i < n; i++) sum += a[i] > b[i] ? a[i] - b[i] : b[i] - a[i];
    return sum;
}

uint32_t quiver_hamming_scalar(const uint64_t *a, const uint64_t *b, size_t words) {
    uint32_t sum = 0;
    for (size_t i = 0; i < words; i++) sum += (uint32_t)__builtin_popcountll(a[i] ^ b[i]);
    return sum;
}

QUIVER_MAXSIM(scalar, )
