#include "comm/mpi_check_collectives.hpp"

#include "comm/mpi_runtime.hpp"

namespace gmmav::comm {

void MpiCheckCollectives::start_all_gather(const std::int64_t* mine, int count, std::int64_t* all) {
  mpi::check(MPI_Iallgather(mine, count, MPI_INT64_T, all, count, MPI_INT64_T, comm_, &req_), "MPI_Iallgather");
}

void MpiCheckCollectives::start_all_to_all(const std::int64_t* mine, int count, std::int64_t* theirs) {
  mpi::check(MPI_Ialltoall(mine, count, MPI_INT64_T, theirs, count, MPI_INT64_T, comm_, &req_), "MPI_Ialltoall");
}

bool MpiCheckCollectives::test() {
  int done = 0;
  mpi::check(MPI_Test(&req_, &done, MPI_STATUS_IGNORE), "MPI_Test");
  return done != 0;
}

bool MpiCheckCollectives::settled() noexcept {
  if (req_ == MPI_REQUEST_NULL) return true;
  int done = 0;
  return MPI_Test(&req_, &done, MPI_STATUS_IGNORE) == MPI_SUCCESS && done != 0;
}

std::unique_ptr<CountCheck> make_mpi_count_check(MPI_Comm comm, int rank, int size, int tag_ub) {
  return std::make_unique<CountCheck>(std::make_unique<MpiCheckCollectives>(comm), rank, size, TagSpace{tag_ub, "MPI"});
}

}  // namespace gmmav::comm
