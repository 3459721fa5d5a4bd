// aclTensor -> gmmav view, with the checks only the aclnn entry point has.
#include "aclnn/tensor_args.hpp"

#include <string>
#include <vector>

#include "runtime/api_guard.hpp"
#include "runtime/status_codes.hpp"

namespace gmmav::aclnn {
namespace {

using runtime::raise;

DType to_dtype(const aclTensor& t, const char* param) {
  if (t.dtype == ACL_FLOAT16) return DType::f16;
  if (t.dtype == ACL_BF16) return DType::bf16;
  raise(ACLNN_ERR_PARAM_INVALID, param, "expected dtype ACL_FLOAT16 or ACL_BF16, got {}", dtype_name(t.dtype));
}

std::string dims_str(const std::vector<std::int64_t>& v) {
  std::string s = "(";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + ")";
}

template <typename View>
View to_view(const aclTensor& t, const char* param, int rank) {
  const DType dtype = to_dtype(t, param);
  if (t.format != ACL_FORMAT_ND)
    raise(ACLNN_ERR_PARAM_INVALID, param, "expected format ACL_FORMAT_ND, got {}", format_name(t.format));
  if (t.view_dims.size() != static_cast<std::size_t>(rank))
    raise(ACLNN_ERR_PARAM_INVALID, param, "expected a {}-D tensor, got {}-D", rank, t.view_dims.size());
  if (t.offset != 0)
    raise(ACLNN_ERR_PARAM_INVALID, param,
          "expected view offset 0 (pass the address of the first element as the data pointer instead), got {}", t.offset);
  // The view must fit in the memory its storage dims describe (a contiguous
  // view of more elements than the storage would read or write past it).
  std::int64_t view_elems = 1, storage_elems = 1;
  constexpr std::int64_t kMax = std::int64_t{1} << 62;
  for (std::int64_t d : t.view_dims) {
    if (d < 0) raise(ACLNN_ERR_PARAM_INVALID, param, "expected non-negative view dims, got {}", d);
    view_elems = d == 0 || view_elems <= kMax / d ? view_elems * d : kMax;
  }
  if (t.storage_dims.empty() && view_elems > 1)
    raise(ACLNN_ERR_PARAM_INVALID, param,
          "expected storage dims describing at least the view's {} elements, got none (storageDimsNum = 0)", view_elems);
  for (std::int64_t d : t.storage_dims) {
    if (d < 0) raise(ACLNN_ERR_PARAM_INVALID, param, "expected non-negative storage dims, got {}", d);
    storage_elems = d == 0 || storage_elems <= kMax / d ? storage_elems * d : kMax;
  }
  if (view_elems > storage_elems)
    raise(ACLNN_ERR_PARAM_INVALID, param,
          "expected a view that fits in its storage dims {} ({} elements), got a view of {} elements", dims_str(t.storage_dims),
          storage_elems, view_elems);
  // Row-major contiguous, written out: the native views read strides of 0 as
  // "contiguous", so a broadcast view (stride 0 on a dim of extent > 1) must be
  // refused here, before it becomes one. Dims of extent 1 may carry any stride.
  std::vector<std::int64_t> contiguous(t.view_dims.size(), 1);
  for (std::size_t i = contiguous.size(); i-- > 1;)
    if (__builtin_mul_overflow(contiguous[i], t.view_dims[i], &contiguous[i - 1])) contiguous[i - 1] = kMax;  // a 0-sized view
  for (std::size_t i = 0; i < contiguous.size(); ++i)
    if (t.view_dims[i] != 1 && t.strides[i] != contiguous[i])
      raise(ACLNN_ERR_PARAM_INVALID, param, "expected contiguous row-major strides {}, got {}", dims_str(contiguous),
            dims_str(t.strides));
  View v;
  v.data = t.data;
  v.dtype = dtype;
  v.rank = rank;
  for (int i = 0; i < rank; ++i) {
    v.dims[i] = t.view_dims[static_cast<std::size_t>(i)];
    v.strides[i] = t.strides[static_cast<std::size_t>(i)];
  }
  return v;
}

}  // namespace

ConstTensorView input_view(const aclTensor& t, const char* param, int rank) { return to_view<ConstTensorView>(t, param, rank); }
TensorView output_view(const aclTensor& t, const char* param, int rank) { return to_view<TensorView>(t, param, rank); }

std::string dtype_name(aclDataType t) {
  const char* n = nullptr;
  switch (t) {
    case ACL_DT_UNDEFINED:
      n = "ACL_DT_UNDEFINED";
      break;
    case ACL_FLOAT:
      n = "ACL_FLOAT";
      break;
    case ACL_FLOAT16:
      n = "ACL_FLOAT16";
      break;
    case ACL_INT8:
      n = "ACL_INT8";
      break;
    case ACL_INT32:
      n = "ACL_INT32";
      break;
    case ACL_UINT8:
      n = "ACL_UINT8";
      break;
    case ACL_INT16:
      n = "ACL_INT16";
      break;
    case ACL_UINT16:
      n = "ACL_UINT16";
      break;
    case ACL_UINT32:
      n = "ACL_UINT32";
      break;
    case ACL_INT64:
      n = "ACL_INT64";
      break;
    case ACL_UINT64:
      n = "ACL_UINT64";
      break;
    case ACL_DOUBLE:
      n = "ACL_DOUBLE";
      break;
    case ACL_BOOL:
      n = "ACL_BOOL";
      break;
    case ACL_BF16:
      n = "ACL_BF16";
      break;
    default:
      n = "aclDataType";
      break;
  }
  return fmt::format("{} ({})", n, static_cast<int>(t));
}

std::string format_name(aclFormat f) {
  const char* n = nullptr;
  switch (f) {
    case ACL_FORMAT_UNDEFINED:
      n = "ACL_FORMAT_UNDEFINED";
      break;
    case ACL_FORMAT_NCHW:
      n = "ACL_FORMAT_NCHW";
      break;
    case ACL_FORMAT_NHWC:
      n = "ACL_FORMAT_NHWC";
      break;
    case ACL_FORMAT_ND:
      n = "ACL_FORMAT_ND";
      break;
    case ACL_FORMAT_NC1HWC0:
      n = "ACL_FORMAT_NC1HWC0";
      break;
    case ACL_FORMAT_FRACTAL_Z:
      n = "ACL_FORMAT_FRACTAL_Z";
      break;
    case ACL_FORMAT_FRACTAL_NZ:
      n = "ACL_FORMAT_FRACTAL_NZ";
      break;
    case ACL_FORMAT_NC:
      n = "ACL_FORMAT_NC";
      break;
    default:
      n = "aclFormat";
      break;
  }
  return fmt::format("{} ({})", n, static_cast<int>(f));
}

}  // namespace gmmav::aclnn
