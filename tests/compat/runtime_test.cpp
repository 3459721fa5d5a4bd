// The runtime subset around the operator: memory (the vendor's error codes),
// the aclTensor / aclIntArray API, devices and contexts, the recent-error
// message and GMMAV_LOG, and the HCCL communicator calls.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "compat_helpers.hpp"
#include "gmmav/build_options.hpp"
#include "runtime/hccl_comm.hpp"

extern "C" int compat_c_memcpy(void* dst, size_t destMax, const void* src, size_t count, int kind);  // c_callers.c

namespace {

using namespace compat_test;

// ---- memory ----

TEST(Memory, MallocAndFree) {
  void* p = nullptr;
  ASSERT_EQ(aclrtMalloc(&p, 100, ACL_MEM_MALLOC_HUGE_FIRST), ACL_SUCCESS);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % 64, 0u) << "64-byte aligned";
  std::memset(p, 1, 100);
  EXPECT_EQ(aclrtFree(p), ACL_SUCCESS);
  EXPECT_EQ(aclrtFree(p), ACL_ERROR_INVALID_PARAM) << "double free";
  EXPECT_NE(recent_error().find("already freed"), std::string::npos);
  EXPECT_EQ(aclrtMalloc(&p, 0, ACL_MEM_MALLOC_HUGE_FIRST), ACL_ERROR_INVALID_PARAM);
  EXPECT_NE(recent_error().find("size"), std::string::npos);
  EXPECT_EQ(aclrtMalloc(nullptr, 16, ACL_MEM_MALLOC_HUGE_FIRST), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtFree(nullptr), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtFreeHost(nullptr), ACL_ERROR_INVALID_PARAM);
  void* h = nullptr;
  ASSERT_EQ(aclrtMallocHost(&h, 64), ACL_SUCCESS);
  EXPECT_EQ(aclrtMallocHost(&h, 0), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtFree(h), ACL_ERROR_INVALID_PARAM) << "host memory goes back through aclrtFreeHost";
  EXPECT_NE(recent_error().find("aclrtMallocHost"), std::string::npos);
  EXPECT_EQ(aclrtFreeHost(h), ACL_SUCCESS);
}

TEST(Memory, MemcpyErrorCodes) {
  char src[16] = "0123456789abcde", dst[16] = {};
  EXPECT_EQ(aclrtMemcpy(nullptr, 0, nullptr, 0, ACL_MEMCPY_HOST_TO_DEVICE), ACL_SUCCESS) << "count 0: nothing to do";
  EXPECT_EQ(aclrtMemcpy(nullptr, 16, src, 16, ACL_MEMCPY_HOST_TO_DEVICE), ACL_ERROR_INVALID_PARAM);
  EXPECT_NE(recent_error().find("dst"), std::string::npos);
  EXPECT_EQ(aclrtMemcpy(dst, 16, nullptr, 16, ACL_MEMCPY_HOST_TO_DEVICE), ACL_ERROR_INVALID_PARAM);
  EXPECT_NE(recent_error().find("src"), std::string::npos);
  EXPECT_EQ(aclrtMemcpy(dst, 8, src, 16, ACL_MEMCPY_HOST_TO_DEVICE), ACL_ERROR_RT_PARAM_INVALID);
  EXPECT_NE(recent_error().find("destMax"), std::string::npos);
  EXPECT_EQ(compat_c_memcpy(dst, 16, src, 16, 8), ACL_ERROR_INVALID_PARAM);  // from C, any int is a valid argument
  EXPECT_NE(recent_error().find("kind"), std::string::npos);
  EXPECT_EQ(dst[0], 0) << "failed copies write nothing";
  for (int kind = 0; kind <= 7; ++kind) {
    std::memset(dst, 0, sizeof dst);
    EXPECT_EQ(aclrtMemcpy(dst, 16, src, 16, static_cast<aclrtMemcpyKind>(kind)), ACL_SUCCESS) << "kind " << kind;
    EXPECT_STREQ(dst, src);
  }
}

