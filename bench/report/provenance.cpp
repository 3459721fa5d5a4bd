#include "provenance.hpp"

#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <system_error>

#include "bench_git_commit.hpp"  // generated at every build by git_commit.cmake

namespace gmmav::bench {
namespace {

std::string utc_now(const char* format) {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[64];
  return std::strftime(text, sizeof text, format, &tm) > 0 ? text : "";
}

// argv as a shell would take it back: arguments with spaces or quotes single-quoted.
std::string command_line() {
  std::ifstream f("/proc/self/cmdline", std::ios::binary);
  const std::string raw((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::string out, arg;
  const auto flush = [&] {
    const bool plain = !arg.empty() && arg.find_first_of(" \t'\"$\\*?") == std::string::npos;
    std::string quoted = "'";
    for (char ch : arg) quoted += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
    quoted += "'";
    if (!out.empty()) out += ' ';
    out += plain ? arg : quoted;
    arg.clear();
  };
  for (char ch : raw) {
    if (ch == '\0')
      flush();
    else
      arg += ch;
  }
  if (!arg.empty()) flush();
  return out;
}

}  // namespace

nlohmann::json provenance() {
  return {{"git_commit", GMMAV_BENCH_GIT_COMMIT}, {"command", command_line()}, {"finished_utc", utc_now("%Y-%m-%dT%H:%M:%SZ")}};
}

std::string default_json_path(const std::string& op) {
  const std::filesystem::path dir = "bench-results";
  std::error_code ignored;  // a directory that cannot be made fails the write, after the table is printed
  std::filesystem::create_directories(dir, ignored);
  return (dir / (utc_now("%Y%m%dT%H%M%SZ") + "-" + op + ".json")).string();
}

}  // namespace gmmav::bench
