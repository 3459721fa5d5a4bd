// A gmmav communicator whose transport is a torch.distributed process group.
//
// The third backend behind comm::Communicator (after in-process and MPI). The
// C++ side does what every backend does — one meeting per call that runs the
// cross-rank count check MPI runs (src/comm/count_check.hpp, over the
// transport's collectives: torch_check_collectives.hpp; docs/spec.md §2), then
// an Exchange that names where each GEMM tile goes — and leaves the bytes to a
// Python object (gmmav._dist.Transport) calling torch.distributed:
//
//   all_gather_into(addr, count, out_addr) -> handle   the count check's collectives (int64,
//   all_to_all_into(addr, count, out_addr) -> handle   async, into raw memory)
//   done(handle) -> bool                      completed? (never blocks; raises its failure)
//   irecv(src, tag, addr, nbytes) -> handle   post a receive into raw memory
//   isend(dst, tag, addr, nbytes) -> handle   post a send from raw memory
//   wait(handles, timeout_ms)                 wait for all; raises on failure/timeout
//
// Python is entered only from the rank's orchestrating thread (meet, poll,
// finish), with the GIL taken there; the pool's workers only write tiles and
// count rows (rows_for / rows_done), never touching Python.
//
// Layout: rows for this rank go straight into y; rows for a peer d go to the
// workspace, destination-major then expert (the Unpermute order of docs/spec.md §3).
// Each (peer, expert) block is one message (tag = the expert: the vendor's
// granularity, one AlltoAllv per expert) that lands, through a receive posted
// at meet time, at its final rows of the peer's y. A block leaves as soon as
// its last tile is written (poll), overlapping the remaining GEMMs.
#pragma once

#include <pybind11/pybind11.h>

#include <chrono>
#include <memory>
#include <string>

#include "comm/communicator.hpp"

namespace gmmav::python {

/// Rank `rank` of `size` over `transport` (see above). `timeout`: every wait.
std::shared_ptr<comm::Communicator> create_torch_dist(int rank, int size, std::string name, std::chrono::milliseconds timeout,
                                                      pybind11::object transport);

}  // namespace gmmav::python