TEST(Memory, Memset) {
  unsigned char b[8] = {};
  EXPECT_EQ(aclrtMemset(b, 8, 0x1AB, 6), ACL_SUCCESS);
  EXPECT_EQ(b[0], 0xAB);
  EXPECT_EQ(b[5], 0xAB);
  EXPECT_EQ(b[6], 0);
  EXPECT_EQ(aclrtMemset(b, 4, 0, 6), ACL_ERROR_RT_PARAM_INVALID);
  EXPECT_EQ(aclrtMemset(nullptr, 4, 0, 4), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtMemset(nullptr, 0, 0, 0), ACL_SUCCESS);
}

TEST(Memory, DataTypeSize) {
  EXPECT_EQ(aclDataTypeSize(ACL_FLOAT16), 2u);
  EXPECT_EQ(aclDataTypeSize(ACL_BF16), 2u);
  EXPECT_EQ(aclDataTypeSize(ACL_FLOAT), 4u);
  EXPECT_EQ(aclDataTypeSize(ACL_COMPLEX32), 4u);
  EXPECT_EQ(aclDataTypeSize(ACL_INT8), 1u);
  EXPECT_EQ(aclDataTypeSize(ACL_FLOAT8_E4M3FN), 1u);
  EXPECT_EQ(aclDataTypeSize(ACL_INT64), 8u);
  EXPECT_EQ(aclDataTypeSize(ACL_FLOAT4_E2M1), 8u);
  EXPECT_EQ(aclDataTypeSize(ACL_COMPLEX128), 16u);
  EXPECT_EQ(aclDataTypeSize(ACL_STRING), 0u);
  EXPECT_EQ(aclDataTypeSize(ACL_DT_UNDEFINED), 0u);
}

// ---- aclTensor / aclIntArray ----

TEST(Tensor, CopiesAndGetters) {
  std::vector<std::int64_t> dims = {3, 4, 5}, storage = {60};
  int data = 0;
  aclTensor* t = aclCreateTensor(dims.data(), 3, ACL_BF16, nullptr, 7, ACL_FORMAT_ND, storage.data(), 1, &data);
  ASSERT_NE(t, nullptr);
  dims.assign(3, -1);  // the tensor keeps its own copy
  storage.assign(1, -1);
  int64_t* out = nullptr;
  uint64_t n = 0;
  ASSERT_EQ(aclGetViewShape(t, &out, &n), ACLNN_SUCCESS);
  EXPECT_EQ(std::vector<std::int64_t>(out, out + n), (std::vector<std::int64_t>{3, 4, 5}));
  delete[] out;
  ASSERT_EQ(aclGetViewStrides(t, &out, &n), ACLNN_SUCCESS);
  EXPECT_EQ(std::vector<std::int64_t>(out, out + n), (std::vector<std::int64_t>{20, 5, 1})) << "NULL stride = contiguous";
  delete[] out;
  ASSERT_EQ(aclGetStorageShape(t, &out, &n), ACLNN_SUCCESS);
  EXPECT_EQ(std::vector<std::int64_t>(out, out + n), (std::vector<std::int64_t>{60}));
  delete[] out;
  int64_t offset = 0;
  ASSERT_EQ(aclGetViewOffset(t, &offset), ACLNN_SUCCESS);
  EXPECT_EQ(offset, 7);
  aclFormat format = ACL_FORMAT_UNDEFINED;
  ASSERT_EQ(aclGetFormat(t, &format), ACLNN_SUCCESS);
  EXPECT_EQ(format, ACL_FORMAT_ND);
  aclDataType dtype = ACL_DT_UNDEFINED;
  ASSERT_EQ(aclGetDataType(t, &dtype), ACLNN_SUCCESS);
  EXPECT_EQ(dtype, ACL_BF16);
  EXPECT_EQ(aclGetViewShape(nullptr, &out, &n), ACLNN_ERR_PARAM_NULLPTR);
  EXPECT_EQ(aclGetViewShape(t, nullptr, &n), ACLNN_ERR_PARAM_NULLPTR);
  EXPECT_EQ(aclGetDataType(t, nullptr), ACLNN_ERR_PARAM_NULLPTR);
  EXPECT_NE(recent_error().find("dataType"), std::string::npos);
  std::vector<std::int64_t> strides = {1, 3, 12};  // explicit strides are kept as given
  aclTensor* u = aclCreateTensor(dims.data(), 0, ACL_FLOAT16, strides.data(), 0, ACL_FORMAT_NCHW, nullptr, 0, nullptr);
  ASSERT_NE(u, nullptr) << "a 0-D tensor with no data is valid";
  EXPECT_EQ(aclDestroyTensor(u), ACLNN_SUCCESS);
  EXPECT_EQ(aclDestroyTensor(t), ACLNN_SUCCESS);
  EXPECT_EQ(aclDestroyTensor(nullptr), ACLNN_SUCCESS);
}

