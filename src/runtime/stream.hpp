// A stream: an in-order asynchronous queue of work run by its own worker
// thread. Errors of the work are kept (the first one) until a synchronize
// reports them; later work still runs.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "acl/acl.h"

namespace gmmav::runtime {

/// What one piece of queued work ended with (code 0 = success).
struct WorkResult {
  int code = 0;
  std::string message;
};

class Stream {
 public:
  using Work = std::function<WorkResult()>;

  explicit Stream(int device);
  /// Waits for the queued work, then stops the worker.
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  int device() const noexcept { return device_; }

  /// Queues `work` behind everything queued before.
  void enqueue(Work work);

  /// Waits until the queue is empty and nothing runs, at most `limit`
  /// (nullopt = forever). Returns nullopt on expiry (the work's error, if
  /// any, stays pending); otherwise the first error since the last report
  /// (code 0 if none), which is then cleared.
  std::optional<WorkResult> wait(std::optional<std::chrono::milliseconds> limit);

  /// Pieces of work queued or running.
  std::size_t pending() const;

 private:
  void worker();

  const int device_;
  mutable std::mutex mu_;
  std::condition_variable has_work_;
  std::condition_variable idle_;
  std::deque<Work> queue_;
  std::size_t pending_ = 0;  // queued + running
  bool stop_ = false;
  WorkResult first_error_;
  std::thread thread_;  // last: starts after the members above exist
};

/// The stream an aclrtStream names: one created by aclrtCreateStream, or
/// (nullptr) the default stream of the calling thread's current context.
/// Throws ApiError: ACL_ERROR_INVALID_PARAM for an unknown handle,
/// ACL_ERROR_RT_CONTEXT_NULL when nullptr is given without a current context.
Stream& resolve_stream(aclrtStream handle);

/// Waits for `s` as aclrtSynchronizeStreamWithTimeout does (timeout in ms,
/// -1 = forever) and returns its status; records the message of a failure.
int synchronize(const char* api, Stream& s, std::int32_t timeout_ms);

/// Streams from aclrtCreateStream that belong to `device`.
std::vector<Stream*> streams_of_device(int device);

}  // namespace gmmav::runtime
