// Every GMMAV_* environment variable is read and checked here, and only here
// (test arch.config checks that no other file calls getenv on one). One rule
// for all of them: unset or empty means "the default"; any other text must be
// valid for the variable, or it is refused with Error{invalid_argument,
// <variable>} naming what was expected and the text given — never silently
// ignored. The README's table lists the same variables (arch.config checks
// that too). Where each is read: see `read` in kVariables.
#pragma once

#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <optional>
#include <string_view>

#include "common/fail.hpp"

namespace gmmav {

/// The value of environment variable `name` in [lo, hi] (`what` says what it
/// counts, for the message), or nullopt when it is unset or empty. Throws
/// Error{invalid_argument, name} for any other text ("abc", "12x", " 5",
/// "+5", out of range, too large for int64).
inline std::optional<std::int64_t> env_int(const char* name, std::int64_t lo, std::int64_t hi, const char* what) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  const char* end = v + std::strlen(v);
  std::int64_t n = 0;
  const auto [stop, ec] = std::from_chars(v, end, n);
  if (ec != std::errc() || stop != end || n < lo || n > hi)
    fail(Errc::invalid_argument, name, "expected an integer in [{}, {}] ({}), got '{}'", lo, hi, what, v);
  return n;
}

/// An on/off switch: unset or empty → `fallback`; else env_int in [0, 1].
inline bool env_switch(const char* name, bool fallback) {
  const auto v = env_int(name, 0, 1, "0 = off, 1 = on");
  return v ? *v == 1 : fallback;
}

namespace config {

/// The variables gmmav reads (the README's table says the same for users).
struct Variable {
  const char* name;
  const char* valid;  ///< what the rule accepts
  const char* read;   ///< when it is read (where a bad value is refused)
};
inline constexpr Variable kVariables[] = {
    {"GMMAV_TIMEOUT_MS", "an integer in [1, 2^62] (ms)", "group creation"},
    {"GMMAV_NUM_THREADS", "an integer in [1, 1024]", "first use of the compute pool"},
    {"GMMAV_MPI_PROGRESS", "0 or 1", "MPI group creation"},
    {"GMMAV_MPI_MESSAGE_BYTES", "an integer in [0, 2^30] (bytes; the same on every rank)", "MPI group creation"},
    {"GMMAV_LOG", "a comma-separated list of 1 and plan", "every call (plan); the C API's error path (1)"},
    {"GMMAV_WEIGHT_CACHE_MB", "an integer in [0, 2^40] (MiB)", "first aclnn call"},
    {"GMMAV_STRICT_A3", "0 or 1", "every aclnn call"},
    {"GMMAV_MAX_CPU_ISA", "portable, avx2, avx512 or avx512_bf16", "first GEMM or conversion (fixed for the process)"},
    {"GMMAV_TORCH_COMPOSITE", "a path to torch_composite.py", "gmmav bench --torch"},
    {"GMMAV_BENCH_SPIN_SET", "0 or 1 (set by gmmav bench itself)", "gmmav bench"},
};

/// GMMAV_TIMEOUT_MS: up to 2^62 ms ("wait for ever" written as a large number is
/// honoured: deadlines saturate, common/deadline.hpp); nullopt = the default.
inline std::optional<std::int64_t> timeout_ms() { return env_int("GMMAV_TIMEOUT_MS", 1, std::int64_t{1} << 62, "milliseconds"); }
/// GMMAV_NUM_THREADS in [1, max_threads]; nullopt = the default.
inline std::optional<std::int64_t> num_threads(int max_threads) {
  return env_int("GMMAV_NUM_THREADS", 1, max_threads, "compute threads");
}
/// True when GMMAV_NUM_THREADS is given (non-empty), valid or not (the CLI then leaves the pool's size to it).
inline bool num_threads_given() {
  const char* v = std::getenv("GMMAV_NUM_THREADS");
  return v != nullptr && *v != '\0';
}
/// GMMAV_MPI_PROGRESS (default on).
inline bool mpi_progress() { return env_switch("GMMAV_MPI_PROGRESS", true); }
/// GMMAV_MPI_MESSAGE_BYTES: the largest message a tile is sent in, to every
/// peer (0: whole tiles); nullopt = the default (split for peers on other
/// machines only: comm/mpi_communicator.cpp).
inline std::optional<std::int64_t> mpi_message_bytes() {
  return env_int("GMMAV_MPI_MESSAGE_BYTES", 0, std::int64_t{1} << 30, "bytes per MPI message; 0 = one message per tile");
}
/// GMMAV_STRICT_A3 (default off).
inline bool strict_a3() { return env_switch("GMMAV_STRICT_A3", false); }
/// GMMAV_WEIGHT_CACHE_MB; nullopt = the default.
inline std::optional<std::int64_t> weight_cache_mb() {
  return env_int("GMMAV_WEIGHT_CACHE_MB", 0, std::int64_t{1} << 40, "MiB; 0 turns the weight cache off");
}
/// The levels GMMAV_MAX_CPU_ISA names, lowest first (common/cpu_isa.hpp: CpuIsa has the same order).
inline constexpr const char* kCpuIsaNames[] = {"portable", "avx2", "avx512", "avx512_bf16"};
/// GMMAV_MAX_CPU_ISA: the index of the level in kCpuIsaNames; nullopt = not set (no cap).
inline std::optional<int> max_cpu_isa() {
  const char* v = std::getenv("GMMAV_MAX_CPU_ISA");
  if (v == nullptr || *v == '\0') return std::nullopt;
  for (int i = 0; i < static_cast<int>(std::size(kCpuIsaNames)); ++i)
    if (std::string_view(v) == kCpuIsaNames[i]) return i;
  fail(Errc::invalid_argument, "GMMAV_MAX_CPU_ISA", "expected portable, avx2, avx512 or avx512_bf16, got '{}'", v);
}

/// GMMAV_TORCH_COMPOSITE: a path (any non-empty text), or null.
inline const char* torch_composite() {
  const char* v = std::getenv("GMMAV_TORCH_COMPOSITE");
  return v != nullptr && *v != '\0' ? v : nullptr;
}

/// GMMAV_BENCH_SPIN_SET: set (to 1) by the bench when it set GOMP_SPINCOUNT for its children.
inline constexpr const char* kBenchSpinMarker = "GMMAV_BENCH_SPIN_SET";
inline bool bench_spin_marker() { return env_switch(kBenchSpinMarker, false); }

/// GMMAV_LOG: `1` prints every C-API error message, `plan` the choices made per
/// call (GEMM route, tile groups, workspace); both may be given ("1,plan").
struct Log {
  bool errors = false;
  bool plan = false;
};
/// Throws Error{invalid_argument, "GMMAV_LOG"} for a bad value.
inline Log log() {
  Log out;
  const char* v = std::getenv("GMMAV_LOG");
  if (v == nullptr || *v == '\0') return out;
  std::string_view rest(v);
  while (true) {
    const auto comma = rest.find(',');
    const std::string_view word = rest.substr(0, comma);
    if (word == "1")
      out.errors = true;
    else if (word == "plan")
      out.plan = true;
    else if (word != "0")
      fail(Errc::invalid_argument, "GMMAV_LOG",
           "expected a comma-separated list of 1 (C API errors) and plan (per-call choices), got '{}'", v);
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return out;
}
/// For paths that must not throw (the C API's error path): a bad value counts
/// as off there, and is refused by the next call (gmmav::run reads log()).
inline Log log_nothrow() noexcept {
  try {
    return log();
  } catch (...) {
    return {};
  }
}

}  // namespace config
}  // namespace gmmav
