// Internal: a gmmav::Comm's backend. The public Comm (include/gmmav/comm.hpp)
// keeps its Communicator private; the API layer, the project's tests and the
// bench reach it here (the only friend of Comm). Not installed.
#pragma once

#include <memory>
#include <utility>

#include "comm/communicator.hpp"
#include "gmmav/comm.hpp"

namespace gmmav::detail {

struct CommAccess {
  /// A handle around a backend (group creation; tests and bench wrapping a backend).
  static Comm wrap(std::shared_ptr<comm::Communicator> impl) { return Comm(std::move(impl)); }
  /// The handle's backend (the handle must not be empty).
  static comm::Communicator& impl(const Comm& c) { return *c.impl_; }
  static const std::shared_ptr<comm::Communicator>& shared(const Comm& c) noexcept { return c.impl_; }
};

}  // namespace gmmav::detail
