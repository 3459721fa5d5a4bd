// The named benchmark cases and their shapes (full and --quick).
//
// What makes a case compute- or communication-bound: per rank the GEMMs cost
// 2*A*H1*N1 flops and the exchange moves about A*N1*2 bytes, so the ratio
// comm/compute is ~1/H1 whatever N1 and A are (N1 and A only set the sizes).
// "balanced" and "skewed" therefore pick H1 at run time so that the GEMMs and
// the exchange take the same time on the backend being measured.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gmmav/types.hpp"
#include "reference/synthetic_case.hpp"

namespace gmmav::bench {

struct CaseShape {
  std::string name;
  std::string purpose;     ///< one line: what the case shows
  int world_size = 4;      ///< in-process W (under MPI: the process count)
  int required_world = 0;  ///< nonzero: the case exists only with this W (seed: 8)
  int experts = 4;         ///< e
  std::int64_t bs = 256;   ///< tokens per rank; A = bs * topk routed rows
  std::int64_t topk = 2;
  std::int64_t h1 = 1024, n1 = 1024;
  bool shared = true;          ///< shared expert mmX (bs, h2) @ (h2, n2)
  bool h2_follows_h1 = false;  ///< h2 = h1 (kept equal when calibrating)
  std::int64_t h2 = 1024, n2 = 1024;
  reference::CountPattern counts = reference::CountPattern::balanced;
  bool calibrate = false;  ///< choose H1 so that t_gemm_alone ~ t_a2a_alone
  std::vector<DType> dtypes = {DType::bf16, DType::f16};
  bool heavy = false;  ///< run only in full mode (or when named)
};

/// Every case, in the order they run; `quick` scales the shapes down.
std::vector<CaseShape> all_cases(bool quick);

/// Bytes of one rank's tensors (inputs and outputs), for the "tiny" rule.
std::int64_t rank_bytes(const CaseShape& c);

}  // namespace gmmav::bench
