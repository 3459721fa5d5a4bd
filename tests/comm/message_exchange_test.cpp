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
#include <condition_variable>
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
#include "comm/marked_transfers.hpp"
#include "comm/message_exchange.hpp"
#include "comm/transport.hpp"
#include "group_collectives.hpp"

namespace {

using namespace gmmav::comm;  // NOLINT(google-build-using-namespace): a test of this namespace

// Matches sends with receives (per channel, source, destination and tag, in
// posting order) and copies the bytes. Inline: a match completes in the
// thread that posted its second half. With a wire: a thread of its own
// completes the matches in order, now and then after a pause, as the torch
// transport's waiting threads do (D100).
class Network {
 public:
  explicit Network(bool wire = false) {
    if (wire) wire_ = std::thread([this] { carry(); });
  }
  ~Network() {
    if (!wire_.joinable()) return;
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    matched_cv_.notify_one();
    wire_.join();
  }
  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;

  void send(int channel, int src, int dst, int tag, const std::byte* data, std::int64_t bytes,
            const std::shared_ptr<TransferMark>& mark) {
    post(sends_, recvs_, {channel, src, dst, tag}, {mark, const_cast<std::byte*>(data), bytes}, true);
  }
  void receive(int channel, int src, int dst, int tag, std::byte* data, std::int64_t bytes,
               const std::shared_ptr<TransferMark>& mark) {
    post(recvs_, sends_, {channel, src, dst, tag}, {mark, data, bytes}, false);
  }

 private:
  using Key = std::tuple<int, int, int, int>;
  struct Posted {
    std::shared_ptr<TransferMark> mark;
    std::byte* data;
    std::int64_t bytes;
  };
  using Queues = std::map<Key, std::deque<Posted>>;

  void post(Queues& mine, Queues& theirs, const Key& key, const Posted& p, bool is_send) {
    std::unique_lock lk(mu_);
    auto& waiting = theirs[key];
    if (waiting.empty()) {
      mine[key].push_back(p);
      return;
    }
    const Posted other = waiting.front();
    waiting.pop_front();
    const Posted& s = is_send ? p : other;
    const Posted& r = is_send ? other : p;
    if (wire_.joinable()) {
      matched_.push_back({s, r, std::get<1>(key)});
      lk.unlock();
      matched_cv_.notify_one();
      return;
    }
    lk.unlock();
    complete(s, r, std::get<1>(key));
  }
  static void complete(const Posted& s, const Posted& r, int src) {
    if (s.bytes > r.bytes) {
      r.mark->bytes = 0;
      r.mark->source = src;
      r.mark->set("message truncated");
    } else {
      std::memcpy(r.data, s.data, static_cast<std::size_t>(s.bytes));
      r.mark->bytes = s.bytes;
      r.mark->source = src;
      r.mark->set("");
    }
    s.mark->set("");
  }
  void carry() {
    std::mt19937 rng(7);
    std::unique_lock lk(mu_);
    for (;;) {
      matched_cv_.wait(lk, [&] { return stop_ || !matched_.empty(); });
      if (matched_.empty()) return;
      const Match m = matched_.front();
      matched_.pop_front();
      lk.unlock();
      if (rng() % 8 == 0) std::this_thread::sleep_for(std::chrono::microseconds(rng() % 200));
      complete(m.s, m.r, m.src);
      lk.lock();
    }
  }

  struct Match {
    Posted s, r;
    int src;
  };
  std::mutex mu_;
  Queues sends_, recvs_;
  std::deque<Match> matched_;  // the wire's, in order
  std::condition_variable matched_cv_;
  bool stop_ = false;
  std::thread wire_;
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

// A transport over the network: its transfers are MarkedTransfers (the
// network marks them); workers may drive it, or only the rank's thread (torch's way).
class NetTransport final : public Transport {
 public:
  NetTransport(Network& net, Collectives& c, int rank, int size, bool workers_drive = true)
      : net_(net), rank_(rank), workers_drive_(workers_drive), check_(std::make_unique<RankCollectives>(c, rank), rank, size) {}
  std::unique_lock<std::mutex> lock() override { return std::unique_lock(mu_); }
  bool workers_may_drive() const override { return workers_drive_; }
  CountCheck& check() override { return check_; }
  std::unique_ptr<Transfers> transfers(std::int64_t row_bytes) override {
    auto start = [this](std::span<const TransferStart> batch, std::size_t& started) {
      for (const TransferStart& t : batch) {
        const Message& m = t.message;
        if (t.send)
          net_.send(static_cast<int>(m.channel), rank_, m.peer, m.tag, t.data, t.bytes, t.mark);
        else
          net_.receive(static_cast<int>(m.channel), m.peer, rank_, m.tag, t.data, t.bytes, t.mark);
        ++started;
      }
    };
    return std::make_unique<MarkedTransfers>(row_bytes, start, [](const std::vector<std::shared_ptr<TransferMark>>&) {});
  }

 private:
  Network& net_;
  int rank_;
  bool workers_drive_;
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

// 150 random groups: every rank's calls, every row checked in y. `wire`:
// transfers complete on the network's own thread, and only the rank's thread
// may drive the transport (the torch.distributed transport's shape, D100).
void every_row_lands_in_place(bool wire) {
  std::mt19937 rng(wire ? 2025 : 2024);
  for (int trial = 0; trial < 150; ++trial) {
    Case c = random_case(rng);
    if (wire) c.policy.carry = false;  // heads need workers that drive the transport
    Network net(wire);
    Collectives collectives(c.W);
    std::vector<std::unique_ptr<NetTransport>> transports;
    for (int r = 0; r < c.W; ++r) transports.push_back(std::make_unique<NetTransport>(net, collectives, r, c.W, !wire));
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

TEST(CommMessageExchange, EveryRowLandsInPlaceOverANonMpiTransport) { every_row_lands_in_place(false); }

TEST(CommMessageExchange, EveryRowLandsInPlaceWhenTransfersCompleteOnAnotherThread) { every_row_lands_in_place(true); }

}  // namespace
