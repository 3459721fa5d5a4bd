#include "case_runner.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <thread>
#include <tuple>

#include "aclnn_variant.hpp"
#include "api/comm_access.hpp"
#include "cpu_time.hpp"
#include "engine/compute_pool.hpp"
#include "engine/plan_log.hpp"
#include "expert_pipeline.hpp"
#include "gmmav/build_options.hpp"
#include "reference/reference.hpp"
#include "reference/synthetic_case.hpp"
#include "trace.hpp"
#include "variant_order.hpp"

namespace gmmav::bench {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// CPU time of the whole machine (busy jiffies incl. steal) and of this process, for the contention figure.
struct CpuClock {
  double machine_busy_s = 0, own_s = 0;
  static CpuClock now() {
    CpuClock c;
    std::ifstream in("/proc/stat");
    std::string cpu;
    long long v[8] = {};
    in >> cpu >> v[0] >> v[1] >> v[2] >> v[3] >> v[4] >> v[5] >> v[6] >> v[7];
    // user nice system idle iowait irq softirq steal: busy = all but idle and iowait
    c.machine_busy_s = static_cast<double>(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / static_cast<double>(sysconf(_SC_CLK_TCK));
    c.own_s = cpu_seconds(RUSAGE_SELF);
    return c;
  }
};

}  // namespace

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::int64_t count_differences(const std::vector<std::uint16_t>& a, const void* b, std::size_t n) {
  const auto* p = static_cast<const std::uint16_t*>(b);
  std::int64_t diff = 0;
  for (std::size_t i = 0; i < n; ++i) diff += a[i] != p[i];
  return diff;
}

reference::CaseSpec spec_of(const CaseShape& c, DType dtype) {
  reference::CaseSpec s;
  s.world_size = c.world_size;
  s.local_experts = c.experts;
  s.rows_per_rank = c.bs * c.topk;
  s.h1 = c.h1;
  s.n1 = c.n1;
  s.dtype = dtype;
  s.shared_expert = c.shared;
  s.bs = c.bs;
  s.h2 = c.h2_follows_h1 ? c.h1 : c.h2;
  s.n2 = c.n2;
  s.counts = c.counts;
  s.values = reference::ValueKind::random;  // |v| in [2^-56, 1]: the BF16 native route applies, as with real data
  s.seed = 1;
  return s;
}

namespace {

enum class Mode { calibrate, measure };

// State of one case in this process (in-process: shared by the rank threads).
struct CaseState {
  reference::Case kase;
  std::vector<Plan> plans;        // every rank's
  std::vector<RankBuffers> bufs;  // [rank]; MPI: only this process's is allocated
  InProcessPeers peers;
  std::unique_ptr<LibraryMatmul> library;
  std::unique_ptr<TraceRecorder> recorder;
  std::unique_ptr<AclnnCommunicators> aclnn_comms;  // in-process: every rank's; MPI: this process's
  std::mutex mu;
};

class RankRun {
 public:
  RankRun(CaseState& st, CaseResult& res, const RunSettings& s, support::RankGroup& g, const Comm& comm, Mode mode)
      : st_(st),
        res_(res),
        s_(s),
        g_(g),
        comm_(comm),
        mode_(mode),
        r_(g.rank()),
        plan_(st.plans[static_cast<std::size_t>(r_)]),
        buf_(st.bufs[static_cast<std::size_t>(r_)]) {}

