// Row tiles of a 16-bit matmul: out(rows x n) = round(x(rows x k) @ W), with
// FP32 accumulation over the whole k and one RNE rounding to the 16-bit type.
//
// The exact path: FP16/BF16 -> FP32 is exact, FP32 GEMM accumulates in FP32,
// one rounding back. The weight is converted once per call (PreparedWeight),
// the x rows once per tile, into per-thread scratch.
#pragma once

#include <cstdint>
#include <vector>

#include "gmmav/types.hpp"

namespace gmmav::gemm {

/// One expert's (or the shared expert's) weight in the form the tile kernel uses.
class PreparedWeight {
 public:
  /// Shapes: w is k x n, or n x k when `trans`.
  void reset(DType dtype, std::int64_t k, std::int64_t n, bool trans);
  /// Number of independent preparation chunks (for the pool).
  std::size_t chunks() const;
  /// Prepares chunk `c` from the raw 16-bit weight `w`.
  void prepare_chunk(std::size_t c, const std::uint16_t* w);

  DType dtype() const { return dtype_; }
  std::int64_t k() const { return k_; }
  std::int64_t n() const { return n_; }
  bool trans() const { return trans_; }
  const float* data() const { return f32_.data(); }

 private:
  DType dtype_ = DType::f16;
  std::int64_t k_ = 0, n_ = 0;
  bool trans_ = false;
  std::vector<float> f32_;
};

/// out = round(x @ W) for `rows` rows; x rows are k wide, out rows n wide, both contiguous.
void matmul_rows(const PreparedWeight& w, const std::uint16_t* x, std::int64_t rows, std::uint16_t* out);

}  // namespace gmmav::gemm
