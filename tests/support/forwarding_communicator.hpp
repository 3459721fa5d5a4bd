// Fault-injection helpers for tests: a Communicator that forwards everything
// to a real one and wraps each call's Exchange, and an Exchange that forwards
// every method, so a test overrides only where it injects its fault (a rank
// that throws mid-call, a process that dies).
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>

#include "comm/communicator.hpp"

namespace gmmav::testing {

class ForwardingExchange : public comm::Exchange {
 public:
  explicit ForwardingExchange(std::unique_ptr<comm::Exchange> inner) : inner_(std::move(inner)) {}
  void* rows_for(int d, int j, std::int64_t f, std::int64_t r) override { return inner_->rows_for(d, j, f, r); }
  void rows_done(int d, int j, std::int64_t f, std::int64_t r, void* w) override { inner_->rows_done(d, j, f, r, w); }
  void progress() noexcept override { inner_->progress(); }
  void wait_agreed() override { inner_->wait_agreed(); }
  void poll() override { inner_->poll(); }
  bool needs_poll() const override { return inner_->needs_poll(); }
  void finish() override { inner_->finish(); }
  void abort(const std::string& why) noexcept override { inner_->abort(why); }

 private:
  std::unique_ptr<comm::Exchange> inner_;
};

class WrappingCommunicator final : public comm::Communicator {
 public:
  using Wrap = std::function<std::unique_ptr<comm::Exchange>(std::unique_ptr<comm::Exchange>)>;
  WrappingCommunicator(std::shared_ptr<comm::Communicator> inner, Wrap wrap) : inner_(std::move(inner)), wrap_(std::move(wrap)) {}
  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }
  const std::string& name() const override { return inner_->name(); }
  std::chrono::milliseconds timeout() const override { return inner_->timeout(); }
  std::size_t workspace_bytes(const Plan& p) const override { return inner_->workspace_bytes(p); }
  std::size_t min_workspace_bytes(const Plan& p) const override { return inner_->min_workspace_bytes(p); }
  std::unique_ptr<comm::Exchange> meet(const comm::CallInfo& mine, std::span<std::byte> ws) override {
    return wrap_(inner_->meet(mine, ws));
  }

 private:
  std::shared_ptr<comm::Communicator> inner_;
  Wrap wrap_;
};

}  // namespace gmmav::testing
