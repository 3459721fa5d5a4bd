// What a gmmav::PackedWeights holds (internal), and the check a call makes
// before using it.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "gemm/tile_matmul.hpp"
#include "gmmav/packed_weights.hpp"

namespace gmmav::detail {

struct PackedWeightsData {
  // What was packed: compared with every call's plan and tensors.
  DType dtype = DType::f16;
  int local_experts = 0;
  std::int64_t h1 = 0, n1 = 0;
  bool trans_gmm_weight = false;
  const void* gmm_weight = nullptr;
  bool has_shared = false;
  std::int64_t h2 = 0, n2 = 0;
  bool trans_mm_weight = false;
  const void* mm_weight = nullptr;

  std::vector<std::unique_ptr<gemm::PreparedWeight>> experts;  // [j], all e local experts
  std::unique_ptr<gemm::PreparedWeight> shared;                // when has_shared

  const gemm::PreparedWeight& expert(int j) const { return *experts[static_cast<std::size_t>(j)]; }
};

/// Throws Error{invalid_argument, "packedWeights", "expected ..., got ..."} unless `p`
/// holds exactly the weights of `t` packed for this plan's dtype and shapes.
const PackedWeightsData& check_packed(const PackedWeights& p, const Plan& plan, const OpTensors& t);

}  // namespace gmmav::detail
