// `gmmav run`: builds a synthetic case, runs the operator on an in-process
// group (one thread per rank) or, under mpirun, one rank per process, checks
// every rank's outputs against the FP64 reference and prints a summary (or JSON).
// --op picks the operator: combine (y, mmY) or dispatch (gmmY, mmY, permuteOut).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "commands.hpp"
#include "engine/compute_pool.hpp"
#include "gmmav/gmmav.hpp"
#include "memory_limit.hpp"
#include "numeric/half.hpp"
#include "option_checks.hpp"
#include "process_group.hpp"
#include "reference/synthetic_case.hpp"

namespace gmmav::cli {
namespace {

struct RunOptions {
  std::string op = "combine";
  bool permute_out = false;  // dispatch only
  int world_size = 8;
  int experts = 4;
  std::int64_t bs = 256;
  std::int64_t topk = 2;
  std::int64_t h1 = 512, n1 = 512, h2 = 0, n2 = 512;
  std::string dtype = "both";
  bool no_shared = false;
  bool trans_gmm = false, trans_mm = false;
  std::string counts = "balanced";
  std::string values = "random";
  std::uint64_t seed = 1;
  int repeat = 3;
  int threads = 0;
  bool json = false;
  bool no_verify = false;
  std::string inject_fault;  // test-only: "y" (the routed output), "mmY" or "permuteOut"
  std::string backend = "auto";
  bool world_size_given = false;
  double memory_limit = 0;  // bytes; 0: the machine's physical memory
};

struct Result {
  std::string dtype;
  double seconds = 0;
  double gflops = 0;
  std::int64_t flops = 0;
  reference::CaseCheck check;
  bool verified = false;
  std::string error;
  bool pass() const { return error.empty() && (!verified || check.ok); }
};

// Test-only: adds max(1, |v|) to one element v of the first non-empty y (or
// mmY, or permuteOut), after the run and before verification, so tests can
// prove the check catches a wrong output. Returns false when there is nothing to corrupt.
bool inject_fault(reference::Case& c, const std::string& tensor) {
  for (auto& rank : c.ranks) {
    auto& v = tensor == "y" ? rank.y : tensor == "mmY" ? rank.mm_y : rank.permute_out;
    if (v.empty()) continue;
    auto& x = v[v.size() / 2];
    const double d = reference::to_double(c.spec.dtype, x);
    const double wrong = d + std::max(1.0, std::fabs(d));
    x = numeric::from_double(c.spec.dtype, wrong);
    return true;
  }
  return false;
}

// Under MPI every process checked only its own rank: the group's check, the
// same on every process (the first failure text only on rank 0).
reference::CaseCheck whole_group(const ProcessGroup& g, const reference::CaseCheck& mine) {
  if (!g.is_mpi()) return mine;
  reference::CaseCheck all;
  all.ok = g.max(mine.ok ? 0 : 1) == 0;
  all.max_rel_error = g.max(mine.max_rel_error);
  all.max_abs_error = g.max(mine.max_abs_error);
  all.max_error_to_bound = g.max(mine.max_error_to_bound);
  all.max_ulp_error = g.max(mine.max_ulp_error);
  all.mean_rel_error = g.sum(mine.mean_rel_error) / g.size();  // every rank has the same number of tensors
  all.bit_differences = static_cast<std::int64_t>(g.sum(static_cast<double>(mine.bit_differences)));
  for (const auto& f : g.gather(mine.first_failure))
    if (all.first_failure.empty()) all.first_failure = f;
  return all;
}

// One timed call: every rank on its own thread here, or this process's rank under MPI
// (then the slowest rank's time). Returns the first rank's error, "" when all succeeded.
std::string call_once(reference::Case& c, const ProcessGroup& g, double& seconds) {
  if (!g.is_mpi()) {
    const auto t0 = std::chrono::steady_clock::now();
    const auto errors = reference::run_in_process(c);
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (std::size_t k = 0; k < errors.size(); ++k)
      if (!errors[k].empty()) return "rank " + std::to_string(k) + ": " + errors[k];
    return {};
  }
  std::string error;
  g.barrier();
  const auto t0 = std::chrono::steady_clock::now();
  try {
    const Plan plan = Plan::create(c.desc(g.rank()));
    std::vector<std::byte> workspace(workspace_size(plan, g.comm()));  // the MPI backend's staging ring
    run(plan, g.comm(), c.tensors(g.rank()), workspace);
  } catch (const std::exception& e) {
    error = "rank " + std::to_string(g.rank()) + ": " + e.what();
  }
  seconds = g.max(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  if (g.max(error.empty() ? 0 : 1) == 0) return {};
  for (const auto& e : g.gather(error))
    if (!e.empty()) return e;
  return error.empty() ? "another rank failed (rank 0 prints it)" : error;
}

Result run_one(const RunOptions& o, DType t, const ProcessGroup& g) {
  reference::CaseSpec s;
  s.op = o.op == "dispatch" ? Op::dispatch : Op::combine;
  s.permute_out = o.permute_out;
  s.world_size = o.world_size;
  s.local_experts = o.experts;
  s.rows_per_rank = o.bs * o.topk;
  s.h1 = o.h1;
  s.n1 = o.n1;
  s.dtype = t;
  s.trans_gmm_weight = o.trans_gmm;
  s.shared_expert = !o.no_shared;
  s.bs = o.bs;
  s.h2 = o.h2 > 0 ? o.h2 : o.h1;
  s.n2 = o.n2;
  s.trans_mm_weight = o.trans_mm;
  s.counts = o.counts == "random"   ? reference::CountPattern::random
             : o.counts == "skewed" ? reference::CountPattern::skewed
                                    : reference::CountPattern::balanced;
  s.values = o.values == "exact" ? reference::ValueKind::exact : reference::ValueKind::random;
  s.seed = o.seed;
  Result r;
  r.dtype = t == DType::f16 ? "fp16" : "bf16";
  reference::Case c = reference::make_case(s);
  for (int rank = 0; rank < o.world_size; ++rank) r.flops += Plan::create(c.desc(rank)).flops();
  std::vector<double> times;
  for (int i = 0; i < std::max(1, o.repeat); ++i) {
    double seconds = 0;
    r.error = call_once(c, g, seconds);
    times.push_back(seconds);
    if (!r.error.empty()) return r;
  }
  if (!o.inject_fault.empty() && !inject_fault(c, o.inject_fault)) {
    r.error = "--inject-fault " + o.inject_fault + ": no rank has a non-empty " + o.inject_fault + " to corrupt";
    return r;
  }
  std::sort(times.begin(), times.end());
  r.seconds = times[times.size() / 2];
  r.gflops = static_cast<double>(r.flops) / r.seconds * 1e-9;
  if (!o.no_verify) {
    r.check = whole_group(g, reference::check_case(c, s.values == reference::ValueKind::exact, g.is_mpi() ? g.rank() : -1));
    r.verified = true;
  }
  return r;
}

// Bytes a case takes while it runs and is checked: every rank's 16-bit inputs
// and outputs (this process builds all of them), plus the FP64 reference's
// exact value and sum |a*b| (8 bytes each) and rounded bits per output element.
// Sum over ranks of BSK is W * A, whatever the routing.
double case_bytes(const RunOptions& o) {
  const double W = o.world_size, e = o.experts, a = static_cast<double>(o.bs) * static_cast<double>(o.topk);
  const double h1 = static_cast<double>(o.h1), n1 = static_cast<double>(o.n1);
  const double bs = o.no_shared ? 0 : static_cast<double>(o.bs), h2 = static_cast<double>(o.h2 > 0 ? o.h2 : o.h1),
               n2 = o.no_shared ? 0 : static_cast<double>(o.n2);
  const double inputs = a * h1 + e * h1 * n1 + bs * h2 + h2 * n2;
  // The dispatch op also holds the received rows (permuteOut or the workspace), A x H1.
  const double outputs = a * n1 + bs * n2 + (o.op == "dispatch" ? a * h1 : 0);
  return W * (2 * inputs + (2 + 2 + 8 + 8) * outputs);
}

// The refusal of a case larger than this machine's memory (before anything is
// allocated: std::bad_alloc halfway through says nothing), or "" when it fits.
std::string memory_refusal(const RunOptions& o) {
  const double need = case_bytes(o), have = o.memory_limit > 0 ? o.memory_limit : physical_memory_bytes();
  if (have <= 0 || need <= have) return {};
  auto n = [](std::int64_t v) { return std::to_string(v); };
  return "the case needs about " + bytes_text(need) + " (W=" + n(o.world_size) + " ranks, e=" + n(o.experts) + ", BS=" + n(o.bs) +
         ", K=" + n(o.topk) + ", H1=" + n(o.h1) + ", N1=" + n(o.n1) + ", H2=" + n(o.h2 > 0 ? o.h2 : o.h1) + ", N2=" + n(o.n2) +
         ": 16-bit inputs and outputs of every rank plus the FP64 reference), more than " +
         (o.memory_limit > 0 ? "--memory-limit " + bytes_text(have) : "this machine's " + bytes_text(have) + " of memory") +
         "; reduce -W, -e, --bs, -k, --h1, --n1, --h2 or --n2";
}

int run(RunOptions o) {
  if (o.permute_out && o.op != "dispatch") {
    std::fprintf(stderr, "gmmav run: --permute-out: expected --op dispatch (only the dispatch op has permuteOut), got --op %s\n",
                 o.op.c_str());
    return 2;
  }
  if (o.inject_fault == "permuteOut" && !o.permute_out) {
    std::fprintf(stderr, "gmmav run: --inject-fault permuteOut: expected --op dispatch --permute-out\n");
    return 2;
  }
  const ProcessGroup g(o.backend);
  if (g.is_mpi()) {
    // One process per rank: W is the launcher's, and a different -W is an error on every rank.
    if (o.world_size_given && o.world_size != g.size()) {
      if (g.root())
        std::fprintf(stderr, "gmmav run: -W/--world-size: expected %d (the processes mpirun started, one per rank), got %d\n",
                     g.size(), o.world_size);
      return 2;
    }
    o.world_size = g.size();
  }
  if (const std::string refusal = memory_refusal(o); !refusal.empty()) {
    if (g.root()) std::fprintf(stderr, "gmmav run: %s\n", refusal.c_str());
    return 2;
  }
  if (o.threads > 0)
    set_compute_threads(o.threads);
  else
    g.share_cores();
  std::vector<DType> types;
  if (o.dtype == "fp16" || o.dtype == "both") types.push_back(DType::f16);
  if (o.dtype == "bf16" || o.dtype == "both") types.push_back(DType::bf16);
  std::vector<Result> results;
  for (DType t : types) results.push_back(run_one(o, t, g));
  if (!g.root()) {  // rank 0 prints; every process exits with the group's status
    for (const auto& r : results)
      if (!r.pass()) return 1;
    return 0;
  }
  bool pass = true;
  for (const auto& r : results) pass = pass && r.pass();
  const std::string shared = o.no_shared ? "no shared expert"
                                         : "shared expert BS=" + std::to_string(o.bs) +
                                               " H2=" + std::to_string(o.h2 > 0 ? o.h2 : o.h1) + " N2=" + std::to_string(o.n2);
  if (o.json) {
    nlohmann::json j;
    j["op"] = o.op;
    j["permute_out"] = o.permute_out;
    j["backend"] = g.is_mpi() ? "mpi" : "inproc";
    j["world_size"] = o.world_size;
    j["experts"] = o.experts;
    j["bs"] = o.bs;
    j["topk"] = o.topk;
    j["h1"] = o.h1;
    j["n1"] = o.n1;
    j["shared_expert"] = !o.no_shared;
    j["compute_threads"] = compute_threads();
    j["pass"] = pass;
    for (const auto& r : results) {
      nlohmann::json c;
      c["dtype"] = r.dtype;
      c["time_s"] = r.seconds;
      c["gflops"] = r.gflops;
      c["flops"] = r.flops;
      c["verified"] = r.verified;
      c["max_rel_error"] = r.check.max_rel_error;
      c["mean_rel_error"] = r.check.mean_rel_error;
      c["max_error_to_bound"] = r.check.max_error_to_bound;
      c["max_ulp_error"] = r.check.max_ulp_error;
      c["elements_differing_from_reference_rounding"] = r.check.bit_differences;
      c["pass"] = r.pass();
      if (!r.error.empty()) c["error"] = r.error;
      if (!r.check.ok) c["first_failure"] = r.check.first_failure;
      j["cases"].push_back(c);
    }
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    const bool dispatch = o.op == "dispatch";
    std::printf(
        "gmmav run: %s op%s, %s W=%d, e=%d experts/rank, BS=%lld K=%lld (%s=%lld rows/rank), H1=%lld N1=%lld, %s, "
        "%s counts, %d compute threads%s\n",
        o.op.c_str(), dispatch ? (o.permute_out ? " (gmmY, permuteOut)" : " (gmmY)") : " (y)",
        g.is_mpi() ? "MPI group (one process per rank)" : "in-process group", o.world_size, o.experts,
        static_cast<long long>(o.bs), static_cast<long long>(o.topk), dispatch ? "BSK sent" : "A",
        static_cast<long long>(o.bs * o.topk), static_cast<long long>(o.h1), static_cast<long long>(o.n1), shared.c_str(),
        o.counts.c_str(), compute_threads(), g.is_mpi() ? " per rank" : "");
    std::printf("  %-5s %10s %9s %10s %12s %11s  %s\n", "dtype", "time(ms)", "GFLOP/s", "err/bound", "max err(ulp)", "!=ref bits",
                "result");
    for (const auto& r : results) {
      if (!r.error.empty()) {
        std::printf("  %-5s FAIL: %s\n", r.dtype.c_str(), r.error.c_str());
        continue;
      }
      if (!r.verified) {
        std::printf("  %-5s %10.2f %9.1f %10s %12s %11s  not verified\n", r.dtype.c_str(), r.seconds * 1e3, r.gflops, "-", "-",
                    "-");
        continue;
      }
      std::printf("  %-5s %10.2f %9.1f %10.3f %12.2f %11lld  %s\n", r.dtype.c_str(), r.seconds * 1e3, r.gflops,
                  r.check.max_error_to_bound, r.check.max_ulp_error, static_cast<long long>(r.check.bit_differences),
                  r.check.ok ? "PASS" : "FAIL");
      if (!r.check.ok) std::printf("        %s\n", r.check.first_failure.c_str());
    }
    if (!o.no_verify) {
      // What PASS rests on, for a reader who has not read docs/spec.md §4.
      if (o.values == "exact")
        std::printf("  check: every element bit-identical to the FP64 result rounded once (!=ref bits must be 0)\n");
      else
        std::printf(
            "  check: err/bound = worst |got - FP64 result| / (1 ulp + FP32 accumulation bound), docs/spec.md §4; "
            "PASS needs <= 1\n"
            "         (max err(ulp) exceeds 1 where a dot product cancels to near zero: the accumulation bound "
            "covers it)\n");
    }
    std::printf("%s\n", pass ? "PASS" : "FAIL");
  }
  return pass ? 0 : 1;
}

}  // namespace

void add_run_command(CLI::App& app) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* cmd = app.add_subcommand(
      "run", "Run the operator on synthetic data (in-process, or one rank per process under mpirun) and verify it");
  add_op_option(cmd, o->op);
  cmd->add_flag("--permute-out", o->permute_out,
                "Dispatch op: also write permuteOut (the received rows) and check it bit for bit");
  CLI::Option* world_size =
      cmd->add_option("-W,--world-size", o->world_size, "Ranks in the group (threads; under mpirun: the processes)")
          ->capture_default_str()
          ->check(CLI::Range(1, 4096));
  cmd->add_option("-e,--experts", o->experts, "Local experts per rank")->capture_default_str()->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--bs", o->bs, "Tokens per rank (BS); also the shared expert's rows")
      ->capture_default_str()
      ->check(integer_at_least(1));
  cmd->add_option("-k,--topk", o->topk,
                  "Experts per token (K): BS*K routed rows per rank (combine: gmmX rows A; dispatch: rows sent, BSK)")
      ->capture_default_str()
      ->check(integer_at_least(1));
  cmd->add_option("--h1", o->h1, "Hidden size of the routed experts (H1)")->capture_default_str()->check(integer_at_least(1));
  cmd->add_option("--n1", o->n1, "Output size of the routed experts (N1)")->capture_default_str()->check(integer_at_least(1));
  cmd->add_option("--h2", o->h2, "Hidden size of the shared expert (H2; default H1)")->check(integer_at_least(0));
  cmd->add_option("--n2", o->n2, "Output size of the shared expert (N2)")->capture_default_str()->check(integer_at_least(1));
  cmd->add_option("--dtype", o->dtype, "fp16, bf16 or both")
      ->capture_default_str()
      ->check(CLI::IsMember({"fp16", "bf16", "both"}));
  cmd->add_flag("--no-shared", o->no_shared, "Run without the shared expert");
  cmd->add_flag("--trans-gmm-weight", o->trans_gmm, "Routed weights stored (e, N1, H1)");
  cmd->add_flag("--trans-mm-weight", o->trans_mm, "Shared weight stored (N2, H2)");
  cmd->add_option("--counts", o->counts, "Routing: balanced, random or skewed (one hot expert)")
      ->capture_default_str()
      ->check(CLI::IsMember({"balanced", "random", "skewed"}));
  cmd->add_option("--values", o->values,
                  "Data: random (checked within the docs/spec.md §4 tolerance) or exact (checked bit for bit)")
      ->capture_default_str()
      ->check(CLI::IsMember({"random", "exact"}));
  cmd->add_option("--seed", o->seed, "Random seed (an integer in [0, 2^64 - 1])")->capture_default_str()->check(unsigned_64());
  cmd->add_option("--repeat", o->repeat, "Timed runs (the median is reported)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--threads", o->threads, "Compute threads (default: GMMAV_NUM_THREADS or the cores)")
      ->check(CLI::Range(1, 1024));
  add_memory_limit_option(cmd, o->memory_limit,
                          "Refuse a case that needs more memory than this, e.g. 4GiB (default: the machine's physical memory)");
  cmd->add_flag("--json", o->json, "Print JSON instead of the summary");
  cmd->add_flag("--no-verify", o->no_verify, "Skip the reference check");
  cmd->add_option("--backend", o->backend,
                  "inproc (ranks are threads), mpi (one process per rank, under mpirun), or auto (mpi when started by mpirun)")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "inproc", "mpi"}));
  // Hidden (empty group), for the test suite: corrupt one output element before verification.
  cmd->add_option("--inject-fault", o->inject_fault,
                  "Test only: corrupt one element of y (gmmY), mmY or permuteOut before the check")
      ->check(CLI::IsMember({"y", "mmY", "permuteOut"}))
      ->group("");
  cmd->callback([o, world_size] {
    o->world_size_given = world_size->count() > 0;
    const int rc = run(*o);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace gmmav::cli
