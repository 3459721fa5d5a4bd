// The MPI backend: one rank per process, on one machine or many.
//
// The communicator (this file) owns what outlives a call: the group's two
// communicators (rows; heads, D56), its message policy (message_plan.hpp),
// MPI as a transport (mpi_transport.hpp: the count check over MPI's
// collectives, a call's requests), the staging MPI reads and writes (D47),
// and what a failed call left in MPI. meet starts the call's count
// check and hands out the call's MessageExchange (message_exchange.hpp), which moves
// the call's messages as its MessagePlan cuts them.
#include "comm/mpi_communicator.hpp"

#include <algorithm>
#include <atomic>
#include <memory>
#include <optional>

#include "comm/message_exchange.hpp"
#include "comm/message_plan.hpp"
#include "comm/mpi_machines.hpp"
#include "comm/mpi_runtime.hpp"
#include "comm/mpi_transport.hpp"
#include "common/config.hpp"
#include "common/fail.hpp"

namespace gmmav::comm {
namespace {

class MpiCommunicator final : public Communicator, private Quarantine {
 public:
  MpiCommunicator(MPI_Comm comm, MPI_Comm heads_comm, std::chrono::milliseconds timeout, std::string name, MessagePolicy messages)
      : comm_(comm), heads_comm_(heads_comm), timeout_(timeout), name_(std::move(name)), messages_(std::move(messages)) {
    auto lk = mpi::lock();
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    int* ub = nullptr;
    int flag = 0;
    MPI_Comm_get_attr(comm_, MPI_TAG_UB, &ub, &flag);
    transport_ = std::make_unique<MpiTransport>(comm_, heads_comm_, rank_, size_, flag && ub ? *ub : 32767,
                                                static_cast<Quarantine&>(*this));
  }
  // A broken group may have requests left in MPI (a failed call's, or the
  // count check's): their buffers are freed only once they completed, and
  // never after MPI_Finalize (then nobody can tell) — a leak, not a write
  // into freed memory.
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized && !broken_.load()) {
      auto lk = mpi::lock();
      transport_->free_types();
      MPI_Comm_free(&heads_comm_);
      MPI_Comm_free(&comm_);
      return;
    }
    bool settled = false;
    if (!finalized) {
      auto lk = mpi::lock();
      int done = 0;
      settled =
          transport_->check().settled() &&
          MPI_Testall(static_cast<int>(quarantined_.size()), quarantined_.data(), &done, MPI_STATUSES_IGNORE) == MPI_SUCCESS &&
          done;
    }
    if (!settled) {
      staging_.abandon();
      (void)transport_->check_owner().release();
    }
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const std::string& name() const override { return name_; }
  std::chrono::milliseconds timeout() const override { return timeout_; }

  std::size_t workspace_bytes(const Plan& plan, const Tiling& tiling) const override {
    return exchange_workspace_bytes(plan, tiling);
  }
  std::size_t min_workspace_bytes(const Plan& plan, const Tiling& tiling) const override {
    return exchange_min_workspace_bytes(plan, tiling);
  }

  // One rank per process: its thread computes too instead of waiting for the
  // pool (docs/decisions.md D4), so nothing wakes it just to poll.
  bool caller_computes() const override { return true; }

  // The call's start is every transport's (start_exchange): the count check
  // travels while the engine computes (D10).
  std::unique_ptr<Exchange> meet(const CallInfo& mine, std::span<std::byte> workspace) override {
    if (broken_.load())
      fail(Errc::group_broken, "group",
           "expected a working MPI group, got one broken by an earlier call that failed or timed out (MPI may still hold {} of "
           "that call's transfers, into memory the group keeps); recreate the group",
           quarantined_.size());
    return start_exchange(mine, workspace,
                          {.rank = rank_,
                           .size = size_,
                           .transport = transport_.get(),
                           .timeout = timeout_,
                           .broken = &broken_,
                           .messages = &messages_,
                           .staging = &staging_});
  }

 private:
  // A call that did not finish hands over what MPI still holds; the group is
  // broken (meet refuses), so the staging those requests use is never reused.
  void quarantine(std::vector<MPI_Request> requests) noexcept override {
    broken_.store(true);
    quarantined_.insert(quarantined_.end(), requests.begin(), requests.end());
  }

