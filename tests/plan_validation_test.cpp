// Every validation rule of docs/spec.md §5 that applies to the native API, one case
// each: the error code, the parameter it names, and that nothing was written.
#include <gtest/gtest.h>

#include <functional>

#include "gmmav/gmmav.hpp"
#include "support/expect_error.hpp"

namespace {

using gmmav::ConstTensorView;
using gmmav::DType;
using gmmav::Envelope;
using gmmav::Errc;
using gmmav::TensorView;
using gmmav::testing::expect_error;

constexpr std::uint16_t kSentinel = 0x7E00;

// A valid W = 1 problem with a shared expert, its buffers and views.
struct Fixture {
  gmmav::ProblemDesc d;
  std::vector<std::uint16_t> x, w, y, mx, mw, my;
  gmmav::OpTensors t;
  Fixture() {
    d.world_size = 1;
    d.rank = 0;
    d.local_experts = 2;
    d.send_counts = {3, 2};
    d.recv_counts = {3, 2};
    d.h1 = 4;
    d.n1 = 3;
    d.dtype = DType::f16;
    d.shared = gmmav::SharedExpertDesc{2, 5, 6, false};
    x.assign(5 * 4, 0x3C00);
    w.assign(2 * 4 * 3, 0x3C00);
    y.assign(5 * 3, kSentinel);
    mx.assign(2 * 5, 0x3C00);
    mw.assign(5 * 6, 0x3C00);
    my.assign(2 * 6, kSentinel);
    t.gmm_x = ConstTensorView::matrix(x.data(), DType::f16, 5, 4);
    t.gmm_weight = ConstTensorView::cube(w.data(), DType::f16, 2, 4, 3);
    t.y = TensorView::matrix(y.data(), DType::f16, 5, 3);
    t.mm_x = ConstTensorView::matrix(mx.data(), DType::f16, 2, 5);
    t.mm_weight = ConstTensorView::matrix(mw.data(), DType::f16, 5, 6);
    t.mm_y = TensorView::matrix(my.data(), DType::f16, 2, 6);
  }
  bool untouched() const {
    for (auto v : y)
      if (v != kSentinel) return false;
    for (auto v : my)
      if (v != kSentinel) return false;
    return true;
  }
  // Runs the call through the native API on a W = 1 group.
  void run() {
    auto comms = gmmav::create_in_process_group(1);
    gmmav::run(gmmav::Plan::create(d), comms[0], t);
  }
};

TEST(PlanValidation, ValidFixtureRuns) {
  Fixture f;
  f.run();
  EXPECT_FALSE(f.untouched());
}

// ---- description rules ----
TEST(PlanValidation, WorldSize) {
  Fixture f;
  f.d.world_size = 0;
  expect_error([&] { gmmav::Plan::create(f.d); }, Errc::invalid_argument, "epWorldSize");
}
TEST(PlanValidation, RankOutOfRange) {
  Fixture f;
  f.d.rank = 1;
  expect_error([&] { gmmav::Plan::create(f.d); }, Errc::invalid_argument, "rank");
}
TEST(PlanValidation, NoExperts) {
  Fixture f;
  f.d.local_experts = 0;
  expect_error([&] { gmmav::Plan::create(f.d); }, Errc::invalid_argument, "gmmWeight");
}
TEST(PlanValidation, SendCountsLength) {
  Fixture f;
  f.d.send_counts = {5};
  expect_error([&] { gmmav::Plan::create(f.d); }, Errc::invalid_argument, "sendCounts");
}
TEST(PlanValidation, RecvCountsLength) {
  Fixture f;
  f.d.recv_counts = {3, 2, 0};
  expect_error([&] { gmmav::Plan::create(f.d); }, Errc::invalid_argument, "recvCounts");
}
TEST(PlanValidation, NegativeSendCount) {
  Fixture f;
  f.d.send_counts = {6, -1};
  expect_error([&] { gmmav::Plan::create(f.d); }, Errc::invalid_argument, "sendCounts");
}
TEST(PlanValidation, NegativeRecvCount) {
  Fixture f;
  f.d.recv_counts = {-3, 8};
  expect_error([&] { gmmav::Plan::create(f.d); }, Errc::invalid_argument, "recvCounts");
}
TEST(PlanValidation, CountSumOverflow) {
  Fixture f;
  f.d.send_counts = {INT64_MAX, 1};
  expect_error([&] { gmmav::Plan::create(f.d); }, Errc::invalid_argument, "sendCounts");
}
TEST(PlanValidation, H1) {
  Fixture f;
  f.d.h1 = 0;
  expect_error([&] { gmmav::Plan::create(f.d); }, Errc::invalid_argument, "gmmWeight");
}
TEST(PlanValidation, N1) {
  Fixture f;
  f.d.n1 = 0;
  expect_error([&] { gmmav::Plan::create(f.d); }, Errc::invalid_argument, "gmmWeight");
}
TEST(PlanValidation, SharedBs) {
  Fixture f;
  f.d.shared->bs = 0;
  expect_error([&] { gmmav::Plan::create(f.d); }, Errc::invalid_argument, "mmXOptional");
}
TEST(PlanValidation, SharedH2) {
  Fixture f;
  f.d.shared->h2 = 0;
  expect_error([&] { gmmav::Plan::create(f.d); }, Errc::invalid_argument, "mmWeightOptional");
}
TEST(PlanValidation, SharedN2) {
  Fixture f;
  f.d.shared->n2 = -4;
  expect_error([&] { gmmav::Plan::create(f.d); }, Errc::invalid_argument, "mmWeightOptional");
}
TEST(PlanValidation, TransMmWeightWithoutSharedExpert) {
  Fixture f;
  f.t.mm_x.reset();
  f.t.mm_weight.reset();
  f.t.mm_y.reset();
  expect_error([&] { gmmav::Plan::from_tensors(1, 0, f.d.send_counts, f.d.recv_counts, f.t, false, true); },
               Errc::invalid_argument, "transMmWeight");
}

// ---- hardware limits: lifted natively, enforced by the aclnn envelope ----
TEST(PlanValidation, HardwareLimitsLiftedNatively) {
  Fixture f;
  f.d.local_experts = 33;
  f.d.send_counts.assign(33, 1);
  f.d.recv_counts.assign(33, 1);
  f.d.h1 = 70000;
  f.d.shared->h2 = 20000;
  EXPECT_NO_THROW(gmmav::Plan::create(f.d));
  expect_error([&] { gmmav::Plan::create(f.d, Envelope::aclnn); }, Errc::invalid_argument, "gmmWeight");
}
TEST(PlanValidation, AclnnEnvelopeExpertsTimesWorld) {
  Fixture f;
  f.d.world_size = 16;
  f.d.local_experts = 17;
  f.d.send_counts.assign(16 * 17, 0);
  f.d.recv_counts.assign(16 * 17, 0);
  f.d.recv_counts[0] = 34;
  f.d.shared.reset();
  EXPECT_NO_THROW(gmmav::Plan::create(f.d));
  expect_error([&] { gmmav::Plan::create(f.d, Envelope::aclnn); }, Errc::invalid_argument, "epWorldSize");
}
TEST(PlanValidation, AclnnEnvelopeSharedExpertK) {
  Fixture f;  // BSK = 5, BS = 2: not a multiple
  EXPECT_NO_THROW(gmmav::Plan::create(f.d));
  expect_error([&] { gmmav::Plan::create(f.d, Envelope::aclnn); }, Errc::invalid_argument, "mmXOptional");
}
TEST(PlanValidation, StrictA3WorldSize) {
  Fixture f;
  f.d.shared.reset();
  expect_error([&] { gmmav::Plan::create(f.d, Envelope::strict_a3); }, Errc::invalid_argument, "epWorldSize");
}

// ---- tensor rules, through run(): nothing may be written ----
struct TensorRule {
  const char* name;
  std::function<void(Fixture&)> breaks;
  Errc code;
  const char* param;
};

class TensorRules : public ::testing::TestWithParam<TensorRule> {};

TEST_P(TensorRules, RejectedAndNothingWritten) {
  Fixture f;
  GetParam().breaks(f);
  expect_error([&] { f.run(); }, GetParam().code, GetParam().param);
  EXPECT_TRUE(f.untouched());
}

std::vector<TensorRule> tensor_rules() {
  using E = Errc;
  return {
      {"GmmXNull", [](Fixture& f) { f.t.gmm_x.data = nullptr; }, E::null_argument, "gmmX"},
      {"GmmWeightNull", [](Fixture& f) { f.t.gmm_weight.data = nullptr; }, E::null_argument, "gmmWeight"},
      {"YNull", [](Fixture& f) { f.t.y.data = nullptr; }, E::null_argument, "y"},
      {"MmXMissing", [](Fixture& f) { f.t.mm_x.reset(); }, E::null_argument, "mmXOptional"},
      {"MmWeightMissing", [](Fixture& f) { f.t.mm_weight.reset(); }, E::null_argument, "mmWeightOptional"},
      {"MmYMissing", [](Fixture& f) { f.t.mm_y.reset(); }, E::null_argument, "mmYOptional"},
      {"GmmXRank", [](Fixture& f) { f.t.gmm_x = ConstTensorView::cube(f.x.data(), DType::f16, 1, 5, 4); }, E::invalid_argument,
       "gmmX"},
      {"GmmWeightRank", [](Fixture& f) { f.t.gmm_weight = ConstTensorView::matrix(f.w.data(), DType::f16, 8, 3); },
       E::invalid_argument, "gmmWeight"},
      {"YRank", [](Fixture& f) { f.t.y = TensorView::cube(f.y.data(), DType::f16, 1, 5, 3); }, E::invalid_argument, "y"},
      {"MmXRank", [](Fixture& f) { f.t.mm_x = ConstTensorView::cube(f.mx.data(), DType::f16, 1, 2, 5); }, E::invalid_argument,
       "mmXOptional"},
      {"MmWeightRank", [](Fixture& f) { f.t.mm_weight = ConstTensorView::cube(f.mw.data(), DType::f16, 1, 5, 6); },
       E::invalid_argument, "mmWeightOptional"},
      {"MmYRank", [](Fixture& f) { f.t.mm_y = TensorView::cube(f.my.data(), DType::f16, 1, 2, 6); }, E::invalid_argument,
       "mmYOptional"},
      {"GmmWeightDtype", [](Fixture& f) { f.t.gmm_weight.dtype = DType::bf16; }, E::invalid_argument, "gmmWeight"},
      {"YDtype", [](Fixture& f) { f.t.y.dtype = DType::bf16; }, E::invalid_argument, "y"},
      {"MmXDtype", [](Fixture& f) { f.t.mm_x->dtype = DType::bf16; }, E::invalid_argument, "mmXOptional"},
      {"MmWeightDtype", [](Fixture& f) { f.t.mm_weight->dtype = DType::bf16; }, E::invalid_argument, "mmWeightOptional"},
      {"MmYDtype", [](Fixture& f) { f.t.mm_y->dtype = DType::bf16; }, E::invalid_argument, "mmYOptional"},
      {"GmmXDtype", [](Fixture& f) { f.t.gmm_x.dtype = DType::bf16; }, E::invalid_argument, "gmmX"},
      {"GmmXCols", [](Fixture& f) { f.t.gmm_x.dims[1] = 3; }, E::invalid_argument, "gmmX"},
      {"GmmXRows", [](Fixture& f) { f.t.gmm_x.dims[0] = 4; }, E::invalid_argument, "gmmX"},
      {"GmmWeightExperts", [](Fixture& f) { f.t.gmm_weight.dims[0] = 1; }, E::invalid_argument, "gmmWeight"},
      {"YCols", [](Fixture& f) { f.t.y.dims[1] = 2; }, E::invalid_argument, "y"},
      {"YRows", [](Fixture& f) { f.t.y.dims[0] = 4; }, E::invalid_argument, "y"},
      {"MmXCols", [](Fixture& f) { f.t.mm_x->dims[1] = 4; }, E::invalid_argument, "mmXOptional"},
      {"MmWeightShape", [](Fixture& f) { f.t.mm_weight->dims[1] = 5; }, E::invalid_argument, "mmWeightOptional"},
      {"MmYShape", [](Fixture& f) { f.t.mm_y->dims[0] = 1; }, E::invalid_argument, "mmYOptional"},
      {"GmmXStrides",
       [](Fixture& f) {
         f.t.gmm_x.strides[0] = 8;
         f.t.gmm_x.strides[1] = 1;
       },
       E::invalid_argument, "gmmX"},
      {"YStrides",
       [](Fixture& f) {
         f.t.y.strides[0] = 1;
         f.t.y.strides[1] = 5;
       },
       E::invalid_argument, "y"},
      {"YOverlapsGmmX", [](Fixture& f) { f.t.y.data = f.x.data() + 2; }, E::invalid_argument, "y"},
      {"YOverlapsGmmWeight", [](Fixture& f) { f.t.y.data = f.w.data() + 8; }, E::invalid_argument, "y"},
      {"MmYOverlapsMmX", [](Fixture& f) { f.t.mm_y->data = f.mx.data(); }, E::invalid_argument, "mmYOptional"},
      {"MmYOverlapsY", [](Fixture& f) { f.t.mm_y->data = f.y.data() + 3; }, E::invalid_argument, "mmYOptional"},
  };
}

INSTANTIATE_TEST_SUITE_P(All, TensorRules, ::testing::ValuesIn(tensor_rules()),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(PlanValidation, CommunicatorSizeMustMatchPlan) {
  Fixture f;
  auto comms = gmmav::create_in_process_group(2);
  expect_error([&] { gmmav::run(gmmav::Plan::create(f.d), comms[0], f.t); }, Errc::invalid_argument, "epWorldSize");
  EXPECT_TRUE(f.untouched());
}

TEST(PlanValidation, ContiguousExplicitStridesAccepted) {
  Fixture f;
  f.t.gmm_x.strides[0] = 4;
  f.t.gmm_x.strides[1] = 1;
  EXPECT_NO_THROW(f.run());
}

}  // namespace

// ---- issue 16: misuse must end in a clear gmmav::Error ----
namespace {

// Out-of-range arguments of Plan's accessors: gmmav::Error naming the
// argument and its valid range, not std::out_of_range.
TEST(PlanAccessors, OutOfRangeArgumentsAreErrors) {
  Fixture f;  // W = 1, e = 2
  const gmmav::Plan plan = gmmav::Plan::create(f.d);
  expect_error([&] { (void)plan.group_rows(5); }, Errc::invalid_argument, "j");
  expect_error([&] { (void)plan.group_rows(-1); }, Errc::invalid_argument, "j");
  expect_error([&] { (void)plan.rows_to(7); }, Errc::invalid_argument, "d");
  expect_error([&] { (void)plan.rows_from(-1); }, Errc::invalid_argument, "s");
  expect_error([&] { (void)plan.send_block_offset(-1, 0); }, Errc::invalid_argument, "j");
  expect_error([&] { (void)plan.send_block_offset(0, 1); }, Errc::invalid_argument, "d");
  expect_error([&] { (void)plan.send_block_rows(2, 0); }, Errc::invalid_argument, "j");
  expect_error([&] { (void)plan.recv_block_offset(1, 0); }, Errc::invalid_argument, "s");
  expect_error([&] { (void)plan.recv_block_rows(0, 2); }, Errc::invalid_argument, "j");
  try {
    (void)plan.group_rows(5);
  } catch (const gmmav::Error& e) {
    EXPECT_NE(std::string(e.what()).find("[0, 2)"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("got 5"), std::string::npos) << e.what();
  }
  EXPECT_EQ(plan.group_rows(1), 2);
}

// e * H1 * N1 (the weight's elements) and 2 * A * H1 * N1 (flops) must fit,
// as the shared expert's H2 * N2 already must: with H1 = N1 = 2^32 the
// weight's byte range wrapped (y could alias it) and flops() overflowed to 0.
TEST(PlanValidation, WeightElementsOverflow) {
  Fixture f;
  f.d.shared.reset();
  f.d.h1 = f.d.n1 = std::int64_t{1} << 32;
  expect_error([&] { gmmav::Plan::create(f.d); }, Errc::invalid_argument, "gmmWeight");
}
TEST(PlanValidation, FlopsOverflow) {
  Fixture f;
  f.d.shared.reset();
  f.d.send_counts = {std::int64_t{1} << 21, 0};
  f.d.h1 = f.d.n1 = std::int64_t{1} << 21;  // weight 2^43 elements: fits; 2 * A * H1 * N1 = 2^64: does not
  expect_error([&] { gmmav::Plan::create(f.d); }, Errc::invalid_argument, "sendCounts");
}
TEST(PlanValidation, SharedExpertFlopsOverflow) {
  Fixture f;
  f.d.shared = gmmav::SharedExpertDesc{std::int64_t{1} << 21, std::int64_t{1} << 21, std::int64_t{1} << 21, false};
  expect_error([&] { gmmav::Plan::create(f.d); }, Errc::invalid_argument, "mmXOptional");
}

// A count list whose sum overflows int64 (each count valid) is refused naming the
// list, the overflow and the counts (issue 29: the CLI showed a wrapped, negative sum).
TEST(PlanValidation, CountSumOverflowMessage) {
  for (const char* list : {"sendCounts", "recvCounts"}) {
    SCOPED_TRACE(list);
    Fixture f;
    auto& counts = std::string(list) == "sendCounts" ? f.d.send_counts : f.d.recv_counts;
    counts = {std::int64_t{1} << 62, std::int64_t{1} << 62};
    expect_error([&] { gmmav::Plan::create(f.d); }, Errc::invalid_argument, list);
    try {
      gmmav::Plan::create(f.d);
    } catch (const gmmav::Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("sum overflows int64"), std::string::npos) << what;
      EXPECT_NE(what.find("count [1] = 4611686018427387904"), std::string::npos) << what;
      EXPECT_EQ(what.find("-9223372036854775"), std::string::npos) << what;
    }
  }
}
// An invalid DType value prints as invalid, with its number, and is refused.
TEST(PlanValidation, InvalidDTypeRefused) {
  const auto bad = static_cast<DType>(7);
  EXPECT_STRNE(gmmav::to_string(bad), "bfloat16");
  EXPECT_STRNE(gmmav::to_string(bad), "float16");
  Fixture f;
  f.d.dtype = bad;
  expect_error([&] { gmmav::Plan::create(f.d); }, Errc::invalid_argument, "gmmX");
  try {
    gmmav::Plan::create(f.d);
  } catch (const gmmav::Error& e) {
    EXPECT_NE(std::string(e.what()).find("7"), std::string::npos) << e.what();
  }
  Fixture g;
  g.t.y.dtype = bad;
  expect_error([&] { g.run(); }, Errc::invalid_argument, "y");
  try {
    g.run();
  } catch (const gmmav::Error& e) {
    EXPECT_EQ(std::string(e.what()).find("bfloat16"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("7"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(g.untouched());
}

}  // namespace
