#include "comm/call_header.hpp"

#include <algorithm>

#include "common/fail.hpp"

namespace gmmav::comm {
namespace {

std::uint64_t mix(std::uint64_t h, std::uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  h ^= h >> 31;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 29;
  return h;
}

}  // namespace

CountDigest digest_of(std::span<const std::int64_t> send, std::span<const std::int64_t> recv) {
  CountDigest d{0x243f6a8885a308d3ULL, 0x13198a2e03707344ULL};
  std::uint64_t i = 0;
  for (const std::span<const std::int64_t> list : {send, recv}) {
    for (std::int64_t v : list) {
      d.a = mix(d.a, static_cast<std::uint64_t>(v) ^ (i << 40));
      d.b = mix(d.b ^ 0x94d049bb133111ebULL, static_cast<std::uint64_t>(v) * 0xd6e8feb86659fd93ULL + i);
      ++i;
    }
    d.a = mix(d.a, i);
    d.b = mix(d.b, ~i);
  }
  return d;
}

CallShape shape_of(const CallInfo& c) {
  return {.op = c.op,
          .experts = c.local_experts,
          .dtype = c.dtype,
          .row_width = c.row_width,
          .send_length = static_cast<std::int64_t>(c.send_counts.size()),
          .recv_length = static_cast<std::int64_t>(c.recv_counts.size())};
}

void check_shapes(std::span<const CallShape> all) {
  const CallShape& r0 = all[0];
  for (std::size_t s = 1; s < all.size(); ++s) {
    const CallShape& c = all[s];
    if (c.op != r0.op)
      fail(Errc::count_mismatch, "group", "ranks disagree on the operator: rank 0 runs {}, rank {} runs {}", to_string(r0.op), s,
           to_string(c.op));
    if (c.experts != r0.experts)
      fail(Errc::count_mismatch, "gmmWeight", "ranks disagree on the number of local experts: rank 0 has {}, rank {} has {}",
           r0.experts, s, c.experts);
    if (c.dtype != r0.dtype)
      fail(Errc::count_mismatch, "gmmX", "ranks disagree on the dtype: rank 0 has {}, rank {} has {}", to_string(r0.dtype), s,
           to_string(c.dtype));
    if (c.row_width != r0.row_width) {
      const bool combine = r0.op == Op::combine;  // the combine op exchanges results (N1 wide), the dispatch op inputs (H1)
      fail(Errc::count_mismatch, combine ? "y" : "gmmX", "ranks disagree on {}: rank 0 has {}, rank {} has {}",
           combine ? "N1" : "H1", r0.row_width, s, c.row_width);
    }
  }
  const std::int64_t n = r0.experts * static_cast<std::int64_t>(all.size());
  for (std::size_t s = 0; s < all.size(); ++s)
    if (all[s].send_length != n || all[s].recv_length != n)
      fail(Errc::count_mismatch, "sendCounts", "rank {} has count lists of length {} and {}, expected e * W = {}", s,
           all[s].send_length, all[s].recv_length, n);
}

void CallHeader::to_words(std::int64_t* out) const {
  const std::int64_t words[kWords] = {
      shape.experts,     static_cast<std::int64_t>(shape.dtype), shape.row_width,
      shape.send_length, static_cast<std::int64_t>(digest.a),    static_cast<std::int64_t>(digest.b),
      max_tiles,         static_cast<std::int64_t>(shape.op),    peer_bytes};
  std::copy(words, words + kWords, out);
}

CallHeader CallHeader::from_words(const std::int64_t* w) {
  CallHeader h;
  h.shape = {.op = static_cast<Op>(w[7]),
             .experts = w[0],
             .dtype = static_cast<DType>(w[1]),
             .row_width = w[2],
             .send_length = w[3],
             .recv_length = w[3]};
  h.digest = {static_cast<std::uint64_t>(w[4]), static_cast<std::uint64_t>(w[5])};
  h.max_tiles = w[6];
  h.peer_bytes = w[8];
  return h;
}

CallHeader header_of(const CallInfo& mine, int rank) {
  CallHeader h;
  h.shape = shape_of(mine);
  h.digest = digest_of(mine.send_counts, mine.recv_counts);
  const std::int64_t tile_rows = std::max<std::int64_t>(1, mine.tiling.tile_rows);
  for (std::int64_t v : mine.send_counts) h.max_tiles = std::max(h.max_tiles, (v + tile_rows - 1) / tile_rows);
  // The most bytes this rank sends one peer: whether the group's next call may carry its rows in heads.
  const auto e = static_cast<std::size_t>(mine.local_experts);
  const std::int64_t row_bytes = mine.row_width * static_cast<std::int64_t>(element_size(mine.dtype));
  for (std::size_t d = 0; e > 0 && d < mine.send_counts.size() / e; ++d) {
    if (static_cast<int>(d) == rank) continue;
    std::int64_t rows = 0;
    for (std::size_t j = 0; j < e; ++j) rows += mine.send_counts[d * e + j];
    h.peer_bytes = std::max(h.peer_bytes, rows * row_bytes);
  }
  return h;
}

}  // namespace gmmav::comm
