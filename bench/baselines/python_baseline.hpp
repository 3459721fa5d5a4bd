// The bench's Python baselines, each a script of bench/baselines/torch/ run by Debian's
// interpreter on a case's inputs:
// - `torch` (issue 17): what users compare gmmav with — PyTorch's composite
//   (torch_composite.py: per-expert torch.matmul, torch.cat into destination order, gloo
//   all_to_all_single, shared-expert torch.matmul) in W processes;
// - `python` (issue 31): gmmav's own Python path (gmmav_python.py: gmmav.torch's ops with the
//   weights from their cache, W rank threads), interleaved in its process with the native call
//   on packed weights.
// The bench writes a case's inputs into a temporary directory (bench_case.py reads them), runs
// the script there, reads its timing (JSON on stdout) and its outputs, and checks them. When
// PyTorch or gmmav's package cannot be imported the baseline is reported absent with the
// script's reason, never estimated.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "reference/synthetic_case.hpp"

namespace gmmav::bench {

struct PythonBaselineSettings {
  std::string script;                       ///< torch_composite.py (find_torch_composite()) or gmmav_python.py
  std::string python = "/usr/bin/python3";  ///< Debian's interpreter: the one that sees python3-torch
  std::vector<std::string> args;            ///< the script's own options (gmmav_python.py: --package DIR)
  int repeat = 5;
  int warmup = 1;
  int threads_per_rank = 0;      ///< torch_composite.py: intra-op threads of each of the W processes (0: not passed)
  bool check_reference = false;  ///< small enough for the FP64 reference
  /// Non-empty: the case's directory, made afresh (a directory already there is replaced) and kept
  /// after the run with the script's outputs and stderr (`gmmav bench --keep-case-dir`); empty:
  /// a temporary directory, removed.
  std::string keep_dir;
  bool inject_fault = false;  ///< flip the last bit of rank 0's first y element as read back (--inject-fault python)
};

struct PythonBaselineResult {
  bool attempted = false;  ///< false: not run for this case (--torch off, or not selected)
  bool available = false;  ///< the script ran and timed the composite
  std::string why;         ///< not available: why (the script's reason, or what failed)
  std::string version;
  int threads_per_rank = 0;     ///< torch_composite.py's (its processes' intra-op threads)
  int compute_threads = 0;      ///< gmmav_python.py's: the compute pool its W rank threads share
  std::vector<double> samples;  ///< seconds, slowest rank per repetition
  double median = 0;
  /// gmmav_python.py: the native call on packed weights, interleaved with the Python call in its
  /// process (seconds, slowest rank per repetition), and what the weight cache did.
  std::vector<double> native_samples;
  double native_median = 0;
  nlohmann::json cache;
  /// gmmav_python.py: microseconds from the first rank's start of a call to the last rank's entry
  /// into C++ (median over calls), for the Python call and the native call; 0 when not reported.
  double entry_us_python = 0, entry_us_native = 0;
  // Output checks (y and mmY of every rank).
  std::int64_t elements = 0;
  std::int64_t differ_from_fused = 0;  ///< elements whose bits differ from gmmav's fused output
  std::int64_t max_ulp_from_fused = 0;
  bool reference_checked = false;
  /// Within docs/spec.md §4: of the FP64 reference when checked, else within the bound of fused
  /// (spec_bound.hpp: two results each within docs/spec.md §4 differ by at most twice its tolerance).
  bool reference_ok = true;
  std::string check;     ///< one line: what was checked, the verdict
  std::string command;   ///< the shell command that ran the script (attempted runs)
  std::string case_dir;  ///< where the case was kept (keep_dir), empty when it was removed
};

/// Where torch_composite.py is: $GMMAV_TORCH_COMPOSITE, else the installed copy
/// (share/gmmav beside the executable's bin/), else the source tree's. Empty when none exists.
std::string find_torch_composite();

/// gmmav_python.py (the installed copy, else the source tree's) and the `--package DIR` it needs
/// (the installed package beside the executable's prefix, else the build tree's build/python);
/// empty script when none exists, no option when no package directory does (the interpreter's path then).
PythonBaselineSettings find_gmmav_python();

/// Runs the script on `kase`'s inputs and checks its outputs against
/// `kase`'s y / mmY (gmmav's fused outputs, already computed) and, with
/// check_reference, against the FP64 reference.
PythonBaselineResult run_python_baseline(const reference::Case& kase, const PythonBaselineSettings& s);

nlohmann::json to_json(const PythonBaselineResult& t);

/// One line on gmmav's Python path for the bench's text report: its time against `fused`
/// (seconds; the bench's variant, timed earlier in the bench's process) and against the native
/// call interleaved with it in its own process, the weight cache's hits, the output check; or
/// why it did not run.
std::string python_line(const PythonBaselineResult& p, double fused);

/// When gmmav's Python path ran and its outputs are not bit-identical to `fused` (or fail the
/// reference check), clears `verified_ok` and appends what differs to `verification`. Its outputs
/// are gmmav's: a difference fails the case, as any variant's does.
void fail_on_python_difference(const PythonBaselineResult& p, bool& verified_ok, std::string& verification);

/// "<indent>python case kept in DIR; rerun: COMMAND\n", and the same for torch, for each baseline
/// whose case directory was kept (--keep-case-dir); empty when none was.
std::string kept_case_lines(const PythonBaselineResult& python, const PythonBaselineResult& torch, std::string_view indent);

}  // namespace gmmav::bench
