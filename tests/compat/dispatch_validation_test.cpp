// Every 161001 / 161002 rule of the dispatch op's aclnn entry points
// (docs/dispatch-op.md §5) and the commMode rule of both operators' V2 entry
// points, one case each: the status, a recent-error message naming the
// parameter, no executor handed out and no output written.
#include <gtest/gtest.h>

#include <functional>
#include <memory>

#include "aclnnop/aclnn_allto_allv_grouped_mat_mul_v2.h"
#include "aclnnop/aclnn_grouped_mat_mul_allto_allv_v2.h"
#include "call_pieces.hpp"

extern "C" int compat_c_null_calls(void);  // c_callers.c

namespace {

using namespace compat_test;

constexpr std::uint16_t kSentinel = 0x7E01;

enum class Entry { dispatch, dispatch_v2, combine_v2 };

// A valid dispatch call for rank 0 of the W = 2 group (CallArgs: BSK = 16 rows sent, A = 16
// received, permuteOut written), whose pieces a case may replace. As a combine call
// (combine_v2) gmmX has A rows and y BSK: with these counts the shapes are the same.
struct Call : CallArgs {
  DeviceBuffer x{kBSK * kH1, 0x3C00}, w{kE * kH1 * kN1, 0x3C00}, y{kA * kN1, kSentinel}, p{kA * kH1, kSentinel};
  DeviceBuffer mx{kBS * kH2, 0x3C00}, mw{kH2 * kN2, 0x3C00}, my{kBS * kN2, kSentinel};

  Entry entry = Entry::dispatch;
  aclTensor* gmm_x = make({{kBSK, kH1}}, x.get());
  aclTensor* gmm_weight = make({{kE, kH1, kN1}}, w.get());
  aclTensor* mm_x = make({{kBS, kH2}}, mx.get());
  aclTensor* mm_weight = make({{kH2, kN2}}, mw.get());
  const char* comm_mode = "aiv";
  bool permute_out_flag = true;
  aclTensor* gmm_y = make({{kA, kN1}}, y.get());
  aclTensor* mm_y = make({{kBS, kN2}}, my.get());
  aclTensor* permute_out = make({{kA, kH1}}, p.get());

  void no_shared_expert() { mm_x = mm_weight = mm_y = nullptr; }

