// The C boundary: every exported function runs its body through `guarded`,
// which turns an exception into the vendor status code of that API family and
// records the message for aclGetRecentErrMsg. Inside, code throws:
//   runtime::ApiError  — carries the exact vendor status (ACL_ERROR_*, HCCL_E_*, 1610xx);
//   gmmav::Error       — from the native API; mapped through the family's Codes.
#pragma once

#include <fmt/format.h>

#include <exception>
#include <new>
#include <stdexcept>
#include <string>

#include "gmmav/types.hpp"
#include "runtime/error_state.hpp"

namespace gmmav::runtime {

/// An error with the vendor status the C function returns.
class ApiError : public std::runtime_error {
 public:
  ApiError(int status, const std::string& message) : std::runtime_error(message), status_(status) {}
  int status() const noexcept { return status_; }

 private:
  int status_;
};

/// Throws ApiError{status, "<param>: <formatted message>"}.
template <typename... Args>
[[noreturn]] void raise(int status, const char* param, fmt::format_string<Args...> f, Args&&... args) {
  throw ApiError(status, std::string(param) + ": " + fmt::format(f, std::forward<Args>(args)...));
}

/// The status each gmmav::Errc (and an allocation failure, and anything else)
/// becomes in one API family.
struct Codes {
  int null_argument;
  int invalid_argument;
  int count_mismatch;
  int timeout;
  int group_broken;
  int internal;
  int no_memory;

  int of(Errc c) const noexcept {
    switch (c) {
      case Errc::null_argument:
        return null_argument;
      case Errc::invalid_argument:
        return invalid_argument;
      case Errc::count_mismatch:
        return count_mismatch;
      case Errc::timeout:
        return timeout;
      case Errc::group_broken:
        return group_broken;
      case Errc::internal:
        return internal;
      case Errc::out_of_memory:
        return no_memory;
    }
    return internal;
  }
};

/// Runs `body` (which returns the status, normally 0) and converts whatever it
/// throws. Never throws.
template <typename Body>
int guarded(const char* api, const Codes& codes, Body&& body) noexcept {
  try {
    return body();
  } catch (const ApiError& e) {
    record_error(api, e.what());
    return e.status();
  } catch (const Error& e) {
    record_error(api, e.what());
    return codes.of(e.code());
  } catch (const std::bad_alloc&) {
    record_error(api, "out of host memory");
    return codes.no_memory;
  } catch (const std::exception& e) {
    record_error(api, e.what());
    return codes.internal;
  } catch (...) {
    record_error(api, "unknown exception");
    return codes.internal;
  }
}

}  // namespace gmmav::runtime
