// comm::SendRing, the MPI exchange's staging slots: a slot is free again only
// once all of its tile's rows were reported written and every message queued
// for them was sent, whatever order parts and sends come in.
#include "comm/send_ring.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <random>
#include <set>
#include <vector>

namespace {

using gmmav::comm::SendRing;

TEST(CommSendRing, SlotsAreHandedOutOnceAndFreedAfterTheirLastMessage) {
  std::vector<std::byte> memory(3 * 100);
  SendRing ring(memory.data(), 3, 100);
  std::set<std::byte*> taken;
  for (int i = 0; i < 3; ++i) {
    ASSERT_FALSE(ring.full());
    std::byte* slot = ring.take(10);
    EXPECT_EQ((slot - memory.data()) % 100, 0);
    EXPECT_TRUE(taken.insert(slot).second);
  }
  EXPECT_TRUE(ring.full());
  std::byte* first = memory.data();
  const int slot = ring.slot_of(first + 40);  // a part inside the slot
  EXPECT_EQ(slot, 0);
  ring.queued(slot, 4, 2);  // 4 of 10 rows written: 2 messages
  EXPECT_FALSE(ring.sent(slot));
  EXPECT_FALSE(ring.sent(slot));  // all sent, but 6 rows still unwritten
  ring.queued(slot, 6, 1);
  EXPECT_TRUE(ring.sent(slot));
  EXPECT_FALSE(ring.full());
  EXPECT_EQ(ring.take(5), first);
}

TEST(CommSendRing, RandomPartsAndSends) {
  std::mt19937_64 rng(7);
  for (int round = 0; round < 200; ++round) {
    const int slots = 1 + static_cast<int>(rng() % 5);
    std::vector<std::byte> memory(static_cast<std::size_t>(slots) * 8);
    SendRing ring(memory.data(), slots, 8);
    std::vector<std::int64_t> left(static_cast<std::size_t>(slots)), in_flight(static_cast<std::size_t>(slots));
    std::vector<int> busy;
    for (int step = 0; step < 100; ++step) {
      if (!ring.full() && rng() % 3 == 0) {
        const std::int64_t rows = 1 + static_cast<std::int64_t>(rng() % 8);
        const int s = ring.slot_of(ring.take(rows));
        ASSERT_EQ(left[static_cast<std::size_t>(s)], 0);
        left[static_cast<std::size_t>(s)] = rows;
        busy.push_back(s);
      } else if (!busy.empty()) {
        const int s = busy[rng() % busy.size()];
        auto& l = left[static_cast<std::size_t>(s)];
        auto& f = in_flight[static_cast<std::size_t>(s)];
        if (l > 0 && (f == 0 || rng() % 2 == 0)) {
          const std::int64_t part = 1 + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(l));
          const std::int64_t messages = 1 + static_cast<std::int64_t>(rng() % 3);
          ring.queued(s, part, messages);
          l -= part;
          f += messages;
        } else if (f > 0) {
          --f;
          const bool free = ring.sent(s);
          ASSERT_EQ(free, f == 0 && l == 0);
          if (free) busy.erase(std::find(busy.begin(), busy.end(), s));
        }
      }
    }
    EXPECT_EQ(ring.full(), static_cast<int>(busy.size()) == slots);
  }
}

}  // namespace
