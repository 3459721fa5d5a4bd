// Streams: the queue and its worker, the handle registry and the aclrt stream calls.
#include "runtime/stream.hpp"

#include <unordered_set>
#include <utility>
#include <vector>

#include "runtime/api_guard.hpp"
#include "runtime/device.hpp"
#include "runtime/status_codes.hpp"

namespace gmmav::runtime {

Stream::Stream(int device) : device_(device), thread_([this] { worker(); }) {}

Stream::~Stream() {
  {
    std::unique_lock lk(mu_);
    idle_.wait(lk, [&] { return pending_ == 0; });
    stop_ = true;
  }
  has_work_.notify_all();
  thread_.join();
}

void Stream::enqueue(Work work) {
  {
    std::lock_guard lk(mu_);
    queue_.push_back(std::move(work));
    ++pending_;
  }
  has_work_.notify_one();
}

void Stream::worker() {
  for (;;) {
    Work work;
    {
      std::unique_lock lk(mu_);
      has_work_.wait(lk, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stop_ and drained
      work = std::move(queue_.front());
      queue_.pop_front();
    }
    WorkResult r;
    try {
      r = work();
    } catch (const std::exception& e) {
      r = {ACL_ERROR_RT_INTERNAL_ERROR, std::string("stream work threw: ") + e.what()};
    } catch (...) {
      r = {ACL_ERROR_RT_INTERNAL_ERROR, "stream work threw an unknown exception"};
    }
    if (r.code != 0) log_line(r.message);  // now, where it happened; the synchronizing thread gets it too
    {
      std::lock_guard lk(mu_);
      if (r.code != 0 && first_error_.code == 0) first_error_ = std::move(r);
      --pending_;
    }
    idle_.notify_all();
  }
}

std::optional<WorkResult> Stream::wait(std::optional<std::chrono::milliseconds> limit) {
  std::unique_lock lk(mu_);
  const auto done = [&] { return pending_ == 0; };
  if (limit) {
    if (!idle_.wait_for(lk, *limit, done)) return std::nullopt;
  } else {
    idle_.wait(lk, done);
  }
  return std::exchange(first_error_, WorkResult{});
}

std::size_t Stream::pending() const {
  std::lock_guard lk(mu_);
  return pending_;
}

namespace {

// Streams handed out by aclrtCreateStream (contexts own their default streams).
std::mutex g_mu;
std::unordered_set<Stream*> g_streams;

Stream* find(aclrtStream handle) {
  std::lock_guard lk(g_mu);
  auto* s = static_cast<Stream*>(handle);
  return g_streams.count(s) != 0 ? s : nullptr;
}

}  // namespace

Stream& resolve_stream(aclrtStream handle) {
  if (handle == nullptr) return default_stream(current_context());
  Stream* s = find(handle);
  if (s == nullptr)
    raise(ACL_ERROR_INVALID_PARAM, "stream", "expected a stream from aclrtCreateStream, got an unknown or destroyed handle {}",
          handle);
  return *s;
}

int synchronize(const char* api, Stream& s, std::int32_t timeout_ms) {
  if (timeout_ms < -1)
    raise(ACL_ERROR_RT_PARAM_INVALID, "timeout", "expected -1 (wait forever), 0 (check only) or a positive number of ms, got {}",
          timeout_ms);
  std::optional<std::chrono::milliseconds> limit;
  if (timeout_ms >= 0) limit = std::chrono::milliseconds(timeout_ms);
  const auto r = s.wait(limit);
  if (!r)
    raise(ACL_ERROR_RT_STREAM_SYNC_TIMEOUT, "timeout",
          "expected the stream of device {} to finish within {} ms, but {} task(s) are still queued or running", s.device(),
          timeout_ms, s.pending());
  if (r->code != 0) record_error(api, "queued work failed: " + r->message, /*log=*/false);  // logged when it happened
  return r->code;
}

std::vector<Stream*> streams_of_device(int device) {
  std::lock_guard lk(g_mu);
  std::vector<Stream*> out;
  for (Stream* s : g_streams)
    if (s->device() == device) out.push_back(s);
  return out;
}

}  // namespace gmmav::runtime

using namespace gmmav::runtime;

extern "C" {

aclError aclrtCreateStream(aclrtStream* stream) {
  return guarded(__func__, kAclCodes, [&] {
    if (stream == nullptr) raise(ACL_ERROR_INVALID_PARAM, "stream", "expected a place to store the handle, got null");
    const int device = current_context().device;
    auto s = std::make_unique<Stream>(device);
    {
      std::lock_guard lk(g_mu);
      g_streams.insert(s.get());
    }
    *stream = s.release();
    return ACL_SUCCESS;
  });
}

aclError aclrtDestroyStream(aclrtStream stream) {
  return guarded(__func__, kAclCodes, [&] {
    if (stream == nullptr) raise(ACL_ERROR_INVALID_PARAM, "stream", "expected a stream from aclrtCreateStream, got null");
    std::unique_ptr<Stream> s;
    {
      std::lock_guard lk(g_mu);
      auto* p = static_cast<Stream*>(stream);
      if (g_streams.erase(p) == 0)
        raise(ACL_ERROR_INVALID_PARAM, "stream",
              "expected a stream from aclrtCreateStream, got an unknown or destroyed handle {}", stream);
      s.reset(p);
    }
    s.reset();  // waits for the queued work
    return ACL_SUCCESS;
  });
}

aclError aclrtSynchronizeStream(aclrtStream stream) {
  constexpr const char* api = "aclrtSynchronizeStream";
  return guarded(api, kAclCodes, [&] { return synchronize(api, resolve_stream(stream), -1); });
}

aclError aclrtSynchronizeStreamWithTimeout(aclrtStream stream, int32_t timeout) {
  constexpr const char* api = "aclrtSynchronizeStreamWithTimeout";
  return guarded(api, kAclCodes, [&] { return synchronize(api, resolve_stream(stream), timeout); });
}

aclError aclrtSynchronizeDevice(void) {
  constexpr const char* api = "aclrtSynchronizeDevice";
  return guarded(api, kAclCodes, [&] {
    Context& ctx = current_context();
    int first = synchronize(api, default_stream(ctx), -1);
    for (Stream* s : streams_of_device(ctx.device)) {
      const int r = synchronize(api, *s, -1);
      if (first == 0) first = r;
    }
    return first;
  });
}

}  // extern "C"
