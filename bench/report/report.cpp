#include "report.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace gmmav::bench {

Derived derive(const CaseResult& r) {
  Derived d;
  const double f = r.t(Variant::fused), g = r.t(Variant::gemm_alone), a = r.t(Variant::a2a_alone);
  d.bound = std::max(g, a);
  if (f > 0) {
    d.overlap_pct = std::min(g, a) > 0 ? 100.0 * (g + a - f) / std::min(g, a) : 0;
    d.fused_over_bound = d.bound > 0 ? f / d.bound : 0;
    d.speedup_vs_sequential = r.t(Variant::sequential) / f;
    d.speedup_vs_per_expert = r.t(Variant::per_expert) / f;
    d.gflops = r.flops / f * 1e-9;
  }
  d.gemm_vs_library = g > 0 && r.ran(Variant::library) ? r.t(Variant::library) / g : 0;
  if (r.exchange_cpu_ns_per_byte > 0 && r.cores > 0) {
    const double copy_cpu = static_cast<double>(r.remote_bytes) * r.exchange_cpu_ns_per_byte * 1e-9;
    d.cpu_bound = std::max(d.bound, g + copy_cpu / r.cores);
    d.fused_over_cpu_bound = f > 0 ? f / d.cpu_bound : 0;
    d.max_overlap_pct = std::min(g, a) > 0 ? 100.0 * (g + a - d.cpu_bound) / std::min(g, a) : 0;
  }
  if (r.torch.available) {
    const auto over = [&](Variant v) { return r.ran(v) && r.t(v) > 0 ? r.torch.median / r.t(v) : 0.0; };
    d.torch_over_fused = over(Variant::fused);
    d.torch_over_fused_per_call = over(Variant::fused_per_call);
    d.torch_over_aclnn = over(Variant::aclnn);
  }
  if (r.python.available && f > 0) d.python_over_fused = r.python.median / f;
  d.roofline = roofline(r.weight_bytes, r.routes, r.ceilings);
  d.fused_over_roofline = d.roofline.t > 0 ? f / d.roofline.t : 0;
  d.torch_over_roofline = d.roofline.t > 0 && r.torch.available ? r.torch.median / d.roofline.t : 0;
  return d;
}

