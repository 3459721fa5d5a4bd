#include "torch_dist_transport.hpp"

#include <pybind11/stl.h>

#include <climits>
#include <cstdint>
#include <utility>

#include "common/fail.hpp"
#include "torch_check_collectives.hpp"

namespace py = pybind11;

namespace gmmav::python {
namespace {

// One call's transfers: what each is for, in posting order, and its mark.
class TorchTransfers final : public comm::Transfers {
 public:
  TorchTransfers(std::shared_ptr<PythonTransport> python, TorchDistTransport& owner, int rank, std::int64_t row_bytes)
      : python_(std::move(python)), owner_(owner), rank_(rank), row_bytes_(row_bytes) {}

  void send(const comm::Message& m, const std::byte* data, const comm::InFlight& what) override { post("send", m, data, what); }
  void receive(const comm::Message& m, std::byte* data, const comm::InFlight& what) override { post("recv", m, data, what); }

  // What the waiting threads marked complete, in posting order; the rest stays.
  std::span<const comm::Completed> test() override {
    done_.clear();
    std::size_t kept = 0;
    for (std::size_t i = 0; i < whats_.size(); ++i) {
      Posted& p = posted_[i];
      if (p.done->complete.load(std::memory_order_acquire)) {
        const std::string& error = p.done->error;
        done_.push_back(
            {.what = whats_[i], .source = p.peer, .tag = p.tag, .bytes = error.empty() ? p.bytes : 0, .error = error});
        continue;
      }
      if (kept != i) {
        whats_[kept] = whats_[i];
        posted_[kept] = std::move(p);
      }
      ++kept;
    }
    whats_.resize(kept);
    posted_.resize(kept);
    return done_;
  }
  bool test_all() override {
    for (const Posted& p : posted_)
      if (!p.done->complete.load(std::memory_order_acquire)) return false;
    whats_.clear();
    posted_.clear();
    return true;
  }
  bool empty() const override { return whats_.empty(); }
  std::size_t size() const override { return whats_.size(); }
  std::span<const comm::InFlight> purposes() const override { return whats_; }
  // Nothing can be cancelled: the transport keeps the marks of what is left
  // (the threads waiting for them hold the transfers and their buffers).
  void abandon() noexcept override {
    std::vector<std::shared_ptr<TransferDone>> left;
    for (Posted& p : posted_) left.push_back(std::move(p.done));
    whats_.clear();
    posted_.clear();
    owner_.keep(std::move(left));
  }

 private:
  struct Posted {
    std::shared_ptr<TransferDone> done;
    int peer = 0;
    int tag = 0;
    std::int64_t bytes = 0;
  };

  // Posts the transfer (`send` or `recv` of the Python transport) and hands
  // it to the thread that waits for the peer's transfers in that direction.
  void post(const char* method, const comm::Message& m, const std::byte* data, const comm::InFlight& what) {
    if (m.channel != comm::Channel::rows)  // heads (D56) need workers that drive the transport
      fail(Errc::internal, "group", "the torch.distributed transport carries no heads (rank {} to {})", rank_, m.peer);
    const std::int64_t bytes = m.unit == comm::Unit::row ? m.count * row_bytes_ : m.count;
    auto done = std::make_shared<TransferDone>();
    python_->call(rank_, method, [&](py::object& t) {
      t.attr(method)(m.peer, m.tag, reinterpret_cast<std::uintptr_t>(data), bytes, done);
      return 0;
    });
    whats_.push_back(what);
    posted_.push_back({std::move(done), m.peer, m.tag, bytes});
  }

  std::shared_ptr<PythonTransport> python_;
  TorchDistTransport& owner_;
  const int rank_;
  const std::int64_t row_bytes_;
  std::vector<comm::InFlight> whats_;  // [i]: what posted_[i] is for
  std::vector<Posted> posted_;
  std::vector<comm::Completed> done_;  // test()'s answer
};

}  // namespace

void define_transfer_done(py::module_& m) {
  py::class_<TransferDone, std::shared_ptr<TransferDone>>(
      m, "TransferDone", "A posted transfer's outcome: set('') when it completed, set(message) when it failed.")
      .def("set", &TransferDone::set, py::arg("failure"));
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

std::unique_ptr<comm::Transfers> TorchDistTransport::transfers(std::int64_t row_bytes) {
  return std::make_unique<TorchTransfers>(python_, *this, rank_, row_bytes);
}

bool TorchDistTransport::settled() {
  std::lock_guard lk(mu_);
  for (const auto& done : abandoned_)
    if (!done->complete.load(std::memory_order_acquire)) return false;
  return Py_IsInitialized() && check_->settled();
}

void TorchDistTransport::keep(std::vector<std::shared_ptr<TransferDone>> left) {
  std::lock_guard lk(mu_);
  abandoned_.insert(abandoned_.end(), std::make_move_iterator(left.begin()), std::make_move_iterator(left.end()));
}

}  // namespace gmmav::python
