#include "comm/mpi_transport.hpp"

#include "comm/mpi_check_collectives.hpp"
#include "comm/mpi_requests.hpp"
#include "comm/mpi_runtime.hpp"

namespace gmmav::comm {
namespace {

// One call's MPI requests.
class MpiTransfers final : public Transfers {
 public:
  MpiTransfers(MPI_Comm comm, MPI_Comm heads_comm, MPI_Datatype row, Quarantine& q)
      : comm_(comm), heads_comm_(heads_comm), row_(row), quarantine_(q) {}

  void send(const Message& m, const std::byte* data, const InFlight& what) override {
    MPI_Request req;
    mpi::check(MPI_Isend(data, static_cast<int>(m.count), type(m), m.peer, m.tag, comm_of(m), &req), "MPI_Isend");
    table_.add(req, what);
  }
  void receive(const Message& m, std::byte* data, const InFlight& what) override {
    MPI_Request req;
    mpi::check(MPI_Irecv(data, static_cast<int>(m.count), type(m), m.peer, m.tag, comm_of(m), &req), "MPI_Irecv");
    table_.add(req, what);
  }
  std::span<const Completed> test() override {
    done_.clear();
    for (const MpiCompleted& c : table_.test()) {
      Completed d{.what = c.what, .source = c.status.MPI_SOURCE, .tag = c.status.MPI_TAG, .bytes = 0, .error = {}};
      if (c.error != MPI_SUCCESS) {
        d.error = mpi::error_string(c.error);
      } else if (is_receive(c.what.purpose)) {
        int got = 0;
        MPI_Get_count(&c.status, MPI_BYTE, &got);
        d.bytes = got;
      }
      done_.push_back(std::move(d));
    }
    return done_;
  }
  bool test_all() override { return table_.test_all(); }
  bool empty() const override { return table_.empty(); }
  std::size_t size() const override { return table_.size(); }
  std::span<const InFlight> purposes() const override { return table_.purposes(); }
  // Receives not yet matched are cancelled; what is left (sends, receives
  // matched before the failure) goes to the communicator with its staging.
  void abandon() noexcept override {
    std::vector<MPI_Request> left;
    try {
      auto lk = mpi::lock();
      left = table_.cancel_receives_and_release();
    } catch (...) {  // mpi::lock cannot fail in practice; this must not throw
      left = table_.release();
    }
    quarantine_.quarantine(std::move(left));
  }

 private:
  MPI_Datatype type(const Message& m) const { return m.unit == Unit::row ? row_ : MPI_BYTE; }
  MPI_Comm comm_of(const Message& m) const { return m.channel == Channel::heads ? heads_comm_ : comm_; }

  MPI_Comm comm_, heads_comm_;
  MPI_Datatype row_;
  Quarantine& quarantine_;
  RequestTable table_;
  std::vector<Completed> done_;
};

}  // namespace

MpiTransport::MpiTransport(MPI_Comm comm, MPI_Comm heads_comm, int rank, int size, int tag_ub, Quarantine& quarantine)
    : comm_(comm), heads_comm_(heads_comm), quarantine_(quarantine), check_(make_mpi_count_check(comm, rank, size, tag_ub)) {}

std::unique_lock<std::mutex> MpiTransport::lock() { return mpi::lock(); }

bool MpiTransport::workers_may_drive() const { return mpi::thread_level_at_least_serialized(); }

std::unique_ptr<Transfers> MpiTransport::transfers(std::int64_t row_bytes) {
  return std::make_unique<MpiTransfers>(comm_, heads_comm_, row_type(row_bytes), quarantine_);
}

MPI_Datatype MpiTransport::row_type(std::int64_t row_bytes) {
  for (const auto& [bytes, type] : row_types_)
    if (bytes == row_bytes) return type;
  MPI_Datatype type;
  mpi::check(MPI_Type_contiguous(static_cast<int>(row_bytes), MPI_BYTE, &type), "MPI_Type_contiguous");
  mpi::check(MPI_Type_commit(&type), "MPI_Type_commit");
  row_types_.emplace_back(row_bytes, type);
  return type;
}

void MpiTransport::free_types() {
  for (auto& [bytes, type] : row_types_) MPI_Type_free(&type);
  row_types_.clear();
}

}  // namespace gmmav::comm
