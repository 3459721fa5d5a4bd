// A two-rank in-process group with a stream per rank, and one rank's small op
// call (e = 2, H1 = 16, N1 = 8): shared by the stream and misuse tests.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "compat_helpers.hpp"

namespace compat_test {

inline constexpr std::uint16_t kSentinel = 0x5A5A;

// One rank's small op call: e = 2, H1 = 16, N1 = 8, no shared expert.
struct RankCall {
  static constexpr std::int64_t kE = 2, kH1 = 16, kN1 = 8;
  std::vector<std::int64_t> send, recv;
  DeviceBuffer x, w, y;
  Tensor tx, tw, ty;
  IntArray sa, ra;
  aclOpExecutor* executor = nullptr;

  RankCall(std::vector<std::int64_t> s, std::vector<std::int64_t> r) : send(std::move(s)), recv(std::move(r)) {
    std::int64_t a = 0, bsk = 0;
    for (auto c : send) a += c;
    for (auto c : recv) bsk += c;
    x = DeviceBuffer(static_cast<std::size_t>(a * kH1), 0x3C00);
    w = DeviceBuffer(static_cast<std::size_t>(kE * kH1 * kN1), 0x3C00);
    y = DeviceBuffer(static_cast<std::size_t>(bsk * kN1), kSentinel);
    tx = Tensor({a, kH1}, ACL_FLOAT16, x.get());
    tw = Tensor({kE, kH1, kN1}, ACL_FLOAT16, w.get());
    ty = Tensor({bsk, kN1}, ACL_FLOAT16, y.get());
    sa = IntArray(send);
    ra = IntArray(recv);
  }
  int prepare(const char* group, std::int64_t world) {
    std::uint64_t ws = 0;
    return aclnnGroupedMatMulAlltoAllvGetWorkspaceSize(tx.get(), tw.get(), nullptr, nullptr, nullptr, nullptr, group, world,
                                                       sa.get(), ra.get(), false, false, ty.get(), nullptr, &ws, &executor);
  }
};

/// Two in-process ranks on devices 0 and 1, each with a stream of its device.
struct TwoRanks {
  HcclComm comms[2] = {};
  bool destroyed[2] = {};  ///< set by a test that destroys a handle itself
  aclrtStream streams[2] = {};
  std::string name;
  TwoRanks() {
    int32_t devices[2] = {0, 1};
    for (int32_t d : devices) {
      EXPECT_EQ(aclrtSetDevice(d), ACL_SUCCESS);
      EXPECT_EQ(aclrtCreateStream(&streams[d]), ACL_SUCCESS);
    }
    EXPECT_EQ(HcclCommInitAll(2, devices, comms), HCCL_SUCCESS);
    char n[128] = {0};
    EXPECT_EQ(HcclGetCommName(comms[0], n), HCCL_SUCCESS);
    name = n;
  }
  ~TwoRanks() {
    for (int r = 0; r < 2; ++r) {
      EXPECT_EQ(aclrtDestroyStream(streams[r]), ACL_SUCCESS);
      if (!destroyed[r]) {
        EXPECT_EQ(HcclCommDestroy(comms[r]), HCCL_SUCCESS);
      }
    }
  }
};

}  // namespace compat_test
