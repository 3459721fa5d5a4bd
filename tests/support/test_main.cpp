// main() of the test binaries that run bodies through the spawn harness
// (tests/support/spawn.hpp). `--backend=mpi`: run under the MPI launcher, one
// process per rank (MPI initialised at MPI_THREAD_MULTIPLE here, finalised at
// the end); combine with --gtest_filter='Backends/*' to run only the bodies
// written for every backend; refused in a gmmav built without MPI
// (GMMAV_WITH_MPI=OFF). Default: in-process.
#include <cstdio>
#include <cstring>
#include <string>

#include <gtest/gtest.h>

#include "gmmav/build_options.hpp"
#include "support/spawn.hpp"

#if GMMAV_WITH_MPI
#include <mpi.h>
#endif

int main(int argc, char** argv) {
  bool mpi = false;
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--backend=", 10) == 0) {
      const std::string b = argv[i] + 10;
      if (b == "mpi" && !gmmav::with_mpi) {
        std::fprintf(stderr, "--backend=mpi: %s\n", gmmav::without_mpi_message);
        return 2;
      }
      if (b == "mpi")
        mpi = true;
      else if (b != "in_process") {
        std::fprintf(stderr, "--backend: expected in_process or mpi, got '%s'\n", b.c_str());
        return 2;
      }
      continue;  // not a gtest flag: dropped
    }
    argv[out++] = argv[i];
  }
  argc = out;
#if GMMAV_WITH_MPI
  if (mpi) {
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    gmmav::testing::select_backend(gmmav::testing::Backend::mpi);
  }
#endif
  ::testing::InitGoogleTest(&argc, argv);
  const int rc = RUN_ALL_TESTS();
  if (!mpi) return rc;
#if GMMAV_WITH_MPI
  int all = 0;
  MPI_Allreduce(&rc, &all, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Finalize();
  return all;
#else
  return rc;
#endif
}