  void operator()() {
    setup();
    // Weights packed once, outside every timing (as the library variant's are), unless --repack.
    PackedWeights packed;
    if (!s_.repack) packed = PackedWeights::create(plan_, st_.kase.tensors(r_));
    if (mode_ == Mode::measure && r_ == 0)  // the line GMMAV_LOG=plan prints for rank 0's fused call
      res_.plan = engine::describe_call(plan_, packed ? &packed : nullptr, workspace_, workspace_);
    std::unique_ptr<AclnnRank> aclnn;  // destroyed before st_.aclnn_comms (at the end of this rank's run)
    if (mode_ == Mode::measure) aclnn = setup_aclnn();
    RankVariants rv{plan_,
                    st_.kase.tensors(r_),
                    buf_,
                    comm_,
                    *transport_,
                    r_ == 0 ? st_.library.get() : nullptr,
                    packed ? &packed : nullptr,
                    aclnn.get()};
    // Every rank runs a variant or none does (aclnn and library may be skipped, collectively;
    // under MPI only rank 0 holds the library).
    const bool library_runs = mode_ == Mode::measure && g_.max(st_.library ? 1.0 : 0.0) > 0;
    const auto runs = [&](Variant v) {
      return (v != Variant::aclnn || rv.aclnn != nullptr) && (v != Variant::library || library_runs) &&
             (v != Variant::fused_per_call || s_.per_call);
    };
    const auto timed = [&](Variant v) {
      if (v == Variant::library && rv.library) rv.library->wake();
      g_.barrier();
      const auto t0 = Clock::now();
      rv.run(v);
      const double dt = seconds_since(t0);
      if (v == Variant::library && rv.library) rv.library->quiesce();
      return g_.max(dt);
    };
    if (mode_ == Mode::calibrate) return calibrate(timed);

    const int total = s_.warmup + s_.repeat;
    for (int w = 0; w < s_.warmup; ++w) {
      show(w + 1, total, "warm-up");
      for (int v = 0; v < kVariants; ++v)
        if (runs(static_cast<Variant>(v))) timed(static_cast<Variant>(v));
    }
    g_.barrier();
    const auto wall0 = Clock::now();
    const CpuClock cpu0 = CpuClock::now();
    for (int rep = 0; rep < s_.repeat; ++rep) {
      show(s_.warmup + rep + 1, total, "timing");
      for (const int v : variant_order(rep, kVariants)) {
        if (!runs(static_cast<Variant>(v))) continue;
        const double t = timed(static_cast<Variant>(v));
        if (r_ == 0) res_.samples[static_cast<std::size_t>(v)].push_back(t);
      }
    }
    const CpuClock cpu1 = CpuClock::now();
    std::vector<double> prep;
    for (int i = 0; i < 3; ++i) {
      g_.barrier();
      const auto t0 = Clock::now();
      prepare_all_weights(plan_, rv.fused);
      prep.push_back(g_.max(seconds_since(t0)));
    }
    if (r_ == 0) res_.t_weight_prep = median(prep);
    const double wall = seconds_since(wall0);
    const double own = g_.is_mpi() ? g_.sum(cpu1.own_s - cpu0.own_s) : cpu1.own_s - cpu0.own_s;
    if (r_ == 0) {
      const double cpus = static_cast<double>(sysconf(_SC_NPROCESSORS_ONLN));
      res_.contention_pct = std::max(0.0, 100.0 * ((cpu1.machine_busy_s - cpu0.machine_busy_s) - own) / (wall * cpus));
    }
    show(total, total, "checking");
    verify(rv);
    if (s_.trace) trace(rv);
    if (r_ == 0 && s_.progress) std::fprintf(stderr, "\r%-100s\r", "");
  }

