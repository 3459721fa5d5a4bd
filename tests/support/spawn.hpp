// One harness for every backend: spawn(backend, W, fn) runs fn once per rank
// of a fresh W-rank group, and the same test body runs on in-process threads
// and on MPI processes (later: other process groups).
//
//   TEST_P(Suite, Name) {                       // GetParam() is the backend
//     GMMAV_SPAWN(GetParam(), 3, [&](const gmmav::testing::Rank& me) {
//       ... gmmav::run(plan, me.comm, tensors) ...; EXPECT_...(this rank's results);
//     });
//   }
//   INSTANTIATE_TEST_SUITE_P(Backends, Suite, gmmav::testing::backends(), gmmav::testing::backend_name);
//
// Bodies check their own rank's results only (under MPI the other ranks' data
// lives in other processes); every rank may build the whole synthetic case
// (it is deterministic) and write only its own outputs.
//
// Which backend a test binary runs: in-process by default; `--backend=mpi`
// (tests/support/test_main.cpp) under the launcher, one process per rank: the
// group is MPI_COMM_WORLD's first W processes (a test needing more processes
// than launched is skipped), the others wait for it at the end of spawn.
#pragma once

#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "gmmav/comm.hpp"

namespace gmmav::testing {

enum class Backend { in_process, mpi };
const char* to_string(Backend b);
inline void PrintTo(Backend b, std::ostream* os) { *os << to_string(b); }  // gtest's parameter printer

/// What a rank's body gets.
struct Rank {
  int rank;
  int size;
  Backend backend;
  const Comm& comm;
};
using RankFn = std::function<void(const Rank&)>;

/// Runs fn for every rank of a new W-rank group of `backend` that lives in this
/// process (in-process: all W, one thread each; MPI: this process's rank, if it
/// is one of the first W) and returns once they all returned. An exception
/// escaping fn is a test failure naming the rank. Returns false, having run
/// nothing, when the backend cannot have W ranks here (MPI with fewer processes).
bool spawn(Backend backend, int W, const RankFn& fn, const GroupOptions& options = {});

/// The backend this test binary was started for (select_backend; in-process by default).
Backend selected_backend();
void select_backend(Backend b);
/// gtest parameter generator and names for TEST_P suites over the backends.
::testing::internal::ParamGenerator<Backend> backends();
std::string backend_name(const ::testing::TestParamInfo<Backend>& info);

}  // namespace gmmav::testing

/// spawn(...), or GTEST_SKIP when the backend cannot have W ranks here.
#define GMMAV_SPAWN(backend, W, ...)                                                           \
  do {                                                                                         \
    if (!::gmmav::testing::spawn((backend), (W), __VA_ARGS__))                                 \
      GTEST_SKIP() << "needs " << (W) << " ranks on " << ::gmmav::testing::to_string(backend); \
  } while (0)
