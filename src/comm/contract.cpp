// The cross-rank contract check over every rank's CallInfo (docs/spec.md §2; the in-process
// backend, where one rank sees them all) and the receive layout, shared by every backend.
#include <algorithm>
#include <vector>

#include "comm/call_header.hpp"
#include "comm/communicator.hpp"
#include "comm/count_verdict.hpp"
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

// The first mismatch, through the functions every backend's check uses
// (count_verdict.hpp): each rank's column read from the table, its first
// mismatch, the group's first, its one message.
[[noreturn]] void refuse_first_mismatch(std::span<const CallInfo* const> all, std::int64_t e) {
  const int W = static_cast<int>(all.size());
  const auto E = static_cast<std::size_t>(e);
  std::vector<Mismatch> firsts(all.size());
  std::vector<std::int64_t> column(E * all.size());
  for (int d = 0; d < W; ++d) {
    for (std::size_t s = 0; s < all.size(); ++s)
      std::copy_n(all[s]->send_counts.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(d) * E), E,
                  column.begin() + static_cast<std::ptrdiff_t>(s * E));
    firsts[static_cast<std::size_t>(d)] = column_mismatch(column, all[static_cast<std::size_t>(d)]->recv_counts, d, W, e);
  }
  refuse(first_mismatch(firsts), W, e);
}

}  // namespace

void check_contract(std::span<const CallInfo* const> all) {
  std::vector<CallShape> shapes(all.size());
  for (std::size_t r = 0; r < all.size(); ++r) shapes[r] = shape_of(*all[r]);
  check_shapes(shapes);
  const int e = all[0]->local_experts;
  if (!counts_agree(all, e)) refuse_first_mismatch(all, e);  // some pair differs
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
