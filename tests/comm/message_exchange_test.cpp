// comm::MessageExchange — the exchange algorithm MPI runs — over a transport
// that is not MPI: W ranks as threads of this process, each with its own
// Transport whose sends and receives meet in an in-memory network (matched
// per channel, source, destination and tag in posting order; a send completes
// only when matched, the strictest MPI allows) and whose count check runs over
// in-memory collectives. For random groups (ops, e, tile sizes, row widths,
// empty and hot blocks, message policies with whole messages, split tiles and
// D56's carried heads over consecutive calls) every row of every block must
// land in its place in the receiver's y, and every rank's call must finish.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "comm/count_check.hpp"
#include "comm/message_exchange.hpp"
#include "comm/transport.hpp"
#include "group_collectives.hpp"

namespace {

using namespace gmmav::comm;  // NOLINT(google-build-using-namespace): a test of this namespace

// A transfer as the network sees it.
struct NetRequest {
  std::atomic<bool> done{false};
  std::int64_t bytes = 0;
  int source = -1, tag = 0;
  std::string error;
};

class Network {
 public:
  void send(int channel, int src, int dst, int tag, const std::byte* data, std::int64_t bytes,
            const std::shared_ptr<NetRequest>& req) {
    std::lock_guard lk(mu_);
    auto& waiting = recvs_[{channel, src, dst, tag}];
    if (waiting.empty()) {
      sends_[{channel, src, dst, tag}].push_back({req, const_cast<std::byte*>(data), bytes});
      return;
    }
    match({req, const_cast<std::byte*>(data), bytes}, waiting.front(), src, tag);
    waiting.pop_front();
  }
  void receive(int channel, int src, int dst, int tag, std::byte* data, std::int64_t bytes,
               const std::shared_ptr<NetRequest>& req) {
    std::lock_guard lk(mu_);
    auto& waiting = sends_[{channel, src, dst, tag}];
    if (waiting.empty()) {
      recvs_[{channel, src, dst, tag}].push_back({req, data, bytes});
      return;
    }
    match(waiting.front(), {req, data, bytes}, src, tag);
    waiting.pop_front();
  }

 private:
  struct Posted {
    std::shared_ptr<NetRequest> req;
    std::byte* data;
    std::int64_t bytes;
  };
  static void match(const Posted& s, const Posted& r, int src, int tag) {
    if (s.bytes > r.bytes) {
      r.req->error = "message truncated";
    } else {
      std::memcpy(r.data, s.data, static_cast<std::size_t>(s.bytes));
      r.req->bytes = s.bytes;
    }
    r.req->source = src;
    r.req->tag = tag;
    s.req->done.store(true, std::memory_order_release);
    r.req->done.store(true, std::memory_order_release);
  }
  std::mutex mu_;
  std::map<std::tuple<int, int, int, int>, std::deque<Posted>> sends_, recvs_;
};

// The count check's collectives across the rank threads.
class Collectives {
 public:
  explicit Collectives(int w) : W_(w), posted_(static_cast<std::size_t>(w)) {}
  int start(int rank, bool gather, const std::int64_t* mine, int count, std::int64_t* out) {
    std::lock_guard lk(mu_);
    auto& list = posted_[static_cast<std::size_t>(rank)];
    const auto k = list.size();
    list.push_back({gather, mine, count, out});
    if (done_.size() <= k) done_.push_back(false);
    bool all = true;
    for (const auto& l : posted_) all = all && l.size() > k;
    if (!all) return static_cast<int>(k);
    const auto n = static_cast<std::size_t>(count);
    for (int r = 0; r < W_; ++r)
      for (int q = 0; q < W_; ++q) {
        const Posted& from = posted_[static_cast<std::size_t>(q)][k];
        std::copy_n(from.mine + (gather ? 0 : static_cast<std::size_t>(r) * n), n,
                    posted_[static_cast<std::size_t>(r)][k].out + static_cast<std::size_t>(q) * n);
      }
    done_[k] = true;
    return static_cast<int>(k);
  }
  bool done(int k) {
    std::lock_guard lk(mu_);
    return done_[static_cast<std::size_t>(k)];
  }
  bool test(int k) { return done(k); }

