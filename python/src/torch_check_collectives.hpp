// The torch.distributed transport's collectives for the count check
// (src/comm/count_check.hpp): the Python transport's all_gather_into and
// all_to_all_into (gloo, async, straight into the check's buffers), tested
// with the work's is_completed(). Called from the rank's orchestrating thread.
#pragma once

#include <pybind11/pybind11.h>

#include <memory>

#include "comm/count_check.hpp"
#include "python_transport.hpp"

namespace gmmav::python {

class TorchCheckCollectives final : public comm::CheckCollectives {
 public:
  TorchCheckCollectives(std::shared_ptr<PythonTransport> transport, int rank) : t_(std::move(transport)), rank_(rank) {}
  ~TorchCheckCollectives() override;
  void start_all_gather(const std::int64_t* mine, int count, std::int64_t* all) override;
  void start_all_to_all(const std::int64_t* mine, int count, std::int64_t* theirs) override;
  bool test() override;
  bool settled() noexcept override;
  /// The collective in flight ("all_gather", "all_to_all"), for errors.
  const char* what() const { return what_; }

 private:
  void start(const char* what, const char* method, const std::int64_t* mine, int count, std::int64_t* out);

  std::shared_ptr<PythonTransport> t_;
  int rank_;
  const char* what_ = "all_gather";
  pybind11::object handle_;  // the collective in flight (GIL), none once it completed
};

}  // namespace gmmav::python
