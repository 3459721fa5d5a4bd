// Stream semantics: in-order per stream, synchronize returns the first error
// of the queued work (then clears it), a bounded synchronize returns
// ACL_ERROR_RT_STREAM_SYNC_TIMEOUT instead of hanging when peers never
// arrive, and the error of a failed collective run reaches every rank.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "compat_helpers.hpp"
#include "two_ranks.hpp"

namespace {

using namespace compat_test;
using namespace std::chrono_literals;

TEST(Stream, WorkRunsInOrderPerStream) {
  ASSERT_EQ(aclrtSetDevice(0), ACL_SUCCESS);
  aclrtStream s[2] = {};
  ASSERT_EQ(aclrtCreateStream(&s[0]), ACL_SUCCESS);
  ASSERT_EQ(aclrtCreateStream(&s[1]), ACL_SUCCESS);
  // On each stream a chain b[0] -> b[1] -> ... -> b[n]: out of order, a later copy
  // would move a buffer's zeros on before the pattern arrived.
  constexpr int kSteps = 24;
  constexpr std::size_t kBytes = 1 << 20;
  std::vector<void*> b[2];
  for (int k = 0; k < 2; ++k) {
    b[k].resize(kSteps + 1);
    for (auto& p : b[k]) {
      ASSERT_EQ(aclrtMalloc(&p, kBytes, ACL_MEM_MALLOC_HUGE_FIRST), ACL_SUCCESS);
      ASSERT_EQ(aclrtMemset(p, kBytes, 0, kBytes), ACL_SUCCESS);
    }
    ASSERT_EQ(aclrtMemset(b[k][0], kBytes, 0x11 * (k + 1), kBytes), ACL_SUCCESS);
  }
  for (int i = 0; i < kSteps; ++i)
    for (int k = 0; k < 2; ++k)  // interleaved between the two streams
      ASSERT_EQ(aclrtMemcpyAsync(b[k][static_cast<std::size_t>(i + 1)], kBytes, b[k][static_cast<std::size_t>(i)], kBytes,
                                 ACL_MEMCPY_DEVICE_TO_DEVICE, s[k]),
                ACL_SUCCESS);
  for (int k = 0; k < 2; ++k) {
    ASSERT_EQ(aclrtSynchronizeStream(s[k]), ACL_SUCCESS);
    std::vector<unsigned char> host(kBytes);
    ASSERT_EQ(aclrtMemcpy(host.data(), kBytes, b[k][kSteps], kBytes, ACL_MEMCPY_DEVICE_TO_HOST), ACL_SUCCESS);
    for (unsigned char c : host) ASSERT_EQ(c, 0x11 * (k + 1)) << "stream " << k;
    for (void* p : b[k]) EXPECT_EQ(aclrtFree(p), ACL_SUCCESS);
    EXPECT_EQ(aclrtDestroyStream(s[k]), ACL_SUCCESS);
  }
}

TEST(Stream, DestroyWaitsForQueuedWork) {
  ASSERT_EQ(aclrtSetDevice(0), ACL_SUCCESS);
  aclrtStream s = nullptr;
  ASSERT_EQ(aclrtCreateStream(&s), ACL_SUCCESS);
  constexpr std::size_t kBytes = 32 << 20;
  std::vector<unsigned char> src(kBytes, 0x3D), dst(kBytes, 0);
  for (int i = 0; i < 4; ++i)
    ASSERT_EQ(aclrtMemcpyAsync(dst.data(), kBytes, src.data(), kBytes, ACL_MEMCPY_HOST_TO_HOST, s), ACL_SUCCESS);
  ASSERT_EQ(aclrtDestroyStream(s), ACL_SUCCESS);
  EXPECT_EQ(std::memcmp(src.data(), dst.data(), kBytes), 0);
  EXPECT_EQ(aclrtDestroyStream(s), ACL_ERROR_INVALID_PARAM) << "a destroyed stream is no longer a stream";
  EXPECT_NE(recent_error().find("stream"), std::string::npos);
}

TEST(Stream, NullStreamIsTheContextsDefaultStream) {
  ASSERT_EQ(aclrtSetDevice(1), ACL_SUCCESS);
  std::vector<unsigned char> src(4096, 0x42), dst(4096, 0);
  ASSERT_EQ(aclrtMemcpyAsync(dst.data(), dst.size(), src.data(), src.size(), ACL_MEMCPY_DEFAULT, nullptr), ACL_SUCCESS);
  ASSERT_EQ(aclrtSynchronizeStream(nullptr), ACL_SUCCESS);
  EXPECT_EQ(dst, src);
  ASSERT_EQ(aclrtSynchronizeDevice(), ACL_SUCCESS);
  // Without a current context there is no default stream.
  std::thread([] {
    EXPECT_EQ(aclrtSynchronizeStream(nullptr), ACL_ERROR_RT_CONTEXT_NULL);
    EXPECT_NE(recent_error().find("aclrtSetDevice"), std::string::npos);
  }).join();
}

TEST(Stream, TimeoutArgument) {
  ASSERT_EQ(aclrtSetDevice(0), ACL_SUCCESS);
  aclrtStream s = nullptr;
  ASSERT_EQ(aclrtCreateStream(&s), ACL_SUCCESS);
  EXPECT_EQ(aclrtSynchronizeStreamWithTimeout(s, -2), ACL_ERROR_RT_PARAM_INVALID);
  EXPECT_NE(recent_error().find("timeout"), std::string::npos);
  EXPECT_EQ(aclrtSynchronizeStreamWithTimeout(s, -1), ACL_SUCCESS);
  EXPECT_EQ(aclrtSynchronizeStreamWithTimeout(s, 0), ACL_SUCCESS) << "0 only checks; an idle stream is done";
  EXPECT_EQ(aclrtSynchronizeStreamWithTimeout(s, 100), ACL_SUCCESS);
  EXPECT_EQ(aclrtDestroyStream(s), ACL_SUCCESS);
}

TEST(Stream, SynchronizeTimesOutWhenAPeerNeverArrives) {
  // The group's own wait (GMMAV_TIMEOUT_MS) outlasts the synchronize timeout, but
  // is short enough that the stuck rank fails soon after and the test cleans up.
  ScopedEnv timeout("GMMAV_TIMEOUT_MS", "400");
  TwoRanks g;
  RankCall r0({2, 2, 2, 2}, {2, 2, 2, 2});
  ASSERT_EQ(aclrtSetDevice(0), ACL_SUCCESS);
  ASSERT_EQ(r0.prepare(g.name.c_str(), 2), ACLNN_SUCCESS) << recent_error();
  const auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(aclnnGroupedMatMulAlltoAllv(nullptr, 0, r0.executor, g.streams[0]), ACLNN_SUCCESS) << recent_error();
  // Rank 1 never calls: a bounded synchronize expires...
  EXPECT_EQ(aclrtSynchronizeStreamWithTimeout(g.streams[0], 50), ACL_ERROR_RT_STREAM_SYNC_TIMEOUT);
  EXPECT_NE(recent_error().find("still queued or running"), std::string::npos);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 380ms) << "the synchronize must not wait for the group's timeout";
  // ...and an unbounded one then reports the run's own failure: rank 1 never arrived.
  EXPECT_EQ(aclrtSynchronizeStreamWithTimeout(g.streams[0], -1), ACL_ERROR_RT_TASK_TIMEOUT);
  const std::string msg = recent_error();
  EXPECT_NE(msg.find("rank(s) 1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("aclnnGroupedMatMulAlltoAllv (rank 0 of group"), std::string::npos) << msg;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_TRUE(r0.y.all_equal(kSentinel));
  // The error was reported once: the stream is clean again.
  EXPECT_EQ(aclrtSynchronizeStream(g.streams[0]), ACL_SUCCESS);
  // The late rank finds the group broken (the communicator must be recreated).
  RankCall r1({2, 2, 2, 2}, {2, 2, 2, 2});
  ASSERT_EQ(aclrtSetDevice(1), ACL_SUCCESS);
  ASSERT_EQ(r1.prepare(g.name.c_str(), 2), ACLNN_SUCCESS) << recent_error();
  ASSERT_EQ(aclnnGroupedMatMulAlltoAllv(nullptr, 0, r1.executor, g.streams[1]), ACLNN_SUCCESS);
  EXPECT_EQ(aclrtSynchronizeStream(g.streams[1]), ACL_ERROR_RT_COMM_OP_RETRY_FAIL);
  EXPECT_NE(recent_error().find("recreate"), std::string::npos);
  EXPECT_TRUE(r1.y.all_equal(kSentinel));
}

TEST(Stream, FailedRunIsReportedOnEveryRank) {
  TwoRanks g;
  // Each list is valid on its own (same totals) but rank 1 expects rows from
  // (source 0, expert 1) that rank 0 sends from (source 0, expert 0).
  RankCall calls[2] = {RankCall({2, 2, 3, 1}, {2, 2, 2, 2}), RankCall({2, 2, 2, 2}, {4, 0, 2, 2})};
  std::string err[2];
  int sync[2] = {-1, -1};
  std::thread t[2];
  for (int r = 0; r < 2; ++r)
    t[r] = std::thread([&, r] {
      if (aclrtSetDevice(r) != ACL_SUCCESS) return;
      if (calls[r].prepare(g.name.c_str(), 2) != ACLNN_SUCCESS) return;
      if (aclnnGroupedMatMulAlltoAllv(nullptr, 0, calls[r].executor, g.streams[r]) != ACLNN_SUCCESS) return;
      sync[r] = aclrtSynchronizeStreamWithTimeout(g.streams[r], 30000);
      err[r] = recent_error();
    });
  t[0].join();
  t[1].join();
  for (int r = 0; r < 2; ++r) {
    SCOPED_TRACE("rank " + std::to_string(r));
    EXPECT_EQ(sync[r], ACL_ERROR_RT_PARAM_INVALID) << err[r];
    EXPECT_NE(err[r].find("(source 0, destination 1, expert 0)"), std::string::npos) << err[r];
    EXPECT_NE(err[r].find("aclrtSynchronizeStreamWithTimeout"), std::string::npos) << err[r];
    EXPECT_TRUE(calls[r].y.all_equal(kSentinel)) << "nothing is written when the counts disagree";
    EXPECT_EQ(aclrtSynchronizeStream(g.streams[r]), ACL_SUCCESS) << "the error is reported once";
  }
}

}  // namespace
