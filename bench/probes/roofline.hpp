// The least time one call can take on this machine, from two ceilings: reading
// every rank's weights once from DRAM (what bounds a decode call: few rows, so
// the weights are most of the bytes) and doing every FLOP at the peak of the
// arithmetic its GEMM's route uses (what bounds a prefill call). The roofline is
// the larger of the two.
#pragma once

#include <string>
#include <vector>

#include "machine_info.hpp"
#include "route_info.hpp"

namespace gmmav::bench {

struct RooflineCeilings {
  double read_gbps = 0;  ///< DRAM read bandwidth, all cores
  /// All cores, GFLOP/s: the best sample of the run (machine_info.hpp). 0: not measured here
  /// (AMX; BF16 dot products on a level without them), and a route bound by it has no compute term.
  double fp32_fma_gflops = 0, bf16_dot_gflops = 0, amx_bf16_gflops = 0;
  double gflops(PeakKind k) const;
};

/// The machine's ceilings as measured so far (the best sample of each peak).
RooflineCeilings roofline_ceilings(const MachineInfo& m);

struct Roofline {
  double t_memory = 0;     ///< weight bytes / read bandwidth
  double t_compute = 0;    ///< sum over the routes of their FLOPs / their peak
  double t = 0;            ///< max of the two; 0 when the machine was not measured
  const char* bound = "";  ///< "memory" or "compute"
  double peak_gflops = 0;  ///< the FLOPs of every route / t_compute: the call's effective peak
  std::string peak;        ///< which peaks: "bf16 dot", "fp32 fma", "fp32 fma 12% + bf16 dot 88%"
  std::string unmeasured;  ///< routes whose peak was not measured (their FLOPs are left out of t_compute)
};

Roofline roofline(double weight_bytes, const std::vector<RouteShare>& routes, const RooflineCeilings& c);

}  // namespace gmmav::bench