TEST(Tensor, CreateFailures) {
  const std::int64_t dims[2] = {2, 3}, negative[2] = {2, -3};
  EXPECT_EQ(aclCreateTensor(nullptr, 2, ACL_FLOAT16, nullptr, 0, ACL_FORMAT_ND, dims, 2, nullptr), nullptr);
  EXPECT_NE(recent_error().find("viewDims"), std::string::npos);
  EXPECT_EQ(aclCreateTensor(dims, 2, ACL_FLOAT16, nullptr, 0, ACL_FORMAT_ND, nullptr, 2, nullptr), nullptr);
  EXPECT_NE(recent_error().find("storageDims"), std::string::npos);
  EXPECT_EQ(aclCreateTensor(negative, 2, ACL_FLOAT16, nullptr, 0, ACL_FORMAT_ND, dims, 2, nullptr), nullptr);
  EXPECT_NE(recent_error().find("viewDims"), std::string::npos);
  EXPECT_EQ(aclCreateTensor(dims, 2, ACL_FLOAT16, nullptr, -1, ACL_FORMAT_ND, dims, 2, nullptr), nullptr);
  EXPECT_NE(recent_error().find("offset"), std::string::npos);
}

TEST(Tensor, IntArray) {
  std::vector<std::int64_t> v = {5, -1, 7};
  aclIntArray* a = aclCreateIntArray(v.data(), v.size());
  ASSERT_NE(a, nullptr);
  uint64_t n = 0;
  ASSERT_EQ(aclGetIntArraySize(a, &n), ACLNN_SUCCESS);
  EXPECT_EQ(n, 3u);
  EXPECT_EQ(aclGetIntArraySize(nullptr, &n), ACLNN_ERR_PARAM_NULLPTR);
  EXPECT_EQ(aclCreateIntArray(nullptr, 2), nullptr);
  EXPECT_NE(recent_error().find("value"), std::string::npos);
  aclIntArray* empty = aclCreateIntArray(nullptr, 0);
  ASSERT_NE(empty, nullptr);
  EXPECT_EQ(aclDestroyIntArray(empty), ACLNN_SUCCESS);
  EXPECT_EQ(aclDestroyIntArray(a), ACLNN_SUCCESS);
  EXPECT_EQ(aclDestroyIntArray(nullptr), ACLNN_SUCCESS);
  EXPECT_EQ(aclnnInit(nullptr), ACLNN_SUCCESS);
  EXPECT_EQ(aclnnFinalize(), ACLNN_SUCCESS);
}

// ---- devices, contexts, process lifetime ----

