// `gmmav bench`: measures the fused operator against its parts and against the
// designs it replaces, per named case, in-process or under MPI. Method and
// results: docs/performance.md.
#pragma once

#include <CLI/CLI.hpp>

namespace gmmav::bench {

/// Registers the `bench` subcommand on the gmmav CLI.
void add_bench_command(CLI::App& app);

}  // namespace gmmav::bench
