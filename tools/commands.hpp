// The CLI's subcommands: each registers its options on the app and runs.
#pragma once

#include <CLI/CLI.hpp>

namespace gmmav::cli {

/// `gmmav run`: the operator on synthetic data, verified against the reference.
void add_run_command(CLI::App& app);

/// `gmmav verify`: the operator on a case read from .npy files, compared with expected outputs.
void add_verify_command(CLI::App& app);

}  // namespace gmmav::cli
