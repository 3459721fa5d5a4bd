// What the numbers were measured on: CPU, the ISA flags that matter to the
// GEMM paths, the oneDNN kernels dispatched, and measured ceilings (FMA peak,
// memcpy and DRAM read bandwidth) to read the benchmark's figures against.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tcp_loopback.hpp"

namespace gmmav::bench {

/// Samples of one measured ceiling. The figure is the best sample: a busy or slowed
/// machine only makes a sample lower, and a low ceiling would flatter every ratio to it.
struct Spread {
  std::vector<double> samples;
  double best() const;  ///< the largest sample, 0 without samples
  double min() const;
  double median() const;
  nlohmann::json to_json() const;  ///< {"best", "min", "median", "n"}
  std::string to_text() const;     ///< "best 231 (min 180, median 225, n 7)"
};

/// GFLOP/s, sampled before the cases and again after each (bench_command.cpp). A sample is
/// the FLOPs of each thread over its own CPU time, summed over the threads (fma_peak.cpp): what
/// the cores do while running the kernel, whoever else takes turns on them.
struct Peak {
  std::string isa;    ///< the FP32 FMA kernel: "avx512f", "avx2+fma" or "none"
  std::string level;  ///< gmmav's ISA level the kernels were chosen for (and GMMAV_MAX_CPU_ISA)
  Spread fp32_one_core, fp32_all_cores;
  Spread bf16_one_core, bf16_all_cores;  ///< vdpbf16ps; no samples where the level has no BF16 dot products
  /// The same all-cores samples over wall time: below the figures when other work shared the cores.
  Spread fp32_all_cores_wall, bf16_all_cores_wall;
};

struct Bandwidth {
  double mib8_one_core = 0;  ///< GB/s of memcpy (bytes copied / time)
  double mib256_one_core = 0;
  double mib256_all_cores = 0;
  double read_1gib_all_cores = 0;  ///< GB/s read: a streaming sum over 1 GiB on every core (the decode roofline)
};

struct MachineInfo {
  std::string cpu_model;
  int cpu_family = 0, cpu_model_number = 0;
  int cores = 0;                       ///< cores this process may use
  std::vector<std::string> isa_flags;  ///< the flags of interest the CPU has
  std::string onednn;                  ///< gmmav::gemm::implementation_info()
  std::string onednn_version;
  int compute_threads = 0;
  Peak peak;
  Bandwidth memcpy;
  TcpLoopback tcp;  ///< loopback TCP rate and its CPU cost (what MPI over TCP pays on one machine)
  bool measured = false;
};

/// `peak_rounds`: samples of each peak when measuring.
MachineInfo machine_info(bool measure, int peak_rounds = 5);
/// `rounds` samples of every peak, interleaved.
Peak measure_peak(int cores, int rounds);
/// One more sample of the all-cores peaks (the roofline's), and with `one_core` of the one-core ones.
void sample_peak(Peak& p, int cores, bool one_core);
Bandwidth measure_memcpy(int cores);
/// GB/s of reading `bytes` (split over `cores` threads, summed); best of a few passes.
double measure_read_gbps(std::size_t bytes, int cores);
nlohmann::json to_json(const MachineInfo& m);
std::string to_text(const MachineInfo& m);

}  // namespace gmmav::bench
