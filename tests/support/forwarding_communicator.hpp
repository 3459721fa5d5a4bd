// Fault-injection helpers for tests: a Communicator that forwards everything
// to a real one and wraps each call's Exchange, and an Exchange that forwards
// every method, so a test overrides only where it injects its fault (a rank
// that throws mid-call, a process that dies). The forwarding itself is the
// comm layer's (comm/forwarding.hpp), shared with the bench's tracer.
#pragma once

#include <functional>
#include <memory>
#include <span>

#include "api/comm_access.hpp"
#include "comm/forwarding.hpp"

namespace gmmav::testing {

using ForwardingExchange = comm::ForwardingExchange;

class WrappingCommunicator final : public comm::ForwardingCommunicator {
 public:
  using Wrap = std::function<std::unique_ptr<comm::Exchange>(std::unique_ptr<comm::Exchange>)>;
  WrappingCommunicator(std::shared_ptr<comm::Communicator> inner, Wrap wrap)
      : ForwardingCommunicator(std::move(inner)), wrap_(std::move(wrap)) {}
  std::unique_ptr<comm::Exchange> meet(const comm::CallInfo& mine, std::span<std::byte> ws) override {
    return wrap_(inner().meet(mine, ws));
  }

 private:
  Wrap wrap_;
};

/// A handle whose every call's Exchange is wrapped by `wrap` (around `comm`'s backend).
inline Comm wrapped(const Comm& comm, WrappingCommunicator::Wrap wrap) {
  return detail::CommAccess::wrap(std::make_shared<WrappingCommunicator>(detail::CommAccess::shared(comm), std::move(wrap)));
}

}  // namespace gmmav::testing
