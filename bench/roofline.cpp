#include "roofline.hpp"

#include <algorithm>

namespace gmmav::bench {

RooflineCeilings roofline_ceilings(const MachineInfo& m, DType dtype) {
  RooflineCeilings c;
  c.read_gbps = m.memcpy.read_1gib_all_cores;
  if (dtype == DType::bf16 && m.peak.bf16_all_cores > 0) {
    c.peak_gflops = m.peak.bf16_all_cores;
    c.peak_kind = "bf16 dot";
  } else {
    c.peak_gflops = m.peak.fp32_all_cores;
    c.peak_kind = "fp32 fma";
  }
  return c;
}

Roofline roofline(double weight_bytes, double flops, const RooflineCeilings& c) {
  Roofline r;
  if (c.read_gbps <= 0 || c.peak_gflops <= 0) return r;
  r.t_memory = weight_bytes / (c.read_gbps * 1e9);
  r.t_compute = flops / (c.peak_gflops * 1e9);
  r.t = std::max(r.t_memory, r.t_compute);
  r.bound = r.t_memory >= r.t_compute ? "memory" : "compute";
  return r;
}

}  // namespace gmmav::bench
