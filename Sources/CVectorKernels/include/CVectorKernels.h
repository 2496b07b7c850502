#ifndef QUIVER_CVECTORKERNELS_H
#define QUIVER_CVECTORKERNELS_H

#include <stddef.h>
#include <stdint.h>

/// Distance kernels over vectors of `dim` elements. Each exists as a scalar reference and as
/// SIMD variants (AVX2+FMA, AVX-512 on x86-64; NEON on arm64); the plain `quiver_*` entry points
/// use the best variant this CPU has, chosen once. Tests compare every variant with the scalar one.

/// Instruction sets with their own variants.
typedef enum {
    QUIVER_ISA_SCALAR = 0,
    QUIVER_ISA_AVX2 = 1,
    QUIVER_ISA_AVX512 = 2,
    QUIVER_ISA_NEON = 3,
    /// AVX-512 with VNNI: the int8 dot product in one instruction.
    QUIVER_ISA_AVX512_VNNI = 4,
    QUIVER_ISA_COUNT = 5
} quiver_isa;

/// Which distance a batch or multivector kernel computes.
typedef enum {
    QUIVER_METRIC_DOT = 0,
    QUIVER_METRIC_L2SQ = 1,
    QUIVER_METRIC_L1 = 2
} quiver_metric;

typedef float (*quiver_f32_kernel)(const float *a, const float *b, size_t dim);
/// A float32 query against a stored float16 vector (IEEE half bits).
typedef float (*quiver_f16_kernel)(const float *query, const uint16_t *v, size_t dim);
/// A float32 query against a stored uint8 vector (values 0...255).
typedef float (*quiver_u8_kernel)(const float *query, const uint8_t *v, size_t dim);

/// One instruction set's kernels.
typedef struct {
    /// Sum of a[i] * b[i].
    quiver_f32_kernel dot_f32;
    /// Sum of (a[i] - b[i])^2 (squared Euclidean distance).
    quiver_f32_kernel l2sq_f32;
    /// Sum of |a[i] - b[i]| (Manhattan distance).
    quiver_f32_kernel l1_f32;
    /// The same three with float16 stored vectors.
    quiver_f16_kernel dot_f16, l2sq_f16, l1_f16;
    /// The same three with uint8 stored vectors.
    quiver_u8_kernel dot_u8, l2sq_u8, l1_u8;
    /// Sum of codes[i] * query[i]: unsigned 8-bit codes against a signed 8-bit query (int8
    /// scalar quantization).
    int32_t (*dot_u8s8)(const uint8_t *codes, const int8_t *query, size_t n);
    /// Sum of |a[i] - b[i]| over 8-bit codes.
    uint32_t (*sad_u8)(const uint8_t *a, const uint8_t *b, size_t n);
    /// Number of differing bits of two bit strings of `words` 64-bit words (binary quantization).
    uint32_t (*hamming)(const uint64_t *a, const uint64_t *b, size_t words);
    /// Late interaction (`max_sim`) as a distance: for each of the `query_rows` rows of `query`,
    /// the smallest distance (the negated dot product for DOT) to any of the `rows` rows of
    /// `points`, summed in query row order; +infinity when `rows` is 0. Rows are `dim` floats,
    /// contiguous.
    float (*maxsim_f32)(quiver_metric metric, const float *query, size_t query_rows, const float *points, size_t rows, size_t dim);
} quiver_kernels;

/// The kernels of `isa`, or NULL when this CPU (or this build) lacks it.
const quiver_kernels *quiver_kernels_for(quiver_isa isa);
/// The instruction set the plain entry points use.
quiver_isa quiver_active_isa(void);
/// "scalar", "avx2", "avx512", "neon", "avx512vnni".
const char *quiver_isa_name(quiver_isa isa);

float quiver_dot_f32(const float *a, const float *b, size_t dim);
float quiver_l2sq_f32(const float *a, const float *b, size_t dim);
float quiver_l1_f32(const float *a, const float *b, size_t dim);
float quiver_maxsim_f32(quiver_metric metric, const float *query, size_t query_rows, const float *points, size_t rows, size_t dim);
/// The active variant's table (the quantization scorers call its entries directly).
const quiver_kernels *quiver_active_kernels(void);

/// Scores `query` against `count` vectors: `out[i]` = metric(query, base + offsets[i] * dim).
/// The vectors `QUIVER_SCAN_AHEAD` further on are prefetched while one is scored.
void quiver_score_batch_f32(quiver_metric metric, const float *query, const float *base, const uint32_t *offsets,
                            size_t count, size_t dim, float *out);

/// Scales `v` in place to unit length; leaves an all-zero vector unchanged. Returns the old norm.
float quiver_normalize_f32(float *v, size_t dim);

#endif

#ifndef QUIVER_SPINLOCK_H
#define QUIVER_SPINLOCK_H
/// Byte-sized spinlocks, one per graph node, for building an index from several threads.
static inline void quiver_spin_lock(uint8_t *lock) {
    while (__atomic_test_and_set(lock, __ATOMIC_ACQUIRE)) {
        while (__atomic_load_n(lock, __ATOMIC_RELAXED)) {
#if defined(__x86_64__)
            __builtin_ia32_pause();
#endif
        }
    }
}

static inline void quiver_spin_unlock(uint8_t *lock) { __atomic_clear(lock, __ATOMIC_RELEASE); }

/// Asks for the cache line at `p` ahead of use.
static inline void quiver_prefetch(const void *p) { __builtin_prefetch(p); }

/// How much of a vector a search asks for ahead of scoring it: all of it up to 1.5 KB, where the
/// hardware's own prefetching takes over. Measured on 100,000 points with 2 threads: asking for
/// a whole 128-d vector instead of its first line raised queries/s by a half; for 384-d vectors
/// the whole vector was a little faster than the first line; for 768-d the first 1.5 KB was as
/// fast as the first line or faster, the whole vector slower.
#define QUIVER_PREFETCH_MAX_BYTES 1536

/// Asks for the first `bytes` bytes at `p` (at most `QUIVER_PREFETCH_MAX_BYTES`) ahead of use,
/// one request per cache line they touch.
static inline void quiver_prefetch_bytes(const void *p, size_t bytes) {
    if (bytes > QUIVER_PREFETCH_MAX_BYTES) bytes = QUIVER_PREFETCH_MAX_BYTES;
    const char *end = (const char *)p + bytes;
    for (const char *line = (const char *)((uintptr_t)p & ~(uintptr_t)63); line < end; line += 64) __builtin_prefetch(line);
}

/// How many vectors ahead a scan of scattered vectors asks for them: far enough for several rows
/// to be on their way from memory while one is scored (1 ahead left a 1M-point scan of 2% of the
/// points a third slower).
#define QUIVER_SCAN_AHEAD 6

/// Sets the calling thread's nice value `steps` above the process's (at most 19), lowering its
/// scheduling weight, so that index builds yield the cores to request handling (Linux: per
/// thread; elsewhere nothing). Returns 0 or an errno.
int quiver_lower_thread_priority(int steps);

/// The calling thread's nice value (0 where threads have none of their own).
int quiver_thread_niceness(void);
#endif
