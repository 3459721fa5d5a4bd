// A tile of the shared expert's MatMul into mmY, this rank's output, which may
// be written only once the group agreed to the call (comm::Exchange::wait_agreed).
#pragma once

#include <cstdint>

#include "comm/communicator.hpp"
#include "gemm/tile_matmul.hpp"

namespace gmmav::engine {

/// out = x (rows x k) · w, rows of `n`. Before the agreement the GEMM runs into
/// a scratch buffer and only the copy waits: a small call whose agreement
/// travels with its rows (MPI, D56) would otherwise stall its last GEMMs on it.
void shared_tile(comm::Exchange& ex, const gemm::PreparedWeight& w, const std::uint16_t* x, std::int64_t rows, std::int64_t n,
                 std::uint16_t* out);

}  // namespace gmmav::engine
