// The GEMM library (oneDNN, OpenMP runtime) runs one thread per call inside
// pool workers: omp_set_num_threads is per native thread (each is its own
// OpenMP initial thread), so this never touches the caller's threads.
#include "gemm/library_threads.hpp"

// From libgomp, the OpenMP runtime Debian's oneDNN is built with (declared
// here so that any compiler links the same runtime oneDNN uses).
extern "C" void omp_set_num_threads(int);
extern "C" int omp_get_max_threads(void);

namespace gmmav::gemm {

void make_library_single_threaded() { omp_set_num_threads(1); }

SingleThreadedLibraryScope::SingleThreadedLibraryScope() : previous_(omp_get_max_threads()) {
  if (previous_ != 1) omp_set_num_threads(1);
}
SingleThreadedLibraryScope::~SingleThreadedLibraryScope() {
  if (previous_ != 1) omp_set_num_threads(previous_);
}

}  // namespace gmmav::gemm
