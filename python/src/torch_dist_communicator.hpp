// A gmmav communicator whose transport is a torch.distributed process group.
//
// The third backend behind comm::Communicator (after in-process and MPI), and
// the second over the one exchange algorithm (D100): its meet is every
// transport's (comm::start_exchange: the cross-rank count check of
// src/comm/count_check.hpp over the Python transport's collectives, then a
// comm::MessageExchange), with torch.distributed as the transport
// (torch_dist_transport.hpp: gloo sends and receives posted through
// gmmav._dist.Transport and waited for on its threads).
//
// Python is entered only from the rank's orchestrating thread (meet, poll,
// finish), with the GIL taken there, and from the Python transport's own
// waiting threads; the pool's workers only write tiles (rows_for /
// rows_done), never touching Python.
//
// Messages: a peer's rows in one message when they fit 63 KiB (a decode
// step), else one message per tile, as MPI between ranks of one machine;
// rows land in the communicator's landing area and are copied into y.
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
