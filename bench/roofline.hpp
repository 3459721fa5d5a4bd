// The least time one call can take on this machine, from two ceilings: reading
// every rank's weights once from DRAM (what bounds a decode call: few rows, so
// the weights are most of the bytes) and doing every FLOP at the measured peak
// (what bounds a prefill call). The roofline is the larger of the two.
#pragma once

#include <string>

#include "gmmav/types.hpp"
#include "machine_info.hpp"

namespace gmmav::bench {

struct RooflineCeilings {
  double peak_gflops = 0;  ///< all cores, for the case's dtype
  std::string peak_kind;   ///< which peak: "bf16 dot" or "fp32 fma"
  double read_gbps = 0;    ///< DRAM read bandwidth, all cores
};

/// BF16: the vdpbf16ps peak where the CPU has AVX512_BF16, else the FP32 FMA
/// peak. FP16: the FP32 FMA peak (no FP16 arithmetic on these CPUs, and FP16
/// must not be computed as BF16: it is converted to FP32).
RooflineCeilings roofline_ceilings(const MachineInfo& m, DType dtype);

struct Roofline {
  double t_memory = 0;     ///< weight bytes / read bandwidth
  double t_compute = 0;    ///< FLOPs / peak
  double t = 0;            ///< max of the two; 0 when the machine was not measured
  const char* bound = "";  ///< "memory" or "compute"
};

Roofline roofline(double weight_bytes, double flops, const RooflineCeilings& c);

}  // namespace gmmav::bench
