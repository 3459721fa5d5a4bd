// The cross-rank contract check (docs/spec.md §2) and the receive layout, shared by every backend.
#include <algorithm>
#include <vector>

#include "comm/communicator.hpp"
#include "common/block_layout.hpp"
#include "common/fail.hpp"

namespace gmmav::comm {
namespace {

// send@s[d*e + j] == recv@d[s*e + j] for every (s, d, j), in square blocks of
// ranks: the recv lists' lines a block touches stay in cache (row-by-row, every
// read of the W² pairs would miss it). Lists have length e * W.
bool counts_agree(std::span<const CallInfo* const> all, int e) {
  constexpr std::size_t kBlock = 64;
  const std::size_t W = all.size(), E = static_cast<std::size_t>(e);
  bool agree = true;
  for (std::size_t s0 = 0; s0 < W; s0 += kBlock)
    for (std::size_t d0 = 0; d0 < W; d0 += kBlock)
      for (std::size_t s = s0; s < std::min(W, s0 + kBlock); ++s) {
        const std::int64_t* sent = all[s]->send_counts.data();
        for (std::size_t d = d0; d < std::min(W, d0 + kBlock); ++d) {
          const std::int64_t* recv = all[d]->recv_counts.data();
          for (std::size_t j = 0; j < E; ++j) agree &= sent[d * E + j] == recv[s * E + j];
        }
      }
  return agree;
}

}  // namespace

void check_contract(std::span<const CallInfo* const> all) {
  const int W = static_cast<int>(all.size());
  const CallInfo& r0 = *all[0];
  for (int s = 1; s < W; ++s) {
    const CallInfo& c = *all[static_cast<std::size_t>(s)];
    if (c.op != r0.op)
      fail(Errc::count_mismatch, "group", "ranks disagree on the operator: rank 0 runs {}, rank {} runs {}", to_string(r0.op), s,
           to_string(c.op));
    if (c.local_experts != r0.local_experts)
      fail(Errc::count_mismatch, "gmmWeight", "ranks disagree on the number of local experts: rank 0 has {}, rank {} has {}",
           r0.local_experts, s, c.local_experts);
    if (c.dtype != r0.dtype)
      fail(Errc::count_mismatch, "gmmX", "ranks disagree on the dtype: rank 0 has {}, rank {} has {}", to_string(r0.dtype), s,
           to_string(c.dtype));
    if (c.row_width != r0.row_width) {
      const bool combine = r0.op == Op::combine;  // the combine op exchanges results (N1 wide), the dispatch op inputs (H1)
      fail(Errc::count_mismatch, combine ? "y" : "gmmX", "ranks disagree on {}: rank 0 has {}, rank {} has {}",
           combine ? "N1" : "H1", r0.row_width, s, c.row_width);
    }
  }
  const int e = r0.local_experts;
  const std::size_t n = static_cast<std::size_t>(e) * static_cast<std::size_t>(W);
  for (int s = 0; s < W; ++s) {
    const CallInfo& c = *all[static_cast<std::size_t>(s)];
    if (c.send_counts.size() != n || c.recv_counts.size() != n)
      fail(Errc::count_mismatch, "sendCounts", "rank {} has count lists of length {} and {}, expected e * W = {}", s,
           c.send_counts.size(), c.recv_counts.size(), n);
  }
  if (counts_agree(all, e)) return;
  // Some pair differs: find the first in (source, destination, expert) order, the same on every rank.
  for (int s = 0; s < W; ++s) {
    for (int d = 0; d < W; ++d) {
      for (int j = 0; j < e; ++j) {
        const std::int64_t sent = all[static_cast<std::size_t>(s)]->send_counts[static_cast<std::size_t>(d * e + j)];
        const std::int64_t recv = all[static_cast<std::size_t>(d)]->recv_counts[static_cast<std::size_t>(s * e + j)];
        if (sent != recv)
          fail(Errc::count_mismatch, "recvCounts",
               "cross-rank count mismatch at (source {}, destination {}, expert {}): rank {} sendCounts[{}] = {} but rank {} "
               "recvCounts[{}] = {}",
               s, d, j, s, d * e + j, sent, d, s * e + j, recv);
      }
    }
  }
}

std::vector<std::int64_t> recv_offsets(const CallInfo& mine) {
  std::vector<std::int64_t> offset(mine.recv_counts.size());
  layout::recv_layout(mine.op, mine.recv_counts, mine.local_experts, offset);
  return offset;
}

std::vector<std::int64_t> group_rows(const CallInfo& mine) {
  return layout::group_rows(mine.op, mine.send_counts, mine.recv_counts, mine.local_experts);
}

void check_contract(std::span<const CallInfo> all) {
  std::vector<const CallInfo*> p;
  p.reserve(all.size());
  for (const CallInfo& c : all) p.push_back(&c);
  check_contract(p);
}

}  // namespace gmmav::comm
