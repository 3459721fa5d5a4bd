#include "python_baseline.hpp"

#include <fmt/format.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "common/config.hpp"
#include "common/cpu_isa.hpp"
#include "reference/dispatch_reference.hpp"
#include "reference/reference.hpp"
#include "spec_bound.hpp"

#ifndef GMMAV_TORCH_COMPOSITE_SOURCE
#define GMMAV_TORCH_COMPOSITE_SOURCE ""
#endif
#ifndef GMMAV_TORCH_COMPOSITE_FROM_BIN
#define GMMAV_TORCH_COMPOSITE_FROM_BIN "../share/gmmav/torch_composite.py"
#endif
#ifndef GMMAV_PYTHON_PACKAGE_BUILD
#define GMMAV_PYTHON_PACKAGE_BUILD ""
#endif
#ifndef GMMAV_PYTHON_PACKAGE_FROM_BIN
#define GMMAV_PYTHON_PACKAGE_FROM_BIN "../lib/python3/dist-packages"
#endif

namespace gmmav::bench {
namespace fs = std::filesystem;
namespace {

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

void write_raw(const fs::path& p, const std::vector<std::uint16_t>& v) {
  std::ofstream f(p, std::ios::binary);
  f.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * 2));  // x86: little-endian
  if (!f) throw std::runtime_error("Python baseline: cannot write " + p.string());
}

std::vector<std::uint16_t> read_raw(const fs::path& p, std::size_t elements) {
  std::ifstream f(p, std::ios::binary);
  if (!f) throw std::runtime_error(fmt::format("the script wrote no {}", p.filename().string()));
  std::vector<std::uint16_t> v(elements);
  f.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(elements * 2));
  if (f.gcount() != static_cast<std::streamsize>(elements * 2))
    throw std::runtime_error(fmt::format("{} has {} bytes, expected {}", p.filename().string(), f.gcount(), elements * 2));
  return v;
}

// The case in the script's format (its docstring): case.json + one raw file per array.
void write_case(const reference::Case& kase, const fs::path& dir) {
  const reference::CaseSpec& s = kase.spec;
  nlohmann::json j;
  j["op"] = s.op == Op::dispatch ? "dispatch" : "combine";  // the script's words
  j["world_size"] = s.world_size;
  j["local_experts"] = s.local_experts;
  j["h1"] = s.h1;
  j["n1"] = s.n1;
  j["dtype"] = s.dtype == DType::bf16 ? "bf16" : "fp16";
  j["trans_gmm_weight"] = s.trans_gmm_weight;
  j["shared"] = s.shared_expert ? nlohmann::json{{"bs", s.bs}, {"h2", s.h2}, {"n2", s.n2}, {"trans_mm_weight", s.trans_mm_weight}}
                                : nlohmann::json(nullptr);
  j["ranks"] = nlohmann::json::array();
  for (std::size_t r = 0; r < kase.ranks.size(); ++r) {
    const reference::RankData& d = kase.ranks[r];
    nlohmann::json rj{{"send_counts", d.send_counts}, {"recv_counts", d.recv_counts}};
    const auto file = [&](const char* name, const std::vector<std::uint16_t>& v) {
      const std::string f = fmt::format("{}_{}.bin", name, r);
      write_raw(dir / f, v);
      rj[name] = f;
    };
    file("gmm_x", d.gmm_x);
    file("gmm_weight", d.gmm_weight);
    if (s.shared_expert) {
      file("mm_x", d.mm_x);
      file("mm_weight", d.mm_weight);
    }
    j["ranks"].push_back(rj);
  }
  std::ofstream(dir / "case.json") << j.dump() << "\n";
}

// GMMAV_MAX_CPU_ISA caps gmmav and its oneDNN (D66); the Python baselines then run as on such a
// host too: PyTorch's oneDNN and ATen's vector kernels capped to the same level (a cap on one side
// only would simulate no real host). Below AVX-512, PyTorch would still send BF16 matmuls to oneDNN
// (its check reads CPUID, not the cap), which has no BF16 kernel there and fails; on a real AVX2
// host it takes ATen's own: GMMAV_BENCH_TORCH_NO_MKLDNN=1 tells torch_composite.py to do the same.
// Shell assignments for the command line; empty without a cap.
std::string isa_cap_for_torch() {
  const std::optional<CpuIsa> cap = cpu_isa_cap();
  if (!cap) return {};
  switch (*cap) {
    case CpuIsa::portable:
      return "ONEDNN_MAX_CPU_ISA=SSE41 ATEN_CPU_CAPABILITY=default GMMAV_BENCH_TORCH_NO_MKLDNN=1 ";
    case CpuIsa::avx2:
      return "ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 GMMAV_BENCH_TORCH_NO_MKLDNN=1 ";
    case CpuIsa::avx512:
      return "ONEDNN_MAX_CPU_ISA=AVX512_CORE ";
    case CpuIsa::avx512_bf16:
      return "ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 ";
  }
  return {};
}

