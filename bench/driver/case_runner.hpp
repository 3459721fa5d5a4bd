// Runs one benchmark case (one shape, one dtype) on one backend: builds the
// data, calibrates H1 where the case asks for it, then in one run times every
// variant interleaved (warm-up first, the starting variant rotated each
// repetition), checks the outputs, and optionally traces one fused call.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cases.hpp"
#include "gmmav/comm.hpp"
#include "memory_budget.hpp"
#include "python_baseline.hpp"
#include "rank_group.hpp"
#include "roofline.hpp"
#include "variants.hpp"

namespace gmmav::bench {

struct RunSettings {
  int repeat = 5;
  int warmup = 1;
  bool trace = false;                                  ///< record one fused call of this case
  bool progress = false;                               ///< "\r" progress on stderr (rank 0)
  std::string progress_label;                          ///< e.g. "[2/5] balanced bf16"
  std::int64_t reference_flops_limit = 2'000'000'000;  ///< verify against the FP64 reference below this
  bool repack = false;  ///< the engine variants pack their weights in every call (default: once, outside the timing)
  /// CPU time the transport spends per byte moved between ranks on the cores
  /// the GEMMs use (MPI over loopback TCP on one machine: the kernel's copies,
  /// measured by --peak); 0 when not known or not applicable.
  double exchange_cpu_ns_per_byte = 0;
  int cores = 0;                           ///< cores of the machine the ranks share (with exchange_cpu_ns_per_byte)
  RooflineCeilings ceilings;               ///< the machine's as measured so far (rank 0 measured them)
  bool torch = false;                      ///< run the PyTorch composite after the variants (in-process only)
  PythonBaselineSettings torch_settings;   ///< script, interpreter, repeat/warmup (threads and the reference check are per case)
  bool python = false;                     ///< run gmmav's Python path after the variants (in-process only)
  PythonBaselineSettings python_settings;  ///< gmmav_python.py and its --package, repeat/warmup
  /// Variants a case may leave out to fit in memory (memory_budget.hpp); false: not run, and why in memory_note.
  bool aclnn = true, per_call = true, library = true;
  double memory_limit = 0;  ///< bytes all of the bench's processes on this machine may take (0: 90% of MemAvailable)
  std::string memory_note;  ///< the case's estimate and what was left out (memory_text)
};

struct CaseResult {
  CaseShape shape;  ///< as run (H1/H2 after calibration, W of the backend)
  std::string backend;
  DType dtype = DType::bf16;
  std::array<std::vector<double>, kVariants> samples;  ///< seconds, slowest rank, per repetition
  std::array<double, kVariants> median{};
  double flops = 0;                 ///< all ranks, one call
  bool weights_packed_once = true;  ///< the engine variants used PackedWeights made before the timing (false: --repack)
  double t_weight_prep = 0;         ///< diagnostic: every rank packing its call's weights on the pool, nothing else (median of 3)
  std::int64_t remote_bytes = 0;    ///< bytes leaving their rank in one call, all ranks
  double exchange_cpu_ns_per_byte = 0;  ///< from RunSettings
  int cores = 0;
  std::int64_t workspace_bytes = 0;         ///< the fused call's, largest over ranks
  std::int64_t vendor_workspace_bytes = 0;  ///< SPEC §7: A*N1*2 + 16 MiB, largest over ranks
  std::string verification;                 ///< what was checked and the verdict
  bool verified_ok = true;
  std::string library;        ///< what the library variant ran
  double contention_pct = 0;  ///< CPU time of other processes (and steal) during the timing, % of the machine
  std::vector<std::string> notes;
  nlohmann::json trace_events;           ///< this process's (in-process: all ranks') events when traced
  std::vector<std::string> trace_parts;  ///< MPI: every rank's events (rank 0)
  std::string skipped;                   ///< non-empty: the case did not run, and why
  std::string aclnn_skipped;             ///< non-empty: the aclnn variant did not run, and why
  double weight_bytes = 0;               ///< every rank's routed + shared weights (16-bit): what a call must read at least once
  std::vector<RouteShare> routes;        ///< every rank's GEMMs of one call by route: kernel, ISA, the peak that bounds it
  std::string plan;                      ///< what GMMAV_LOG=plan prints for rank 0's fused call
  RooflineCeilings ceilings;             ///< the run's best peaks (bench_command.cpp sets them again after the last case)
  PythonBaselineResult torch;            ///< the PyTorch composite on the same inputs (torch.attempted: it was asked for)
  PythonBaselineResult python;           ///< gmmav's Python path (gmmav.torch, weights from its cache) on the same inputs
  MemoryReport memory;                   ///< the estimate, the limit and what was left out to fit