TEST(Device, CurrentDeviceFollowsTheContext) {
  EXPECT_EQ(aclrtSetDevice(-1), ACL_ERROR_RT_INVALID_DEVICEID);
  EXPECT_EQ(aclrtSetDevice(256), ACL_ERROR_RT_INVALID_DEVICEID);
  EXPECT_NE(recent_error().find("deviceId"), std::string::npos);
  uint32_t count = 0;
  ASSERT_EQ(aclrtGetDeviceCount(&count), ACL_SUCCESS);
  EXPECT_EQ(count, 256u);
  aclrtRunMode mode = ACL_DEVICE;
  ASSERT_EQ(aclrtGetRunMode(&mode), ACL_SUCCESS);
  EXPECT_EQ(mode, ACL_HOST);

  std::thread([] {  // a fresh thread has no device
    int32_t d = -1;
    EXPECT_EQ(aclrtGetDevice(&d), ACL_ERROR_RT_CONTEXT_NULL);
    aclrtStream s = nullptr;
    EXPECT_EQ(aclrtCreateStream(&s), ACL_ERROR_RT_CONTEXT_NULL);
    ASSERT_EQ(aclrtSetDevice(3), ACL_SUCCESS);
    ASSERT_EQ(aclrtGetDevice(&d), ACL_SUCCESS);
    EXPECT_EQ(d, 3);
    aclrtContext c5 = nullptr;
    ASSERT_EQ(aclrtCreateContext(&c5, 5), ACL_SUCCESS);  // becomes current
    ASSERT_EQ(aclrtGetDevice(&d), ACL_SUCCESS);
    EXPECT_EQ(d, 5);
    aclrtContext cur = nullptr;
    ASSERT_EQ(aclrtGetCurrentContext(&cur), ACL_SUCCESS);
    EXPECT_EQ(cur, c5);
    ASSERT_EQ(aclrtSetDevice(3), ACL_SUCCESS);
    ASSERT_EQ(aclrtSetCurrentContext(c5), ACL_SUCCESS);
    ASSERT_EQ(aclrtGetDevice(&d), ACL_SUCCESS);
    EXPECT_EQ(d, 5);
    ASSERT_EQ(aclrtDestroyContext(c5), ACL_SUCCESS);
    EXPECT_EQ(aclrtGetDevice(&d), ACL_ERROR_RT_CONTEXT_NULL) << "the current context was destroyed";
    EXPECT_EQ(aclrtSetCurrentContext(c5), ACL_ERROR_INVALID_PARAM);
    EXPECT_EQ(aclrtDestroyContext(c5), ACL_ERROR_INVALID_PARAM);
    EXPECT_EQ(aclrtSetCurrentContext(nullptr), ACL_ERROR_INVALID_PARAM);
    ASSERT_EQ(aclrtSetDevice(3), ACL_SUCCESS);
    EXPECT_EQ(aclrtResetDevice(3), ACL_SUCCESS);
    EXPECT_EQ(aclrtGetDevice(&d), ACL_ERROR_RT_CONTEXT_NULL) << "reset: the thread no longer acts for device 3";
  })
      .join();
}

TEST(Device, InitFinalize) {
  // The test environment already called aclInit.
  EXPECT_EQ(aclInit(nullptr), ACL_ERROR_REPEAT_INITIALIZE);
  EXPECT_EQ(aclInit("/no/such/acl.json"), ACL_ERROR_INVALID_FILE);
  EXPECT_NE(recent_error().find("configPath"), std::string::npos);
  ASSERT_EQ(aclFinalize(), ACL_SUCCESS);
  EXPECT_EQ(aclFinalize(), ACL_ERROR_REPEAT_FINALIZE);
  ASSERT_EQ(aclInit(nullptr), ACL_SUCCESS);
}

// ---- the recent-error message and GMMAV_LOG ----

TEST(ErrorMessage, ReadingClearsAndNewestComesFirst) {
  (void)recent_error();
  EXPECT_EQ(aclGetRecentErrMsg(), nullptr);
  EXPECT_EQ(aclrtFree(nullptr), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtMalloc(nullptr, 1, ACL_MEM_MALLOC_HUGE_FIRST), ACL_ERROR_INVALID_PARAM);
  const char* m = aclGetRecentErrMsg();
  ASSERT_NE(m, nullptr);
  const std::string s = m;
  EXPECT_EQ(s.find("aclrtMalloc: devPtr"), 0u) << s;
  EXPECT_NE(s.find("\naclrtFree: devPtr"), std::string::npos) << s;
  EXPECT_EQ(aclGetRecentErrMsg(), nullptr) << "reading cleared the messages";
  std::thread([] { EXPECT_EQ(aclGetRecentErrMsg(), nullptr) << "messages are per thread"; }).join();
}

TEST(ErrorMessage, StderrOnlyWithGmmavLog) {
  {
    ScopedEnv log("GMMAV_LOG", std::nullopt);
    testing::internal::CaptureStderr();
    EXPECT_EQ(aclrtFree(nullptr), ACL_ERROR_INVALID_PARAM);
    EXPECT_EQ(testing::internal::GetCapturedStderr(), "") << "quiet by default";
  }
  {
    ScopedEnv log("GMMAV_LOG", "1");
    testing::internal::CaptureStderr();
    EXPECT_EQ(aclrtFree(nullptr), ACL_ERROR_INVALID_PARAM);
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("[gmmav] aclrtFree: devPtr: expected"), std::string::npos) << err;
  }
  (void)recent_error();
}

