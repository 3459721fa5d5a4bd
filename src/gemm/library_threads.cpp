// The GEMM library (oneDNN, OpenMP runtime) runs one thread per call inside
// pool workers: omp_set_num_threads is per native thread (each is its own
// OpenMP initial thread), so this never touches the caller's threads.
#include "gemm/library_threads.hpp"

#include <omp.h>

namespace gmmav::gemm {

void make_library_single_threaded() { omp_set_num_threads(1); }

}  // namespace gmmav::gemm
