// >= 200 seeded random valid cases against the reference: W in {1,2,3,4,8},
// e in {1,2,3,4,8}, random/skewed/balanced counts (empty experts, ranks that
// send nothing), both dtypes, both trans flags, with and without the shared
// expert, row counts that are not multiples of the tile size. Cases with
// dyadic data must match the reference bit for bit; random data must be within
// the docs/spec.md §4 tolerance.
#include <gtest/gtest.h>

#include <random>
#include <set>
#include <tuple>

#include "engine/tile_schedule.hpp"
#include "reference/synthetic_case.hpp"

namespace {

using namespace gmmav::reference;

CaseSpec spec_for(int index) {
  std::mt19937_64 rng(0x5eed0000ULL + static_cast<unsigned>(index));
  const int worlds[] = {1, 2, 3, 4, 8};
  const int experts[] = {1, 2, 3, 4, 8};
  CaseSpec s;
  s.seed = rng();
  s.world_size = worlds[rng() % 5];
  s.local_experts = experts[rng() % 5];
  s.dtype = rng() % 2 ? gmmav::DType::f16 : gmmav::DType::bf16;
  s.trans_gmm_weight = rng() % 2;
  s.shared_expert = rng() % 2;
  s.trans_mm_weight = s.shared_expert && rng() % 2;
  const CountPattern patterns[] = {CountPattern::random, CountPattern::skewed, CountPattern::balanced};
  s.counts = patterns[rng() % 3];
  s.values = index % 4 == 3 ? ValueKind::random : ValueKind::exact;
  // Some cases cross the tile size so blocks split into several tiles with a ragged tail.
  const std::int64_t tile = gmmav::engine::kTileRows;
  s.rows_per_rank = index % 10 == 0 ? 2 * tile * s.local_experts + 37 : static_cast<std::int64_t>(rng() % 200);
  s.h1 = 1 + static_cast<std::int64_t>(rng() % 70);
  // Some cases are long enough (H1 >= kMergeMinK) that small tiles of an
  // expert are merged into one GEMM whose rows are then split to their destinations.
  if (index % 8 == 5) s.h1 = gmmav::engine::kMergeMinK + static_cast<std::int64_t>(rng() % 150);
  s.n1 = 1 + static_cast<std::int64_t>(rng() % 50);
  s.h2 = 1 + static_cast<std::int64_t>(rng() % 40);
  s.n2 = 1 + static_cast<std::int64_t>(rng() % 40);
  s.bs = 1 + static_cast<std::int64_t>(rng() % (index % 10 == 0 ? 300 : 90));
  return s;
}

std::string describe(const CaseSpec& s) {
  return "W=" + std::to_string(s.world_size) + " e=" + std::to_string(s.local_experts) + " dtype=" + gmmav::to_string(s.dtype) +
         " counts=" + to_string(s.counts) + " rows/rank~" + std::to_string(s.rows_per_rank) + " H1=" + std::to_string(s.h1) +
         " N1=" + std::to_string(s.n1) + (s.trans_gmm_weight ? " transW" : "") +
         (s.shared_expert ? " shared(BS=" + std::to_string(s.bs) + ",H2=" + std::to_string(s.h2) + ",N2=" + std::to_string(s.n2) +
                                (s.trans_mm_weight ? ",trans" : "") + ")"
                          : "") +
         (s.values == ValueKind::exact ? " exact" : " random");
}

class RandomCases : public ::testing::TestWithParam<int> {};

TEST_P(RandomCases, MatchesReference) {
  const CaseSpec spec = spec_for(GetParam());
  SCOPED_TRACE(describe(spec));
  Case c = make_case(spec);
  const auto errors = run_in_process(c);
  for (std::size_t r = 0; r < errors.size(); ++r) ASSERT_EQ(errors[r], "") << "rank " << r;
  const CaseCheck check = check_case(c, spec.values == ValueKind::exact);
  EXPECT_TRUE(check.ok) << check.first_failure;
  EXPECT_LE(check.max_rel_error, spec.values == ValueKind::exact ? 0.01 : 0.05);
}

INSTANTIATE_TEST_SUITE_P(Seeded, RandomCases, ::testing::Range(0, 240));

// The generator itself must produce what the suite claims to cover.
TEST(RandomCasesCoverage, SuiteCoversTheMatrix) {
  std::set<int> worlds, experts;
  int f16 = 0, trans = 0, shared = 0, skewed = 0, multi_tile = 0, empty_expert = 0, silent_rank = 0, merged = 0;
  for (int i = 0; i < 240; ++i) {
    const CaseSpec s = spec_for(i);
    worlds.insert(s.world_size);
    experts.insert(s.local_experts);
    f16 += s.dtype == gmmav::DType::f16;
    trans += s.trans_gmm_weight;
    shared += s.shared_expert;
    skewed += s.counts == CountPattern::skewed;
    multi_tile += s.rows_per_rank > gmmav::engine::kTileRows;
    const Case c = make_case(s);
    bool any_merged = false;
    for (int r = 0; r < s.world_size; ++r) {
      const gmmav::Plan plan = gmmav::Plan::create(c.desc(r));
      for (int j = 0; j < s.local_experts; ++j)
        for (const auto& g : gmmav::engine::routed_groups(plan, j)) any_merged = any_merged || g.parts.size() > 1;
    }
    merged += any_merged;
    for (const auto& r : c.ranks) {
      std::int64_t a = 0;
      for (auto x : r.send_counts) a += x;
      silent_rank += a == 0;
      for (int j = 0; j < s.local_experts; ++j) {
        std::int64_t g = 0;
        for (int d = 0; d < s.world_size; ++d) g += r.send_counts[static_cast<std::size_t>(d * s.local_experts + j)];
        empty_expert += g == 0;
      }
    }
  }
  EXPECT_EQ(worlds, (std::set<int>{1, 2, 3, 4, 8}));
  EXPECT_EQ(experts, (std::set<int>{1, 2, 3, 4, 8}));
  EXPECT_GT(f16, 60);
  EXPECT_LT(f16, 180);
  EXPECT_GT(trans, 60);
  EXPECT_GT(shared, 60);
  EXPECT_GT(skewed, 30);
  EXPECT_GT(multi_tile, 20);
  EXPECT_GT(empty_expert, 10);
  EXPECT_GT(silent_rank, 10);
  EXPECT_GT(merged, 10);  // cases where one GEMM serves several destinations
}

// routed_groups partitions routed_tiles: every tile exactly once, each group's
// parts contiguous in gmmX and at most kTileRows rows together, groups with a
// remote part first; below kMergeMinK exactly routed_tiles, one per group.
TEST(TileGroups, PartitionTheTiles) {
  using gmmav::engine::RoutedTile;
  const auto key = [](const RoutedTile& t) { return std::tuple(t.dest, t.first, t.rows, t.src_row); };
  int merged = 0;
  for (int i = 0; i < 240; ++i) {
    const CaseSpec s = spec_for(i);
    const Case c = make_case(s);
    for (int r = 0; r < s.world_size; ++r) {
      const gmmav::Plan plan = gmmav::Plan::create(c.desc(r));
      for (int j = 0; j < s.local_experts; ++j) {
        const auto tiles = gmmav::engine::routed_tiles(plan, j);
        const auto groups = gmmav::engine::routed_groups(plan, j);
        std::multiset<std::tuple<int, std::int64_t, std::int64_t, std::int64_t>> want, got;
        for (const auto& t : tiles) want.insert(key(t));
        bool seen_local_only = false;
        for (const auto& g : groups) {
          ASSERT_FALSE(g.parts.empty());
          std::int64_t row = g.src_row;
          for (const auto& t : g.parts) {
            EXPECT_EQ(t.expert, j);
            EXPECT_EQ(t.src_row, row) << "parts must be contiguous in gmmX";
            row += t.rows;
            got.insert(key(t));
          }
          EXPECT_EQ(row - g.src_row, g.rows);
          if (g.parts.size() > 1) {
            EXPECT_LE(g.rows, gmmav::engine::kTileRows);
            EXPECT_GE(s.h1, gmmav::engine::kMergeMinK);
            ++merged;
          }
          const bool remote = g.remote(r);
          EXPECT_FALSE(remote && seen_local_only) << "a group with a remote part after a local-only one";
          seen_local_only = seen_local_only || !remote;
        }
        EXPECT_EQ(want, got) << "case " << i << " rank " << r << " expert " << j;
        if (s.h1 < gmmav::engine::kMergeMinK) {
          ASSERT_EQ(groups.size(), tiles.size());
          for (std::size_t k = 0; k < tiles.size(); ++k) EXPECT_EQ(key(groups[k].parts.front()), key(tiles[k]));
        }
      }
    }
  }
  EXPECT_GT(merged, 10);
}

}  // namespace
