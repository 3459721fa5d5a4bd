// The validation rules of docs/spec.md §5 that concern the tensors of one call:
// presence, rank, dtype, shape, contiguity and output/input overlap.
#include <cstdint>
#include <string>

#include "common/fail.hpp"
#include "plan/rules.hpp"

namespace gmmav::detail {
namespace {

std::string dims_str(int rank, const std::int64_t* dims) {
  std::string s = "(";
  for (int i = 0; i < rank; ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + ")";
}

template <typename View>
void check_view(const char* param, const View& v, DType dtype, int rank, std::initializer_list<std::int64_t> expect) {
  if (v.rank != rank) fail(Errc::invalid_argument, param, "expected a {}-D tensor, got {}-D", rank, v.rank);
  if (v.dtype != dtype)
    fail(Errc::invalid_argument, param, "expected dtype {} (the dtype of gmmX), got {}", to_string(dtype), to_string(v.dtype));
  std::int64_t want[3] = {0, 0, 0};
  int i = 0;
  for (std::int64_t e : expect) want[i++] = e;
  for (i = 0; i < rank; ++i) {
    if (v.dims[i] != want[i])
      fail(Errc::invalid_argument, param, "expected shape {}, got {}", dims_str(rank, want), dims_str(rank, v.dims));
  }
  // Row-major contiguous: strides 0 mean "contiguous"; dims of extent 1 may carry any stride.
  bool all_zero = true;
  for (i = 0; i < rank; ++i) all_zero = all_zero && v.strides[i] == 0;
  if (!all_zero) {
    std::int64_t expected = 1;
    for (i = rank - 1; i >= 0; --i) {
      if (v.dims[i] != 1 && v.strides[i] != expected)
        fail(Errc::invalid_argument, param, "expected contiguous row-major strides, got stride {} for dim {} (expected {})",
             v.strides[i], i, expected);
      expected *= v.dims[i];
    }
  }
  if (v.data == nullptr && v.elements() != 0) fail(Errc::null_argument, param, "expected a data pointer, got null");
}

struct Range {
  std::uintptr_t lo = 0, hi = 0;  // [lo, hi)
  const char* name = "";
};
template <typename View>
Range range_of(const View& v, const char* name) {
  const auto lo = reinterpret_cast<std::uintptr_t>(v.data);
  return {lo, lo + v.bytes(), name};
}
bool overlaps(const Range& a, const Range& b) { return a.lo < a.hi && b.lo < b.hi && a.lo < b.hi && b.lo < a.hi; }

// The weights, in their (possibly transposed) layouts: shared by every call's
// validation and by PackedWeights::create.
void check_gmm_weight(const ProblemDesc& d, const ConstTensorView& w) {
  if (d.trans_gmm_weight)
    check_view("gmmWeight", w, d.dtype, 3, {d.local_experts, d.n1, d.h1});
  else
    check_view("gmmWeight", w, d.dtype, 3, {d.local_experts, d.h1, d.n1});
}
void check_mm_weight(const ProblemDesc& d, const ConstTensorView& w) {
  const SharedExpertDesc& s = *d.shared;
  if (s.trans_mm_weight)
    check_view("mmWeightOptional", w, d.dtype, 2, {s.n2, s.h2});
  else
    check_view("mmWeightOptional", w, d.dtype, 2, {s.h2, s.n2});
}

}  // namespace

int shared_tensors_given(const OpTensors& t) {
  const int present = int(t.mm_x.has_value()) + int(t.mm_weight.has_value()) + int(t.mm_y.has_value());
  if (present != 0 && present != 3)
    fail(Errc::null_argument,
         !t.mm_x        ? "mmXOptional"
         : !t.mm_weight ? "mmWeightOptional"
                        : "mmYOptional",
         "expected mmXOptional, mmWeightOptional and mmYOptional all given or all null, got {} of 3", present);
  return present;
}

void validate_tensors(const ProblemDesc& d, std::int64_t rows_in, std::int64_t rows_out, const OpTensors& t) {
  const DType dt = d.dtype;
  check_view("gmmX", t.gmm_x, dt, 2, {rows_in, d.h1});
  check_gmm_weight(d, t.gmm_weight);
  check_view(d.op == Op::dispatch ? "gmmY" : "y", t.y, dt, 2, {rows_out, d.n1});

  const int present = shared_tensors_given(t);
  if (d.shared && present == 0)
    fail(Errc::null_argument, "mmXOptional", "expected the shared-expert tensors (the plan has a shared expert), got none");
  if (!d.shared && present == 3)
    fail(Errc::invalid_argument, "mmXOptional", "expected no shared-expert tensors (the plan has none), got them");

  const bool dispatch = d.op == Op::dispatch;
  const char* y_name = dispatch ? "gmmY" : "y";
  if (!dispatch && t.permute_out)
    fail(Errc::invalid_argument, "permuteOutOptional",
         "expected no permuteOut for the combine op (only the dispatch op has one), got one");
  if (dispatch && d.permute_out != t.permute_out.has_value())
    fail(Errc::null_argument, "permuteOutOptional", "expected {} (permuteOutFlag is {}), got {}",
         d.permute_out ? "a tensor" : "none", d.permute_out ? "true" : "false", t.permute_out ? "one" : "none");
  Range outs[3] = {range_of(t.y, y_name), {}, {}};
  Range ins[4] = {range_of(t.gmm_x, "gmmX"), range_of(t.gmm_weight, "gmmWeight"), {}, {}};
  if (d.shared) {
    const SharedExpertDesc& s = *d.shared;
    check_view("mmXOptional", *t.mm_x, dt, 2, {s.bs, s.h2});
    check_mm_weight(d, *t.mm_weight);
    check_view("mmYOptional", *t.mm_y, dt, 2, {s.bs, s.n2});
    outs[1] = range_of(*t.mm_y, "mmYOptional");
    ins[2] = range_of(*t.mm_x, "mmXOptional");
    ins[3] = range_of(*t.mm_weight, "mmWeightOptional");
  }
  if (t.permute_out) {
    check_view("permuteOutOptional", *t.permute_out, dt, 2, {rows_out, d.h1});
    outs[2] = range_of(*t.permute_out, "permuteOutOptional");
  }
  for (const Range& o : outs) {
    for (const Range& i : ins)
      if (overlaps(o, i))
        fail(Errc::invalid_argument, o.name, "expected memory that does not overlap {}, got an overlap", i.name);
  }
  for (int a = 1; a < 3; ++a)
    for (int b = 0; b < a; ++b)
      if (overlaps(outs[a], outs[b]))
        fail(Errc::invalid_argument, outs[a].name, "expected memory that does not overlap {}, got an overlap", outs[b].name);
}

void validate_weights(const ProblemDesc& d, const OpTensors& t) {
  check_gmm_weight(d, t.gmm_weight);
  if (!d.shared) {
    if (t.mm_weight)
      fail(Errc::invalid_argument, "mmWeightOptional", "expected no shared-expert weight (the plan has none), got one");
    return;
  }
  if (!t.mm_weight)
    fail(Errc::null_argument, "mmWeightOptional", "expected the shared-expert weight (the plan has a shared expert), got none");
  check_mm_weight(d, *t.mm_weight);
}

}  // namespace gmmav::detail
