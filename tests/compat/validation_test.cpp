// Every 161001 / 161002 rule of docs/spec.md §5 through the aclnn entry point, one
// case each: the status, a recent-error message naming the parameter, no
// executor handed out and y / mmY untouched.
#include <gtest/gtest.h>

#include <functional>
#include <memory>

#include "call_pieces.hpp"

namespace {

using namespace compat_test;

constexpr std::uint16_t kSentinel = 0x7E00;

// A valid combine call for rank 0 of the W = 2 group (CallArgs), whose pieces a case may replace.
struct Call : CallArgs {
  DeviceBuffer x{kA * kH1, 0x3C00}, w{kE * kH1 * kN1, 0x3C00}, y{kBSK * kN1, kSentinel};
  DeviceBuffer mx{kBS * kH2, 0x3C00}, mw{kH2 * kN2, 0x3C00}, my{kBS * kN2, kSentinel};

  aclTensor* gmm_x = make({{kA, kH1}}, x.get());
  aclTensor* gmm_weight = make({{kE, kH1, kN1}}, w.get());
  aclTensor* mm_x = make({{kBS, kH2}}, mx.get());
  aclTensor* mm_weight = make({{kH2, kN2}}, mw.get());
  aclTensor* y_t = make({{kBSK, kN1}}, y.get());
  aclTensor* mm_y = make({{kBS, kN2}}, my.get());

  void no_shared_expert() { mm_x = mm_weight = mm_y = nullptr; }

