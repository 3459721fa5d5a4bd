#include "comm/mpi_count_check.hpp"

#include <algorithm>

#include "comm/mpi_runtime.hpp"
#include "common/fail.hpp"
#include "engine/tile_schedule.hpp"

namespace gmmav::comm {
namespace {

std::uint64_t mix(std::uint64_t h, std::uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  h ^= h >> 31;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 29;
  return h;
}

std::int64_t tiles_of(std::int64_t rows) { return (rows + engine::kTileRows - 1) / engine::kTileRows; }

}  // namespace

CountDigest digest_of(const std::vector<std::int64_t>& send, const std::vector<std::int64_t>& recv) {
  CountDigest d{0x243f6a8885a308d3ULL, 0x13198a2e03707344ULL};
  std::uint64_t i = 0;
  for (const auto* list : {&send, &recv}) {
    for (std::int64_t v : *list) {
      d.a = mix(d.a, static_cast<std::uint64_t>(v) ^ (i << 40));
      d.b = mix(d.b ^ 0x94d049bb133111ebULL, static_cast<std::uint64_t>(v) * 0xd6e8feb86659fd93ULL + i);
      ++i;
    }
    d.a = mix(d.a, i);
    d.b = mix(d.b, ~i);
  }
  return d;
}

MpiCountCheck::MpiCountCheck(MPI_Comm comm, int rank, int size, int tag_ub)
    : comm_(comm), rank_(rank), size_(size), tag_ub_(tag_ub) {}

void MpiCountCheck::start(const CallInfo& mine) {
  const CountDigest digest = digest_of(mine.send_counts, mine.recv_counts);
  const std::int64_t header[kHeader] = {mine.local_experts, static_cast<std::int64_t>(mine.dtype), mine.n1,
                                        static_cast<std::int64_t>(mine.send_counts.size()), static_cast<std::int64_t>(digest.a),
                                        static_cast<std::int64_t>(digest.b)};
  std::copy(header, header + kHeader, header_);
  mine_counts_ = mine.send_counts;
  mine_counts_.insert(mine_counts_.end(), mine.recv_counts.begin(), mine.recv_counts.end());
  headers_.assign(static_cast<std::size_t>(kHeader * size_), 0);
  mpi::check(MPI_Iallgather(header_, kHeader, MPI_INT64_T, headers_.data(), kHeader, MPI_INT64_T, comm_, &req_), "MPI_Iallgather");
  stage_ = Stage::headers;
}

const char* MpiCountCheck::waiting_for() const {
  return stage_ == Stage::lists ? "at the count exchange" : "at the start of the call (a rank did not call, or died)";
}

bool MpiCountCheck::test(MPI_Request* req) {
  int done = 0;
  mpi::check(MPI_Test(req, &done, MPI_STATUS_IGNORE), "MPI_Test");
  return done != 0;
}

bool MpiCountCheck::advance() {
  if (stage_ == Stage::passed) return true;
  if (stage_ == Stage::headers) {
    if (!test(&req_)) return false;
    const int W = size_;
    all_.assign(static_cast<std::size_t>(W), CallInfo{});
    bool same_shape = true;
    as_last_call_ = last_lists_.size() == static_cast<std::size_t>(W);
    for (int r = 0; r < W; ++r) {
      CallInfo& c = all_[static_cast<std::size_t>(r)];
      const std::int64_t* h = headers_.data() + static_cast<std::size_t>(kHeader * r);
      c.local_experts = static_cast<int>(h[0]);
      c.dtype = static_cast<DType>(h[1]);
      c.n1 = h[2];
      same_shape = same_shape && h[0] == header_[0] && h[3] == header_[3];
      as_last_call_ = as_last_call_ && static_cast<std::uint64_t>(h[4]) == last_digest_[static_cast<std::size_t>(r)].a &&
                      static_cast<std::uint64_t>(h[5]) == last_digest_[static_cast<std::size_t>(r)].b;
    }
    if (!same_shape) {
      stage_ = Stage::idle;
      check_contract(all_);  // names the disagreement on every rank (lists left empty)
    }
    if (as_last_call_) {
      for (int r = 0; r < W; ++r) {
        all_[static_cast<std::size_t>(r)].send_counts = last_lists_[static_cast<std::size_t>(r)].send_counts;
        all_[static_cast<std::size_t>(r)].recv_counts = last_lists_[static_cast<std::size_t>(r)].recv_counts;
      }
      return conclude();
    }
    // The count lists (the same length everywhere now).
    counts_.assign(mine_counts_.size() * static_cast<std::size_t>(W), 0);
    const int n = static_cast<int>(mine_counts_.size());
    mpi::check(MPI_Iallgather(mine_counts_.data(), n, MPI_INT64_T, counts_.data(), n, MPI_INT64_T, comm_, &req_), "MPI_Iallgather");
    stage_ = Stage::lists;
  }
  if (!test(&req_)) return false;
  const std::size_t n = mine_counts_.size() / 2;
  for (int r = 0; r < size_; ++r) {
    CallInfo& c = all_[static_cast<std::size_t>(r)];
    const auto* base = counts_.data() + 2 * n * static_cast<std::size_t>(r);
    c.send_counts.assign(base, base + n);
    c.recv_counts.assign(base + n, base + 2 * n);
  }
  return conclude();
}

// Both gathers are done: the same data on every rank, so the same verdict.
bool MpiCountCheck::conclude() {
  stage_ = Stage::idle;
  std::int64_t max_tiles = 1;
  for (const CallInfo& c : all_)
    for (auto v : c.send_counts) max_tiles = std::max(max_tiles, tiles_of(v));
  check_contract(all_);
  if (!as_last_call_) {
    last_lists_.assign(static_cast<std::size_t>(size_), CallInfo{});
    last_digest_.assign(static_cast<std::size_t>(size_), CountDigest{});
    for (int r = 0; r < size_; ++r) {
      const CallInfo& c = all_[static_cast<std::size_t>(r)];
      last_lists_[static_cast<std::size_t>(r)].send_counts = c.send_counts;
      last_lists_[static_cast<std::size_t>(r)].recv_counts = c.recv_counts;
      const std::int64_t* h = headers_.data() + static_cast<std::size_t>(kHeader * r);
      last_digest_[static_cast<std::size_t>(r)] = {static_cast<std::uint64_t>(h[4]), static_cast<std::uint64_t>(h[5])};
    }
  }
  const int e = static_cast<int>(header_[0]);
  if (static_cast<std::int64_t>(e) * max_tiles > tag_ub_)
    fail(Errc::invalid_argument, "sendCounts", "expected at most {} row tiles per call for MPI tags, got {} experts x {} tiles", tag_ub_,
         e, max_tiles);
  tag_stride_ = max_tiles;
  stage_ = Stage::passed;
  return true;
}

}  // namespace gmmav::comm
