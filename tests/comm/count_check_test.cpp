// comm::CountCheck, the cross-rank count check of MPI and torch.distributed,
// without a transport: W ranks' checks run in one thread over simulated
// collectives that complete only once every rank started them (and then
// report completion at random later tests). For random groups — consistent
// counts, one or many mismatching pairs, ranks that disagree on the op, e,
// dtype or row width — every rank's outcome (pass, or its error's code and
// message) must equal check_contract's on the full lists, the in-process
// backend's check; headers may also come point to point (D56's heads). Over
// a sequence of calls on the same checks, the digest shortcut passes an
// unchanged call with one collective and never skips a changed list.
#include "comm/count_check.hpp"
#include "group_collectives.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace {

using gmmav::Errc;
using gmmav::Error;
using gmmav::comm::CallHeader;
using gmmav::comm::CallInfo;
using gmmav::comm::CountCheck;
using gmmav::comm::TagSpace;

// Collectives of W ranks in one thread: the k-th collective of every rank
// completes once all W started their k-th (of the same kind and size).
class SimGroup {
 public:
  SimGroup(int w, unsigned seed) : W_(w), rng_(seed), posted_(static_cast<std::size_t>(w)) {}
  int size() const { return W_; }
  int collectives() const { return static_cast<int>(done_.size()); }

  int start(int rank, bool gather, const std::int64_t* mine, int count, std::int64_t* out) {
    auto& mine_list = posted_[static_cast<std::size_t>(rank)];
    const int k = static_cast<int>(mine_list.size());
    mine_list.push_back({gather, mine, count, out});
    if (done_.size() <= static_cast<std::size_t>(k)) done_.push_back(false);
    bool all = true;
    for (const auto& l : posted_) all = all && l.size() > static_cast<std::size_t>(k);
    if (all) run(k);
    return k;
  }
  // Completion shows at a random later test (a transport's latency).
  bool test(int k) {
    if (!done_[static_cast<std::size_t>(k)]) return false;
    return std::bernoulli_distribution(0.6)(rng_);
  }
  bool done(int k) const { return done_[static_cast<std::size_t>(k)]; }

 private:
  struct Posted {
    bool gather;
    const std::int64_t* mine;
    int count;
    std::int64_t* out;
  };
  void run(int k) {
    const auto K = static_cast<std::size_t>(k);
    const Posted& p0 = posted_[0][K];
    for (int r = 0; r < W_; ++r) {
      const Posted& p = posted_[static_cast<std::size_t>(r)][K];
      ASSERT_EQ(p.gather, p0.gather) << "collective " << k << ": ranks started different collectives";
      ASSERT_EQ(p.count, p0.count) << "collective " << k << ": ranks started different sizes";
    }
    const auto n = static_cast<std::size_t>(p0.count);
    for (int r = 0; r < W_; ++r)
      for (int q = 0; q < W_; ++q) {
        const Posted& to = posted_[static_cast<std::size_t>(r)][K];
        const Posted& from = posted_[static_cast<std::size_t>(q)][K];
        // gather: q's values to r's slot q; all-to-all: q's block for r to r's slot q.
        const std::int64_t* src = from.mine + (p0.gather ? 0 : static_cast<std::size_t>(r) * n);
        std::copy_n(src, n, to.out + static_cast<std::size_t>(q) * n);
      }
    done_[K] = true;
  }

  int W_;
  std::mt19937 rng_;
  std::vector<std::vector<Posted>> posted_;  // [rank][k]
  std::vector<bool> done_;                   // [k]
};

using SimCollectives = gmmav::comm::fakes::GroupCollectives<SimGroup>;

// What a rank's check (or check_contract) concluded.
struct Outcome {
  bool passed = false;
  Errc code = Errc::internal;
  std::string message;
  bool operator==(const Outcome&) const = default;
  static Outcome pass() {
    Outcome o;
    o.passed = true;
    return o;
  }
};

Outcome contract_outcome(const std::vector<CallInfo>& all) {
  try {
    gmmav::comm::check_contract(std::span<const CallInfo>(all));
    return Outcome::pass();
  } catch (const Error& e) {
    return {.passed = false, .code = e.code(), .message = e.what()};
  }
}

// A group's checks, kept across calls (the digest of the last good call lives in them).
struct Checks {
  Checks(int w, unsigned seed) : group(w, seed) {
    for (int r = 0; r < w; ++r) checks.push_back(std::make_unique<CountCheck>(std::make_unique<SimCollectives>(group, r), r, w));
  }
  SimGroup group;
  std::vector<std::unique_ptr<CountCheck>> checks;