  bool ran(Variant v) const { return !samples[static_cast<std::size_t>(v)].empty(); }

  double t(Variant v) const { return median[static_cast<std::size_t>(v)]; }
};

/// How ranks execute: W threads of this process, or this process as one MPI rank.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  virtual bool is_mpi() const = 0;
  /// W for a case (in-process: the case's; MPI: the process count).
  virtual int world_size(const CaseShape& c) const = 0;
  /// This process's MPI rank (0 in-process).
  virtual int process_rank() const = 0;
  /// Ranks of this group on this machine (they share its cores): in-process 1 process, MPI the local ranks.
  virtual int ranks_on_this_machine() const { return 1; }
  /// CPUs the ranks on this machine run on together (in-process: this process's).
  virtual int cores_on_this_machine() const;
  /// MPI: a polite barrier of the processes (so rank 0 can measure the machine undisturbed). In-process: nothing.
  virtual void process_barrier() {}
  /// The largest `v` over the processes (MPI), so they take the same decision; in-process `v`.
  virtual double max_over_processes(double v) { return v; }
  /// Runs fn(group, comm) on every rank of a W-rank group (in-process: W threads; MPI: this process's rank).
  virtual void for_each_rank(int W, const std::function<void(support::RankGroup&, const Comm&)>& fn) = 0;
};

std::unique_ptr<Backend> make_in_process_backend(int world_size_override);
/// Only in a build with MPI (GMMAV_WITH_MPI; mpi_backend.cpp): call it under `if constexpr (with_mpi)`.
std::unique_ptr<Backend> make_mpi_backend();

CaseResult run_case(Backend& backend, const CaseShape& shape, DType dtype, const RunSettings& s);

/// The median of `v` (0 when empty).
double median(std::vector<double> v);

/// Elements of `a` whose bits differ from the first `n` 16-bit values at `b` (a has at least n).
std::int64_t count_differences(const std::vector<std::uint16_t>& a, const void* b, std::size_t n);

/// `shape` as backend `b` runs it (W = the backend's) into `as_run`; non-empty: why the case
/// cannot run on it (a case that exists only for another W).
std::string shape_on(Backend& b, const CaseShape& shape, CaseShape& as_run);

/// The synthetic case of a shape (the combine op; a dispatch bench sets spec.op itself).
reference::CaseSpec spec_of(const CaseShape& c, DType dtype);

/// The PyTorch composite on `kase` (its spec.op), after gmmav's variants wrote their
/// outputs into it: rank 0 of an in-process backend only (empty result elsewhere; under
/// MPI attempted and refused with the reason). `flops`: one call, all ranks (for the
/// reference-check limit).
PythonBaselineResult run_torch(Backend& b, const reference::Case& kase, double flops, const RunSettings& s);

/// gmmav's Python path on `kase` (gmmav_python.py: gmmav.torch's ops, weights from their cache,
/// interleaved with the native call on packed weights), likewise after the variants, on rank 0 of
/// an in-process backend only.
PythonBaselineResult run_gmmav_python(Backend& b, const reference::Case& kase, double flops, const RunSettings& s);

/// Marks the baselines `asked` for that fit_memory left out of `fitted` as attempted, with why.
void note_left_out(const RunSettings& asked, const RunSettings& fitted, PythonBaselineResult& torch,
                   PythonBaselineResult& python);

}  // namespace gmmav::bench