  MPI_Comm comm_;
  MPI_Comm heads_comm_;  // a dup of comm_: small calls' heads (D56)
  std::chrono::milliseconds timeout_;
  std::string name_;
  int rank_ = 0, size_ = 1;
  std::atomic<bool> broken_{false};          // written by pool workers during a call (through MessageExchange)
  std::unique_ptr<MpiTransport> transport_;  // MPI as a transport: the count check (owned: a gather that timed out may
                                             // still write into it), a call's requests
  MessagePolicy messages_;                   // how tiles are cut into MPI messages, per peer
  Staging staging_;                          // the send ring and the receives' landing area (D47)
  std::vector<MPI_Request> quarantined_;     // a failed call's requests still in MPI (they use staging_)
};

// The group's message policy (collective: every rank of `comm` calls it).
// GMMAV_MPI_MESSAGE_BYTES must be the same on every rank (a receiver posts
// the messages its peer sends); unset, tiles are split only for peers on
// another machine or network namespace (on one, shared memory or loopback has
// no wire to keep busy and copies a whole tile at once). Who is where comes
// from one all-gather of every rank's keys (mpi_machines.hpp), so two ranks
// never disagree on how the messages between them are cut.
// Waits at most `timeout` for the group's ranks (then Errc::timeout).
MessagePolicy message_policy(MPI_Comm comm, int rank, int size, std::chrono::milliseconds timeout) {
  const std::optional<std::int64_t> given = config::mpi_message_bytes();
  MessagePolicy p;
  p.bytes = given.value_or(MessagePolicy::kOffNodeBytes);
  // [0..2]: this rank's values; [3..5]: the group's minimum (MPI may still
  // write them after a timeout: leaked then).
  // Third: whether this rank's pool workers may call MPI (heads may then wait for their rows).
  auto values = std::make_unique<std::int64_t[]>(6);
  values[0] = given ? *given : -1;
  values[1] = given ? -*given : 1;
  values[2] = mpi::thread_level_at_least_serialized() ? 1 : 0;
  MPI_Request req = MPI_REQUEST_NULL;
  {
    auto lk = mpi::lock();
    mpi::check(MPI_Iallreduce(values.get(), values.get() + 3, 3, MPI_INT64_T, MPI_MIN, comm, &req), "MPI_Iallreduce");
  }
  mpi::wait_or_leak(&req, values, timeout, "while the group's ranks agreed on their message sizes (a rank did not arrive)");
  const std::int64_t* agreed = values.get() + 3;
  if (agreed[0] != -agreed[1])
    fail(Errc::invalid_argument, "GMMAV_MPI_MESSAGE_BYTES",
         "expected the same value on every rank of the group, got values from {} to {} (unset counts as -1); this rank has {}",
         agreed[0], -agreed[1], values[0]);
  p.carry = agreed[2] == 1 && p.bytes > 0;
  if (given) return p;  // every peer
  const MachineMap map = map_machines(comm, timeout);
  p.split_peer.assign(static_cast<std::size_t>(size), 0);
  for (int r = 0; r < size; ++r) p.split_peer[static_cast<std::size_t>(r)] = map.same_network(rank, r) ? 0 : 1;
  return p;
}

}  // namespace

std::shared_ptr<Communicator> create_mpi(MPI_Comm user_comm, std::chrono::milliseconds timeout, const std::string& name) {
  (void)mpi_progress_enabled();
  mpi::ensure_initialized();
  // Every collective of the group's creation is non-blocking and waited for
  // at most `timeout`: a rank that never arrives is a timeout error, not a
  // hang (the handles MPI may still write are leaked then).
  const auto dup_of = [&](MPI_Comm from, const char* what) {
    auto out = std::make_unique<MPI_Comm>(MPI_COMM_NULL);
    MPI_Request req = MPI_REQUEST_NULL;
    {
      auto lk = mpi::lock();
      mpi::check(MPI_Comm_idup(from, out.get(), &req), "MPI_Comm_idup");
    }
    mpi::wait_or_leak(&req, out, timeout, what);
    auto lk = mpi::lock();
    MPI_Comm_set_errhandler(*out, MPI_ERRORS_RETURN);
    return *out;
  };
  MPI_Comm dup = dup_of(user_comm, "while the group's ranks duplicated the communicator (a rank did not arrive)");
  int rank = 0, size = 1;
  {
    auto lk = mpi::lock();
    MPI_Comm_rank(dup, &rank);
    MPI_Comm_size(dup, &size);
  }
  MessagePolicy messages;
  MPI_Comm heads = MPI_COMM_NULL;
  try {
    messages = message_policy(dup, rank, size, timeout);
    heads = dup_of(dup, "while the group's ranks made its second communicator (a rank did not arrive)");
  } catch (...) {
    bool timed_out = false;  // then a collective may still be pending on dup: keep it
    try {
      throw;
    } catch (const Error& e) {
      timed_out = e.code() == Errc::timeout;
    } catch (...) {
    }
    if (!timed_out) {
      auto lk = mpi::lock();
      MPI_Comm_free(&dup);
    }
    throw;
  }
  return std::make_shared<MpiCommunicator>(dup, heads, timeout, name.empty() ? std::string("gmmav-mpi") : name,
                                           std::move(messages));
}

}  // namespace gmmav::comm
