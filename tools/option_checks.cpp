#include "option_checks.hpp"

#include <charconv>
#include <cmath>
#include <limits>
#include <string>

namespace gmmav::cli {

CLI::Validator integer_at_least(std::int64_t min) {
  const std::string expected = "an integer >= " + std::to_string(min);
  return CLI::Validator(
      [min, expected](std::string& text) -> std::string {
        std::int64_t v = 0;
        if (!CLI::detail::lexical_cast(text, v)) return "expected " + expected + ", got '" + text + "'";
        if (v < min) return "expected " + expected + ", got " + text;
        return {};
      },
      "INT>=" + std::to_string(min));
}

CLI::Validator unsigned_64() {
  const std::string expected = "an integer in [0, " + std::to_string(std::numeric_limits<std::uint64_t>::max()) + "]";
  return CLI::Validator(
      [expected](std::string& text) -> std::string {
        // Decimal digits only: from_chars into uint64 refuses a sign (CLI11's conversion wrapped "-1"
        // to 2^64 - 1) and reports values above 2^64 - 1 as out of range.
        std::uint64_t v = 0;
        const char* end = text.data() + text.size();
        const auto [ptr, ec] = std::from_chars(text.data(), end, v);
        if (text.empty() || ec != std::errc() || ptr != end) return "expected " + expected + ", got '" + text + "'";
        return {};
      },
      "UINT64");
}

CLI::Validator finite_non_negative() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        double v = 0;
        if (!CLI::detail::lexical_cast(text, v) || !std::isfinite(v) || v < 0)
          return "expected a finite number >= 0, got '" + text + "'";
        return {};
      },
      "FLOAT>=0");
}

}  // namespace gmmav::cli

namespace gmmav::cli {

CLI::Option* add_op_option(CLI::App* cmd, std::string& op) {
  return cmd
      ->add_option("--op", op,
                   "Operator: combine (aclnnGroupedMatMulAlltoAllv: GroupedMatMul -> Unpermute -> AlltoAllv) or dispatch "
                   "(aclnnAlltoAllvGroupedMatMul: AlltoAllv -> Permute -> GroupedMatMul)")
      ->capture_default_str()
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            if (text == "combine" || text == "dispatch") return {};
            return "expected combine or dispatch, got '" + text + "'";
          },
          "combine|dispatch"));
}

}  // namespace gmmav::cli
