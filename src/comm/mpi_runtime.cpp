#include "comm/mpi_runtime.hpp"

#include <sched.h>

#include <algorithm>
#include <thread>

#include "common/deadline.hpp"
#include "common/fail.hpp"
#include "common/mpi_launcher.hpp"

namespace gmmav::comm::mpi {
namespace {

std::mutex g_init_mu;
bool g_we_initialized = false;
int g_level = MPI_THREAD_SINGLE;
std::mutex g_call_mu;

const char* level_name(int level) {
  switch (level) {
    case MPI_THREAD_SINGLE:
      return "MPI_THREAD_SINGLE";
    case MPI_THREAD_FUNNELED:
      return "MPI_THREAD_FUNNELED";
    case MPI_THREAD_SERIALIZED:
      return "MPI_THREAD_SERIALIZED";
    case MPI_THREAD_MULTIPLE:
      return "MPI_THREAD_MULTIPLE";
  }
  return "unknown";
}

}  // namespace

bool launched() { return started_by_mpi_launcher(); }  // one list of launcher variables (common/mpi_launcher.hpp)

void ensure_initialized() {
  std::lock_guard lk(g_init_mu);
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) fail(Errc::internal, "MPI", "expected MPI to be usable, got an already finalised MPI");
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = MPI_THREAD_SINGLE;
    check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided), "MPI_Init_thread");
    g_we_initialized = true;
    std::atexit(finalize);
  }
  MPI_Query_thread(&g_level);
  if (g_level < MPI_THREAD_FUNNELED)
    fail(Errc::internal, "MPI",
         "expected MPI initialised with at least MPI_THREAD_FUNNELED (gmmav calls MPI from the thread that runs the "
         "operator), got {}",
         level_name(g_level));
}

bool thread_level_at_least_serialized() { return g_level >= MPI_THREAD_SERIALIZED; }

bool thread_multiple() { return g_level >= MPI_THREAD_MULTIPLE; }

std::unique_lock<std::mutex> lock() {
  if (thread_multiple()) return std::unique_lock<std::mutex>(g_call_mu, std::defer_lock);
  return std::unique_lock<std::mutex>(g_call_mu);
}

std::string error_string(int rc) {
  char msg[MPI_MAX_ERROR_STRING] = {0};
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  return std::string(msg, static_cast<std::size_t>(std::max(len, 0)));
}

void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  fail(Errc::internal, "MPI", "{} failed: {}", what, error_string(rc));
}

void wait(MPI_Request* req, std::chrono::milliseconds timeout, const std::string& what) {
  const auto deadline = deadline_after(timeout);
  Backoff backoff;
  for (;;) {
    int done = 0;
    {
      auto lk = lock();
      check(MPI_Test(req, &done, MPI_STATUS_IGNORE), "MPI_Test");
    }
    if (done) return;
    if (std::chrono::steady_clock::now() > deadline)
      fail(Errc::timeout, "group", "timed out after {} ms {}", timeout.count(), what);
    backoff.pause();
  }
}

void finalize() {
  std::lock_guard lk(g_init_mu);
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (g_we_initialized && !finalized) MPI_Finalize();
  g_we_initialized = false;
}

}  // namespace gmmav::comm::mpi