  int run() {
    switch (entry) {
      case Entry::dispatch:
        return aclnnAlltoAllvGroupedMatMulGetWorkspaceSize(
            gmm_x, gmm_weight, send_tensor, recv_tensor, mm_x, mm_weight, group, ep_world_size, send_counts, recv_counts,
            trans_gmm_weight, trans_mm_weight, permute_out_flag, gmm_y, mm_y, permute_out, workspace_size_out, executor_out);
      case Entry::dispatch_v2:
        return aclnnAlltoAllvGroupedMatMulV2GetWorkspaceSize(gmm_x, gmm_weight, send_tensor, recv_tensor, mm_x, mm_weight, group,
                                                             comm_mode, ep_world_size, send_counts, recv_counts, trans_gmm_weight,
                                                             trans_mm_weight, permute_out_flag, gmm_y, mm_y, permute_out,
                                                             workspace_size_out, executor_out);
      case Entry::combine_v2:
        return aclnnGroupedMatMulAlltoAllvV2GetWorkspaceSize(gmm_x, gmm_weight, send_tensor, recv_tensor, mm_x, mm_weight, group,
                                                             comm_mode, ep_world_size, send_counts, recv_counts, trans_gmm_weight,
                                                             trans_mm_weight, gmm_y, mm_y, workspace_size_out, executor_out);
    }
    return -1;
  }
  const char* entry_name() const {
    return entry == Entry::dispatch      ? "aclnnAlltoAllvGroupedMatMulGetWorkspaceSize"
           : entry == Entry::dispatch_v2 ? "aclnnAlltoAllvGroupedMatMulV2GetWorkspaceSize"
                                         : "aclnnGroupedMatMulAlltoAllvV2GetWorkspaceSize";
  }
};

struct Case {
  const char* name;
  int status;
  const char* param;  // must appear in the message
  std::function<void(Call&)> mutate;
  bool strict_a3 = false;
  int device = 0;  // the calling thread's device
  Entry entry = Entry::dispatch;
};

constexpr int kNull = ACLNN_ERR_PARAM_NULLPTR, kInvalid = ACLNN_ERR_PARAM_INVALID;

const Case kCases[] = {
    // ---- 161001 ----
    {"NullGmmX", kNull, "gmmX", [](Call& c) { c.gmm_x = nullptr; }},
    {"NullGmmWeight", kNull, "gmmWeight", [](Call& c) { c.gmm_weight = nullptr; }},
    {"NullGmmY", kNull, "gmmY", [](Call& c) { c.gmm_y = nullptr; }},
    {"NullGroup", kNull, "group", [](Call& c) { c.group = nullptr; }},
    {"NullSendCounts", kNull, "sendCounts", [](Call& c) { c.send_counts = nullptr; }},
    {"NullRecvCounts", kNull, "recvCounts", [](Call& c) { c.recv_counts = nullptr; }},
    {"NullWorkspaceSize", kNull, "workspaceSize", [](Call& c) { c.workspace_size_out = nullptr; }},
    {"NullExecutor", kNull, "executor", [](Call& c) { c.executor_out = nullptr; }},
    {"OnlyMmXGiven", kNull, "mmWeightOptional", [](Call& c) { c.mm_weight = c.mm_y = nullptr; }},
    {"MmXMissing", kNull, "mmXOptional", [](Call& c) { c.mm_x = nullptr; }},
    {"MmYMissing", kNull, "mmYOptional", [](Call& c) { c.mm_y = nullptr; }},
    {"SendCountsTensorGiven", kNull, "sendCountsTensorOptional",
     [](Call& c) {
       c.send_tensor = c.make({{4}, ACL_INT64}, c.x.get());
     }},
    {"RecvCountsTensorGiven", kNull, "recvCountsTensorOptional",
     [](Call& c) {
       c.recv_tensor = c.make({{4}, ACL_INT64}, c.x.get());
     }},
    {"GroupEmpty", kNull, "group", [](Call& c) { c.group = ""; }},
    {"PermuteOutFlagWithoutTensor", kNull, "permuteOutOptional", [](Call& c) { c.permute_out = nullptr; }},
    {"PermuteOutTensorWithoutFlag", kNull, "permuteOutOptional", [](Call& c) { c.permute_out_flag = false; }},
    {"NullDataPointer", kNull, "gmmX",
     [](Call& c) {
       c.gmm_x = c.make({{Call::kBSK, Call::kH1}}, nullptr);
     }},
    // ---- 161002: the C interface ----
    {"GroupTooLong", kInvalid, "group",
     [](Call& c) {
       c.group_storage = std::string(128, 'g');
       c.group = c.group_storage.c_str();
     }},
    {"GroupUnknown", kInvalid, "group", [](Call& c) { c.group = "no-such-group"; }},
    {"GroupNotOnCurrentDevice", kInvalid, "group", [](Call&) {}, false, /*device=*/5},
    {"GroupSizeNotEpWorldSize", kInvalid, "epWorldSize", [](Call& c) { c.ep_world_size = 4; }},
    {"EpWorldSizeZero", kInvalid, "epWorldSize", [](Call& c) { c.ep_world_size = 0; }},
    {"GmmXDtypeNotHalf", kInvalid, "gmmX",
     [](Call& c) {
       c.gmm_x = c.make({{Call::kBSK, Call::kH1}, ACL_FLOAT}, c.x.get());
     }},
    {"GmmWeightDtypeDiffers", kInvalid, "gmmWeight",
     [](Call& c) {
       c.gmm_weight = c.make({{Call::kE, Call::kH1, Call::kN1}, ACL_BF16}, c.w.get());
     }},
    {"GmmYDtypeDiffers", kInvalid, "gmmY",
     [](Call& c) {
       c.gmm_y = c.make({{Call::kA, Call::kN1}, ACL_BF16}, c.y.get());
     }},
    {"PermuteOutDtypeDiffers", kInvalid, "permuteOutOptional",
     [](Call& c) {
       c.permute_out = c.make({{Call::kA, Call::kH1}, ACL_BF16}, c.p.get());
     }},
    {"MmYDtypeDiffers", kInvalid, "mmYOptional",
     [](Call& c) {
       c.mm_y = c.make({{Call::kBS, Call::kN2}, ACL_BF16}, c.my.get());
     }},
    {"PermuteOutFormatNotND", kInvalid, "permuteOutOptional",
     [](Call& c) {
       c.permute_out = c.make({{Call::kA, Call::kH1}, ACL_FLOAT16, std::nullopt, 0, ACL_FORMAT_FRACTAL_NZ}, c.p.get());
     }},
    {"GmmXNot2D", kInvalid, "gmmX",
     [](Call& c) {
       c.gmm_x = c.make({{1, Call::kBSK, Call::kH1}}, c.x.get());
     }},
    {"GmmWeightNot3D", kInvalid, "gmmWeight",
     [](Call& c) {
       c.gmm_weight = c.make({{Call::kE * Call::kH1, Call::kN1}}, c.w.get());
     }},
    {"GmmYNot2D", kInvalid, "gmmY", [](Call& c) { c.gmm_y = c.make({{Call::kA * Call::kN1}}, c.y.get()); }},
    {"PermuteOutNot2D", kInvalid, "permuteOutOptional",
     [](Call& c) { c.permute_out = c.make({{Call::kA * Call::kH1}}, c.p.get()); }},
    {"PermuteOutNonContiguous", kInvalid, "permuteOutOptional",
     [](Call& c) {
       c.permute_out = c.make({{Call::kA, Call::kH1}, ACL_FLOAT16, std::vector<std::int64_t>{1, Call::kA}}, c.p.get());
     }},
    // ---- 161002: shapes against the counts ----
    {"GmmXRowsNotSumSendCounts", kInvalid, "gmmX",
     [](Call& c) {
       c.gmm_x = c.make({{Call::kBSK - 1, Call::kH1}}, c.x.get());
     }},
    {"GmmXColsNotH1", kInvalid, "gmmX",
     [](Call& c) {
       c.gmm_x = c.make({{Call::kBSK, Call::kH1 - 1}}, c.x.get());
     }},
    {"GmmYRowsNotSumRecvCounts", kInvalid, "gmmY",
     [](Call& c) {
       c.gmm_y = c.make({{Call::kA - 1, Call::kN1}}, c.y.get());
     }},
    {"GmmYColsNotN1", kInvalid, "gmmY",
     [](Call& c) {
       c.gmm_y = c.make({{Call::kA, Call::kN1 - 1}}, c.y.get());
     }},
    {"PermuteOutRowsNotA", kInvalid, "permuteOutOptional",
     [](Call& c) {
       c.permute_out = c.make({{Call::kA - 1, Call::kH1}}, c.p.get());
     }},
    {"PermuteOutColsNotH1", kInvalid, "permuteOutOptional",
     [](Call& c) {
       c.permute_out = c.make({{Call::kA, Call::kH1 - 1}}, c.p.get());
     }},
    {"MmYShapeNotBsN2", kInvalid, "mmYOptional",
     [](Call& c) {
       c.mm_y = c.make({{Call::kBS, Call::kN2 - 1}}, c.my.get());
     }},
    // ---- 161002: count lists ----
    {"CountsLengthNotEW", kInvalid, "sendCounts",
     [](Call& c) {
       c.send_counts = c.counts({8, 8});
     }},
    {"CountNegative", kInvalid, "recvCounts",
     [](Call& c) {
       c.recv_counts = c.counts({5, 4, 4, -1});
     }},
    // ---- 161002: the shared expert's K = BSK / BS (BSK: the rows this rank sends) ----
    {"BskNotMultipleOfBs", kInvalid, "mmXOptional",
     [](Call& c) {
       c.mm_x = c.make({{3, Call::kH2}}, c.mx.get());
       c.mm_y = c.make({{3, Call::kN2}}, c.my.get());
     }},
    {"KBelow2", kInvalid, "mmXOptional",
     [](Call& c) {
       c.mm_x = c.make({{Call::kBSK, Call::kH2}}, c.mx.get());
       c.mm_y = c.make({{Call::kBSK, Call::kN2}}, c.my.get());
     }},
    {"TransMmWeightWithoutSharedExpert", kInvalid, "transMmWeight",
     [](Call& c) {
       c.no_shared_expert();
       c.trans_mm_weight = true;
     }},
    // ---- 161002: overlaps ----
    {"GmmYOverlapsGmmX", kInvalid, "gmmY",
     [](Call& c) {
       c.gmm_y = c.make({{Call::kA, Call::kN1}}, c.x.get());
     }},
    {"PermuteOutOverlapsGmmY", kInvalid, "permuteOutOptional",
     [](Call& c) {
       c.permute_out = c.make({{Call::kA, Call::kH1}}, c.y.get());
     }},
    // ---- 161002 only with GMMAV_STRICT_A3=1 ----
    {"StrictA3WorldSize", kInvalid, "epWorldSize", [](Call&) {}, true},
    {"StrictA3BlockVolume", kInvalid, "sendCounts",
     [](Call& c) {  // the W = 8 group: 1 row per rank block, 16 * 2 bytes < 2 MiB
       c.group_storage = Groups::get().name8;
       c.group = c.group_storage.c_str();
       c.ep_world_size = 8;
       c.send_counts = c.counts(counts_summing_to(Call::kBSK, 16));
       c.recv_counts = c.counts(counts_summing_to(Call::kA, 16));
     },
     true, /*device=*/8},
    // ---- V2: commMode, after the 161001 rules of the rest ----
    {"V2CommModeNull", kNull, "commMode", [](Call& c) { c.comm_mode = nullptr; }, false, 0, Entry::dispatch_v2},
    {"V2CommModeUnknown", kInvalid, "commMode", [](Call& c) { c.comm_mode = "hccs"; }, false, 0, Entry::dispatch_v2},
    {"V2CommModeEmpty", kInvalid, "commMode", [](Call& c) { c.comm_mode = ""; }, false, 0, Entry::dispatch_v2},
    {"V2CommModeCaseMatters", kInvalid, "commMode", [](Call& c) { c.comm_mode = "AIV"; }, false, 0, Entry::dispatch_v2},
    {"V2NullGmmXBeforeCommMode", kNull, "gmmX",
     [](Call& c) {
       c.gmm_x = nullptr;
       c.comm_mode = "hccs";
     },
     false, 0, Entry::dispatch_v2},
    {"V2PermuteOutRuleStillApplies", kNull, "permuteOutOptional", [](Call& c) { c.permute_out_flag = false; }, false, 0,
     Entry::dispatch_v2},
    {"CombineV2CommModeNull", kNull, "commMode", [](Call& c) { c.comm_mode = nullptr; }, false, 0, Entry::combine_v2},
    {"CombineV2CommModeUnknown", kInvalid, "commMode", [](Call& c) { c.comm_mode = "hccs"; }, false, 0, Entry::combine_v2},
    {"CombineV2CommModeTrailingSpace", kInvalid, "commMode", [](Call& c) { c.comm_mode = "ccu "; }, false, 0, Entry::combine_v2},
    // The combine op keeps its own codes under V2: a count tensor is 161002 there.
    {"CombineV2SendCountsTensorGiven", kInvalid, "sendCountsTensorOptional",
     [](Call& c) {
       c.send_tensor = c.make({{4}, ACL_INT64}, c.x.get());
     },
     false, 0, Entry::combine_v2},
    {"CombineV2GroupEmpty", kInvalid, "group", [](Call& c) { c.group = ""; }, false, 0, Entry::combine_v2},
    {"CombineV2YRowsWrong", kInvalid, "y",
     [](Call& c) {
       c.gmm_y = c.make({{Call::kA - 1, Call::kN1}}, c.y.get());
     },
     false, 0, Entry::combine_v2},
};

class DispatchValidation : public ::testing::TestWithParam<Case> {};

TEST_P(DispatchValidation, RejectedWithCodeAndMessage) {
  const Case& k = GetParam();
  ScopedEnv strict("GMMAV_STRICT_A3", k.strict_a3 ? std::optional<std::string>("1") : std::nullopt);
  (void)Groups::get();
  ASSERT_EQ(aclrtSetDevice(k.device), ACL_SUCCESS);
  Call c;
  c.entry = k.entry;
  if (k.entry == Entry::combine_v2) c.permute_out = nullptr;  // not a parameter of the combine op
  k.mutate(c);
  expect_rejected(c, k.status, std::string(k.param) + ":", c.entry_name());
  EXPECT_TRUE(c.y.all_equal(kSentinel));
  EXPECT_TRUE(c.my.all_equal(kSentinel));
  EXPECT_TRUE(c.p.all_equal(kSentinel));
}

INSTANTIATE_TEST_SUITE_P(Compat, DispatchValidation, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return info.param.name; });

