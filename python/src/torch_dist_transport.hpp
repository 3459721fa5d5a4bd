// torch.distributed as a transport (src/comm/transport.hpp) under the one
// exchange algorithm (src/comm/message_exchange.hpp, D100).
//
// Sends and receives are gloo point-to-point transfers posted through the
// Python transport (gmmav._dist.Transport: `send`/`recv`). torch cannot test
// such a transfer without blocking (D97: its work objects complete only inside
// wait()), so each one is handed, when posted, to a waiting thread of the
// Python transport — one per peer and direction, in posting order — which
// waits for it and then marks its comm::TransferMark; the call's
// comm::MarkedTransfers reads those marks without the GIL. No transfer can
// be cancelled: a failed call's are left to their threads (they end at the
// gloo group's timeout), and the memory they use is kept (the group is broken).
// Pool workers never call the transport (Python needs the GIL): the rank's
// orchestrating thread drives it between tiles, as MPI below SERIALIZED.
#pragma once

#include <pybind11/pybind11.h>

#include <memory>
#include <mutex>
#include <vector>

#include "comm/count_check.hpp"
#include "comm/marked_transfers.hpp"
#include "comm/transport.hpp"
#include "python_transport.hpp"

namespace gmmav::python {

/// Adds comm::TransferMark to the module as TransferMark (the Python
/// transport's waiting threads call its `set`).
void define_transfer_mark(pybind11::module_& m);

class TorchDistTransport final : public comm::Transport {
 public:
  TorchDistTransport(std::shared_ptr<PythonTransport> python, int rank, int size);
  ~TorchDistTransport() override;

  std::unique_lock<std::mutex> lock() override { return std::unique_lock(mu_); }
  bool workers_may_drive() const override { return false; }
  comm::CountCheck& check() override { return *check_; }
  std::unique_ptr<comm::Transfers> transfers(std::int64_t row_bytes) override;

  /// True when nothing may still write into the group's memory: the check's
  /// collective and every transfer a failed call left behind completed.
  bool settled();
  /// Transfers a failed call left behind (their threads still wait for them).
  void keep(std::vector<std::shared_ptr<comm::TransferMark>> left);

 private:
  std::shared_ptr<PythonTransport> python_;
  int rank_;
  std::mutex mu_;
  std::unique_ptr<comm::CountCheck> check_;
  std::vector<std::shared_ptr<comm::TransferMark>> abandoned_;
};

}  // namespace gmmav::python
