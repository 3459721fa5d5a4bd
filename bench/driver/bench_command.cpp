// `gmmav bench`: option parsing and the run over the selected cases.
#include "bench_command.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "case_runner.hpp"
#include "common/config.hpp"
#include "common/mpi_launcher.hpp"
#include "dispatch_bench.hpp"
#include "gmmav/build_options.hpp"
#include "gmmav/gmmav.hpp"
#include "machine_info.hpp"
#include "memory_limit.hpp"
#include "omp_spin_limit.hpp"
#include "option_checks.hpp"
#include "provenance.hpp"
#include "python_baseline.hpp"
#include "report.hpp"
#include "roofline.hpp"
#include "trace.hpp"

namespace gmmav::bench {
namespace {

struct Options {
  std::string op = "combine";
  std::string backend = "auto";
  bool quick = false;
  std::string cases;
  int repeat = 5;
  int warmup = 1;
  std::string dtype = "auto";
  std::string json;  // empty: bench-results/<time>-<op>.json (default_json_path); "-": stdout
  bool no_json = false;
  std::string trace;
  double tcp_cpu_ns_per_byte = 0;  // > 0: the exchange's CPU cost per byte on the path used (else loopback's)
  bool peak = false;
  int world_size = 0;
  int threads = 0;
  bool repack = false;
  std::string torch = "auto";
  std::string python = "auto";
  double memory_limit = 0;    // bytes; 0: 90% of MemAvailable when each case starts
  std::string keep_case_dir;  // the Python baselines' case directories go under it and stay
  std::string inject_fault;   // "python": corrupt the Python path's output as read back (tests the check)
};

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  if (!f) throw std::runtime_error("bench: cannot write " + path);
  f << text;
}

// The peaks over the whole run: the roofline's figure (the best sample) and how far the others fell.
std::string peak_spread_text(const MachineInfo& m) {
  if (!m.measured) return {};
  const Peak& p = m.peak;
  std::string s =
      fmt::format("peak over the run, all cores, GFLOP/s over CPU time (samples before and between the cases): FP32 FMA {} {}",
                  p.isa, p.fp32_all_cores.to_text());
  if (!p.bf16_all_cores.samples.empty()) s += fmt::format("; BF16 dot {}", p.bf16_all_cores.to_text());
  s += fmt::format("; the roofline uses the best. Over wall time: FP32 median {:.0f}", p.fp32_all_cores_wall.median());
  if (!p.bf16_all_cores.samples.empty()) s += fmt::format(", BF16 median {:.0f}", p.bf16_all_cores_wall.median());
  s += "\n";
  const Spread* low = nullptr;
  for (const Spread* x : {&p.fp32_all_cores, &p.bf16_all_cores})
    if (!x->samples.empty() && x->min() < 0.8 * x->best()) low = x;
  if (low)
    s += fmt::format("  the peak varied by {:.0f}% between samples: clock changes, or other work on the cores (see cont)\n",
                     100 * (1 - low->min() / low->best()));
  return s;
}

int run(const Options& o) {
  const bool dispatch = o.op == "dispatch";
  if (dispatch && !o.trace.empty())
    throw CLI::ValidationError("--trace",
                               "expected --op combine (the trace is of the combine op's fused call), got --op dispatch");
  std::vector<CaseShape> selected;
  const auto wanted = split(o.cases);
  const auto all = all_cases(o.quick);
  for (const auto& w : wanted)
    if (std::none_of(all.begin(), all.end(), [&](const CaseShape& c) { return c.name == w; }))
      throw CLI::ValidationError(
          "--cases", "unknown case '" + w + "' (balanced, compute_bound, comm_bound, skewed, tiny, seed, decode, prefill)");
  for (const auto& c : all) {
    const bool named = std::find(wanted.begin(), wanted.end(), c.name) != wanted.end();
    if (wanted.empty() ? !(c.heavy && o.quick) : named) selected.push_back(c);
  }

  const bool mpi = o.backend == "mpi" || (o.backend == "auto" && started_by_mpi_launcher());
  if (mpi && !with_mpi)
    throw CLI::ValidationError("--backend", std::string(without_mpi_message) +
                                                ": one process per rank is not available; run the bench without mpirun "
                                                "(--backend inproc), or rebuild gmmav with -DGMMAV_WITH_MPI=ON");
  if (mpi && !started_by_mpi_launcher())
    throw CLI::ValidationError("--backend", "mpi needs the bench started by mpirun (one process per rank)");
  limit_openmp_spinning(mpi);  // may re-execute this process (before MPI and OpenMP start)
  std::unique_ptr<Backend> backend;
  if constexpr (with_mpi) {  // make_mpi_backend exists only then
    if (mpi) backend = make_mpi_backend();
  }
  if (!backend) backend = make_in_process_backend(o.world_size);
  const bool root = backend->process_rank() == 0;
  if (o.threads > 0) {
    set_compute_threads(o.threads);
  } else if (mpi && !config::num_threads_given()) {
    // Ranks on one machine share its cores: one pool thread per core per rank, not per core each.
    const int ranks_here = backend->ranks_on_this_machine();
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    set_compute_threads(std::max(1, cores / ranks_here));
  }

  backend->process_barrier();
  // Only rank 0 measures (the others wait politely): 5 samples of each peak now (9 with --peak),
  // and one more of the all-cores peaks after every case; the roofline takes the best of them all.
  MachineInfo machine = machine_info(root, o.peak ? 9 : 5);
  backend->process_barrier();
  if (root && o.json != "-") std::fputs(to_text(machine).c_str(), stdout);
  if (o.peak) return 0;

  struct Job {
    CaseShape shape;
    DType dtype;
  };
  std::vector<Job> jobs;
  for (const auto& c : selected) {
    std::vector<DType> types = c.dtypes;
    if (o.dtype == "fp16") types = {DType::f16};
    if (o.dtype == "bf16") types = {DType::bf16};
    if (o.dtype == "both") types = {DType::bf16, DType::f16};
    for (DType t : types) jobs.push_back({c, t});
  }

  const bool progress = root && isatty(STDERR_FILENO) && o.json.empty();
  // The Python baselines (--torch auto, --python auto): for decode and prefill, the cases they were
  // made for, and for any case named. `value` is the option's.
  const auto baseline_for = [&](const std::string& value, const CaseShape& c) {
    return value != "off" &&
           (c.name == "decode" || c.name == "prefill" || std::find(wanted.begin(), wanted.end(), c.name) != wanted.end());
  };
  const std::string torch_script = o.torch == "off" ? std::string() : find_torch_composite();
  const PythonBaselineSettings python_script = o.python == "off" ? PythonBaselineSettings{} : find_gmmav_python();
  const auto not_asked = [](const std::string& option, const std::string& value) {
    return value == "off" ? "--" + option + " off"
                          : "--" + option + " auto runs it for decode and prefill, and for cases named in --cases";
  };
  // MPI over loopback TCP only (Open MPI's btl list names tcp and no shared-memory
  // transport, every rank on this machine): the kernel's copies run on the
  // ranks' cores, at the cost --peak measured; the report then shows what that
  // leaves possible (docs/performance.md).
  bool tcp_only = false;
  if (const char* btl = std::getenv("OMPI_MCA_btl"); mpi && btl != nullptr) {
    const std::string list = btl;
    tcp_only = list.find("tcp") != std::string::npos && list.find("vader") == std::string::npos &&
               list.find("sm") == std::string::npos && list.find('^') == std::string::npos;
  }
  if (tcp_only && !jobs.empty() && backend->ranks_on_this_machine() != backend->world_size(jobs.front().shape)) tcp_only = false;
  // A peak measured once can be low (another process on a core, a slow clock): sample it again
  // after every case, while the other processes wait.
  const auto sample_peak_between_cases = [&] {
    backend->process_barrier();
    if (root && machine.measured) sample_peak(machine.peak, machine.cores, false);
    backend->process_barrier();
  };
  std::vector<CaseResult> results;
  std::vector<DispatchResult> dispatch_results;
  bool traced = false;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    RunSettings s;
    s.repeat = o.repeat;
    s.warmup = o.warmup;
    s.progress = progress;
    s.progress_label =
        fmt::format("[{}/{}] {} {}", i + 1, jobs.size(), jobs[i].shape.name, jobs[i].dtype == DType::bf16 ? "bf16" : "fp16");
    s.trace = !o.trace.empty() && !traced;
    s.repack = o.repack;
    s.ceilings = roofline_ceilings(machine);
    s.torch = baseline_for(o.torch, jobs[i].shape);
    s.torch_settings.script = torch_script;
    s.torch_settings.repeat = o.repeat;
    s.torch_settings.warmup = o.warmup;
    s.python = baseline_for(o.python, jobs[i].shape);
    s.python_settings = python_script;
    s.python_settings.repeat = o.repeat;
    s.python_settings.warmup = o.warmup;
    s.python_settings.inject_fault = o.inject_fault == "python";
    if (!o.keep_case_dir.empty()) {  // one directory per case and script (each replaces its directory's contents)
      const std::string dir =
          fmt::format("{}/{}-{}-{}", o.keep_case_dir, o.op, jobs[i].shape.name, jobs[i].dtype == DType::bf16 ? "bf16" : "fp16");
      s.torch_settings.keep_dir = dir + "/torch";
      s.python_settings.keep_dir = dir + "/python";
    }
    s.memory_limit = o.memory_limit;
    if (tcp_only) {
      s.exchange_cpu_ns_per_byte = o.tcp_cpu_ns_per_byte > 0 ? o.tcp_cpu_ns_per_byte : machine.tcp.cpu_ns_per_byte;
      s.cores = backend->cores_on_this_machine();  // every rank's CPUs: with pinned ranks, more than one rank's
    }
    if (dispatch) {
      DispatchResult d = run_dispatch_case(*backend, jobs[i].shape, jobs[i].dtype, s);
      if (!s.torch) d.torch.why = not_asked("torch", o.torch);
      if (!s.python) d.python.why = not_asked("python", o.python);
      dispatch_results.push_back(std::move(d));
      sample_peak_between_cases();
      continue;
    }
    CaseResult r = run_case(*backend, jobs[i].shape, jobs[i].dtype, s);
    if (!s.torch) r.torch.why = not_asked("torch", o.torch);
    if (!s.python) r.python.why = not_asked("python", o.python);
    if (s.trace && r.skipped.empty()) {
      traced = true;
      if (root) {
        std::vector<nlohmann::json> parts;
        if (mpi)
          for (const auto& p : r.trace_parts) parts.push_back(nlohmann::json::parse(p));
        else
          parts.push_back(r.trace_events);
        const nlohmann::json meta = {{"case", r.shape.name},
                                     {"backend", r.backend},
                                     {"W", r.shape.world_size},
                                     {"e", r.shape.experts},
                                     {"dtype", r.dtype == DType::bf16 ? "bf16" : "fp16"},
                                     {"h1", r.shape.h1},
                                     {"n1", r.shape.n1}};
        write_file(o.trace, trace_document(parts, meta).dump() + "\n");
      }
      r.trace_events = nullptr;
      r.trace_parts.clear();
    }
    results.push_back(std::move(r));
    sample_peak_between_cases();
  }
  if (!root) return 0;
  // Every case's roofline against the best peaks of the whole run.
  for (auto& r : results) r.ceilings = roofline_ceilings(machine);

