// Devices and contexts. A device is a rank slot (no hardware behind it); a
// context is bound to one device, and the calling thread's current context
// (set by aclrtSetDevice, aclrtCreateContext or aclrtSetCurrentContext) says
// which device — hence which rank of a group — the thread acts for.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>

#include "runtime/stream.hpp"

namespace gmmav::runtime {

/// Device slots offered (aclrtGetDeviceCount). The aclnn op allows at most
/// e * W <= 256 ranks' worth of experts, so 256 slots cover every group.
inline constexpr int kDeviceCount = 256;

struct Context {
  explicit Context(int d, bool is_implicit) : device(d), implicit(is_implicit) {}
  const int device;
  const bool implicit;  ///< the device's default context (made by aclrtSetDevice)
  std::mutex mu;
  std::unique_ptr<Stream> default_stream;  ///< made on first use of a null aclrtStream
};

/// Throws ApiError(ACL_ERROR_RT_INVALID_DEVICEID) unless id is a device slot.
void check_device_id(std::int64_t id, const char* param = "deviceId");

/// The calling thread's current context. Throws ApiError(ACL_ERROR_RT_CONTEXT_NULL) if none.
Context& current_context();

/// The device of the calling thread's current context, or -1 if none.
int current_device() noexcept;

/// The context's default stream (created on first use).
Stream& default_stream(Context& ctx);

}  // namespace gmmav::runtime
