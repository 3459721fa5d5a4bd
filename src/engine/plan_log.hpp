// GMMAV_LOG=plan: the choices the engine makes for one call, as one line.
#pragma once

#include <cstddef>
#include <string>

#include "gmmav/packed_weights.hpp"
#include "gmmav/plan.hpp"

namespace gmmav::engine {

/// "rank 0/2 float16 e=2 A=40 BSK=40 H1=32 N1=24 tile=128 rows | expert 0: 20 rows, 2 tiles in 2 GEMMs
/// (1 with rows for peers): 2 small-M + 0 oneDNN f32 (largest 10 rows) | ... | shared expert: ...
/// | weights: converted/packed in the call | workspace 0 B (backend minimum 0 B)": per weight its
/// tiles and tile groups (engine::routed_groups: the GEMMs the call runs) and the GEMM route of
/// each — small-M (at most gemm::kSmallMRows rows, the weight as stored) or oneDNN on the packed
/// weight (BF16: its native route when the GEMM's inputs allow it exactly, else the f32 route;
/// chosen per GEMM from the data, D15, so the line says "bf16-or-f32"). Computed only when asked.
std::string describe_call(const Plan& plan, const PackedWeights* packed, std::size_t workspace, std::size_t min_workspace);

}  // namespace gmmav::engine
