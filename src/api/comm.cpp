// Native API: Comm handles and group creation.
#include "gmmav/comm.hpp"

#include <cstdint>
#include <limits>
#include <string>

#include "api/comm_access.hpp"
#include "api/group_timeout.hpp"
#include "comm/communicator.hpp"
#include "comm/in_process.hpp"
#include "common/config.hpp"
#include "common/fail.hpp"

namespace gmmav {

std::chrono::milliseconds default_timeout() {
  // Up to 2^62 ms: "wait for ever" written as a large number is honoured (every deadline saturates,
  // common/deadline.hpp); only values beyond that are refused, as typos.
  if (const auto ms = config::timeout_ms()) return std::chrono::milliseconds(*ms);
  return std::chrono::milliseconds(60000);
}

int Comm::rank() const { return impl_->rank(); }
int Comm::size() const { return impl_->size(); }
const std::string& Comm::name() const { return impl_->name(); }
std::chrono::milliseconds Comm::timeout() const { return impl_->timeout(); }

std::vector<Comm> create_in_process_group(int world_size, const GroupOptions& options) {
  const auto timeout = api::group_timeout(options);
  std::vector<Comm> out;
  for (auto& c : comm::create_in_process(world_size, timeout, options.name))
    out.push_back(detail::CommAccess::wrap(std::move(c)));
  return out;
}

}  // namespace gmmav
