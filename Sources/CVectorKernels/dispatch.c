// One-time choice of the kernels the plain entry points use.
#include "CVectorKernels.h"
#include "kernels_internal.h"

#define TABLE(f32, rest, u8s8)                                                                              \
    {quiver_dot_f32_##f32, quiver_l2sq_f32_##f32, quiver_l1_f32_##f32, quiver_dot_f16_##rest, quiver_l2sq_f16_##rest, \
     quiver_l1_f16_##rest, quiver_dot_u8_##rest, quiver_l2sq_u8_##rest, quiver_l1_u8_##rest, quiver_dot_u8s8_##u8s8,  \
     quiver_sad_u8_##rest, quiver_hamming_##rest, quiver_maxsim_f32_##f32}

static const quiver_kernels scalar_kernels = TABLE(scalar, scalar, scalar);
#if defined(__x86_64__)
static const quiver_kernels avx2_kernels = TABLE(avx2, avx2, avx2);
static const quiver_kernels avx512_kernels = TABLE(avx512, avx512, avx512);
static const quiver_kernels vnni_kernels = TABLE(avx512, avx512, vnni);
#endif
#if defined(__aarch64__)
// The 16-bit, 8-bit and bit-string kernels are scalar on arm64 (the compiler vectorises them).
static const quiver_kernels neon_kernels = TABLE(neon, scalar, scalar);
#endif

const quiver_kernels *quiver_kernels_for(quiver_isa isa) {
    switch (isa) {
    case QUIVER_ISA_SCALAR: return &scalar_kernels;
#if defined(__x86_64__)
    case QUIVER_ISA_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")
            && __builtin_cpu_supports("popcnt") ? &avx2_kernels : NULL;
    case QUIVER_ISA_AVX512:
        if (!quiver_kernels_for(QUIVER_ISA_AVX2)) return NULL;
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")
            && __builtin_cpu_supports("avx512bw") ? &avx512_kernels : NULL;
    case QUIVER_ISA_AVX512_VNNI:
        return quiver_kernels_for(QUIVER_ISA_AVX512) && __builtin_cpu_supports("avx512vnni") ? &vnni_kernels : NULL;
#endif
#if defined(__aarch64__)
    case QUIVER_ISA_NEON: return &neon_kernels;
#endif
    default: return NULL;
    }
}

static quiver_isa active_isa = QUIVER_ISA_SCALAR;
static const quiver_kernels *active = &scalar_kernels;

/// Runs before main: the best variant this CPU has.
__attribute__((constructor)) static void quiver_choose_kernels(void) {
    for (int isa = QUIVER_ISA_COUNT - 1; isa > QUIVER_ISA_SCALAR; isa--) {
        const quiver_kernels *kernels = quiver_kernels_for((quiver_isa)isa);
        if (kernels) {
            active = kernels;
            active_isa = (quiver_isa)isa;
            return;
        }
    }
}

quiver_isa quiver_active_isa(void) { return active_isa; }

const quiver_kernels *quiver_active_kernels(void) { return active; }

const char *quiver_isa_name(quiver_isa isa) {
    static const char *names[] = {"scalar", "avx2", "avx512", "neon", "avx512vnni"};
    return isa < QUIVER_ISA_COUNT ? names[isa] : "unknown";
}

float quiver_dot_f32(const float *a, const float *b, size_t dim) { return active->dot_f32(a, b, dim); }
float quiver_l2sq_f32(const float *a, const float *b, size_t dim) { return active->l2sq_f32(a, b, dim); }
float quiver_l1_f32(const float *a, const float *b, size_t dim) { return active->l1_f32(a, b, dim); }

float quiver_maxsim_f32(quiver_metric metric, const float *query, size_t query_rows, const float *points, size_t rows, size_t dim) {
    return active->maxsim_f32(metric, query, query_rows, points, rows, dim);
}

void quiver_score_batch_f32(quiver_metric metric, const float *query, const float *base, const uint32_t *offsets,
                            size_t count, size_t dim, float *out) {
    quiver_f32_kernel kernel = metric == QUIVER_METRIC_DOT ? active->dot_f32 : metric == QUIVER_METRIC_L2SQ ? active->l2sq_f32 : active->l1_f32;
    size_t bytes = dim * sizeof(float);
    for (size_t i = 0; i < count && i < QUIVER_SCAN_AHEAD; i++) quiver_prefetch_bytes(base + (size_t)offsets[i] * dim, bytes);
    for (size_t i = 0; i < count; i++) {
        if (i + QUIVER_SCAN_AHEAD < count) quiver_prefetch_bytes(base + (size_t)offsets[i + QUIVER_SCAN_AHEAD] * dim, bytes);
        out[i] = kernel(query, base + (size_t)offsets[i] * dim, dim);
    }
}
