// FP32 GEMM through OpenBLAS (see docs/decisions.md for why this library).
#pragma once

#include <cstdint>

namespace gmmav::gemm {

/// C(m x n) = A(m x k) * op(B), row-major, FP32 accumulation; op(B) = B (k x n)
/// or B^T when `trans_b` (B stored n x k). Single-threaded.
void sgemm(std::int64_t m, std::int64_t n, std::int64_t k, const float* a, std::int64_t lda, const float* b,
           std::int64_t ldb, bool trans_b, float* c, std::int64_t ldc);

}  // namespace gmmav::gemm
