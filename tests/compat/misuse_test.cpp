// Misuse of the C API found by outside testing (issue 16): a destroyed rank's
// device, a handle destroyed by two threads, two ranks' calls on one stream.
// Each must end in a clear error, never in another rank's identity, a double
// free or a stream that waits for the full timeout.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "compat_helpers.hpp"
#include "two_ranks.hpp"

namespace {

using namespace compat_test;
using namespace std::chrono_literals;

// Both ranks run one good call, each on its own thread and stream.
void run_both(TwoRanks& g) {
  RankCall calls[2] = {RankCall({2, 2, 2, 2}, {2, 2, 2, 2}), RankCall({2, 2, 2, 2}, {2, 2, 2, 2})};
  std::thread t[2];
  int sync[2] = {-1, -1};
  for (int r = 0; r < 2; ++r)
    t[r] = std::thread([&, r] {
      if (aclrtSetDevice(r) != ACL_SUCCESS) return;
      if (calls[r].prepare(g.name.c_str(), 2) != ACLNN_SUCCESS) return;
      if (aclnnGroupedMatMulAlltoAllv(nullptr, 0, calls[r].executor, g.streams[r]) != ACLNN_SUCCESS) return;
      sync[r] = aclrtSynchronizeStream(g.streams[r]);
    });
  t[0].join();
  t[1].join();
  EXPECT_EQ(sync[0], ACL_SUCCESS);
  EXPECT_EQ(sync[1], ACL_SUCCESS);
}

TEST(HcclMisuse, DestroyedRanksDeviceDoesNotBecomeAnotherRank) {
  TwoRanks g;
  run_both(g);  // rank 1's call information of this call stays in the group
  ASSERT_EQ(HcclCommDestroy(g.comms[1]), HCCL_SUCCESS);
  g.destroyed[1] = true;
  // A thread on device 1 must not get rank 0's communicator (the only live handle of the name).
  std::thread([&] {
    ASSERT_EQ(aclrtSetDevice(1), ACL_SUCCESS);
    RankCall r1({2, 2, 2, 2}, {2, 2, 2, 2});
    EXPECT_EQ(r1.prepare(g.name.c_str(), 2), ACLNN_ERR_PARAM_INVALID);
    const std::string msg = recent_error();
    EXPECT_NE(msg.find("no communicator of group '" + g.name + "' on device 1"), std::string::npos) << msg;
    EXPECT_EQ(r1.executor, nullptr);
  }).join();
  // Rank 0's own device still finds rank 0.
  ASSERT_EQ(aclrtSetDevice(0), ACL_SUCCESS);
  RankCall r0({2, 2, 2, 2}, {2, 2, 2, 2});
  EXPECT_EQ(r0.prepare(g.name.c_str(), 2), ACLNN_SUCCESS) << recent_error();
  EXPECT_EQ(aclDestroyAclOpExecutor(r0.executor), ACLNN_SUCCESS);
}

TEST(HcclMisuse, TwoThreadsDestroyingOneHandleOneSucceeds) {
  for (int round = 0; round < 200; ++round) {
    int32_t device = 0;
    HcclComm comm = nullptr;
    ASSERT_EQ(HcclCommInitAll(1, &device, &comm), HCCL_SUCCESS);
    std::atomic<int> ready{0};
    HcclResult result[2] = {HCCL_E_RESERVED, HCCL_E_RESERVED};
    std::thread t[2];
    for (int i = 0; i < 2; ++i)
      t[i] = std::thread([&, i] {
        ready.fetch_add(1);
        while (ready.load() < 2) {
        }
        result[i] = HcclCommDestroy(comm);
      });
    t[0].join();
    t[1].join();
    const int ok = int(result[0] == HCCL_SUCCESS) + int(result[1] == HCCL_SUCCESS);
    ASSERT_EQ(ok, 1) << "round " << round << ": results " << result[0] << ", " << result[1];
    ASSERT_TRUE(result[0] == HCCL_E_PARA || result[1] == HCCL_E_PARA) << "round " << round;
  }
}

TEST(HcclMisuse, AnotherRanksStreamIsRefusedAtOnce) {
  ScopedEnv timeout("GMMAV_TIMEOUT_MS", "2000");  // should the refusal be missing, the test still ends
  TwoRanks g;
  RankCall r0({2, 2, 2, 2}, {2, 2, 2, 2}), r1({2, 2, 2, 2}, {2, 2, 2, 2});
  ASSERT_EQ(aclrtSetDevice(0), ACL_SUCCESS);
  ASSERT_EQ(r0.prepare(g.name.c_str(), 2), ACLNN_SUCCESS) << recent_error();
  ASSERT_EQ(aclrtSetDevice(1), ACL_SUCCESS);
  ASSERT_EQ(r1.prepare(g.name.c_str(), 2), ACLNN_SUCCESS) << recent_error();
  // One thread queues both ranks' executors on the stream of device 0: rank 1's is refused at once.
  ASSERT_EQ(aclnnGroupedMatMulAlltoAllv(nullptr, 0, r0.executor, g.streams[0]), ACLNN_SUCCESS) << recent_error();
  EXPECT_EQ(aclnnGroupedMatMulAlltoAllv(nullptr, 0, r1.executor, g.streams[0]), ACLNN_ERR_PARAM_INVALID);
  const std::string msg = recent_error();
  EXPECT_NE(msg.find("expected a stream of device 1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("got a stream of device 0"), std::string::npos) << msg;
  // Refused means unchanged: the same executor then runs on its own device's stream.
  ASSERT_EQ(aclnnGroupedMatMulAlltoAllv(nullptr, 0, r1.executor, g.streams[1]), ACLNN_SUCCESS) << recent_error();
  EXPECT_EQ(aclrtSynchronizeStream(g.streams[0]), ACL_SUCCESS) << recent_error();
  EXPECT_EQ(aclrtSynchronizeStream(g.streams[1]), ACL_SUCCESS) << recent_error();
  EXPECT_FALSE(r0.y.all_equal(kSentinel));
  EXPECT_FALSE(r1.y.all_equal(kSentinel));
}

}  // namespace
