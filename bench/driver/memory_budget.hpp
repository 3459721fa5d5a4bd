// How much memory one bench case takes, part by part, and what to leave out so
// that it fits (docs/performance.md "Memory"). Estimated before anything of the
// case is allocated, like `gmmav run`'s refusal (tools/memory_limit.*): a case
// that does not fit loses variants (the PyTorch composite, aclnn,
// fused_per_call, library, in that order) or is skipped with the numbers,
// instead of the kernel's OOM killer ending the whole run.
//
// The packed copies of the weights are what grows with the host: where the gemm
// layer packs (gemm::packs_weights: FP32 for FP16 and for BF16 off the native
// route on AVX-512 hosts, BF16 on the native route), PackedWeights, every
// fused_per_call call and the aclnn weight cache each hold one copy per rank.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cases.hpp"
#include "gmmav/plan.hpp"

namespace gmmav::bench {

class Backend;
struct RunSettings;

/// Bytes this process allocates for one case, by part (estimates).
struct MemoryParts {
  double data = 0;          ///< the synthetic case: every rank's inputs and outputs (every process builds all W), the FP64 check
  double core = 0;          ///< fused, gemm_alone, a2a_alone, sequential, per_expert: outputs, workspaces, weights packed once
  double per_call = 0;      ///< fused_per_call: its outputs and the weights packed again by every call (all ranks at once)
  double aclnn = 0;         ///< aclnn: device copies of the inputs and outputs, and its weight cache's packed weights
  double library = 0;       ///< library (process rank 0, combine op): oneDNN's sources, outputs and packed weights
  double torch = 0;         ///< the PyTorch composite's W processes (rank 0, in-process), after the variants
  double python = 0;        ///< gmmav's Python path (gmmav_python.py: one process, W rank threads), after the composite
  double aclnn_cached = 0;  ///< of `aclnn`, what its weight cache still holds while the Python baselines run
};

/// What a case was estimated to need and what was left out for it.
struct MemoryReport {
  bool checked = false;
  MemoryParts parts;
  double peak = 0;                    ///< the estimate with everything the case would run
  double peak_run = 0;                ///< the estimate with what runs (after leaving variants out)
  double limit = 0;                   ///< bytes the case may take
  std::string limit_source;           ///< "--memory-limit" or "90% of MemAvailable"
  std::vector<std::string> left_out;  ///< variants not run to fit: "python", "torch", "aclnn", "fused_per_call", "library"
  bool refused = false;               ///< not even the core variants fit: the case was skipped
};

/// Bytes per weight element of the engine's packed copy on this host: 0 where no tile reads
/// a packed copy (gemm::packs_weights), 2 for BF16 on the native route, else 4 (FP32).
double packed_bytes_per_element(DType dtype);

/// The parts of `shape` (as run: W of the backend, H1 after calibration) for `op`, this
/// process (in-process: every rank; MPI: one rank, and the library on rank 0). `torch`,
/// `python`: the composite, gmmav's Python path would run after the variants. `calibrating`:
/// only data and core count.
MemoryParts estimate_memory(const Backend& b, const CaseShape& shape, DType dtype, Op op, const RunSettings& s, bool torch,
                            bool python, bool calibrating);

/// Estimates the case, compares it with the limit (s.memory_limit bytes for all of the bench's
/// processes on this machine, else 90% of MemAvailable now; shared by the ranks on the machine)
/// and leaves variants out of `s` (s.python, s.torch, s.aclnn, s.per_call, s.library) until it fits;
/// the same decision on every process. Rank 0 says on stderr what it left out or refused.
/// `label`: the case and dtype, for that line.
MemoryReport fit_memory(Backend& b, const CaseShape& shape, DType dtype, Op op, RunSettings& s, bool calibrating,
                        const std::string& label);

/// Returns memory the previous case left behind to the system: the gemm layer's cached buffers
/// (gemm::release_cached_buffers) and glibc's free heap (malloc_trim; freed vectors of a few MB
/// otherwise stay in the process: --quick's cases in one run peaked 0.3 GB higher). Before each case's
/// estimate, which is of that case alone, and before the PyTorch composite.
void release_free_memory();

/// One line for the report: the estimate, the limit, and what was left out.
std::string memory_text(const MemoryReport& m);
nlohmann::json to_json(const MemoryReport& m);

}  // namespace gmmav::bench
