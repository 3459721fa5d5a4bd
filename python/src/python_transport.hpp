// The torch.distributed backend's hold on its Python transport object
// (gmmav._dist.Transport), shared by the communicator, its transport's
// transfers and the count check's collectives: the object, and whether an
// earlier failure left the group unusable (D2's "broken group"). Python is
// entered only with the GIL, from the rank's orchestrating thread.
#pragma once

#include <pybind11/pybind11.h>

#include <atomic>
#include <string>
#include <utility>

#include "gmmav/types.hpp"

namespace gmmav::python {

struct PythonTransport {
  pybind11::object transport;  // touched only with the GIL held
  std::atomic<bool> broken{false};
  std::string broken_reason;  // the failure that broke it, when a Python call failed (the rank's thread)

  PythonTransport() = default;
  PythonTransport(const PythonTransport&) = delete;
  PythonTransport& operator=(const PythonTransport&) = delete;
  ~PythonTransport() {
    if (!Py_IsInitialized()) {  // interpreter gone: leak the reference rather than touch it
      (void)transport.release();
      return;
    }
    try {
      pybind11::gil_scoped_acquire gil;
      transport = pybind11::object();
    } catch (...) {  // no GIL to be had: leak it
      (void)transport.release();
    }
  }

  /// Breaks the group: `what` failed on rank `rank` with `message`; throws the group's error.
  [[noreturn]] void fail(int rank, const char* what, const std::string& message) {
    broken_reason = "rank " + std::to_string(rank) + ": torch.distributed " + what + " failed: " + message;
    broken.store(true, std::memory_order_release);
    throw Error(Errc::timeout, "group", "group: " + broken_reason + "; the group is broken, recreate it");
  }

  /// Calls f(transport) with the GIL; a Python exception breaks the group
  /// (a peer may be blocked in a transfer that never matches) and becomes a gmmav::Error.
  template <typename F>
  auto call(int rank, const char* what, F&& f) {
    std::string message;
    {
      pybind11::gil_scoped_acquire gil;
      try {
        return std::forward<F>(f)(transport);
      } catch (pybind11::error_already_set& e) {
        message = pybind11::str(e.value()).cast<std::string>();
      }
    }
    fail(rank, what, message);
  }
};

}  // namespace gmmav::python
