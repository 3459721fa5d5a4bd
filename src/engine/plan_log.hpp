// GMMAV_LOG=plan: the choices the engine makes for one call, as one line.
#pragma once

#include <cstddef>
#include <string>

#include "gmmav/packed_weights.hpp"
#include "gmmav/plan.hpp"

namespace gmmav::engine {

/// "rank 0/2 float16 e=2 A=40 BSK=40 H1=32 N1=24 tile=128 rows | expert 0: 20 rows, 2 tiles in 2 GEMMs
/// (1 with rows for peers): 2 chain avx512 (largest 10 rows) | ... | shared expert: ... | weights:
/// read as stored (nothing converted or packed) | isa ... | workspace 0 B (backend minimum 0 B)": per
/// weight its tiles and tile groups (engine::routed_groups: the GEMMs the call runs) and how many
/// GEMMs take each route (gemm::route_of), named by kernel; for the BF16 route also where a GEMM
/// goes whose data fail the exactness rule (chosen per GEMM from the data, D15). Computed only when asked.
std::string describe_call(const Plan& plan, const PackedWeights* packed, std::size_t workspace, std::size_t min_workspace);

}  // namespace gmmav::engine
