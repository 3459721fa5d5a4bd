// The reference's building blocks, shared by the combine op's reference
// (reference.cpp) and the dispatch op's (dispatch_reference.cpp).
#pragma once

#include <cstdint>

#include "reference/reference.hpp"

namespace gmmav::reference {

/// One rounding of an FP64 value to `dtype` (RNE, subnormals kept).
std::uint16_t round_once(DType dtype, double v);

/// Rows out_row.. of `out` = x (rows x k) @ W in FP64, with sum |a*b| and the
/// rounded bits; W is k x n, or n x k when `trans`.
void dot_rows(DType dt, const std::uint16_t* x, std::int64_t rows, std::int64_t k, const std::uint16_t* w, std::int64_t n,
              bool trans, Output& out, std::int64_t out_row);

/// `out` sized for `elems` elements of dot products of length `k`, zeroed.
void resize(Output& out, std::int64_t elems, std::int64_t k);

}  // namespace gmmav::reference