// ---- HCCL ----

TEST(Hccl, InitAllNamesAndRanks) {
  int32_t devices[3] = {6, 4, 5};
  HcclComm comms[3] = {};
  ASSERT_EQ(HcclCommInitAll(3, devices, comms), HCCL_SUCCESS);
  std::string first;
  for (uint32_t r = 0; r < 3; ++r) {
    char name[128];
    std::memset(name, 'x', sizeof name);
    ASSERT_EQ(HcclGetCommName(comms[r], name), HCCL_SUCCESS);
    ASSERT_LT(strnlen(name, sizeof name), sizeof name) << "NUL-terminated within 128 bytes";
    if (r == 0) first = name;
    EXPECT_EQ(name, first) << "every rank of a group reports the same name";
    uint32_t size = 0, rank = 99;
    ASSERT_EQ(HcclGetRankSize(comms[r], &size), HCCL_SUCCESS);
    ASSERT_EQ(HcclGetRankId(comms[r], &rank), HCCL_SUCCESS);
    EXPECT_EQ(size, 3u);
    EXPECT_EQ(rank, r);
  }
  HcclComm other[3] = {};
  ASSERT_EQ(HcclCommInitAll(3, devices, other), HCCL_SUCCESS) << "a device may serve several groups";
  char name[128] = {0};
  ASSERT_EQ(HcclGetCommName(other[0], name), HCCL_SUCCESS);
  EXPECT_NE(name, first) << "groups have distinct names";
  for (HcclComm c : comms) EXPECT_EQ(HcclCommDestroy(c), HCCL_SUCCESS);
  for (HcclComm c : other) EXPECT_EQ(HcclCommDestroy(c), HCCL_SUCCESS);
  EXPECT_EQ(HcclCommDestroy(comms[0]), HCCL_E_PARA) << "already destroyed";
  EXPECT_EQ(HcclGetCommName(comms[1], name), HCCL_E_PARA);
  EXPECT_EQ(HcclCommDestroy(nullptr), HCCL_E_PTR);
}

TEST(Hccl, InitAllRejectsBadArguments) {
  HcclComm comms[2] = {};
  int32_t dup[2] = {1, 1}, out_of_range[2] = {0, 256};
  EXPECT_EQ(HcclCommInitAll(2, dup, comms), HCCL_E_PARA);
  EXPECT_NE(recent_error().find("distinct"), std::string::npos);
  EXPECT_EQ(HcclCommInitAll(2, out_of_range, comms), HCCL_E_PARA);
  EXPECT_EQ(HcclCommInitAll(0, dup, comms), HCCL_E_PARA);
  EXPECT_EQ(HcclCommInitAll(2, nullptr, comms), HCCL_E_PTR);
  EXPECT_EQ(HcclCommInitAll(2, dup, nullptr), HCCL_E_PTR);
  EXPECT_EQ(comms[0], nullptr);
  {
    ScopedEnv bad("GMMAV_TIMEOUT_MS", "soon");
    int32_t devices[2] = {0, 1};
    EXPECT_EQ(HcclCommInitAll(2, devices, comms), HCCL_E_PARA);
    EXPECT_NE(recent_error().find("GMMAV_TIMEOUT_MS"), std::string::npos);
  }
  EXPECT_EQ(HcclGetRankSize(nullptr, nullptr), HCCL_E_PTR);
}

TEST(Hccl, ErrorStrings) {
  for (int c = 0; c <= 1042; ++c) EXPECT_NE(HcclGetErrorString(static_cast<HcclResult>(c)), nullptr);
  EXPECT_STREQ(HcclGetErrorString(HCCL_E_PARA), "invalid parameter");
  EXPECT_STREQ(HcclGetErrorString(HCCL_E_NOT_SUPPORT), "not supported");
}

TEST(Hccl, RootInfoIsUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 50; ++i) {
    HcclRootInfo info;
    std::memset(&info, 0x7F, sizeof info);
    ASSERT_EQ(HcclGetRootInfo(&info), HCCL_SUCCESS);
    const std::size_t len = strnlen(info.internal, sizeof info.internal);
    ASSERT_LT(len, sizeof info.internal);
    EXPECT_TRUE(seen.insert(std::string(info.internal, len)).second);
  }
  EXPECT_EQ(HcclGetRootInfo(nullptr), HCCL_E_PTR);
}

