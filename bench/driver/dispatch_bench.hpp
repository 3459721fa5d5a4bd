// `gmmav bench --op dispatch`: the dispatch op (docs/dispatch-op.md) on the
// named case shapes. Of the combine op's variants those that make sense for
// it: fused (gmmav::run, weights packed once), fused_per_call (every call
// packs its weights), aclnn (the two-phase C API as a CANN user calls it), and
// the PyTorch composite (all_to_all_single, permute into expert-major order,
// per-expert torch.matmul, shared expert). The baselines built from the
// combine op's pieces (gemm_alone, a2a_alone, sequential, per_expert, library)
// are not: their transports and kernels send results, not inputs.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "case_runner.hpp"

namespace gmmav::bench {

enum class DispatchVariant : int { fused, fused_per_call, aclnn };
inline constexpr int kDispatchVariants = 3;
const char* to_string(DispatchVariant v);

struct DispatchResult {
  CaseShape shape;  ///< as run (W of the backend)
  std::string backend;
  DType dtype = DType::bf16;
  bool permute_out = true;  ///< the calls write permuteOut (else the rows land in the workspace)
  std::array<std::vector<double>, kDispatchVariants> samples;  ///< seconds, slowest rank, per repetition
  std::array<double, kDispatchVariants> median{};
  double flops = 0;               ///< all ranks, one call
  std::int64_t remote_bytes = 0;  ///< bytes leaving their rank in one call, all ranks (H1-wide rows)
  std::string verification;
  bool verified_ok = true;
  std::string skipped;        ///< the case did not run, and why
  std::string aclnn_skipped;  ///< the aclnn variant did not run, and why
  PythonBaselineResult torch;
  PythonBaselineResult python;
  MemoryReport memory;  ///< the estimate, the limit and what was left out to fit

  bool ran(DispatchVariant v) const { return !samples[static_cast<std::size_t>(v)].empty(); }
  double t(DispatchVariant v) const { return median[static_cast<std::size_t>(v)]; }
};

DispatchResult run_dispatch_case(Backend& backend, const CaseShape& shape, DType dtype, const RunSettings& s);

nlohmann::json to_json(const DispatchResult& r);
std::string dispatch_table(const std::vector<DispatchResult>& results);

}  // namespace gmmav::bench
