// AVX2+FMA and AVX-512 variants. Each function carries its own target attribute, so the file
// builds without global -m flags and the binary runs on any x86-64 (dispatch.c picks the variant).
#if defined(__x86_64__)
#include "kernels_internal.h"
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma,f16c,popcnt")))
#define AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma,f16c,popcnt")))
#define VNNI __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,avx512vnni,avx2,fma,f16c,popcnt")))

AVX2 static inline float hsum256(__m256 v) {
    __m128 sum = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
    sum = _mm_add_ss(sum, _mm_movehdup_ps(sum));
    return _mm_cvtss_f32(sum);
}

AVX2 float quiver_dot_f32_avx2(const float *a, const float *b, size_t dim) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= dim; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float sum = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < dim; i++) sum += a[i] * b[i];
    return sum;
}

AVX2 float quiver_l2sq_f32_avx2(const float *a, const float *b, size_t dim) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
        __m256 d2 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16));
        __m256 d3 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24));
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        s1 = _mm256_fmadd_ps(d1, d1, s1);
        s2 = _mm256_fmadd_ps(d2, d2, s2);
        s3 = _mm256_fmadd_ps(d3, d3, s3);
    }
    for (; i + 8 <= dim; i += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        s0 = _mm256_fmadd_ps(d, d, s0);
    }
    float sum = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < dim; i++) {
        float d = a[i] - b[i];
        sum += d * d;
    }
    return sum;
}

AVX2 float quiver_l1_f32_avx2(const float *a, const float *b, size_t dim) {
    const __m256 magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= dim; i += 16) {
        s0 = _mm256_add_ps(s0, _mm256_and_ps(magnitude, _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i))));
        s1 = _mm256_add_ps(s1, _mm256_and_ps(magnitude, _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8))));
    }
    for (; i + 8 <= dim; i += 8) {
        s0 = _mm256_add_ps(s0, _mm256_and_ps(magnitude, _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i))));
    }
    float sum = hsum256(_mm256_add_ps(s0, s1));
    for (; i < dim; i++) {
        float d = a[i] - b[i];
        sum += d < 0 ? -d : d;
    }
    return sum;
}

/// Lanes [0, n) of a 16-lane register (n < 16): for the tail of a vector.
AVX512 static inline __mmask16 tail_mask(size_t n) { return (__mmask16)((1u << n) - 1u); }

AVX512 float quiver_dot_f32_avx512(const float *a, const float *b, size_t dim) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    for (; i + 16 <= dim; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    if (i < dim) {
        __mmask16 m = tail_mask(dim - i);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

AVX512 float quiver_l2sq_f32_avx512(const float *a, const float *b, size_t dim) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
        s0 = _mm512_fmadd_ps(d0, d0, s0);
        s1 = _mm512_fmadd_ps(d1, d1, s1);
    }
    for (; i + 16 <= dim; i += 16) {
        __m512 d = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        s0 = _mm512_fmadd_ps(d, d, s0);
    }
    if (i < dim) {
        __mmask16 m = tail_mask(dim - i);
        __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
        s1 = _mm512_fmadd_ps(d, d, s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

AVX512 float quiver_l1_f32_avx512(const float *a, const float *b, size_t dim) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        s0 = _mm512_add_ps(s0, _mm512_abs_ps(_mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i))));
        s1 = _mm512_add_ps(s1, _mm512_abs_ps(_mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16))));
    }
    for (; i + 16 <= dim; i += 16) s0 = _mm512_add_ps(s0, _mm512_abs_ps(_mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i))));
    if (i < dim) {
        __mmask16 m = tail_mask(dim - i);
        s1 = _mm512_add_ps(s1, _mm512_abs_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i))));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

// MARK: float16 and uint8 stored vectors, 8 (AVX2) or 16 (AVX-512) elements per step.

#define LOAD_F16_256(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))
#define LOAD_U8_256(p) _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p))))

