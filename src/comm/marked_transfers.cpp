#include "comm/marked_transfers.hpp"

#include <utility>

namespace gmmav::comm {

void MarkedTransfers::send(const Message& m, const std::byte* data, const InFlight& what) {
  post(true, m, const_cast<std::byte*>(data), what);  // NOLINT(cppcoreguidelines-pro-type-const-cast): only read
}

void MarkedTransfers::receive(const Message& m, std::byte* data, const InFlight& what) { post(false, m, data, what); }

void MarkedTransfers::post(bool send, const Message& m, std::byte* data, const InFlight& what) {
  const std::int64_t bytes = m.unit == Unit::row ? m.count * row_bytes_ : m.count;
  auto mark = std::make_shared<TransferMark>();
  mark->bytes = bytes;
  mark->source = m.peer;
  mark->tag = m.tag;
  whats_.push_back(what);
  marks_.push_back(mark);
  queued_.push_back({.send = send, .message = m, .data = data, .bytes = bytes, .mark = std::move(mark)});
}

// Starts what was posted since the last test, in one call. A failure marks
// what did not start, so nothing waits for it (the call fails; the group is broken).
void MarkedTransfers::start_queued() {
  if (queued_.empty()) return;
  std::vector<TransferStart> batch;
  batch.swap(queued_);
  std::size_t started = 0;
  try {
    start_(batch, started);
  } catch (...) {
    for (std::size_t i = started; i < batch.size(); ++i) batch[i].mark->set("not started");
    throw;
  }
}

// What was marked complete, in posting order; the rest stays.
std::span<const Completed> MarkedTransfers::test() {
  start_queued();
  done_.clear();
  std::size_t kept = 0;
  for (std::size_t i = 0; i < marks_.size(); ++i) {
    const TransferMark& m = *marks_[i];
    if (m.complete.load(std::memory_order_acquire)) {
      done_.push_back(
          {.what = whats_[i], .source = m.source, .tag = m.tag, .bytes = m.error.empty() ? m.bytes : 0, .error = m.error});
      continue;
    }
    if (kept != i) {
      whats_[kept] = whats_[i];
      marks_[kept] = std::move(marks_[i]);
    }
    ++kept;
  }
  whats_.resize(kept);
  marks_.resize(kept);
  return done_;
}

bool MarkedTransfers::test_all() {
  start_queued();
  for (const auto& m : marks_)
    if (!m->complete.load(std::memory_order_acquire)) return false;
  whats_.clear();
  marks_.clear();
  return true;
}

void MarkedTransfers::abandon() noexcept {
  for (const TransferStart& t : queued_) t.mark->set("not started");  // never started: nothing to keep
  queued_.clear();
  whats_.clear();
  try {
    keep_(std::move(marks_));
  } catch (...) {  // out of memory keeping them: std::terminate would be no better
  }
  marks_.clear();
}

}  // namespace gmmav::comm