// The baseline of every case above is valid (each case fails for its own reason), for
// every entry point and every accepted commMode; without permuteOut the dispatch op needs
// a workspace for the received rows (A x H1).
TEST(DispatchValidationBaseline, ValidCallsSucceed) {
  (void)Groups::get();
  ASSERT_EQ(aclrtSetDevice(0), ACL_SUCCESS);
  for (Entry entry : {Entry::dispatch, Entry::dispatch_v2, Entry::combine_v2})
    for (const char* mode : {"aiv", "ai_cpu", "ccu"}) {
      SCOPED_TRACE(std::string(mode) + " " + std::to_string(static_cast<int>(entry)));
      Call c;
      c.entry = entry;
      c.comm_mode = mode;
      if (entry == Entry::combine_v2) c.permute_out = nullptr;
      ASSERT_EQ(c.run(), ACLNN_SUCCESS) << recent_error();
      EXPECT_EQ(c.workspace_size, 0u) << "in-process ranks need no workspace when permuteOut holds the rows";
      ASSERT_NE(c.executor, nullptr);
      EXPECT_EQ(aclDestroyAclOpExecutor(c.executor), ACLNN_SUCCESS);
    }
  // The A3 envelope accepts a dispatch call it should (W = 8, 2 MiB per rank block of H1-wide rows).
  for (bool strict : {false, true}) {
    ScopedEnv env("GMMAV_STRICT_A3", strict ? std::optional<std::string>("1") : std::nullopt);
    ASSERT_EQ(aclrtSetDevice(8), ACL_SUCCESS);
    Call c;
    const std::int64_t rows = 128 * 8, h1 = 8192;
    DeviceBuffer x(static_cast<std::size_t>(rows * h1)), w(static_cast<std::size_t>(2 * h1 * 8)),
        y(static_cast<std::size_t>(rows * 8)), p(static_cast<std::size_t>(rows * h1));
    c.gmm_x = c.make({{rows, h1}}, x.get());
    c.gmm_weight = c.make({{2, h1, 8}}, w.get());
    c.gmm_y = c.make({{rows, 8}}, y.get());
    c.permute_out = c.make({{rows, h1}}, p.get());
    c.no_shared_expert();
    c.on_w8_group(64);
    ASSERT_EQ(c.run(), ACLNN_SUCCESS) << "strict " << strict << ": " << recent_error();
    EXPECT_EQ(aclDestroyAclOpExecutor(c.executor), ACLNN_SUCCESS);
  }
  ASSERT_EQ(aclrtSetDevice(0), ACL_SUCCESS);
  Call c;
  c.permute_out = nullptr;
  c.permute_out_flag = false;
  c.no_shared_expert();
  ASSERT_EQ(c.run(), ACLNN_SUCCESS) << recent_error();
  EXPECT_GE(c.workspace_size, static_cast<std::uint64_t>(Call::kA * Call::kH1 * 2)) << "room for the received rows";
  EXPECT_EQ(aclDestroyAclOpExecutor(c.executor), ACLNN_SUCCESS);
}

