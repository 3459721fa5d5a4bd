// The bench's output: derived figures (bound, overlap, speedups), the JSON
// document and the human table.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "case_runner.hpp"
#include "machine_info.hpp"

namespace gmmav::bench {

struct Derived {
  double bound = 0;        ///< max(t_gemm_alone, t_a2a_alone)
  double overlap_pct = 0;  ///< IMB-NBC: 100 (t_gemm + t_a2a - t_fused) / min(t_gemm, t_a2a)
  double fused_over_bound = 0;
  double speedup_vs_sequential = 0;  ///< t_sequential / t_fused
  double speedup_vs_per_expert = 0;  ///< t_per_expert / t_fused
  double gemm_vs_library = 0;        ///< t_library / t_gemm_alone
  double gflops = 0;                 ///< all ranks' FLOPs of one call / t_fused
  /// With a known CPU cost of the exchange (loopback TCP): the least time the
  /// GEMMs and the transport's copies need on the shared cores,
  /// max(bound, t_gemm + remote_bytes * cpu_per_byte / cores); 0 otherwise.
  double cpu_bound = 0;
  double fused_over_cpu_bound = 0;
  double max_overlap_pct = 0;  ///< the overlap % a fused call at cpu_bound would show
  /// Speed-up over the PyTorch composite: t_torch / t_x (0 when torch or x did not run).
  double torch_over_fused = 0, torch_over_fused_per_call = 0, torch_over_aclnn = 0;
  /// gmmav's Python path (weights from its cache) over fused: t_python / t_fused (0 when it did not run).
  double python_over_fused = 0;
  Roofline roofline;               ///< the least time of a call on this machine (roofline.hpp)
  double fused_over_roofline = 0;  ///< t_fused / roofline
  double torch_over_roofline = 0;  ///< t_torch / roofline: the most any implementation can beat PyTorch by (D103)
};

Derived derive(const CaseResult& r);

nlohmann::json to_json(const CaseResult& r);
nlohmann::json document(const MachineInfo& m, const std::vector<CaseResult>& cases, const nlohmann::json& run_info);
std::string table(const std::vector<CaseResult>& cases);

}  // namespace gmmav::bench