 private:
  struct Posted {
    bool gather;
    const std::int64_t* mine;
    int count;
    std::int64_t* out;
  };
  std::mutex mu_;
  int W_;
  std::vector<std::vector<Posted>> posted_;
  std::vector<bool> done_;
};

using RankCollectives = gmmav::comm::fakes::GroupCollectives<Collectives>;

class NetTransfers final : public Transfers {
 public:
  NetTransfers(Network& net, int rank, std::int64_t row_bytes) : net_(net), me_(rank), row_bytes_(row_bytes) {}
  void send(const Message& m, const std::byte* data, const InFlight& what) override {
    add(what);
    net_.send(static_cast<int>(m.channel), me_, m.peer, m.tag, data, bytes(m), reqs_.back());
  }
  void receive(const Message& m, std::byte* data, const InFlight& what) override {
    add(what);
    net_.receive(static_cast<int>(m.channel), m.peer, me_, m.tag, data, bytes(m), reqs_.back());
  }
  std::span<const Completed> test() override {
    done_.clear();
    std::size_t out = 0;
    for (std::size_t i = 0; i < reqs_.size(); ++i) {
      const NetRequest& r = *reqs_[i];
      if (r.done.load(std::memory_order_acquire)) {
        done_.push_back({.what = what_[i], .source = r.source, .tag = r.tag, .bytes = r.bytes, .error = r.error});
        continue;
      }
      reqs_[out] = reqs_[i];
      what_[out++] = what_[i];
    }
    reqs_.resize(out);
    what_.resize(out);
    return done_;
  }
  bool test_all() override {
    for (const auto& r : reqs_)
      if (!r->done.load(std::memory_order_acquire)) return false;
    reqs_.clear();
    what_.clear();
    return true;
  }
  bool empty() const override { return reqs_.empty(); }
  std::size_t size() const override { return reqs_.size(); }
  std::span<const InFlight> purposes() const override { return what_; }
  void abandon() noexcept override {}  // the network keeps its requests alive

 private:
  std::int64_t bytes(const Message& m) const { return m.count * (m.unit == Unit::row ? row_bytes_ : 1); }
  void add(const InFlight& what) {
    reqs_.push_back(std::make_shared<NetRequest>());
    what_.push_back(what);
  }
  Network& net_;
  int me_;
  std::int64_t row_bytes_;
  std::vector<std::shared_ptr<NetRequest>> reqs_;
  std::vector<InFlight> what_;
  std::vector<Completed> done_;
};

class NetTransport final : public Transport {
 public:
  NetTransport(Network& net, Collectives& c, int rank, int size)
      : net_(net), rank_(rank), check_(std::make_unique<RankCollectives>(c, rank), rank, size) {}
  std::unique_lock<std::mutex> lock() override { return std::unique_lock(mu_); }
  bool workers_may_drive() const override { return true; }
  CountCheck& check() override { return check_; }
  std::unique_ptr<Transfers> transfers(std::int64_t row_bytes) override {
    return std::make_unique<NetTransfers>(net_, rank_, row_bytes);
  }

