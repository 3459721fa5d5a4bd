// The chain kernel (chain_kernel.hpp): the portable and AVX2 paths, and the
// dispatch to the AVX-512 one (chain_kernel_avx512.cpp, blocked differently, D83).
// Blocking here: a panel of Panel output columns at a time; its weight slice,
// Chunk rows of k at a time (converted to FP32 for Group panels at once), is used
// by every row of the tile; the FP32 sums of the panel live in a small buffer
// between chunks (stored and reloaded exactly, so the chain per element is
// unchanged). The blocking differs per ISA level (Avx2: 24 columns = 3 ymm;
// AVX-512: 96-column strips, the weight widened in registers); it decides only
// which elements are computed together, never the order of an element's FMAs,
// so every level gives the same bits.
#include "gemm/chain_kernel.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "gemm/chain_kernel_avx512.hpp"
#include "numeric/convert.hpp"

namespace gmmav::gemm {
namespace {

// The converted weight slice: b[kk * Panel + c] = W[k0 + kk][n0 + c] as FP32, zero beyond n.
template <int Panel>
void convert_slice(DType t, const std::uint16_t* w, std::int64_t k, std::int64_t n, bool trans, std::int64_t k0, std::int64_t kc,
                   std::int64_t n0, std::int64_t nc, float* b) {
  if (!trans) {
    for (std::int64_t kk = 0; kk < kc; ++kk) {
      numeric::to_float(t, w + (k0 + kk) * n + n0, b + kk * Panel, static_cast<std::size_t>(nc));
      std::fill(b + kk * Panel + nc, b + (kk + 1) * Panel, 0.0f);
    }
    return;
  }
  thread_local std::vector<float> column;
  column.resize(static_cast<std::size_t>(kc));
  for (std::int64_t c = 0; c < Panel; ++c) {
    if (c >= nc) {
      for (std::int64_t kk = 0; kk < kc; ++kk) b[kk * Panel + c] = 0.0f;
      continue;
    }
    numeric::to_float(t, w + (n0 + c) * k + k0, column.data(), static_cast<std::size_t>(kc));  // row n0+c of W^T
    for (std::int64_t kk = 0; kk < kc; ++kk) b[kk * Panel + c] = column[static_cast<std::size_t>(kk)];
  }
}

// acc[r][c] (+)= sum over kk of x[r][k0 + kk] * b[kk][c], one FMA at a time in ascending kk; the
// first chunk (k0 == 0) starts every chain from +0.
template <int Panel>
void chunk_portable(const float* xf, std::int64_t rows, std::int64_t k, std::int64_t k0, std::int64_t kc, const float* b,
                    float* acc) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* xr = xf + r * k + k0;
    float* ar = acc + r * Panel;
    if (k0 == 0) std::fill(ar, ar + Panel, 0.0f);
    for (std::int64_t kk = 0; kk < kc; ++kk) {
      const float xv = xr[kk];
      const float* bk = b + kk * Panel;
      for (std::int64_t c = 0; c < Panel; ++c) ar[c] = std::fma(xv, bk[c], ar[c]);
    }
  }
}

struct Portable {
  static constexpr int kPanel = 24;
  static constexpr std::int64_t kChunk = 256, kGroup = 8;
  static constexpr bool kSimd = false;
  static void chunk(const float* xf, std::int64_t rows, std::int64_t k, std::int64_t k0, std::int64_t kc, const float* b,
                    float* acc) {
    chunk_portable<kPanel>(xf, rows, k, k0, kc, b, acc);
  }
  static void convert_full(DType, const std::uint16_t*, std::int64_t, std::int64_t, std::int64_t, std::int64_t, float*) {}
  static void convert_group(DType, const std::uint16_t*, std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                            float*) {}
  static void convert_trans(DType, const std::uint16_t*, std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                            float*) {}
};

// ---- AVX2 + FMA + F16C: 24 columns (3 ymm), 4 rows x 3 vectors = 12 chains in registers.

// One panel row: 24 16-bit values widened to FP32 (exact: the same values as numeric::to_float), 8 at a time.
__attribute__((target("avx2,f16c"), always_inline)) inline void widen_row_avx2(DType t, const std::uint16_t* src, float* dst) {
  for (int v = 0; v < 3; ++v) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 8 * v));
    const __m256 f = t == DType::f16 ? _mm256_cvtph_ps(h) : _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    _mm256_storeu_ps(dst + 8 * v, f);
  }
}

