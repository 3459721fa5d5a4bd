#include "reference/synthetic_case.hpp"

#include <algorithm>
#include <cmath>
#include <random>

#include "common/rank_threads.hpp"
#include "numeric/half.hpp"
#include "reference/dispatch_reference.hpp"

namespace gmmav::reference {
namespace {

constexpr std::uint16_t kSentinel = 0xA5A5;

std::uint16_t encode(DType t, double v) { return numeric::from_double(t, v); }

void fill(std::vector<std::uint16_t>& v, std::size_t n, DType t, ValueKind kind, int denom, std::mt19937_64& rng) {
  v.resize(n);
  std::uniform_int_distribution<int> small(-denom, denom);
  std::uniform_real_distribution<double> real(-1.0, 1.0);
  for (auto& x : v) x = encode(t, kind == ValueKind::exact ? static_cast<double>(small(rng)) / denom : real(rng));
}

}  // namespace

const char* to_string(CountPattern p) {
  switch (p) {
    case CountPattern::balanced:
      return "balanced";
    case CountPattern::random:
      return "random";
    case CountPattern::skewed:
      return "skewed";
    case CountPattern::edges:
      return "edges";
  }
  return "?";
}

Case make_case(const CaseSpec& spec) {
  Case c;
  c.spec = spec;
  const int W = spec.world_size, e = spec.local_experts;
  std::mt19937_64 rng(spec.seed);
  c.ranks.resize(static_cast<std::size_t>(W));
  // counts[s][d*e + j]
  const std::int64_t cells = static_cast<std::int64_t>(W) * e;
  for (int s = 0; s < W; ++s) {
    auto& sc = c.ranks[static_cast<std::size_t>(s)].send_counts;
    sc.assign(static_cast<std::size_t>(cells), 0);
    const std::int64_t avg = std::max<std::int64_t>(1, spec.rows_per_rank / cells);
    switch (spec.counts) {
      case CountPattern::balanced:
        for (auto& x : sc) x = spec.rows_per_rank / cells;
        break;
      case CountPattern::random: {
        std::uniform_int_distribution<std::int64_t> u(0, 2 * avg);
        for (auto& x : sc) x = u(rng);
        break;
      }
      case CountPattern::skewed: {
        if (W > 1 && s == W - 1) break;  // the last rank sends nothing
        const int hot = static_cast<int>(rng() % static_cast<std::uint64_t>(e));
        std::uniform_int_distribution<std::int64_t> u(0, std::max<std::int64_t>(1, avg / 4));
        for (int d = 0; d < W; ++d)
          for (int j = 0; j < e; ++j)
            sc[static_cast<std::size_t>(d * e + j)] =
                j == hot ? avg * e - (e - 1) * u(rng) / 2 + static_cast<std::int64_t>(rng() % 7) : u(rng);
        break;
      }
      case CountPattern::edges: {
        for (auto& x : sc) {
          const auto r = rng() % 10;
          x = r < 4 ? 0 : r < 7 ? 1 : 2 + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(2 * avg));
        }
        sc[rng() % sc.size()] = avg * e + static_cast<std::int64_t>(rng() % 64);
        break;
      }
    }
  }
  for (int d = 0; d < W; ++d) {
    auto& rc = c.ranks[static_cast<std::size_t>(d)].recv_counts;
    rc.assign(static_cast<std::size_t>(cells), 0);
    for (int s = 0; s < W; ++s)
      for (int j = 0; j < e; ++j)
        rc[static_cast<std::size_t>(s * e + j)] =
            c.ranks[static_cast<std::size_t>(s)].send_counts[static_cast<std::size_t>(d * e + j)];
  }
  const std::int64_t bs = spec.bs > 0 ? spec.bs : std::max<std::int64_t>(1, spec.rows_per_rank / 2);
  c.spec.bs = bs;
  for (auto& r : c.ranks) {
    std::int64_t a = 0, bsk = 0;
    for (auto x : r.send_counts) a += x;
    for (auto x : r.recv_counts) bsk += x;
    fill(r.gmm_x, static_cast<std::size_t>(a * spec.h1), spec.dtype, spec.values, 8, rng);
    fill(r.gmm_weight, static_cast<std::size_t>(e * spec.h1 * spec.n1), spec.dtype, spec.values, 16, rng);
    r.y.assign(static_cast<std::size_t>(bsk * spec.n1), kSentinel);
    if (spec.op == Op::dispatch && spec.permute_out) r.permute_out.assign(static_cast<std::size_t>(bsk * spec.h1), kSentinel);
    if (spec.shared_expert) {
      fill(r.mm_x, static_cast<std::size_t>(bs * spec.h2), spec.dtype, spec.values, 8, rng);
      fill(r.mm_weight, static_cast<std::size_t>(spec.h2 * spec.n2), spec.dtype, spec.values, 16, rng);
      r.mm_y.assign(static_cast<std::size_t>(bs * spec.n2), kSentinel);
    }
  }
  return c;
}

