// The chain kernel (chain_kernel.hpp). Blocking: a panel of kPanel output
// columns at a time; its weight slice, kChunk rows of k at a time (24 KiB of
// FP32, converted for kGroup panels at once), is used by every row of the
// tile; the FP32 sums of the panel live in a small buffer between chunks
// (stored and reloaded exactly, so the chain per element is unchanged).
#include "gemm/chain_kernel.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "numeric/convert.hpp"

namespace gmmav::gemm {
namespace {

constexpr std::int64_t kPanel = 24;   // output columns per panel: 3 AVX2 vectors
constexpr std::int64_t kChunk = 256;  // k per chunk: 256 x 24 floats = 24 KiB of converted weight per panel
constexpr std::int64_t kGroup = 8;    // panels converted together: each weight row is read 384
                                      // contiguous bytes at a time, not 48 (a row is often a page
                                      // apart from the next: 48-byte reads cost a TLB miss each)

// The converted weight slice: b[kk * kPanel + c] = W[k0 + kk][n0 + c] as FP32, zero beyond n.
void convert_slice(DType t, const std::uint16_t* w, std::int64_t k, std::int64_t n, bool trans, std::int64_t k0, std::int64_t kc,
                   std::int64_t n0, std::int64_t nc, float* b) {
  if (!trans) {
    for (std::int64_t kk = 0; kk < kc; ++kk) {
      numeric::to_float(t, w + (k0 + kk) * n + n0, b + kk * kPanel, static_cast<std::size_t>(nc));
      std::fill(b + kk * kPanel + nc, b + (kk + 1) * kPanel, 0.0f);
    }
    return;
  }
  thread_local std::vector<float> column;
  column.resize(static_cast<std::size_t>(kc));
  for (std::int64_t c = 0; c < kPanel; ++c) {
    if (c >= nc) {
      for (std::int64_t kk = 0; kk < kc; ++kk) b[kk * kPanel + c] = 0.0f;
      continue;
    }
    numeric::to_float(t, w + (n0 + c) * k + k0, column.data(), static_cast<std::size_t>(kc));  // row n0+c of W^T
    for (std::int64_t kk = 0; kk < kc; ++kk) b[kk * kPanel + c] = column[static_cast<std::size_t>(kk)];
  }
}

// convert_slice for the plain layout, 24 columns at a time with F16C / AVX2 shifts (exact conversions:
// the same values as numeric::to_float).
// One panel row: kPanel 16-bit values widened to FP32 (exact), 8 at a time.
__attribute__((target("avx2,f16c"), always_inline)) inline void widen_panel_row_avx2(DType t, const std::uint16_t* src,
                                                                                     float* dst) {
  for (int v = 0; v < 3; ++v) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 8 * v));
    const __m256 f = t == DType::f16 ? _mm256_cvtph_ps(h) : _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    _mm256_storeu_ps(dst + 8 * v, f);
  }
}

__attribute__((target("avx2,f16c"))) void convert_slice_avx2(DType t, const std::uint16_t* w, std::int64_t n, std::int64_t k0,
                                                             std::int64_t kc, std::int64_t n0, float* b) {
  for (std::int64_t kk = 0; kk < kc; ++kk) widen_panel_row_avx2(t, w + (k0 + kk) * n + n0, b + kk * kPanel);
}

// convert_slice_avx2 for kGroup full panels at once: b + p * kChunk * kPanel is panel p's slice.
__attribute__((target("avx2,f16c"))) void convert_group_avx2(DType t, const std::uint16_t* w, std::int64_t n, std::int64_t k0,
                                                             std::int64_t kc, std::int64_t n0, float* b) {
  for (std::int64_t kk = 0; kk < kc; ++kk) {
    const std::uint16_t* src = w + (k0 + kk) * n + n0;
    for (std::int64_t p = 0; p < kGroup; ++p) widen_panel_row_avx2(t, src + p * kPanel, b + p * kChunk * kPanel + kk * kPanel);
  }
}

// acc[r][c] += sum over kk of x[r][k0 + kk] * b[kk][c], one FMA at a time in ascending kk.
void chunk_portable(const float* xf, std::int64_t rows, std::int64_t k, std::int64_t k0, std::int64_t kc, const float* b,
                    float* acc) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* xr = xf + r * k + k0;
    float* ar = acc + r * kPanel;
    for (std::int64_t kk = 0; kk < kc; ++kk) {
      const float xv = xr[kk];
      const float* bk = b + kk * kPanel;
      for (std::int64_t c = 0; c < kPanel; ++c) ar[c] = std::fma(xv, bk[c], ar[c]);
    }
  }
}

