#include "comm/mpi_requests.hpp"

#include "comm/mpi_runtime.hpp"

namespace gmmav::comm {

void RequestTable::add(MPI_Request request, const InFlight& what) {
  requests_.push_back(request);
  in_flight_.push_back(what);
}

std::span<const MpiCompleted> RequestTable::test() {
  completed_.clear();
  if (requests_.empty()) return {};
  int done = 0;
  indices_.resize(requests_.size());
  statuses_.resize(requests_.size());
  const int rc = MPI_Testsome(static_cast<int>(requests_.size()), requests_.data(), &done, indices_.data(), statuses_.data());
  if (rc != MPI_SUCCESS && rc != MPI_ERR_IN_STATUS) mpi::check(rc, "MPI_Testsome");
  if (done <= 0 || done == MPI_UNDEFINED) return {};
  for (int i = 0; i < done; ++i) {
    const MPI_Status& st = statuses_[static_cast<std::size_t>(i)];
    completed_.push_back({.what = in_flight_[static_cast<std::size_t>(indices_[static_cast<std::size_t>(i)])],
                          .status = st,
                          .error = rc == MPI_ERR_IN_STATUS ? st.MPI_ERROR : MPI_SUCCESS});
  }
  drop_completed();
  return completed_;
}

bool RequestTable::test_all() {
  int done = 0;
  mpi::check(MPI_Testall(static_cast<int>(requests_.size()), requests_.data(), &done, MPI_STATUSES_IGNORE), "MPI_Testall");
  if (!done) return false;
  requests_.clear();
  in_flight_.clear();
  return true;
}

std::vector<MPI_Request> RequestTable::cancel_receives_and_release() {
  for (std::size_t i = 0; i < requests_.size(); ++i)
    if (requests_[i] != MPI_REQUEST_NULL && is_receive(in_flight_[i].purpose))
      MPI_Cancel(&requests_[i]);  // fails harmlessly on a matched receive
  int done = 0;
  indices_.resize(requests_.size());
  MPI_Testsome(static_cast<int>(requests_.size()), requests_.data(), &done, indices_.data(), MPI_STATUSES_IGNORE);
  return release();
}

std::vector<MPI_Request> RequestTable::release() {
  drop_completed();
  in_flight_.clear();
  std::vector<MPI_Request> left;
  left.swap(requests_);
  return left;
}

// Removes the requests MPI completed (MPI_REQUEST_NULL) with what they were for.
void RequestTable::drop_completed() {
  std::size_t out = 0;
  for (std::size_t i = 0; i < requests_.size(); ++i) {
    if (requests_[i] == MPI_REQUEST_NULL) continue;
    requests_[out] = requests_[i];
    in_flight_[out] = in_flight_[i];
    ++out;
  }
  requests_.resize(out);
  in_flight_.resize(out);
}

}  // namespace gmmav::comm