#define AVX2_MIXED(name, T, LOAD, SCALAR_ELEMENT)                                                  \
    AVX2 float quiver_dot_##name##_avx2(const float *q, const T *v, size_t dim) {                 \
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();                                 \
        size_t i = 0;                                                                              \
        for (; i + 16 <= dim; i += 16) {                                                           \
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), LOAD(v + i), s0);                         \
            s1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), LOAD(v + i + 8), s1);                 \
        }                                                                                          \
        for (; i + 8 <= dim; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), LOAD(v + i), s0); \
        float sum = hsum256(_mm256_add_ps(s0, s1));                                                \
        for (; i < dim; i++) sum += q[i] * SCALAR_ELEMENT(v[i]);                                   \
        return sum;                                                                                \
    }                                                                                              \
    AVX2 float quiver_l2sq_##name##_avx2(const float *q, const T *v, size_t dim) {                \
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();                                 \
        size_t i = 0;                                                                              \
        for (; i + 16 <= dim; i += 16) {                                                           \
            __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(q + i), LOAD(v + i));                        \
            __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(q + i + 8), LOAD(v + i + 8));                \
            s0 = _mm256_fmadd_ps(d0, d0, s0);                                                      \
            s1 = _mm256_fmadd_ps(d1, d1, s1);                                                      \
        }                                                                                          \
        for (; i + 8 <= dim; i += 8) {                                                             \
            __m256 d = _mm256_sub_ps(_mm256_loadu_ps(q + i), LOAD(v + i));                         \
            s0 = _mm256_fmadd_ps(d, d, s0);                                                        \
        }                                                                                          \
        float sum = hsum256(_mm256_add_ps(s0, s1));                                                \
        for (; i < dim; i++) {                                                                     \
            float d = q[i] - SCALAR_ELEMENT(v[i]);                                                 \
            sum += d * d;                                                                          \
        }                                                                                          \
        return sum;                                                                                \
    }                                                                                              \
    AVX2 float quiver_l1_##name##_avx2(const float *q, const T *v, size_t dim) {                  \
        const __m256 magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));               \
        __m256 s0 = _mm256_setzero_ps();                                                           \
        size_t i = 0;                                                                              \
        for (; i + 8 <= dim; i += 8)                                                               \
            s0 = _mm256_add_ps(s0, _mm256_and_ps(magnitude, _mm256_sub_ps(_mm256_loadu_ps(q + i), LOAD(v + i)))); \
        float sum = hsum256(s0);                                                                   \
        for (; i < dim; i++) {                                                                     \
            float d = q[i] - SCALAR_ELEMENT(v[i]);                                                 \
            sum += d < 0 ? -d : d;                                                                 \
        }                                                                                          \
        return sum;                                                                                \
    }

#define U8_ELEMENT(x) ((float)(x))
AVX2_MIXED(f16, uint16_t, LOAD_F16_256, quiver_f16_to_f32)
AVX2_MIXED(u8, uint8_t, LOAD_U8_256, U8_ELEMENT)

#define LOAD_F16_512(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p)))
#define MASK_F16_512(m, p) _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p))
#define LOAD_U8_512(p) _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(p))))
#define MASK_U8_512(m, p) _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, p)))

#define AVX512_MIXED(name, T, LOAD, MASKED)                                                        \
    AVX512 float quiver_dot_##name##_avx512(const float *q, const T *v, size_t dim) {             \
        __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();                                 \
        size_t i = 0;                                                                              \
        for (; i + 32 <= dim; i += 32) {                                                           \
            s0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), LOAD(v + i), s0);                         \
            s1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 16), LOAD(v + i + 16), s1);               \
        }                                                                                          \
        for (; i + 16 <= dim; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), LOAD(v + i), s0); \
        if (i < dim) {                                                                             \
            __mmask16 m = tail_mask(dim - i);                                                      \
            s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + i), MASKED(m, v + i), s1);           \
        }                                                                                          \
        return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));                                        \
    }                                                                                              \
    AVX512 float quiver_l2sq_##name##_avx512(const float *q, const T *v, size_t dim) {            \
        __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();                                 \
        size_t i = 0;                                                                              \
        for (; i + 16 <= dim; i += 16) {                                                           \
            __m512 d = _mm512_sub_ps(_mm512_loadu_ps(q + i), LOAD(v + i));                         \
            s0 = _mm512_fmadd_ps(d, d, s0);                                                        \
        }                                                                                          \
        if (i < dim) {                                                                             \
            __mmask16 m = tail_mask(dim - i);                                                      \
            __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, q + i), MASKED(m, v + i));           \
            s1 = _mm512_fmadd_ps(d, d, s1);                                                        \
        }                                                                                          \
        return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));                                        \
    }                                                                                              \
    AVX512 float quiver_l1_##name##_avx512(const float *q, const T *v, size_t dim) {              \
        __m512 s0 = _mm512_setzero_ps();                                                           \
        size_t i = 0;                                                                              \
        for (; i + 16 <= dim; i += 16) s0 = _mm512_add_ps(s0, _mm512_abs_ps(_mm512_sub_ps(_mm512_loadu_ps(q + i), LOAD(v + i)))); \
        if (i < dim) {                                                                             \
            __mmask16 m = tail_mask(dim - i);                                                      \
            s0 = _mm512_add_ps(s0, _mm512_abs_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, q + i), MASKED(m, v + i)))); \
        }                                                                                          \
        return _mm512_reduce_add_ps(s0);                                                           \
    }

AVX512_MIXED(f16, uint16_t, LOAD_F16_512, MASK_F16_512)
AVX512_MIXED(u8, uint8_t, LOAD_U8_512, MASK_U8_512)

