// The aclnn meta API: creating, inspecting and destroying aclTensor / aclIntArray.
#include "runtime/tensor.hpp"

#include <algorithm>
#include <memory>

#include "runtime/api_guard.hpp"
#include "runtime/status_codes.hpp"

namespace gmmav::runtime {
namespace {

std::vector<std::int64_t> copy_dims(const char* param, const std::int64_t* p, std::uint64_t n) {
  if (p == nullptr && n > 0) raise(ACLNN_ERR_PARAM_NULLPTR, param, "expected {} values, got null", n);
  std::vector<std::int64_t> v(p, p + n);
  for (std::size_t i = 0; i < v.size(); ++i)
    if (v[i] < 0) raise(ACLNN_ERR_PARAM_INVALID, param, "expected values >= 0, got {} at index {}", v[i], i);
  return v;
}

// Hands a copy of `v` to the caller as the vendor does: new[], freed by the caller with delete[].
void hand_out(const std::vector<std::int64_t>& v, std::int64_t** out, std::uint64_t* n) {
  auto* a = new std::int64_t[v.size()];
  std::copy(v.begin(), v.end(), a);
  *out = a;
  *n = v.size();
}

void require(const void* p, const char* param) {
  if (p == nullptr) raise(ACLNN_ERR_PARAM_NULLPTR, param, "expected a non-null pointer, got null");
}

}  // namespace
}  // namespace gmmav::runtime

using namespace gmmav::runtime;

extern "C" {

aclTensor* aclCreateTensor(const int64_t* viewDims, uint64_t viewDimsNum, aclDataType dataType, const int64_t* stride,
                           int64_t offset, aclFormat format, const int64_t* storageDims, uint64_t storageDimsNum,
                           void* tensorData) {
  aclTensor* out = nullptr;
  guarded(__func__, kAclnnCodes, [&] {
    auto t = std::make_unique<aclTensor>();
    t->view_dims = copy_dims("viewDims", viewDims, viewDimsNum);
    if (stride != nullptr) {
      t->strides = copy_dims("stride", stride, viewDimsNum);
    } else {  // contiguous row-major
      t->strides.assign(viewDimsNum, 1);
      for (std::size_t i = viewDimsNum; i-- > 1;) {
        // Saturate: absurd dims must give a validation error later, not signed overflow here.
        std::int64_t s = 0;
        if (__builtin_mul_overflow(t->strides[i], t->view_dims[i], &s)) s = INT64_MAX;
        t->strides[i - 1] = s;
      }
    }
    t->storage_dims = copy_dims("storageDims", storageDims, storageDimsNum);
    if (offset < 0) raise(ACLNN_ERR_PARAM_INVALID, "offset", "expected an offset >= 0 (in elements), got {}", offset);
    t->dtype = dataType;
    t->format = format;
    t->offset = offset;
    t->data = tensorData;
    out = t.release();
    return 0;
  });
  return out;
}

aclnnStatus aclDestroyTensor(const aclTensor* tensor) {
  delete tensor;
  return ACLNN_SUCCESS;
}

aclIntArray* aclCreateIntArray(const int64_t* value, uint64_t size) {
  aclIntArray* out = nullptr;
  guarded(__func__, kAclnnCodes, [&] {
    if (value == nullptr && size > 0) raise(ACLNN_ERR_PARAM_NULLPTR, "value", "expected {} values, got null", size);
    auto a = std::make_unique<aclIntArray>();
    a->values.assign(value, value + size);
    out = a.release();
    return 0;
  });
  return out;
}

aclnnStatus aclDestroyIntArray(const aclIntArray* array) {
  delete array;
  return ACLNN_SUCCESS;
}

aclnnStatus aclGetViewShape(const aclTensor* tensor, int64_t** viewDims, uint64_t* viewDimsNum) {
  return guarded(__func__, kAclnnCodes, [&] {
    require(tensor, "tensor");
    require(viewDims, "viewDims");
    require(viewDimsNum, "viewDimsNum");
    hand_out(tensor->view_dims, viewDims, viewDimsNum);
    return ACLNN_SUCCESS;
  });
}

aclnnStatus aclGetStorageShape(const aclTensor* tensor, int64_t** storageDims, uint64_t* storageDimsNum) {
  return guarded(__func__, kAclnnCodes, [&] {
    require(tensor, "tensor");
    require(storageDims, "storageDims");
    require(storageDimsNum, "storageDimsNum");
    hand_out(tensor->storage_dims, storageDims, storageDimsNum);
    return ACLNN_SUCCESS;
  });
}

aclnnStatus aclGetViewStrides(const aclTensor* tensor, int64_t** stridesValue, uint64_t* stridesNum) {
  return guarded(__func__, kAclnnCodes, [&] {
    require(tensor, "tensor");
    require(stridesValue, "stridesValue");
    require(stridesNum, "stridesNum");
    hand_out(tensor->strides, stridesValue, stridesNum);
    return ACLNN_SUCCESS;
  });
}

aclnnStatus aclGetViewOffset(const aclTensor* tensor, int64_t* offset) {
  return guarded(__func__, kAclnnCodes, [&] {
    require(tensor, "tensor");
    require(offset, "offset");
    *offset = tensor->offset;
    return ACLNN_SUCCESS;
  });
}

aclnnStatus aclGetFormat(const aclTensor* tensor, aclFormat* format) {
  return guarded(__func__, kAclnnCodes, [&] {
    require(tensor, "tensor");
    require(format, "format");
    *format = tensor->format;
    return ACLNN_SUCCESS;
  });
}

aclnnStatus aclGetDataType(const aclTensor* tensor, aclDataType* dataType) {
  return guarded(__func__, kAclnnCodes, [&] {
    require(tensor, "tensor");
    require(dataType, "dataType");
    *dataType = tensor->dtype;
    return ACLNN_SUCCESS;
  });
}

aclnnStatus aclGetIntArraySize(const aclIntArray* array, uint64_t* size) {
  return guarded(__func__, kAclnnCodes, [&] {
    require(array, "array");
    require(size, "size");
    *size = array->values.size();
    return ACLNN_SUCCESS;
  });
}

}  // extern "C"
