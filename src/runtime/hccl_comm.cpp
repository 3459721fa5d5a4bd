// HCCL communicator handles: HcclCommInitAll (ranks = threads of this
// process), the name registry behind HcclGetCommName and the op's `group`
// lookup, and the small getters.
#include "runtime/hccl_comm.hpp"

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_set>
#include <vector>

#include "common/fail.hpp"
#include "hccl/hccl.h"
#include "runtime/api_guard.hpp"
#include "runtime/device.hpp"
#include "runtime/status_codes.hpp"

namespace gmmav::runtime {
namespace {

// A group name's handles in this process.
struct NamedHandles {
  std::vector<HcclCommHandle*> live;
  int registered = 0;  // ever, while the name had a live handle: > 1 = ranks of this process share it
};

struct Registry {
  std::mutex mu;  // guards everything here, and makes "is it live" and "unregister" one step
  std::unordered_set<HcclCommHandle*> live;
  std::map<std::string, NamedHandles, std::less<>> by_name;
};

Registry& registry() {
  static Registry* r = new Registry;  // never destroyed: handles may outlive static destruction
  return *r;
}

}  // namespace

HcclComm register_comm(gmmav::Comm comm, std::int32_t device) {
  auto h = std::make_unique<HcclCommHandle>(HcclCommHandle{std::move(comm), device});
  Registry& r = registry();
  std::lock_guard lk(r.mu);
  NamedHandles& named = r.by_name[h->comm.name()];
  named.live.push_back(h.get());
  ++named.registered;
  r.live.insert(h.get());
  return h.release();
}

HcclCommHandle& handle_of(HcclComm comm) {
  if (comm == nullptr) raise(HCCL_E_PTR, "comm", "expected a communicator, got null");
  Registry& r = registry();
  std::lock_guard lk(r.mu);
  auto* h = static_cast<HcclCommHandle*>(comm);
  if (r.live.count(h) == 0) raise(HCCL_E_PARA, "comm", "expected a live communicator, got {} (never created or destroyed)", comm);
  return *h;
}

void destroy_comm(HcclComm comm) {
  if (comm == nullptr) raise(HCCL_E_PTR, "comm", "expected a communicator, got null");
  Registry& r = registry();
  std::unique_ptr<HcclCommHandle> owned;
  {
    // Checked and unregistered under one lock: of two threads destroying one
    // handle, exactly one gets it; the other finds it no longer live.
    std::lock_guard lk(r.mu);
    auto* h = static_cast<HcclCommHandle*>(comm);
    if (r.live.erase(h) == 0)
      raise(HCCL_E_PARA, "comm", "expected a live communicator, got {} (never created or destroyed)", comm);
    owned.reset(h);
    auto it = r.by_name.find(h->comm.name());
    if (it != r.by_name.end()) {
      std::erase(it->second.live, h);
      if (it->second.live.empty()) r.by_name.erase(it);
    }
  }
}

ResolvedGroup resolve_group(const std::string& name, int device) {
  Registry& r = registry();
  std::lock_guard lk(r.mu);
  auto it = r.by_name.find(name);
  if (it == r.by_name.end())
    fail(Errc::invalid_argument, "group", "expected the name of a live communicator (from HcclGetCommName), got '{}'", name);
  const NamedHandles& named = it->second;
  if (named.registered == 1) return {named.live.front()->comm, -1};  // one rank per process: any device
  if (device < 0)
    fail(Errc::invalid_argument, "group",
         "expected a current device on this thread to pick this rank's communicator of group '{}' ({} ranks in this process; "
         "call aclrtSetDevice or aclrtSetCurrentContext), got none",
         name, named.registered);
  const HcclCommHandle* found = nullptr;
  for (const HcclCommHandle* h : named.live) {
    if (h->device != device) continue;
    if (found != nullptr)
      fail(Errc::invalid_argument, "group", "expected one communicator of group '{}' on device {}, got several", name, device);
    found = h;
  }
  if (found == nullptr)
    fail(Errc::invalid_argument, "group",
         "expected a live communicator of group '{}' bound to device {} (the calling thread's current device), got none: no "
         "communicator of group '{}' on device {} (destroyed, or never created there)",
         name, device, name, device);
  return {found->comm, found->device};
}

}  // namespace gmmav::runtime

using namespace gmmav::runtime;

