// The GEMM libraries must not start threads of their own: the compute pool
// owns the cores, and one library call per tile keeps results independent of
// the pool size.
#pragma once

namespace gmmav::gemm {

/// Called by every pool worker before its first task.
void make_library_single_threaded();

}  // namespace gmmav::gemm
