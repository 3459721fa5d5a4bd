#include "support/spawn.hpp"

#include <exception>

#include "common/rank_threads.hpp"
#include "gmmav/build_options.hpp"
#include "gmmav/gmmav.hpp"

#if GMMAV_WITH_MPI
#include <mpi.h>

#include "gmmav/mpi.hpp"
#endif

namespace gmmav::testing {
namespace {

Backend g_backend = Backend::in_process;

// A rank's uncaught exception is a failure of the test, named with its rank.
void report(const std::exception_ptr& error, const Rank& me) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "rank " << me.rank << " of " << me.size << " (" << to_string(me.backend)
                  << "): uncaught exception: " << e.what();
  } catch (...) {
    ADD_FAILURE() << "rank " << me.rank << " of " << me.size << " (" << to_string(me.backend) << "): uncaught non-std exception";
  }
}

#if GMMAV_WITH_MPI
void run_rank(const RankFn& fn, const Rank& me) {
  try {
    fn(me);
  } catch (...) {
    report(std::current_exception(), me);
  }
}
#endif

}  // namespace

const char* to_string(Backend b) { return b == Backend::mpi ? "mpi" : "in_process"; }
Backend selected_backend() { return g_backend; }
void select_backend(Backend b) { g_backend = b; }
::testing::internal::ParamGenerator<Backend> backends() { return ::testing::Values(g_backend); }
std::string backend_name(const ::testing::TestParamInfo<Backend>& info) { return to_string(info.param); }

bool spawn(Backend backend, int W, const RankFn& fn, const GroupOptions& options) {
  if (backend == Backend::in_process) {
    const std::vector<Comm> comms = create_in_process_group(W, options);
    const auto rank = [&](int r) { return Rank{r, W, backend, comms[static_cast<std::size_t>(r)]}; };
    const auto errors = run_rank_threads(W, [&](int r) { fn(rank(r)); });
    for (int r = 0; r < W; ++r)
      if (errors[static_cast<std::size_t>(r)]) report(errors[static_cast<std::size_t>(r)], rank(r));
    return true;
  }
#if GMMAV_WITH_MPI
  int world = 0, me = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  MPI_Comm_rank(MPI_COMM_WORLD, &me);
  if (world < W) return false;  // the same answer on every process: all skip alike
  MPI_Comm sub = MPI_COMM_NULL;
  MPI_Comm_split(MPI_COMM_WORLD, me < W ? 0 : MPI_UNDEFINED, me, &sub);
  if (me < W) {
    {
      const Comm comm = create_mpi_group(sub, options);
      run_rank(fn, Rank{me, W, backend, comm});
    }
    MPI_Comm_free(&sub);
  }
  MPI_Barrier(MPI_COMM_WORLD);  // every process leaves the test together
  return true;
#else
  return false;  // unreachable: test_main refuses --backend=mpi without MPI
#endif
}

}  // namespace gmmav::testing
