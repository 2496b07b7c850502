// NEON variants (arm64 always has NEON).
#if defined(__aarch64__)
#include "kernels_internal.h"
#include <arm_neon.h>

float quiver_dot_f32_neon(const float *a, const float *b, size_t dim) {
    float32x4_t s0 = vdupq_n_f32(0), s1 = vdupq_n_f32(0);
    size_t i = 0;
    for (; i + 8 <= dim; i += 8) {
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
        s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
    }
    float sum = vaddvq_f32(vaddq_f32(s0, s1));
    for (; i < dim; i++) sum += a[i] * b[i];
    return sum;
}

float quiver_l2sq_f32_neon(const float *a, const float *b, size_t dim) {
    float32x4_t s0 = vdupq_n_f32(0), s1 = vdupq_n_f32(0);
    size_t i = 0;
    for (; i + 8 <= dim; i += 8) {
        float32x4_t d0 = vsubq_f32(vld1q_f32(a + i), vld1q_f32(b + i));
        float32x4_t d1 = vsubq_f32(vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
        s0 = vfmaq_f32(s0, d0, d0);
        s1 = vfmaq_f32(s1, d1, d1);
    }
    float sum = vaddvq_f32(vaddq_f32(s0, s1));
    for (; i < dim; i++) {
        float d = a[i] - b[i];
        sum += d * d;
    }
    return sum;
}

float quiver_l1_f32_neon(const float *a, const float *b, size_t dim) {
    float32x4_t s0 = vdupq_n_f32(0);
    size_t i = 0;
    for (; i + 4 <= dim; i += 4) s0 = vaddq_f32(s0, vabdq_f32(vld1q_f32(a + i), vld1q_f32(b + i)));
    float sum = vaddvq_f32(s0);
    for (; i < dim; i++) {
        float d = a[i] - b[i];
        sum += d < 0 ? -d : d;
    }
    return sum;
}

QUIVER_MAXSIM(neon, )
#endif
