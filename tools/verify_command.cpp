// `gmmav verify`: runs the operator on a case read from .npy files (one set
// per rank, verify_case.hpp) on an in-process group or, under mpirun, one
// rank per process, writes y/mmY (the dispatch op: gmmY/mmY/permuteOut), and
// compares them with expected outputs when the case has them.
// Exit 0 = ran (and matched), 1 = an output differs (or the run failed),
// 2 = the case is unusable (the message names the file).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "commands.hpp"
#include "common/rank_threads.hpp"
#include "gmmav/gmmav.hpp"
#include "npy.hpp"
#include "option_checks.hpp"
#include "output_compare.hpp"
#include "process_group.hpp"
#include "reference/dispatch_reference.hpp"
#include "reference/reference.hpp"
#include "verify_case.hpp"

namespace gmmav::cli {
namespace {

namespace fs = std::filesystem;

struct VerifyOptions {
  std::string op = "combine";
  std::string inputs;
  std::string out;
  std::string dtype = "fp16";
  bool trans_gmm = false, trans_mm = false;
  bool exact = false;
  double tolerance = 0.005;
  double floor = 1e-3;
  bool json = false;
  std::string backend = "auto";
};

struct RankOutputs {
  std::vector<std::uint16_t> y, mm_y, permute_out;
};

struct TensorResult {
  int rank = 0;
  std::string tensor;  // "y" (the dispatch op: "gmmY"), "mmY" or "permuteOut"
  std::int64_t elements = 0;
  bool checked = false;
  TensorComparison cmp;
};

const char* dtype_name(DType t) { return t == DType::f16 ? "fp16" : "bf16"; }

// The --op word of an operator.
const char* op_name(Op op) { return op == Op::dispatch ? "dispatch" : "combine"; }

[[noreturn]] void input_error(const std::string& what) { throw InputError(what); }

std::string rank_files(const VerifyCase& c, int r) {
  std::string s = case_file("gmmX", r) + ", " + case_file("gmmWeight", r) + ", " + case_file("sendCounts", r) + ", " +
                  case_file("recvCounts", r);
  if (c.has_shared_expert()) s += ", " + case_file("mmX", r) + ", " + case_file("mmWeight", r);
  return s;
}

// The file a gmmav::Error's parameter comes from, or every file of the rank.
std::string files_for(const VerifyCase& c, int r, const std::string& param) {
  if (param == "gmmX" || param == "gmmWeight" || param == "sendCounts" || param == "recvCounts") return case_file(param, r);
  if (param == "mmXOptional" || param == "mmX") return case_file("mmX", r);
  if (param == "mmWeightOptional" || param == "mmWeight" || param == "transMmWeight") return case_file("mmWeight", r);
  if (param == "permuteOutOptional") return case_file("permuteOut", r);
  return rank_files(c, r);
}

OpTensors tensors_of(const RankCase& rc, RankOutputs& out) {
  const ProblemDesc& d = rc.desc;
  OpTensors t;
  t.gmm_x = ConstTensorView::matrix(rc.gmm_x.data(), d.dtype, rc.rows_in, d.h1);
  t.gmm_weight = d.trans_gmm_weight ? ConstTensorView::cube(rc.gmm_weight.data(), d.dtype, d.local_experts, d.n1, d.h1)
                                    : ConstTensorView::cube(rc.gmm_weight.data(), d.dtype, d.local_experts, d.h1, d.n1);
  t.y = TensorView::matrix(out.y.data(), d.dtype, rc.rows_out, d.n1);
  if (d.shared) {
    const SharedExpertDesc& s = *d.shared;
    t.mm_x = ConstTensorView::matrix(rc.mm_x.data(), d.dtype, s.bs, s.h2);
    t.mm_weight = s.trans_mm_weight ? ConstTensorView::matrix(rc.mm_weight.data(), d.dtype, s.n2, s.h2)
                                    : ConstTensorView::matrix(rc.mm_weight.data(), d.dtype, s.h2, s.n2);
    t.mm_y = TensorView::matrix(out.mm_y.data(), d.dtype, s.bs, s.n2);
  }
  if (d.permute_out) t.permute_out = TensorView::matrix(out.permute_out.data(), d.dtype, rc.rows_out, d.h1);
  return t;
}

// The ranks this process runs: all of them (threads of an in-process group),
// or its own under MPI.
std::vector<int> ranks_here(const VerifyCase& c, const ProcessGroup& g) {
  if (g.is_mpi()) return {g.rank()};
  std::vector<int> all(static_cast<std::size_t>(c.world_size()));
  for (int r = 0; r < c.world_size(); ++r) all[static_cast<std::size_t>(r)] = r;
  return all;
}

// Runs this process's ranks: each on its own thread of a fresh in-process
// group, or its one rank on the MPI group. Plans are built and the tensors
// checked first, and every process learns whether any rank failed that, so a
// rank with bad input never leaves its peers waiting for it until the timeout.
// Returns the exit code (0, or 1/2 after printing), the same on every process.
int run_case(const VerifyCase& c, const ProcessGroup& g, std::vector<RankOutputs>& outs, double& seconds) {
  const std::vector<int> mine = ranks_here(c, g);
  outs.resize(static_cast<std::size_t>(c.world_size()));
  std::vector<Plan> plans;
  std::vector<OpTensors> tensors;
  bool bad = false;
  for (int r : mine) {
    try {
      plans.push_back(Plan::create(c.ranks[static_cast<std::size_t>(r)].desc));
      // The outputs, sized from the validated plan (its products of counts and dimensions fit in int64).
      const Plan& p = plans.back();
      const ProblemDesc& d = p.desc();
      RankOutputs& o = outs[static_cast<std::size_t>(r)];
      o.y.assign(static_cast<std::size_t>(p.rows_out() * d.n1), 0);
      if (d.shared) o.mm_y.assign(static_cast<std::size_t>(d.shared->bs * d.shared->n2), 0);
      if (d.permute_out) o.permute_out.assign(static_cast<std::size_t>(p.rows_out() * d.h1), 0);
      tensors.push_back(tensors_of(c.ranks[static_cast<std::size_t>(r)], outs[static_cast<std::size_t>(r)]));
      plans.back().check(tensors.back());
    } catch (const Error& e) {
      std::fprintf(stderr, "gmmav verify: rank %d (%s): %s\n", r, files_for(c, r, e.param()).c_str(), e.what());
      bad = true;
    }
  }
  if (g.max(bad ? 2 : 0) != 0) return 2;

  struct Failure {
    bool failed = false;
    Errc code = Errc::internal;
    std::string param, message;
  };
  std::vector<Failure> failures(mine.size());
  auto call = [&](std::size_t i, const Comm& comm) {
    Failure& f = failures[i];
    try {
      std::vector<std::byte> workspace(workspace_size(plans[i], comm));  // the MPI backend's staging ring
      run(plans[i], comm, tensors[i], workspace);
    } catch (const Error& e) {
      f = {true, e.code(), e.param(), e.what()};
    } catch (const std::exception& e) {
      f = {true, Errc::internal, "", e.what()};
    }
  };
  const auto t0 = std::chrono::steady_clock::now();
  if (g.is_mpi()) {
    call(0, g.comm());
  } else {
    auto comms = create_in_process_group(c.world_size());
    (void)run_rank_threads(static_cast<int>(mine.size()), [&](int i) {  // call() keeps each rank's failure
      call(static_cast<std::size_t>(i), comms[static_cast<std::size_t>(mine[static_cast<std::size_t>(i)])]);
    });
  }
  seconds = g.max(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());

  int rc = 0;
  for (std::size_t i = 0; i < mine.size(); ++i) {
    const Failure& f = failures[i];
    if (!f.failed) continue;
    const int r = mine[i];
    const bool input = f.code == Errc::invalid_argument || f.code == Errc::null_argument || f.code == Errc::count_mismatch;
    std::fprintf(stderr, "gmmav verify: rank %d (%s) failed [%s]: %s\n", r, files_for(c, r, f.param).c_str(), to_string(f.code),
                 f.message.c_str());
    rc = std::max(rc, input ? 2 : 1);
  }
  return g.max(rc);
}

// Every output element's sum |a_k * b_k| over its dot product, in its final
// place, from the FP64 reference: the scale of the FP32 accumulation error
// that compare_tensor allows (docs/spec.md §4). In FP64 it cannot overflow, as a
// 16-bit re-run of the operator on |inputs| did (issue 16: above 65504 the
// allowance became unbounded).
std::vector<reference::RankOutputs> reference_sums(const VerifyCase& c) {
  const ProblemDesc& d = c.ranks[0].desc;
  reference::Shapes shapes;
  shapes.dtype = d.dtype;
  shapes.world_size = c.world_size();
  shapes.local_experts = d.local_experts;
  shapes.h1 = d.h1;
  shapes.n1 = d.n1;
  shapes.trans_gmm_weight = d.trans_gmm_weight;
  if (d.shared) {
    shapes.h2 = d.shared->h2;
    shapes.n2 = d.shared->n2;
    shapes.trans_mm_weight = d.shared->trans_mm_weight;
  }
  std::vector<reference::RankInputs> inputs;
  for (const RankCase& r : c.ranks) {
    reference::RankInputs in;
    in.send_counts = r.desc.send_counts;
    in.recv_counts = r.desc.recv_counts;
    in.gmm_x = r.gmm_x.data();
    in.gmm_weight = r.gmm_weight.data();
    if (r.desc.shared) {
      in.mm_x = r.mm_x.data();
      in.mm_weight = r.mm_weight.data();
      in.bs = r.desc.shared->bs;
    }
    inputs.push_back(in);
  }
  if (d.op == Op::combine) return reference::compute(shapes, inputs);
  std::vector<reference::RankOutputs> sums;
  for (reference::DispatchRankOutputs& o : reference::compute_dispatch(shapes, inputs))
    sums.push_back({std::move(o.gmm_y), std::move(o.mm_y)});
  return sums;
}

std::string describe(const VerifyCase& c) {
  const ProblemDesc& d = c.ranks[0].desc;
  std::string s = std::string(op_name(d.op)) + " op, W=" + std::to_string(c.world_size()) +
                  " ranks, e=" + std::to_string(d.local_experts) + " experts/rank, " + dtype_name(d.dtype) +
                  ", H1=" + std::to_string(d.h1) + " N1=" + std::to_string(d.n1) +
                  (d.trans_gmm_weight ? " (gmmWeight transposed)" : "");
  if (d.shared)
    s += ", shared expert H2=" + std::to_string(d.shared->h2) + " N2=" + std::to_string(d.shared->n2) +
         (d.shared->trans_mm_weight ? " (mmWeight transposed)" : "");
  else
    s += ", no shared expert";
  return s;
}

std::string value_text(DType t, std::uint16_t bits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.7g (0x%04x)", value_of(t, bits), bits);
  return buf;
}

void print_table(const VerifyOptions& o, const VerifyCase& c, const std::vector<TensorResult>& results, double seconds, bool pass,
                 int checked) {
  const DType t = c.layout.dtype;
  std::printf("gmmav verify: %s: %s; run %.2f ms\n", c.dir.string().c_str(), describe(c).c_str(), seconds * 1e3);
  if (o.exact)
    std::printf("criterion: bit-identical outputs (--exact)\n");
  else
    std::printf(
        "criterion: an element passes when err/bound <= 1, err = |got - expected|, bound = max(%g * "
        "max(|expected|, %g), 1 ulp + FP32 accumulation bound);\n"
        "           a tensor when every element does and MERE <= %g (MERE/MARE: mean/max of err / "
        "max(|expected|, %g))\n",
        o.tolerance, o.floor, o.tolerance, o.floor);
  std::printf("%5s %-10s %10s %10s %10s %9s %8s %11s %-16s %s\n", "rank", "tensor", "elements", "MERE", "MARE", "err/bound",
              "max ulp", "mismatches", "first mismatch", "result");
  for (const auto& r : results) {
    if (!r.checked) {
      std::printf("%5d %-10s %10lld %10s %10s %9s %8s %11s %-16s not checked (no %s)\n", r.rank, r.tensor.c_str(),
                  static_cast<long long>(r.elements), "-", "-", "-", "-", "-", "-", case_file(r.tensor, r.rank).c_str());
      continue;
    }
    std::string first = "-";
    if (r.cmp.mismatches > 0) first = "(" + std::to_string(r.cmp.first_row) + ", " + std::to_string(r.cmp.first_col) + ")";
    std::printf("%5d %-10s %10lld %10.3g %10.3g %9.3g %8lld %11lld %-16s %s\n", r.rank, r.tensor.c_str(),
                static_cast<long long>(r.elements), r.cmp.mere, r.cmp.mare, r.cmp.max_err_to_bound,
                static_cast<long long>(r.cmp.max_ulp), static_cast<long long>(r.cmp.mismatches), first.c_str(),
                r.cmp.pass ? "PASS" : "FAIL");
  }
  for (const auto& r : results) {
    if (!r.checked || r.cmp.pass) continue;
    if (r.cmp.mismatches > 0)
      std::printf(
          "rank %d %s: first mismatch at (row %lld, col %lld): got %s, expected %s (%s); %lld of %lld elements "
          "mismatch\n",
          r.rank, r.tensor.c_str(), static_cast<long long>(r.cmp.first_row), static_cast<long long>(r.cmp.first_col),
          value_text(t, r.cmp.first_got).c_str(), value_text(t, r.cmp.first_expected).c_str(),
          case_file(r.tensor, r.rank).c_str(), static_cast<long long>(r.cmp.mismatches), static_cast<long long>(r.elements));
    else
      std::printf("rank %d %s: MERE %.3g exceeds the tolerance %g\n", r.rank, r.tensor.c_str(), r.cmp.mere, o.tolerance);
  }
  int failed = 0;
  for (const auto& r : results) failed += r.checked && !r.cmp.pass;
  if (checked == 0)
    std::printf("ran; nothing to compare (no %s_r*.npy / mmY_r*.npy in %s)\n", routed_output(c.layout.op),
                c.dir.string().c_str());
  else if (pass)
    std::printf("PASS: %d of %d tensors match\n", checked, checked);
  else
    std::printf("FAIL: %d of %d tensors differ\n", failed, checked);
}

void print_json(const VerifyOptions& o, const VerifyCase& c, const std::vector<TensorResult>& results, double seconds, bool pass,
                int checked) {
  const DType t = c.layout.dtype;
  const ProblemDesc& d = c.ranks[0].desc;
  nlohmann::json j;
  j["inputs"] = c.dir.string();
  j["out"] = o.out.empty() ? nlohmann::json(nullptr) : nlohmann::json(o.out);
  j["op"] = op_name(d.op);
  j["world_size"] = c.world_size();
  j["experts"] = d.local_experts;
  j["dtype"] = dtype_name(t);
  j["h1"] = d.h1;
  j["n1"] = d.n1;
  j["trans_gmm_weight"] = d.trans_gmm_weight;
  j["shared_expert"] = d.shared.has_value();
  if (d.shared) {
    j["h2"] = d.shared->h2;
    j["n2"] = d.shared->n2;
    j["trans_mm_weight"] = d.shared->trans_mm_weight;
  }
  j["time_s"] = seconds;
  j["criterion"] = {{"exact", o.exact}, {"tolerance", o.tolerance}, {"floor", o.floor}};
  j["checked"] = checked;
  j["pass"] = pass;
  j["results"] = nlohmann::json::array();
  for (const auto& r : results) {
    nlohmann::json x;
    x["rank"] = r.rank;
    x["tensor"] = r.tensor;
    x["expected_file"] = case_file(r.tensor, r.rank);
    x["elements"] = r.elements;
    x["checked"] = r.checked;
    if (r.checked) {
      x["mere"] = r.cmp.mere;
      x["mare"] = r.cmp.mare;
      x["max_ulp"] = r.cmp.max_ulp;
      x["max_err_to_bound"] = r.cmp.max_err_to_bound;
      x["mismatches"] = r.cmp.mismatches;
      if (r.cmp.mismatches > 0)
        x["first_mismatch"] = {{"row", r.cmp.first_row},
                               {"col", r.cmp.first_col},
                               {"got", value_of(t, r.cmp.first_got)},
                               {"expected", value_of(t, r.cmp.first_expected)},
                               {"got_bits", r.cmp.first_got},
                               {"expected_bits", r.cmp.first_expected}};
      x["pass"] = r.cmp.pass;
    }
    j["results"].push_back(x);
  }
  std::printf("%s\n", j.dump(2).c_str());
}

void write_outputs(const VerifyCase& c, const std::vector<RankOutputs>& outs, const std::vector<int>& ranks,
                   const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) input_error(dir.string() + ": cannot create the --out directory: " + ec.message());
  const char* descr = npy_descr(c.layout.dtype);
  for (int r : ranks) {
    const RankCase& rc = c.ranks[static_cast<std::size_t>(r)];
    const RankOutputs& o = outs[static_cast<std::size_t>(r)];
    const std::int64_t y_shape[] = {rc.rows_out, rc.desc.n1};
    write_npy(dir / case_file(routed_output(rc.desc.op), r), descr, y_shape,
              {reinterpret_cast<const unsigned char*>(o.y.data()), o.y.size() * 2});
    if (rc.desc.permute_out) {
      const std::int64_t p_shape[] = {rc.rows_out, rc.desc.h1};
      write_npy(dir / case_file("permuteOut", r), descr, p_shape,
                {reinterpret_cast<const unsigned char*>(o.permute_out.data()), o.permute_out.size() * 2});
    }
    if (rc.desc.shared) {
      const std::int64_t m_shape[] = {rc.desc.shared->bs, rc.desc.shared->n2};
      write_npy(dir / case_file("mmY", r), descr, m_shape,
                {reinterpret_cast<const unsigned char*>(o.mm_y.data()), o.mm_y.size() * 2});
    }
  }
}

// A failure every process reaches at the same step (loading the case, writing
// outputs): every process learns of it before the next collective. When all
// failed alike (the same files), rank 0 alone prints; otherwise each failing
// rank prints its own. Returns 2 on every process if any failed, else 0.
int agree_on_failure(const ProcessGroup& g, const std::string& failure) {
  const int failed = static_cast<int>(g.sum(failure.empty() ? 0.0 : 1.0));
  if (failed == 0) return 0;
  if (!failure.empty() && failed < g.size())
    std::fprintf(stderr, "gmmav verify: rank %d: %s\n", g.rank(), failure.c_str());
  else if (!failure.empty() && g.root())
    std::fprintf(stderr, "gmmav verify: %s\n", failure.c_str());
  return 2;
}

nlohmann::json to_json(const TensorResult& r) {
  const TensorComparison& c = r.cmp;
  return {{"rank", r.rank},
          {"tensor", r.tensor},
          {"elements", r.elements},
          {"checked", r.checked},
          {"cmp",
           {c.elements, c.mismatches, c.mere, c.mare, c.max_ulp, c.max_err_to_bound, c.first_row, c.first_col, c.first_got,
            c.first_expected, c.pass}}};
}

TensorResult from_json(const nlohmann::json& j) {
  TensorResult r;
  r.rank = j.at("rank");
  r.tensor = j.at("tensor");
  r.elements = j.at("elements");
  r.checked = j.at("checked");
  const auto& c = j.at("cmp");
  // nlohmann::json writes an infinite error as null.
  auto number = [](const nlohmann::json& v) { return v.is_null() ? std::numeric_limits<double>::infinity() : v.get<double>(); };
  r.cmp = {c[0], c[1], number(c[2]), number(c[3]), c[4], number(c[5]), c[6], c[7], c[8], c[9], c[10]};
  return r;
}

// Under MPI every process compared its own rank's tensors: all of them, in
// rank order, on rank 0 (the others get an empty list).
std::vector<TensorResult> gather_results(const ProcessGroup& g, const std::vector<TensorResult>& mine) {
  if (!g.is_mpi()) return mine;
  nlohmann::json j = nlohmann::json::array();
  for (const auto& r : mine) j.push_back(to_json(r));
  std::vector<TensorResult> all;
  for (const auto& text : g.gather(j.dump()))
    for (const auto& x : nlohmann::json::parse(text)) all.push_back(from_json(x));
  return all;
}

int verify(const VerifyOptions& o, const ProcessGroup& g) {
  CaseLayout layout;
  layout.op = o.op == "dispatch" ? Op::dispatch : Op::combine;
  layout.dtype = o.dtype == "bf16" ? DType::bf16 : DType::f16;
  layout.trans_gmm_weight = o.trans_gmm;
  layout.trans_mm_weight = o.trans_mm;
  VerifyCase c;
  std::string failure;
  try {
    c = load_verify_case(o.inputs, layout);
    if (g.is_mpi() && c.world_size() != g.size())
      input_error(o.inputs + ": expected a case of W = " + std::to_string(g.size()) +
                  " ranks (the processes mpirun started, "
                  "one per rank), got W = " +
                  std::to_string(c.world_size()) + " (" + case_file("gmmX", 0) + " .. " + case_file("gmmX", c.world_size() - 1) +
                  "): run it with mpirun -np " + std::to_string(c.world_size()));
    if (!o.out.empty()) {
      std::error_code ec;
      if (fs::exists(o.out, ec) && fs::equivalent(o.out, o.inputs, ec))
        input_error("--out " + o.out + " is the --inputs directory: writing y_r*.npy there would replace the expected outputs");
    }
  } catch (const InputError& e) {
    failure = e.what();
  } catch (const NpyError& e) {
    failure = e.what();
  }
  if (const int rc = agree_on_failure(g, failure); rc != 0) return rc;

  std::vector<RankOutputs> outs;
  double seconds = 0;
  g.share_cores();
  if (const int rc = run_case(c, g, outs, seconds); rc != 0) return rc;
  const std::vector<int> mine = ranks_here(c, g);
  if (!o.out.empty()) {
    try {
      write_outputs(c, outs, mine, o.out);
    } catch (const InputError& e) {
      failure = e.what();
    } catch (const NpyError& e) {
      failure = e.what();
    }
    if (const int rc = agree_on_failure(g, failure); rc != 0) return rc;
  }

  bool any_expected = false;
  for (const RankCase& rc : c.ranks) any_expected = any_expected || rc.expected_y || rc.expected_mm_y || rc.expected_permute_out;
  std::vector<reference::RankOutputs> sums_of;
  if (any_expected && !o.exact) sums_of = reference_sums(c);

  CompareOptions co;
  co.exact = o.exact;
  co.tolerance = o.tolerance;
  co.floor = o.floor;
  std::vector<TensorResult> results;
  for (int r : mine) {
    const RankCase& rc = c.ranks[static_cast<std::size_t>(r)];
    const RankOutputs& out = outs[static_cast<std::size_t>(r)];
    for (int which = 0; which < 3; ++which) {
      if ((which == 1 && !rc.desc.shared) || (which == 2 && !rc.desc.permute_out)) continue;
      TensorResult tr;
      tr.rank = r;
      tr.tensor = which == 0 ? routed_output(rc.desc.op) : which == 1 ? "mmY" : "permuteOut";
      const auto& got = which == 0 ? out.y : which == 1 ? out.mm_y : out.permute_out;
      const auto& want = which == 0 ? rc.expected_y : which == 1 ? rc.expected_mm_y : rc.expected_permute_out;
      tr.elements = static_cast<std::int64_t>(got.size());
      if (which == 2) {  // a copy of gmmX rows: bit for bit whatever the criterion
        CompareOptions copy = co;
        copy.exact = true;
        tr.cmp = compare_tensor(c.layout.dtype, got, *want, rc.desc.h1, copy, {}, 1);
        tr.checked = true;
      } else if (want) {
        const std::int64_t cols = which == 0 ? rc.desc.n1 : rc.desc.shared->n2;
        const std::int64_t k = which == 0 ? rc.desc.h1 : rc.desc.shared->h2;
        std::span<const double> sums;
        if (!sums_of.empty())
          sums = which == 0 ? sums_of[static_cast<std::size_t>(r)].y.abs_sum : sums_of[static_cast<std::size_t>(r)].mm_y.abs_sum;
        tr.cmp = compare_tensor(c.layout.dtype, got, *want, cols, co, sums, k);
        tr.checked = true;
      }
      results.push_back(tr);
    }
  }
  bool pass = true;
  for (const auto& r : results) pass = pass && (!r.checked || r.cmp.pass);
  pass = g.max(pass ? 0 : 1) == 0;
  results = gather_results(g, results);
  if (!g.root()) return pass ? 0 : 1;  // rank 0 prints; every process exits with the group's status

  int checked = 0;
  for (const auto& r : results) checked += r.checked;
  if (o.json)
    print_json(o, c, results, seconds, pass, checked);
  else
    print_table(o, c, results, seconds, pass, checked);
  const std::string y_files = std::string(routed_output(layout.op)) + "_r*.npy";
  if (!o.out.empty() && !o.json)
    std::printf("wrote %s%s%s to %s\n", y_files.c_str(), c.has_shared_expert() ? ", mmY_r*.npy" : "",
                c.ranks[0].desc.permute_out ? ", permuteOut_r*.npy" : "", o.out.c_str());
  if (checked == 0)
    std::fprintf(stderr, "gmmav verify: note: no expected %s / mmY_r*.npy in %s, outputs not checked\n", y_files.c_str(),
                 o.inputs.c_str());
  return pass ? 0 : 1;
}

}  // namespace

