// Pieces of the validation tests' calls: the process's HCCL groups, and the
// aclTensor / aclIntArray objects a call owns while a case replaces them.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "compat_helpers.hpp"

namespace compat_test {

// The process's groups: W = 2 on devices 0-1, W = 8 on 8-15, W = 16 on 16-31.
struct Groups {
  std::vector<HcclComm> w2, w8, w16;
  std::string name2, name8, name16;
  static Groups& get() {
    static Groups g;
    return g;
  }

 private:
  static std::string init(std::vector<HcclComm>& comms, int first_device, int n) {
    std::vector<int32_t> devices(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) devices[static_cast<std::size_t>(i)] = first_device + i;
    comms.resize(static_cast<std::size_t>(n));
    EXPECT_EQ(HcclCommInitAll(static_cast<uint32_t>(n), devices.data(), comms.data()), HCCL_SUCCESS);
    char name[128] = {0};
    EXPECT_EQ(HcclGetCommName(comms[0], name), HCCL_SUCCESS);
    return name;
  }
  Groups() : name2(init(w2, 0, 2)), name8(init(w8, 8, 8)), name16(init(w16, 16, 16)) {}
};

/// The tensors and count arrays a call made, destroyed with it.
struct OwnedArgs {
  std::vector<std::unique_ptr<Tensor>> owned;
  std::vector<std::unique_ptr<IntArray>> owned_arrays;

  aclTensor* make(const TensorSpec& s, void* data) {
    owned.push_back(std::make_unique<Tensor>(s, data));
    return owned.back()->get();
  }
  aclIntArray* counts(const std::vector<std::int64_t>& v) {
    owned_arrays.push_back(std::make_unique<IntArray>(v));
    return owned_arrays.back()->get();
  }
};

// n counts summing to total (for cases whose counts only need the right length and sum).
inline std::vector<std::int64_t> counts_summing_to(std::int64_t total, std::size_t n) {
  std::vector<std::int64_t> v(n, total / static_cast<std::int64_t>(n));
  v[0] += total % static_cast<std::int64_t>(n);
  return v;
}

}  // namespace compat_test