extern "C" {

HcclResult HcclCommInitAll(uint32_t ndev, int32_t* devices, HcclComm* comms) {
  return static_cast<HcclResult>(guarded(__func__, kHcclCodes, [&] {
    if (devices == nullptr) raise(HCCL_E_PTR, "devices", "expected {} device ids, got null", ndev);
    if (comms == nullptr) raise(HCCL_E_PTR, "comms", "expected room for {} handles, got null", ndev);
    if (ndev == 0 || ndev > static_cast<uint32_t>(kDeviceCount))
      raise(HCCL_E_PARA, "ndev", "expected a rank count in [1, {}], got {}", kDeviceCount, ndev);
    std::vector<bool> used(kDeviceCount, false);
    for (uint32_t i = 0; i < ndev; ++i) {
      if (devices[i] < 0 || devices[i] >= kDeviceCount)
        raise(HCCL_E_PARA, "devices", "expected device ids in [0, {}), got {} at index {}", kDeviceCount, devices[i], i);
      if (used[static_cast<std::size_t>(devices[i])])
        raise(HCCL_E_PARA, "devices", "expected distinct device ids, got {} twice (again at index {})", devices[i], i);
      used[static_cast<std::size_t>(devices[i])] = true;
    }
    auto group = gmmav::create_in_process_group(static_cast<int>(ndev));  // reads GMMAV_TIMEOUT_MS
    for (uint32_t i = 0; i < ndev; ++i) comms[i] = register_comm(std::move(group[i]), devices[i]);
    return HCCL_SUCCESS;
  }));
}

HcclResult HcclGetCommName(HcclComm comm, char* commName) {
  return static_cast<HcclResult>(guarded(__func__, kHcclCodes, [&] {
    const std::string& name = handle_of(comm).comm.name();
    if (commName == nullptr) raise(HCCL_E_PTR, "commName", "expected a buffer of {} bytes, got null", COMM_NAME_MAX_LENGTH);
    if (name.size() >= COMM_NAME_MAX_LENGTH)  // backends keep names short; never truncate silently
      raise(HCCL_E_INTERNAL, "comm", "expected a name shorter than {} characters, got '{}'", COMM_NAME_MAX_LENGTH, name);
    std::memcpy(commName, name.c_str(), name.size() + 1);
    return HCCL_SUCCESS;
  }));
}

HcclResult HcclGetRankSize(HcclComm comm, uint32_t* rankSize) {
  return static_cast<HcclResult>(guarded(__func__, kHcclCodes, [&] {
    const HcclCommHandle& h = handle_of(comm);
    if (rankSize == nullptr) raise(HCCL_E_PTR, "rankSize", "expected a place to store the size, got null");
    *rankSize = static_cast<uint32_t>(h.comm.size());
    return HCCL_SUCCESS;
  }));
}

HcclResult HcclGetRankId(HcclComm comm, uint32_t* rank) {
  return static_cast<HcclResult>(guarded(__func__, kHcclCodes, [&] {
    const HcclCommHandle& h = handle_of(comm);
    if (rank == nullptr) raise(HCCL_E_PTR, "rank", "expected a place to store the rank, got null");
    *rank = static_cast<uint32_t>(h.comm.rank());
    return HCCL_SUCCESS;
  }));
}

HcclResult HcclCommDestroy(HcclComm comm) {
  return static_cast<HcclResult>(guarded(__func__, kHcclCodes, [&] {
    destroy_comm(comm);
    return HCCL_SUCCESS;
  }));
}

const char* HcclGetErrorString(HcclResult code) {
  switch (code) {
    case HCCL_SUCCESS:
      return "success";
    case HCCL_E_PARA:
      return "invalid parameter";
    case HCCL_E_PTR:
      return "null pointer";
    case HCCL_E_MEMORY:
      return "memory error";
    case HCCL_E_INTERNAL:
      return "internal error";
    case HCCL_E_NOT_SUPPORT:
      return "not supported";
    case HCCL_E_NOT_FOUND:
      return "not found";
    case HCCL_E_UNAVAIL:
      return "resource unavailable";
    case HCCL_E_SYSCALL:
      return "system call failed";
    case HCCL_E_TIMEOUT:
      return "timeout";
    case HCCL_E_OPEN_FILE_FAILURE:
      return "cannot open file";
    case HCCL_E_TCP_CONNECT:
      return "TCP connection failed";
    case HCCL_E_ROCE_CONNECT:
      return "RoCE connection failed";
    case HCCL_E_TCP_TRANSFER:
      return "TCP transfer failed";
    case HCCL_E_ROCE_TRANSFER:
      return "RoCE transfer failed";
    case HCCL_E_RUNTIME:
      return "runtime call failed";
    case HCCL_E_DRV:
      return "driver call failed";
    case HCCL_E_PROFILING:
      return "profiling error";
    case HCCL_E_CCE:
      return "CCE error";
    case HCCL_E_NETWORK:
      return "network error";
    case HCCL_E_AGAIN:
      return "try again";
    case HCCL_E_REMOTE:
      return "remote error";
    case HCCL_E_SUSPENDING:
      return "communicator suspending";
    case HCCL_E_OPRETRY_FAIL:
      return "operation retry failed";
    case HCCL_E_OOM:
      return "out of memory";
    case HCCL_E_IN_STATUS:
      return "invalid status";
    default:
      return "unknown HcclResult";
  }
}

}  // extern "C"