 private:
  void setup() {
    const std::size_t ws = workspace_size(plan_, comm_);
    workspace_ = ws;
    buf_.allocate(plan_, ws, mode_ == Mode::measure && s_.per_call);
    const ProblemDesc& d = plan_.desc();
    const double vendor_ws = static_cast<double>(plan_.rows_in() * d.n1 * 2 + (std::int64_t{16} << 20));
    const double ws_max = g_.max(static_cast<double>(ws));
    const double remote = g_.sum(static_cast<double>((plan_.rows_in() - plan_.rows_to(plan_.rank())) * d.n1 * 2));
    const double vendor_max = g_.max(vendor_ws);
    const int W = plan_.world_size();
    // The result is shared by in-process ranks (rank 0 writes it); every MPI rank keeps its own copy,
    // and decisions taken from it (calibration, the reference check) must be the same on every rank.
    if (r_ == 0 || g_.is_mpi()) {
      res_.weights_packed_once = !s_.repack;
      res_.remote_bytes = static_cast<std::int64_t>(remote);
      res_.exchange_cpu_ns_per_byte = s_.exchange_cpu_ns_per_byte;
      res_.cores = s_.cores;
      res_.workspace_bytes = static_cast<std::int64_t>(ws_max);
      res_.vendor_workspace_bytes = static_cast<std::int64_t>(vendor_max);
      res_.flops = 0;
      res_.weight_bytes = 0;
      for (const Plan& p : st_.plans) {
        res_.flops += static_cast<double>(p.flops());
        const ProblemDesc& pd = p.desc();
        res_.weight_bytes += static_cast<double>(pd.local_experts * pd.h1 * pd.n1 * 2);
        if (pd.shared) res_.weight_bytes += static_cast<double>(pd.shared->h2 * pd.shared->n2 * 2);
      }
      res_.routes = route_shares(st_.plans);
      res_.ceilings = s_.ceilings;
    }
    if (r_ == 0) {
      if (!g_.is_mpi()) {
        st_.peers.plans.clear();
        for (const Plan& p : st_.plans) st_.peers.plans.push_back(&p);
        for (int t = 0; t < kTargets; ++t) {
          auto& ys = st_.peers.y[static_cast<std::size_t>(t)];
          ys.clear();
          for (int q = 0; q < W; ++q)
            ys.push_back(
                reinterpret_cast<std::byte*>(st_.bufs[static_cast<std::size_t>(q)].y[static_cast<std::size_t>(t)].data()));
        }
      }
      if (mode_ == Mode::measure) make_library();
    }
    g_.barrier();
    transport_ = nullptr;
    if constexpr (with_mpi) {  // make_mpi_transport exists only then
      if (g_.is_mpi()) transport_ = make_mpi_transport(plan_, g_, buf_.y_pointers());
    }
    if (!transport_) transport_ = make_in_process_transport(st_.peers, r_, g_);
  }

  std::unique_ptr<AclnnRank> setup_aclnn() {
    if (!s_.aclnn) {  // the same on every rank: setup_aclnn_rank is collective, and no rank calls it
      if (r_ == 0) res_.aclnn_skipped = "left out to fit in memory (" + s_.memory_note + ")";
      return nullptr;
    }
    std::string why;
    auto a = setup_aclnn_rank(g_, st_.aclnn_comms, plan_, st_.kase.tensors(r_), why);
    if (r_ == 0 && !a) res_.aclnn_skipped = why;
    return a;
  }

  void make_library() {
    if (!s_.library) {
      res_.library = "not run: left out to fit in memory (" + s_.memory_note + ")";
      return;
    }
    const CaseShape& c = res_.shape;
    LibraryShape ls;
    ls.routed = {c.h1, c.n1, {}};
    for (const Plan& p : st_.plans)
      for (int j = 0; j < p.desc().local_experts; ++j) ls.routed.rows.push_back(p.group_rows(j));
    if (c.shared) ls.shared = {c.h2_follows_h1 ? c.h1 : c.h2, c.n2, std::vector<std::int64_t>(st_.plans.size(), c.bs)};
    // Under MPI the library runs on rank 0 with every core of the machine (start mpirun with --bind-to none).
    const int threads =
        g_.is_mpi() ? static_cast<int>(std::max(1u, std::thread::hardware_concurrency())) : engine::available_cores();
    // oneDNN may have no kernel for the dtype on this CPU (BF16 without AVX-512 on oneDNN 2.6): the
    // variant is then not run, rather than the rank throwing while the others wait at a barrier.
    try {
      st_.library = std::make_unique<LibraryMatmul>(res_.dtype, ls, threads);
      res_.library = st_.library->description();
    } catch (const std::exception& e) {
      st_.library.reset();
      res_.library = std::string("unavailable: ") + e.what();
    }
  }

  template <typename Timed>
  void calibrate(const Timed& timed) {
    timed(Variant::gemm_alone);
    timed(Variant::a2a_alone);
    std::vector<double> g, a;
    for (int i = 0; i < 3; ++i) {
      g.push_back(timed(Variant::gemm_alone));
      a.push_back(timed(Variant::a2a_alone));
    }
    if (r_ == 0 || g_.is_mpi()) {
      res_.median[static_cast<std::size_t>(Variant::gemm_alone)] = median(g);
      res_.median[static_cast<std::size_t>(Variant::a2a_alone)] = median(a);
    }
  }