ProblemDesc Case::desc(int rank) const {
  const RankData& r = ranks[static_cast<std::size_t>(rank)];
  ProblemDesc d;
  d.op = spec.op;
  d.permute_out = spec.op == Op::dispatch && spec.permute_out;
  d.world_size = spec.world_size;
  d.rank = rank;
  d.local_experts = spec.local_experts;
  d.send_counts = r.send_counts;
  d.recv_counts = r.recv_counts;
  d.h1 = spec.h1;
  d.n1 = spec.n1;
  d.dtype = spec.dtype;
  d.trans_gmm_weight = spec.trans_gmm_weight;
  if (spec.shared_expert) d.shared = SharedExpertDesc{spec.bs, spec.h2, spec.n2, spec.trans_mm_weight};
  return d;
}

OpTensors Case::tensors(int rank) {
  RankData& r = ranks[static_cast<std::size_t>(rank)];
  const DType t = spec.dtype;
  const std::int64_t a = static_cast<std::int64_t>(r.gmm_x.size()) / spec.h1;
  const std::int64_t bsk = static_cast<std::int64_t>(r.y.size()) / spec.n1;
  OpTensors o;
  o.gmm_x = ConstTensorView::matrix(r.gmm_x.data(), t, a, spec.h1);
  o.gmm_weight = spec.trans_gmm_weight ? ConstTensorView::cube(r.gmm_weight.data(), t, spec.local_experts, spec.n1, spec.h1)
                                       : ConstTensorView::cube(r.gmm_weight.data(), t, spec.local_experts, spec.h1, spec.n1);
  o.y = TensorView::matrix(r.y.data(), t, bsk, spec.n1);
  if (spec.op == Op::dispatch && spec.permute_out) o.permute_out = TensorView::matrix(r.permute_out.data(), t, bsk, spec.h1);
  if (spec.shared_expert) {
    o.mm_x = ConstTensorView::matrix(r.mm_x.data(), t, spec.bs, spec.h2);
    o.mm_weight = spec.trans_mm_weight ? ConstTensorView::matrix(r.mm_weight.data(), t, spec.n2, spec.h2)
                                       : ConstTensorView::matrix(r.mm_weight.data(), t, spec.h2, spec.n2);
    o.mm_y = TensorView::matrix(r.mm_y.data(), t, spec.bs, spec.n2);
  }
  return o;
}

reference::Shapes Case::shapes() const {
  return {spec.dtype, spec.world_size,       spec.local_experts,  spec.h1, spec.n1, spec.h2,
          spec.n2,    spec.trans_gmm_weight, spec.trans_mm_weight};
}

