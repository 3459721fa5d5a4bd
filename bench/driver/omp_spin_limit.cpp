#include "omp_spin_limit.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <vector>

#include "common/config.hpp"

namespace gmmav::bench {
namespace {

constexpr const char* kMarker = config::kBenchSpinMarker;  // read through common/config.hpp

}  // namespace

// Why: with OMP_WAIT_POLICY unset, libgomp's threads spin up to 300000 times
// at every barrier. When the kernel placed the woken worker on the core where
// the spinning master runs, the master spins through its time slice while the
// worker waits for it: samples of 10-15 ms for a 0.3 ms library call (4-10 of
// 21 in the in-process tiny case). Measured medians of the library variant
// (docs/performance.md, "Benchmark hygiene"):
// - in-process, 10000: no outlier in 84 samples, and the fastest library
//   (balanced quick 1.8 ms against 2.3 ms with 1000);
// - MPI np=2 (the other rank process waits in short sleeps), 1000: tiny 0.33 ms
//   against 1.1 ms with 10000 and 1.1-5.6 ms (max 16) with the default.
// The bench takes the value that makes the library fastest in each mode: it is
// the baseline gmmav is compared with. Only the library variant runs OpenMP
// regions (the engine's pool calls the library single-threaded).
void limit_openmp_spinning(bool mpi) {
  if (std::getenv("GOMP_SPINCOUNT") != nullptr || std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  std::ifstream f("/proc/self/cmdline", std::ios::binary);
  const std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  for (std::size_t start = 0; start < all.size();) {
    const std::size_t end = all.find('\0', start);
    args.push_back(all.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  if (args.empty()) return;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  setenv("GOMP_SPINCOUNT", mpi ? "1000" : "10000", 1);
  setenv(kMarker, "1", 1);
  execv("/proc/self/exe", argv.data());
  std::fprintf(stderr, "bench: could not re-execute with GOMP_SPINCOUNT set; libgomp's default spinning stays\n");
  unsetenv("GOMP_SPINCOUNT");
  unsetenv(kMarker);
}

std::string openmp_spin_setting() {
  const char* spin = std::getenv("GOMP_SPINCOUNT");
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  if (spin != nullptr) return std::string("GOMP_SPINCOUNT=") + spin + (config::bench_spin_marker() ? " (set by the bench)" : "");
  if (policy != nullptr) return std::string("OMP_WAIT_POLICY=") + policy;
  return "libgomp default";
}

}  // namespace gmmav::bench