nlohmann::json to_json(const CaseResult& r) {
  const CaseShape& c = r.shape;
  nlohmann::json j;
  j["name"] = c.name;
  j["backend"] = r.backend;
  j["W"] = c.world_size;
  j["e"] = c.experts;
  j["dtype"] = r.dtype == DType::bf16 ? "bf16" : "fp16";
  if (!r.skipped.empty()) {
    j["skipped"] = r.skipped;
    if (r.memory.checked) j["memory"] = to_json(r.memory);
    return j;
  }
  const Derived d = derive(r);
  j["t_fused_s"] = r.t(Variant::fused);
  j["t_gemm_alone_s"] = r.t(Variant::gemm_alone);
  j["t_a2a_alone_s"] = r.t(Variant::a2a_alone);
  j["t_sequential_s"] = r.t(Variant::sequential);
  j["t_per_expert_s"] = r.t(Variant::per_expert);
  j["t_library_s"] = r.t(Variant::library);
  // The user-facing entry points, the PyTorch composite and the roofline (issue 17); null where one did not run.
  const auto time_or_null = [&](Variant v) { return r.ran(v) ? nlohmann::json(r.t(v)) : nlohmann::json(nullptr); };
  const auto ratio_or_null = [](double x) { return x > 0 ? nlohmann::json(x) : nlohmann::json(nullptr); };
  j["t_fused_per_call_s"] = time_or_null(Variant::fused_per_call);
  j["t_aclnn_s"] = time_or_null(Variant::aclnn);
  if (!r.aclnn_skipped.empty()) j["aclnn_skipped"] = r.aclnn_skipped;
  j["torch"] = to_json(r.torch);
  if (r.torch.available) j["torch"]["processes"] = c.world_size;
  j["torch_over_fused"] = ratio_or_null(d.torch_over_fused);
  j["torch_over_fused_per_call"] = ratio_or_null(d.torch_over_fused_per_call);
  j["torch_over_aclnn"] = ratio_or_null(d.torch_over_aclnn);
  j["python"] = to_json(r.python);
  j["python_over_fused"] = ratio_or_null(d.python_over_fused);
  j["roofline"] = {{"t_s", d.roofline.t},
                   {"bound", d.roofline.bound},
                   {"t_memory_s", d.roofline.t_memory},
                   {"t_compute_s", d.roofline.t_compute},
                   {"weight_bytes", r.weight_bytes},
                   {"read_gbps", r.ceilings.read_gbps},
                   {"peak_gflops", d.roofline.peak_gflops},
                   {"peak", d.roofline.peak},
                   {"fp32_fma_gflops", r.ceilings.fp32_fma_gflops},
                   {"bf16_dot_gflops", r.ceilings.bf16_dot_gflops},
                   {"unmeasured", d.roofline.unmeasured},
                   {"fused_below", d.fused_over_roofline > 0 && d.fused_over_roofline < 1}};
  j["routes"] = to_json(r.routes);
  j["plan"] = r.plan;
  j["fused_over_roofline"] = ratio_or_null(d.fused_over_roofline);
  j["torch_over_roofline"] = ratio_or_null(d.torch_over_roofline);
  j["overlap_pct"] = d.overlap_pct;
  j["fused_over_bound"] = d.fused_over_bound;
  j["speedup_vs_sequential"] = d.speedup_vs_sequential;
  j["speedup_vs_per_expert"] = d.speedup_vs_per_expert;
  j["gemm_vs_library"] = d.gemm_vs_library;
  j["workspace_bytes"] = r.workspace_bytes;
  j["gflops"] = d.gflops;
  // Context beyond the required fields.
  const std::int64_t h2 = c.h2_follows_h1 ? c.h1 : c.h2;
  j["shape"] = {{"bs", c.bs},
                {"topk", c.topk},
                {"rows_per_rank", c.bs * c.topk},
                {"h1", c.h1},
                {"n1", c.n1},
                {"shared", c.shared},
                {"h2", c.shared ? h2 : 0},
                {"n2", c.shared ? c.n2 : 0},
                {"counts", reference::to_string(c.counts)}};
  j["flops"] = r.flops;
  j["remote_bytes"] = r.remote_bytes;
  if (d.cpu_bound > 0) {
    j["exchange_cpu_ns_per_byte"] = r.exchange_cpu_ns_per_byte;
    j["t_cpu_bound_s"] = d.cpu_bound;
    j["fused_over_cpu_bound"] = d.fused_over_cpu_bound;
    j["max_overlap_pct"] = d.max_overlap_pct;
  }
  j["weights_packed_once"] = r.weights_packed_once;
  j["t_weight_prep_s"] = r.t_weight_prep;
  j["vendor_workspace_bytes"] = r.vendor_workspace_bytes;
  j["verified"] = r.verified_ok;
  j["verification"] = r.verification;
  j["library"] = r.library;
  j["contention_pct"] = r.contention_pct;
  nlohmann::json samples;
  for (int v = 0; v < kVariants; ++v) samples[to_string(static_cast<Variant>(v))] = r.samples[static_cast<std::size_t>(v)];
  j["samples_s"] = samples;
  if (!r.notes.empty()) j["notes"] = r.notes;
  j["memory"] = to_json(r.memory);
  return j;
}

nlohmann::json document(const MachineInfo& m, const std::vector<CaseResult>& cases, const nlohmann::json& run_info) {
  nlohmann::json doc;
  doc["machine"] = to_json(m);
  doc["run"] = run_info;
  doc["cases"] = nlohmann::json::array();
  for (const auto& c : cases) doc["cases"].push_back(to_json(c));
  return doc;
}

