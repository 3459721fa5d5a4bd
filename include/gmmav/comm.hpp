// gmmav native API: groups of ranks and one rank's handle into its group.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "gmmav/export.hpp"

namespace gmmav {

namespace comm {
class Communicator;  // the backend interface (src/comm/communicator.hpp)
}
namespace detail {
struct CommAccess;  // internal: reaches a Comm's backend (src/api/comm_access.hpp)
}

/// Group-wide settings.
struct GroupOptions {
  /// How long a rank waits for its peers to arrive (and, once a call runs,
  /// for a peer to make progress). 0 = env GMMAV_TIMEOUT_MS, else 60 s.
  std::chrono::milliseconds timeout{0};
  /// Name prefix of the group (for logs and the HCCL name lookup). Empty = generated.
  std::string name;
};

/// The effective default timeout (GMMAV_TIMEOUT_MS or 60000 ms).
GMMAV_API std::chrono::milliseconds default_timeout();

/// One rank's handle into a group. Cheap to copy; the group lives while any
/// handle does. A Comm is used by one thread at a time (one call in flight per rank).
class GMMAV_API Comm {
 public:
  Comm() = default;

  int rank() const;
  int size() const;
  const std::string& name() const;  ///< the group's name (same on every rank)
  std::chrono::milliseconds timeout() const;
  explicit operator bool() const noexcept { return impl_ != nullptr; }

 private:
  friend struct detail::CommAccess;
  explicit Comm(std::shared_ptr<comm::Communicator> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<comm::Communicator> impl_;
};

/// A group of `world_size` ranks that are threads of this process: element r
/// is rank r's handle. Every rank's output is written in place by its peers.
GMMAV_API std::vector<Comm> create_in_process_group(int world_size, const GroupOptions& options = {});

}  // namespace gmmav
