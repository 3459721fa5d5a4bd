#include "torch_dist_transport.hpp"

#include <climits>
#include <cstdint>
#include <utility>

#include "common/fail.hpp"
#include "torch_check_collectives.hpp"

namespace py = pybind11;

namespace gmmav::python {

void define_transfer_mark(py::module_& m) {
  py::class_<comm::TransferMark, std::shared_ptr<comm::TransferMark>>(
      m, "TransferMark", "A posted transfer's outcome: set('') when it completed, set(message) when it failed.")
      .def("set", &comm::TransferMark::set, py::arg("failure"));
}

TorchDistTransport::TorchDistTransport(std::shared_ptr<PythonTransport> python, int rank, int size)
    : python_(std::move(python)), rank_(rank) {
  // gloo's tags are C ints: the check refuses a call whose tiles would not fit (every rank alike).
  check_ = std::make_unique<comm::CountCheck>(std::make_unique<TorchCheckCollectives>(python_, rank), rank, size,
                                              comm::TagSpace{.largest = INT_MAX, .transport = "torch.distributed"});
}

// A check whose collective is still pending in gloo (a timed-out call) may
// still be written into: kept (leaked) then.
TorchDistTransport::~TorchDistTransport() {
  if (!Py_IsInitialized() || !check_->settled()) (void)check_.release();
}

// A call's transfers: each posted through the Python transport's `send` or
// `recv` (a drive's worth under one GIL acquisition), which hands it to the
// thread that waits for that peer's transfers in that direction and sets its mark.
std::unique_ptr<comm::Transfers> TorchDistTransport::transfers(std::int64_t row_bytes) {
  auto start = [python = python_, rank = rank_](std::span<const comm::TransferStart> batch, std::size_t& started) {
    for (const comm::TransferStart& t : batch)
      if (t.message.channel != comm::Channel::rows)  // heads (D56) need workers that drive the transport
        fail(Errc::internal, "group", "the torch.distributed transport carries no heads (rank {} and {})", rank, t.message.peer);
    python->call(rank, "send/recv", [&](py::object& t) {  // one GIL acquisition for the batch
      for (const comm::TransferStart& s : batch) {
        t.attr(s.send ? "send" : "recv")(s.message.peer, s.message.tag, reinterpret_cast<std::uintptr_t>(s.data), s.bytes,
                                         s.mark);
        ++started;
      }
      return 0;
    });
  };
  return std::make_unique<comm::MarkedTransfers>(
      row_bytes, std::move(start), [this](std::vector<std::shared_ptr<comm::TransferMark>> left) { keep(std::move(left)); });
}

bool TorchDistTransport::settled() {
  std::lock_guard lk(mu_);
  for (const auto& done : abandoned_)
    if (!done->complete.load(std::memory_order_acquire)) return false;
  return Py_IsInitialized() && check_->settled();
}

void TorchDistTransport::keep(std::vector<std::shared_ptr<comm::TransferMark>> left) {
  std::lock_guard lk(mu_);
  abandoned_.insert(abandoned_.end(), std::make_move_iterator(left.begin()), std::make_move_iterator(left.end()));
}

}  // namespace gmmav::python