// The same chains, 4 rows x 24 columns in 12 registers (the FMA latency is hidden by 12 independent chains).
// The first chunk (k0 == 0) starts the chains from +0 in registers: acc is only written.
__attribute__((target("avx2,fma"))) void chunk_avx2(const float* xf, std::int64_t rows, std::int64_t k, std::int64_t k0,
                                                    std::int64_t kc, const float* b, float* acc) {
  constexpr int P = 24;
  const bool first = k0 == 0;
  std::int64_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    __m256 a[4][3];
    for (int i = 0; i < 4; ++i)
      for (int v = 0; v < 3; ++v) a[i][v] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(acc + (r + i) * P + 8 * v);
    const float* x0 = xf + r * k + k0;
    for (std::int64_t kk = 0; kk < kc; ++kk) {
      const float* bk = b + kk * P;
      const __m256 b0 = _mm256_loadu_ps(bk), b1 = _mm256_loadu_ps(bk + 8), b2 = _mm256_loadu_ps(bk + 16);
      for (int i = 0; i < 4; ++i) {
        const __m256 xv = _mm256_broadcast_ss(x0 + i * k + kk);
        a[i][0] = _mm256_fmadd_ps(xv, b0, a[i][0]);
        a[i][1] = _mm256_fmadd_ps(xv, b1, a[i][1]);
        a[i][2] = _mm256_fmadd_ps(xv, b2, a[i][2]);
      }
    }
    for (int i = 0; i < 4; ++i)
      for (int v = 0; v < 3; ++v) _mm256_storeu_ps(acc + (r + i) * P + 8 * v, a[i][v]);
  }
  for (; r < rows; ++r) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0;
    if (!first) a0 = _mm256_loadu_ps(acc + r * P), a1 = _mm256_loadu_ps(acc + r * P + 8), a2 = _mm256_loadu_ps(acc + r * P + 16);
    const float* xr = xf + r * k + k0;
    for (std::int64_t kk = 0; kk < kc; ++kk) {
      const float* bk = b + kk * P;
      const __m256 xv = _mm256_broadcast_ss(xr + kk);
      a0 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(bk), a0);
      a1 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(bk + 8), a1);
      a2 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(bk + 16), a2);
    }
    _mm256_storeu_ps(acc + r * P, a0);
    _mm256_storeu_ps(acc + r * P + 8, a1);
    _mm256_storeu_ps(acc + r * P + 16, a2);
  }
}

// 8 16-bit values widened to FP32, exactly.
__attribute__((target("avx2,f16c"), always_inline)) inline __m256 widen8_avx2(DType t, const std::uint16_t* src) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src));
  return t == DType::f16 ? _mm256_cvtph_ps(h) : _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

