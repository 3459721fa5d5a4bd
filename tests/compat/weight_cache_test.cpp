// The aclnn skin keeps packed weights across calls (src/aclnn/weight_cache.*).
// A program valid on the accelerator writes device memory only through the
// runtime (aclrtMemcpy[Async], aclrtMemset, operator outputs): after each such
// write of the weights, the next call must compute with the new values, never
// with a stale packed copy. Every test checks y bit for bit against the FP64
// reference of the weights as they are at that call.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "aclnn/weight_cache.hpp"
#include "compat_helpers.hpp"
#include "numeric/half.hpp"
#include "reference/reference.hpp"

namespace {

using namespace compat_test;
using gmmav::DType;
namespace ref = gmmav::reference;

// One rank (W = 1) on device 0: e = 2 experts, H1 = 16, N1 = 8, counts [3, 5].
constexpr int kE = 2;
constexpr std::int64_t kH1 = 16, kN1 = 8, kRows = 8;
const std::vector<std::int64_t> kCounts{3, 5};

std::vector<std::uint16_t> dyadic(std::size_t n, std::uint64_t seed, int denom) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> k(-denom, denom);
  std::vector<std::uint16_t> v(n);
  for (auto& x : v) x = gmmav::numeric::double_to_half(static_cast<double>(k(rng)) / denom);
  return v;
}

std::vector<std::uint16_t> expected_y(const std::vector<std::uint16_t>& x, const std::vector<std::uint16_t>& w) {
  ref::Shapes s;
  s.dtype = DType::f16;
  s.world_size = 1;
  s.local_experts = kE;
  s.h1 = kH1;
  s.n1 = kN1;
  ref::RankInputs in;
  in.send_counts = in.recv_counts = kCounts;
  in.gmm_x = x.data();
  in.gmm_weight = w.data();
  return ref::compute(s, std::span<const ref::RankInputs>(&in, 1))[0].y.bits;
}

class WeightCache : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(aclrtSetDevice(0), ACL_SUCCESS);
    ASSERT_EQ(aclrtCreateContext(&ctx_, 0), ACL_SUCCESS);
    ASSERT_EQ(aclrtCreateStream(&stream_), ACL_SUCCESS);
    std::int32_t dev = 0;
    ASSERT_EQ(HcclCommInitAll(1, &dev, &comm_), HCCL_SUCCESS) << recent_error();
    ASSERT_EQ(HcclGetCommName(comm_, name_), HCCL_SUCCESS);
  }
  void TearDown() override {
    EXPECT_EQ(HcclCommDestroy(comm_), HCCL_SUCCESS);
    EXPECT_EQ(aclrtDestroyStream(stream_), ACL_SUCCESS);
    EXPECT_EQ(aclrtDestroyContext(ctx_), ACL_SUCCESS);
    EXPECT_EQ(aclrtResetDevice(0), ACL_SUCCESS);
  }

  // Queues one call (x: (rows, H1), w: (e, H1, N1), y: (rows, N1)) on the stream; no synchronize.
  void enqueue(void* x, void* w, void* y, std::int64_t rows = kRows, const std::vector<std::int64_t>& counts = kCounts) {
    Tensor tx({rows, kH1}, ACL_FLOAT16, x), tw({kE, kH1, kN1}, ACL_FLOAT16, w), ty({rows, kN1}, ACL_FLOAT16, y);
    IntArray send(counts), recv(counts);
    std::uint64_t ws = 0;
    aclOpExecutor* ex = nullptr;
    ASSERT_EQ(aclnnGroupedMatMulAlltoAllvGetWorkspaceSize(tx.get(), tw.get(), nullptr, nullptr, nullptr, nullptr, name_, 1,
                                                          send.get(), recv.get(), false, false, ty.get(), nullptr, &ws, &ex),
              ACLNN_SUCCESS)
        << recent_error();
    ASSERT_EQ(ws, 0u);
    ASSERT_EQ(aclnnGroupedMatMulAlltoAllv(nullptr, 0, ex, stream_), ACLNN_SUCCESS) << recent_error();
  }
  void sync() { ASSERT_EQ(aclrtSynchronizeStream(stream_), ACL_SUCCESS) << recent_error(); }

  aclrtContext ctx_ = nullptr;
  aclrtStream stream_ = nullptr;
  HcclComm comm_ = nullptr;
  char name_[128] = {0};
};

const auto kX = dyadic(kRows * kH1, 1, 8);
const auto kW1 = dyadic(kE * kH1 * kN1, 2, 16);
const auto kW2 = dyadic(kE * kH1 * kN1, 3, 16);

TEST_F(WeightCache, RepeatedCallsUseThePackedCopy) {
  DeviceBuffer x(kX), w(kW1), y(kRows * kN1);
  const auto before = gmmav::aclnn::weight_cache_stats();
  enqueue(x.get(), w.get(), y.get());
  sync();
  const auto first = gmmav::aclnn::weight_cache_stats();
  EXPECT_EQ(first.misses, before.misses + 1);
  EXPECT_EQ(first.hits, before.hits);
  y = DeviceBuffer(kRows * kN1);
  enqueue(x.get(), w.get(), y.get());
  sync();
  EXPECT_EQ(gmmav::aclnn::weight_cache_stats().hits, first.hits + 1) << "the weights of an aclrtMalloc block are kept";
  EXPECT_EQ(y.download(), expected_y(kX, kW1));
}

