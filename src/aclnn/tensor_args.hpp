// The aclnn-only tensor rules (docs/spec.md §5) that the native views cannot express —
// element type, format, rank, view offset — and the conversion of an
// aclTensor into a gmmav view. Shapes, strides, dtype agreement and overlaps
// are the Plan's rules and are checked there.
#pragma once

#include "gmmav/types.hpp"
#include "runtime/tensor.hpp"

namespace gmmav::aclnn {

/// A view of `t` for parameter `param`, which must be a `rank`-D FP16/BF16 ND
/// tensor starting at its data pointer. Throws runtime::ApiError(161002).
ConstTensorView input_view(const aclTensor& t, const char* param, int rank);
TensorView output_view(const aclTensor& t, const char* param, int rank);

/// The name of an aclDataType / aclFormat value, for messages ("ACL_FLOAT (0)").
std::string dtype_name(aclDataType t);
std::string format_name(aclFormat f);

}  // namespace gmmav::aclnn
