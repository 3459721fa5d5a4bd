// The chain kernel's AVX-512 path (docs/decisions.md D67, D83): the chains of every other path
// (a lane is one output element: fma over k ascending from +0, sums stored and reloaded exactly
// between chunks, rounded once), blocked for a few rows against a weight far larger than the caches.
//
// - No FP32 copy of a k x n weight: each block of rows loads the 16-bit row segments it needs and
//   widens them in registers (vcvtph2ps, or a 16-bit shift for BF16); on Zen 4 vcvtph2ps shares
//   the FMAs' pipes, so tiles of 8+ rows take 8 x 48 blocks (3 conversions per 24 FMAs), smaller
//   ones 4 x 96 (kStrip, kRows below); storing and reloading an FP32 copy cost ~25 % at 8 rows. An n x k (transposed) weight is
//   transposed 16 x 16 in registers into a small FP32 slice first.
// - Order: column groups (sums of at most kAccFloats), chunks of kChunk k, strips of kStrip<V> columns. The
//   rows of a strip's chunk are 2·n bytes apart; with a 4 KiB multiple they all map to one L1
//   set (VIPT), so they are read from L2, and the strip kAhead places later in this order is
//   prefetched into L2 (_MM_HINT_T1) by the strip's first row block. T0/NTA prefetches go to L1,
//   where that aliasing evicts them before use: measured no faster than no prefetch at all.
// - A transposed weight takes one strip per group: all of k for kStrip<V> rows of W^T, so each of their
//   pages is walked once (chunk-outer over all n touches n pages per chunk, more than the TLB holds).
//   The next slice's rows are prefetched one per step of k in the FMA loop, not in a burst.
#include "gemm/chain_kernel_avx512.hpp"

#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "numeric/convert.hpp"

#define GMMAV_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))

namespace gmmav::gemm::detail {
namespace {

// A strip is V zmm of columns (16 V), a register block 24 / V rows of it: 24 accumulators. Tiles
// of 8 rows or more take V = 3 (8 x 48: 3 conversions of W per 24 FMAs, which share the FMAs'
// pipes on Zen 4; ~3 % faster at 16-32 rows than 4 x 96), smaller tiles V = 6 (4 x 96: a 1-3 row
// tile reads twice the columns per broadcast of x). The chains are the same either way.
template <int V>
constexpr std::int64_t kStrip = 16 * V;
template <int V>
constexpr int kRows = 24 / V;
constexpr std::int64_t kChunk = 128;          // k per pass over a strip: 24 sums stored and reloaded per 3072 FMAs
constexpr int kAhead = 4;                     // strips between a prefetch and its use
constexpr std::int64_t kAccFloats = 3 << 16;  // 768 KiB of sums per column group at most (L2: 1 MiB on Zen 4;
                                              // 32 rows x 4096 columns fit: one pass over W per chunk)

// 16 values of W from 16-bit memory (lanes beyond mask read as 0, nothing read there) to FP32,
// exactly (the values numeric::to_float gives).
template <bool F16>
GMMAV_AVX512 inline __m512 widen(__mmask16 m, const std::uint16_t* p) {
  constexpr __mmask16 all = 0xFFFF;  // maskz forms with every lane set: GCC 12's unmasked ones warn
  const __m256i h = _mm256_maskz_loadu_epi16(m, p);
  if constexpr (F16)
    return _mm512_maskz_cvtph_ps(all, h);
  else
    return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(all, _mm512_maskz_cvtepu16_epi32(all, h), 16));
}

// What a strip's first row block prefetches into L2, spread over its steps of k (a burst of
// prefetches overflows the miss queue): at step kk < rows, `bytes` from p + kk * stride.
struct Prefetch {
  const char* p = nullptr;
  std::int64_t stride = 0, rows = 0;
  int bytes = 0;
};

// R rows x 96 columns of chains over kc steps of k. W is read as stored (16-bit, rows ldw apart,
// masked to the strip's columns) or, Packed, from the transposed FP32 slice (rows kStrip<V> apart);
// pf (the strip kAhead later) is prefetched.
// The loops over rows and vectors are unrolled by pragma: GCC 12 kept R = 3's sums on the stack.
template <bool F16, bool Packed, int R, int V>
GMMAV_AVX512 __attribute__((always_inline)) inline void block(const float* x, std::int64_t ldx, const void* wv, std::int64_t ldw,
                                                              std::int64_t kc, const __mmask16* m, float* acc, bool first,
                                                              const Prefetch& pf) {
  __m512 a[R][V];
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i) {
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) a[i][v] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(acc + i * kStrip<V> + 16 * v);
  }
  for (std::int64_t kk = 0; kk < kc; ++kk) {
    __m512 b[V];
    if constexpr (Packed) {
      const float* bk = static_cast<const float*>(wv) + kk * kStrip<V>;
#pragma GCC unroll 8
      for (int v = 0; v < V; ++v) b[v] = _mm512_loadu_ps(bk + 16 * v);
      if (kk < pf.rows) {  // one row of W^T per step, the first pf.rows steps
        const char* q = pf.p + kk * pf.stride;
        for (int off = 0; off < pf.bytes; off += 64) _mm_prefetch(q + off, _MM_HINT_T1);
        _mm_prefetch(q + pf.bytes - 1, _MM_HINT_T1);  // the last line when the row is not line-aligned
      }
    } else {
      const std::uint16_t* wk = static_cast<const std::uint16_t*>(wv) + kk * ldw;
#pragma GCC unroll 8
      for (int v = 0; v < V; ++v) b[v] = widen<F16>(m[v], wk + 16 * v);
      if (pf.p) {  // one row of W per step, 2 kStrip<V> bytes (a constant, so this loop unrolls)
        const char* q = pf.p + kk * pf.stride;
        for (int off = 0; off < 2 * kStrip<V>; off += 64) _mm_prefetch(q + off, _MM_HINT_T1);
        _mm_prefetch(q + 2 * kStrip<V> - 1, _MM_HINT_T1);
      }
    }
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) {
      const __m512 xv = _mm512_set1_ps(x[i * ldx + kk]);
#pragma GCC unroll 8
      for (int v = 0; v < V; ++v) a[i][v] = _mm512_fmadd_ps(xv, b[v], a[i][v]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i) {
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) _mm512_storeu_ps(acc + i * kStrip<V> + 16 * v, a[i][v]);
  }
}

