// aclnnGroupedMatMulAlltoAllv: the vendor's two-phase entry point as a skin
// over the native API. Phase 1 checks what only the C interface can get wrong
// (null pointers, the group string, element types, formats, ranks), resolves
// the group to this rank's Comm and lets gmmav::Plan apply every other rule
// of SPEC §5; phase 2 queues gmmav::run on the stream.
#include "aclnnop/aclnn_grouped_mat_mul_allto_allv.h"

#include <cstring>
#include <limits>
#include <span>

#include "aclnn/executor.hpp"
#include "common/config.hpp"
#include "aclnn/tensor_args.hpp"
#include "aclnn/weight_cache.hpp"
#include "runtime/api_guard.hpp"
#include "runtime/device.hpp"
#include "runtime/hccl_comm.hpp"
#include "runtime/memory_versions.hpp"
#include "runtime/status_codes.hpp"
#include "runtime/stream.hpp"

namespace gmmav::aclnn {
namespace {

using runtime::raise;

constexpr const char* kPrepare = "aclnnGroupedMatMulAlltoAllvGetWorkspaceSize";
constexpr const char* kRun = "aclnnGroupedMatMulAlltoAllv";
constexpr std::size_t kGroupNameMax = 128;  // vendor HCCL_GROUP_NAME_MAX, incl. the NUL

void require(const void* p, const char* param, const char* what) {
  if (p == nullptr) raise(ACLNN_ERR_PARAM_NULLPTR, param, "expected {}, got null", what);
}

// GMMAV_STRICT_A3=1 adds the A3 hardware envelope (SPEC §5). Read per call: cheap next to planning.
Envelope envelope() { return config::strict_a3() ? Envelope::strict_a3 : Envelope::aclnn; }

}  // namespace
}  // namespace gmmav::aclnn

using namespace gmmav;
using namespace gmmav::aclnn;
using runtime::guarded;
using runtime::kAclnnCodes;
using runtime::raise;

