// Native API: Comm handles and group creation.
#include "gmmav/comm.hpp"

#include <cstdlib>
#include <string>

#include "api/group_timeout.hpp"
#include "comm/communicator.hpp"
#include "comm/in_process.hpp"
#include "common/fail.hpp"

namespace gmmav {

std::chrono::milliseconds default_timeout() {
  if (const char* v = std::getenv("GMMAV_TIMEOUT_MS"); v != nullptr && *v != '\0') {
    char* end = nullptr;
    const long long ms = std::strtoll(v, &end, 10);
    if (end != nullptr && *end == '\0' && ms > 0) return std::chrono::milliseconds(ms);
    fail(Errc::invalid_argument, "GMMAV_TIMEOUT_MS", "expected a positive integer (milliseconds), got '{}'", v);
  }
  return std::chrono::milliseconds(60000);
}

int Comm::rank() const { return impl_->rank(); }
int Comm::size() const { return impl_->size(); }
const std::string& Comm::name() const { return impl_->name(); }
std::chrono::milliseconds Comm::timeout() const { return impl_->timeout(); }

std::vector<Comm> create_in_process_group(int world_size, const GroupOptions& options) {
  const auto timeout = api::group_timeout(options);
  std::vector<Comm> out;
  for (auto& c : comm::create_in_process(world_size, timeout, options.name)) out.emplace_back(std::move(c));
  return out;
}

}  // namespace gmmav