// The last rows % kRows<V> rows of a tile, as one block of that many rows (R counts down to 1).
template <bool F16, bool Packed, int R, int V>
GMMAV_AVX512 void tail(std::int64_t rows, const float* x, std::int64_t ldx, const void* w, std::int64_t ldw, std::int64_t kc,
                       const __mmask16* m, float* acc, bool first, const Prefetch& pf) {
  if constexpr (R > 0) {
    if (rows == R) return block<F16, Packed, R, V>(x, ldx, w, ldw, kc, m, acc, first, pf);
    tail<F16, Packed, R - 1, V>(rows, x, ldx, w, ldw, kc, m, acc, first, pf);
  }
}

// Every row of the tile over one strip's chunk: blocks of kRows<V> rows, then one of the rest. The
// first block carries the prefetch (once per strip).
template <bool F16, bool Packed, int V>
GMMAV_AVX512 void strip(const float* xf, std::int64_t rows, std::int64_t k, const void* w, std::int64_t ldw, std::int64_t kc,
                        const __mmask16* m, float* acc, bool first, Prefetch pf) {
  std::int64_t r = 0;
  for (; r + kRows<V> <= rows; r += kRows<V>, pf = Prefetch{})
    block<F16, Packed, kRows<V>, V>(xf + r * k, k, w, ldw, kc, m, acc + r * kStrip<V>, first, pf);
  tail<F16, Packed, kRows<V> - 1, V>(rows - r, xf + r * k, k, w, ldw, kc, m, acc + r * kStrip<V>, first, pf);
}

GMMAV_AVX512 inline __m512 lo64(__m512 a, __m512 b) {
  return _mm512_castpd_ps(_mm512_maskz_unpacklo_pd(0xFF, _mm512_castps_pd(a), _mm512_castps_pd(b)));
}
GMMAV_AVX512 inline __m512 hi64(__m512 a, __m512 b) {
  return _mm512_castpd_ps(_mm512_maskz_unpackhi_pd(0xFF, _mm512_castps_pd(a), _mm512_castps_pd(b)));
}

