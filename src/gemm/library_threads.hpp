// The GEMM libraries must not start threads of their own: the compute pool
// owns the cores, and one library call per tile keeps results independent of
// the pool size.
#pragma once

namespace gmmav::gemm {

/// Called by every pool worker before its first task.
void make_library_single_threaded();

/// Single-threaded library calls on this thread for the scope's lifetime, then
/// the thread's previous setting again (a caller thread that computes must not
/// keep the user's OpenMP setting changed, nor inherit a wide one).
class SingleThreadedLibraryScope {
 public:
  SingleThreadedLibraryScope();
  ~SingleThreadedLibraryScope();
  SingleThreadedLibraryScope(const SingleThreadedLibraryScope&) = delete;
  SingleThreadedLibraryScope& operator=(const SingleThreadedLibraryScope&) = delete;

 private:
  int previous_;
};

}  // namespace gmmav::gemm
