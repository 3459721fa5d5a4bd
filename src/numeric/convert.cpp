// Bulk conversions: F16C at ISA level avx2 and up (run-time check, common/cpu_isa.hpp), portable loops otherwise.
#include "numeric/convert.hpp"

#include <immintrin.h>

#include "common/cpu_isa.hpp"
#include "numeric/half.hpp"

namespace gmmav::numeric {
namespace {

__attribute__((target("avx2,f16c"))) void half_to_float_f16c(const std::uint16_t* src, float* dst, std::size_t n) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
  }
  for (; i < n; ++i) dst[i] = half_to_float(src[i]);
}

__attribute__((target("avx2,f16c"))) void float_to_half_f16c(const float* src, std::uint16_t* dst, std::size_t n) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 f = _mm256_loadu_ps(src + i);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), _mm256_cvtps_ph(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  for (; i < n; ++i) dst[i] = float_to_half(src[i]);
}

// numeric::float_to_bf16, 8 at a time (the same integer rounding, the same quiet NaN).
__attribute__((target("avx2"))) void float_to_bf16_avx2(const float* src, std::uint16_t* dst, std::size_t n) {
  const __m256i abs_mask = _mm256_set1_epi32(0x7FFFFFFF), inf = _mm256_set1_epi32(0x7F800000);
  const __m256i bias = _mm256_set1_epi32(0x7FFF), one = _mm256_set1_epi32(1), quiet = _mm256_set1_epi32(0x40);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i u = _mm256_castps_si256(_mm256_loadu_ps(src + i));
    const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, abs_mask), inf);  // both sides < 2^31: signed is fine
    const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), one);
    const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, bias), odd), 16);
    const __m256i quieted = _mm256_or_si256(_mm256_srli_epi32(u, 16), quiet);
    const __m256i r = _mm256_blendv_epi8(rounded, quieted, nan);                       // 32-bit lanes holding 16-bit values
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0x08);  // lanes 0..3 | 4..7
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), _mm256_castsi256_si128(packed));
  }
  for (; i < n; ++i) dst[i] = float_to_bf16(src[i]);
}

}  // namespace

// F16C and AVX2 come together in every level from avx2 up (common/cpu_isa.hpp: the host's, capped by GMMAV_MAX_CPU_ISA).
bool has_f16c() { return cpu_isa() >= CpuIsa::avx2; }

void to_float(DType t, const std::uint16_t* src, float* dst, std::size_t n) {
  if (t == DType::bf16) {
    for (std::size_t i = 0; i < n; ++i) dst[i] = float_of(static_cast<std::uint32_t>(src[i]) << 16);
  } else if (has_f16c()) {
    half_to_float_f16c(src, dst, n);
  } else {
    for (std::size_t i = 0; i < n; ++i) dst[i] = half_to_float(src[i]);
  }
}

void from_float(DType t, const float* src, std::uint16_t* dst, std::size_t n) {
  if (t == DType::bf16) {
    if (has_f16c()) return float_to_bf16_avx2(src, dst, n);  // has_f16c() implies AVX2
    for (std::size_t i = 0; i < n; ++i) dst[i] = float_to_bf16(src[i]);
  } else if (has_f16c()) {
    float_to_half_f16c(src, dst, n);
  } else {
    for (std::size_t i = 0; i < n; ++i) dst[i] = float_to_half(src[i]);
  }
}

}  // namespace gmmav::numeric