std::vector<reference::RankInputs> Case::reference_inputs() const {
  std::vector<reference::RankInputs> in;
  for (const RankData& r : ranks) {
    reference::RankInputs i;
    i.send_counts = r.send_counts;
    i.recv_counts = r.recv_counts;
    i.gmm_x = r.gmm_x.data();
    i.gmm_weight = r.gmm_weight.data();
    if (spec.shared_expert) {
      i.mm_x = r.mm_x.data();
      i.mm_weight = r.mm_weight.data();
      i.bs = spec.bs;
    }
    in.push_back(i);
  }
  return in;
}

std::vector<std::string> run_in_process(Case& c, const GroupOptions& options) {
  const int W = c.spec.world_size;
  auto comms = create_in_process_group(W, options);
  std::vector<std::string> errors(static_cast<std::size_t>(W));
  (void)run_rank_threads(W, [&](int r) {  // each rank's error kept as its message
    try {
      const Plan plan = Plan::create(c.desc(r));
      std::vector<std::byte> workspace(workspace_size(plan, comms[static_cast<std::size_t>(r)]));
      run(plan, comms[static_cast<std::size_t>(r)], c.tensors(r), workspace);
    } catch (const std::exception& e) {
      errors[static_cast<std::size_t>(r)] = e.what();
    }
  });
  return errors;
}

CaseCheck check_case(const Case& c, bool exact, int only_rank) {
  CaseCheck out;
  const auto inputs = c.reference_inputs();
  const bool dispatch = c.spec.op == Op::dispatch;
  std::vector<RankOutputs> ref;
  std::vector<Output> permuted;  // [rank]: the dispatch op's permuteOut, as an output to compare exactly
  if (dispatch) {
    for (DispatchRankOutputs& o : compute_dispatch(c.shapes(), inputs)) {
      Output p;
      p.k = 1;
      for (std::uint16_t b : o.permute_out) {
        p.exact.push_back(to_double(c.spec.dtype, b));
        p.abs_sum.push_back(std::abs(p.exact.back()));
      }
      p.bits = std::move(o.permute_out);
      permuted.push_back(std::move(p));
      ref.push_back({std::move(o.gmm_y), std::move(o.mm_y)});
    }
  } else {
    ref = reference::compute(c.shapes(), inputs);
  }
  double rel_sum = 0;
  std::int64_t tensors = 0;
  for (int r = 0; r < c.spec.world_size; ++r) {
    if (only_rank >= 0 && r != only_rank) continue;
    const RankData& rd = c.ranks[static_cast<std::size_t>(r)];
    for (int which = 0; which < 3; ++which) {
      if ((which == 1 && !c.spec.shared_expert) || (which == 2 && rd.permute_out.empty())) continue;
      const auto& got = which == 0 ? rd.y : which == 1 ? rd.mm_y : rd.permute_out;
      const auto& want = which == 0   ? ref[static_cast<std::size_t>(r)].y
                         : which == 1 ? ref[static_cast<std::size_t>(r)].mm_y
                                      : permuted[static_cast<std::size_t>(r)];
      const Comparison cmp = compare(c.spec.dtype, got, want, exact || which == 2);
      out.max_rel_error = std::max(out.max_rel_error, cmp.max_rel_error);
      out.max_abs_error = std::max(out.max_abs_error, cmp.max_abs_error);
      out.max_error_to_bound = std::max(out.max_error_to_bound, cmp.max_error_to_bound);
      out.max_ulp_error = std::max(out.max_ulp_error, cmp.max_ulp_error);
      out.bit_differences += cmp.bit_differences;
      rel_sum += cmp.mean_rel_error;
      ++tensors;
      if (!cmp.ok() && out.ok) {
        out.ok = false;
        const char* names[] = {dispatch ? " gmmY: " : " y: ", " mmY: ", " permuteOut: "};
        out.first_failure = std::string("rank ") + std::to_string(r) + names[which] + std::to_string(cmp.mismatches) +
                            " mismatches; first " + cmp.first_mismatch_text;
      }
    }
  }
  out.mean_rel_error = tensors ? rel_sum / static_cast<double>(tensors) : 0;
  return out;
}

}  // namespace gmmav::reference
