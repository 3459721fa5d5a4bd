// The send ring of one MPI call: tile-sized slots of the communicator's
// staging (D47), as many as the workspace size allows. A worker takes a slot
// for a tile for a peer, writes the tile (maybe in parts, each queued as its
// messages), and the slot is free again once every row of the tile was
// reported written and every message of it was sent. Not thread-safe: the
// exchange guards it with its queue lock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace gmmav::comm {

class SendRing {
 public:
  SendRing(std::byte* base, std::int64_t slots, std::int64_t slot_bytes) : base_(base), slot_bytes_(slot_bytes) {
    for (std::int64_t i = slots; i-- > 0;) free_.push_back(static_cast<int>(i));
    messages_.assign(static_cast<std::size_t>(slots), 0);
    unwritten_.assign(static_cast<std::size_t>(slots), 0);
  }

  bool full() const { return free_.empty(); }
  /// A free slot for a tile of `rows` rows (not full()).
  std::byte* take(std::int64_t rows) {
    const int slot = free_.back();
    free_.pop_back();
    unwritten_[static_cast<std::size_t>(slot)] = rows;
    return base_ + static_cast<std::int64_t>(slot) * slot_bytes_;
  }
  /// The slot holding `where` (a pointer take() handed out, or into it).
  int slot_of(const void* where) const { return static_cast<int>((static_cast<const std::byte*>(where) - base_) / slot_bytes_); }
  /// `rows` rows of the slot's tile are written and go as `messages` messages.
  void queued(int slot, std::int64_t rows, std::int64_t messages) {
    unwritten_[static_cast<std::size_t>(slot)] -= rows;
    messages_[static_cast<std::size_t>(slot)] += messages;
  }
  /// One message of the slot's tile was sent; true when the slot is free again.
  bool sent(int slot) {
    const auto i = static_cast<std::size_t>(slot);
    if (--messages_[i] != 0 || unwritten_[i] != 0) return false;
    free_.push_back(slot);
    return true;
  }

 private:
  std::byte* base_;
  std::int64_t slot_bytes_;
  std::vector<int> free_;
  std::vector<std::int64_t> messages_;   // [slot]: its tile's messages queued or in flight
  std::vector<std::int64_t> unwritten_;  // [slot]: its tile's rows not yet reported written
};

}  // namespace gmmav::comm