namespace {

std::string ms_or_dash(const CaseResult& r, Variant v) { return r.ran(v) ? fmt::format("{:.3f}", r.t(v) * 1e3) : "-"; }
std::string ratio_or_dash(double x) { return x > 0 ? fmt::format("{:.2f}", x) : "-"; }

// What a user compares: the native call with weights packed once, the native
// call without, the aclnn C API, the PyTorch composite, and the roofline.
std::string user_table(const std::vector<CaseResult>& cases) {
  std::string s = "\nentry points vs the PyTorch composite (torch/x: speed-up over it) and the roofline:\n";
  s += fmt::format("{:<14} {:>2} {:<4} | {:>9} {:>9} {:>9} {:>9} {:>7} {:>9} | {:>7} {:>7} {:>7} | {:>9} {:<7} {:>6} {:>6}\n",
                   "case", "W", "type", "fused ms", "call ms", "aclnn ms", "py ms", "py/f", "torch ms", "t/fused", "t/call",
                   "t/aclnn", "roof ms", "bound", "f/roof", "t/roof");
  for (const auto& r : cases) {
    if (!r.skipped.empty()) continue;
    const Derived d = derive(r);
    s += fmt::format("{:<14} {:>2} {:<4} | {:>9} {:>9} {:>9} {:>9} {:>7} {:>9} | {:>7} {:>7} {:>7} | {:>9} {:<7} {:>6} {:>6}\n",
                     r.shape.name, r.shape.world_size, r.dtype == DType::bf16 ? "bf16" : "fp16", ms_or_dash(r, Variant::fused),
                     ms_or_dash(r, Variant::fused_per_call), ms_or_dash(r, Variant::aclnn),
                     r.python.available ? fmt::format("{:.3f}", r.python.median * 1e3) : "-", ratio_or_dash(d.python_over_fused),
                     r.torch.available ? fmt::format("{:.3f}", r.torch.median * 1e3) : "-", ratio_or_dash(d.torch_over_fused),
                     ratio_or_dash(d.torch_over_fused_per_call), ratio_or_dash(d.torch_over_aclnn),
                     d.roofline.t > 0 ? fmt::format("{:.3f}", d.roofline.t * 1e3) : "-", d.roofline.bound,
                     ratio_or_dash(d.fused_over_roofline), ratio_or_dash(d.torch_over_roofline));
  }
  s += "fused = gmmav::run with PackedWeights made once; call = gmmav::run packing the weights in every call (`gmmav run`);\n"
       "aclnn = the two-phase C API on aclrtMalloc memory (its weight cache: packed by the first call); py = gmmav.torch's op\n"
       "(weights from its cache, W rank threads of one Python process; py/f = py / fused); torch = the PyTorch\n"
       "composite (per-expert matmul, cat, gloo all_to_all_single, shared matmul), W processes; roof = max(weight bytes / DRAM\n"
       "read bandwidth, sum over the routes of their FLOPs / their peak) of all ranks, the peaks the best samples of the run;\n"
       "bound = the larger term; f/roof = fused / roof; t/roof = torch / roof, the most any implementation can beat\n"
       "PyTorch by: below 2, 2 x PyTorch is out of reach (D103)\n";
  return s;
}

}  // namespace

