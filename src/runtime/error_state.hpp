// The "recent error" of the C API (aclGetRecentErrMsg) and the GMMAV_LOG switch.
//
// As on the vendor runtime the messages are per thread and reading them clears
// them: aclGetRecentErrMsg returns every message recorded on the calling thread
// since the last read, newest first, one per line. Messages go to stderr only
// when the environment sets GMMAV_LOG=1 (quiet by default).
#pragma once

#include <string_view>

namespace gmmav::runtime {

/// Records "<api>: <message>" as the calling thread's most recent error and,
/// when GMMAV_LOG=1 and `log` is set, prints it to stderr.
void record_error(std::string_view api, std::string_view message, bool log = true);

/// Prints "[gmmav] <line>" to stderr when GMMAV_LOG=1 (for errors that happen
/// away from the caller's thread, e.g. on a stream's worker).
void log_line(std::string_view line);

/// The calling thread's unread messages (newest first) or nullptr; clears them.
/// The pointer stays valid until the thread's next call of this function.
const char* take_recent_errors();

}  // namespace gmmav::runtime
