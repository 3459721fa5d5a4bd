// The GEMM library (oneDNN, OpenMP runtime) runs one thread per call inside
// pool workers: omp_set_num_threads is per native thread (each is its own
// OpenMP initial thread), so this never touches the caller's threads.
#include "gemm/library_threads.hpp"


// From libgomp, the OpenMP runtime Debian's oneDNN is built with (declared
// here so that any compiler links the same runtime oneDNN uses).
extern "C" void omp_set_num_threads(int);

namespace gmmav::gemm {

void make_library_single_threaded() { omp_set_num_threads(1); }

}  // namespace gmmav::gemm