// 16-bit floats (fp16 and bf16 alike) are sign-magnitude: this maps them onto
// integers in value order, so the difference is the distance in ulps.
std::int64_t ordered(std::uint16_t b) { return (b & 0x8000) ? -static_cast<std::int64_t>(b & 0x7FFF) : b; }

// The last non-empty line of the script's stderr (a Python traceback ends with the error itself).
std::string last_error_line(const fs::path& p) {
  std::ifstream f(p);
  std::string last;
  for (std::string line; std::getline(f, line);)
    if (line.find_first_not_of(" \t") != std::string::npos) last = line;
  return last.empty() ? "(no message on stderr)" : last.substr(0, 300);
}

void check_outputs(const reference::Case& kase, const fs::path& dir, const PythonBaselineSettings& s, PythonBaselineResult& t) {
  const reference::CaseSpec& spec = kase.spec;
  const bool dispatch = spec.op == Op::dispatch;
  std::vector<reference::RankOutputs> ref;
  std::optional<SpecBoundBetweenResults> bound;  // too large for the reference: the bound between torch and fused
  if (s.check_reference && dispatch) {
    for (reference::DispatchRankOutputs& o : reference::compute_dispatch(kase.shapes(), kase.reference_inputs()))
      ref.push_back({std::move(o.gmm_y), std::move(o.mm_y)});
  } else if (s.check_reference) {
    ref = reference::compute(kase.shapes(), kase.reference_inputs());
  } else if (!dispatch) {  // the bound is the combine op's layout (spec_bound.hpp)
    bound.emplace(kase);
  }
  std::int64_t ref_bad = 0, bound_bad = 0;
  double max_rel = 0;
  for (std::size_t r = 0; r < kase.ranks.size(); ++r) {
    const reference::RankData& d = kase.ranks[r];
    struct Pair {
      const char* file;
      const std::vector<std::uint16_t>& fused;
      const reference::Output* ref;
    };
    std::vector<Pair> outs{{"y", d.y, s.check_reference ? &ref[r].y : nullptr}};
    if (spec.shared_expert) outs.push_back({"mm_y", d.mm_y, s.check_reference ? &ref[r].mm_y : nullptr});
    for (const Pair& p : outs) {
      auto got = read_raw(dir / fmt::format("{}_{}.bin", p.file, r), p.fused.size());
      if (s.inject_fault && r == 0 && std::string(p.file) == "y" && !got.empty()) got[0] ^= 1;
      t.elements += static_cast<std::int64_t>(got.size());
      for (std::size_t i = 0; i < got.size(); ++i) {
        if (got[i] == p.fused[i]) continue;
        ++t.differ_from_fused;
        t.max_ulp_from_fused = std::max(t.max_ulp_from_fused, std::abs(ordered(got[i]) - ordered(p.fused[i])));
      }
      if (p.ref) {
        const auto c = reference::compare(spec.dtype, got, *p.ref, false);
        ref_bad += c.mismatches;
        max_rel = std::max(max_rel, c.max_rel_error);
      }
      if (bound)
        bound_bad += std::string(p.file) == "y" ? bound->y_violations(static_cast<int>(r), got, p.fused)
                                                : bound->mm_y_violations(static_cast<int>(r), got, p.fused);
    }
  }
  t.check =
      fmt::format("vs fused: {}", t.differ_from_fused == 0 ? std::string("bit-identical")
                                                           : fmt::format("{} of {} elements differ, max {} ulp",
                                                                         t.differ_from_fused, t.elements, t.max_ulp_from_fused));
  if (s.check_reference) {
    t.reference_checked = true;
    t.reference_ok = ref_bad == 0;
    t.check += ref_bad == 0 ? fmt::format("; vs FP64 reference: PASS (max rel err {:.2g})", max_rel)
                            : fmt::format("; vs FP64 reference: FAIL ({} elements outside SPEC §4 tolerance)", ref_bad);
  } else if (dispatch) {  // no bound for the dispatch op's layout: said, not passed off as checked
    t.check += "; FP64 reference too large for this case: checked against fused only";
  } else {
    t.reference_ok = bound_bad == 0;  // both within docs/spec.md §4 of the exact value is possible only inside the bound
    t.check +=
        bound_bad == 0
            ? std::string("; within the SPEC §4 bound of fused (FP64 reference too large; Cauchy-Schwarz bound): PASS")
            : fmt::format("; FAIL: {} elements farther from fused than two SPEC §4 tolerances (Cauchy-Schwarz bound)", bound_bad);
  }
}

}  // namespace