  void verify(RankVariants& rv) {
    // 1. Every variant's output against the fused one: the same tiles and library, byte copies, so bit-identical.
    const std::vector<std::uint16_t>* ys[] = {&buf_.y[0], &buf_.y[1], &buf_.y[2]};
    std::int64_t diff = 0;
    const auto ny = static_cast<std::size_t>(plan_.rows_out() * plan_.desc().n1);
    for (const auto* y : ys) diff += count_differences(*y, rv.fused.y.data, ny);
    if (s_.per_call) diff += count_differences(buf_.y_per_call, rv.fused.y.data, ny);
    const auto nm = buf_.mm_gemm.size();
    if (plan_.has_shared_expert())
      for (const auto* m : {&buf_.mm_gemm, &buf_.mm_seq, &buf_.mm_pe, &buf_.mm_per_call})
        if (m != &buf_.mm_per_call || s_.per_call) diff += count_differences(*m, rv.fused.mm_y->data, nm);
    const double total_diff = g_.sum(static_cast<double>(diff));
    // The aclnn variant's outputs (downloaded from its aclrtMalloc memory): the same engine, so bit-identical too.
    std::int64_t aclnn_diff = 0;
    if (rv.aclnn) {
      aclnn_diff += count_differences(rv.aclnn->y(), rv.fused.y.data, ny);
      if (plan_.has_shared_expert()) aclnn_diff += count_differences(rv.aclnn->mm_y(), rv.fused.mm_y->data, nm);
    }
    const double total_aclnn_diff = g_.sum(static_cast<double>(aclnn_diff));
    // 2. Small cases: the fused output against the independent FP64 reference (SPEC §4 tolerance).
    bool ref_checked = false;
    double ref_bad = 0;
    std::string ref_text;
    if (res_.flops <= static_cast<double>(s_.reference_flops_limit)) {
      ref_checked = true;
      if (!g_.is_mpi()) {
        g_.barrier();
        if (r_ == 0) {
          const auto check = reference::check_case(st_.kase, false);
          ref_bad = check.ok ? 0 : 1;
          ref_text = check.ok ? fmt::format("max rel err {:.2g}", check.max_rel_error) : check.first_failure;
        }
      } else {
        const auto ref = reference::compute(st_.kase.shapes(), st_.kase.reference_inputs());
        const auto& mine = ref[static_cast<std::size_t>(r_)];
        const auto& rd = st_.kase.ranks[static_cast<std::size_t>(r_)];
        bool ok = reference::compare(res_.dtype, rd.y, mine.y, false).ok();
        if (plan_.has_shared_expert()) ok = ok && reference::compare(res_.dtype, rd.mm_y, mine.mm_y, false).ok();
        ref_bad = g_.sum(ok ? 0 : 1);
      }
    }
    if (r_ == 0) {
      res_.verified_ok = total_diff == 0 && total_aclnn_diff == 0 && ref_bad == 0;
      res_.verification =
          fmt::format("fused y/mmY vs a2a_alone (gemm_alone's gmmY moved), sequential, per_expert{}: {}; vs aclnn: {}",
                      s_.per_call ? ", fused_per_call" : " (fused_per_call not run)",
                      total_diff == 0 ? "bit-identical" : fmt::format("{} elements DIFFER", total_diff),
                      !rv.aclnn               ? std::string("not run")
                      : total_aclnn_diff == 0 ? std::string("bit-identical")
                                              : fmt::format("{} elements DIFFER", total_aclnn_diff));
      if (ref_checked)
        res_.verification += fmt::format("; vs FP64 reference: {}{}", ref_bad == 0 ? "PASS" : "FAIL",
                                         ref_text.empty() ? "" : " (" + ref_text + ")");
      else
        res_.verification += "; FP64 reference skipped (too large)";
    }
  }

