// The `torch` baseline (issue 17): what users compare gmmav with — Debian's
// PyTorch running the composite of bench/baselines/torch/torch_composite.py (per-expert
// torch.matmul, torch.cat into destination order, gloo all_to_all_single,
// shared-expert torch.matmul) in W processes. The bench writes a case's inputs
// into a temporary directory, runs the script there, reads its timing (JSON on
// stdout) and its outputs, and checks them. When PyTorch cannot be imported the
// baseline is reported absent with the script's reason, never estimated.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "reference/synthetic_case.hpp"

namespace gmmav::bench {

struct TorchSettings {
  std::string script;                       ///< torch_composite.py (find_torch_composite())
  std::string python = "/usr/bin/python3";  ///< Debian's interpreter: the one that sees python3-torch
  int repeat = 5;
  int warmup = 1;
  int threads_per_rank = 1;      ///< intra-op threads of each of the W processes
  bool check_reference = false;  ///< small enough for the FP64 reference
};

struct TorchResult {
  bool attempted = false;  ///< false: not run for this case (--torch off, or not selected)
  bool available = false;  ///< the script ran and timed the composite
  std::string why;         ///< not available: why (the script's reason, or what failed)
  std::string version;
  int threads_per_rank = 0;
  std::vector<double> samples;  ///< seconds, slowest rank per repetition
  double median = 0;
  // Output checks (y and mmY of every rank).
  std::int64_t elements = 0;
  std::int64_t differ_from_fused = 0;  ///< elements whose bits differ from gmmav's fused output
  std::int64_t max_ulp_from_fused = 0;
  bool reference_checked = false;
  /// Within docs/spec.md §4: of the FP64 reference when checked, else within the bound of fused
  /// (spec_bound.hpp: two results each within docs/spec.md §4 differ by at most twice its tolerance).
  bool reference_ok = true;
  std::string check;  ///< one line: what was checked, the verdict
};

/// Where torch_composite.py is: $GMMAV_TORCH_COMPOSITE, else the installed copy
/// (share/gmmav beside the executable's bin/), else the source tree's. Empty when none exists.
std::string find_torch_composite();

/// Runs the composite on `kase`'s inputs and checks its outputs against
/// `kase`'s y / mmY (gmmav's fused outputs, already computed) and, with
/// check_reference, against the FP64 reference.
TorchResult run_torch_baseline(const reference::Case& kase, const TorchSettings& s);

nlohmann::json to_json(const TorchResult& t);

}  // namespace gmmav::bench