// 16 x 16 FP32 transpose in registers: r[i][j] -> r[j][i]. (The maskz forms with every lane set
// are the plain instructions: GCC 12's unmasked ones trip -Wmaybe-uninitialized.)
GMMAV_AVX512 inline void transpose16(__m512 r[16]) {
  constexpr __mmask16 all = 0xFFFF;
  __m512 t[16], u[16];
  for (int i = 0; i < 8; ++i) {  // 32-bit interleave of row pairs
    t[2 * i] = _mm512_maskz_unpacklo_ps(all, r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_maskz_unpackhi_ps(all, r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {  // 64-bit interleave
    u[4 * i] = lo64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 1] = hi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 2] = lo64(t[4 * i + 1], t[4 * i + 3]);
    u[4 * i + 3] = hi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int i = 0; i < 2; ++i)  // 128-bit lanes, then 256-bit halves
    for (int j = 0; j < 4; ++j) {
      t[8 * i + j] = _mm512_maskz_shuffle_f32x4(all, u[8 * i + j], u[8 * i + j + 4], 0x88);
      t[8 * i + j + 4] = _mm512_maskz_shuffle_f32x4(all, u[8 * i + j], u[8 * i + j + 4], 0xDD);
    }
  for (int j = 0; j < 8; ++j) {
    r[j] = _mm512_maskz_shuffle_f32x4(all, t[j], t[j + 8], 0x88);
    r[j + 8] = _mm512_maskz_shuffle_f32x4(all, t[j], t[j + 8], 0xDD);
  }
}

// The transposed weight's slice for one strip: b[kk * kStrip<V> + c] = W^T[n0 + c][k0 + kk] as FP32
// (W^T is n x k), zero for c >= nc; prefetches pf (a tile of fewer than 4 rows: its FMA loop is
// too short to spread them over).
template <bool F16, int V>
GMMAV_AVX512 void transpose_slice(const std::uint16_t* w, std::int64_t k, std::int64_t k0, std::int64_t kc, std::int64_t n0,
                                  std::int64_t nc, const Prefetch& pf, float* b) {
  for (std::int64_t c0 = 0; c0 < kStrip<V>; c0 += 16)
    for (std::int64_t j0 = 0; j0 < kc; j0 += 16) {
      const __mmask16 mk = static_cast<__mmask16>(kc - j0 >= 16 ? 0xFFFF : (1u << (kc - j0)) - 1);
      __m512 r[16];  // (loops unrolled: r stays in registers)
#pragma GCC unroll 16
      for (int i = 0; i < 16; ++i) {
        const std::int64_t c = c0 + i;
        r[i] = c < nc ? widen<F16>(mk, w + (n0 + c) * k + k0 + j0) : _mm512_setzero_ps();
        if (c < pf.rows && j0 % 32 == 0) _mm_prefetch(pf.p + c * pf.stride + 2 * j0, _MM_HINT_T1);
      }
      transpose16(r);
#pragma GCC unroll 16
      for (int j = 0; j < 16; ++j)
        if (j0 + j < kc) _mm512_storeu_ps(b + (j0 + j) * kStrip<V> + c0, r[j]);
    }
}

// The order of the work: column groups of `group` strips; in a group, chunks of k; in a chunk, the
// group's strips. The item (strip, first k) kAhead places after (chunk k0, strip g + s) in it.
struct Item {
  std::int64_t strip, k0;
};
inline Item ahead_of(std::int64_t g, std::int64_t group, std::int64_t strips_n, std::int64_t k, std::int64_t C, std::int64_t k0,
                     std::int64_t s) {
  const std::int64_t strips = std::min(group, strips_n - g), items = (k + C - 1) / C * strips;
  const std::int64_t ahead = k0 / C * strips + s + kAhead;
  if (ahead < items) return {g + ahead % strips, ahead / strips * C};
  const std::int64_t next = std::max<std::int64_t>(1, std::min(group, strips_n - g - strips));  // the next group's
  return {g + strips + (ahead - items) % next, (ahead - items) / next * C};
}

template <bool F16, int V>
void run(DType t, const float* xf, std::int64_t rows, std::int64_t k, const std::uint16_t* w, std::int64_t n, bool trans,
         std::uint16_t* out) {
  constexpr std::int64_t C = kChunk;
  const std::int64_t strips_n = (n + kStrip<V> - 1) / kStrip<V>;
  // Strips per group (transposed: one, see the top of the file).
  const std::int64_t group = trans ? 1 : std::clamp<std::int64_t>(kAccFloats / (rows * kStrip<V>), 1, strips_n);
  thread_local std::vector<float> acc, b;
  acc.resize(static_cast<std::size_t>(group * rows * kStrip<V>));  // acc + s * rows * kStrip<V>: strip s's sums
  if (trans) b.resize(static_cast<std::size_t>(C * kStrip<V>));
  if (k <= 0) std::fill(acc.begin(), acc.end(), 0.0f);  // no chunk runs: every sum is the chain's +0
  for (std::int64_t g = 0; g < strips_n; g += group) {
    const std::int64_t strips = std::min(group, strips_n - g);
    for (std::int64_t k0 = 0; k0 < k; k0 += C) {
      const std::int64_t kc = std::min(C, k - k0);
      for (std::int64_t s = 0; s < strips; ++s) {
        const Item p = ahead_of(g, group, strips_n, k, C, k0, s);  // prefetched while this item computes
        const std::int64_t n0 = (g + s) * kStrip<V>, nc = std::min(kStrip<V>, n - n0), pn0 = p.strip * kStrip<V>, pk = p.k0;
        float* as = acc.data() + s * rows * kStrip<V>;
        // A prefetch address is formed only inside W: its kc rows of 96 values at (pk, pn0).
        const bool pf_inside =
            trans ? (pn0 + kStrip<V> - 1) * k + pk + kc <= n * k : (pk + kc - 1) * n + pn0 + kStrip<V> <= k * n;
        if (trans) {
          Prefetch pf;  // the next slice's 96 rows of W^T, 2 kc bytes each
          if (pf_inside)
            pf = {reinterpret_cast<const char*>(w + pn0 * k + pk), 2 * k, std::min(kStrip<V>, kc), static_cast<int>(2 * kc)};
          const bool spread = rows >= kRows<V>;
          transpose_slice<F16, V>(w, k, k0, kc, n0, nc, spread ? Prefetch{} : pf, b.data());
          strip<F16, true, V>(xf + k0, rows, k, b.data(), kStrip<V>, kc, nullptr, as, k0 == 0, spread ? pf : Prefetch{});
        } else {
          __mmask16 m[V];
          for (int v = 0; v < V; ++v) {
            const std::int64_t lanes = std::clamp<std::int64_t>(nc - 16 * v, 0, 16);
            m[v] = static_cast<__mmask16>((1u << lanes) - 1);
          }
          Prefetch pf;  // the next strip's kc rows of W, 2 kStrip<V> bytes each
          if (pf_inside) pf = {reinterpret_cast<const char*>(w + pk * n + pn0), 2 * n, kc, static_cast<int>(2 * kStrip<V>)};
          strip<F16, false, V>(xf + k0, rows, k, w + k0 * n + n0, n, kc, m, as, k0 == 0, pf);
        }
      }
    }
    for (std::int64_t s = 0; s < strips; ++s) {
      const std::int64_t n0 = (g + s) * kStrip<V>, nc = std::min(kStrip<V>, n - n0);
      for (std::int64_t r = 0; r < rows; ++r)
        numeric::from_float(t, acc.data() + (s * rows + r) * kStrip<V>, out + r * n + n0, static_cast<std::size_t>(nc));
    }
  }
}

}  // namespace

void chain_matmul_avx512(DType t, const float* xf, std::int64_t rows, std::int64_t k, const std::uint16_t* w, std::int64_t n,
                         bool trans, std::uint16_t* out) {
  const bool tall = rows >= kRows<3>;
  if (t == DType::f16)
    return tall ? run<true, 3>(t, xf, rows, k, w, n, trans, out) : run<true, 6>(t, xf, rows, k, w, n, trans, out);
  if (tall) return run<false, 3>(t, xf, rows, k, w, n, trans, out);
  run<false, 6>(t, xf, rows, k, w, n, trans, out);
}

}  // namespace gmmav::gemm::detail
