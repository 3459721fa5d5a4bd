// FMA peak: independent accumulator chains of fused multiply-adds (FP32), and
// of vdpbf16ps (BF16 dot products), compiled per ISA and chosen at run time.
// Chains: 16 (enough for 2 FMA pipes x 4-5 cycles latency, with room).
#include <immintrin.h>

#include <chrono>
#include <thread>
#include <vector>

#include "machine_info.hpp"

namespace gmmav::bench {
namespace {

constexpr long kIters = 4'000'000;

__attribute__((target("avx512f"))) float fp32_avx512(long iters) {
  __m512 acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (long n = 0; n < iters; ++n)
    for (int i = 0; i < 16; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  __m512 s = acc[0];
  for (int i = 1; i < 16; ++i) s = _mm512_add_ps(s, acc[i]);
  alignas(64) float out[16];
  _mm512_store_ps(out, s);  // (not _mm512_reduce_add_ps: GCC 12's header warns about it)
  return out[0] + out[15];
}

// 12 chains here, not 16: AVX2 has 16 ymm registers, and 16 accumulators plus the two operands
// spill to the stack, which measured half the real peak on a Zen 4 host without AVX-512 (51 vs
// 88-96 GFLOP/s per core). Kept in registers by the empty asm (GCC keeps an array in memory).
__attribute__((target("avx2,fma"))) float fp32_avx2(long iters) {
  __m256 a0 = _mm256_set1_ps(0.f), a1 = _mm256_set1_ps(1.f), a2 = _mm256_set1_ps(2.f), a3 = _mm256_set1_ps(3.f),
         a4 = _mm256_set1_ps(4.f), a5 = _mm256_set1_ps(5.f), a6 = _mm256_set1_ps(6.f), a7 = _mm256_set1_ps(7.f),
         a8 = _mm256_set1_ps(8.f), a9 = _mm256_set1_ps(9.f), a10 = _mm256_set1_ps(10.f), a11 = _mm256_set1_ps(11.f);
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (long n = 0; n < iters * 16 / 12; ++n) {  // as many FMAs as 16 chains x iters
    a0 = _mm256_fmadd_ps(a0, a, b), a1 = _mm256_fmadd_ps(a1, a, b), a2 = _mm256_fmadd_ps(a2, a, b);
    a3 = _mm256_fmadd_ps(a3, a, b), a4 = _mm256_fmadd_ps(a4, a, b), a5 = _mm256_fmadd_ps(a5, a, b);
    a6 = _mm256_fmadd_ps(a6, a, b), a7 = _mm256_fmadd_ps(a7, a, b), a8 = _mm256_fmadd_ps(a8, a, b);
    a9 = _mm256_fmadd_ps(a9, a, b), a10 = _mm256_fmadd_ps(a10, a, b), a11 = _mm256_fmadd_ps(a11, a, b);
    __asm__ volatile(""
                     : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5), "+x"(a6), "+x"(a7), "+x"(a8), "+x"(a9),
                       "+x"(a10), "+x"(a11));
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                           _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
  s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
  alignas(32) float out[8];
  _mm256_store_ps(out, s);
  return out[0] + out[7];
}

__attribute__((target("avx512f,avx512bf16"))) float bf16_dot(long iters) {
  __m512 acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  const __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3300);
  for (long n = 0; n < iters; ++n)
    for (int i = 0; i < 16; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
  __m512 s = acc[0];
  for (int i = 1; i < 16; ++i) s = _mm512_add_ps(s, acc[i]);
  alignas(64) float out[16];
  _mm512_store_ps(out, s);  // (not _mm512_reduce_add_ps: GCC 12's header warns about it)
  return out[0] + out[15];
}

volatile float g_sink;

// GFLOP/s of `threads` threads each running fn(iters); `flops_per_iter` per thread.
double run(int threads, float (*fn)(long), double flops_per_iter) {
  fn(kIters / 20);  // warm the clocks
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) ts.emplace_back([fn] { g_sink = fn(kIters); });
  for (auto& t : ts) t.join();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return flops_per_iter * kIters * threads / s * 1e-9;
}

double best_of(int reps, int threads, float (*fn)(long), double flops_per_iter) {
  double best = 0;
  for (int r = 0; r < reps; ++r) best = std::max(best, run(threads, fn, flops_per_iter));
  return best;
}

}  // namespace

Peak measure_peak(int cores) {
  Peak p;
  __builtin_cpu_init();
  float (*fp32)(long) = nullptr;
  double per_iter = 0;
  if (__builtin_cpu_supports("avx512f")) {
    fp32 = fp32_avx512;
    per_iter = 16.0 * 16 * 2;
    p.isa = "avx512f";
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    fp32 = fp32_avx2;
    per_iter = 16.0 * 8 * 2;
    p.isa = "avx2+fma";
  } else {
    p.isa = "none";
    return p;
  }
  p.fp32_one_core = best_of(3, 1, fp32, per_iter);
  p.fp32_all_cores = best_of(3, cores, fp32, per_iter);
  if (__builtin_cpu_supports("avx512bf16")) {
    const double bf_iter = 16.0 * 16 * 4;  // 16 lanes x 2 products + 2 adds per instruction
    p.bf16_one_core = best_of(3, 1, bf16_dot, bf_iter);
    p.bf16_all_cores = best_of(3, cores, bf16_dot, bf_iter);
  }
  return p;
}

}  // namespace gmmav::bench