  int run() {
    return aclnnGroupedMatMulAlltoAllvGetWorkspaceSize(gmm_x, gmm_weight, send_tensor, recv_tensor, mm_x, mm_weight, group,
                                                       ep_world_size, send_counts, recv_counts, trans_gmm_weight, trans_mm_weight,
                                                       y_t, mm_y, workspace_size_out, executor_out);
  }
};

struct Case {
  const char* name;
  int status;
  const char* param;  // must appear in the message
  std::function<void(Call&)> mutate;
  bool strict_a3 = false;
  int device = 0;  // the calling thread's device
};

const Case kCases[] = {
    // ---- 161001 ----
    {"NullGmmX", ACLNN_ERR_PARAM_NULLPTR, "gmmX", [](Call& c) { c.gmm_x = nullptr; }},
    {"NullGmmWeight", ACLNN_ERR_PARAM_NULLPTR, "gmmWeight", [](Call& c) { c.gmm_weight = nullptr; }},
    {"NullY", ACLNN_ERR_PARAM_NULLPTR, "y", [](Call& c) { c.y_t = nullptr; }},
    {"NullGroup", ACLNN_ERR_PARAM_NULLPTR, "group", [](Call& c) { c.group = nullptr; }},
    {"NullSendCounts", ACLNN_ERR_PARAM_NULLPTR, "sendCounts", [](Call& c) { c.send_counts = nullptr; }},
    {"NullRecvCounts", ACLNN_ERR_PARAM_NULLPTR, "recvCounts", [](Call& c) { c.recv_counts = nullptr; }},
    {"NullWorkspaceSize", ACLNN_ERR_PARAM_NULLPTR, "workspaceSize", [](Call& c) { c.workspace_size_out = nullptr; }},
    {"NullExecutor", ACLNN_ERR_PARAM_NULLPTR, "executor", [](Call& c) { c.executor_out = nullptr; }},
    {"OnlyMmXGiven", ACLNN_ERR_PARAM_NULLPTR, "mmWeightOptional", [](Call& c) { c.mm_weight = c.mm_y = nullptr; }},
    {"MmWeightMissing", ACLNN_ERR_PARAM_NULLPTR, "mmWeightOptional", [](Call& c) { c.mm_weight = nullptr; }},
    {"MmYMissing", ACLNN_ERR_PARAM_NULLPTR, "mmYOptional", [](Call& c) { c.mm_y = nullptr; }},
    {"NullDataPointer", ACLNN_ERR_PARAM_NULLPTR, "gmmX",
     [](Call& c) {
       c.gmm_x = c.make({{Call::kA, Call::kH1}}, nullptr);
     }},
    // ---- 161002: what only the C interface can get wrong ----
    {"SendCountsTensorGiven", ACLNN_ERR_PARAM_INVALID, "sendCountsTensorOptional",
     [](Call& c) {
       c.send_tensor = c.make({{4}, ACL_INT64}, c.x.get());
     }},
    {"RecvCountsTensorGiven", ACLNN_ERR_PARAM_INVALID, "recvCountsTensorOptional",
     [](Call& c) {
       c.recv_tensor = c.make({{4}, ACL_INT64}, c.x.get());
     }},
    {"GroupEmpty", ACLNN_ERR_PARAM_INVALID, "group", [](Call& c) { c.group = ""; }},
    {"GroupTooLong", ACLNN_ERR_PARAM_INVALID, "group",
     [](Call& c) {
       c.group_storage = std::string(128, 'g');
       c.group = c.group_storage.c_str();
     }},
    {"GroupUnknown", ACLNN_ERR_PARAM_INVALID, "group", [](Call& c) { c.group = "no-such-group"; }},
    {"GroupNotOnCurrentDevice", ACLNN_ERR_PARAM_INVALID, "group", [](Call&) {}, false, /*device=*/5},
    {"GroupSizeNotEpWorldSize", ACLNN_ERR_PARAM_INVALID, "epWorldSize", [](Call& c) { c.ep_world_size = 4; }},
    {"EpWorldSizeZero", ACLNN_ERR_PARAM_INVALID, "epWorldSize", [](Call& c) { c.ep_world_size = 0; }},
    {"DtypeNotHalf", ACLNN_ERR_PARAM_INVALID, "gmmX",
     [](Call& c) {
       c.gmm_x = c.make({{Call::kA, Call::kH1}, ACL_FLOAT}, c.x.get());
     }},
    {"GmmWeightDtypeDiffers", ACLNN_ERR_PARAM_INVALID, "gmmWeight",
     [](Call& c) {
       c.gmm_weight = c.make({{Call::kE, Call::kH1, Call::kN1}, ACL_BF16}, c.w.get());
     }},
    {"YDtypeDiffers", ACLNN_ERR_PARAM_INVALID, "y",
     [](Call& c) {
       c.y_t = c.make({{Call::kBSK, Call::kN1}, ACL_BF16}, c.y.get());
     }},
    {"MmXDtypeDiffers", ACLNN_ERR_PARAM_INVALID, "mmXOptional",
     [](Call& c) {
       c.mm_x = c.make({{Call::kBS, Call::kH2}, ACL_BF16}, c.mx.get());
     }},
    {"MmWeightDtypeDiffers", ACLNN_ERR_PARAM_INVALID, "mmWeightOptional",
     [](Call& c) {
       c.mm_weight = c.make({{Call::kH2, Call::kN2}, ACL_BF16}, c.mw.get());
     }},
    {"MmYDtypeDiffers", ACLNN_ERR_PARAM_INVALID, "mmYOptional",
     [](Call& c) {
       c.mm_y = c.make({{Call::kBS, Call::kN2}, ACL_BF16}, c.my.get());
     }},
    {"FormatNotND", ACLNN_ERR_PARAM_INVALID, "gmmWeight",
     [](Call& c) {
       c.gmm_weight = c.make({{Call::kE, Call::kH1, Call::kN1}, ACL_FLOAT16, std::nullopt, 0, ACL_FORMAT_FRACTAL_NZ}, c.w.get());
     }},
    {"GmmXNot2D", ACLNN_ERR_PARAM_INVALID, "gmmX",
     [](Call& c) {
       c.gmm_x = c.make({{1, Call::kA, Call::kH1}}, c.x.get());
     }},
    {"GmmWeightNot3D", ACLNN_ERR_PARAM_INVALID, "gmmWeight",
     [](Call& c) {
       c.gmm_weight = c.make({{Call::kE * Call::kH1, Call::kN1}}, c.w.get());
     }},
    {"YNot2D", ACLNN_ERR_PARAM_INVALID, "y", [](Call& c) { c.y_t = c.make({{Call::kBSK * Call::kN1}}, c.y.get()); }},
    {"MmXNot2D", ACLNN_ERR_PARAM_INVALID, "mmXOptional",
     [](Call& c) {
       c.mm_x = c.make({{1, Call::kBS, Call::kH2}}, c.mx.get());
     }},
    {"MmWeightNot2D", ACLNN_ERR_PARAM_INVALID, "mmWeightOptional",
     [](Call& c) { c.mm_weight = c.make({{Call::kH2 * Call::kN2}}, c.mw.get()); }},
    {"MmYNot2D", ACLNN_ERR_PARAM_INVALID, "mmYOptional", [](Call& c) { c.mm_y = c.make({{Call::kBS * Call::kN2}}, c.my.get()); }},
    {"NonContiguousStrides", ACLNN_ERR_PARAM_INVALID, "gmmX",
     [](Call& c) {
       c.gmm_x = c.make({{Call::kA, Call::kH1}, ACL_FLOAT16, std::vector<std::int64_t>{1, Call::kA}}, c.x.get());
     }},
    {"BroadcastStridesZero", ACLNN_ERR_PARAM_INVALID, "gmmX",  // a broadcast view is not contiguous (issue 16)
     [](Call& c) {
       c.gmm_x = c.make({{Call::kA, Call::kH1}, ACL_FLOAT16, std::vector<std::int64_t>{0, 0}}, c.x.get());
     }},
    {"BroadcastRowStrideZero", ACLNN_ERR_PARAM_INVALID, "y",
     [](Call& c) {
       c.y_t = c.make({{Call::kBSK, Call::kN1}, ACL_FLOAT16, std::vector<std::int64_t>{0, 1}}, c.y.get());
     }},
    {"NonZeroViewOffset", ACLNN_ERR_PARAM_INVALID, "y",
     [](Call& c) {
       c.y_t = c.make({{Call::kBSK, Call::kN1}, ACL_FLOAT16, std::nullopt, 8}, c.y.get());
     }},
    // ---- 161002: shapes ----
    {"GmmXColsNotH1", ACLNN_ERR_PARAM_INVALID, "gmmX",
     [](Call& c) {
       c.gmm_x = c.make({{Call::kA, Call::kH1 - 1}}, c.x.get());
     }},
    {"YColsNotN1", ACLNN_ERR_PARAM_INVALID, "y",
     [](Call& c) {
       c.y_t = c.make({{Call::kBSK, Call::kN1 - 1}}, c.y.get());
     }},
    {"YRowsNotSumRecvCounts", ACLNN_ERR_PARAM_INVALID, "y",
     [](Call& c) {
       c.y_t = c.make({{Call::kBSK - 1, Call::kN1}}, c.y.get());
     }},
    {"GmmXRowsNotSumSendCounts", ACLNN_ERR_PARAM_INVALID, "gmmX",
     [](Call& c) {
       c.gmm_x = c.make({{Call::kA - 1, Call::kH1}}, c.x.get());
     }},
    {"MmXColsNotH2", ACLNN_ERR_PARAM_INVALID, "mmXOptional",
     [](Call& c) {
       c.mm_x = c.make({{Call::kBS, Call::kH2 - 1}}, c.mx.get());
     }},
    {"MmYShapeNotBsN2", ACLNN_ERR_PARAM_INVALID, "mmYOptional",
     [](Call& c) {
       c.mm_y = c.make({{Call::kBS, Call::kN2 - 1}}, c.my.get());
     }},
    // ---- 161002: count lists ----
    {"CountsLengthNotEW", ACLNN_ERR_PARAM_INVALID, "sendCounts",
     [](Call& c) {
       c.send_counts = c.counts({8, 8});
     }},
    {"CountsLongerThan256", ACLNN_ERR_PARAM_INVALID, "recvCounts",
     [](Call& c) { c.recv_counts = c.counts(counts_summing_to(Call::kBSK, 258)); }},
    {"CountNegative", ACLNN_ERR_PARAM_INVALID, "sendCounts",
     [](Call& c) {
       c.send_counts = c.counts({5, 4, 4, -1});
     }},
    // ---- 161002: hardware ranges ----
    {"MoreThan32Experts", ACLNN_ERR_PARAM_INVALID, "gmmWeight",
     [](Call& c) {
       c.gmm_weight = c.make({{33, Call::kH1, Call::kN1}}, c.w.get());
       c.send_counts = c.counts(counts_summing_to(Call::kA, 66));
       c.recv_counts = c.counts(counts_summing_to(Call::kBSK, 66));
     }},
    {"ExpertsTimesWorldOver256", ACLNN_ERR_PARAM_INVALID, "epWorldSize",
     [](Call& c) {  // e = 17 on the 16-rank group
       c.group_storage = Groups::get().name16;
       c.group = c.group_storage.c_str();
       c.ep_world_size = 16;
       c.gmm_weight = c.make({{17, Call::kH1, Call::kN1}}, c.w.get());
       c.send_counts = c.counts(counts_summing_to(Call::kA, 272));
       c.recv_counts = c.counts(counts_summing_to(Call::kBSK, 272));
     },
     false, /*device=*/16},
    {"H1Over65535", ACLNN_ERR_PARAM_INVALID, "gmmWeight",
     [](Call& c) {
       c.gmm_x = c.make({{Call::kA, 65536}}, c.x.get());
       c.gmm_weight = c.make({{Call::kE, 65536, Call::kN1}}, c.w.get());
     }},
    {"N1Over65535", ACLNN_ERR_PARAM_INVALID, "gmmWeight",
     [](Call& c) {
       c.gmm_weight = c.make({{Call::kE, Call::kH1, 65536}}, c.w.get());
       c.y_t = c.make({{Call::kBSK, 65536}}, c.y.get());
     }},
    {"BskZero", ACLNN_ERR_PARAM_INVALID, "recvCounts",
     [](Call& c) {
       c.no_shared_expert();
       c.recv_counts = c.counts({0, 0, 0, 0});
       c.y_t = c.make({{0, Call::kN1}}, c.y.get());
     }},
    {"BskOver52428799", ACLNN_ERR_PARAM_INVALID, "recvCounts",
     [](Call& c) {
       c.no_shared_expert();
       c.recv_counts = c.counts(counts_summing_to(52428800, 4));
       c.y_t = c.make({{52428800, Call::kN1}}, c.y.get());
     }},
    {"H2Over12288", ACLNN_ERR_PARAM_INVALID, "mmWeightOptional",
     [](Call& c) {
       c.mm_x = c.make({{Call::kBS, 12289}}, c.mx.get());
       c.mm_weight = c.make({{12289, Call::kN2}}, c.mw.get());
     }},
    {"N2Over65535", ACLNN_ERR_PARAM_INVALID, "mmWeightOptional",
     [](Call& c) {
       c.mm_weight = c.make({{Call::kH2, 65536}}, c.mw.get());
       c.mm_y = c.make({{Call::kBS, 65536}}, c.my.get());
     }},
    {"RecvCountsSumWrongWithSharedExpert", ACLNN_ERR_PARAM_INVALID, "recvCounts",  // y and mmX agree: recvCounts is wrong
     [](Call& c) {
       c.recv_counts = c.counts({4, 4, 4, 5});
     }},
    {"BskNotMultipleOfBs", ACLNN_ERR_PARAM_INVALID, "mmXOptional",
     [](Call& c) {
       c.mm_x = c.make({{3, Call::kH2}}, c.mx.get());
       c.mm_y = c.make({{3, Call::kN2}}, c.my.get());
     }},
    {"KBelow2", ACLNN_ERR_PARAM_INVALID, "mmXOptional",
     [](Call& c) {  // BS = BSK: K = 1
       c.mm_x = c.make({{Call::kBSK, Call::kH2}}, c.mx.get());
       c.mm_y = c.make({{Call::kBSK, Call::kN2}}, c.my.get());
     }},
    {"KAbove8", ACLNN_ERR_PARAM_INVALID, "mmXOptional",
     [](Call& c) {  // BS = 1: K = 16
       c.mm_x = c.make({{1, Call::kH2}}, c.mx.get());
       c.mm_y = c.make({{1, Call::kN2}}, c.my.get());
     }},
    {"TransMmWeightWithoutSharedExpert", ACLNN_ERR_PARAM_INVALID, "transMmWeight",
     [](Call& c) {
       c.no_shared_expert();
       c.trans_mm_weight = true;
     }},
    {"YOverlapsGmmX", ACLNN_ERR_PARAM_INVALID, "y",
     [](Call& c) {
       c.y_t = c.make({{Call::kBSK, Call::kN1}}, c.x.get());
     }},
    {"MmYOverlapsY", ACLNN_ERR_PARAM_INVALID, "mmYOptional",
     [](Call& c) {
       c.mm_y = c.make({{Call::kBS, Call::kN2}}, c.y.get());
     }},
    // ---- 161002 only with GMMAV_STRICT_A3=1 ----
    {"StrictA3WorldSize", ACLNN_ERR_PARAM_INVALID, "epWorldSize", [](Call&) {}, true},
    {"StrictA3BlockVolume", ACLNN_ERR_PARAM_INVALID, "sendCounts",
     [](Call& c) {  // the W = 8 group: 1 row per rank block, 16 * 2 bytes < 2 MiB
       c.group_storage = Groups::get().name8;
       c.group = c.group_storage.c_str();
       c.ep_world_size = 8;
       c.send_counts = c.counts(counts_summing_to(Call::kA, 16));
       c.recv_counts = c.counts(counts_summing_to(Call::kBSK, 16));
     },
     true, /*device=*/8},
};

class Validation : public ::testing::TestWithParam<Case> {};

TEST_P(Validation, RejectedWithCodeAndMessage) {
  const Case& k = GetParam();
  ScopedEnv strict("GMMAV_STRICT_A3", k.strict_a3 ? std::optional<std::string>("1") : std::nullopt);
  (void)Groups::get();
  ASSERT_EQ(aclrtSetDevice(k.device), ACL_SUCCESS);
  Call c;
  k.mutate(c);
  expect_rejected(c, k.status, k.param, "aclnnGroupedMatMulAlltoAllvGetWorkspaceSize");
  EXPECT_TRUE(c.y.all_equal(kSentinel));
  EXPECT_TRUE(c.my.all_equal(kSentinel));
}

INSTANTIATE_TEST_SUITE_P(Compat, Validation, ::testing::ValuesIn(kCases), [](const auto& info) { return info.param.name; });

// The baseline of every case above is valid (so each case fails for its own reason),
// also under GMMAV_STRICT_A3 for the W = 8 group with large enough blocks.
TEST(ValidationBaseline, ValidCallsSucceed) {
  (void)Groups::get();
  ASSERT_EQ(aclrtSetDevice(0), ACL_SUCCESS);
  {
    Call c;
    ASSERT_EQ(c.run(), ACLNN_SUCCESS) << recent_error();
    EXPECT_EQ(c.workspace_size, 0u) << "in-process ranks need no workspace";
    ASSERT_NE(c.executor, nullptr);
    EXPECT_EQ(aclDestroyAclOpExecutor(c.executor), ACLNN_SUCCESS);
  }
  for (bool strict : {false, true}) {
    ScopedEnv env("GMMAV_STRICT_A3", strict ? std::optional<std::string>("1") : std::nullopt);
    ASSERT_EQ(aclrtSetDevice(8), ACL_SUCCESS);
    // H1 = 8192 and 128 rows per rank block: 2 MiB exactly.
    Call c;
    const std::int64_t rows = 128 * 8, h1 = 8192;
    DeviceBuffer x(static_cast<std::size_t>(rows * h1)), w(static_cast<std::size_t>(2 * h1 * 8)),
        y(static_cast<std::size_t>(rows * 8));
    c.gmm_x = c.make({{rows, h1}}, x.get());
    c.gmm_weight = c.make({{2, h1, 8}}, w.get());
    c.y_t = c.make({{rows, 8}}, y.get());
    c.no_shared_expert();
    c.on_w8_group(64);
    ASSERT_EQ(c.run(), ACLNN_SUCCESS) << recent_error();
    EXPECT_EQ(aclDestroyAclOpExecutor(c.executor), ACLNN_SUCCESS);
  }
}

TEST(ValidationExecute, ExecutorChecks) {
  (void)Groups::get();
  ASSERT_EQ(aclrtSetDevice(0), ACL_SUCCESS);
  aclrtStream stream = nullptr;
  ASSERT_EQ(aclrtCreateStream(&stream), ACL_SUCCESS);
  EXPECT_EQ(aclnnGroupedMatMulAlltoAllv(nullptr, 0, nullptr, stream), ACLNN_ERR_PARAM_NULLPTR);
  EXPECT_NE(recent_error().find("executor"), std::string::npos);
  EXPECT_EQ(aclDestroyAclOpExecutor(nullptr), ACLNN_SUCCESS);

  Call c;
  ASSERT_EQ(c.run(), ACLNN_SUCCESS) << recent_error();
  // A stream that does not exist: rejected, and the executor is not consumed.
  int bogus = 0;
  EXPECT_EQ(aclnnGroupedMatMulAlltoAllv(nullptr, 0, c.executor, &bogus), ACLNN_ERR_PARAM_INVALID);
  EXPECT_NE(recent_error().find("stream"), std::string::npos);
  // Destroying an unused executor frees it; a second destroy or a run of it is an error.
  EXPECT_EQ(aclDestroyAclOpExecutor(c.executor), ACLNN_SUCCESS);
  EXPECT_EQ(aclDestroyAclOpExecutor(c.executor), ACLNN_ERR_PARAM_INVALID);
  EXPECT_NE(recent_error().find("executor"), std::string::npos);
  EXPECT_EQ(aclnnGroupedMatMulAlltoAllv(nullptr, 0, c.executor, stream), ACLNN_ERR_PARAM_INVALID);
  EXPECT_NE(recent_error().find("executor"), std::string::npos);
  EXPECT_TRUE(c.y.all_equal(kSentinel));
  EXPECT_EQ(aclrtDestroyStream(stream), ACL_SUCCESS);
}

// Messages that point the right way (issue 16): the parameter first, what was
// expected, what was given.
std::string rejection_of(Call& c) {
  (void)recent_error();
  EXPECT_EQ(c.run(), ACLNN_ERR_PARAM_INVALID);
  EXPECT_EQ(c.executor, nullptr);
  return recent_error();
}

TEST(ValidationMessages, BroadcastStridesNameExpectedAndGivenStrides) {
  (void)Groups::get();
  ASSERT_EQ(aclrtSetDevice(0), ACL_SUCCESS);
  Call c;
  c.gmm_x = c.make({{Call::kA, Call::kH1}, ACL_FLOAT16, std::vector<std::int64_t>{0, 0}}, c.x.get());
  const std::string msg = rejection_of(c);
  EXPECT_NE(msg.find("gmmX: expected contiguous row-major strides (16, 1), got (0, 0)"), std::string::npos) << msg;
}

TEST(ValidationMessages, WrongRecvCountsWithSharedExpertBlameRecvCounts) {
  (void)Groups::get();
  ASSERT_EQ(aclrtSetDevice(0), ACL_SUCCESS);
  Call c;
  c.recv_counts = c.counts({4, 4, 4, 5});
  const std::string msg = rejection_of(c);
  EXPECT_NE(msg.find("recvCounts: expected"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("mmXOptional:"), std::string::npos) << msg;
  EXPECT_TRUE(c.y.all_equal(kSentinel));
}

TEST(ValidationMessages, OmittedStorageDimsAreNamed) {
  (void)Groups::get();
  ASSERT_EQ(aclrtSetDevice(0), ACL_SUCCESS);
  Call c;
  const std::int64_t dims[2] = {Call::kA, Call::kH1}, strides[2] = {Call::kH1, 1};
  aclTensor* no_storage = aclCreateTensor(dims, 2, ACL_FLOAT16, strides, 0, ACL_FORMAT_ND, nullptr, 0, c.x.get());
  ASSERT_NE(no_storage, nullptr);
  c.gmm_x = no_storage;
  const std::string msg = rejection_of(c);
  EXPECT_NE(msg.find("gmmX: expected storage dims"), std::string::npos) << msg;
  EXPECT_NE(msg.find("none"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("(1 elements)"), std::string::npos) << msg;
  EXPECT_EQ(aclDestroyTensor(no_storage), ACLNN_SUCCESS);
}

TEST(ValidationMessages, MalformedStrictA3SwitchRefused) {
  (void)Groups::get();
  ASSERT_EQ(aclrtSetDevice(0), ACL_SUCCESS);
  ScopedEnv strict("GMMAV_STRICT_A3", "yes");  // was silently "off"
  Call c;
  const std::string msg = rejection_of(c);
  EXPECT_NE(msg.find("GMMAV_STRICT_A3: expected an integer in [0, 1]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("got 'yes'"), std::string::npos) << msg;
}

}  // namespace
