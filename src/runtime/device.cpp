// aclInit / aclFinalize, devices, contexts and the calling thread's current context.
#include "runtime/device.hpp"

#include <sys/stat.h>

#include <array>
#include <unordered_set>

#include "runtime/api_guard.hpp"
#include "runtime/status_codes.hpp"
#include "runtime/stream.hpp"

#include "gmmav/build_options.hpp"
#if GMMAV_WITH_MPI
#include "gmmav/mpi.hpp"
#endif

namespace gmmav::runtime {
namespace {

struct Registry {
  std::mutex mu;
  bool initialized = false;
  std::unordered_set<Context*> contexts;                 // every live context
  std::array<Context*, kDeviceCount> implicit_ctx = {};  // per device, made by aclrtSetDevice
};

Registry& registry() {
  static Registry* r = new Registry;  // never destroyed: stream workers may outlive static destruction
  return *r;
}

thread_local Context* t_current = nullptr;

// The thread's current context if it is still alive (another thread may have destroyed it).
Context* live_current() {
  Registry& r = registry();
  std::lock_guard lk(r.mu);
  if (t_current != nullptr && r.contexts.count(t_current) == 0) t_current = nullptr;
  return t_current;
}

Context* find_context(void* handle) {
  Registry& r = registry();
  std::lock_guard lk(r.mu);
  auto* c = static_cast<Context*>(handle);
  return r.contexts.count(c) != 0 ? c : nullptr;
}

}  // namespace

void check_device_id(std::int64_t id, const char* param) {
  if (id < 0 || id >= kDeviceCount)
    raise(ACL_ERROR_RT_INVALID_DEVICEID, param, "expected a device id in [0, {}), got {}", kDeviceCount, id);
}

Context& current_context() {
  Context* c = live_current();
  if (c == nullptr)
    raise(ACL_ERROR_RT_CONTEXT_NULL, "context",
          "expected a current device on this thread (call aclrtSetDevice or aclrtSetCurrentContext first), got none");
  return *c;
}

int current_device() noexcept {
  const Context* c = live_current();
  return c != nullptr ? c->device : -1;
}

Stream& default_stream(Context& ctx) {
  std::lock_guard lk(ctx.mu);
  if (!ctx.default_stream) ctx.default_stream = std::make_unique<Stream>(ctx.device);
  return *ctx.default_stream;
}

}  // namespace gmmav::runtime

using namespace gmmav::runtime;

