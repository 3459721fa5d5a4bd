// gmmav native API: the problem description and the Plan built from it.
//
// One Plan type serves both operators of the expert-parallel MoE layer
// (ProblemDesc::op): the combine op of docs/spec.md (aclnnGroupedMatMulAlltoAllv:
// GroupedMatMul -> Unpermute -> AlltoAllv) and its mirror image, the dispatch
// op of docs/dispatch-op.md (aclnnAlltoAllvGroupedMatMul: AlltoAllv -> Permute
// -> GroupedMatMul). Their counts, rules and layouts are each other's
// transposes, so validation and layout code is shared, not copied.
//
// A Plan is the validated, immutable layout of one rank's call (oneDNN's
// "primitive descriptor" idea): built once from counts and shapes, reusable by
// every call with the same counts, cheap to copy (shared, immutable data).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "gmmav/export.hpp"
#include "gmmav/types.hpp"

namespace gmmav {

/// The optional shared expert: mmY(BS, N2) = mmX(BS, H2) @ mmWeight(H2, N2).
struct SharedExpertDesc {
  std::int64_t bs = 0;
  std::int64_t h2 = 0;
  std::int64_t n2 = 0;
  bool trans_mm_weight = false;  ///< mmWeight is stored (N2, H2)
};

/// Which operator a plan describes.
enum class Op : std::uint8_t {
  combine,   ///< docs/spec.md: y = AlltoAllv(Unpermute(GroupedMatMul(gmmX)))
  dispatch,  ///< docs/dispatch-op.md: y (gmmY) = GroupedMatMul(Permute(AlltoAllv(gmmX)))
};
GMMAV_API const char* to_string(Op op) noexcept;

/// Everything a rank's call depends on except the data pointers.
///
/// Rows per op (both: gmmX has sum(sendCounts) rows, y has sum(recvCounts)):
/// - combine: gmmX (A, H1) expert-major, destination-minor; y (BSK, N1) by
///   global expert g = s*e + j of the rank that computed the rows.
/// - dispatch: gmmX (BSK, H1) by global expert g = d*e + j of the destination;
///   y = gmmY (A, N1) and permuteOut (A, H1) expert-major, source-minor.
struct ProblemDesc {
  Op op = Op::combine;
  int world_size = 1;                     ///< W = epWorldSize
  int rank = 0;                           ///< this rank, in [0, W)
  int local_experts = 1;                  ///< e
  std::vector<std::int64_t> send_counts;  ///< length e*W, [d*e + j]
  std::vector<std::int64_t> recv_counts;  ///< length e*W, [s*e + j]
  std::int64_t h1 = 0;                    ///< gmmX columns (K of the routed GEMM)
  std::int64_t n1 = 0;                    ///< y columns
  DType dtype = DType::f16;
  bool trans_gmm_weight = false;  ///< gmmWeight is stored (e, N1, H1)
  std::optional<SharedExpertDesc> shared;
  /// Dispatch op only: the call also writes permuteOut (A, H1), the received
  /// rows (aclnn's permuteOutFlag). Must be false for the combine op.
  bool permute_out = false;
};

/// Which limits apply. `native` lifts the hardware limits (docs/spec.md §5, last
/// paragraph); `aclnn` applies them; `strict_a3` adds the A3 envelope.
enum class Envelope : std::uint8_t { native, aclnn, strict_a3 };

/// The tensors of one call, as views of caller memory.
struct OpTensors {
  ConstTensorView gmm_x;                     ///< (sum(sendCounts), H1)
  ConstTensorView gmm_weight;                ///< (e, H1, N1) or (e, N1, H1)
  TensorView y;                              ///< (sum(recvCounts), N1): the combine op's y, the dispatch op's gmmY
  std::optional<ConstTensorView> mm_x;       ///< (BS, H2)
  std::optional<ConstTensorView> mm_weight;  ///< (H2, N2) or (N2, H2)
  std::optional<TensorView> mm_y;            ///< (BS, N2)
  std::optional<TensorView> permute_out;     ///< dispatch op only: (sum(recvCounts), H1)
};

namespace detail {
struct PlanData;
}

class GMMAV_API Plan {
 public:
  /// Validates `desc` (throws gmmav::Error naming the parameter) and computes the layout.
  static Plan create(const ProblemDesc& desc, Envelope envelope = Envelope::native);

  /// Derives the description from the tensors' shapes (e, H1, N1, BS, H2, N2;
  /// for the dispatch op, permute_out from whether tensors.permute_out is given),
  /// validates it and checks the tensors against it.
  static Plan from_tensors(int world_size, int rank, std::span<const std::int64_t> send_counts,
                           std::span<const std::int64_t> recv_counts, const OpTensors& tensors, bool trans_gmm_weight,
                           bool trans_mm_weight, Envelope envelope = Envelope::native, Op op = Op::combine);

  /// Checks that `t` matches this plan: presence, rank, shape, dtype,
  /// contiguity and that no output overlaps an input. Throws gmmav::Error.
  void check(const OpTensors& t) const;

  const ProblemDesc& desc() const noexcept;
  int world_size() const noexcept { return desc().world_size; }
  int rank() const noexcept { return desc().rank; }
  int local_experts() const noexcept { return desc().local_experts; }
  bool has_shared_expert() const noexcept { return desc().shared.has_value(); }
  Op op() const noexcept { return desc().op; }

  std::int64_t rows_in() const noexcept;   ///< gmmX rows = sum(sendCounts) (combine: A, dispatch: BSK)
  std::int64_t rows_out() const noexcept;  ///< y rows = sum(recvCounts) (combine: BSK, dispatch: A)
  /// Elements per row that travel between ranks: N1 for the combine op (results
  /// move), H1 for the dispatch op (inputs move).
  std::int64_t exchange_width() const noexcept;
  // The accessors below throw gmmav::Error (invalid_argument, param "j", "d" or
  // "s") for an argument outside [0, e) or [0, W).
  /// G_j, the rows of local expert j's GEMM: its gmmX rows (combine), its
  /// received rows (dispatch).
  std::int64_t group_rows(int j) const;
  /// First gmmX row of block (local expert j of rank d: the rows this rank sends there).
  std::int64_t send_block_offset(int j, int d) const;
  std::int64_t send_block_rows(int j, int d) const;
  /// First y row of block (s, j): the rows that rank s's expert j computed
  /// (combine) or that rank s sent to local expert j (dispatch; also their
  /// permuteOut row).
  std::int64_t recv_block_offset(int s, int j) const;
  std::int64_t recv_block_rows(int s, int j) const;
  std::int64_t rows_to(int d) const;    ///< rows this rank sends to d
  std::int64_t rows_from(int s) const;  ///< rows this rank receives from s
  std::int64_t flops() const noexcept;  ///< 2*A*H1*N1 (+ 2*BS*H2*N2), A the routed GEMMs' rows

 private:
  explicit Plan(std::shared_ptr<const detail::PlanData> d) : d_(std::move(d)) {}
  std::shared_ptr<const detail::PlanData> d_;
};

}  // namespace gmmav