void add_verify_command(CLI::App& app) {
  auto o = std::make_shared<VerifyOptions>();
  CLI::App* cmd = app.add_subcommand(
      "verify", "Run the operator on a case stored as .npy files (one set per rank) and compare with expected outputs");
  cmd->footer(
      "Files in DIR, for r = 0..W-1: gmmX_r{r}.npy (sum(sendCounts), H1); gmmWeight_r{r}.npy (e, H1, N1), or (e, N1, H1)\n"
      "with --trans-gmm-weight; sendCounts_r{r}.npy and recvCounts_r{r}.npy (int64, e*W); optionally mmX_r{r}.npy\n"
      "(BS, H2) and mmWeight_r{r}.npy (H2, N2), or (N2, H2) with --trans-mm-weight; optionally the expected outputs:\n"
      "--op combine: y_r{r}.npy (sum(recvCounts), N1) and mmY_r{r}.npy; --op dispatch: gmmY_r{r}.npy (sum(recvCounts),\n"
      "N1), mmY_r{r}.npy and permuteOut_r{r}.npy (sum(recvCounts), H1; compared bit for bit, and written only when given).\n"
      "FP16 arrays are '<f2'; BF16 arrays are raw bit patterns '<u2' (with --dtype bf16).\n"
      "Exit status: 0 ran and matched, 1 an output differs (or the run failed), 2 bad input (the file is named).\n"
      "See docs/cli.md.");
  add_op_option(cmd, o->op);
  cmd->add_option("-i,--inputs", o->inputs, "Directory holding the case's .npy files")->required()->type_name("DIR");
  cmd->add_option("-o,--out", o->out,
                  "Directory to write the outputs to (y_r{r}.npy or gmmY_r{r}.npy, mmY_r{r}.npy, "
                  "permuteOut_r{r}.npy; created)")
      ->type_name("DIR");
  cmd->add_option("--dtype", o->dtype, "fp16 ('<f2' files) or bf16 ('<u2' bit patterns)")
      ->capture_default_str()
      ->check(CLI::IsMember({"fp16", "bf16"}));
  cmd->add_flag("--trans-gmm-weight", o->trans_gmm, "gmmWeight files are (e, N1, H1)");
  cmd->add_flag("--trans-mm-weight", o->trans_mm, "mmWeight files are (N2, H2)");
  cmd->add_flag("--exact", o->exact, "Require bit-identical outputs instead of the tolerance");
  cmd->add_option("--tolerance", o->tolerance,
                  "Bound on MERE and on each element's relative error (beyond 1 ulp + the FP32 accumulation bound)")
      ->capture_default_str()
      ->check(finite_non_negative());
  cmd->add_option("--floor", o->floor, "Relative errors are taken against max(|expected|, floor)")
      ->capture_default_str()
      ->check(finite_non_negative());
  cmd->add_flag("--json", o->json, "Print JSON instead of the table");
  cmd->add_option("--backend", o->backend,
                  "inproc (ranks are threads), mpi (one process per rank, under mpirun -np W), or auto (mpi when started "
                  "by mpirun)")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "inproc", "mpi"}));
  cmd->callback([o] {
    int rc = 0;
    try {
      const ProcessGroup g(o->backend);
      rc = verify(*o, g);
    } catch (const InputError& e) {
      std::fprintf(stderr, "gmmav verify: %s\n", e.what());
      rc = 2;
    } catch (const NpyError& e) {
      std::fprintf(stderr, "gmmav verify: %s\n", e.what());
      rc = 2;
    }
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace gmmav::cli
