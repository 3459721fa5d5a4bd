// Where a bench result came from: the commit the binary was built from, the
// command that ran it and when; and where its JSON goes when the user names no
// file (docs/decisions/D99.md: results are outputs, not files in git).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace gmmav::bench {

/// {"git_commit", "command", "finished_utc"}: git_commit is `git rev-parse --short=12 HEAD`
/// of the source tree at build time ("-dirty" with tracked changes; "unknown" outside git),
/// command is this process's argv (/proc/self/cmdline), finished_utc the current time.
nlohmann::json provenance();

/// The JSON file a run writes without --json: bench-results/<UTC time>-<op>.json under the
/// current directory (created if missing; .gitignore'd).
std::string default_json_path(const std::string& op);

}  // namespace gmmav::bench