  // Runs one call on every rank; `carried`: headers (and columns) come as heads, in random order.
  std::vector<Outcome> run(const std::vector<CallInfo>& all, bool carried, std::mt19937& rng) {
    const int W = group.size();
    std::vector<std::optional<Outcome>> out(static_cast<std::size_t>(W));
    for (int r = 0; r < W; ++r) {
      CountCheck& c = *checks[static_cast<std::size_t>(r)];
      if (carried)
        c.start_carried(all[static_cast<std::size_t>(r)]);
      else
        c.start(all[static_cast<std::size_t>(r)]);
    }
    if (carried) deliver_heads(all, rng);
    for (int step = 0; step < 10000; ++step) {
      bool open = false;
      for (int r = 0; r < W; ++r) {
        auto& o = out[static_cast<std::size_t>(r)];
        if (o) continue;
        try {
          if (checks[static_cast<std::size_t>(r)]->advance()) o = Outcome::pass();
        } catch (const Error& e) {
          o = Outcome{.passed = false, .code = e.code(), .message = e.what()};
        }
        open = open || !o;
      }
      if (!open) break;
    }
    std::vector<Outcome> done;
    for (auto& o : out) {
      EXPECT_TRUE(o.has_value()) << "a rank's check never concluded";
      done.push_back(o.value_or(Outcome{}));
    }
    return done;
  }

  // Every (source, destination) head: the source's header words and its counts for the destination.
  void deliver_heads(const std::vector<CallInfo>& all, std::mt19937& rng) {
    const int W = group.size();
    std::vector<std::pair<int, int>> pairs;
    for (int s = 0; s < W; ++s)
      for (int d = 0; d < W; ++d)
        if (s != d) pairs.emplace_back(s, d);
    std::shuffle(pairs.begin(), pairs.end(), rng);
    for (const auto& [s, d] : pairs) {
      const CallInfo& src = all[static_cast<std::size_t>(s)];
      const auto e = static_cast<std::size_t>(src.local_experts);
      const std::int64_t* column =
          CountCheck::carries_column(src.local_experts) ? src.send_counts.data() + static_cast<std::size_t>(d) * e : nullptr;
      checks[static_cast<std::size_t>(d)]->head_arrived(s, checks[static_cast<std::size_t>(s)]->header(), column);
    }
  }
};

// Consistent counts for W ranks, e experts: recv is send's transpose.
std::vector<CallInfo> consistent_call(int W, int e, std::mt19937& rng) {
  std::vector<CallInfo> all(static_cast<std::size_t>(W));
  std::uniform_int_distribution<std::int64_t> rows(0, 40);
  for (auto& c : all) {
    c.local_experts = e;
    c.row_width = 16;
    c.tiling.tile_rows = 8;
    c.send_counts.resize(static_cast<std::size_t>(W * e));
    for (auto& v : c.send_counts) v = std::bernoulli_distribution(0.2)(rng) ? 0 : rows(rng);
  }
  for (int d = 0; d < W; ++d) {
    auto& recv = all[static_cast<std::size_t>(d)].recv_counts;
    recv.resize(static_cast<std::size_t>(W * e));
    for (int s = 0; s < W; ++s)
      for (int j = 0; j < e; ++j)
        recv[static_cast<std::size_t>(s * e + j)] =
            all[static_cast<std::size_t>(s)].send_counts[static_cast<std::size_t>(d * e + j)];
  }
  return all;
}

// Breaks `all` at random: counts (one pair or several, in send or recv lists) or a rank's shape.
void break_call(std::vector<CallInfo>& all, std::mt19937& rng) {
  const int W = static_cast<int>(all.size());
  std::uniform_int_distribution<int> rank(0, W - 1);
  const int kind = std::uniform_int_distribution<int>(0, 9)(rng);
  CallInfo& c = all[static_cast<std::size_t>(rank(rng))];
  switch (kind) {
    case 0:
      c.op = gmmav::Op::dispatch;
      break;
    case 1: {  // another e: its lists have its own length e * W (checked locally before the meet)
      c.local_experts += 1;
      c.send_counts.assign(static_cast<std::size_t>(c.local_experts * W), 1);
      c.recv_counts.assign(static_cast<std::size_t>(c.local_experts * W), 1);
      break;
    }
    case 2:
      c.dtype = gmmav::DType::bf16;
      break;
    case 3:
      c.row_width += 2;
      break;
    default: {  // 1 to 4 counts changed, anywhere
      const int n = std::uniform_int_distribution<int>(1, 4)(rng);
      for (int i = 0; i < n; ++i) {
        CallInfo& x = all[static_cast<std::size_t>(rank(rng))];
        auto& list = std::bernoulli_distribution(0.5)(rng) ? x.send_counts : x.recv_counts;
        list[std::uniform_int_distribution<std::size_t>(0, list.size() - 1)(rng)] +=
            std::uniform_int_distribution<int>(1, 3)(rng);
      }
    }
  }
}

