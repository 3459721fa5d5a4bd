#include "torch_check_collectives.hpp"

#include <cstdint>

namespace py = pybind11;

namespace gmmav::python {

TorchCheckCollectives::~TorchCheckCollectives() {
  if (!handle_ || !Py_IsInitialized()) {
    (void)handle_.release();
    return;
  }
  try {
    py::gil_scoped_acquire gil;
    handle_ = py::object();
  } catch (...) {  // no GIL to be had: leak it
    (void)handle_.release();
  }
}

void TorchCheckCollectives::start(const char* what, const char* method, const std::int64_t* mine, int count, std::int64_t* out) {
  what_ = what;
  t_->call(rank_, what, [&](py::object& t) {
    handle_ = t.attr(method)(reinterpret_cast<std::uintptr_t>(mine), count, reinterpret_cast<std::uintptr_t>(out));
    return 0;
  });
}

void TorchCheckCollectives::start_all_gather(const std::int64_t* mine, int count, std::int64_t* all) {
  start("all_gather", "all_gather_into", mine, count, all);
}

void TorchCheckCollectives::start_all_to_all(const std::int64_t* mine, int count, std::int64_t* theirs) {
  start("all_to_all", "all_to_all_into", mine, count, theirs);
}

bool TorchCheckCollectives::test() {
  return t_->call(rank_, what_, [&](py::object& t) {
    if (!handle_) return true;
    if (!t.attr("done")(handle_).cast<bool>()) return false;
    handle_ = py::object();
    return true;
  });
}

bool TorchCheckCollectives::settled() noexcept {
  try {
    return test();
  } catch (...) {
    return false;
  }
}

}  // namespace gmmav::python
