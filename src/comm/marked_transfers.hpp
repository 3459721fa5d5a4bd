// A call's transfers on a transport whose transfers complete where the
// exchange cannot test them: someone else — a thread waiting for them, the
// transport's own progress — marks each one's TransferMark when it completed.
// test() starts what was posted since the last test (one batch) and reads the
// marks without blocking.
// torch.distributed is such a transport (python/src/torch_dist_transport.hpp,
// D100: gloo's transfers complete only inside a blocking wait).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "comm/transport.hpp"

namespace gmmav::comm {

/// A posted transfer's outcome. Made with what was posted (bytes, peer,
/// tag); whoever saw it complete may correct those (a receive's arrived
/// bytes) and then calls set(), once, from any thread.
struct TransferMark {
  std::int64_t bytes = 0;  ///< receives: the bytes that arrived
  int source = -1;         ///< receives: the sender
  int tag = 0;
  std::string error;  ///< empty when it succeeded
  std::atomic<bool> complete{false};

  void set(std::string failure) {
    error = std::move(failure);
    complete.store(true, std::memory_order_release);
  }
};

/// A transfer to start: a send when `send`, of `bytes` at `data`; `mark`
/// is set when it completed.
struct TransferStart {
  bool send = false;
  Message message;
  std::byte* data = nullptr;
  std::int64_t bytes = 0;
  std::shared_ptr<TransferMark> mark;
};

class MarkedTransfers final : public Transfers {
 public:
  /// Starts transfers, in order, counting them in `started`. Posts are
  /// batched: what send() and receive() queue starts at the next test() (or
  /// test_all()), all in one call — a transport whose every entry costs
  /// something (Python's GIL) pays once per drive. Runs under the
  /// transport's lock(); may throw (what it did not start is then marked failed).
  using Start = std::function<void(std::span<const TransferStart> batch, std::size_t& started)>;
  /// Takes the marks of the transfers a failed call left (they cannot be
  /// cancelled): the transport keeps what they use until every one is set.
  using Keep = std::function<void(std::vector<std::shared_ptr<TransferMark>> left)>;

  MarkedTransfers(std::int64_t row_bytes, Start start, Keep keep)
      : row_bytes_(row_bytes), start_(std::move(start)), keep_(std::move(keep)) {}

  void send(const Message& m, const std::byte* data, const InFlight& what) override;
  void receive(const Message& m, std::byte* data, const InFlight& what) override;
  std::span<const Completed> test() override;
  bool test_all() override;
  bool empty() const override { return whats_.empty(); }
  std::size_t size() const override { return whats_.size(); }
  std::span<const InFlight> purposes() const override { return whats_; }
  void abandon() noexcept override;

 private:
  void post(bool send, const Message& m, std::byte* data, const InFlight& what);
  void start_queued();

  std::int64_t row_bytes_;
  Start start_;
  Keep keep_;
  std::vector<InFlight> whats_;                       // [i]: what marks_[i]'s transfer is for
  std::vector<std::shared_ptr<TransferMark>> marks_;  // in posting order
  std::vector<TransferStart> queued_;                 // posted, not started yet
  std::vector<Completed> done_;                       // test()'s answer
};

}  // namespace gmmav::comm
