// The chain kernel: a matmul on the weight as the caller stores it
// (FP16/BF16, k x n or, transposed, n x k): no packed copy, no pass over the
// weight before the GEMM. It takes FP16 tiles of at most kSmallMRows rows
// (D13: at decode token counts packing costs more than the GEMM), BF16 ones
// where the host has no native BF16 route or the data are not exact for it
// (D82), and, on hosts where oneDNN has no FP32 brgemm kernel, every f32-route
// tile (D24: there it is about twice as fast as oneDNN's FP32 gemm:jit on this
// shape class). gemm::route_of (tile_matmul.hpp) states the whole rule.
//
// Numerics (docs/spec.md §4): every output element is one FP32 FMA chain over k in
// ascending order, starting from +0, rounded once (RNE) to the 16-bit type.
// Products of two 16-bit floats are exact in FP32 and subnormals are kept, so
// no input scan is needed. The order is the same on every path (lanes run
// along n, never along k), so the AVX-512 path (16 lanes), the AVX2 path (8)
// and the portable one give the same bits, whatever the host (D67).
#pragma once

#include <cstdint>

#include "common/cpu_isa.hpp"
#include "gmmav/types.hpp"

namespace gmmav::gemm {

/// FP16 tiles of at most this many rows take this kernel on every host (a
/// property of the plan's tiles only, never of threads; gemm::route_of).
constexpr std::int64_t kSmallMRows = 32;

/// out(rows x n) = round(x(rows x k) @ W); W is k x n row-major, or n x k when
/// `trans`. Single-threaded; x, out contiguous rows.
void chain_matmul(DType dtype, const std::uint16_t* x, std::int64_t rows, std::int64_t k, const std::uint16_t* w, std::int64_t n,
                  bool trans, std::uint16_t* out);

/// The same on the path of ISA level `isa` (lowered to the host's when above it;
/// the FP16/BF16 conversions stay at the process's level, common/cpu_isa.hpp: they
/// are exact either way). Tests compare the levels with each other.
void chain_matmul_at(CpuIsa isa, DType dtype, const std::uint16_t* x, std::int64_t rows, std::int64_t k, const std::uint16_t* w,
                     std::int64_t n, bool trans, std::uint16_t* out);

/// "avx512", "avx2+fma+f16c" or "portable": the path chain_matmul takes in this process
/// (the host's ISA level capped by GMMAV_MAX_CPU_ISA), or chain_matmul_at(isa).
const char* chain_kernel_path();
const char* chain_kernel_path(CpuIsa isa);

}  // namespace gmmav::gemm