namespace {

// `from_bin` relative to the running executable's directory when it exists, else `build_tree`
// when it exists, else empty.
std::string installed_or_build_tree(const char* from_bin, const std::string& build_tree) {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path installed = exe.parent_path() / from_bin;
    if (fs::exists(installed, ec)) return fs::weakly_canonical(installed, ec).string();
  }
  if (!build_tree.empty() && fs::exists(build_tree, ec)) return build_tree;
  return {};
}

}  // namespace

std::string find_torch_composite() {
  if (const char* env = config::torch_composite()) return fs::exists(env) ? std::string(env) : std::string();
  return installed_or_build_tree(GMMAV_TORCH_COMPOSITE_FROM_BIN, GMMAV_TORCH_COMPOSITE_SOURCE);
}

PythonBaselineSettings find_gmmav_python() {
  PythonBaselineSettings s;
  const fs::path composite = find_torch_composite();  // its sibling, unless GMMAV_TORCH_COMPOSITE points elsewhere
  const fs::path beside = composite.empty() ? fs::path() : composite.parent_path() / "gmmav_python.py";
  std::error_code ec;
  if (!beside.empty() && fs::exists(beside, ec)) {
    s.script = beside.string();
  } else {
    const std::string source = GMMAV_TORCH_COMPOSITE_SOURCE;
    const fs::path from_source = source.empty() ? fs::path() : fs::path(source).parent_path() / "gmmav_python.py";
    if (!from_source.empty() && fs::exists(from_source, ec)) s.script = from_source.string();
  }
  const std::string package = installed_or_build_tree(GMMAV_PYTHON_PACKAGE_FROM_BIN, GMMAV_PYTHON_PACKAGE_BUILD);
  if (!package.empty() && fs::exists(fs::path(package) / "gmmav", ec)) s.args = {"--package", package};
  return s;
}

PythonBaselineResult run_python_baseline(const reference::Case& kase, const PythonBaselineSettings& s) {
  PythonBaselineResult t;
  t.attempted = true;
  if (s.script.empty()) {
    t.why = config::torch_composite() != nullptr
                ? fmt::format("GMMAV_TORCH_COMPOSITE={}: no such file", config::torch_composite())
                : "the script was not found (not in share/gmmav beside the CLI nor in the source tree; set "
                  "GMMAV_TORCH_COMPOSITE to torch_composite.py, gmmav_python.py is looked for beside it)";
    return t;
  }
  fs::path dir;
  if (s.keep_dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string templ = fmt::format("{}/gmmav-torch-XXXXXX", tmp != nullptr && tmp[0] != '\0' ? tmp : "/tmp");
    if (::mkdtemp(templ.data()) == nullptr) {
      t.why = "cannot create a temporary directory " + templ;
      return t;
    }
    dir = templ;
  } else {  // afresh: no output of an earlier run may be read as this one's
    std::error_code ec;
    dir = s.keep_dir;
    fs::remove_all(dir, ec);
    if (!fs::create_directories(dir, ec) || ec) {
      t.why = fmt::format("--keep-case-dir: cannot create {}: {}", dir.string(), ec ? ec.message() : "it exists");
      return t;
    }
    t.case_dir = dir.string();
  }
  struct RemoveAtExit {
    fs::path p;
    ~RemoveAtExit() {
      std::error_code ec;
      if (!p.empty()) fs::remove_all(p, ec);
    }
  } remove_at_exit{s.keep_dir.empty() ? dir : fs::path()};
  try {
    write_case(kase, dir);
    // The bench sets GOMP_SPINCOUNT for its library variant (omp_spin_limit.cpp); torch runs as users run it.
    const std::string env = config::bench_spin_marker() ? "env -u GOMP_SPINCOUNT -u GMMAV_BENCH_SPIN_SET " : "env ";
    std::string options = fmt::format("--repeat {} --warmup {}", s.repeat, s.warmup);
    if (s.threads_per_rank > 0) options += fmt::format(" --threads {}", s.threads_per_rank);
    for (const std::string& a : s.args) options += fmt::format(" {}", shell_quote(a));
    t.command = fmt::format("{}{}{} {} {} {}", env, isa_cap_for_torch(), shell_quote(s.python), shell_quote(s.script),
                            shell_quote(dir.string()), options);
    const std::string cmd = fmt::format("{} 2>{}", t.command, shell_quote((dir / "stderr.txt").string()));
    std::fflush(nullptr);
    FILE* p = ::popen(cmd.c_str(), "r");
    if (p == nullptr) {
      t.why = "cannot start " + s.python;
      return t;
    }
    std::string out;
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    const int status = ::pclose(p);
    // The result is the last line that is a JSON object.
    nlohmann::json j;
    std::istringstream lines(out);
    for (std::string line; std::getline(lines, line);)
      if (!line.empty() && line.front() == '{') j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object()) {
      t.why = fmt::format("{} exited with status {} and no result: {}", s.python, WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                          last_error_line(dir / "stderr.txt"));
      return t;
    }
    if (!j.value("available", false)) {
      t.why = j.value("why", std::string("the script says PyTorch is not available"));
      return t;
    }
    if (j.contains("error")) {
      t.why = j["error"].get<std::string>() + ": " + last_error_line(dir / "stderr.txt");
      return t;
    }
    t.version = j.value("torch", std::string());
    t.threads_per_rank = j.value("threads_per_rank", s.threads_per_rank);
    t.compute_threads = j.value("compute_threads", 0);
    t.samples = j.at("samples_s").get<std::vector<double>>();
    t.median = j.at("median_s").get<double>();
    if (j.contains("native_samples_s")) {
      t.native_samples = j.at("native_samples_s").get<std::vector<double>>();
      t.native_median = j.at("native_median_s").get<double>();
    }
    if (j.contains("cache")) t.cache = j["cache"];
    if (j.contains("entry_us")) {
      t.entry_us_python = j["entry_us"].value("python", 0.0);
      t.entry_us_native = j["entry_us"].value("native", 0.0);
    }
    t.available = true;
    check_outputs(kase, dir, s, t);
  } catch (const std::exception& e) {
    if (!t.available) {
      t.why = std::string("the script failed: ") + e.what();
    } else {  // timed, but its outputs could not be read: the timing of an unchecked computation is not reported
      t.available = false;
      t.why = std::string("the script ran but its outputs could not be checked: ") + e.what();
    }
  }
  return t;
}

