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

/// The pieces every validation call has, as a valid call of rank 0 of the W = 2 group
/// with e = 2 and 4 rows per block; each test's Call adds its operator's tensors.
/// Shapes: H1 = 16, N1 = 8, BS = 8, BSK = 16 (K = 2), A = 16, H2 = 16, N2 = 8.
struct CallArgs : OwnedArgs {
  static constexpr std::int64_t kE = 2, kH1 = 16, kN1 = 8, kBS = 8, kBSK = 16, kA = 16, kH2 = 16, kN2 = 8;
  /// What workspace_size holds until a call writes it (a failed call must not).
  static constexpr std::uint64_t kUnwrittenWorkspaceSize = 12345;

  aclTensor* send_tensor = nullptr;
  aclTensor* recv_tensor = nullptr;
  std::string group_storage = Groups::get().name2;
  const char* group = group_storage.c_str();
  std::int64_t ep_world_size = 2;
  aclIntArray* send_counts = counts({4, 4, 4, 4});
  aclIntArray* recv_counts = counts({4, 4, 4, 4});
  bool trans_gmm_weight = false, trans_mm_weight = false;
  std::uint64_t workspace_size = kUnwrittenWorkspaceSize;
  std::uint64_t* workspace_size_out = &workspace_size;
  aclOpExecutor* executor = nullptr;
  aclOpExecutor** executor_out = &executor;

  /// On the W = 8 group, block_rows rows in every block of both count lists.
  void on_w8_group(std::int64_t block_rows) {
    group_storage = Groups::get().name8;
    group = group_storage.c_str();
    ep_world_size = 8;
    send_counts = counts(std::vector<std::int64_t>(kE * 8, block_rows));
    recv_counts = counts(std::vector<std::int64_t>(kE * 8, block_rows));
  }
};

/// A rejected phase 1: `status`, a recent-error message naming `param`, saying what was
/// expected and naming `entry_name`; no executor handed out, the workspace size unwritten.
/// (The caller checks its outputs: which ones depends on the operator.)
template <class Call>
void expect_rejected(Call& c, int status, const std::string& param, const char* entry_name) {
  (void)recent_error();  // start clean
  EXPECT_EQ(c.run(), status);
  const std::string msg = recent_error();
  EXPECT_NE(msg.find(param), std::string::npos) << "the message should name '" << param << "': " << msg;
  EXPECT_NE(msg.find("expected"), std::string::npos) << "the message should say what was expected: " << msg;
  EXPECT_NE(msg.find(entry_name), std::string::npos) << msg;
  EXPECT_EQ(c.executor, nullptr);
  EXPECT_EQ(c.workspace_size, CallArgs::kUnwrittenWorkspaceSize) << "nothing is written on failure";
}

// n counts summing to total (for cases whose counts only need the right length and sum).
inline std::vector<std::int64_t> counts_summing_to(std::int64_t total, std::size_t n) {
  std::vector<std::int64_t> v(n, total / static_cast<std::int64_t>(n));
  v[0] += total % static_cast<std::int64_t>(n);
  return v;
}

}  // namespace compat_test
