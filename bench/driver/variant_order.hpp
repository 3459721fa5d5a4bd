#pragma once
// The order in which the bench runs its variants in one timed repetition.
#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

namespace gmmav::bench {

/// A permutation of 0..n-1 drawn from a generator seeded with `rep`: every rank (the same binary)
/// runs the same order, and no variant always follows the same one. A fixed cyclic order (only
/// its start rotated) did: `a2a_alone` always ran right after `gemm_alone`, which leaves the link
/// idle, so on a shaped link it always found the token bucket refilled (D60).
inline std::vector<int> variant_order(int rep, int n) {
  std::vector<int> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937 generator(static_cast<std::mt19937::result_type>(rep) + 1);
  std::shuffle(order.begin(), order.end(), generator);
  return order;
}

}  // namespace gmmav::bench
