// CLI11 validators whose errors read "expected ..., got ..." in plain numbers
// (CLI::PositiveNumber prints its range as two 300-digit doubles, and
// CLI::NonNegativeNumber lets NaN through).
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

namespace gmmav::cli {

/// An integer >= `min` (e.g. a tensor dimension).
CLI::Validator integer_at_least(std::int64_t min);

/// An unsigned 64-bit integer in decimal (a seed): a sign, a fraction, hex and values above
/// 2^64 - 1 are refused.
CLI::Validator unsigned_64();

/// A finite number >= 0 (a tolerance, a floor): NaN, inf and negatives are refused.
CLI::Validator finite_non_negative();

}  // namespace gmmav::cli

namespace gmmav::cli {

/// `--op combine|dispatch` (default combine), the same words and check in every subcommand:
/// anything else is "expected combine or dispatch, got '...'".
CLI::Option* add_op_option(CLI::App* cmd, std::string& op);

}  // namespace gmmav::cli
