// The companion of the vendor's example_processes: the same call sequence
// (one process per rank, HcclCommInitRootInfo with hand-filled root info,
// --rank_id N), with small shapes and data that make the answer known. Every
// process checks its y (and mmY) bit for bit against the reference.
//   mpirun -np 4 scripts/gmmav-with-rank-id gmmav_processes_companion [fp16|bf16] [shared]
#include <getopt.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "acl/acl.h"
#include "aclnnop/aclnn_grouped_mat_mul_allto_allv.h"
#include "hccl/hccl.h"
#include "reference/synthetic_case.hpp"

namespace {

int g_rank = -1;
int g_failures = 0;

#define CHECK(cond, ...)                                                                 \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "[rank %d] FAILED: ", g_rank);                                \
      std::fprintf(stderr, __VA_ARGS__);                                                 \
      std::fprintf(stderr, " (%s)\n", aclGetRecentErrMsg() ? aclGetRecentErrMsg() : ""); \
      ++g_failures;                                                                      \
      return;                                                                            \
    }                                                                                    \
  } while (0)

struct DeviceTensor {
  void* mem = nullptr;
  aclTensor* t = nullptr;
};

DeviceTensor upload(const std::vector<std::uint16_t>& host, std::vector<std::int64_t> shape, aclDataType dt) {
  DeviceTensor d;
  const std::size_t bytes = std::max<std::size_t>(host.size() * 2, 2);
  aclrtMalloc(&d.mem, bytes, ACL_MEM_MALLOC_HUGE_FIRST);
  if (!host.empty()) aclrtMemcpy(d.mem, bytes, host.data(), host.size() * 2, ACL_MEMCPY_HOST_TO_DEVICE);
  std::vector<std::int64_t> strides(shape.size(), 1);
  for (std::size_t i = shape.size(); i-- > 1;) strides[i - 1] = strides[i] * shape[i];
  d.t = aclCreateTensor(shape.data(), shape.size(), dt, strides.data(), 0, ACL_FORMAT_ND, shape.data(), shape.size(), d.mem);
  return d;
}