std::string table(const std::vector<CaseResult>& cases) {
  std::string s;
  for (const bool once : {true, false}) {
    if (std::any_of(cases.begin(), cases.end(),
                    [&](const CaseResult& r) { return r.skipped.empty() && r.weights_packed_once == once; }))
      s += once ? "weights: packed once before the timing (fused, gemm, seq, perexp, as lib); --repack packs them in every call\n"
                : "weights: packed in every call of fused, gemm, seq, perexp (--repack); lib packs once\n";
  }
  s += fmt::format(
      "{:<14} {:<6} {:>2} {:>2} {:<4} {:>5} | {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} | {:>6} {:>6} {:>6} {:>6} {:>6} {:>7} {:>4}\n",
      "case", "backnd", "W", "e", "type", "H1", "fused ms", "gemm ms", "a2a ms", "seq ms", "perexp ms", "lib ms", "ovlp%",
      "f/bnd", "x seq", "x pexp", "g/lib", "GFLOP/s", "cont");
  for (const auto& r : cases) {
    const CaseShape& c = r.shape;
    const char* type = r.dtype == DType::bf16 ? "bf16" : "fp16";
    if (!r.skipped.empty()) {
      s += fmt::format("{:<14} {:<6} {:>2} {:>2} {:<4}  skipped: {}\n", c.name, r.backend, c.world_size, c.experts, type,
                       r.skipped);
      continue;
    }
    const Derived d = derive(r);
    s += fmt::format(
        "{:<14} {:<6} {:>2} {:>2} {:<4} {:>5} | {:>9.3f} {:>9.3f} {:>9.3f} {:>9.3f} {:>9.3f} {:>9.3f} | {:>6.0f} {:>6.2f} "
        "{:>6.2f} {:>6.2f} {:>6.2f} {:>7.0f} {:>3.0f}%{}\n",
        c.name, r.backend, c.world_size, c.experts, type, c.h1, r.t(Variant::fused) * 1e3, r.t(Variant::gemm_alone) * 1e3,
        r.t(Variant::a2a_alone) * 1e3, r.t(Variant::sequential) * 1e3, r.t(Variant::per_expert) * 1e3,
        r.t(Variant::library) * 1e3, d.overlap_pct, d.fused_over_bound, d.speedup_vs_sequential, d.speedup_vs_per_expert,
        d.gemm_vs_library, d.gflops, r.contention_pct, r.verified_ok ? "" : "  OUTPUT CHECK FAILED");
  }
  s += "medians of the slowest rank per repetition; ovlp% = 100(gemm+a2a-fused)/min(gemm,a2a); f/bnd = fused/max(gemm,a2a);\n"
       "x seq, x pexp = speedup of fused over sequential / per-expert overlap; g/lib = library/gemm_alone; cont = other "
       "processes' CPU\n";
  s += user_table(cases);
  for (const auto& r : cases) {
    if (!r.skipped.empty()) continue;
    s += fmt::format("{} {} {}: {}\n", r.shape.name, r.backend, r.dtype == DType::bf16 ? "bf16" : "fp16", r.verification);
    s += fmt::format(
        "    weight packing alone (every rank's weights of one call, on the pool): {:.3f} ms = {:.0f}% of gemm_alone{}\n",
        r.t_weight_prep * 1e3, r.t(Variant::gemm_alone) > 0 ? 100 * r.t_weight_prep / r.t(Variant::gemm_alone) : 0,
        r.weights_packed_once ? " (not in the timings: packed once)" : " (inside every engine call: --repack)");
    if (const Derived d = derive(r); d.cpu_bound > 0)
      s += fmt::format(
          "    loopback TCP: the kernel copies {:.1f} MB between ranks at {:.2f} ns of CPU per byte = {:.3f} ms of the {} cores' "
          "time;\n"
          "      with the GEMMs that is at least {:.3f} ms: fused / that bound = {:.2f}, the best overlap possible here is "
          "{:.0f}%\n",
          static_cast<double>(r.remote_bytes) * 1e-6, r.exchange_cpu_ns_per_byte,
          static_cast<double>(r.remote_bytes) * r.exchange_cpu_ns_per_byte * 1e-6, r.cores, d.cpu_bound * 1e3,
          d.fused_over_cpu_bound, d.max_overlap_pct);
    if (!r.aclnn_skipped.empty()) s += "    aclnn variant not run: " + r.aclnn_skipped + "\n";
    if (!r.ran(Variant::library)) s += "    library variant not run (lib ms 0): " + r.library + "\n";
    if (r.python.attempted) s += "    " + python_line(r.python, r.t(Variant::fused)) + "\n";
    if (r.torch.available)
      s += fmt::format("    torch {} ({} processes x {} threads): {}{}\n", r.torch.version, r.shape.world_size,
                       r.torch.threads_per_rank, r.torch.check, r.torch.reference_ok ? "" : "  TORCH OUTPUT OUTSIDE SPEC §4");
    else if (r.torch.attempted)
      s += "    torch: absent: " + r.torch.why + "\n";
    s += kept_case_lines(r.python, r.torch, "    ");
    s += "    routes (every rank's GEMMs of one call): " + to_text(r.routes) + "\n";
    if (const Derived d = derive(r); d.roofline.t > 0) {
      s += fmt::format(
          "    roofline: weights {:.1f} MB / {:.1f} GB/s read = {:.3f} ms; {:.2f} GFLOP at {:.0f} GFLOP/s ({}) = {:.3f} ms\n",
          r.weight_bytes * 1e-6, r.ceilings.read_gbps, d.roofline.t_memory * 1e3, r.flops * 1e-9, d.roofline.peak_gflops,
          d.roofline.peak, d.roofline.t_compute * 1e3);
      if (!d.roofline.unmeasured.empty())
        s += "      not in the compute term (no peak measured for it): " + d.roofline.unmeasured + "\n";
      if (d.fused_over_roofline > 0 && d.fused_over_roofline < 1)
        s += fmt::format("      FUSED BELOW THE ROOFLINE (f/roof {:.2f}): its {} ceiling was measured low{}\n",
                         d.fused_over_roofline, d.roofline.bound,
                         std::string(d.roofline.bound) == "memory" ? " (or the weights were read from cache, not DRAM)"
                                                                   : " (see the peak's spread)");
    }
    for (const auto& n : r.notes) s += "    " + n + "\n";
  }
  return s;
}

}  // namespace gmmav::bench
