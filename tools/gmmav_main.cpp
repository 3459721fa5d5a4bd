// gmmav: command-line entry point. Errors go to stderr; exit 0 = success,
// 1 = a check failed, 2 = bad usage or input.
#include <cstdio>
#include <exception>

#include "bench_command.hpp"
#include "commands.hpp"
#include "gmmav/build_options.hpp"

// `gmmav --version`: the version and whether the MPI backend is built in (GMMAV_WITH_MPI, D98).
#if GMMAV_WITH_MPI
#define GMMAV_VERSION_TEXT "gmmav " GMMAV_VERSION " (with MPI: GMMAV_WITH_MPI=ON)"
#else
#define GMMAV_VERSION_TEXT "gmmav " GMMAV_VERSION " (without MPI: GMMAV_WITH_MPI=OFF)"
#endif

int main(int argc, char** argv) {
  CLI::App app{"gmmav - GroupedMatMul + AlltoAllv (aclnnGroupedMatMulAlltoAllv) on CPUs"};
  app.require_subcommand(1);
  app.set_version_flag("--version", GMMAV_VERSION_TEXT);
  gmmav::cli::add_run_command(app);
  gmmav::cli::add_verify_command(app);
  // `gmmav bench` registers here (bench/).
  gmmav::bench::add_bench_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::RuntimeError& e) {
    return e.get_exit_code();  // a command's own result (1 = a check failed)
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);  // prints help/version or the usage error
    return rc == 0 ? 0 : 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gmmav: %s\n", e.what());
    return 2;
  }
  return 0;
}
