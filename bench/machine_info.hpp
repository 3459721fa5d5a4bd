// What the numbers were measured on: CPU, the ISA flags that matter to the
// GEMM paths, the oneDNN kernels dispatched, and measured ceilings (FMA peak,
// memcpy and DRAM read bandwidth) to read the benchmark's figures against.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tcp_loopback.hpp"

namespace gmmav::bench {

struct Peak {
  std::string isa;           ///< "avx512f", "avx2+fma" or "none"
  double fp32_one_core = 0;  ///< GFLOP/s
  double fp32_all_cores = 0;
  double bf16_one_core = 0;  ///< vdpbf16ps, 0 when the CPU has no avx512_bf16
  double bf16_all_cores = 0;
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

MachineInfo machine_info(bool measure);
Peak measure_peak(int cores);
Bandwidth measure_memcpy(int cores);
/// GB/s of reading `bytes` (split over `cores` threads, summed); best of a few passes.
double measure_read_gbps(std::size_t bytes, int cores);
nlohmann::json to_json(const MachineInfo& m);
std::string to_text(const MachineInfo& m);

}  // namespace gmmav::bench