nlohmann::json to_json(const PythonBaselineResult& t) {
  nlohmann::json j{{"available", t.available}, {"attempted", t.attempted}};
  if (!t.command.empty()) j["command"] = t.command;
  if (!t.case_dir.empty()) j["case_dir"] = t.case_dir;
  if (!t.available) {
    j["why"] = t.why;
    return j;
  }
  j["torch"] = t.version;
  if (t.compute_threads > 0)
    j["compute_threads"] = t.compute_threads;  // gmmav_python.py: one pool for its W rank threads
  else
    j["threads_per_rank"] = t.threads_per_rank;
  j["t_s"] = t.median;
  j["samples_s"] = t.samples;
  if (!t.native_samples.empty()) {
    j["native_t_s"] = t.native_median;
    j["native_samples_s"] = t.native_samples;
    j["over_native"] = t.native_median > 0 ? t.median / t.native_median : 0.0;
  }
  if (!t.cache.is_null()) j["weight_cache"] = t.cache;
  if (t.entry_us_python > 0) j["entry_us"] = {{"python", t.entry_us_python}, {"native", t.entry_us_native}};
  j["differ_from_fused"] = t.differ_from_fused;
  j["max_ulp_from_fused"] = t.max_ulp_from_fused;
  j["elements"] = t.elements;
  j["reference_checked"] = t.reference_checked;
  j["verified"] = t.reference_ok;
  j["verification"] = t.check;
  return j;
}

std::string python_line(const PythonBaselineResult& p, double fused) {
  if (!p.available) return "python not run: " + p.why;
  std::string s = fmt::format("python (gmmav.torch, weights from its cache) {:.3f} ms", p.median * 1e3);
  if (fused > 0) s += fmt::format(" = {:.3f} x fused", p.median / fused);
  if (p.native_median > 0)
    s += fmt::format(", {:.3f} x the native call interleaved with it ({:.3f} ms)", p.median / p.native_median,
                     p.native_median * 1e3);
  if (p.entry_us_python > 0)
    s += fmt::format("; the last rank enters C++ {:.0f} us after the first starts (native {:.0f} us)", p.entry_us_python,
                     p.entry_us_native);
  if (p.cache.is_object()) s += fmt::format("; cache: {} hits, {} packs", p.cache.value("hits", 0), p.cache.value("packs", 0));
  return s + "; " + p.check;
}

void fail_on_python_difference(const PythonBaselineResult& p, bool& verified_ok, std::string& verification) {
  if (!p.available) return;
  std::string why;
  if (p.differ_from_fused > 0)
    why = fmt::format("gmmav's Python path: {} of {} elements DIFFER from fused (max {} ulp)", p.differ_from_fused, p.elements,
                      p.max_ulp_from_fused);
  else if (!p.reference_ok)
    why = "gmmav's Python path: " + p.check;
  if (why.empty()) return;
  verified_ok = false;
  verification += "; " + why;
}

std::string kept_case_lines(const PythonBaselineResult& python, const PythonBaselineResult& torch, std::string_view indent) {
  std::string s;
  for (const auto& [name, p] : {std::pair<const char*, const PythonBaselineResult*>{"python", &python}, {"torch", &torch}})
    if (!p->case_dir.empty()) s += fmt::format("{}{} case kept in {}; rerun: {}\n", indent, name, p->case_dir, p->command);
  return s;
}

}  // namespace gmmav::bench
