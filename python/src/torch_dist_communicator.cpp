// The torch.distributed backend (see torch_dist_communicator.hpp).
#include "torch_dist_communicator.hpp"

#include <atomic>
#include <utility>

#include "comm/message_exchange.hpp"
#include "torch_dist_transport.hpp"

namespace py = pybind11;

namespace gmmav::python {
namespace {

// How a call's rows are cut into gloo messages: a peer's rows in one message
// when they fit (a small call: a decode step), else one message per tile.
// gloo has no eager limit to stay under (every transfer is a rendezvous), so
// no tile is split; heads (D56) need workers that drive the transport.
comm::MessagePolicy torch_message_policy(int size) {
  comm::MessagePolicy p;
  p.bytes = comm::MessagePolicy::kOffNodeBytes;
  p.split_peer.assign(static_cast<std::size_t>(size), 0);
  p.carry = false;
  return p;
}

class TorchDistCommunicator final : public comm::Communicator {
 public:
  TorchDistCommunicator(int rank, int size, std::string name, std::chrono::milliseconds timeout, py::object transport)
      : rank_(rank),
        size_(size),
        name_(std::move(name)),
        timeout_(timeout),
        python_(std::make_shared<PythonTransport>()),
        messages_(torch_message_policy(size)) {
    python_->transport = std::move(transport);
    transport_ = std::make_unique<TorchDistTransport>(python_, rank_, size_);
  }
  // A broken group's transfers may still be in gloo (their threads wait for
  // them, at most the gloo group's timeout): the staging they use is kept (leaked).
  ~TorchDistCommunicator() override {
    if (python_->broken.load() && !transport_->settled()) staging_.abandon();
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const std::string& name() const override { return name_; }
  std::chrono::milliseconds timeout() const override { return timeout_; }

  std::size_t workspace_bytes(const Plan& plan, const comm::Tiling& tiling) const override {
    return comm::exchange_workspace_bytes(plan, tiling);
  }
  std::size_t min_workspace_bytes(const Plan& plan, const comm::Tiling& tiling) const override {
    return comm::exchange_min_workspace_bytes(plan, tiling);
  }

  // The call's start is every transport's (start_exchange): the count check
  // completes on this thread (workers never enter Python), then the exchange
  // algorithm moves the call's messages as its MessagePlan cuts them.
  std::unique_ptr<comm::Exchange> meet(const comm::CallInfo& mine, std::span<std::byte> workspace) override {
    if (python_->broken.load(std::memory_order_acquire)) {
      const std::string why = python_->broken_reason.empty() ? "an earlier call failed or timed out" : python_->broken_reason;
      throw Error(Errc::group_broken, "group", "group: " + why + "; the group is broken, recreate it");
    }
    return comm::start_exchange(mine, workspace,
                                {.rank = rank_,
                                 .size = size_,
                                 .transport = transport_.get(),
                                 .timeout = timeout_,
                                 .broken = &python_->broken,
                                 .messages = &messages_,
                                 .staging = &staging_});
  }

 private:
  const int rank_, size_;
  const std::string name_;
  const std::chrono::milliseconds timeout_;
  std::shared_ptr<PythonTransport> python_;        // the Python object; the broken flag
  std::unique_ptr<TorchDistTransport> transport_;  // torch.distributed as a transport: the count check, a call's transfers
  comm::MessagePolicy messages_;
  comm::Staging staging_;  // the send ring and the receives' landing area
};

}  // namespace

std::shared_ptr<comm::Communicator> create_torch_dist(int rank, int size, std::string name, std::chrono::milliseconds timeout,
                                                      py::object transport) {
  return std::make_shared<TorchDistCommunicator>(rank, size, std::move(name), timeout, std::move(transport));
}

}  // namespace gmmav::python
