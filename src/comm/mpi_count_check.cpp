#include "comm/mpi_count_check.hpp"

#include <algorithm>

#include "comm/mpi_runtime.hpp"
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

void MpiCountCheck::set_header(const CallInfo& mine) {
  const CountDigest digest = digest_of(mine.send_counts, mine.recv_counts);
  std::int64_t max_tiles = 1;
  const std::int64_t tile_rows = std::max<std::int64_t>(1, mine.tiling.tile_rows);
  for (auto v : mine.send_counts) max_tiles = std::max(max_tiles, (v + tile_rows - 1) / tile_rows);
  // The most bytes this rank sends one peer: whether the group's next call may carry its rows in heads.
  std::int64_t peer_bytes = 0;
  const int e = mine.local_experts;
  const std::int64_t row_bytes = mine.row_width * static_cast<std::int64_t>(element_size(mine.dtype));
  for (std::size_t d = 0; e > 0 && d < mine.send_counts.size() / static_cast<std::size_t>(e); ++d) {
    if (static_cast<int>(d) == rank_) continue;
    std::int64_t rows = 0;
    for (int j = 0; j < e; ++j) rows += mine.send_counts[d * static_cast<std::size_t>(e) + static_cast<std::size_t>(j)];
    peer_bytes = std::max(peer_bytes, rows * row_bytes);
  }
  const std::int64_t header[kHeader] = {mine.local_experts,
                                        static_cast<std::int64_t>(mine.dtype),
                                        mine.row_width,
                                        static_cast<std::int64_t>(mine.send_counts.size()),
                                        static_cast<std::int64_t>(digest.a),
                                        static_cast<std::int64_t>(digest.b),
                                        max_tiles,
                                        static_cast<std::int64_t>(mine.op),
                                        peer_bytes};
  std::copy(header, header + kHeader, header_);
  send_ = mine.send_counts;
  recv_ = mine.recv_counts;
  headers_.assign(static_cast<std::size_t>(kHeader * size_), 0);
}

void MpiCountCheck::start(const CallInfo& mine) {
  set_header(mine);
  columns_carried_ = false;
  mpi::check(MPI_Iallgather(header_, kHeader, MPI_INT64_T, headers_.data(), kHeader, MPI_INT64_T, comm_, &req_),
             "MPI_Iallgather");
  stage_ = Stage::headers;
}

void MpiCountCheck::start_carried(const CallInfo& mine) {
  set_header(mine);
  std::copy(header_, header_ + kHeader, headers_.data() + static_cast<std::size_t>(kHeader * rank_));
  columns_carried_ = carries_column(header_[0]);
  if (columns_carried_) {  // this rank's own column: what it sends itself
    const auto e = static_cast<std::size_t>(header_[0]);
    column_.assign(send_.size(), 0);
    std::copy_n(send_.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(rank_) * e), e,
                column_.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(rank_) * e));
  }
  heads_left_ = size_ - 1;
  stage_ = Stage::heads;
}

void MpiCountCheck::head_arrived(int s, const std::int64_t* header, const std::int64_t* column) {
  std::copy(header, header + kHeader, headers_.data() + static_cast<std::size_t>(kHeader * s));
  // A peer's column is used only when every rank's e equals this rank's (the shape check), so its length is e here.
  const auto e = static_cast<std::size_t>(header_[0]);
  if (columns_carried_ && column != nullptr && header[0] == header_[0] && column_.size() >= (static_cast<std::size_t>(s) + 1) * e)
    std::copy_n(column, e, column_.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(s) * e));
  --heads_left_;
}

const char* MpiCountCheck::waiting_for() const {
  const Stage s = stage_;
  return s == Stage::columns || s == Stage::verdicts || (s == Stage::heads && heads_left_ == 0)
             ? "at the count exchange"
             : "at the start of the call (a rank did not call, or died)";
}

bool MpiCountCheck::settled() {
  if (req_ == MPI_REQUEST_NULL) return true;
  int done = 0;
  return MPI_Test(&req_, &done, MPI_STATUS_IGNORE) == MPI_SUCCESS && done != 0;
}

bool MpiCountCheck::test(MPI_Request* req) {
  int done = 0;
  mpi::check(MPI_Test(req, &done, MPI_STATUS_IGNORE), "MPI_Test");
  return done != 0;
}