// The first mismatching (source, destination, expert) by brute force, as its
// message (none when the shapes differ or every pair agrees): an oracle
// independent of the functions the checks share.
std::optional<std::string> first_mismatch_message(const std::vector<CallInfo>& all) {
  const int W = static_cast<int>(all.size()), e = all[0].local_experts;
  for (const CallInfo& c : all)
    if (c.local_experts != e || c.op != all[0].op || c.dtype != all[0].dtype || c.row_width != all[0].row_width) return {};
  for (int s = 0; s < W; ++s)
    for (int d = 0; d < W; ++d)
      for (int j = 0; j < e; ++j) {
        const std::int64_t sent = all[static_cast<std::size_t>(s)].send_counts[static_cast<std::size_t>(d * e + j)];
        const std::int64_t recv = all[static_cast<std::size_t>(d)].recv_counts[static_cast<std::size_t>(s * e + j)];
        if (sent != recv)
          return fmt::format(
              "recvCounts: cross-rank count mismatch at (source {}, destination {}, expert {}): rank {} sendCounts[{}] = {} but "
              "rank {} recvCounts[{}] = {}",
              s, d, j, s, d * e + j, sent, d, s * e + j, recv);
      }
  return {};
}

void expect_every_rank_as_contract(const std::vector<Outcome>& got, const std::vector<CallInfo>& all, const std::string& what) {
  const Outcome want = contract_outcome(all);
  if (const auto message = first_mismatch_message(all)) {
    ASSERT_FALSE(want.passed) << what;
    ASSERT_EQ(want.message, *message) << what;
  }
  for (std::size_t r = 0; r < got.size(); ++r)
    ASSERT_EQ(got[r], want) << what << ", rank " << r << ": got " << (got[r].passed ? "pass" : got[r].message) << ", want "
                            << (want.passed ? "pass" : want.message);
}

TEST(CommCountCheck, EveryRankReachesTheVerdictOfCheckContract) {
  std::mt19937 rng(1234);
  int refused = 0;
  for (int trial = 0; trial < 600; ++trial) {
    const int W = std::uniform_int_distribution<int>(1, 8)(rng);
    const int e = std::uniform_int_distribution<int>(1, 4)(rng);
    const bool carried = W > 1 && std::bernoulli_distribution(0.4)(rng);
    Checks checks(W, static_cast<unsigned>(trial));
    std::vector<CallInfo> all = consistent_call(W, e, rng);
    if (std::bernoulli_distribution(0.7)(rng)) break_call(all, rng);
    const std::vector<Outcome> got = checks.run(all, carried, rng);
    expect_every_rank_as_contract(got, all, "trial " + std::to_string(trial) + (carried ? " (carried)" : ""));
    refused += got[0].passed ? 0 : 1;
  }
  EXPECT_GT(refused, 200);  // the breaks do break (not every random change is a mismatch: a count may be restored)
}

TEST(CommCountCheck, DigestShortcutPassesAnUnchangedCallAndNeverSkipsAChangedList) {
  std::mt19937 rng(99);
  for (int trial = 0; trial < 200; ++trial) {
    const int W = std::uniform_int_distribution<int>(2, 6)(rng);
    const int e = std::uniform_int_distribution<int>(1, 3)(rng);
    Checks checks(W, static_cast<unsigned>(trial));
    const std::vector<CallInfo> good = consistent_call(W, e, rng);
    expect_every_rank_as_contract(checks.run(good, false, rng), good, "first call");
    int before = checks.group.collectives();
    expect_every_rank_as_contract(checks.run(good, false, rng), good, "the same call again");
    EXPECT_EQ(checks.group.collectives() - before, 1) << "an unchanged call passes on its headers";
    // One count changed on one rank (a mismatch), then a consistent change (a new call that passes).
    std::vector<CallInfo> bad = good;
    const auto r = static_cast<std::size_t>(std::uniform_int_distribution<int>(0, W - 1)(rng));
    bad[r].recv_counts[std::uniform_int_distribution<std::size_t>(0, bad[r].recv_counts.size() - 1)(rng)] += 1;
    expect_every_rank_as_contract(checks.run(bad, std::bernoulli_distribution(0.5)(rng), rng), bad, "a changed count");
    const std::vector<CallInfo> next = consistent_call(W, e, rng);
    before = checks.group.collectives();
    expect_every_rank_as_contract(checks.run(next, false, rng), next, "a new consistent call");
    EXPECT_EQ(checks.group.collectives() - before, 3) << "a new call's columns are checked";
    std::vector<CallInfo> bad_after = next;
    bad_after[r].send_counts[0] += 1;
    expect_every_rank_as_contract(checks.run(bad_after, false, rng), bad_after, "a changed count after a good call");
  }
}

