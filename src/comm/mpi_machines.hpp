// Which ranks of an MPI communicator share a machine, and which reach each
// other without a wire — told by the ranks themselves, not by MPI.
//
// MPI_COMM_TYPE_SHARED is Open MPI's idea of a node, and across hosts that
// share a kernel (network namespaces: scripts/sim-cluster) it is not even
// consistent: with 2 simulated hosts of 2 ranks, ranks 2 and 3 each saw
// {0, 1, itself} while 0 and 1 saw {0, 1}. Two ranks then disagreed on how
// messages between them are cut (a receive smaller than the message: a
// truncation error, or rows landing in the wrong place), and the split itself
// — a collective over groups the ranks disagree on — hung or crashed in
// Open MPI's ob1 (issue 29). Here every rank contributes a key and every
// rank gets every key from one all-gather, so the map is the same on every
// rank by construction.
#pragma once

#include <mpi.h>

#include <chrono>
#include <string>
#include <vector>

namespace gmmav::comm {

struct MachineMap {
  /// [rank]: the lowest rank on the same machine (the same running kernel:
  /// its cores are shared).
  std::vector<int> machine;
  /// [rank]: the lowest rank on the same machine and in the same network
  /// namespace (no wire between them; otherwise TCP crosses a link).
  std::vector<int> network;

  bool same_network(int a, int b) const { return network[static_cast<std::size_t>(a)] == network[static_cast<std::size_t>(b)]; }
  /// Ranks on `rank`'s machine, itself included.
  int ranks_on_machine_of(int rank) const;
};

/// This process's keys: the kernel's boot id (the host name where /proc has
/// none), and that plus the network namespace's identity.
std::string machine_key();
std::string network_key();

/// Collective over `comm` (one non-blocking all-gather, waited for at most
/// `timeout`: a rank that never arrives gives Errc::timeout, not a hang).
/// The caller must not hold mpi::lock().
MachineMap map_machines(MPI_Comm comm, std::chrono::milliseconds timeout);

}  // namespace gmmav::comm
