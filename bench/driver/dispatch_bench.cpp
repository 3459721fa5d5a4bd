#include "dispatch_bench.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "aclnn_variant.hpp"
#include "reference/dispatch_reference.hpp"
#include "reference/synthetic_case.hpp"
#include "variant_order.hpp"

namespace gmmav::bench {
namespace {

using Clock = std::chrono::steady_clock;

// One rank's timed calls, their cross-checks and (small cases) the FP64 reference check.
void run_rank(support::RankGroup& g, const Comm& comm, reference::Case& kase, const Plan& plan, const RunSettings& s,
              std::unique_ptr<AclnnCommunicators>& comms, DispatchResult& res) {
  const int r = g.rank();
  const reference::RankData& rd = kase.ranks[static_cast<std::size_t>(r)];
  const OpTensors fused = kase.tensors(r);  // writes into the case: checked against the reference
  // fused_per_call writes its own copies of the outputs, compared with fused's.
  // (Not allocated when fused_per_call is left out to fit in memory.)
  const std::size_t copies = s.per_call ? 1 : 0;
  std::vector<std::uint16_t> y(copies * rd.y.size()), mm_y(copies * rd.mm_y.size()), permute_out(copies * rd.permute_out.size());
  OpTensors per_call = fused;
  per_call.y.data = y.data();
  if (per_call.mm_y) per_call.mm_y->data = mm_y.data();
  if (per_call.permute_out) per_call.permute_out->data = permute_out.data();
  std::vector<std::byte> workspace(workspace_size(plan, comm));
  PackedWeights packed;
  if (!s.repack) packed = PackedWeights::create(plan, fused);  // once, outside the timing
  std::string why = "left out to fit in memory (" + s.memory_note + ")";
  // The same decision on every rank (setup_aclnn_rank is collective).
  std::unique_ptr<AclnnRank> aclnn = s.aclnn ? setup_aclnn_rank(g, comms, plan, fused, why) : nullptr;
  if (r == 0 && !aclnn) res.aclnn_skipped = why;

  const auto run = [&](DispatchVariant v) {
    switch (v) {
      case DispatchVariant::fused:
        if (packed)
          gmmav::run(plan, comm, fused, packed, workspace);
        else
          gmmav::run(plan, comm, fused, workspace);
        break;
      case DispatchVariant::fused_per_call:
        gmmav::run(plan, comm, per_call, workspace);
        break;
      case DispatchVariant::aclnn:
        aclnn->call();
        break;
    }
  };
  const auto timed = [&](DispatchVariant v) {
    g.barrier();
    const auto t0 = Clock::now();
    run(v);
    return g.max(std::chrono::duration<double>(Clock::now() - t0).count());
  };
  const auto runs = [&](int v) {
    const auto dv = static_cast<DispatchVariant>(v);
    return (dv != DispatchVariant::aclnn || aclnn != nullptr) && (dv != DispatchVariant::fused_per_call || s.per_call);
  };
  for (int w = 0; w < s.warmup; ++w)
    for (int v = 0; v < kDispatchVariants; ++v)
      if (runs(v)) timed(static_cast<DispatchVariant>(v));
  for (int rep = 0; rep < s.repeat; ++rep)
    for (const int v : variant_order(rep, kDispatchVariants)) {
      if (!runs(v)) continue;
      const double t = timed(static_cast<DispatchVariant>(v));
      if (r == 0) res.samples[static_cast<std::size_t>(v)].push_back(t);
    }

  // 1. The other variants' outputs against fused's: the same engine, so bit-identical.
  const std::int64_t diff = !s.per_call ? 0
                                        : count_differences(y, fused.y.data, rd.y.size()) +
                                              count_differences(mm_y, rd.mm_y.data(), rd.mm_y.size()) +
                                              count_differences(permute_out, rd.permute_out.data(), rd.permute_out.size());
  std::int64_t aclnn_diff = 0;
  if (aclnn)
    aclnn_diff = count_differences(aclnn->y(), rd.y.data(), rd.y.size()) +
                 count_differences(aclnn->mm_y(), rd.mm_y.data(), rd.mm_y.size()) +
                 count_differences(aclnn->permute_out(), rd.permute_out.data(), rd.permute_out.size());
  const double total_diff = g.sum(static_cast<double>(diff)), total_aclnn_diff = g.sum(static_cast<double>(aclnn_diff));
  // 2. Small cases: fused against the FP64 reference (gmmY within docs/spec.md §4, permuteOut bit for bit).
  const bool ref_checked = res.flops <= static_cast<double>(s.reference_flops_limit);
  double ref_bad = 0;
  std::string ref_text;
  if (ref_checked) {
    g.barrier();
    if (!g.is_mpi()) {
      if (r == 0) {
        const auto check = reference::check_case(kase, false);
        ref_bad = check.ok ? 0 : 1;
        ref_text = check.ok ? fmt::format("max rel err {:.2g}", check.max_rel_error) : check.first_failure;
      }
    } else {
      const auto check = reference::check_case(kase, false, r);  // this process's rank only
      ref_bad = g.sum(check.ok ? 0 : 1);
    }
  }
  if (r == 0) {
    res.verified_ok = total_diff == 0 && total_aclnn_diff == 0 && ref_bad == 0;
    res.verification = fmt::format("fused gmmY/mmY/permuteOut vs fused_per_call: {}; vs aclnn: {}",
                                   !s.per_call       ? std::string("not run")
                                   : total_diff == 0 ? std::string("bit-identical")
                                                     : fmt::format("{} elements DIFFER", total_diff),
                                   !aclnn                  ? std::string("not run")
                                   : total_aclnn_diff == 0 ? std::string("bit-identical")
                                                           : fmt::format("{} elements DIFFER", total_aclnn_diff));
    res.verification += ref_checked ? fmt::format("; vs FP64 reference: {}{}", ref_bad == 0 ? "PASS" : "FAIL",
                                                  ref_text.empty() ? "" : " (" + ref_text + ")")
                                    : std::string("; FP64 reference skipped (too large)");
  }
}

}  // namespace

const char* to_string(DispatchVariant v) {
  switch (v) {
    case DispatchVariant::fused:
      return "fused";
    case DispatchVariant::fused_per_call:
      return "fused_per_call";
    case DispatchVariant::aclnn:
      return "aclnn";
  }
  return "?";
}

DispatchResult run_dispatch_case(Backend& b, const CaseShape& shape, DType dtype, const RunSettings& settings) {
  DispatchResult res;
  res.backend = b.name();
  res.dtype = dtype;
  res.skipped = shape_on(b, shape, res.shape);
  if (!res.skipped.empty()) return res;
  RunSettings s = settings;  // less what does not fit in memory
  release_free_memory();     // the previous case's: the estimate is of this case alone
  res.memory = fit_memory(b, res.shape, dtype, Op::dispatch, s, false,
                          fmt::format("{} {} (dispatch)", shape.name, dtype == DType::bf16 ? "bf16" : "fp16"));
  if (res.memory.refused) {
    res.skipped = s.memory_note;
    return res;
  }
  note_left_out(settings, s, res.torch, res.python);
  const int W = res.shape.world_size;
  reference::CaseSpec spec = spec_of(res.shape, dtype);
  spec.op = Op::dispatch;
  spec.permute_out = res.permute_out;
  reference::Case kase = reference::make_case(spec);
  std::vector<Plan> plans;
  for (int r = 0; r < W; ++r) {
    plans.push_back(Plan::create(kase.desc(r)));
    const Plan& p = plans.back();
    res.flops += static_cast<double>(p.flops());
    res.remote_bytes += (p.rows_in() - p.rows_to(r)) * p.desc().h1 * 2;
  }
  std::unique_ptr<AclnnCommunicators> comms;  // outlives every rank's AclnnRank
  b.for_each_rank(W, [&](support::RankGroup& g, const Comm& comm) {
    run_rank(g, comm, kase, plans[static_cast<std::size_t>(g.rank())], s, comms, res);
  });
  for (int v = 0; v < kDispatchVariants; ++v)
    res.median[static_cast<std::size_t>(v)] = median(res.samples[static_cast<std::size_t>(v)]);
  if (s.torch || s.python) release_free_memory();  // the scripts need only the case (the memory estimate counts on it)
  if (s.torch) res.torch = run_torch(b, kase, res.flops, s);
  if (s.python) {
    res.python = run_gmmav_python(b, kase, res.flops, s);
    fail_on_python_difference(res.python, res.verified_ok, res.verification);
  }
  return res;
}

nlohmann::json to_json(const DispatchResult& r) {
  nlohmann::json j{{"op", "dispatch"},
                   {"case", r.shape.name},
                   {"backend", r.backend},
                   {"dtype", r.dtype == DType::bf16 ? "bf16" : "fp16"},
                   {"W", r.shape.world_size},
                   {"e", r.shape.experts},
                   {"bs", r.shape.bs},
                   {"topk", r.shape.topk},
                   {"h1", r.shape.h1},
                   {"n1", r.shape.n1},
                   {"shared_expert", r.shape.shared},
                   {"permute_out", r.permute_out}};
  if (!r.skipped.empty()) {
    j["skipped"] = r.skipped;
    if (r.memory.checked) j["memory"] = to_json(r.memory);
    return j;
  }
  j["flops"] = r.flops;
  j["remote_bytes"] = r.remote_bytes;
  for (int v = 0; v < kDispatchVariants; ++v) {
    const auto dv = static_cast<DispatchVariant>(v);
    j["variants"][to_string(dv)] = r.ran(dv)
                                       ? nlohmann::json{{"t_s", r.t(dv)}, {"samples_s", r.samples[static_cast<std::size_t>(v)]}}
                                       : nlohmann::json(nullptr);
  }
  if (!r.aclnn_skipped.empty()) j["aclnn_skipped"] = r.aclnn_skipped;
  j["memory"] = to_json(r.memory);
  j["verification"] = r.verification;
  j["verified"] = r.verified_ok;
  j["torch"] = to_json(r.torch);
  j["python"] = to_json(r.python);
  return j;
}

std::string dispatch_table(const std::vector<DispatchResult>& results) {
  std::string out = fmt::format(
      "dispatch op (AlltoAllv -> Permute -> GroupedMatMul, permuteOut written); times in ms, "
      "slowest rank, median\n{:<14} {:<5} {:>3} {:>3} {:>6} {:>6} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8}\n",
      "case", "dtype", "W", "e", "A/rk", "H1", "N1", "fused", "per_call", "aclnn", "python", "torch", "GFLOP/s");
  const auto ms = [](bool ran, double t) { return ran ? fmt::format("{:.3f}", t * 1e3) : std::string("-"); };
  for (const DispatchResult& r : results) {
    const char* dt = r.dtype == DType::bf16 ? "bf16" : "fp16";
    if (!r.skipped.empty()) {
      out += fmt::format("{:<14} {:<5} skipped: {}\n", r.shape.name, dt, r.skipped);
      continue;
    }
    const double t = r.t(DispatchVariant::fused);
    out += fmt::format("{:<14} {:<5} {:>3} {:>3} {:>6} {:>6} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8.1f}\n", r.shape.name, dt,
                       r.shape.world_size, r.shape.experts, r.shape.bs * r.shape.topk, r.shape.h1, r.shape.n1,
                       ms(r.ran(DispatchVariant::fused), t),
                       ms(r.ran(DispatchVariant::fused_per_call), r.t(DispatchVariant::fused_per_call)),
                       ms(r.ran(DispatchVariant::aclnn), r.t(DispatchVariant::aclnn)), ms(r.python.available, r.python.median),
                       ms(r.torch.available, r.torch.median), t > 0 ? r.flops / t * 1e-9 : 0.0);
    out += fmt::format("  check: {}{}\n", r.verification, r.verified_ok ? "" : "  <-- FAILED");
    if (!r.memory.left_out.empty()) out += fmt::format("  {}\n", memory_text(r.memory));
    if (!r.aclnn_skipped.empty()) out += fmt::format("  aclnn not run: {}\n", r.aclnn_skipped);
    if (r.python.attempted) out += "  " + python_line(r.python, r.t(DispatchVariant::fused)) + "\n";
    if (r.torch.attempted)
      out += r.torch.available
                 ? fmt::format("  torch {} ({} threads/rank): {}\n", r.torch.version, r.torch.threads_per_rank, r.torch.check)
                 : fmt::format("  torch not run: {}\n", r.torch.why);
    out += kept_case_lines(r.python, r.torch, "  ");
  }
  return out;
}

}  // namespace gmmav::bench