TEST(CommCountCheck, AgreedCallReportsTheSameTagStrideAndPeerBytesOnEveryRank) {
  std::mt19937 rng(7);
  const int W = 4, e = 3;
  Checks checks(W, 7);
  std::vector<CallInfo> all = consistent_call(W, e, rng);
  all[2].send_counts[1 * e + 2] = 100;  // rank 2's largest block: 100 rows to rank 1 = 13 tiles of 8
  for (int s = 0; s < W; ++s)
    all[1].recv_counts[static_cast<std::size_t>(s * e + 2)] = all[static_cast<std::size_t>(s)].send_counts[1 * e + 2];
  for (const Outcome& o : checks.run(all, false, rng)) ASSERT_TRUE(o.passed) << o.message;
  std::int64_t peer_bytes = 0;
  for (int s = 0; s < W; ++s)
    for (int d = 0; d < W; ++d) {
      if (d == s) continue;
      std::int64_t rows = 0;
      for (int j = 0; j < e; ++j) rows += all[static_cast<std::size_t>(s)].send_counts[static_cast<std::size_t>(d * e + j)];
      peer_bytes = std::max(peer_bytes, rows * 16 * 2);
    }
  for (const auto& c : checks.checks) {
    EXPECT_EQ(c->tag_stride(), 13);
    EXPECT_EQ(c->last_peer_bytes(), peer_bytes);
  }
}

TEST(CommCountCheck, TooManyTilesForTheTagSpaceRefusesOnEveryRank) {
  std::mt19937 rng(3);
  const int W = 3, e = 2;
  SimGroup group(W, 3);
  std::vector<std::unique_ptr<CountCheck>> checks;
  for (int r = 0; r < W; ++r)
    checks.push_back(std::make_unique<CountCheck>(std::make_unique<SimCollectives>(group, r), r, W, TagSpace{10, "MPI"}));
  std::vector<CallInfo> all = consistent_call(W, e, rng);  // blocks up to 40 rows: 5 tiles, 2 experts x 5 > 10? no: == 10
  all[0].send_counts[0] = 48;                              // 6 tiles: 2 x 6 = 12 > 10
  all[0].recv_counts[0] = 48;
  std::vector<std::string> messages;
  std::vector<bool> over(static_cast<std::size_t>(W), false);
  for (int r = 0; r < W; ++r) checks[static_cast<std::size_t>(r)]->start(all[static_cast<std::size_t>(r)]);
  for (int step = 0; step < 1000 && messages.size() < static_cast<std::size_t>(W); ++step)
    for (int r = 0; r < W; ++r) {
      if (over[static_cast<std::size_t>(r)]) continue;
      try {
        ASSERT_FALSE(checks[static_cast<std::size_t>(r)]->advance()) << "rank " << r << " passed";
      } catch (const Error& err) {
        EXPECT_EQ(err.code(), Errc::invalid_argument);
        messages.emplace_back(err.what());
        over[static_cast<std::size_t>(r)] = true;
      }
    }
  ASSERT_EQ(messages.size(), static_cast<std::size_t>(W));
  for (const std::string& m : messages)
    EXPECT_EQ(m, "sendCounts: expected at most 10 row tiles per call for MPI tags, got 2 experts x 6 tiles");
}

TEST(CommCountCheck, HeaderWordsAreTheWireOrder) {
  CallInfo c;
  c.local_experts = 2;
  c.dtype = gmmav::DType::bf16;
  c.row_width = 7;
  c.op = gmmav::Op::dispatch;
  c.tiling.tile_rows = 4;
  c.send_counts = {1, 9, 0, 3};  // rank 0 of 2: 3 rows to rank 1
  c.recv_counts = {1, 2, 3, 4};
  const CallHeader h = gmmav::comm::header_of(c, 0);
  std::int64_t w[CallHeader::kWords];
  h.to_words(w);
  const gmmav::comm::CountDigest d = gmmav::comm::digest_of(c.send_counts, c.recv_counts);
  const std::int64_t want[CallHeader::kWords] = {
      2, 1, 7, 4, static_cast<std::int64_t>(d.a), static_cast<std::int64_t>(d.b), 3, 1, 3 * 7 * 2};
  for (int i = 0; i < CallHeader::kWords; ++i) EXPECT_EQ(w[i], want[i]) << "word " << i;
  const CallHeader back = CallHeader::from_words(w);
  EXPECT_TRUE(back.shape.same_as(h.shape));
  EXPECT_EQ(back.digest, h.digest);
}

}  // namespace
