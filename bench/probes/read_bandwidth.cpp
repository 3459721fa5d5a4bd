// DRAM read bandwidth: every core sums its slice of one buffer far larger than
// the caches. The decode roofline divides the weights' bytes by it: a decode
// call reads each weight once and writes little, so memcpy's figure (a read
// and a write per byte) is not its ceiling.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "machine_info.hpp"

namespace gmmav::bench {
namespace {

// Four independent 128-bit accumulators (SSE2, every x86-64): enough loads in
// flight for the memory system to be the limit, not the adds.
using V2 = std::uint64_t __attribute__((vector_size(16)));

std::uint64_t sum(const std::uint64_t* p, std::size_t n) {
  V2 a{0, 0}, b{0, 0}, c{0, 0}, d{0, 0};
  const auto* v = reinterpret_cast<const V2*>(p);
  std::size_t i = 0;
  for (; i + 4 <= n / 2; i += 4) {
    a += v[i];
    b += v[i + 1];
    c += v[i + 2];
    d += v[i + 3];
  }
  const V2 s = a + b + c + d;
  std::uint64_t r = s[0] + s[1];
  for (std::size_t k = i * 2; k < n; ++k) r += p[k];
  return r;
}

volatile std::uint64_t g_sink;

}  // namespace

double measure_read_gbps(std::size_t bytes, int cores) {
  const int threads = std::max(1, cores);
  const std::size_t words = bytes / 8;
  // Large enough that malloc maps it (page-aligned); every page written before the timing.
  std::unique_ptr<std::uint64_t[]> buf(new std::uint64_t[words]);
  const std::size_t slice = words / static_cast<std::size_t>(threads) / 8 * 8;
  {
    std::vector<std::thread> ts;  // each thread first-touches its own slice (its NUMA node, if any)
    for (int t = 0; t < threads; ++t)
      ts.emplace_back([&, t] { std::memset(buf.get() + slice * static_cast<std::size_t>(t), 1, slice * 8); });
    for (auto& t : ts) t.join();
  }
  double best = 0;
  for (int rep = 0; rep < 4; ++rep) {  // the first pass warms up (TLB, clocks)
    std::vector<std::uint64_t> part(static_cast<std::size_t>(threads));
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
      ts.emplace_back(
          [&, t] { part[static_cast<std::size_t>(t)] = sum(buf.get() + slice * static_cast<std::size_t>(t), slice); });
    for (auto& t : ts) t.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::uint64_t total = 0;
    for (auto x : part) total += x;
    g_sink = total;
    if (rep > 0) best = std::max(best, static_cast<double>(slice * 8) * threads / s * 1e-9);
  }
  return best;
}

}  // namespace gmmav::bench
