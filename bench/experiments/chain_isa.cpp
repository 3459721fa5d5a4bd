// The chain kernel's ISA paths against each other, and against oneDNN's route for large tiles,
// one thread (docs/decisions.md D67, D68). Each figure is the median of the thread-CPU time of
// `reps` calls, the variants alternating call by call, so other processes' load (which this
// shared machine always has) weighs on them alike.
//
//   gmmav_chain_isa fp16|bf16[t] K N REPS ROWS...   (a trailing t: W stored n x k, transposed)
//     ROWS <= 32: the AVX2 and AVX-512 paths (gemm::chain_matmul_at; those the host has);
//     ROWS  > 32: the chain kernel at the process's level against PreparedWeight::matmul_rows
//                 (oneDNN's FP32 brgemm for FP16, its native BF16 route for BF16, on a weight
//                 packed once; on hosts without them, the chain kernel again), with the count of
//                 outputs whose bits differ.
//   e.g. gmmav_chain_isa fp16 7168 4096 15 1 8 16 32 64 128
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "common/cpu_isa.hpp"
#include "gemm/chain_kernel.hpp"
#include "gemm/tile_matmul.hpp"
#include "numeric/half.hpp"

namespace {

double thread_ms() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) / 1e6;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  using gmmav::CpuIsa;
  using gmmav::DType;
  if (argc < 6) {
    std::fprintf(stderr, "usage: %s fp16|bf16[t] K N REPS ROWS...\n", argv[0]);
    return 2;
  }
  const std::string type = argv[1];
  const DType t = type.rfind("bf16", 0) == 0 ? DType::bf16 : DType::f16;
  const bool trans = type.back() == 't';
  const std::int64_t k = std::atol(argv[2]), n = std::atol(argv[3]);
  const int reps = std::max(1, std::atoi(argv[4]));
  std::int64_t max_rows = 1;
  for (int a = 5; a < argc; ++a) max_rows = std::max<std::int64_t>(max_rows, std::atol(argv[a]));
  std::mt19937_64 rng(1);
  std::normal_distribution<double> g;
  std::vector<std::uint16_t> w(static_cast<std::size_t>(k * n)), x(static_cast<std::size_t>(max_rows * k));
  std::vector<std::uint16_t> out(static_cast<std::size_t>(max_rows * n)), out2(out.size());
  for (auto& v : w) v = gmmav::numeric::from_double(t, g(rng) * 0.05);
  for (auto& v : x) v = gmmav::numeric::from_double(t, g(rng));
  std::printf("%s%s K=%lld N=%lld, %d calls each, medians of thread-CPU ms; %s\n", t == DType::f16 ? "fp16" : "bf16",
              trans ? " (W n x k)" : "", static_cast<long long>(k), static_cast<long long>(n), reps,
              gmmav::gemm::implementation_info().c_str());
  gmmav::gemm::PreparedWeight pw;
  bool prepared = false;
  for (int a = 5; a < argc; ++a) {
    const std::int64_t rows = std::atol(argv[a]);
    const double gflop = 2.0 * static_cast<double>(rows * k * n) / 1e6;  // per ms: GFLOP/s
    if (rows <= gmmav::gemm::kSmallMRows) {
      std::vector<double> ms[2];
      const CpuIsa isa[2] = {CpuIsa::avx2, CpuIsa::avx512};
      for (int r = 0; r < reps; ++r)
        for (int i = 0; i < 2; ++i) {
          const int j = r % 2 ? 1 - i : i;
          const double s = thread_ms();
          gmmav::gemm::chain_matmul_at(isa[j], t, x.data(), rows, k, w.data(), n, trans, out.data());
          ms[j].push_back(thread_ms() - s);
        }
      const double a2 = median(ms[0]), a5 = median(ms[1]);
      std::printf("M=%4lld  chain %s %8.2f ms (%6.1f GFLOP/s)  chain %s %8.2f ms (%6.1f)  time ratio %.2f\n",
                  static_cast<long long>(rows), gmmav::gemm::chain_kernel_path(isa[0]), a2, gflop / a2,
                  gmmav::gemm::chain_kernel_path(isa[1]), a5, gflop / a5, a2 / a5);
      continue;
    }
    if (!prepared) {
      const double s = thread_ms();
      pw.prepare(t, w.data(), k, n, trans, gmmav::gemm::PreparedWeight::Packing::now);
      std::printf("weight prepared (packed: %zu bytes) in %.1f ms\n", pw.bytes(), thread_ms() - s);
      prepared = true;
    }
    std::vector<double> chain, route;
    for (int r = 0; r < reps; ++r) {
      double s = thread_ms();
      gmmav::gemm::chain_matmul(t, x.data(), rows, k, w.data(), n, trans, out.data());
      chain.push_back(thread_ms() - s);
      s = thread_ms();
      pw.matmul_rows(x.data(), rows, out2.data());
      route.push_back(thread_ms() - s);
    }
    std::int64_t differ = 0;
    for (std::int64_t i = 0; i < rows * n; ++i) differ += out[static_cast<std::size_t>(i)] != out2[static_cast<std::size_t>(i)];
    const double c = median(chain), o = median(route);
    std::printf(
        "M=%4lld  chain %8.2f ms (%6.1f GFLOP/s)  route %8.2f ms (%6.1f)  chain/route %.2f  outputs differing %lld of %lld\n",
        static_cast<long long>(rows), c, gflop / c, o, gflop / o, c / o, static_cast<long long>(differ),
        static_cast<long long>(rows * n));
  }
  return 0;
}