  void trace(RankVariants& rv) {
    // A common time base: the in-process ranks share one recorder; MPI ranks share CLOCK_MONOTONIC on one host.
    g_.barrier();
    const double now_ns =
        static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count());
    const double base_ns = g_.min(now_ns);
    const Clock::time_point base{
        std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(static_cast<long long>(base_ns)))};
    if (g_.is_mpi() || r_ == 0) {
      std::lock_guard lk(st_.mu);
      if (g_.is_mpi() || !st_.recorder) st_.recorder = std::make_unique<TraceRecorder>(base);
    }
    g_.barrier();
    TraceRecorder& rec = *st_.recorder;
    const Comm traced = detail::CommAccess::wrap(make_tracing_communicator(detail::CommAccess::shared(comm_), rec, !g_.is_mpi()));
    g_.barrier();
    const auto fused = [&](const Comm& c) {
      if (rv.packed)
        gmmav::run(plan_, c, rv.fused, *rv.packed, buf_.workspace);
      else
        gmmav::run(plan_, c, rv.fused, buf_.workspace);
    };
    fused(comm_);  // warm again after the checks: the traced call is a warm one
    g_.barrier();
    const auto t0 = Clock::now();
    fused(traced);
    rec.span(r_, TraceRecorder::kRankThread, "gmmav::run", "call", t0, Clock::now());
    g_.barrier();
    if (g_.is_mpi()) {
      auto parts = g_.gather(rec.events().dump());
      if (r_ == 0) res_.trace_parts = std::move(parts);
    } else if (r_ == 0) {
      res_.trace_events = rec.events();
    }
  }

  void show(int step, int total, const char* what) {
    if (r_ != 0 || !s_.progress) return;
    std::fprintf(stderr, "\r%-40s %-8s %d/%d   ", s_.progress_label.c_str(), what, step, total);
    std::fflush(stderr);
  }

  CaseState& st_;
  CaseResult& res_;
  const RunSettings& s_;
  support::RankGroup& g_;
  const Comm& comm_;
  Mode mode_;
  int r_;
  const Plan& plan_;
  RankBuffers& buf_;
  std::unique_ptr<BaselineTransport> transport_;
  std::size_t workspace_ = 0;  // the fused call's (workspace_size)
};

void run_ranks(Backend& b, CaseResult& res, const RunSettings& s, Mode mode) {
  CaseState st;
  st.kase = reference::make_case(spec_of(res.shape, res.dtype));
  const int W = res.shape.world_size;
  for (int r = 0; r < W; ++r) st.plans.push_back(Plan::create(st.kase.desc(r)));
  st.bufs.resize(static_cast<std::size_t>(W));
  b.for_each_rank(W, [&](support::RankGroup& g, const Comm& comm) { RankRun(st, res, s, g, comm, mode)(); });
  if (mode == Mode::measure && (s.torch || s.python)) {
    // The Python baselines need only the case's inputs and fused's outputs: the variants' buffers,
    // the library's and the engine's cached buffers go first (the memory estimate counts on it).
    st.bufs.clear();
    st.bufs.shrink_to_fit();
    st.library.reset();
    release_free_memory();
    if (s.torch) res.torch = run_torch(b, st.kase, res.flops, s);
    if (s.python) {
      res.python = run_gmmav_python(b, st.kase, res.flops, s);
      fail_on_python_difference(res.python, res.verified_ok, res.verification);
    }
  }
}

}  // namespace

std::string shape_on(Backend& b, const CaseShape& shape, CaseShape& as_run) {
  as_run = shape;
  const int W = b.world_size(shape);
  if (shape.required_world && W != shape.required_world)
    return fmt::format("needs W = {}, the group has {}", shape.required_world, W);
  as_run.world_size = W;
  return {};
}

namespace {

// A Python baseline's script on the case (rank 0 of an in-process backend; under MPI attempted
// and refused with the reason), with the progress line showing `what`.
PythonBaselineResult run_script(Backend& b, const reference::Case& kase, double flops, const RunSettings& s,
                                PythonBaselineSettings ps, const char* what) {
  PythonBaselineResult t;
  if (b.process_rank() != 0) return t;
  if (b.is_mpi()) {
    t.attempted = true;
    t.why = "runs in-process only (the script starts ranks of its own): run this case without mpirun";
    return t;
  }
  if (s.progress) {
    std::fprintf(stderr, "\r%-40s %-8s", s.progress_label.c_str(), what);
    std::fflush(stderr);
  }
  ps.check_reference = flops <= static_cast<double>(s.reference_flops_limit);
  t = run_python_baseline(kase, ps);
  if (s.progress) std::fprintf(stderr, "\r%-100s\r", "");
  return t;
}

}  // namespace