extern "C" {

aclnnStatus aclnnGroupedMatMulAlltoAllvGetWorkspaceSize(
    const aclTensor* gmmX, const aclTensor* gmmWeight, const aclTensor* sendCountsTensorOptional,
    const aclTensor* recvCountsTensorOptional, const aclTensor* mmXOptional, const aclTensor* mmWeightOptional,
    const char* group, int64_t epWorldSize, const aclIntArray* sendCounts, const aclIntArray* recvCounts,
    bool transGmmWeight, bool transMmWeight, aclTensor* y, aclTensor* mmYOptional, uint64_t* workspaceSize,
    aclOpExecutor** executor) {
  return guarded(kPrepare, kAclnnCodes, [&] {
    // 161001: missing required pointers, in the order of SPEC §5.
    require(gmmX, "gmmX", "a tensor");
    require(gmmWeight, "gmmWeight", "a tensor");
    require(y, "y", "a tensor");
    require(group, "group", "a communicator name");
    require(sendCounts, "sendCounts", "an aclIntArray");
    require(recvCounts, "recvCounts", "an aclIntArray");
    require(workspaceSize, "workspaceSize", "a place to store the workspace size");
    require(executor, "executor", "a place to store the executor");
    const int shared = int(mmXOptional != nullptr) + int(mmWeightOptional != nullptr) + int(mmYOptional != nullptr);
    if (shared != 0 && shared != 3)
      raise(ACLNN_ERR_PARAM_NULLPTR, !mmXOptional ? "mmXOptional" : !mmWeightOptional ? "mmWeightOptional" : "mmYOptional",
            "expected mmXOptional, mmWeightOptional and mmYOptional all given or all null, got {} of 3", shared);

    // 161002: what only this interface can get wrong.
    if (sendCountsTensorOptional != nullptr)
      raise(ACLNN_ERR_PARAM_INVALID, "sendCountsTensorOptional", "expected null (not supported; pass sendCounts), got a tensor");
    if (recvCountsTensorOptional != nullptr)
      raise(ACLNN_ERR_PARAM_INVALID, "recvCountsTensorOptional", "expected null (not supported; pass recvCounts), got a tensor");
    const std::size_t name_len = strnlen(group, kGroupNameMax);
    if (name_len == 0) raise(ACLNN_ERR_PARAM_INVALID, "group", "expected a communicator name, got an empty string");
    if (name_len >= kGroupNameMax)
      raise(ACLNN_ERR_PARAM_INVALID, "group", "expected a name shorter than {} characters, got {} or more", kGroupNameMax,
            kGroupNameMax);
    if (epWorldSize < 1 || epWorldSize > std::numeric_limits<int>::max())
      raise(ACLNN_ERR_PARAM_INVALID, "epWorldSize", "expected a rank count >= 1, got {}", epWorldSize);
    const std::string name(group, name_len);
    const runtime::ResolvedGroup resolved = runtime::resolve_group(name, runtime::current_device());
    const Comm& comm = resolved.comm;
    if (comm.size() != epWorldSize)
      raise(ACLNN_ERR_PARAM_INVALID, "epWorldSize", "expected the size of group '{}', {}, got {}", name, comm.size(),
            epWorldSize);

    OpTensors t;
    t.gmm_x = input_view(*gmmX, "gmmX", 2);
    t.gmm_weight = input_view(*gmmWeight, "gmmWeight", 3);
    t.y = output_view(*y, "y", 2);
    if (shared == 3) {
      t.mm_x = input_view(*mmXOptional, "mmXOptional", 2);
      t.mm_weight = input_view(*mmWeightOptional, "mmWeightOptional", 2);
      t.mm_y = output_view(*mmYOptional, "mmYOptional", 2);
    }
    // Everything else — shapes, counts, ranges, contiguity, overlaps — is the Plan's.
    Plan plan = Plan::from_tensors(comm.size(), comm.rank(), sendCounts->values, recvCounts->values, t, transGmmWeight,
                                   transMmWeight, envelope());
    const std::size_t ws = workspace_size(plan, comm);
    weight_cache_enabled();  // a malformed GMMAV_WEIGHT_CACHE_MB is this call's error
    auto e = std::make_unique<aclOpExecutor>(
        aclOpExecutor{plan, comm, t, ws, fmt::format("rank {} of group '{}'", comm.rank(), name), resolved.device});
    *workspaceSize = ws;
    *executor = adopt_executor(std::move(e));
    return ACLNN_SUCCESS;
  });
}

aclnnStatus aclnnGroupedMatMulAlltoAllv(void* workspace, uint64_t workspaceSize, aclOpExecutor* executor,
                                        aclrtStream stream) {
  return guarded(kRun, kAclnnCodes, [&] {
    require(executor, "executor", "an executor from aclnnGroupedMatMulAlltoAllvGetWorkspaceSize");
    const aclOpExecutor* live = find_executor(executor);
    if (live == nullptr)
      raise(ACLNN_ERR_PARAM_INVALID, "executor", "expected a live executor, got {} (already run, destroyed or never created)",
            static_cast<const void*>(executor));
    if (workspaceSize < live->workspace)
      raise(ACLNN_ERR_PARAM_INVALID, "workspaceSize", "expected at least {} bytes (from phase 1), got {}", live->workspace,
            workspaceSize);
    if (workspace == nullptr && workspaceSize > 0)
      raise(ACLNN_ERR_PARAM_NULLPTR, "workspace", "expected {} bytes of workspace, got null", workspaceSize);
    runtime::Stream* s = nullptr;
    try {
      s = &runtime::resolve_stream(stream);
    } catch (const runtime::ApiError& err) {  // a bad stream is a bad argument of this call
      throw runtime::ApiError(stream == nullptr ? ACLNN_ERR_PARAM_NULLPTR : ACLNN_ERR_PARAM_INVALID, err.what());
    }
    // Two ranks' calls queued on one stream would wait for each other forever:
    // a rank's calls go to a stream of its own device.
    if (live->device >= 0 && s->device() != live->device)
      raise(ACLNN_ERR_PARAM_INVALID, "stream", "expected a stream of device {} (the device of {}), got a stream of device {}",
            live->device, live->who, s->device());
    // Consumed from here on: a failure of the run is the stream's error.
    std::shared_ptr<aclOpExecutor> e = take_executor(executor);
    if (!e) raise(ACLNN_ERR_PARAM_INVALID, "executor", "expected a live executor, got one consumed concurrently");
    const std::span<std::byte> ws(static_cast<std::byte*>(workspace), workspace != nullptr ? workspaceSize : 0);
    s->enqueue([e, ws]() -> runtime::WorkResult {
      // This rank's outputs are written by the call (peers write into y too, but only between this
      // call's meet and its end): new write versions before and after, so nothing derived from
      // them earlier (packed weights) is trusted later.
      const OpTensors& t = e->tensors;
      const auto note_outputs = [&t] {
        runtime::note_write(t.y.data, t.y.bytes());
        if (t.mm_y) runtime::note_write(t.mm_y->data, t.mm_y->bytes());
      };
      note_outputs();
      struct NoteAtExit {
        decltype(note_outputs)& f;
        ~NoteAtExit() { f(); }
      } note_at_exit{note_outputs};
      try {
        if (auto packed = cached_weights(e->plan, t))
          gmmav::run(e->plan, e->comm, t, *packed, ws);
        else
          gmmav::run(e->plan, e->comm, t, ws);
        return {};
      } catch (const Error& err) {
        return {runtime::kStreamWorkCodes.of(err.code()), fmt::format("{} ({}): {}", kRun, e->who, err.what())};
      } catch (const std::bad_alloc&) {
        return {runtime::kStreamWorkCodes.no_memory, fmt::format("{} ({}): out of host memory", kRun, e->who)};
      }
    });
    return ACLNN_SUCCESS;
  });
}

}  // extern "C"
