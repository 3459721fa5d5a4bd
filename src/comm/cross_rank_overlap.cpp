// The overlap check across the ranks of one address space: a rank's output
// must not be another rank's input or output (its own tensors were checked by
// Plan::check). Sorting the intervals keeps it O(n log n) for n = 6W tensors.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "comm/communicator.hpp"
#include "common/fail.hpp"

namespace gmmav::comm {
namespace {

struct Interval {
  std::uintptr_t lo = 0, hi = 0;  // [lo, hi)
  int rank = 0;
  const char* name = "";
  bool output = false;
};

[[noreturn]] void refuse(const Interval& out, const Interval& other) {
  fail(Errc::invalid_argument, out.name,
       "expected memory that no tensor of another rank overlaps, got rank {}'s {} overlapping rank {}'s {}", out.rank, out.name,
       other.rank, other.name);
}

}  // namespace

void check_no_overlap_across_ranks(std::span<const CallInfo* const> all) {
  std::vector<Interval> v;
  v.reserve(all.size() * 6);
  for (std::size_t r = 0; r < all.size(); ++r) {
    const auto add = [&](const TensorBytes& t, bool output) {
      if (t.bytes == 0 || t.data == nullptr) return;
      const auto lo = reinterpret_cast<std::uintptr_t>(t.data);
      v.push_back({lo, lo + t.bytes, static_cast<int>(r), t.name, output});
    };
    for (const TensorBytes& t : all[r]->outputs) add(t, true);
    for (const TensorBytes& t : all[r]->inputs) add(t, false);
  }
  // Ties in rank order, so every rank that runs this names the same pair.
  std::sort(v.begin(), v.end(), [](const Interval& a, const Interval& b) {
    return a.lo != b.lo ? a.lo < b.lo : a.rank != b.rank ? a.rank < b.rank : a.output > b.output;
  });
  // Sweep: an interval overlaps an earlier one iff it starts before the
  // largest end so far (of any interval when it is an output, of the outputs
  // when it is an input: inputs may overlap inputs).
  const Interval* reach_any = nullptr;
  const Interval* reach_out = nullptr;
  for (const Interval& c : v) {
    if (c.output && reach_any != nullptr && c.lo < reach_any->hi) refuse(c, *reach_any);
    if (!c.output && reach_out != nullptr && c.lo < reach_out->hi) refuse(*reach_out, c);
    if (reach_any == nullptr || c.hi > reach_any->hi) reach_any = &c;
    if (c.output && (reach_out == nullptr || c.hi > reach_out->hi)) reach_out = &c;
  }
}

}  // namespace gmmav::comm
