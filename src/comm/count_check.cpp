#include "comm/count_check.hpp"

#include <algorithm>

#include "common/fail.hpp"

namespace gmmav::comm {

CountCheck::CountCheck(std::unique_ptr<CheckCollectives> collectives, int rank, int size, TagSpace tags)
    : collectives_(std::move(collectives)), rank_(rank), size_(size), tags_(tags) {}

void CountCheck::set_header(const CallInfo& mine) {
  header_of(mine, rank_).to_words(header_);
  send_ = mine.send_counts;
  recv_ = mine.recv_counts;
  headers_.assign(static_cast<std::size_t>(CallHeader::kWords) * static_cast<std::size_t>(size_), 0);
}

void CountCheck::start(const CallInfo& mine) {
  set_header(mine);
  columns_carried_ = false;
  collectives_->start_all_gather(header_, CallHeader::kWords, headers_.data());
  stage_ = Stage::headers;
}

void CountCheck::start_carried(const CallInfo& mine) {
  set_header(mine);
  std::copy(header_, header_ + CallHeader::kWords, headers_.data() + static_cast<std::size_t>(CallHeader::kWords * rank_));
  columns_carried_ = carries_column(experts());
  if (columns_carried_) {  // this rank's own column: what it sends itself
    const auto e = static_cast<std::size_t>(experts());
    column_.assign(send_.size(), 0);
    std::copy_n(send_.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(rank_) * e), e,
                column_.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(rank_) * e));
  }
  heads_left_ = size_ - 1;
  stage_ = Stage::heads;
}

void CountCheck::head_arrived(int s, const std::int64_t* header, const std::int64_t* column) {
  std::copy(header, header + CallHeader::kWords, headers_.data() + static_cast<std::size_t>(CallHeader::kWords * s));
  // A peer's column is used only when every rank's e equals this rank's (the shape check), so its length is e here.
  const auto e = static_cast<std::size_t>(experts());
  if (columns_carried_ && column != nullptr && header[0] == experts() && column_.size() >= (static_cast<std::size_t>(s) + 1) * e)
    std::copy_n(column, e, column_.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(s) * e));
  --heads_left_;
}

const char* CountCheck::waiting_for() const {
  const Stage s = stage_;
  return s == Stage::columns || s == Stage::verdicts || (s == Stage::heads && heads_left_ == 0)
             ? "at the count exchange"
             : "at the start of the call (a rank did not call, or died)";
}

bool CountCheck::advance() {
  if (stage_ == Stage::passed) return true;
  if (stage_ == Stage::heads || stage_ == Stage::headers) {
    if (stage_ == Stage::heads ? heads_left_ > 0 : !collectives_->test()) return false;
    if (headers_in()) return true;
  }
  if (stage_ == Stage::columns) {
    if (!columns_carried_ && !collectives_->test()) return false;
    start_verdicts();
  }
  if (!collectives_->test()) return false;
  return verdicts_in();
}

// Every header is in: the shapes must agree; the same lists as the group's
// last good call pass at once (true); otherwise the columns are next.
bool CountCheck::headers_in() {
  std::vector<CallShape> shapes(static_cast<std::size_t>(size_));
  bool as_last_call = last_digest_.size() == static_cast<std::size_t>(size_);
  for (int r = 0; r < size_; ++r) {
    const CallHeader h = CallHeader::from_words(header_of_rank(r));
    shapes[static_cast<std::size_t>(r)] = h.shape;
    as_last_call = as_last_call && h.digest == last_digest_[static_cast<std::size_t>(r)];
  }
  try {
    check_shapes(shapes);  // names the disagreement on every rank alike
  } catch (...) {
    stage_ = Stage::idle;
    throw;
  }
  if (as_last_call) return conclude();
  start_columns();
  return false;
}

// Every rank's column: source s's counts for this rank are s's block [me*e, me*e + e).
void CountCheck::start_columns() {
  if (stage_ == Stage::heads && columns_carried_) {
    stage_ = Stage::columns;  // the heads brought them (same e everywhere: every rank decides alike)
    return;
  }
  columns_carried_ = false;
  column_.assign(send_.size(), 0);
  collectives_->start_all_to_all(send_.data(), static_cast<int>(experts()), column_.data());
  stage_ = Stage::columns;
}

// This rank's column is in: its first mismatch goes to every rank.
void CountCheck::start_verdicts() {
  column_mismatch(column_, recv_, rank_, size_, experts()).to_words(verdict_);
  verdicts_.assign(static_cast<std::size_t>(Mismatch::kWords) * static_cast<std::size_t>(size_), 0);
  collectives_->start_all_gather(verdict_, Mismatch::kWords, verdicts_.data());
  stage_ = Stage::verdicts;
}

// Every rank's first mismatch is in: the group's first, the same on every rank, refuses the call.
bool CountCheck::verdicts_in() {
  std::vector<Mismatch> all(static_cast<std::size_t>(size_));
  for (std::size_t r = 0; r < all.size(); ++r) all[r] = Mismatch::from_words(verdicts_.data() + Mismatch::kWords * r);
  const Mismatch first = first_mismatch(all);
  if (!first.none()) {
    stage_ = Stage::idle;
    refuse(first, size_, experts());
  }
  last_digest_.assign(static_cast<std::size_t>(size_), CountDigest{});
  for (int r = 0; r < size_; ++r) last_digest_[static_cast<std::size_t>(r)] = CallHeader::from_words(header_of_rank(r)).digest;
  return conclude();
}

// The counts agree: the same data on every rank, so the same conclusion.
bool CountCheck::conclude() {
  stage_ = Stage::idle;
  std::int64_t max_tiles = 1;
  for (int r = 0; r < size_; ++r) max_tiles = std::max(max_tiles, CallHeader::from_words(header_of_rank(r)).max_tiles);
  const std::int64_t e = experts();
  if (e * max_tiles > tags_.largest)
    fail(Errc::invalid_argument, "sendCounts", "expected at most {} row tiles per call for {} tags, got {} experts x {} tiles",
         tags_.largest, tags_.transport, e, max_tiles);
  tag_stride_ = max_tiles;
  last_peer_bytes_ = 0;
  for (int r = 0; r < size_; ++r)
    last_peer_bytes_ = std::max(last_peer_bytes_, CallHeader::from_words(header_of_rank(r)).peer_bytes);
  stage_ = Stage::passed;
  return true;
}

}  // namespace gmmav::comm
