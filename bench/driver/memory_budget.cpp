#include "memory_budget.hpp"

#include <fmt/format.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iterator>

#include "case_runner.hpp"
#include "gemm/buffer_cache.hpp"
#include "gemm/tile_matmul.hpp"
#include "gmmav/gmmav.hpp"
#include "library_matmul.hpp"
#include "memory_limit.hpp"

namespace gmmav::bench {

double packed_bytes_per_element(DType dtype) {
  if (!gemm::packs_weights(dtype)) return 0;
  return dtype == DType::bf16 && gemm::native_bf16_matmul() ? 2 : 4;
}

void release_free_memory() {
  gemm::release_cached_buffers();
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

MemoryParts estimate_memory(const Backend& b, const CaseShape& c, DType dtype, Op op, const RunSettings& s, bool torch,
                            bool python, bool calibrating) {
  const bool dispatch = op == Op::dispatch, mpi = b.is_mpi();
  const double W = c.world_size, e = c.experts, a = static_cast<double>(c.bs * c.topk);  // A: rows per rank (sum over ranks: W*A)
  const double h1 = static_cast<double>(c.h1), n1 = static_cast<double>(c.n1);
  const double bs = c.shared ? static_cast<double>(c.bs) : 0;
  const double h2 = c.shared ? static_cast<double>(c.h2_follows_h1 ? c.h1 : c.h2) : 0,
               n2 = c.shared ? static_cast<double>(c.n2) : 0;
  const double ranks_here = mpi ? 1 : W;         // ranks whose buffers this process holds
  const double weights = e * h1 * n1 + h2 * n2;  // elements of one rank's weights
  // One rank's 16-bit inputs and outputs (the dispatch bench writes permuteOut, A x H1).
  const double in = 2 * (a * h1 + weights + bs * h2);
  const double out = 2 * (a * n1 + bs * n2 + (dispatch ? a * h1 : 0));
  const double workspace = mpi ? 2 * a * std::max(h1, n1) : 0;  // the MPI staging ring: at most every row leaving
  // Every rank's weights packed once for the engine, in what the gemm layer packs here. While a
  // weight is packed as FP32 its FP32 conversion exists too, one per pool thread at a time (kept in
  // gemm's buffer cache afterwards), and the bench's packing diagnostic (prepare_all_weights) holds
  // one packed weight per pool thread.
  const double pe = packed_bytes_per_element(dtype);
  const double packed = pe * weights;
  const double largest = std::max(h1 * n1, h2 * n2);
  const double threads = std::max(1, compute_threads());
  const double convert = threads * largest * (pe + (pe == 4 ? 4 : 0));
  // A call without PackedWeights (fused_per_call, or every engine call with --repack) packs a weight
  // only for GEMMs on a oneDNN route (gemm::packing_for), and holds at most two at a time (the engine
  // prepares the next stage's weight during the current one; the dispatch op's shared weight besides).
  // A GEMM has at most an expert's rows: A / e with balanced counts, else up to every row of the group.
  const auto packs = [&](double rows, double k, double n) {
    const auto i = [](double v) { return static_cast<std::int64_t>(v); };
    return rows >= 1 && gemm::packing_for(dtype, i(rows), i(k), i(n)) != gemm::PreparedWeight::Packing::first_need;
  };
  const double expert_rows = c.counts == reference::CountPattern::balanced ? std::ceil(a / e) : W * a;
  const double routed_call = packs(expert_rows, h1, n1) ? h1 * n1 : 0, shared_call = packs(bs, h2, n2) ? h2 * n2 : 0;
  const double per_call_packed = pe * (dispatch ? 2 * routed_call + shared_call : 2 * std::max(routed_call, shared_call));
  MemoryParts p;
  p.data = W * (in + out);  // every process builds every rank's data
  const double flops = W * (2 * a * h1 * n1 + 2 * bs * h2 * n2);
  if (flops <= static_cast<double>(s.reference_flops_limit))  // the FP64 check: exact value, sum |a*b|, rounded bits
    p.data += W * 18 * (a * n1 + bs * n2 + (dispatch ? a * h1 : 0));
  // Combine: gemm_alone's gmmY, the send buffer, three y (a2a_alone, sequential, per_expert) and
  // three mmY; the dispatch bench has no other outputs besides fused_per_call's.
  const double buffers = dispatch ? 0 : 2 * (5 * a * n1 + 3 * bs * n2);
  p.core = ranks_here * (buffers + workspace + (s.repack ? per_call_packed : packed)) + convert;
  if (calibrating) return p;
  // fused_per_call: its own outputs and the weights it packs (with --repack the engine variants' copies serve).
  p.per_call = ranks_here * (out + (s.repack ? 0 : per_call_packed));
  // aclnn: the device copies, its weight cache's packed copy, and its outputs downloaded for the check.
  p.aclnn = ranks_here * (in + 2 * out + workspace + packed);
  p.aclnn_cached = ranks_here * packed;
  if (!dispatch && b.process_rank() == 0) {
    // The largest GEMM decides the buffers: an expert's rows (at most every routed row of the group).
    LibraryShape ls;
    ls.routed = {c.h1, c.n1, {static_cast<std::int64_t>(std::ceil(expert_rows))}};
    if (c.shared) ls.shared = {c.h2_follows_h1 ? c.h1 : c.h2, c.n2, {c.bs}};
    p.library = LibraryMatmul::estimate_bytes(dtype, ls);
  }
  if (torch && !mpi) {
    // Per process (an estimate; docs/performance.md): Python and PyTorch, the rank's inputs (FP16
    // weights upcast to FP32 once), its outputs, and a call's temporaries (each expert's rows in
    // FP32 and their product, gmmY and the send buffer; dispatch: the received and permuted rows).
    const double process = 256.0 * (1 << 20) + in + (dtype == DType::f16 ? 4 * weights : 0) + out + 4 * a * (h1 + n1) +
                           4 * a * n1 + (dispatch ? 4 * a * h1 : 0);
    p.torch = W * process;
  }
  if (python && !mpi) {
    // One process (an estimate): Python and PyTorch, every rank's inputs and outputs twice (the
    // Python call's and the native call's), and the weights packed twice (the ops' weight cache
    // and the native call's PackedWeights).
    p.python = 256.0 * (1 << 20) + W * (in + 2 * out + 2 * packed);
  }
  return p;
}

namespace {

struct Included {
  bool per_call = true, aclnn = true, library = true, torch = true, python = true;
};

// The largest of the phases: every variant's memory at once, then the Python baselines one after
// the other once the variants freed theirs (the case's data and the aclnn weight cache stay).
double peak_of(const MemoryParts& p, const Included& in) {
  const double variants =
      p.data + p.core + (in.per_call ? p.per_call : 0) + (in.aclnn ? p.aclnn : 0) + (in.library ? p.library : 0);
  const double script = std::max(in.torch ? p.torch : 0, in.python ? p.python : 0);
  const double scripts = script > 0 ? p.data + script + (in.aclnn ? p.aclnn_cached : 0) : 0;
  return std::max(variants, scripts);
}

}  // namespace

MemoryReport fit_memory(Backend& b, const CaseShape& shape, DType dtype, Op op, RunSettings& s, bool calibrating,
                        const std::string& label) {
  MemoryReport m;
  m.checked = true;
  m.parts = estimate_memory(b, shape, dtype, op, s, s.torch, s.python, calibrating);
  // The ranks on this machine share its memory: each process may take its share.
  const double here = std::max(1, b.ranks_on_this_machine());
  if (s.memory_limit > 0) {
    m.limit = s.memory_limit / here;
    m.limit_source = "--memory-limit " + cli::bytes_text(s.memory_limit);
  } else {
    m.limit = 0.9 * cli::available_memory_bytes() / here;
    m.limit_source = "90% of the memory available (MemAvailable " + cli::bytes_text(cli::available_memory_bytes()) + ")";
  }
  if (here > 1) m.limit_source += fmt::format(", shared by {} processes", static_cast<int>(here));

  const auto asked = [&] {  // what the case would run
    Included in;
    in.torch = s.torch && !calibrating;
    in.python = s.python && !calibrating;
    in.aclnn = s.aclnn && !calibrating;
    in.per_call = s.per_call && !calibrating;
    in.library = s.library && !calibrating && op == Op::combine;
    return in;
  };
  Included in = asked();
  m.peak = peak_of(m.parts, in);
  // Leave out, in this order, until it fits: level 0 = nothing, 1 = python, 2 = and torch, 3 = and
  // aclnn, 4 = and fused_per_call, 5 = and library, 6 = refused. Every process takes the largest
  // level any of them needs.
  bool* const order[] = {&in.python, &in.torch, &in.aclnn, &in.per_call, &in.library};
  const char* const names[] = {"python", "torch", "aclnn", "fused_per_call", "library"};
  constexpr int kLevels = static_cast<int>(std::size(order));
  int level = 0;
  while (level < kLevels && peak_of(m.parts, in) > m.limit) *order[level++] = false;
  if (peak_of(m.parts, in) > m.limit) level = kLevels + 1;
  level = static_cast<int>(b.max_over_processes(level));
  in = asked();
  for (int i = 0; i < std::min(level, kLevels); ++i)
    if (*order[i]) {
      *order[i] = false;
      m.left_out.push_back(names[i]);
    }
  m.refused = level == kLevels + 1;
  m.peak_run = peak_of(m.parts, in);
  if (!calibrating) {
    s.python = in.python;
    s.torch = in.torch;
    s.aclnn = in.aclnn;
    s.per_call = in.per_call;
    s.library = in.library;
  }
  s.memory_note = memory_text(m);
  if (b.process_rank() == 0 && (m.refused || !m.left_out.empty()))
    std::fprintf(stderr, "gmmav bench: %s: %s\n", label.c_str(), s.memory_note.c_str());
  return m;
}

std::string memory_text(const MemoryReport& m) {
  if (!m.checked) return {};
  const MemoryParts& p = m.parts;
  const auto t = [](double v) { return cli::bytes_text(v); };
  std::string parts = fmt::format("data {}, core variants {}", t(p.data), t(p.core));
  if (p.per_call > 0) parts += ", fused_per_call " + t(p.per_call);
  if (p.aclnn > 0) parts += ", aclnn " + t(p.aclnn);
  if (p.library > 0) parts += ", library " + t(p.library);
  if (p.torch > 0) parts += ", torch " + t(p.torch);
  if (p.python > 0) parts += ", python " + t(p.python);
  std::string s = fmt::format("memory: estimated peak {} ({}), limit {} ({})", t(m.peak), parts, t(m.limit), m.limit_source);
  if (m.refused)
    return s + fmt::format(
                   "; not run: even without python, torch, aclnn, fused_per_call and library it needs {} (data + core variants)",
                   t(p.data + p.core));
  if (!m.left_out.empty()) {
    std::string names;
    for (const auto& n : m.left_out) names += (names.empty() ? "" : ", ") + n;
    s += fmt::format("; left out to fit: {} (peak {})", names, t(m.peak_run));
  }
  return s;
}

nlohmann::json to_json(const MemoryReport& m) {
  if (!m.checked) return nullptr;
  const MemoryParts& p = m.parts;
  return {{"estimated_peak_bytes", m.peak},
          {"estimated_peak_run_bytes", m.peak_run},
          {"limit_bytes", m.limit},
          {"limit", m.limit_source},
          {"parts_bytes",
           {{"data", p.data},
            {"core", p.core},
            {"fused_per_call", p.per_call},
            {"aclnn", p.aclnn},
            {"library", p.library},
            {"torch", p.torch},
            {"python", p.python}}},
          {"left_out", m.left_out},
          {"refused", m.refused}};
}

}  // namespace gmmav::bench
