// The call sequence of the vendor's example_threads (one thread per rank:
// aclInit, per-rank device/context/stream, HcclCommInitAll, then per thread
// SetCurrentContext, GetCommName, tensors, the two phases, synchronize, copy
// back, tear down) on small problems whose answer is known exactly: y and mmY
// of every rank must equal the reference bit for bit.
#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "compat_helpers.hpp"
#include "numeric/half.hpp"
#include "reference/reference.hpp"

namespace {

using namespace compat_test;
using gmmav::DType;
namespace ref = gmmav::reference;

constexpr std::uint16_t kSentinel = 0xA5A5;

struct Problem {
  DType dtype = DType::f16;
  int world_size = 2;
  int local_experts = 2;
  std::int64_t bsk = 32;  // rows every rank receives (= K * BS)
  std::int64_t bs = 16;   // shared-expert rows (0 = no shared expert)
  std::int64_t h1 = 24, n1 = 16, h2 = 20, n2 = 12;
  bool trans_gmm_weight = false, trans_mm_weight = false;
  bool balanced = false;  // every (source, destination, expert) gets bsk / (W*e) rows, as in the seed
  // Input bits per rank: a fixed value, or (when unset) random small dyadic numbers.
  std::optional<std::uint16_t> (*fixed_x)(int rank) = nullptr;
  std::optional<std::uint16_t> (*fixed_w)(int rank) = nullptr;
};

struct RankData {
  std::vector<std::int64_t> send, recv;
  std::vector<std::uint16_t> x, w, mx, mw;
  std::vector<std::uint16_t> y, my;  // results, copied back from "device" memory
};

std::uint16_t encode(DType t, double v) { return gmmav::numeric::from_double(t, v); }

// Random counts under the cross-rank contract where every rank receives exactly bsk rows
// (so K = bsk / bs is the same everywhere); zeros happen.
std::vector<RankData> make_data(const Problem& p, std::uint64_t seed) {
  const int W = p.world_size, e = p.local_experts;
  std::mt19937_64 rng(seed);
  std::vector<RankData> r(static_cast<std::size_t>(W));
  for (auto& d : r) {
    d.send.assign(static_cast<std::size_t>(W * e), 0);
    d.recv.assign(static_cast<std::size_t>(W * e), 0);
  }
  std::uniform_int_distribution<int> cell(0, W * e - 1);
  for (int d = 0; d < W; ++d) {
    for (std::int64_t row = 0; row < p.bsk; ++row) {
      const int g = p.balanced ? static_cast<int>(row % (W * e)) : cell(rng);  // global expert s*e + j of this row
      ++r[static_cast<std::size_t>(d)].recv[static_cast<std::size_t>(g)];
      const int s = g / e, j = g % e;
      ++r[static_cast<std::size_t>(s)].send[static_cast<std::size_t>(d * e + j)];
    }
  }
  auto fill = [&](std::vector<std::uint16_t>& v, std::size_t n, std::optional<std::uint16_t> fixed, int denom) {
    std::uniform_int_distribution<int> k(-denom, denom);
    v.resize(n);
    for (auto& x : v) x = fixed ? *fixed : encode(p.dtype, static_cast<double>(k(rng)) / denom);
  };
  for (int s = 0; s < W; ++s) {
    RankData& d = r[static_cast<std::size_t>(s)];
    std::int64_t a = 0;
    for (auto c : d.send) a += c;
    const auto fx = p.fixed_x ? p.fixed_x(s) : std::nullopt;
    const auto fw = p.fixed_w ? p.fixed_w(s) : std::nullopt;
    fill(d.x, static_cast<std::size_t>(a * p.h1), fx, 8);
    fill(d.w, static_cast<std::size_t>(e * p.h1 * p.n1), fw, 16);
    if (p.bs > 0) {
      fill(d.mx, static_cast<std::size_t>(p.bs * p.h2), fx, 8);
      fill(d.mw, static_cast<std::size_t>(p.h2 * p.n2), fw, 16);
    }
  }
  return r;
}

aclDataType acl_dtype(DType t) { return t == DType::f16 ? ACL_FLOAT16 : ACL_BF16; }

// One rank's thread, as in example_threads. Returns "" or what failed.
std::string rank_thread(const Problem& p, HcclComm comm, aclrtContext ctx, aclrtStream stream, RankData& d) {
  if (aclrtSetCurrentContext(ctx) != ACL_SUCCESS) return "aclrtSetCurrentContext: " + recent_error();
  char name[128] = {0};
  if (HcclGetCommName(comm, name) != HCCL_SUCCESS) return "HcclGetCommName: " + recent_error();
  const aclDataType dt = acl_dtype(p.dtype);
  const std::int64_t a = static_cast<std::int64_t>(d.x.size()) / p.h1;
  std::string err;
  {
    DeviceBuffer x(d.x), w(d.w), y(static_cast<std::size_t>(p.bsk * p.n1), kSentinel);
    DeviceBuffer mx, mw, my;
    Tensor tx({a, p.h1}, dt, x.get());
    Tensor tw(p.trans_gmm_weight ? std::vector<std::int64_t>{p.local_experts, p.n1, p.h1}
                                 : std::vector<std::int64_t>{p.local_experts, p.h1, p.n1},
              dt, w.get());
    Tensor ty({p.bsk, p.n1}, dt, y.get());
    Tensor tmx, tmw, tmy;
    if (p.bs > 0) {
      mx = DeviceBuffer(d.mx);
      mw = DeviceBuffer(d.mw);
      my = DeviceBuffer(static_cast<std::size_t>(p.bs * p.n2), kSentinel);
      tmx = Tensor({p.bs, p.h2}, dt, mx.get());
      tmw =
          Tensor(p.trans_mm_weight ? std::vector<std::int64_t>{p.n2, p.h2} : std::vector<std::int64_t>{p.h2, p.n2}, dt, mw.get());
      tmy = Tensor({p.bs, p.n2}, dt, my.get());
    }
    IntArray send(d.send), recv(d.recv);
    std::uint64_t ws_size = 0;
    aclOpExecutor* executor = nullptr;
    int ret = aclnnGroupedMatMulAlltoAllvGetWorkspaceSize(tx.get(), tw.get(), nullptr, nullptr, tmx.get(), tmw.get(), name,
                                                          p.world_size, send.get(), recv.get(), p.trans_gmm_weight,
                                                          p.trans_mm_weight, ty.get(), tmy.get(), &ws_size, &executor);
    if (ret != ACLNN_SUCCESS) return "GetWorkspaceSize " + std::to_string(ret) + ": " + recent_error();
    void* ws = nullptr;
    if (ws_size > 0 && aclrtMalloc(&ws, ws_size, ACL_MEM_MALLOC_HUGE_FIRST) != ACL_SUCCESS) return "aclrtMalloc workspace";
    ret = aclnnGroupedMatMulAlltoAllv(ws, ws_size, executor, stream);
    if (ret != ACLNN_SUCCESS) err = "execute " + std::to_string(ret) + ": " + recent_error();
    ret = aclrtSynchronizeStreamWithTimeout(stream, 60000);
    if (err.empty() && ret != ACL_SUCCESS) err = "synchronize " + std::to_string(ret) + ": " + recent_error();
    d.y = y.download();
    if (p.bs > 0) d.my = my.download();
    if (ws != nullptr) aclrtFree(ws);
  }
  if (HcclCommDestroy(comm) != HCCL_SUCCESS && err.empty()) err = "HcclCommDestroy: " + recent_error();
  if (aclrtDestroyStream(stream) != ACL_SUCCESS && err.empty()) err = "aclrtDestroyStream: " + recent_error();
  if (aclrtDestroyContext(ctx) != ACL_SUCCESS && err.empty()) err = "aclrtDestroyContext: " + recent_error();
  return err;
}

// Runs every rank like example_threads (rank r on device devices[r], reversed to
// exercise the rank <-> device mapping) and checks y / mmY exactly. Returns the data and results.
std::vector<RankData> run_and_check(const Problem& p, std::uint64_t seed) {
  const int W = p.world_size;
  auto data = make_data(p, seed);
  std::vector<int32_t> devices(static_cast<std::size_t>(W));
  std::vector<aclrtContext> ctx(static_cast<std::size_t>(W));
  std::vector<aclrtStream> streams(static_cast<std::size_t>(W));
  for (int r = 0; r < W; ++r) {
    devices[static_cast<std::size_t>(r)] = W - 1 - r;
    EXPECT_EQ(aclrtSetDevice(devices[static_cast<std::size_t>(r)]), ACL_SUCCESS);
    EXPECT_EQ(aclrtCreateContext(&ctx[static_cast<std::size_t>(r)], devices[static_cast<std::size_t>(r)]), ACL_SUCCESS);
    EXPECT_EQ(aclrtCreateStream(&streams[static_cast<std::size_t>(r)]), ACL_SUCCESS);
  }
  std::vector<HcclComm> comms(static_cast<std::size_t>(W));
  const HcclResult init = HcclCommInitAll(static_cast<uint32_t>(W), devices.data(), comms.data());
  EXPECT_EQ(init, HCCL_SUCCESS) << recent_error();
  if (init != HCCL_SUCCESS) return {};
  std::vector<std::string> errors(static_cast<std::size_t>(W));
  std::vector<std::thread> threads;
  for (int r = 0; r < W; ++r) {
    const auto i = static_cast<std::size_t>(r);
    threads.emplace_back([&, i] { errors[i] = rank_thread(p, comms[i], ctx[i], streams[i], data[i]); });
  }
  for (auto& t : threads) t.join();
  bool ok = true;
  for (int r = 0; r < W; ++r) {
    EXPECT_EQ(errors[static_cast<std::size_t>(r)], "") << "rank " << r;
    ok = ok && errors[static_cast<std::size_t>(r)].empty();
    EXPECT_EQ(aclrtResetDevice(devices[static_cast<std::size_t>(r)]), ACL_SUCCESS);
  }
  if (!ok) return {};

  ref::Shapes shapes;
  shapes.dtype = p.dtype;
  shapes.world_size = W;
  shapes.local_experts = p.local_experts;
  shapes.h1 = p.h1;
  shapes.n1 = p.n1;
  shapes.h2 = p.h2;
  shapes.n2 = p.n2;
  shapes.trans_gmm_weight = p.trans_gmm_weight;
  shapes.trans_mm_weight = p.trans_mm_weight;
  std::vector<ref::RankInputs> in(static_cast<std::size_t>(W));
  for (int r = 0; r < W; ++r) {
    const RankData& d = data[static_cast<std::size_t>(r)];
    ref::RankInputs& ri = in[static_cast<std::size_t>(r)];
    ri.send_counts = d.send;
    ri.recv_counts = d.recv;
    ri.gmm_x = d.x.data();
    ri.gmm_weight = d.w.data();
    if (p.bs > 0) {
      ri.mm_x = d.mx.data();
      ri.mm_weight = d.mw.data();
      ri.bs = p.bs;
    }
  }
  const auto expect = ref::compute(shapes, in);
  for (int r = 0; r < W; ++r) {
    SCOPED_TRACE("rank " + std::to_string(r));
    const RankData& d = data[static_cast<std::size_t>(r)];
    const auto cy = ref::compare(p.dtype, d.y, expect[static_cast<std::size_t>(r)].y, /*exact=*/true);
    EXPECT_TRUE(cy.ok()) << "y: " << cy.mismatches << " mismatches; first: " << cy.first_mismatch_text;
    if (p.bs > 0) {
      const auto cm = ref::compare(p.dtype, d.my, expect[static_cast<std::size_t>(r)].mm_y, /*exact=*/true);
      EXPECT_TRUE(cm.ok()) << "mmY: " << cm.mismatches << " mismatches; first: " << cm.first_mismatch_text;
    }
  }
  return data;
}

struct FlowParam {
  DType dtype;
  int world_size;
  bool shared;
};

class ExampleThreadsFlow : public ::testing::TestWithParam<FlowParam> {};

TEST_P(ExampleThreadsFlow, BitExactOnEveryRank) {
  Problem p;
  p.dtype = GetParam().dtype;
  p.world_size = GetParam().world_size;
  p.bs = GetParam().shared ? 16 : 0;  // K = 32 / 16 = 2
  p.local_experts = p.world_size == 2 ? 3 : 2;
  run_and_check(p, 7 + static_cast<std::uint64_t>(p.world_size));
}

TEST_P(ExampleThreadsFlow, BitExactWithTransposedWeights) {
  Problem p;
  p.dtype = GetParam().dtype;
  p.world_size = GetParam().world_size;
  p.bs = GetParam().shared ? 8 : 0;  // K = 32 / 8 = 4
  p.trans_gmm_weight = true;
  p.trans_mm_weight = GetParam().shared;
  run_and_check(p, 11);
}

INSTANTIATE_TEST_SUITE_P(Compat, ExampleThreadsFlow,
                         ::testing::Values(FlowParam{DType::f16, 2, false}, FlowParam{DType::f16, 2, true},
                                           FlowParam{DType::f16, 4, false}, FlowParam{DType::f16, 4, true},
                                           FlowParam{DType::bf16, 2, false}, FlowParam{DType::bf16, 2, true},
                                           FlowParam{DType::bf16, 4, false}, FlowParam{DType::bf16, 4, true}),
                         [](const auto& info) {
                           return std::string(info.param.dtype == DType::f16 ? "fp16" : "bf16") + "_W" +
                                  std::to_string(info.param.world_size) + (info.param.shared ? "_shared" : "_routed");
                         });

// The seed example's inputs — gmmX / mmX = fp16 bits (rank+1)*1024, weights
// (rank+1)*512 (rank 0's weights are subnormal) — with its W, e and H but a small BS.
TEST(ExampleThreadsFlow, SeedValuesW8) {
  Problem p;
  p.dtype = DType::f16;
  p.world_size = 8;
  p.local_experts = 4;
  p.bs = 32;
  p.bsk = 64;  // K = 2, as in the seed
  p.h1 = p.h2 = 7168;
  p.n1 = 48;
  p.n2 = 40;
  p.fixed_x = [](int r) { return std::optional<std::uint16_t>(static_cast<std::uint16_t>((r + 1) * 1024)); };
  p.fixed_w = [](int r) { return std::optional<std::uint16_t>(static_cast<std::uint16_t>((r + 1) * 512)); };
  p.balanced = true;
  const auto data = run_and_check(p, 3);
  ASSERT_EQ(data.size(), 8u);
  // Independently of the reference: every product of source s is x_s * w_s, so each
  // element is fp16(7168 * x_s * w_s), rounded once.
  auto value = [&](int s) {
    const double x = gmmav::numeric::half_to_float(static_cast<std::uint16_t>((s + 1) * 1024));
    const double w = gmmav::numeric::half_to_float(static_cast<std::uint16_t>((s + 1) * 512));
    return gmmav::numeric::double_to_half(7168.0 * x * w);
  };
  EXPECT_EQ(value(0), 0x00E0) << "7168 * 2^-14 * 2^-15 = 224 * 2^-24, an fp16 subnormal";
  for (int d = 0; d < 8; ++d) {
    SCOPED_TRACE("rank " + std::to_string(d));
    const auto& y = data[static_cast<std::size_t>(d)].y;
    const std::int64_t rows_per_source = p.bsk / 8;  // y is ordered by source rank
    for (std::int64_t row = 0; row < p.bsk; ++row)
      ASSERT_EQ(y[static_cast<std::size_t>(row * p.n1)], value(static_cast<int>(row / rows_per_source))) << "y row " << row;
    for (std::uint16_t v : data[static_cast<std::size_t>(d)].my) ASSERT_EQ(v, value(d)) << "mmY";
  }
}

}  // namespace
