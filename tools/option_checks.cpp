#include "option_checks.hpp"

#include <cmath>
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