TEST(Hccl, InitRootInfoWithoutALauncher) {
  HcclRootInfo info;
  ASSERT_EQ(HcclGetRootInfo(&info), HCCL_SUCCESS);
  HcclComm comm = nullptr;
  if constexpr (gmmav::with_mpi) {  // the MPI backend says how to launch
    EXPECT_EQ(HcclCommInitRootInfo(4, &info, 0, &comm), HCCL_E_PARA);
    const std::string msg = recent_error();
    EXPECT_NE(msg.find("MPI launcher"), std::string::npos) << msg;
    EXPECT_NE(msg.find("mpirun"), std::string::npos) << msg;
  } else {  // built without MPI (D98): not supported, naming the missing component
    EXPECT_EQ(HcclCommInitRootInfo(4, &info, 0, &comm), HCCL_E_NOT_SUPPORT);
    const std::string msg = recent_error();
    EXPECT_NE(msg.find("gmmav was built without MPI (GMMAV_WITH_MPI=OFF)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("HcclCommInitAll"), std::string::npos) << msg;
  }
  EXPECT_EQ(comm, nullptr);
  EXPECT_EQ(HcclCommInitRootInfo(4, &info, 4, &comm), HCCL_E_PARA);
  EXPECT_EQ(HcclCommInitRootInfo(4, nullptr, 0, &comm), HCCL_E_PTR);
  EXPECT_EQ(HcclCommInitRootInfo(4, &info, 0, nullptr), HCCL_E_PTR);
  // One rank needs no backend.
  ASSERT_EQ(HcclCommInitRootInfo(1, &info, 0, &comm), HCCL_SUCCESS);
  uint32_t size = 0;
  ASSERT_EQ(HcclGetRankSize(comm, &size), HCCL_SUCCESS);
  EXPECT_EQ(size, 1u);
  EXPECT_EQ(HcclCommDestroy(comm), HCCL_SUCCESS);
}

// The backend hook: a factory that makes in-process groups keyed by the root info,
// standing in for the MPI backend. Each rank is a thread on its own device.
std::mutex g_groups_mu;
std::map<std::string, std::vector<gmmav::Comm>> g_groups;

gmmav::Comm in_process_factory(std::uint32_t n, const HcclRootInfo* info, std::uint32_t rank) {
  std::lock_guard lk(g_groups_mu);
  auto& comms = g_groups[std::string(info->internal, strnlen(info->internal, sizeof info->internal))];
  if (comms.empty()) comms = gmmav::create_in_process_group(static_cast<int>(n));
  return comms.at(rank);
}

TEST(Hccl, InitRootInfoUsesTheRegisteredFactory) {
  gmmav::runtime::set_root_info_factory(&in_process_factory);
  HcclRootInfo info;
  ASSERT_EQ(HcclGetRootInfo(&info), HCCL_SUCCESS);
  std::string names[3];
  uint32_t ranks[3] = {9, 9, 9};
  std::vector<std::thread> t;
  for (uint32_t r = 0; r < 3; ++r)
    t.emplace_back([&, r] {
      ASSERT_EQ(aclrtSetDevice(static_cast<int32_t>(40 + r)), ACL_SUCCESS);
      HcclComm comm = nullptr;
      ASSERT_EQ(HcclCommInitRootInfo(3, &info, r, &comm), HCCL_SUCCESS) << recent_error();
      char name[128] = {0};
      ASSERT_EQ(HcclGetCommName(comm, name), HCCL_SUCCESS);
      names[r] = name;
      ASSERT_EQ(HcclGetRankId(comm, &ranks[r]), HCCL_SUCCESS);
      EXPECT_EQ(HcclCommDestroy(comm), HCCL_SUCCESS);
    });
  for (auto& th : t) th.join();
  gmmav::runtime::set_root_info_factory(nullptr);
  EXPECT_EQ(names[0], names[1]);
  EXPECT_EQ(names[0], names[2]);
  EXPECT_EQ(ranks[0], 0u);
  EXPECT_EQ(ranks[1], 1u);
  EXPECT_EQ(ranks[2], 2u);
}

}  // namespace