  nlohmann::json run_info = {{"quick", o.quick},
                             {"repeat", o.repeat},
                             {"warmup", o.warmup},
                             {"backend", backend->name()},
                             {"compute_threads_per_rank", compute_threads()},
                             {"trace", o.trace},
                             {"tcp_cpu_ns_per_byte_given", o.tcp_cpu_ns_per_byte},
                             {"weights_packed_once", !o.repack},
                             {"torch", o.torch},
                             {"torch_composite", torch_script},
                             {"python", o.python},
                             {"gmmav_python", python_script.script},
                             {"library_openmp_spinning", openmp_spin_setting()}};
  run_info.update(provenance());
  // Results are outputs (D99): without --json they go to a file outside git, never only to the terminal.
  const std::string json_path = o.no_json ? std::string() : o.json.empty() ? default_json_path(o.op) : o.json;
  bool ok = true, refused = false;
  for (const auto& r : results) ok = ok && r.verified_ok;
  for (const auto& r : results) refused = refused || r.memory.refused;
  for (const auto& r : dispatch_results) refused = refused || r.memory.refused;
  // A case refused for memory is like `gmmav run`'s refusal: exit 2 (after the cases that ran).
  const auto status = [&] {
    if (!ok) return 1;
    if (!refused) return 0;
    std::fprintf(stderr, "gmmav bench: a case was not run: it needs more memory than its limit (above)\n");
    return 2;
  };
  if (dispatch) {
    nlohmann::json doc{{"op", "dispatch"}, {"run", run_info}, {"cases", nlohmann::json::array()}};
    for (const auto& r : dispatch_results) {
      ok = ok && r.verified_ok;
      doc["cases"].push_back(to_json(r));
    }
    if (o.json == "-") {
      std::printf("%s\n", doc.dump(2).c_str());
    } else {
      std::fputs(dispatch_table(dispatch_results).c_str(), stdout);
      if (!json_path.empty()) {
        write_file(json_path, doc.dump(2) + "\n");
        std::printf("wrote %s\n", json_path.c_str());
      }
    }
    return status();
  }
  if (o.json == "-") {
    std::printf("%s\n", document(machine, results, run_info).dump(2).c_str());
  } else {
    std::printf("library variant's OpenMP threads: %s\n", openmp_spin_setting().c_str());
    std::fputs(table(results).c_str(), stdout);
    std::fputs(peak_spread_text(machine).c_str(), stdout);
    if (!json_path.empty()) {
      write_file(json_path, document(machine, results, run_info).dump(2) + "\n");
      std::printf("wrote %s\n", json_path.c_str());
    }
    if (!o.trace.empty()) std::printf("wrote %s (one fused call of the first case)\n", o.trace.c_str());
  }
  return status();
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "bench",
      "Time the fused operator against GEMM alone, AlltoAllv alone, the sequential design, the vendor's per-expert "
      "overlap, the GEMM library, the per-call and aclnn entry points and the PyTorch composite, per named case "
      "(in-process, or one rank per process under mpirun)");
  cli::add_op_option(cmd, o->op);
  cmd->add_option("--backend", o->backend, "inproc, mpi, or auto (mpi when started by mpirun)")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "inproc", "mpi"}));
  cmd->add_flag("--quick", o->quick, "Scaled-down shapes (the whole run takes < 2 minutes); the seed case only when named");
  cmd->add_option("--cases", o->cases,
                  "Comma-separated: balanced, compute_bound, comm_bound, skewed, tiny, seed, decode, prefill (default: all; "
                  "seed only in full mode)");
  cmd->add_option("--repeat", o->repeat, "Timed repetitions per variant (the median is reported)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  // At least one: a2a_alone sends what sequential's unpermute left in the send buffer, so the output
  // check is meaningful only once every variant has run (with 0 and --repeat 1 it compared stale data).
  cmd->add_option("--warmup", o->warmup,
                  "Untimed rounds of every variant first (at least 1: some variants move what others computed)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  cmd->add_option("--dtype", o->dtype, "fp16, bf16, both, or auto (the case's own: seed fp16, the others both)")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "fp16", "bf16", "both"}));
  cmd->add_option("--json", o->json,
                  "Write the results as JSON to this file ('-': to stdout instead of the table; default: "
                  "bench-results/<UTC time>-<op>.json under the current directory)");
  cmd->add_flag("--no-json", o->no_json, "Write no JSON file (only the table)")->excludes("--json");
  cmd->add_option("--trace", o->trace, "Write a Chrome/Perfetto trace of one fused call of the first case to this file");
  cmd->add_flag("--repack", o->repack,
                "Pack the weights in every call of the engine variants (default: packed once per case, outside the "
                "timing, with gmmav::PackedWeights, as the library variant does)");
  cmd->add_option("--torch", o->torch,
                  "The PyTorch composite baseline (bench/baselines/torch/torch_composite.py, run by /usr/bin/python3; "
                  "$GMMAV_TORCH_COMPOSITE overrides the script): auto = after decode and prefill, and after every case named "
                  "in --cases; off = never")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "off"}));
  cmd->add_option("--python", o->python,
                  "gmmav's Python path (bench/baselines/torch/gmmav_python.py: gmmav.torch's op with the weights from its "
                  "cache, W rank threads of one /usr/bin/python3 process, interleaved with the native call on packed weights; "
                  "needs PyTorch and the package in build/python or installed): auto = after decode and prefill, and after "
                  "every case named in --cases; off = never")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "off"}));
  cmd->add_option("--keep-case-dir", o->keep_case_dir,
                  "Keep the case files the Python baselines run on (inputs, their outputs, stderr) in "
                  "DIR/<op>-<case>-<dtype>/{torch,python}/ (replaced if there) and print the command that reruns each script on "
                  "them (default: a temporary "
                  "directory, removed)");
  cmd->add_option("--inject-fault", o->inject_fault,
                  "python: flip one bit of gmmav's Python-path output as the bench reads it back; the case's check must "
                  "then fail (exit 1) — a test of that check")
      ->check(CLI::IsMember({"python"}));
  cmd->add_flag("--peak", o->peak, "Only print the machine: FMA peak, memcpy and DRAM read bandwidth");
  cmd->add_option("-W,--world-size", o->world_size, "In-process ranks (default: each case's own)")->check(CLI::Range(1, 1024));
  cmd->add_option("--tcp-cpu-ns-per-byte", o->tcp_cpu_ns_per_byte,
                  "MPI over TCP with every rank on this machine: the kernel's CPU cost per byte moved for the CPU-aware bound "
                  "(default: loopback's, measured; across simulated hosts `scripts/sim-cluster tcp-cost` measures the real path)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--threads", o->threads, "Compute threads per rank process (default: cores, shared by the ranks of a machine)")
      ->check(CLI::Range(1, 1024));
  cli::add_memory_limit_option(
      cmd, o->memory_limit,
      "Memory the bench's processes on this machine may take per case, e.g. 8GiB (default: 90% of MemAvailable when the "
      "case starts). A case estimated above it leaves out python, torch, aclnn, fused_per_call, library (in that order) or is "
      "skipped (exit 2)");
  cmd->callback([o] {
    const int rc = run(*o);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace gmmav::bench
