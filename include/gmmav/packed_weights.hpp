// gmmav native API: expert weights packed once and reused across calls.
//
//   gmmav::PackedWeights packed = gmmav::PackedWeights::create(plan, tensors);  // once, while weights stay the same
//   for (...) gmmav::run(plan, comm, tensors, packed);                          // no packing inside the call
//
// By default every `run` converts and packs every expert weight for the GEMM
// kernel (the cost grows with e*H1*N1, not with the rows). MoE weights do not
// change between inference calls, so a caller can pack them once and pass the
// result to every call. Nothing is cached behind the caller's back: the object
// is explicit, because only the caller knows when the weight memory changes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "gmmav/export.hpp"
#include "gmmav/plan.hpp"
#include "gmmav/types.hpp"

namespace gmmav {

namespace detail {
struct PackedWeightsData;  // internal (src/engine/packed_weights.hpp)
}

/// Every local expert's routed weight (all e of them, whatever the counts) and
/// the shared expert's weight (if the plan has one), packed for the tile kernel.
///
/// Contract:
/// - The caller promises that the weight memory (`gmm_weight`, `mm_weight` as
///   given to create()) is neither changed nor freed while the object is used:
///   a call with the object computes with the weights as they were at create().
///   After changing the weights, create a new object.
/// - A call must pass the very tensors that were packed: `run` checks the
///   weight pointers, dtype, e, H1, N1, the transpose flags, and the shared
///   expert's presence, H2, N2 and transpose flag, against its plan and tensors
///   and throws Error{invalid_argument, "packedWeights", "...expected ..., got ..."}
///   before anything is written on a mismatch (also for an empty object).
///   The contents are not compared (that would cost what packing costs).
/// - The object does not depend on the counts: one object serves every plan
///   with the same weight shapes (the routing changes every call, the weights do not).
/// - Read-only after create(): one object may be used by any number of threads
///   and calls at once.
///
/// Memory: about the weights' size for a BF16 weight on the native route,
/// twice it for FP16 (and BF16 on the f32 route), which is packed as FP32; a
/// BF16 weight used with inputs below 2^-56 (docs/spec.md §4's exact route) adds its
/// FP32 copy once, on first need.
class GMMAV_API PackedWeights {
 public:
  /// An empty object (passing it to run() is an error).
  PackedWeights() noexcept;
  ~PackedWeights();
  PackedWeights(PackedWeights&&) noexcept;
  PackedWeights& operator=(PackedWeights&&) noexcept;
  PackedWeights(const PackedWeights&) = delete;
  PackedWeights& operator=(const PackedWeights&) = delete;

  /// Packs every local expert's `t.gmm_weight` slice and, if the plan has a
  /// shared expert, `t.mm_weight`, in parallel on the process-wide compute pool.
  /// Reads only `t.gmm_weight` and `t.mm_weight` (the other views may be
  /// empty); checks them against the plan (throws Error naming gmmWeight or
  /// mmWeightOptional). Not collective: each rank packs its own weights.
  static PackedWeights create(const Plan& plan, const OpTensors& t);

  bool empty() const noexcept { return d_ == nullptr; }
  explicit operator bool() const noexcept { return d_ != nullptr; }

  /// Bytes of packed data held now (0 when empty).
  std::size_t bytes() const noexcept;

  /// Internal: the packed data (null when empty).
  const detail::PackedWeightsData* data() const noexcept { return d_.get(); }

 private:
  std::unique_ptr<const detail::PackedWeightsData> d_;
};

}  // namespace gmmav