void run(gmmav::DType dtype, bool shared) {
  const int W = 4;
  gmmav::reference::CaseSpec spec;
  spec.world_size = W;
  spec.local_experts = 3;
  spec.rows_per_rank = 150;
  spec.h1 = 40;
  spec.n1 = 24;
  spec.dtype = dtype;
  spec.shared_expert = shared;
  spec.bs = 72;  // balanced: BSK = 12 cells * 12 rows = 144 = K * BS with K = 2 (the aclnn envelope)
  spec.counts = gmmav::reference::CountPattern::balanced;
  spec.values = gmmav::reference::ValueKind::exact;
  spec.seed = 11;
  auto c = gmmav::reference::make_case(spec);
  auto& me = c.ranks[static_cast<std::size_t>(g_rank)];
  const aclDataType dt = dtype == gmmav::DType::f16 ? ACL_FLOAT16 : ACL_BF16;

  CHECK(aclrtSetDevice(g_rank) == ACL_SUCCESS, "aclrtSetDevice");
  aclrtContext ctx;
  CHECK(aclrtCreateContext(&ctx, g_rank) == ACL_SUCCESS, "aclrtCreateContext");
  aclrtStream stream;
  CHECK(aclrtCreateStream(&stream) == ACL_SUCCESS, "aclrtCreateStream");
  HcclRootInfo root;
  std::memset(&root, 0, sizeof root);
  std::snprintf(root.internal, sizeof root.internal, "companion-%s-%d", dtype == gmmav::DType::f16 ? "f16" : "bf16", shared);
  HcclComm comm;
  CHECK(HcclCommInitRootInfo(W, &root, static_cast<uint32_t>(g_rank), &comm) == HCCL_SUCCESS, "HcclCommInitRootInfo");
  char name[128] = {0};
  CHECK(HcclGetCommName(comm, name) == HCCL_SUCCESS, "HcclGetCommName");

  const std::int64_t a = static_cast<std::int64_t>(me.gmm_x.size()) / spec.h1;
  const std::int64_t bsk = static_cast<std::int64_t>(me.y.size()) / spec.n1;
  DeviceTensor x = upload(me.gmm_x, {a, spec.h1}, dt), w = upload(me.gmm_weight, {spec.local_experts, spec.h1, spec.n1}, dt);
  DeviceTensor y = upload(me.y, {bsk, spec.n1}, dt), mx, mw, my;
  if (shared) {
    mx = upload(me.mm_x, {spec.bs, spec.h2}, dt);
    mw = upload(me.mm_weight, {spec.h2, spec.n2}, dt);
    my = upload(me.mm_y, {spec.bs, spec.n2}, dt);
  }
  aclIntArray* send = aclCreateIntArray(me.send_counts.data(), me.send_counts.size());
  aclIntArray* recv = aclCreateIntArray(me.recv_counts.data(), me.recv_counts.size());
  std::uint64_t ws_size = 0;
  aclOpExecutor* exec = nullptr;
  CHECK(aclnnGroupedMatMulAlltoAllvGetWorkspaceSize(x.t, w.t, nullptr, nullptr, mx.t, mw.t, name, W, send, recv, false, false,
                                                    y.t, my.t, &ws_size, &exec) == ACL_SUCCESS,
        "GetWorkspaceSize");
  void* ws = nullptr;
  if (ws_size > 0) CHECK(aclrtMalloc(&ws, ws_size, ACL_MEM_MALLOC_HUGE_FIRST) == ACL_SUCCESS, "aclrtMalloc workspace");
  CHECK(aclnnGroupedMatMulAlltoAllv(ws, ws_size, exec, stream) == ACL_SUCCESS, "aclnnGroupedMatMulAlltoAllv");
  CHECK(aclrtSynchronizeStreamWithTimeout(stream, 60000) == ACL_SUCCESS, "aclrtSynchronizeStreamWithTimeout");
  aclrtMemcpy(me.y.data(), me.y.size() * 2, y.mem, me.y.size() * 2, ACL_MEMCPY_DEVICE_TO_HOST);
  if (shared) aclrtMemcpy(me.mm_y.data(), me.mm_y.size() * 2, my.mem, me.mm_y.size() * 2, ACL_MEMCPY_DEVICE_TO_HOST);

  // The reference needs every rank's inputs: make_case built them all, identically in every process.
  const auto ref = gmmav::reference::compute(c.shapes(), c.reference_inputs());
  const auto cy = gmmav::reference::compare(dtype, me.y, ref[static_cast<std::size_t>(g_rank)].y, true);
  CHECK(cy.ok(), "y differs from the reference: %s", cy.first_mismatch_text.c_str());
  if (shared) {
    const auto cm = gmmav::reference::compare(dtype, me.mm_y, ref[static_cast<std::size_t>(g_rank)].mm_y, true);
    CHECK(cm.ok(), "mmY differs from the reference: %s", cm.first_mismatch_text.c_str());
  }
  std::printf("[rank %d] %s%s: y (%lld x %lld)%s bit-exact, workspace %llu bytes\n", g_rank,
              dtype == gmmav::DType::f16 ? "fp16" : "bf16", shared ? " + shared expert" : "", static_cast<long long>(bsk),
              static_cast<long long>(spec.n1), shared ? " and mmY" : "", static_cast<unsigned long long>(ws_size));
  for (DeviceTensor* d : {&x, &w, &y, &mx, &mw, &my}) {
    if (d->t) aclDestroyTensor(d->t);
    if (d->mem) aclrtFree(d->mem);
  }
  aclDestroyIntArray(send);
  aclDestroyIntArray(recv);
  if (ws) aclrtFree(ws);
  HcclCommDestroy(comm);
  aclrtDestroyStream(stream);
  aclrtDestroyContext(ctx);
  aclrtResetDevice(g_rank);
}

}  // namespace

int main(int argc, char** argv) {
  static option opts[] = {{"rank_id", 1, nullptr, 'a'}, {nullptr, 0, nullptr, 0}};
  int ch;
  while ((ch = getopt_long(argc, argv, "a:", opts, nullptr)) != -1)
    if (ch == 'a') g_rank = std::atoi(optarg);
  if (g_rank < 0) {
    std::fprintf(stderr, "usage: mpirun -np 4 scripts/gmmav-with-rank-id %s [fp16|bf16] [shared]\n", argv[0]);
    return 2;
  }
  std::string dtype = optind < argc ? argv[optind] : "fp16";
  const bool shared = optind + 1 < argc && std::string(argv[optind + 1]) == "shared";
  if (aclInit(nullptr) != ACL_SUCCESS) return 1;
  run(dtype == "bf16" ? gmmav::DType::bf16 : gmmav::DType::f16, shared);
  aclFinalize();
  return g_failures == 0 ? 0 : 1;
}
