// gmmav native API: element types, tensor views and the error type.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "gmmav/export.hpp"

namespace gmmav {

/// Element type of every tensor of one call (all FP16 or all BF16).
enum class DType : std::uint8_t { f16, bf16 };

constexpr std::size_t element_size(DType) noexcept { return 2; }
GMMAV_API const char* to_string(DType t) noexcept;

/// What went wrong. The aclnn skin maps these to 161001 / 161002 / runtime codes.
enum class Errc : std::uint8_t {
  null_argument,     ///< a required pointer/tensor is missing (aclnn 161001)
  invalid_argument,  ///< a shape, count, dtype or range rule is broken (aclnn 161002)
  count_mismatch,    ///< ranks disagree on counts/shapes (cross-rank contract, docs/spec.md §2)
  timeout,           ///< a peer did not arrive or make progress in time
  group_broken,      ///< an earlier failure left the group unusable: recreate it
  internal,          ///< a library or system call failed
  out_of_memory,     ///< host memory a call needs (sized by its shapes) could not be allocated
};
GMMAV_API const char* to_string(Errc c) noexcept;

/// The one exception type of the native API. `param()` names the offending
/// parameter when there is one ("sendCounts", "gmmX", ...).
class GMMAV_API Error : public std::runtime_error {
 public:
  Error(Errc code, std::string param, const std::string& message)
      : std::runtime_error(message), code_(code), param_(std::move(param)) {}
  Errc code() const noexcept { return code_; }
  const std::string& param() const noexcept { return param_; }

 private:
  Errc code_;
  std::string param_;
};

/// A non-owning view of caller memory: pointer, dtype, up to 3 dims and their
/// element strides. The operator needs row-major contiguous views (strides 0
/// mean "contiguous"); other strides are rejected with a clear error.
template <typename Ptr>
struct BasicTensorView {
  Ptr data = nullptr;
  DType dtype = DType::f16;
  int rank = 0;
  std::int64_t dims[3] = {0, 0, 0};
  std::int64_t strides[3] = {0, 0, 0};

  static BasicTensorView matrix(Ptr p, DType t, std::int64_t rows, std::int64_t cols) {
    BasicTensorView v;
    v.data = p;
    v.dtype = t;
    v.rank = 2;
    v.dims[0] = rows;
    v.dims[1] = cols;
    return v;
  }
  static BasicTensorView cube(Ptr p, DType t, std::int64_t d0, std::int64_t d1, std::int64_t d2) {
    BasicTensorView v;
    v.data = p;
    v.dtype = t;
    v.rank = 3;
    v.dims[0] = d0;
    v.dims[1] = d1;
    v.dims[2] = d2;
    return v;
  }
  std::int64_t elements() const noexcept {
    std::int64_t n = 1;
    for (int i = 0; i < rank; ++i) n *= dims[i];
    return n;
  }
  std::size_t bytes() const noexcept { return static_cast<std::size_t>(elements()) * element_size(dtype); }
};

using TensorView = BasicTensorView<void*>;             ///< an output
using ConstTensorView = BasicTensorView<const void*>;  ///< an input

inline ConstTensorView as_const(const TensorView& v) {
  ConstTensorView c;
  c.data = v.data;
  c.dtype = v.dtype;
  c.rank = v.rank;
  for (int i = 0; i < 3; ++i) {
    c.dims[i] = v.dims[i];
    c.strides[i] = v.strides[i];
  }
  return c;
}

}  // namespace gmmav
