// MPI process state shared by every MPI group: initialisation, the thread
// level, error strings, and waiting on a request with a deadline.
#pragma once

#include <mpi.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "comm/backoff.hpp"

namespace gmmav::comm::mpi {

/// Initialises MPI unless the program did (asks for MPI_THREAD_MULTIPLE).
/// Throws gmmav::Error if MPI is finalised or the granted level is below FUNNELED.
void ensure_initialized();

/// True when several threads may call MPI at once; otherwise calls go through lock().
bool thread_multiple();
/// True when threads other than the one that initialised MPI may call it (through lock()).
bool thread_level_at_least_serialized();
/// Serialises MPI calls when the thread level is below MULTIPLE (no-op lock otherwise).
std::unique_lock<std::mutex> lock();

/// Throws gmmav::Error(internal) naming `what` if `rc` is not MPI_SUCCESS.
void check(int rc, const char* what);
/// MPI's text for an error code.
std::string error_string(int rc);

/// How a thread waits between MPI tests (comm/backoff.hpp).
using Backoff = comm::Backoff;

/// Tests `req` until it completes or `timeout` passes (then throws
/// Errc::timeout with `what`). Sleeps briefly between tests.
void wait(MPI_Request* req, std::chrono::milliseconds timeout, const std::string& what);

/// wait() for a request MPI writes into `owned` when it completes: on a
/// timeout `owned` is leaked, not freed (MPI may still write it later).
template <class T>
void wait_or_leak(MPI_Request* req, std::unique_ptr<T>& owned, std::chrono::milliseconds timeout, const std::string& what) {
  try {
    wait(req, timeout, what);
  } catch (...) {
    (void)owned.release();
    throw;
  }
}

/// True when a launcher's environment variables are present.
bool launched();

/// MPI_Finalize if gmmav called MPI_Init.
void finalize();

}  // namespace gmmav::comm::mpi
