// The GEMM library on its own: oneDNN matmul with all cores (its own OpenMP
// threads), weights packed once outside the timing, running the GEMMs one call
// of the operator runs over all ranks: one matmul per (rank, expert) of that
// expert's rows x H1 x N1, and one per rank of BS x H2 x N2 for the shared
// expert — the grouped matmul as a oneDNN user would write it (D93). BF16 runs
// oneDNN's native BF16 matmul; FP16 runs FP32 (oneDNN 2.6 has no FP16 matmul on
// this CPU: it is the engine's route), inputs converted beforehand. This is the
// "what the library alone reaches" bar.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gmmav/types.hpp"

namespace gmmav::bench {

/// The GEMMs of one weight shape: k x n, and the rows of each GEMM on a weight of that shape.
struct LibraryGemms {
  std::int64_t k = 0, n = 0;
  std::vector<std::int64_t> rows;  ///< one entry per GEMM (entries of 0 rows are skipped)
};

struct LibraryShape {
  LibraryGemms routed;  ///< every rank's experts: group_rows(j) rows each
  LibraryGemms shared;  ///< every rank's shared expert: BS rows each (empty: none)
};

class LibraryMatmul {
 public:
  LibraryMatmul(DType dtype, const LibraryShape& shape, int threads);
  /// Bytes an object of this shape holds (sources, outputs, one packed weight per shape) and,
  /// while it is made, the plain weight it packs from: an upper bound (FP32 unless oneDNN has a BF16 matmul).
  static double estimate_bytes(DType dtype, const LibraryShape& shape);
  ~LibraryMatmul();
  /// Starts the OpenMP team before the timing (so run() does not pay thread creation).
  void wake();
  /// One timed unit: every chunk of both products.
  void run();
  /// Ends the OpenMP team after the timing: libgomp's idle threads spin for a while
  /// (OMP_WAIT_POLICY unset), which took a core from whatever variant ran next
  /// (measured: bimodal fused/gemm_alone samples, 2.2 vs 4.3 ms).
  void quiesce();
  double flops() const;
  std::string description() const;  ///< data type, chunks and oneDNN implementation

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gmmav::bench