bool MpiCountCheck::advance() {
  if (stage_ == Stage::passed) return true;
  const int W = size_;
  if (stage_ == Stage::heads || stage_ == Stage::headers) {
    if (stage_ == Stage::heads ? heads_left_ > 0 : !test(&req_)) return false;
    std::vector<CallInfo> shapes(static_cast<std::size_t>(W));
    bool same_shape = true;
    bool as_last_call = last_digest_.size() == static_cast<std::size_t>(W);
    for (int r = 0; r < W; ++r) {
      CallInfo& c = shapes[static_cast<std::size_t>(r)];
      const std::int64_t* h = headers_.data() + static_cast<std::size_t>(kHeader * r);
      c.local_experts = static_cast<int>(h[0]);
      c.dtype = static_cast<DType>(h[1]);
      c.row_width = h[2];
      c.op = static_cast<Op>(h[7]);
      same_shape = same_shape && h[0] == header_[0] && h[1] == header_[1] && h[2] == header_[2] && h[3] == header_[3] &&
                   h[7] == header_[7];
      as_last_call = as_last_call && static_cast<std::uint64_t>(h[4]) == last_digest_[static_cast<std::size_t>(r)].a &&
                     static_cast<std::uint64_t>(h[5]) == last_digest_[static_cast<std::size_t>(r)].b;
    }
    if (!same_shape) {
      stage_ = Stage::idle;
      check_contract(shapes);  // names the disagreement on every rank (lists left empty)
    }
    if (as_last_call) return conclude();  // the same lists as the last call that passed
    // Every rank's column: source s's counts for this rank are s's block [me*e, me*e + e).
    const int e = static_cast<int>(header_[0]);
    if (stage_ == Stage::heads && columns_carried_) {
      stage_ = Stage::columns;  // the heads brought them (same e everywhere: every rank decides alike)
    } else {
      column_.assign(send_.size(), 0);
      mpi::check(MPI_Ialltoall(send_.data(), e, MPI_INT64_T, column_.data(), e, MPI_INT64_T, comm_, &req_), "MPI_Ialltoall");
      stage_ = Stage::columns;
    }
  }
  if (stage_ == Stage::columns) {
    if (req_ != MPI_REQUEST_NULL && !test(&req_)) return false;
    check_column();
    verdicts_.assign(static_cast<std::size_t>(kVerdict * W), 0);
    mpi::check(MPI_Iallgather(verdict_, kVerdict, MPI_INT64_T, verdicts_.data(), kVerdict, MPI_INT64_T, comm_, &req_),
               "MPI_Iallgather");
    stage_ = Stage::verdicts;
  }
  if (!test(&req_)) return false;
  // The first mismatch of the group in (source, destination, expert) order: the same on every rank.
  const std::int64_t* first = nullptr;
  for (int r = 0; r < W; ++r) {
    const std::int64_t* v = verdicts_.data() + static_cast<std::size_t>(kVerdict * r);
    if (v[0] != kNone && (first == nullptr || v[0] < first[0])) first = v;
  }
  if (first != nullptr) {
    stage_ = Stage::idle;
    refuse(first);
  }
  last_digest_.assign(static_cast<std::size_t>(W), CountDigest{});
  for (int r = 0; r < W; ++r) {
    const std::int64_t* h = headers_.data() + static_cast<std::size_t>(kHeader * r);
    last_digest_[static_cast<std::size_t>(r)] = {static_cast<std::uint64_t>(h[4]), static_cast<std::uint64_t>(h[5])};
  }
  return conclude();
}

// recv@me[s*e + j] against send@s[me*e + j], for every source s: this rank's first mismatch.
void MpiCountCheck::check_column() {
  const std::size_t e = static_cast<std::size_t>(header_[0]);
  verdict_[0] = kNone;
  verdict_[1] = verdict_[2] = 0;
  for (std::size_t g = 0; g < column_.size(); ++g) {
    if (column_[g] == recv_[g]) continue;
    const std::int64_t s = static_cast<std::int64_t>(g / e), j = static_cast<std::int64_t>(g % e);
    verdict_[0] = (s * size_ + rank_) * static_cast<std::int64_t>(e) + j;
    verdict_[1] = column_[g];
    verdict_[2] = recv_[g];
    return;
  }
}

void MpiCountCheck::refuse(const std::int64_t* verdict) const {
  const std::int64_t e = header_[0];
  const std::int64_t j = verdict[0] % e, sd = verdict[0] / e;
  const std::int64_t s = sd / size_, d = sd % size_;
  fail(Errc::count_mismatch, "recvCounts",
       "cross-rank count mismatch at (source {}, destination {}, expert {}): rank {} sendCounts[{}] = {} but rank {} "
       "recvCounts[{}] = {}",
       s, d, j, s, d * e + j, verdict[1], d, s * e + j, verdict[2]);
}

// The counts agree: the same data on every rank, so the same conclusion.
bool MpiCountCheck::conclude() {
  stage_ = Stage::idle;
  std::int64_t max_tiles = 1;
  for (int r = 0; r < size_; ++r) max_tiles = std::max(max_tiles, headers_[static_cast<std::size_t>(kHeader * r + 6)]);
  const int e = static_cast<int>(header_[0]);
  if (static_cast<std::int64_t>(e) * max_tiles > tag_ub_)
    fail(Errc::invalid_argument, "sendCounts", "expected at most {} row tiles per call for MPI tags, got {} experts x {} tiles",
         tag_ub_, e, max_tiles);
  tag_stride_ = max_tiles;
  last_peer_bytes_ = 0;
  for (int r = 0; r < size_; ++r)
    last_peer_bytes_ = std::max(last_peer_bytes_, headers_[static_cast<std::size_t>(kHeader * r + 8)]);
  stage_ = Stage::passed;
  return true;
}

}  // namespace gmmav::comm
