// The eight things `gmmav bench` times, as one rank runs them:
//   fused       gmmav::run (the operator) with PackedWeights made once
//   fused_per_call  gmmav::run without PackedWeights: every call packs its weights
//               (what `gmmav run` and the native per-call API do)
//   aclnn       the vendor's two-phase C API on aclrtMalloc copies of the inputs
//               (its weight cache applies: the first call packs, later ones hit)
//   gemm_alone  engine::compute_tiles into a local gmmY: the GEMMs and nothing else
//   a2a_alone   the AlltoAllv of the same bytes, nothing else
//   sequential  GEMMs into gmmY -> unpermute copy -> AlltoAllv -> shared MatMul
//   per_expert  the vendor's schedule (docs/spec.md §7): one exchange per expert, overlapping the next expert's GEMMs
//   library     oneDNN alone, all cores, same FLOPs (rank 0 runs it; the others wait)
// With `packed` set, the four engine variants (fused, gemm_alone, sequential,
// per_expert) use weights packed once outside the timing, as the library
// variant always does; without it they pack every weight in every call.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "baseline_transport.hpp"
#include "gmmav/gmmav.hpp"
#include "library_matmul.hpp"

namespace gmmav::bench {
class AclnnRank;
}

namespace gmmav::bench {

enum class Variant : int { fused, gemm_alone, a2a_alone, sequential, per_expert, library, fused_per_call, aclnn };
constexpr int kVariants = 8;
const char* to_string(Variant v);

/// One rank's outputs besides the fused ones, so every variant's result can be compared.
struct RankBuffers {
  std::vector<std::uint16_t> gmm_y, send_buf;
  std::array<std::vector<std::uint16_t>, kTargets> y;  // per Target
  std::vector<std::uint16_t> mm_gemm, mm_seq, mm_pe;   // shared-expert outputs of gemm_alone, sequential, per_expert
  std::vector<std::uint16_t> y_per_call, mm_per_call;  // fused_per_call's outputs
  std::vector<std::byte> workspace;                    // the fused call's (MPI staging)

  /// `per_call`: also fused_per_call's outputs (not when the variant is left out).
  void allocate(const Plan& plan, std::size_t workspace_bytes, bool per_call = true);
  std::array<std::byte*, kTargets> y_pointers();
};

/// Everything one rank needs to run the variants.
struct RankVariants {
  const Plan& plan;
  OpTensors fused;  // inputs and the fused outputs (y, mmY)
  RankBuffers& buf;
  Comm comm;
  BaselineTransport& transport;
  LibraryMatmul* library = nullptr;       // rank 0 only
  const PackedWeights* packed = nullptr;  // this rank's weights packed once (null: pack in every call)
  AclnnRank* aclnn = nullptr;             // this rank's aclnn calls (null: the variant is skipped)

  void run(Variant v);
  /// Destination-major send buffer from gmmY (docs/spec.md §3), copies on the pool.
  void unpermute();
};

}  // namespace gmmav::bench
