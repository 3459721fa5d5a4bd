// FMA peak: independent accumulator chains of fused multiply-adds (FP32), and
// of vdpbf16ps (BF16 dot products), compiled per ISA and chosen at run time for
// the ISA level the GEMM routes run at (route_info.hpp). Chains: 16 (enough for
// 2 FMA pipes x 4-5 cycles latency, with room). One sample is short (~20 ms);
// the bench takes several, interleaved with its cases, and keeps the best.
#include <immintrin.h>

#include <time.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "machine_info.hpp"
#include "route_info.hpp"

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

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

struct Rate {
  double cpu = 0;   ///< GFLOP/s: the sum over the threads of each one's FLOPs / its own CPU time
  double wall = 0;  ///< GFLOP/s: every thread's FLOPs / the wall time from the common start to the last end
};

// `threads` threads each running fn(iters) (`flops_per_iter` each) from one common start:
// every thread first warms its core's clock, then all start together, so the threads run at
// once (two vCPUs that are one core's SMT siblings share it). The calling thread is one of them.
// The CPU-time rate is what the cores do while the threads run on them: the machine's ceiling
// even when other processes take turns on its cores (a wall-clock rate then falls with their
// share: 2-core hosts shared with other jobs measured half the FP32 peak). It can only err high
// (two SMT siblings taking turns instead of running together), which never flatters a ratio to it.
Rate run(int threads, float (*fn)(long), double flops_per_iter) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<double> cpu(static_cast<std::size_t>(threads));
  const auto body = [&](int t) {
    g_sink = fn(kIters / 20);  // warm the clock
    ready.fetch_add(1);
    while (!go.load(std::memory_order_acquire)) _mm_pause();
    const double c0 = thread_cpu_seconds();
    g_sink = fn(kIters);
    cpu[static_cast<std::size_t>(t)] = thread_cpu_seconds() - c0;
  };
  std::vector<std::thread> ts;
  for (int t = 1; t < threads; ++t) ts.emplace_back(body, t);
  while (ready.load() < threads - 1) std::this_thread::yield();
  ready.fetch_add(1);
  g_sink = fn(kIters / 20);
  const auto t0 = std::chrono::steady_clock::now();
  go.store(true, std::memory_order_release);
  const double c0 = thread_cpu_seconds();
  g_sink = fn(kIters);
  cpu[0] = thread_cpu_seconds() - c0;
  for (auto& t : ts) t.join();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  Rate r;
  const double flops = flops_per_iter * static_cast<double>(kIters);
  for (const double c : cpu) r.cpu += c > 0 ? flops / c * 1e-9 : 0;
  r.wall = flops * threads / s * 1e-9;
  return r;
}

struct Kernels {
  float (*fp32)(long) = nullptr;
  double fp32_per_iter = 0;
  float (*bf16)(long) = nullptr;
  double bf16_per_iter = 0;
  std::string isa;
};

// The FP32 kernel of the ISA level the FP32 routes run at (route_info.hpp: GMMAV_MAX_CPU_ISA
// caps it); with no FMA kernel at that level (portable), the host's own: a bound such kernels
// cannot reach. BF16 dot products where that level uses them.
Kernels kernels() {
  Kernels k;
  const HostRoutes& h = host_routes();
  __builtin_cpu_init();
  int lanes = h.fp32_lanes;
  std::string note;
  if (lanes == 0) {
    lanes = __builtin_cpu_supports("avx512f") ? 16 : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 8 : 0;
    note = lanes ? " (the host's: no FMA kernel at level " + h.isa_level + ")" : "";
  }
  if (lanes == 16) {
    k.fp32 = fp32_avx512;
    k.fp32_per_iter = 16.0 * 16 * 2;
    k.isa = "avx512f" + note;
  } else if (lanes == 8) {
    k.fp32 = fp32_avx2;
    k.fp32_per_iter = 16.0 * 8 * 2;
    k.isa = "avx2+fma" + note;
  } else {
    k.isa = "none";
  }
  if (h.bf16_dot && __builtin_cpu_supports("avx512bf16")) {
    k.bf16 = bf16_dot;
    k.bf16_per_iter = 16.0 * 16 * 4;  // 16 lanes x 2 products + 2 adds per instruction
  }
  return k;
}

}  // namespace

void sample_peak(Peak& p, int cores, bool one_core) {
  static const Kernels k = kernels();
  p.isa = k.isa;
  p.level = host_routes().isa_level;
  if (!host_routes().isa_cap.empty()) p.level += " (GMMAV_MAX_CPU_ISA=" + host_routes().isa_cap + ")";
  const auto sample = [](Spread& cpu, Spread* wall, int threads, float (*fn)(long), double per_iter) {
    const Rate r = run(threads, fn, per_iter);
    cpu.samples.push_back(r.cpu);
    if (wall) wall->samples.push_back(r.wall);
  };
  if (!k.fp32) return;
  sample(p.fp32_all_cores, &p.fp32_all_cores_wall, cores, k.fp32, k.fp32_per_iter);
  if (k.bf16) sample(p.bf16_all_cores, &p.bf16_all_cores_wall, cores, k.bf16, k.bf16_per_iter);
  if (!one_core) return;
  sample(p.fp32_one_core, nullptr, 1, k.fp32, k.fp32_per_iter);
  if (k.bf16) sample(p.bf16_one_core, nullptr, 1, k.bf16, k.bf16_per_iter);
}

Peak measure_peak(int cores, int rounds) {
  Peak p;
  for (int r = 0; r < rounds; ++r) sample_peak(p, cores, true);
  return p;
}

}  // namespace gmmav::bench