// The same chains, 4 rows x 24 columns in 12 registers (the FMA latency is hidden by 12 independent chains).
// The first chunk (k0 == 0) starts the chains from +0 in registers: acc is only written.
__attribute__((target("avx2,fma"))) void chunk_avx2(const float* xf, std::int64_t rows, std::int64_t k, std::int64_t k0,
                                                    std::int64_t kc, const float* b, float* acc) {
  const bool first = k0 == 0;
  std::int64_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    __m256 a[4][3];
    for (int i = 0; i < 4; ++i)
      for (int v = 0; v < 3; ++v) a[i][v] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(acc + (r + i) * kPanel + 8 * v);
    const float* x0 = xf + r * k + k0;
    for (std::int64_t kk = 0; kk < kc; ++kk) {
      const float* bk = b + kk * kPanel;
      const __m256 b0 = _mm256_loadu_ps(bk), b1 = _mm256_loadu_ps(bk + 8), b2 = _mm256_loadu_ps(bk + 16);
      for (int i = 0; i < 4; ++i) {
        const __m256 xv = _mm256_broadcast_ss(x0 + i * k + kk);
        a[i][0] = _mm256_fmadd_ps(xv, b0, a[i][0]);
        a[i][1] = _mm256_fmadd_ps(xv, b1, a[i][1]);
        a[i][2] = _mm256_fmadd_ps(xv, b2, a[i][2]);
      }
    }
    for (int i = 0; i < 4; ++i)
      for (int v = 0; v < 3; ++v) _mm256_storeu_ps(acc + (r + i) * kPanel + 8 * v, a[i][v]);
  }
  for (; r < rows; ++r) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0;
    if (!first)
      a0 = _mm256_loadu_ps(acc + r * kPanel), a1 = _mm256_loadu_ps(acc + r * kPanel + 8),
      a2 = _mm256_loadu_ps(acc + r * kPanel + 16);
    const float* xr = xf + r * k + k0;
    for (std::int64_t kk = 0; kk < kc; ++kk) {
      const float* bk = b + kk * kPanel;
      const __m256 xv = _mm256_broadcast_ss(xr + kk);
      a0 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(bk), a0);
      a1 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(bk + 8), a1);
      a2 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(bk + 16), a2);
    }
    _mm256_storeu_ps(acc + r * kPanel, a0);
    _mm256_storeu_ps(acc + r * kPanel + 8, a1);
    _mm256_storeu_ps(acc + r * kPanel + 16, a2);
  }
}

bool avx2_available() {
  // F16C through numeric::has_f16c (CPUID): clang 14 has no __builtin_cpu_supports("f16c").
  static const bool yes = numeric::has_f16c() && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}

void run(bool avx2, DType t, const std::uint16_t* x, std::int64_t rows, std::int64_t k, const std::uint16_t* w, std::int64_t n,
         bool trans, std::uint16_t* out) {
  if (rows <= 0 || n <= 0) return;
  thread_local std::vector<float> xf, b, acc;
  xf.resize(static_cast<std::size_t>(rows * k));
  b.resize(static_cast<std::size_t>(kGroup * kChunk * kPanel));
  acc.resize(static_cast<std::size_t>(kGroup * rows * kPanel));  // acc + p * rows * kPanel: panel p's sums
  numeric::to_float(t, x, xf.data(), xf.size());
  for (std::int64_t g0 = 0; g0 < n; g0 += kGroup * kPanel) {
    const std::int64_t panels = std::min(kGroup, (n - g0 + kPanel - 1) / kPanel);
    const bool full_group = avx2 && !trans && panels == kGroup && g0 + kGroup * kPanel <= n;
    if (!avx2) std::fill(acc.begin(), acc.end(), 0.0f);  // every chain starts from +0 (chunk_avx2: in registers)
    for (std::int64_t k0 = 0; k0 < k; k0 += kChunk) {
      const std::int64_t kc = std::min(kChunk, k - k0);
      if (full_group) convert_group_avx2(t, w, n, k0, kc, g0, b.data());
      for (std::int64_t p = 0; p < panels; ++p) {
        const std::int64_t n0 = g0 + p * kPanel, nc = std::min(kPanel, n - n0);
        float* bp = b.data() + p * kChunk * kPanel;
        if (!full_group) {
          if (avx2 && !trans && nc == kPanel)
            convert_slice_avx2(t, w, n, k0, kc, n0, bp);
          else
            convert_slice(t, w, k, n, trans, k0, kc, n0, nc, bp);
        }
        (avx2 ? chunk_avx2 : chunk_portable)(xf.data(), rows, k, k0, kc, bp, acc.data() + p * rows * kPanel);
      }
    }
    for (std::int64_t p = 0; p < panels; ++p) {
      const std::int64_t n0 = g0 + p * kPanel, nc = std::min(kPanel, n - n0);
      for (std::int64_t r = 0; r < rows; ++r)
        numeric::from_float(t, acc.data() + (p * rows + r) * kPanel, out + r * n + n0, static_cast<std::size_t>(nc));
    }
  }
}

}  // namespace

void chain_matmul(DType dtype, const std::uint16_t* x, std::int64_t rows, std::int64_t k, const std::uint16_t* w, std::int64_t n,
                  bool trans, std::uint16_t* out) {
  run(avx2_available(), dtype, x, rows, k, w, n, trans, out);
}

void chain_matmul_portable(DType dtype, const std::uint16_t* x, std::int64_t rows, std::int64_t k, const std::uint16_t* w,
                           std::int64_t n, bool trans, std::uint16_t* out) {
  run(false, dtype, x, rows, k, w, n, trans, out);
}

const char* chain_kernel_path() { return avx2_available() ? "avx2+fma+f16c" : "portable"; }

}  // namespace gmmav::gemm