TEST_F(WeightCache, RewriteByMemcpyIsSeen) {
  DeviceBuffer x(kX), w(kW1), y(kRows * kN1);
  enqueue(x.get(), w.get(), y.get());
  sync();
  ASSERT_EQ(y.download(), expected_y(kX, kW1));
  w.upload(kW2);  // aclrtMemcpy
  enqueue(x.get(), w.get(), y.get());
  sync();
  EXPECT_EQ(y.download(), expected_y(kX, kW2));
  ASSERT_NE(expected_y(kX, kW1), expected_y(kX, kW2));
}

TEST_F(WeightCache, PartialRewriteOfOneExpertIsSeen) {
  DeviceBuffer x(kX), w(kW1), y(kRows * kN1);
  enqueue(x.get(), w.get(), y.get());
  sync();
  // Expert 1's first weight row only, at an address inside the block.
  auto w2 = kW1;
  for (std::int64_t c = 0; c < kN1; ++c) w2[static_cast<std::size_t>(kH1 * kN1 + c)] = gmmav::numeric::double_to_half(0.75);
  auto* row = static_cast<std::uint16_t*>(w.get()) + kH1 * kN1;
  ASSERT_EQ(aclrtMemcpy(row, kN1 * 2, w2.data() + kH1 * kN1, kN1 * 2, ACL_MEMCPY_HOST_TO_DEVICE), ACL_SUCCESS);
  enqueue(x.get(), w.get(), y.get());
  sync();
  EXPECT_EQ(y.download(), expected_y(kX, w2));
}

TEST_F(WeightCache, RewriteByMemsetIsSeen) {
  DeviceBuffer x(kX), w(kW1), y(kRows * kN1);
  enqueue(x.get(), w.get(), y.get());
  sync();
  ASSERT_EQ(aclrtMemset(w.get(), w.bytes(), 0, w.bytes()), ACL_SUCCESS);
  enqueue(x.get(), w.get(), y.get());
  sync();
  EXPECT_EQ(y.download(), expected_y(kX, std::vector<std::uint16_t>(kW1.size(), 0)));
}

TEST_F(WeightCache, AsyncCopyQueuedBetweenTwoCallsIsSeenByTheSecond) {
  DeviceBuffer x(kX), w(kW1), y1(kRows * kN1), y2(kRows * kN1);
  enqueue(x.get(), w.get(), y1.get());
  ASSERT_EQ(aclrtMemcpyAsync(w.get(), w.bytes(), kW2.data(), w.bytes(), ACL_MEMCPY_HOST_TO_DEVICE, stream_), ACL_SUCCESS);
  enqueue(x.get(), w.get(), y2.get());
  sync();
  EXPECT_EQ(y1.download(), expected_y(kX, kW1));
  EXPECT_EQ(y2.download(), expected_y(kX, kW2));
}

TEST_F(WeightCache, OutputOfTheOperatorUsedAsWeightsIsSeen) {
  // Call B writes its y (e*H1 rows of N1) into the memory call A uses as its weights.
  constexpr std::int64_t kRowsB = kE * kH1;
  const std::vector<std::int64_t> counts_b{kH1, kH1};
  const auto xb = dyadic(kRowsB * kH1, 4, 8);
  DeviceBuffer x(kX), xB(xb), w(kW1), wB(kW2), y(kRows * kN1);
  enqueue(x.get(), w.get(), y.get());                      // A: packs w
  enqueue(xB.get(), wB.get(), w.get(), kRowsB, counts_b);  // B: writes w
  enqueue(x.get(), w.get(), y.get());                      // A again
  sync();
  const auto w_now = w.download();
  ASSERT_NE(w_now, kW1);
  EXPECT_EQ(y.download(), expected_y(kX, w_now));
}

TEST_F(WeightCache, HostMemoryWeightsAreNotCachedAndDirectWritesAreSeen) {
  void* host = nullptr;
  ASSERT_EQ(aclrtMallocHost(&host, kW1.size() * 2), ACL_SUCCESS);
  std::memcpy(host, kW1.data(), kW1.size() * 2);
  DeviceBuffer x(kX), y(kRows * kN1);
  const auto before = gmmav::aclnn::weight_cache_stats();
  enqueue(x.get(), host, y.get());
  sync();
  EXPECT_EQ(gmmav::aclnn::weight_cache_stats().misses, before.misses);
  EXPECT_EQ(gmmav::aclnn::weight_cache_stats().hits, before.hits);
  std::memcpy(host, kW2.data(), kW2.size() * 2);  // host memory: the program may write it directly
  enqueue(x.get(), host, y.get());
  sync();
  EXPECT_EQ(y.download(), expected_y(kX, kW2));
  EXPECT_EQ(aclrtFreeHost(host), ACL_SUCCESS);
}

}  // namespace
