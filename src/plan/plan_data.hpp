// The immutable layout a Plan holds (internal).
#pragma once

#include <cstdint>
#include <vector>

#include "gmmav/plan.hpp"

namespace gmmav::detail {

struct PlanData {
  ProblemDesc desc;
  std::int64_t rows_in = 0;               // A
  std::int64_t rows_out = 0;              // BSK
  std::vector<std::int64_t> group_rows;   // [j] = G_j
  std::vector<std::int64_t> send_offset;  // [j*W + d] first gmmX row of block (j, d)
  std::vector<std::int64_t> recv_offset;  // [s*e + j] first y row of block g
  std::vector<std::int64_t> rows_to;      // [d]
  std::vector<std::int64_t> rows_from;    // [s]
};

}  // namespace gmmav::detail
