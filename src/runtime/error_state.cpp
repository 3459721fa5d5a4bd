// Thread-local error messages and the GMMAV_LOG switch (see error_state.hpp).
#include "runtime/error_state.hpp"

#include <cstdio>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <string>

#include "acl/acl.h"
#include "common/config.hpp"

namespace gmmav::runtime {
namespace {

// Unread messages would pile up forever in a program that never reads them.
constexpr std::size_t kMaxUnread = 16;

thread_local std::deque<std::string> t_unread;  // newest first
thread_local std::string t_returned;            // what the last take_recent_errors() handed out

// Read on every use (errors are rare) so a test or a debugger can flip it.
// A bad value counts as off here (this path cannot fail); the next call refuses it (common/config.hpp).
bool logging_enabled() { return config::log_nothrow().errors; }

}  // namespace

void log_line(std::string_view line) {
  if (!logging_enabled()) return;
  static std::mutex mu;  // one line at a time from concurrent ranks
  std::lock_guard lk(mu);
  std::fprintf(stderr, "[gmmav] %.*s\n", static_cast<int>(line.size()), line.data());
  std::fflush(stderr);
}

void record_error(std::string_view api, std::string_view message, bool log) {
  std::string line;
  line.reserve(api.size() + 2 + message.size());
  line.append(api).append(": ").append(message);
  for (char& c : line)
    if (c == '\n') c = ' ';  // one message = one line
  if (log) log_line(line);
  t_unread.push_front(std::move(line));
  if (t_unread.size() > kMaxUnread) t_unread.pop_back();
}

const char* take_recent_errors() {
  if (t_unread.empty()) return nullptr;
  t_returned.clear();
  for (const std::string& m : t_unread) {
    if (!t_returned.empty()) t_returned += '\n';
    t_returned += m;
  }
  t_unread.clear();
  return t_returned.c_str();
}

}  // namespace gmmav::runtime

extern "C" const char* aclGetRecentErrMsg(void) { return gmmav::runtime::take_recent_errors(); }
