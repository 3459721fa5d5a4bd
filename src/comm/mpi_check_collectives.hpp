// The MPI transport's collectives for the count check (count_check.hpp):
// MPI_Iallgather and MPI_Ialltoall of MPI_INT64_T on the group's
// communicator, tested with MPI_Test. Every method runs with mpi::lock() held
// by the caller.
#pragma once

#include <mpi.h>

#include <memory>

#include "comm/count_check.hpp"

namespace gmmav::comm {

class MpiCheckCollectives final : public CheckCollectives {
 public:
  explicit MpiCheckCollectives(MPI_Comm comm) : comm_(comm) {}
  void start_all_gather(const std::int64_t* mine, int count, std::int64_t* all) override;
  void start_all_to_all(const std::int64_t* mine, int count, std::int64_t* theirs) override;
  bool test() override;
  bool settled() noexcept override;

 private:
  MPI_Comm comm_;
  MPI_Request req_ = MPI_REQUEST_NULL;
};

/// The count check of an MPI group: its collectives on `comm`, its tags up to `tag_ub`.
std::unique_ptr<CountCheck> make_mpi_count_check(MPI_Comm comm, int rank, int size, int tag_ub);

}  // namespace gmmav::comm
