// The GEMM library on its own: oneDNN matmul with all cores (its own OpenMP
// threads), weights packed once outside the timing, of the same FLOPs as one
// call of the operator over all ranks (routed rows x H1 x N1, plus the shared
// expert's W*BS x H2 x N2). BF16 runs oneDNN's native BF16 matmul; FP16 runs
// FP32 (oneDNN 2.6 has no FP16 matmul on this CPU: it is the engine's route),
// inputs converted beforehand. This is the "what the library alone reaches" bar.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "gmmav/types.hpp"

namespace gmmav::bench {

struct LibraryShape {
  std::int64_t m1 = 0, k1 = 0, n1 = 0;  // routed: all ranks' rows
  std::int64_t m2 = 0, k2 = 0, n2 = 0;  // shared expert: all ranks' rows (0 = none)
};

class LibraryMatmul {
 public:
  LibraryMatmul(DType dtype, const LibraryShape& shape, int threads);
  /// Bytes an object of this shape holds (sources, outputs, packed weights) and, while it is
  /// made, the plain weight it packs from: an upper bound (FP32 unless oneDNN has a BF16 matmul).
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