extern "C" {

aclError aclInit(const char* configPath) {
  return guarded(__func__, kAclCodes, [&] {
    // The configuration file is not interpreted (no option applies to the CPU), but it must exist.
    struct stat st {};
    if (configPath != nullptr && configPath[0] != '\0' && ::stat(configPath, &st) != 0)
      raise(ACL_ERROR_INVALID_FILE, "configPath", "expected an existing file or null, got '{}'", configPath);
    Registry& r = registry();
    std::lock_guard lk(r.mu);
    if (r.initialized)
      raise(ACL_ERROR_REPEAT_INITIALIZE, "aclInit", "expected one aclInit per aclFinalize, got a second aclInit");
    r.initialized = true;
    return ACL_SUCCESS;
  });
}

aclError aclFinalize(void) {
  return guarded(__func__, kAclCodes, [&] {
    Registry& r = registry();
    std::lock_guard lk(r.mu);
    if (!r.initialized) raise(ACL_ERROR_REPEAT_FINALIZE, "aclFinalize", "expected a preceding aclInit, got none");
    r.initialized = false;
#if GMMAV_WITH_MPI
    gmmav::finalize_mpi();  // only if gmmav initialised MPI (HcclCommInitRootInfo); the program's own MPI is left alone
#endif
    return ACL_SUCCESS;
  });
}

aclError aclrtSetDevice(int32_t deviceId) {
  return guarded(__func__, kAclCodes, [&] {
    check_device_id(deviceId);
    Registry& r = registry();
    std::lock_guard lk(r.mu);
    Context*& c = r.implicit_ctx[static_cast<std::size_t>(deviceId)];
    if (c == nullptr) {
      c = new Context(deviceId, true);
      r.contexts.insert(c);
    }
    t_current = c;
    return ACL_SUCCESS;
  });
}

aclError aclrtResetDevice(int32_t deviceId) {
  return guarded(__func__, kAclCodes, [&] {
    check_device_id(deviceId);
    // The device's default context stays (other threads may still use it); this
    // thread just stops acting for the device.
    Registry& r = registry();
    std::lock_guard lk(r.mu);
    if (t_current != nullptr && (r.contexts.count(t_current) == 0 || t_current->device == deviceId)) t_current = nullptr;
    return ACL_SUCCESS;
  });
}

aclError aclrtGetDevice(int32_t* deviceId) {
  return guarded(__func__, kAclCodes, [&] {
    if (deviceId == nullptr) raise(ACL_ERROR_INVALID_PARAM, "deviceId", "expected a place to store the id, got null");
    *deviceId = current_context().device;
    return ACL_SUCCESS;
  });
}

aclError aclrtGetDeviceCount(uint32_t* count) {
  return guarded(__func__, kAclCodes, [&] {
    if (count == nullptr) raise(ACL_ERROR_INVALID_PARAM, "count", "expected a place to store the count, got null");
    *count = kDeviceCount;
    return ACL_SUCCESS;
  });
}

aclError aclrtGetRunMode(aclrtRunMode* runMode) {
  return guarded(__func__, kAclCodes, [&] {
    if (runMode == nullptr) raise(ACL_ERROR_INVALID_PARAM, "runMode", "expected a place to store the mode, got null");
    *runMode = ACL_HOST;
    return ACL_SUCCESS;
  });
}

aclError aclrtCreateContext(aclrtContext* context, int32_t deviceId) {
  return guarded(__func__, kAclCodes, [&] {
    if (context == nullptr) raise(ACL_ERROR_INVALID_PARAM, "context", "expected a place to store the handle, got null");
    check_device_id(deviceId);
    auto c = std::make_unique<Context>(deviceId, false);
    Registry& r = registry();
    std::lock_guard lk(r.mu);
    r.contexts.insert(c.get());
    t_current = c.get();  // as on the vendor runtime, the new context becomes current
    *context = c.release();
    return ACL_SUCCESS;
  });
}

aclError aclrtDestroyContext(aclrtContext context) {
  return guarded(__func__, kAclCodes, [&] {
    if (context == nullptr) raise(ACL_ERROR_INVALID_PARAM, "context", "expected a context from aclrtCreateContext, got null");
    std::unique_ptr<Context> c;
    {
      Registry& r = registry();
      std::lock_guard lk(r.mu);
      auto* p = static_cast<Context*>(context);
      if (r.contexts.count(p) == 0 || p->implicit)
        raise(ACL_ERROR_INVALID_PARAM, "context", "expected a live context from aclrtCreateContext, got {}", context);
      r.contexts.erase(p);
      if (t_current == p) t_current = nullptr;
      c.reset(p);
    }
    c.reset();  // outside the lock: waits for its default stream's work
    return ACL_SUCCESS;
  });
}

aclError aclrtSetCurrentContext(aclrtContext context) {
  return guarded(__func__, kAclCodes, [&] {
    Context* c = context == nullptr ? nullptr : find_context(context);
    if (c == nullptr)
      raise(ACL_ERROR_INVALID_PARAM, "context", "expected a live context from aclrtCreateContext, got {}", context);
    t_current = c;
    return ACL_SUCCESS;
  });
}

aclError aclrtGetCurrentContext(aclrtContext* context) {
  return guarded(__func__, kAclCodes, [&] {
    if (context == nullptr) raise(ACL_ERROR_INVALID_PARAM, "context", "expected a place to store the handle, got null");
    *context = &current_context();
    return ACL_SUCCESS;
  });
}

}  // extern "C"
