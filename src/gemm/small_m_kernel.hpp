// A matmul for few rows on the weight as the caller stores it (FP16/BF16,
// k x n or, transposed, n x k): no packed copy, no pass over the weight
// before the GEMM. At decode token counts a tile has a few dozen rows, the
// GEMM reads every weight element once and does little with it, so packing
// (a read and a write of the whole weight, and for the f32 route a copy twice
// its size) costs more than the GEMM itself (issue 17, D13).
//
// Numerics (SPEC §4): every output element is one FP32 FMA chain over k in
// ascending order, starting from +0, rounded once (RNE) to the 16-bit type.
// Products of two 16-bit floats are exact in FP32 and subnormals are kept, so
// no input scan is needed. The order is the same on every path (lanes run
// along n, never along k), so the AVX2 path and the portable one give the
// same bits, whatever the host.
#pragma once

#include <cstdint>

#include "gmmav/types.hpp"

namespace gmmav::gemm {

/// Tiles of at most this many rows take the small-M kernel (a property of the
/// plan's tiles only, never of threads or hosts).
constexpr std::int64_t kSmallMRows = 32;

/// out(rows x n) = round(x(rows x k) @ W); W is k x n row-major, or n x k when
/// `trans`. Single-threaded; x, out contiguous rows.
void small_m_matmul(DType dtype, const std::uint16_t* x, std::int64_t rows, std::int64_t k, const std::uint16_t* w,
                    std::int64_t n, bool trans, std::uint16_t* out);

/// The same on the portable path only (tests compare it with the dispatched one).
void small_m_matmul_portable(DType dtype, const std::uint16_t* x, std::int64_t rows, std::int64_t k,
                             const std::uint16_t* w, std::int64_t n, bool trans, std::uint16_t* out);

/// "avx2+f16c" or "portable": the path small_m_matmul takes on this host.
const char* small_m_path();

}  // namespace gmmav::gemm