// MARK: 8-bit codes and bit strings.

AVX2 static inline int32_t hsum256_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

AVX2 int32_t quiver_dot_u8s8_avx2(const uint8_t *codes, const int8_t *query, size_t n) {
    __m256i acc = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i a = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(codes + i)));
        __m256i b = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(query + i)));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
    }
    int32_t sum = hsum256_epi32(acc);
    for (; i < n; i++) sum += (int32_t)codes[i] * (int32_t)query[i];
    return sum;
}

AVX2 uint32_t quiver_sad_u8_avx2(const uint8_t *a, const uint8_t *b, size_t n) {
    __m256i acc = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        acc = _mm256_add_epi64(acc, _mm256_sad_epu8(_mm256_loadu_si256((const __m256i *)(a + i)), _mm256_loadu_si256((const __m256i *)(b + i))));
    }
    uint64_t lanes[4];
    _mm256_storeu_si256((__m256i *)lanes, acc);
    uint32_t sum = (uint32_t)(lanes[0] + lanes[1] + lanes[2] + lanes[3]);
    for (; i < n; i++) sum += a[i] > b[i] ? a[i] - b[i] : b[i] - a[i];
    return sum;
}

AVX2 uint32_t quiver_hamming_avx2(const uint64_t *a, const uint64_t *b, size_t words) {
    uint64_t s0 = 0, s1 = 0;
    size_t i = 0;
    for (; i + 2 <= words; i += 2) {
        s0 += (uint64_t)_mm_popcnt_u64(a[i] ^ b[i]);
        s1 += (uint64_t)_mm_popcnt_u64(a[i + 1] ^ b[i + 1]);
    }
    if (i < words) s0 += (uint64_t)_mm_popcnt_u64(a[i] ^ b[i]);
    return (uint32_t)(s0 + s1);
}

AVX512 int32_t quiver_dot_u8s8_avx512(const uint8_t *codes, const int8_t *query, size_t n) {
    __m512i acc = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512i a = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(codes + i)));
        __m512i b = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(query + i)));
        acc = _mm512_add_epi32(acc, _mm512_madd_epi16(a, b));
    }
    if (i < n) {
        __mmask32 m = (__mmask32)((1ull << (n - i)) - 1);
        __m512i a = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, codes + i));
        __m512i b = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, query + i));
        acc = _mm512_add_epi32(acc, _mm512_madd_epi16(a, b));
    }
    return _mm512_reduce_add_epi32(acc);
}

/// One instruction multiplies 64 unsigned codes by 64 signed query bytes and adds each group of
/// four products into a 32-bit lane.
VNNI int32_t quiver_dot_u8s8_vnni(const uint8_t *codes, const int8_t *query, size_t n) {
    __m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 128 <= n; i += 128) {
        acc0 = _mm512_dpbusd_epi32(acc0, _mm512_loadu_si512(codes + i), _mm512_loadu_si512(query + i));
        acc1 = _mm512_dpbusd_epi32(acc1, _mm512_loadu_si512(codes + i + 64), _mm512_loadu_si512(query + i + 64));
    }
    for (; i + 64 <= n; i += 64) acc0 = _mm512_dpbusd_epi32(acc0, _mm512_loadu_si512(codes + i), _mm512_loadu_si512(query + i));
    if (i < n) {
        __mmask64 m = n - i == 64 ? ~0ull : ((1ull << (n - i)) - 1);
        acc1 = _mm512_dpbusd_epi32(acc1, _mm512_maskz_loadu_epi8(m, codes + i), _mm512_maskz_loadu_epi8(m, query + i));
    }
    return _mm512_reduce_add_epi32(_mm512_add_epi32(acc0, acc1));
}

AVX512 uint32_t quiver_sad_u8_avx512(const uint8_t *a, const uint8_t *b, size_t n) {
    __m512i acc = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 64 <= n; i += 64) acc = _mm512_add_epi64(acc, _mm512_sad_epu8(_mm512_loadu_si512(a + i), _mm512_loadu_si512(b + i)));
    if (i < n) {
        __mmask64 m = (1ull << (n - i)) - 1;
        acc = _mm512_add_epi64(acc, _mm512_sad_epu8(_mm512_maskz_loadu_epi8(m, a + i), _mm512_maskz_loadu_epi8(m, b + i)));
    }
    return (uint32_t)_mm512_reduce_add_epi64(acc);
}

AVX512 uint32_t quiver_hamming_avx512(const uint64_t *a, const uint64_t *b, size_t words) {
    return quiver_hamming_avx2(a, b, words);
}

QUIVER_MAXSIM(avx2, AVX2)
QUIVER_MAXSIM(avx512, AVX512)
#endif
