// Plan: validation entry points and the row layout of docs/spec.md §3, computed once.
#include "gmmav/plan.hpp"

#include <limits>

#include "common/block_layout.hpp"
#include "common/fail.hpp"
#include "plan/plan_data.hpp"
#include "plan/rules.hpp"

namespace gmmav {

Plan Plan::create(const ProblemDesc& desc, Envelope envelope) {
  detail::validate_problem(desc, envelope);
  auto p = std::make_shared<detail::PlanData>();
  p->desc = desc;
  const int W = desc.world_size, e = desc.local_experts;
  const auto& sc = desc.send_counts;
  const auto& rc = desc.recv_counts;
  p->group_rows = layout::group_rows(desc.op, sc, rc, e);
  p->rows_to.assign(static_cast<std::size_t>(W), 0);
  p->rows_from.assign(static_cast<std::size_t>(W), 0);
  for (int d = 0; d < W; ++d) {
    for (int j = 0; j < e; ++j) {
      p->rows_to[static_cast<std::size_t>(d)] += sc[static_cast<std::size_t>(d * e + j)];
      p->rows_from[static_cast<std::size_t>(d)] += rc[static_cast<std::size_t>(d * e + j)];
    }
  }
  // Block offsets in rows (the orders: common/block_layout.hpp).
  std::vector<std::int64_t> send_offset(sc.size());  // [d*e + j]
  p->recv_offset.resize(rc.size());
  p->rows_in = layout::send_layout(desc.op, sc, e, send_offset);
  p->rows_out = layout::recv_layout(desc.op, rc, e, p->recv_offset);
  p->send_offset.resize(sc.size());  // stored [j*W + d]
  for (int j = 0; j < e; ++j)
    for (int d = 0; d < W; ++d)
      p->send_offset[static_cast<std::size_t>(j * W + d)] = send_offset[static_cast<std::size_t>(d * e + j)];
  return Plan(std::move(p));
}

namespace {
// With the shared expert the aclnn envelope's K rule (BSK = K * BS, K in
// [2, 8]) ties recvCounts to mmX; checked on the description alone it can only
// blame mmXOptional. y's rows are a second witness of BSK: when y and mmX agree
// with each other but not with recvCounts, recvCounts is the odd one out.
void check_recv_counts_against_y(const ProblemDesc& d, const TensorView& y) {
  if (!d.shared || y.rank != 2) return;
  std::int64_t bsk = 0;
  for (std::int64_t c : d.recv_counts) {
    if (c < 0 || c > std::numeric_limits<std::int64_t>::max() - bsk) return;  // the description's rules say so
    bsk += c;
  }
  const std::int64_t rows = y.dims[0], bs = d.shared->bs;
  const auto k_rule_holds = [bs](std::int64_t n) { return bs >= 1 && n % bs == 0 && n / bs >= 2 && n / bs <= 8; };
  if (bsk != rows && k_rule_holds(rows) && !k_rule_holds(bsk))
    fail(Errc::invalid_argument, "recvCounts",
         "expected BSK = sum(recvCounts) = {} (the rows of y: K = {} times BS = {}, the rows of mmXOptional), got {}", rows,
         rows / bs, bs, bsk);
}
}  // namespace

Plan Plan::from_tensors(int world_size, int rank, std::span<const std::int64_t> send_counts,
                        std::span<const std::int64_t> recv_counts, const OpTensors& t, bool trans_gmm_weight,
                        bool trans_mm_weight, Envelope envelope, Op op) {
  if (t.gmm_x.data == nullptr && t.gmm_x.rank == 0) fail(Errc::null_argument, "gmmX", "expected a tensor, got null");
  if (t.gmm_weight.rank != 3) fail(Errc::invalid_argument, "gmmWeight", "expected a 3-D tensor, got {}-D", t.gmm_weight.rank);
  if (t.gmm_x.rank != 2) fail(Errc::invalid_argument, "gmmX", "expected a 2-D tensor, got {}-D", t.gmm_x.rank);
  ProblemDesc d;
  d.world_size = world_size;
  d.rank = rank;
  d.dtype = t.gmm_x.dtype;
  d.local_experts = static_cast<int>(std::min<std::int64_t>(t.gmm_weight.dims[0], 1 << 30));
  d.h1 = trans_gmm_weight ? t.gmm_weight.dims[2] : t.gmm_weight.dims[1];
  d.n1 = trans_gmm_weight ? t.gmm_weight.dims[1] : t.gmm_weight.dims[2];
  d.trans_gmm_weight = trans_gmm_weight;
  d.send_counts.assign(send_counts.begin(), send_counts.end());
  d.recv_counts.assign(recv_counts.begin(), recv_counts.end());
  const int present = detail::shared_tensors_given(t);
  if (present == 0 && trans_mm_weight)
    fail(Errc::invalid_argument, "transMmWeight", "expected false without the shared expert, got true");
  if (present == 3) {
    if (t.mm_x->rank != 2) fail(Errc::invalid_argument, "mmXOptional", "expected a 2-D tensor, got {}-D", t.mm_x->rank);
    if (t.mm_weight->rank != 2)
      fail(Errc::invalid_argument, "mmWeightOptional", "expected a 2-D tensor, got {}-D", t.mm_weight->rank);
    SharedExpertDesc s;
    s.bs = t.mm_x->dims[0];
    s.h2 = trans_mm_weight ? t.mm_weight->dims[1] : t.mm_weight->dims[0];
    s.n2 = trans_mm_weight ? t.mm_weight->dims[0] : t.mm_weight->dims[1];
    s.trans_mm_weight = trans_mm_weight;
    d.shared = s;
  }
  if (t.gmm_weight.dims[0] > (1 << 30))
    fail(Errc::invalid_argument, "gmmWeight", "expected e (dim 0) <= 2^30, got {}", t.gmm_weight.dims[0]);
  d.op = op;
  d.permute_out = op == Op::dispatch && t.permute_out.has_value();
  if (envelope != Envelope::native && op == Op::combine) check_recv_counts_against_y(d, t.y);
  Plan plan = create(d, envelope);
  plan.check(t);
  return plan;
}

void Plan::check(const OpTensors& t) const { detail::validate_tensors(d_->desc, d_->rows_in, d_->rows_out, t); }

const ProblemDesc& Plan::desc() const noexcept { return d_->desc; }
std::int64_t Plan::rows_in() const noexcept { return d_->rows_in; }
std::int64_t Plan::rows_out() const noexcept { return d_->rows_out; }
std::int64_t Plan::exchange_width() const noexcept { return d_->desc.op == Op::combine ? d_->desc.n1 : d_->desc.h1; }
namespace {
// An accessor's argument: gmmav::Error naming it and its range, not std::out_of_range.
std::size_t index(const char* param, const char* what, int v, int n) {
  if (v < 0 || v >= n) fail(Errc::invalid_argument, param, "expected {} in [0, {}), got {}", what, n, v);
  return static_cast<std::size_t>(v);
}
}  // namespace

std::int64_t Plan::group_rows(int j) const { return d_->group_rows[index("j", "a local expert", j, local_experts())]; }
std::int64_t Plan::send_block_offset(int j, int d) const {
  const std::size_t jj = index("j", "a local expert", j, local_experts()), dd = index("d", "a destination rank", d, world_size());
  return d_->send_offset[jj * static_cast<std::size_t>(world_size()) + dd];
}
std::int64_t Plan::send_block_rows(int j, int d) const {
  const std::size_t jj = index("j", "a local expert", j, local_experts()), dd = index("d", "a destination rank", d, world_size());
  return d_->desc.send_counts[dd * static_cast<std::size_t>(local_experts()) + jj];
}
std::int64_t Plan::recv_block_offset(int s, int j) const {
  const std::size_t ss = index("s", "a source rank", s, world_size()), jj = index("j", "a local expert", j, local_experts());
  return d_->recv_offset[ss * static_cast<std::size_t>(local_experts()) + jj];
}
std::int64_t Plan::recv_block_rows(int s, int j) const {
  const std::size_t ss = index("s", "a source rank", s, world_size()), jj = index("j", "a local expert", j, local_experts());
  return d_->desc.recv_counts[ss * static_cast<std::size_t>(local_experts()) + jj];
}
std::int64_t Plan::rows_to(int d) const { return d_->rows_to[index("d", "a destination rank", d, world_size())]; }
std::int64_t Plan::rows_from(int s) const { return d_->rows_from[index("s", "a source rank", s, world_size())]; }
std::int64_t Plan::flops() const noexcept {
  const ProblemDesc& d = d_->desc;
  std::int64_t f = 2 * (d.op == Op::combine ? d_->rows_in : d_->rows_out) * d.h1 * d.n1;
  if (d.shared) f += 2 * d.shared->bs * d.shared->h2 * d.shared->n2;
  return f;
}

}  // namespace gmmav