// Phase 2 takes only an executor of its own operator (V1 and V2 executors of one
// operator are interchangeable); a refused executor stays live.
TEST(DispatchValidationExecute, ExecutorOfTheOtherOperatorRefused) {
  (void)Groups::get();
  ASSERT_EQ(aclrtSetDevice(0), ACL_SUCCESS);
  aclrtStream stream = nullptr;
  ASSERT_EQ(aclrtCreateStream(&stream), ACL_SUCCESS);
  EXPECT_EQ(aclnnAlltoAllvGroupedMatMul(nullptr, 0, nullptr, stream), ACLNN_ERR_PARAM_NULLPTR);
  EXPECT_NE(recent_error().find("executor: expected an executor from aclnnAlltoAllvGroupedMatMulGetWorkspaceSize"),
            std::string::npos);
  EXPECT_EQ(aclnnAlltoAllvGroupedMatMulV2(nullptr, 0, nullptr, stream), ACLNN_ERR_PARAM_NULLPTR);
  EXPECT_EQ(aclnnGroupedMatMulAlltoAllvV2(nullptr, 0, nullptr, stream), ACLNN_ERR_PARAM_NULLPTR);

  Call dispatch;
  ASSERT_EQ(dispatch.run(), ACLNN_SUCCESS) << recent_error();
  Call combine;
  combine.entry = Entry::combine_v2;
  combine.permute_out = nullptr;
  ASSERT_EQ(combine.run(), ACLNN_SUCCESS) << recent_error();

  (void)recent_error();
  EXPECT_EQ(aclnnGroupedMatMulAlltoAllv(nullptr, 0, dispatch.executor, stream), ACLNN_ERR_PARAM_INVALID);
  std::string msg = recent_error();
  EXPECT_NE(msg.find("executor: expected an executor of the combine"), std::string::npos) << msg;
  EXPECT_NE(msg.find("got one of the dispatch"), std::string::npos) << msg;
  EXPECT_EQ(aclnnGroupedMatMulAlltoAllvV2(nullptr, 0, dispatch.executor, stream), ACLNN_ERR_PARAM_INVALID);
  EXPECT_EQ(aclnnAlltoAllvGroupedMatMul(nullptr, 0, combine.executor, stream), ACLNN_ERR_PARAM_INVALID);
  msg = recent_error();
  EXPECT_NE(msg.find("executor: expected an executor of the dispatch"), std::string::npos) << msg;
  EXPECT_EQ(aclnnAlltoAllvGroupedMatMulV2(nullptr, 0, combine.executor, stream), ACLNN_ERR_PARAM_INVALID);
  // Still live: destroyable once.
  EXPECT_EQ(aclDestroyAclOpExecutor(dispatch.executor), ACLNN_SUCCESS);
  EXPECT_EQ(aclDestroyAclOpExecutor(combine.executor), ACLNN_SUCCESS);
  EXPECT_EQ(aclDestroyAclOpExecutor(combine.executor), ACLNN_ERR_PARAM_INVALID);
  EXPECT_TRUE(dispatch.y.all_equal(kSentinel));
  EXPECT_TRUE(dispatch.p.all_equal(kSentinel));
  EXPECT_EQ(aclrtDestroyStream(stream), ACL_SUCCESS);
}

TEST(DispatchValidationFromC, NullCallsReturn161001) { EXPECT_EQ(compat_c_null_calls(), 4 * ACLNN_ERR_PARAM_NULLPTR); }

}  // namespace
