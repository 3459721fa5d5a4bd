// The chain kernel's AVX-512 path (gemm/chain_kernel_avx512.cpp), called by chain_kernel.cpp.
#pragma once

#include <cstdint>

#include "gmmav/types.hpp"

namespace gmmav::gemm::detail {

/// out(rows x n) = round(xf @ W) as chain_matmul (gemm/chain_kernel.hpp), x already in FP32
/// (xf: rows x k); W is k x n, or n x k when `trans`. Needs AVX-512 F/BW/VL/DQ.
void chain_matmul_avx512(DType t, const float* xf, std::int64_t rows, std::int64_t k, const std::uint16_t* w, std::int64_t n,
                         bool trans, std::uint16_t* out);

}  // namespace gmmav::gemm::detail
