#include "memory_limit.hpp"

#include <unistd.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>

namespace gmmav::cli {

double physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<double>(pages) * static_cast<double>(page) : 0.0;
}

double available_memory_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key, unit;
  double kib = 0;
  while (in >> key >> kib) {
    std::getline(in, unit);
    if (key == "MemAvailable:") return kib * 1024.0;
  }
  return physical_memory_bytes();
}

std::string bytes_text(double bytes) {
  static const char* const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return std::to_string(static_cast<long long>(bytes)) + " bytes";
  int u = -1;
  while (bytes >= 1024 && u < 5) {
    bytes /= 1024;
    ++u;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f %s", bytes < 10 ? 2 : 1, bytes, units[u]);
  return buf;
}

bool parse_bytes(const std::string& text, double& bytes) {
  std::size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  if (i == 0) return false;
  double v = 0;
  try {
    std::size_t used = 0;
    v = std::stod(text.substr(0, i), &used);
    if (used != i) return false;
  } catch (const std::exception&) {
    return false;
  }
  std::string unit = text.substr(i);
  for (char& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  static const char* const kUnits[] = {"K", "M", "G", "T"};
  double scale = 1;
  if (!unit.empty() && unit != "B") {
    bool known = false;
    for (int u = 0; u < 4 && !known; ++u) {
      const std::string p = kUnits[u];
      if (unit == p || unit == p + "B" || unit == p + "IB") {
        scale = std::ldexp(1.0, 10 * (u + 1));
        known = true;
      }
    }
    if (!known) return false;
  }
  v *= scale;
  if (!std::isfinite(v) || v < 1 || v > std::ldexp(1.0, 60)) return false;
  bytes = std::floor(v);
  return true;
}

CLI::Option* add_memory_limit_option(CLI::App* cmd, double& bytes, const std::string& help) {
  return cmd
      ->add_option_function<std::string>(
          "--memory-limit", [&bytes](const std::string& text) { parse_bytes(text, bytes); }, help)
      ->type_name("SIZE")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            double v = 0;
            if (!parse_bytes(text, v))
              return "expected a size such as 512MiB, 8GiB or 1048576 (bytes, 1 to 2^60), got '" + text + "'";
            return {};
          },
          "SIZE"));
}

}  // namespace gmmav::cli
