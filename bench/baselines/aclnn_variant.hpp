// The `aclnn` variant: the operator as a CANN user calls it — the two-phase C
// API (aclnnGroupedMatMulAlltoAllvGetWorkspaceSize + aclnnGroupedMatMulAlltoAllv,
// or for a dispatch plan aclnnAlltoAllvGroupedMatMul[GetWorkspaceSize]) and
// aclrtSynchronizeStream, with every aclTensor / aclIntArray made per call,
// on copies of the case's inputs in aclrtMalloc memory (so the aclnn layer's
// weight cache applies: the first call packs, later calls reuse the packing).
// Each rank has its own device (= its rank), context and stream.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gmmav/gmmav.hpp"
#include "rank_group.hpp"

namespace gmmav::bench {

/// The HCCL communicators of one case, made once per case.
class AclnnCommunicators {
 public:
  /// In-process: HcclCommInitAll(W, devices 0..W-1); call from one thread.
  static std::unique_ptr<AclnnCommunicators> in_process(int world_size);
  /// MPI: rank 0's HcclGetRootInfo broadcast, HcclCommInitRootInfo on every
  /// process (collective; call on every rank with its device already set).
  /// `group` is an MPI rank group (support::MpiRankGroup). Only in a build with
  /// MPI (GMMAV_WITH_MPI; aclnn_over_mpi.cpp): call it under `if constexpr (with_mpi)`.
  static std::unique_ptr<AclnnCommunicators> over_mpi(support::RankGroup& group);
  ~AclnnCommunicators();
  AclnnCommunicators(const AclnnCommunicators&) = delete;
  AclnnCommunicators& operator=(const AclnnCommunicators&) = delete;

  /// Rank r's handle (an HcclComm); MPI: this process's, whatever r.
  void* comm(int rank) const;
  /// Non-empty: the communicators could not be made, and why.
  const std::string& error() const { return error_; }

 private:
  AclnnCommunicators() = default;
  std::vector<void*> comms_;
  bool per_process_ = false;
  std::string error_;
};

/// aclGetRecentErrMsg, or "(no message)".
std::string recent_acl_error();

/// Makes rank `rank`'s device current on the calling thread (aclInit once per
/// process first). Must precede AclnnCommunicators::over_mpi and AclnnRank.
void use_aclnn_device(int rank);

/// One rank's aclnn calls. Construct, call() and destroy on the rank's thread.
class AclnnRank {
 public:
  /// Makes a context and stream for device `rank`, copies `host`'s inputs into
  /// aclrtMalloc memory (outputs too, zeroed), and runs phase 1 once to learn
  /// whether the API accepts this case (see unusable()). Nothing is timed.
  AclnnRank(int rank, void* hccl_comm, const Plan& plan, const OpTensors& host);
  ~AclnnRank();
  AclnnRank(const AclnnRank&) = delete;
  AclnnRank& operator=(const AclnnRank&) = delete;

  /// Non-empty: why phase 1 rejects this rank's call (aclGetRecentErrMsg).
  const std::string& unusable() const { return unusable_; }
  /// One call as a user makes it: tensors and count arrays, both phases, synchronize.
  /// Throws std::runtime_error with the API's message when any step fails.
  void call();
  /// The outputs of the last call, downloaded with aclrtMemcpy.
  std::vector<std::uint16_t> y() const;
  std::vector<std::uint16_t> mm_y() const;         ///< empty without a shared expert
  std::vector<std::uint16_t> permute_out() const;  ///< the dispatch op's; empty unless the plan writes it

 private:
  struct Buffer {
    void* p = nullptr;
    std::size_t bytes = 0;
  };
  Buffer upload(const void* host, std::size_t bytes);
  Buffer zeroed(std::size_t bytes);
  std::vector<std::uint16_t> download(const Buffer& b) const;
  friend struct AclnnCallArgs;

  int rank_;
  void* comm_;
  const Plan& plan_;
  char group_[128] = {0};
  void* context_ = nullptr;
  void* stream_ = nullptr;
  Buffer gmm_x_, gmm_weight_, y_, mm_x_, mm_weight_, mm_y_, permute_out_, workspace_;
  std::string unusable_;
};

/// Collective over `g`: the aclnn variant's communicators (made once into `comms`: in-process
/// by rank 0 for every rank, under MPI by every process), this rank's device, stream and
/// aclrtMalloc copies of `host`'s inputs (untimed). Null on every rank when any rank cannot run
/// it (a rank alone in a collective call would wait for the others); then `why` (rank 0's copy)
/// names the first rank that cannot and its reason.
std::unique_ptr<AclnnRank> setup_aclnn_rank(support::RankGroup& g, std::unique_ptr<AclnnCommunicators>& comms, const Plan& plan,
                                            const OpTensors& host, std::string& why);

}  // namespace gmmav::bench