// 8 x 8 FP32 transpose in registers: r[i][j] -> r[j][i].
__attribute__((target("avx2"), always_inline)) inline void transpose8_avx2(__m256 r[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 4; ++i) {  // 32-bit interleave of row pairs
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 2; ++i) {  // 64-bit: four rows' column j (and j + 4) per register
    u[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  for (int j = 0; j < 4; ++j) {  // 128-bit halves of rows 0-3 and 4-7
    r[j] = _mm256_permute2f128_ps(u[j], u[j + 4], 0x20);
    r[j + 4] = _mm256_permute2f128_ps(u[j], u[j + 4], 0x31);
  }
}

struct Avx2 {
  static constexpr int kPanel = 24;
  static constexpr std::int64_t kChunk = 256;  // 256 x 24 floats = 24 KiB of converted weight per panel
  static constexpr std::int64_t kGroup = 8;    // panels converted together: each weight row is read 384
                                               // contiguous bytes at a time, not 48 (a row is often a page
                                               // apart from the next: 48-byte reads cost a TLB miss each)
  static constexpr bool kSimd = true;
  static void chunk(const float* xf, std::int64_t rows, std::int64_t k, std::int64_t k0, std::int64_t kc, const float* b,
                    float* acc) {
    chunk_avx2(xf, rows, k, k0, kc, b, acc);
  }
  // One full panel's slice (plain layout).
  __attribute__((target("avx2,f16c"))) static void convert_full(DType t, const std::uint16_t* w, std::int64_t n, std::int64_t k0,
                                                                std::int64_t kc, std::int64_t n0, float* b) {
    for (std::int64_t kk = 0; kk < kc; ++kk) widen_row_avx2(t, w + (k0 + kk) * n + n0, b + kk * kPanel);
  }
  // kGroup full panels at once: b + p * kChunk * kPanel is panel p's slice (of a k x n weight).
  __attribute__((target("avx2,f16c"))) static void convert_group(DType t, const std::uint16_t* w, std::int64_t, std::int64_t n,
                                                                 std::int64_t k0, std::int64_t kc, std::int64_t n0, float* b) {
    for (std::int64_t kk = 0; kk < kc; ++kk) {
      const std::uint16_t* src = w + (k0 + kk) * n + n0;
      for (std::int64_t p = 0; p < kGroup; ++p) widen_row_avx2(t, src + p * kPanel, b + p * kChunk * kPanel + kk * kPanel);
    }
  }
  // One panel's slice of an n x k weight (convert_slice's result), 8 x 8 blocks transposed in
  // registers; the k beyond a multiple of 8 one value at a time.
  __attribute__((target("avx2,f16c"))) static void convert_trans(DType t, const std::uint16_t* w, std::int64_t k, std::int64_t k0,
                                                                 std::int64_t kc, std::int64_t n0, std::int64_t nc, float* b) {
    for (std::int64_t c0 = 0; c0 < kPanel; c0 += 8) {
      std::int64_t j = 0;
      for (; j + 8 <= kc; j += 8) {
        __m256 r[8];
        for (int i = 0; i < 8; ++i) r[i] = c0 + i < nc ? widen8_avx2(t, w + (n0 + c0 + i) * k + k0 + j) : _mm256_setzero_ps();
        transpose8_avx2(r);
        for (int q = 0; q < 8; ++q) _mm256_storeu_ps(b + (j + q) * kPanel + c0, r[q]);
      }
      for (; j < kc; ++j)
        for (std::int64_t c = c0; c < c0 + 8; ++c) {
          float f = 0.0f;
          if (c < nc) numeric::to_float(t, w + (n0 + c) * k + k0 + j, &f, 1);
          b[j * kPanel + c] = f;
        }
    }
  }
};

template <class L>
void run(DType t, const std::uint16_t* x, std::int64_t rows, std::int64_t k, const std::uint16_t* w, std::int64_t n, bool trans,
         std::uint16_t* out) {
  constexpr std::int64_t P = L::kPanel, C = L::kChunk, G = L::kGroup;
  if (rows <= 0 || n <= 0) return;
  thread_local std::vector<float> xf, b, acc;
  xf.resize(static_cast<std::size_t>(rows * k));
  b.resize(static_cast<std::size_t>(G * C * P));
  acc.resize(static_cast<std::size_t>(G * rows * P));  // acc + p * rows * P: panel p's sums
  numeric::to_float(t, x, xf.data(), xf.size());
  if (k <= 0) std::fill(acc.begin(), acc.end(), 0.0f);  // no chunk runs: every sum is the chain's +0
  for (std::int64_t g0 = 0; g0 < n; g0 += G * P) {
    const std::int64_t panels = std::min(G, (n - g0 + P - 1) / P);
    const bool full_group = L::kSimd && !trans && panels == G && g0 + G * P <= n;
    for (std::int64_t k0 = 0; k0 < k; k0 += C) {
      const std::int64_t kc = std::min(C, k - k0);
      if (full_group) L::convert_group(t, w, k, n, k0, kc, g0, b.data());
      for (std::int64_t p = 0; p < panels; ++p) {
        const std::int64_t n0 = g0 + p * P, nc = std::min(P, n - n0);
        float* bp = b.data() + p * C * P;
        if (!full_group) {
          if (L::kSimd && !trans && nc == P)
            L::convert_full(t, w, n, k0, kc, n0, bp);
          else if (L::kSimd && trans)
            L::convert_trans(t, w, k, k0, kc, n0, nc, bp);
          else
            convert_slice<L::kPanel>(t, w, k, n, trans, k0, kc, n0, nc, bp);
        }
        L::chunk(xf.data(), rows, k, k0, kc, bp, acc.data() + p * rows * P);
      }
    }
    for (std::int64_t p = 0; p < panels; ++p) {
      const std::int64_t n0 = g0 + p * P, nc = std::min(P, n - n0);
      for (std::int64_t r = 0; r < rows; ++r)
        numeric::from_float(t, acc.data() + (p * rows + r) * P, out + r * n + n0, static_cast<std::size_t>(nc));
    }
  }
}

// The AVX-512 path (gemm/chain_kernel_avx512.cpp) on x converted to FP32.
void run_avx512(DType t, const std::uint16_t* x, std::int64_t rows, std::int64_t k, const std::uint16_t* w, std::int64_t n,
                bool trans, std::uint16_t* out) {
  if (rows <= 0 || n <= 0) return;
  thread_local std::vector<float> xf;
  xf.resize(static_cast<std::size_t>(rows * k));
  numeric::to_float(t, x, xf.data(), xf.size());
  detail::chain_matmul_avx512(t, xf.data(), rows, k, w, n, trans, out);
}

}  // namespace

void chain_matmul_at(CpuIsa isa, DType dtype, const std::uint16_t* x, std::int64_t rows, std::int64_t k, const std::uint16_t* w,
                     std::int64_t n, bool trans, std::uint16_t* out) {
  if (isa > host_cpu_isa()) isa = host_cpu_isa();
  if (isa >= CpuIsa::avx512) return run_avx512(dtype, x, rows, k, w, n, trans, out);
  if (isa == CpuIsa::avx2) return run<Avx2>(dtype, x, rows, k, w, n, trans, out);
  run<Portable>(dtype, x, rows, k, w, n, trans, out);
}

void chain_matmul(DType dtype, const std::uint16_t* x, std::int64_t rows, std::int64_t k, const std::uint16_t* w, std::int64_t n,
                  bool trans, std::uint16_t* out) {
  chain_matmul_at(cpu_isa(), dtype, x, rows, k, w, n, trans, out);
}

const char* chain_kernel_path(CpuIsa isa) {
  if (isa > host_cpu_isa()) isa = host_cpu_isa();
  return isa >= CpuIsa::avx512 ? "avx512" : isa == CpuIsa::avx2 ? "avx2+fma+f16c" : "portable";
}

const char* chain_kernel_path() { return chain_kernel_path(cpu_isa()); }

}  // namespace gmmav::gemm
