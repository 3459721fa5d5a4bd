// The seeded random cases that run on every backend (tests/backends_test.cpp
// through the spawn harness, tests/mpi/mpi_check.cpp under the launcher): one
// generator, so a case index means the same problem on every backend.
#pragma once

#include <cstdint>
#include <random>

#include "engine/tile_schedule.hpp"
#include "reference/synthetic_case.hpp"

namespace gmmav::testing {

/// Case `index` of the cross-backend series for a group of W ranks: e in {1,2,3,4,8}, both dtypes,
/// both trans flags, with and without the shared expert, random/skewed/balanced counts; every
/// eighth case crosses the tile size, every third is long enough (H1 >= kMergeMinK) for merged
/// tile groups, every third from index 2 has random (not exact) values.
inline reference::CaseSpec cross_backend_spec(int index, int W) {
  using namespace reference;
  std::mt19937_64 rng(0xC0FFEE00ULL + static_cast<unsigned>(index));
  const int experts[] = {1, 2, 3, 4, 8};
  CaseSpec s;
  s.seed = rng();
  s.world_size = W;
  s.local_experts = experts[rng() % 5];
  s.dtype = rng() % 2 ? DType::f16 : DType::bf16;
  s.trans_gmm_weight = rng() % 2;
  s.shared_expert = rng() % 2;
  s.trans_mm_weight = s.shared_expert && rng() % 2;
  const CountPattern patterns[] = {CountPattern::random, CountPattern::skewed, CountPattern::balanced};
  s.counts = patterns[rng() % 3];
  s.values = index % 3 == 2 ? ValueKind::random : ValueKind::exact;
  s.rows_per_rank = index % 8 == 0 ? 300 * s.local_experts + 17 : static_cast<std::int64_t>(rng() % 200);
  s.h1 = 1 + static_cast<std::int64_t>(rng() % 70);
  if (index % 3 == 1) s.h1 = engine::kMergeMinK + static_cast<std::int64_t>(rng() % 100);
  s.n1 = 1 + static_cast<std::int64_t>(rng() % 50);
  s.h2 = 1 + static_cast<std::int64_t>(rng() % 40);
  s.n2 = 1 + static_cast<std::int64_t>(rng() % 40);
  s.bs = 1 + static_cast<std::int64_t>(rng() % 90);
  return s;
}

// The across-hosts property series (gmmav_mpi_check --property): both ops;
// empty, single-row and hot blocks; small calls (a peer's rows fit one
// message: after a small call their counts travel in heads, D56) and large
// ones (a peer's tiles are cut into messages below 63 KiB across hosts);
// shared expert on and off. Values exact: every result is known bit for bit.
inline reference::CaseSpec property_spec(std::uint64_t seed, int W) {
  using namespace reference;
  std::mt19937_64 rng(0x9E3779B97F4A7C15ULL ^ (seed * 0x100000001B3ULL));
  const int experts[] = {1, 2, 3, 4, 8};
  CaseSpec s;
  s.seed = rng();
  s.world_size = W;
  s.op = rng() % 2 ? Op::dispatch : Op::combine;
  s.permute_out = s.op == Op::dispatch && rng() % 2;
  s.local_experts = experts[rng() % 5];
  s.dtype = rng() % 2 ? DType::f16 : DType::bf16;
  s.trans_gmm_weight = rng() % 2;
  s.shared_expert = rng() % 2;
  s.trans_mm_weight = s.shared_expert && rng() % 2;
  const CountPattern patterns[] = {CountPattern::edges, CountPattern::edges, CountPattern::random, CountPattern::skewed,
                                   CountPattern::balanced};
  s.counts = patterns[rng() % 5];
  s.values = ValueKind::exact;
  if (rng() % 2 == 0) {  // small: a few rows of a few columns per peer
    s.rows_per_rank = 1 + static_cast<std::int64_t>(rng() % 40);
    s.h1 = 1 + static_cast<std::int64_t>(rng() % 48);
    s.n1 = 1 + static_cast<std::int64_t>(rng() % 32);
  } else {  // large: 1-2 KiB rows, hundreds per peer
    s.rows_per_rank = 200 * W + static_cast<std::int64_t>(rng() % 400);
    s.h1 = 8 + static_cast<std::int64_t>(rng() % 64);
    s.n1 = 512 + static_cast<std::int64_t>(rng() % 512);
  }
  if (s.op == Op::dispatch) std::swap(s.h1, s.n1);  // the exchanged rows are x's (H1 wide): keep them the large ones
  s.h2 = 1 + static_cast<std::int64_t>(rng() % 40);
  s.n2 = 1 + static_cast<std::int64_t>(rng() % 40);
  s.bs = 1 + static_cast<std::int64_t>(rng() % 60);
  return s;
}

}  // namespace gmmav::testing
