#include "mpi_rank_group.hpp"

#include <sched.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "comm/mpi_machines.hpp"

namespace gmmav::support {

void polite_wait(MPI_Request* req, int max_sleep_us) {
  int sleep_us = 20;
  for (int flag = 0;;) {
    MPI_Test(req, &flag, MPI_STATUS_IGNORE);
    if (flag) return;
    std::this_thread::sleep_for(std::chrono::microseconds(sleep_us));
    sleep_us = std::min(2 * sleep_us, max_sleep_us);
  }
}

MpiRankGroup::MpiRankGroup(std::chrono::milliseconds timeout) {
  if (MPI_Comm_dup(MPI_COMM_WORLD, &comm_) != MPI_SUCCESS) throw std::runtime_error("MPI_Comm_dup failed");
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
  // Ranks that share this machine's cores: the comm layer's map (the kernel's boot id of every
  // rank, one all-gather: the same answer on every rank). MPI's own notion
  // (MPI_COMM_TYPE_SHARED) is one node per daemon, which on hosts simulated by network
  // namespaces (scripts/sim-cluster) is one node per rank although every rank computes on the
  // same cores.
  const comm::MachineMap map = comm::map_machines(comm_, timeout);
  local_size_ = map.ranks_on_machine_of(rank_);
  // The CPUs they may run on together: the union of the affinity masks of the ranks on this machine.
  cpu_set_t mine;
  CPU_ZERO(&mine);
  if (sched_getaffinity(0, sizeof mine, &mine) != 0) CPU_SET(0, &mine);
  std::vector<cpu_set_t> masks(static_cast<std::size_t>(size_));
  MPI_Allgather(&mine, static_cast<int>(sizeof mine), MPI_BYTE, masks.data(), static_cast<int>(sizeof mine), MPI_BYTE, comm_);
  cpu_set_t all;
  CPU_ZERO(&all);
  for (int r = 0; r < size_; ++r)
    if (map.machine[static_cast<std::size_t>(r)] == map.machine[static_cast<std::size_t>(rank_)])
      CPU_OR(&all, &all, &masks[static_cast<std::size_t>(r)]);
  local_cores_ = std::max(1, CPU_COUNT(&all));
}

MpiRankGroup::~MpiRankGroup() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

// Two rounds: the first waits politely (a rank may be far behind, and the
// waiting ones must not take its cores), the second spins with yields, so all
// ranks leave within a message latency of each other. With only the polite
// round, a rank asleep when the barrier completed started its timed call up to
// 0.3 ms after the others (measured over TCP), and every variant of a small
// case paid that skew as if it were its own time.
void MpiRankGroup::barrier() {
  MPI_Request req;
  MPI_Ibarrier(comm_, &req);
  polite_wait(&req);
  MPI_Ibarrier(comm_, &req);
  for (int flag = 0;;) {
    MPI_Test(&req, &flag, MPI_STATUS_IGNORE);
    if (flag) return;
    sched_yield();
  }
}

double MpiRankGroup::allreduce(double v, MPI_Op op) {
  double out = 0;
  MPI_Request req;
  MPI_Iallreduce(&v, &out, 1, MPI_DOUBLE, op, comm_, &req);
  polite_wait(&req, 1000);  // reductions follow the timed work: only the barrier before it must release tightly
  return out;
}

std::vector<std::string> MpiRankGroup::gather(const std::string& mine) {
  int len = static_cast<int>(mine.size());
  std::vector<int> lens(static_cast<std::size_t>(size_));
  MPI_Request req;
  MPI_Igather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, 0, comm_, &req);
  polite_wait(&req);
  std::vector<int> displs(static_cast<std::size_t>(size_), 0);
  int total = 0;
  for (int r = 0; r < size_; ++r) {
    displs[static_cast<std::size_t>(r)] = total;
    total += lens[static_cast<std::size_t>(r)];
  }
  std::string all(rank_ == 0 ? static_cast<std::size_t>(total) : 0, '\0');
  MPI_Igatherv(mine.data(), len, MPI_CHAR, all.data(), lens.data(), displs.data(), MPI_CHAR, 0, comm_, &req);
  polite_wait(&req);
  std::vector<std::string> out;
  if (rank_ == 0)
    for (int r = 0; r < size_; ++r)
      out.push_back(all.substr(static_cast<std::size_t>(displs[static_cast<std::size_t>(r)]),
                               static_cast<std::size_t>(lens[static_cast<std::size_t>(r)])));
  return out;
}

}  // namespace gmmav::support
