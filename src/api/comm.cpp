// Native API: Comm handles and group creation.
#include "gmmav/comm.hpp"

#include <cstdint>
#include <limits>
#include <string>

#include "comm/communicator.hpp"
#include "comm/in_process.hpp"
#include "common/env_int.hpp"
#include "common/fail.hpp"

namespace gmmav {

std::chrono::milliseconds default_timeout() {
  // At most 2^31 - 1 ms (24.8 days): far beyond any useful wait, and no deadline arithmetic can overflow.
  if (const auto ms = env_int("GMMAV_TIMEOUT_MS", 1, std::numeric_limits<std::int32_t>::max(), "milliseconds"))
    return std::chrono::milliseconds(*ms);
  return std::chrono::milliseconds(60000);
}

int Comm::rank() const { return impl_->rank(); }
int Comm::size() const { return impl_->size(); }
const std::string& Comm::name() const { return impl_->name(); }
std::chrono::milliseconds Comm::timeout() const { return impl_->timeout(); }

std::vector<Comm> create_in_process_group(int world_size, const GroupOptions& options) {
  const auto timeout = options.timeout.count() > 0 ? options.timeout : default_timeout();
  std::vector<Comm> out;
  for (auto& c : comm::create_in_process(world_size, timeout, options.name)) out.emplace_back(std::move(c));
  return out;
}

}  // namespace gmmav
