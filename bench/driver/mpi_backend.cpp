// This process as one rank of an MPI job (the bench's --backend mpi). Built
// only with MPI (GMMAV_WITH_MPI, D98).
#include <memory>

#include "case_runner.hpp"
#include "gmmav/mpi.hpp"
#include "mpi_rank_group.hpp"

namespace gmmav::bench {
namespace {

class MpiBackend final : public Backend {
 public:
  MpiBackend() : comm_(create_mpi_group(MPI_COMM_WORLD)), group_(std::make_unique<support::MpiRankGroup>(comm_.timeout())) {}
  std::string name() const override { return "mpi"; }
  bool is_mpi() const override { return true; }
  int process_rank() const override { return group_->rank(); }
  int world_size(const CaseShape&) const override { return group_->size(); }
  int ranks_on_this_machine() const override { return group_->local_size(); }
  int cores_on_this_machine() const override { return group_->local_cores(); }
  void process_barrier() override {  // long, rare waits: sleep up to 1 ms between tests
    MPI_Request req;
    MPI_Ibarrier(group_->comm(), &req);
    support::polite_wait(&req, 1000);
  }
  double max_over_processes(double v) override { return group_->max(v); }
  void for_each_rank(int, const std::function<void(support::RankGroup&, const Comm&)>& fn) override { fn(*group_, comm_); }

 private:
  Comm comm_;
  std::unique_ptr<support::MpiRankGroup> group_;
};

}  // namespace

std::unique_ptr<Backend> make_mpi_backend() { return std::make_unique<MpiBackend>(); }

}  // namespace gmmav::bench
