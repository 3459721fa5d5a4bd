#include "cases.hpp"

namespace gmmav::bench {

std::vector<CaseShape> all_cases(bool quick) {
  using reference::CountPattern;
  const int W = quick ? 4 : 8;
  const std::int64_t s = quick ? 1 : 2;  // full mode doubles the rows
  std::vector<CaseShape> v;

  CaseShape balanced;
  balanced.name = "balanced";
  balanced.purpose = "H1 calibrated so the GEMMs and the exchange take the same time (overlap at its most visible)";
  balanced.world_size = W;
  balanced.bs = 512 * s;
  balanced.h1 = 128;
  balanced.n1 = 2048 * s;
  balanced.h2_follows_h1 = true;
  balanced.n2 = 1024 * s;
  balanced.calibrate = true;
  v.push_back(balanced);

  CaseShape compute;
  compute.name = "compute_bound";
  compute.purpose = "large H1: the exchange is a few % of the GEMMs";
  compute.world_size = W;
  compute.bs = 256 * s;
  compute.h1 = compute.n1 = compute.h2 = compute.n2 = 1024 * s;
  v.push_back(compute);

  CaseShape comm;
  comm.name = "comm_bound";
  comm.purpose = "H1 = 32: every byte costs ~32 flops, far below the machine's flops/byte";
  comm.world_size = W;
  comm.bs = 1024 * s;
  comm.h1 = 32;
  comm.n1 = 2048 * s;
  comm.shared = false;
  v.push_back(comm);

  CaseShape skewed = balanced;
  skewed.name = "skewed";
  skewed.purpose = "one hot expert per rank (and one rank sending nothing), H1 calibrated as in balanced";
  skewed.counts = CountPattern::skewed;
  v.push_back(skewed);

  CaseShape tiny;
  tiny.name = "tiny";
  tiny.purpose = "< 2 MB per rank: fixed costs (meet, barriers, dispatch) dominate";
  tiny.world_size = W;
  tiny.experts = 2;
  tiny.bs = 64;
  tiny.h1 = tiny.n1 = tiny.h2 = tiny.n2 = 256;
  v.push_back(tiny);

  CaseShape seed;
  seed.name = "seed";
  seed.purpose = "the vendor example's shapes: W=8, e=4, BS=4096, K=2, H=7168, N1=N2=4096 (~5.8 TFLOP per call)";
  seed.world_size = 8;
  seed.required_world = 8;
  seed.experts = 4;
  seed.bs = 4096;
  seed.topk = 2;
  seed.h1 = seed.h2 = 7168;
  seed.n1 = seed.n2 = 4096;
  seed.dtypes = {DType::f16};
  seed.heavy = true;
  v.push_back(seed);

  // The seed widths at the two token counts of MoE inference (issue 17): what a
  // user compares with the PyTorch composite. W = 2 ranks, e = 4, shared expert.
  // --quick shrinks H and N (not the rows): the row counts are what makes a call
  // decode-like (weights dominate the bytes) or prefill-like (FLOPs dominate).
  const std::int64_t h = quick ? 1792 : 7168, n = quick ? 1024 : 4096;
  CaseShape decode;
  decode.name = "decode";
  decode.purpose = "decode step: BS=16, K=8 (A=128 rows per rank, 16 per expert per source); the weights' bytes dominate";
  decode.world_size = 2;
  decode.experts = 4;
  decode.bs = 16;
  decode.topk = 8;
  decode.h1 = decode.h2 = h;
  decode.n1 = decode.n2 = n;
  v.push_back(decode);

  CaseShape prefill = decode;
  prefill.name = "prefill";
  prefill.purpose = "prefill chunk: BS=256, K=2 (A=512 rows per rank); the FLOPs dominate";
  prefill.bs = 256;
  prefill.topk = 2;
  v.push_back(prefill);
  return v;
}

std::int64_t rank_bytes(const CaseShape& c) {
  const std::int64_t a = c.bs * c.topk;
  std::int64_t elems = a * c.h1 + c.experts * c.h1 * c.n1 + a * c.n1;  // gmmX, weights, y (BSK = A when balanced)
  const std::int64_t h2 = c.h2_follows_h1 ? c.h1 : c.h2;
  if (c.shared) elems += c.bs * h2 + h2 * c.n2 + c.bs * c.n2;
  return elems * 2;
}

}  // namespace gmmav::bench
