// Decorators of the communicator interface: a Communicator that forwards every
// method to a real one, and an Exchange that forwards every method to the
// call's real Exchange. Subclasses override only what they observe or inject
// (the tests' fault injection: tests/support/forwarding_communicator.hpp; the
// bench's tracer: bench/driver/trace.cpp). One copy, so a method added to the
// interface is forwarded everywhere (the bench's own copy once missed
// min_workspace_bytes).
#pragma once

#include <memory>
#include <span>
#include <string>
#include <utility>

#include "comm/communicator.hpp"

namespace gmmav::comm {

class ForwardingExchange : public Exchange {
 public:
  explicit ForwardingExchange(std::unique_ptr<Exchange> inner) : inner_(std::move(inner)) {}
  void* rows_for(int d, int j, std::int64_t f, std::int64_t r) override { return inner_->rows_for(d, j, f, r); }
  void rows_done(int d, int j, std::int64_t f, std::int64_t r, void* w) override { inner_->rows_done(d, j, f, r, w); }
  std::int64_t early_rows(int d) const override { return inner_->early_rows(d); }
  void progress() noexcept override { inner_->progress(); }
  void wait_agreed() override { inner_->wait_agreed(); }
  bool agreed() const override { return inner_->agreed(); }
  void poll() override { inner_->poll(); }
  bool needs_poll() const override { return inner_->needs_poll(); }
  bool reports_arrivals() const override { return inner_->reports_arrivals(); }
  void wait_received(int j) override { inner_->wait_received(j); }
  void finish() override { inner_->finish(); }
  void abort(const std::string& why) noexcept override { inner_->abort(why); }

 protected:
  Exchange& inner() const { return *inner_; }

 private:
  std::unique_ptr<Exchange> inner_;
};

class ForwardingCommunicator : public Communicator {
 public:
  explicit ForwardingCommunicator(std::shared_ptr<Communicator> inner) : inner_(std::move(inner)) {}
  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }
  const std::string& name() const override { return inner_->name(); }
  std::chrono::milliseconds timeout() const override { return inner_->timeout(); }
  std::size_t workspace_bytes(const Plan& p, const Tiling& t) const override { return inner_->workspace_bytes(p, t); }
  std::size_t min_workspace_bytes(const Plan& p, const Tiling& t) const override { return inner_->min_workspace_bytes(p, t); }
  bool caller_computes() const override { return inner_->caller_computes(); }
  std::unique_ptr<Exchange> meet(const CallInfo& mine, std::span<std::byte> ws) override { return inner_->meet(mine, ws); }

 protected:
  Communicator& inner() const { return *inner_; }

 private:
  std::shared_ptr<Communicator> inner_;
};

}  // namespace gmmav::comm
