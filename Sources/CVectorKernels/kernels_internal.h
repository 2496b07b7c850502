#ifndef QUIVER_KERNELS_INTERNAL_H
#define QUIVER_KERNELS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "CVectorKernels.h"

/// Half-precision bits to float, for the scalar variants.
float quiver_f16_to_f32(uint16_t h);

float quiver_dot_f32_scalar(const float *a, const float *b, size_t dim);
float quiver_l2sq_f32_scalar(const float *a, const float *b, size_t dim);
float quiver_l1_f32_scalar(const float *a, const float *b, size_t dim);
float quiver_dot_f16_scalar(const float *q, const uint16_t *v, size_t dim);
float quiver_l2sq_f16_scalar(const float *q, const uint16_t *v, size_t dim);
float quiver_l1_f16_scalar(const float *q, const uint16_t *v, size_t dim);
float quiver_dot_u8_scalar(const float *q, const uint8_t *v, size_t dim);
float quiver_l2sq_u8_scalar(const float *q, const uint8_t *v, size_t dim);
float quiver_l1_u8_scalar(const float *q, const uint8_t *v, size_t dim);
int32_t quiver_dot_u8s8_scalar(const uint8_t *codes, const int8_t *query, size_t n);
uint32_t quiver_sad_u8_scalar(const uint8_t *a, const uint8_t *b, size_t n);
uint32_t quiver_hamming_scalar(const uint64_t *a, const uint64_t *b, size_t words);

/// Defines `quiver_maxsim_f32_<isa>` over that instruction set's float kernels (defined in the
/// same file, so they inline), with the function attributes `attributes`.
#define QUIVER_MAXSIM(isa, attributes)                                                                          \
    attributes float quiver_maxsim_f32_##isa(quiver_metric metric, const float *query, size_t query_rows,       \
                                             const float *points, size_t rows, size_t dim) {                    \
        if (rows == 0) return __builtin_inff();                                                                \
        float total = 0;                                                                                        \
        for (size_t i = 0; i < query_rows; i++) {                                                               \
            const float *q = query + i * dim;                                                                   \
            float best = __builtin_inff();                                                                     \
            for (size_t j = 0; j < rows; j++) {                                                                 \
                const float *p = points + j * dim;                                                              \
                float d = metric == QUIVER_METRIC_DOT    ? -quiver_dot_f32_##isa(q, p, dim)                     \
                          : metric == QUIVER_METRIC_L2SQ ? quiver_l2sq_f32_##isa(q, p, dim)                     \
                                                         : quiver_l1_f32_##isa(q, p, dim);                      \
                if (d < best) best = d;                                                                         \
            }                                                                                                   \
            total += best;                                                                                      \
        }                                                                                                       \
        return total;                                                                                           \
    }

float quiver_maxsim_f32_scalar(quiver_metric metric, const float *query, size_t query_rows, const float *points, size_t rows, size_t dim);

#if defined(__x86_64__)
float quiver_maxsim_f32_avx2(quiver_metric metric, const float *query, size_t query_rows, const float *points, size_t rows, size_t dim);
float quiver_maxsim_f32_avx512(quiver_metric metric, const float *query, size_t query_rows, const float *points, size_t rows, size_t dim);
float quiver_dot_f32_avx2(const float *a, const float *b, size_t dim);
float quiver_l2sq_f32_avx2(const float *a, const float *b, size_t dim);
float quiver_l1_f32_avx2(const float *a, const float *b, size_t dim);
float quiver_dot_f32_avx512(const float *a, const float *b, size_t dim);
float quiver_l2sq_f32_avx512(const float *a, const float *b, size_t dim);
float quiver_l1_f32_avx512(const float *a, const float *b, size_t dim);
float quiver_dot_f16_avx2(const float *q, const uint16_t *v, size_t dim);
float quiver_l2sq_f16_avx2(const float *q, const uint16_t *v, size_t dim);
float quiver_l1_f16_avx2(const float *q, const uint16_t *v, size_t dim);
float quiver_dot_u8_avx2(const float *q, const uint8_t *v, size_t dim);
float quiver_l2sq_u8_avx2(const float *q, const uint8_t *v, size_t dim);
float quiver_l1_u8_avx2(const float *q, const uint8_t *v, size_t dim);
int32_t quiver_dot_u8s8_avx2(const uint8_t *codes, const int8_t *query, size_t n);
uint32_t quiver_sad_u8_avx2(const uint8_t *a, const uint8_t *b, size_t n);
uint32_t quiver_hamming_avx2(const uint64_t *a, const uint64_t *b, size_t words);
float quiver_dot_f16_avx512(const float *q, const uint16_t *v, size_t dim);
float quiver_l2sq_f16_avx512(const float *q, const uint16_t *v, size_t dim);
float quiver_l1_f16_avx512(const float *q, const uint16_t *v, size_t dim);
float quiver_dot_u8_avx512(const float *q, const uint8_t *v, size_t dim);
float quiver_l2sq_u8_avx512(const float *q, const uint8_t *v, size_t dim);
float quiver_l1_u8_avx512(const float *q, const uint8_t *v, size_t dim);
int32_t quiver_dot_u8s8_avx512(const uint8_t *codes, const int8_t *query, size_t n);
uint32_t quiver_sad_u8_avx512(const uint8_t *a, const uint8_t *b, size_t n);
uint32_t quiver_hamming_avx512(const uint64_t *a, const uint64_t *b, size_t words);
int32_t quiver_dot_u8s8_vnni(const uint8_t *codes, const int8_t *query, size_t n);
#endif

#if defined(__aarch64__)
float quiver_maxsim_f32_neon(quiver_metric metric, const float *query, size_t query_rows, const float *points, size_t rows, size_t dim);
float quiver_dot_f32_neon(const float *a, const float *b, size_t dim);
float quiver_l2sq_f32_neon(const float *a, const float *b, size_t dim);
float quiver_l1_f32_neon(const float *a, const float *b, size_t dim);
#endif

#endif