PythonBaselineResult run_torch(Backend& b, const reference::Case& kase, double flops, const RunSettings& s) {
  PythonBaselineSettings ts = s.torch_settings;
  // W processes x T threads on the cores the gmmav ranks shared.
  ts.threads_per_rank = std::max(1, engine::available_cores() / kase.spec.world_size);
  return run_script(b, kase, flops, s, ts, "torch");
}

PythonBaselineResult run_gmmav_python(Backend& b, const reference::Case& kase, double flops, const RunSettings& s) {
  PythonBaselineSettings ps = s.python_settings;
  ps.threads_per_rank = 0;             // W rank threads of one process share gmmav's pool, as the bench's ranks do
  ps.warmup = std::max(2, ps.warmup);  // the weight cache packs on the second call that sees the weights
  // py/native is a ratio of two medians a few per cent apart on a noisy machine: three times the
  // bench's repetitions (at least 9) of each, interleaved (D101).
  ps.repeat = std::max(9, 3 * ps.repeat);
  return run_script(b, kase, flops, s, ps, "python");
}

namespace {

std::int64_t round16(double v) { return std::max<std::int64_t>(16, static_cast<std::int64_t>(std::llround(v / 16.0)) * 16); }

}  // namespace

void note_left_out(const RunSettings& asked, const RunSettings& fitted, PythonBaselineResult& torch,
                   PythonBaselineResult& python) {
  const std::string why = "left out to fit in memory (" + fitted.memory_note + ")";
  for (auto [was, is, out] : {std::tuple{asked.torch, fitted.torch, &torch}, std::tuple{asked.python, fitted.python, &python}})
    if (was && !is) {
      out->attempted = true;
      out->why = why;
    }
}

CaseResult run_case(Backend& b, const CaseShape& shape, DType dtype, const RunSettings& settings) {
  CaseResult res;
  res.backend = b.name();
  res.dtype = dtype;
  res.skipped = shape_on(b, shape, res.shape);
  if (!res.skipped.empty()) return res;
  RunSettings s = settings;  // less what does not fit in memory
  const std::string label = fmt::format("{} {}", shape.name, dtype == DType::bf16 ? "bf16" : "fp16");
  release_free_memory();  // the previous case's: the estimate is of this case alone
  if (shape.calibrate) {
    // Calibration runs the core variants at the starting H1 (the case is checked again at the final H1).
    res.memory = fit_memory(b, res.shape, dtype, Op::combine, s, true, label + " (calibration)");
    if (res.memory.refused) {
      res.skipped = s.memory_note;
      return res;
    }
    // GEMM time grows with H1, the exchange's does not: scale H1 by t_a2a / t_gemm until they meet.
    RunSettings quiet = s;
    quiet.trace = false;
    for (int it = 0; it < 4; ++it) {
      run_ranks(b, res, quiet, Mode::calibrate);
      const double tg = res.t(Variant::gemm_alone), ta = res.t(Variant::a2a_alone);
      const std::int64_t next = std::clamp<std::int64_t>(round16(static_cast<double>(res.shape.h1) * ta / tg), 32, 8192);
      res.notes.push_back(fmt::format("calibration {}: H1={} gemm_alone {:.3f} ms, a2a_alone {:.3f} ms -> H1={}", it + 1,
                                      res.shape.h1, tg * 1e3, ta * 1e3, next));
      if (std::abs(static_cast<double>(next - res.shape.h1)) <= 0.15 * static_cast<double>(res.shape.h1)) break;
      res.shape.h1 = next;
    }
    res.median = {};
    release_free_memory();
  }
  res.memory = fit_memory(b, res.shape, dtype, Op::combine, s, false, label);
  if (res.memory.refused) {
    res.skipped = s.memory_note;
    return res;
  }
  if (!res.memory.left_out.empty()) res.notes.push_back(s.memory_note);
  note_left_out(settings, s, res.torch, res.python);
  run_ranks(b, res, s, Mode::measure);
  for (int v = 0; v < kVariants; ++v) res.median[static_cast<std::size_t>(v)] = median(res.samples[static_cast<std::size_t>(v)]);
  return res;
}

}  // namespace gmmav::bench
