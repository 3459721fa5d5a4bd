// Helpers of the compat tests: the process-wide aclInit, RAII wrappers of
// "device" buffers and aclTensor / aclIntArray, scoped environment variables
// and the recent-error message.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../support/scoped_env.hpp"
#include "acl/acl.h"
#include "aclnnop/aclnn_grouped_mat_mul_allto_allv.h"
#include "hccl/hccl.h"

namespace compat_test {

/// The calling thread's unread error messages ("" if none); reading clears them.
inline std::string recent_error() {
  const char* m = aclGetRecentErrMsg();
  return m != nullptr ? std::string(m) : std::string();
}

using gmmav::testing::ScopedEnv;

/// aclrtMalloc'ed memory holding `n` 16-bit elements.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t elements, std::uint16_t fill = 0) : n_(elements) {
    EXPECT_EQ(aclrtMalloc(&p_, bytes(), ACL_MEM_MALLOC_HUGE_FIRST), ACL_SUCCESS);
    std::vector<std::uint16_t> v(elements, fill);
    upload(v);
  }
  explicit DeviceBuffer(const std::vector<std::uint16_t>& host) : DeviceBuffer(host.size()) { upload(host); }
  ~DeviceBuffer() {
    if (p_ != nullptr) {
      EXPECT_EQ(aclrtFree(p_), ACL_SUCCESS);
    }
  }
  DeviceBuffer(DeviceBuffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(o.n_) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
    return *this;
  }

  void upload(const std::vector<std::uint16_t>& v) {
    ASSERT_EQ(v.size(), n_);
    ASSERT_EQ(aclrtMemcpy(p_, bytes(), v.data(), bytes(), ACL_MEMCPY_HOST_TO_DEVICE), ACL_SUCCESS);
  }
  std::vector<std::uint16_t> download() const {
    std::vector<std::uint16_t> v(n_);
    EXPECT_EQ(aclrtMemcpy(v.data(), bytes(), p_, bytes(), ACL_MEMCPY_DEVICE_TO_HOST), ACL_SUCCESS);
    return v;
  }
  bool all_equal(std::uint16_t value) const {
    for (std::uint16_t x : download())
      if (x != value) return false;
    return true;
  }
  void* get() const { return p_; }
  std::size_t bytes() const { return n_ * 2 > 0 ? n_ * 2 : 2; }  // aclrtMalloc rejects size 0
  std::size_t elements() const { return n_; }

 private:
  void* p_ = nullptr;
  std::size_t n_ = 0;
};

inline std::vector<std::int64_t> contiguous_strides(const std::vector<std::int64_t>& shape) {
  std::vector<std::int64_t> s(shape.size(), 1);
  for (std::size_t i = shape.size(); i-- > 1;) s[i - 1] = s[i] * shape[i];
  return s;
}

/// An owned aclTensor (row-major, ND unless told otherwise).
struct TensorSpec {
  TensorSpec(std::vector<std::int64_t> s, aclDataType t = ACL_FLOAT16, std::optional<std::vector<std::int64_t>> st = std::nullopt,
             std::int64_t off = 0, aclFormat f = ACL_FORMAT_ND)
      : shape(std::move(s)), dtype(t), strides(std::move(st)), offset(off), format(f) {}
  std::vector<std::int64_t> shape;
  aclDataType dtype;
  std::optional<std::vector<std::int64_t>> strides;  // nullopt: contiguous
  std::int64_t offset;
  aclFormat format;
};

class Tensor {
 public:
  Tensor() = default;
  Tensor(const TensorSpec& s, void* data) {
    const auto strides = s.strides ? *s.strides : contiguous_strides(s.shape);
    t_ = aclCreateTensor(s.shape.data(), s.shape.size(), s.dtype, strides.data(), s.offset, s.format, s.shape.data(),
                         s.shape.size(), data);
    EXPECT_NE(t_, nullptr);
  }
  Tensor(std::vector<std::int64_t> shape, aclDataType dtype, void* data) : Tensor(TensorSpec{std::move(shape), dtype}, data) {}
  ~Tensor() { EXPECT_EQ(aclDestroyTensor(t_), 0); }
  Tensor(Tensor&& o) noexcept : t_(std::exchange(o.t_, nullptr)) {}
  Tensor& operator=(Tensor&& o) noexcept {
    std::swap(t_, o.t_);
    return *this;
  }
  aclTensor* get() const { return t_; }

 private:
  aclTensor* t_ = nullptr;
};

class IntArray {
 public:
  IntArray() = default;
  explicit IntArray(const std::vector<std::int64_t>& v) : a_(aclCreateIntArray(v.data(), v.size())) { EXPECT_NE(a_, nullptr); }
  ~IntArray() { EXPECT_EQ(aclDestroyIntArray(a_), 0); }
  IntArray(IntArray&& o) noexcept : a_(std::exchange(o.a_, nullptr)) {}
  IntArray& operator=(IntArray&& o) noexcept {
    std::swap(a_, o.a_);
    return *this;
  }
  aclIntArray* get() const { return a_; }

 private:
  aclIntArray* a_ = nullptr;
};

}  // namespace compat_test
