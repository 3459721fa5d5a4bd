#include "roofline.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace gmmav::bench {

double RooflineCeilings::gflops(PeakKind k) const {
  switch (k) {
    case PeakKind::fp32_fma:
      return fp32_fma_gflops;
    case PeakKind::bf16_dot:
      return bf16_dot_gflops;
    case PeakKind::amx_bf16:
      return amx_bf16_gflops;
  }
  return 0;
}

RooflineCeilings roofline_ceilings(const MachineInfo& m) {
  RooflineCeilings c;
  c.read_gbps = m.memcpy.read_1gib_all_cores;
  c.fp32_fma_gflops = m.peak.fp32_all_cores.best();
  c.bf16_dot_gflops = m.peak.bf16_all_cores.best();
  return c;  // AMX: no kernel here measures it
}

Roofline roofline(double weight_bytes, const std::vector<RouteShare>& routes, const RooflineCeilings& c) {
  Roofline r;
  if (c.read_gbps <= 0 || c.fp32_fma_gflops <= 0) return r;
  r.t_memory = weight_bytes / (c.read_gbps * 1e9);
  // Per peak kind: the FLOPs of the routes it bounds.
  double flops[3] = {}, total = 0;
  for (const RouteShare& s : routes) {
    flops[static_cast<int>(s.peak)] += s.flops;
    total += s.flops;
  }
  double counted = 0;
  for (const PeakKind k : {PeakKind::fp32_fma, PeakKind::bf16_dot, PeakKind::amx_bf16}) {
    const double f = flops[static_cast<int>(k)];
    if (f <= 0) continue;
    if (c.gflops(k) <= 0) {  // never a made-up peak: the term is left out and said so
      r.unmeasured += fmt::format("{}{} ({:.0f}% of FLOPs)", r.unmeasured.empty() ? "" : ", ", to_string(k), 100 * f / total);
      continue;
    }
    r.t_compute += f / (c.gflops(k) * 1e9);
    counted += f;
    r.peak += fmt::format("{}{}", r.peak.empty() ? "" : " + ", to_string(k));
    if (f < total) r.peak += fmt::format(" {:.0f}%", 100 * f / total);
  }
  r.peak_gflops = r.t_compute > 0 ? counted / r.t_compute * 1e-9 : 0;
  r.t = std::max(r.t_memory, r.t_compute);
  r.bound = r.t_memory >= r.t_compute ? "memory" : "compute";
  return r;
}

}  // namespace gmmav::bench