 private:
  Network& net_;
  int rank_;
  std::mutex mu_;
  CountCheck check_;
};

// A row's bytes: who sent it where, for which expert, which row.
std::byte pattern(int s, int d, int j, std::int64_t row, std::int64_t i) {
  return static_cast<std::byte>((s * 131 + d * 71 + j * 37 + row * 13 + i * 7 + 1) & 0xff);
}

struct Case {
  int W = 1, e = 1;
  gmmav::Op op = gmmav::Op::combine;
  std::int64_t row_width = 1, tile_rows = 1;
  MessagePolicy policy;      // split_peer: rank 0's view; every rank's from `network`
  std::vector<int> network;  // [rank]: its network (split_peer: peers on another one), empty: every peer alike
  std::vector<std::vector<std::vector<std::int64_t>>> send;  // [call][rank][d*e + j]
};

std::vector<std::int64_t> recv_of(const std::vector<std::vector<std::int64_t>>& send, int d, int W, int e) {
  std::vector<std::int64_t> recv(static_cast<std::size_t>(W * e));
  for (int s = 0; s < W; ++s)
    for (int j = 0; j < e; ++j)
      recv[static_cast<std::size_t>(s * e + j)] = send[static_cast<std::size_t>(s)][static_cast<std::size_t>(d * e + j)];
  return recv;
}

// One rank's calls: every tile written through rows_for / rows_done, then finish; y checked.
std::string run_rank(const Case& c, int me, NetTransport& transport) {
  Staging staging;
  std::atomic<bool> broken{false};
  MessagePolicy policy = c.policy;  // as the MPI group builds it: from who is on which network
  if (!c.network.empty())
    for (int r = 0; r < c.W; ++r)
      policy.split_peer[static_cast<std::size_t>(r)] =
          c.network[static_cast<std::size_t>(r)] != c.network[static_cast<std::size_t>(me)] ? 1 : 0;
  const ExchangeGroup g{.rank = me,
                        .size = c.W,
                        .transport = &transport,
                        .timeout = std::chrono::milliseconds(20000),
                        .broken = &broken,
                        .messages = &policy,
                        .staging = &staging};
  const std::int64_t row_bytes = c.row_width * 2;
  for (std::size_t call = 0; call < c.send.size(); ++call) {
    CallInfo mine;
    mine.tiling = {.tile_rows = c.tile_rows, .compute_threads = 1};
    mine.op = c.op;
    mine.local_experts = c.e;
    mine.row_width = c.row_width;
    mine.send_counts = c.send[call][static_cast<std::size_t>(me)];
    mine.recv_counts = recv_of(c.send[call], me, c.W, c.e);
    std::int64_t rows_in = 0;
    for (auto v : mine.recv_counts) rows_in += v;
    std::vector<std::byte> y(static_cast<std::size_t>(rows_in * row_bytes) + 1);
    mine.y = y.data();
    std::vector<std::byte> workspace(static_cast<std::size_t>(c.tile_rows * row_bytes * (1 + call)));
    auto ex = start_exchange(mine, workspace, g);
    for (int d = 0; d < c.W; ++d)
      for (int j = 0; j < c.e; ++j) {
        const std::int64_t rows = mine.send_counts[static_cast<std::size_t>(d * c.e + j)];
        for (std::int64_t first = 0; first < rows; first += c.tile_rows) {
          const std::int64_t n = std::min(c.tile_rows, rows - first);
          auto* where = static_cast<std::byte*>(ex->rows_for(d, j, first, n));
          for (std::int64_t r = 0; r < n; ++r)
            for (std::int64_t i = 0; i < row_bytes; ++i) where[r * row_bytes + i] = pattern(me, d, j, first + r, i);
          ex->rows_done(d, j, first, n, where);
        }
      }
    if (ex->reports_arrivals())
      for (int j = 0; j < c.e; ++j) ex->wait_received(j);
    ex->finish();
    const std::vector<std::int64_t> at = recv_offsets(mine);
    for (int s = 0; s < c.W; ++s)
      for (int j = 0; j < c.e; ++j)
        for (std::int64_t r = 0; r < mine.recv_counts[static_cast<std::size_t>(s * c.e + j)]; ++r)
          for (std::int64_t i = 0; i < row_bytes; ++i)
            if (y[static_cast<std::size_t>((at[static_cast<std::size_t>(s * c.e + j)] + r) * row_bytes + i)] !=
                pattern(s, me, j, r, i))
              return "call " + std::to_string(call) + ": rank " + std::to_string(me) + "'s row " + std::to_string(r) +
                     " from rank " + std::to_string(s) + " expert " + std::to_string(j) + " is wrong";
  }
  return {};
}

Case random_case(std::mt19937& rng) {
  Case c;
  c.W = std::uniform_int_distribution<int>(1, 5)(rng);
  c.e = std::uniform_int_distribution<int>(1, 3)(rng);
  c.op = std::bernoulli_distribution(0.5)(rng) ? gmmav::Op::combine : gmmav::Op::dispatch;
  c.row_width = std::uniform_int_distribution<std::int64_t>(1, 40)(rng);
  c.tile_rows = std::uniform_int_distribution<std::int64_t>(1, 8)(rng);
  const int policy = std::uniform_int_distribution<int>(0, 3)(rng);
  c.policy.bytes = policy == 0 ? 0 : policy == 1 ? 2 * c.row_width * 3 : 1 << 20;  // per tile / split tiles / whole
  c.policy.carry = policy == 3;
  if (policy == 1 && std::bernoulli_distribution(0.5)(rng)) {
    c.policy.split_peer.assign(static_cast<std::size_t>(c.W), 0);
    for (int r = 0; r < c.W; ++r) c.network.push_back(std::uniform_int_distribution<int>(0, 1)(rng));
  }
  const int calls = std::uniform_int_distribution<int>(1, 3)(rng);
  std::uniform_int_distribution<std::int64_t> rows(0, 20);
  for (int k = 0; k < calls; ++k) {
    std::vector<std::vector<std::int64_t>> send(static_cast<std::size_t>(c.W), std::vector<std::int64_t>(c.W * c.e));
    for (auto& list : send)
      for (auto& v : list) v = std::bernoulli_distribution(0.25)(rng) ? 0 : rows(rng);
    c.send.push_back(send);
    if (std::bernoulli_distribution(0.3)(rng)) c.send.push_back(send);  // the same call again: the digest shortcut
  }
  return c;
}

TEST(CommMessageExchange, EveryRowLandsInPlaceOverANonMpiTransport) {
  std::mt19937 rng(2024);
  for (int trial = 0; trial < 150; ++trial) {
    const Case c = random_case(rng);
    Network net;
    Collectives collectives(c.W);
    std::vector<std::unique_ptr<NetTransport>> transports;
    for (int r = 0; r < c.W; ++r) transports.push_back(std::make_unique<NetTransport>(net, collectives, r, c.W));
    std::vector<std::string> errors(static_cast<std::size_t>(c.W));
    std::vector<std::thread> ranks;
    for (int r = 0; r < c.W; ++r)
      ranks.emplace_back([&, r] {
        try {
          errors[static_cast<std::size_t>(r)] = run_rank(c, r, *transports[static_cast<std::size_t>(r)]);
        } catch (const std::exception& e) {
          errors[static_cast<std::size_t>(r)] = std::string("threw: ") + e.what();
        }
      });
    for (auto& t : ranks) t.join();
    for (int r = 0; r < c.W; ++r)
      ASSERT_EQ(errors[static_cast<std::size_t>(r)], "")
          << "trial " << trial << " (W " << c.W << ", e " << c.e << ", tile rows " << c.tile_rows << ", message bytes "
          << c.policy.bytes << (c.policy.carry ? ", carry" : "") << ")";
  }
}

}  // namespace
