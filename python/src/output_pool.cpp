// Why a pool: torch.empty of an output of a MiB or more is fresh pages from glibc (mmap, or a heap
// top trimmed since the last call), and writing them faults each page in: 1.5-2 ms of a 35 ms
// decode call on the Zen 5 VM of session 15 (py/native 1.04-1.08, 0.98-1.00 with glibc told to
// keep freed memory). The outputs of the next call are mostly the same sizes, so freed blocks are
// kept, by size class, up to a byte budget, and handed out again with their pages in place.
#include "output_pool.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <vector>

namespace py = pybind11;

namespace gmmav::python {
namespace {

// Size classes of 8 steps per power of two (at most 12.5 % of a block unused): outputs whose row
// count moves from call to call (the counts change every step) still find a block.
std::size_t size_class(std::size_t bytes) {
  if (bytes <= 4096) return 4096;
  int bits = 0;
  while ((std::size_t{1} << (bits + 1)) <= bytes) ++bits;
  const std::size_t step = std::size_t{1} << (bits - 3);
  return (bytes + step - 1) / step * step;
}

std::size_t default_limit() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  const std::size_t eighth = pages > 0 && page > 0 ? static_cast<std::size_t>(pages) * static_cast<std::size_t>(page) / 8 : 0;
  return std::min<std::size_t>(std::size_t{1} << 30, eighth > 0 ? eighth : std::size_t{1} << 30);
}

class OutputPool {
 public:
  // A block of at least `bytes` (64-byte aligned): a kept one of its class, else a new one.
  void* take(std::size_t bytes, std::size_t& block_bytes) {
    block_bytes = size_class(bytes);
    {
      std::lock_guard lk(mu_);
      auto it = free_.find(block_bytes);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        held_ -= block_bytes;
        ++reused_;
        return p;
      }
      ++allocated_;
    }
    void* p = std::aligned_alloc(64, block_bytes);  // a class is a multiple of 512 bytes
    if (p == nullptr) throw std::bad_alloc();
    return p;
  }

  void give_back(void* p, std::size_t block_bytes) {
    {
      std::lock_guard lk(mu_);
      if (held_ + block_bytes <= limit_) {
        free_[block_bytes].push_back(p);
        held_ += block_bytes;
        return;
      }
    }
    std::free(p);
  }

  void set_limit(std::size_t n) {
    std::vector<void*> drop;
    {
      std::lock_guard lk(mu_);
      limit_ = n;
      for (auto it = free_.rbegin(); it != free_.rend() && held_ > limit_; ++it)  // the largest blocks first
        while (!it->second.empty() && held_ > limit_) {
          drop.push_back(it->second.back());
          it->second.pop_back();
          held_ -= it->first;
        }
    }
    for (void* p : drop) std::free(p);
  }

  bool enabled() {
    std::lock_guard lk(mu_);
    return limit_ > 0;
  }

  py::dict info() {
    std::lock_guard lk(mu_);
    std::size_t blocks = 0;
    for (const auto& [size, list] : free_) blocks += list.size();
    py::dict d;
    d["limit_bytes"] = limit_;
    d["bytes"] = held_;
    d["blocks"] = blocks;
    d["reused"] = reused_;
    d["allocated"] = allocated_;
    return d;
  }

 private:
  std::mutex mu_;
  std::map<std::size_t, std::vector<void*>> free_;  // size class -> kept blocks
  std::size_t held_ = 0, limit_ = default_limit();
  std::uint64_t reused_ = 0, allocated_ = 0;
};

// Never destroyed: a block may come back while the interpreter shuts down.
OutputPool& pool() {
  static auto* p = new OutputPool;
  return *p;
}

// One output's memory, as a writable byte buffer; back to the pool when torch frees the storage.
class OutputBlock {
 public:
  explicit OutputBlock(std::size_t bytes) : bytes_(bytes) { p_ = pool().take(bytes, block_bytes_); }
  OutputBlock(const OutputBlock&) = delete;
  OutputBlock& operator=(const OutputBlock&) = delete;
  ~OutputBlock() { pool().give_back(p_, block_bytes_); }
  py::buffer_info buffer() const {
    return py::buffer_info(p_, 1, py::format_descriptor<std::uint8_t>::format(), 1, {static_cast<py::ssize_t>(bytes_)}, {1});
  }

 private:
  void* p_ = nullptr;
  std::size_t bytes_ = 0, block_bytes_ = 0;
};

}  // namespace

void define_output_pool(py::module_& m) {
  py::class_<OutputBlock>(m, "OutputBlock", py::buffer_protocol()).def_buffer(&OutputBlock::buffer);
  m.def(
      "output_block", [](std::size_t bytes) { return std::make_unique<OutputBlock>(bytes); }, py::arg("bytes"));
  m.def("output_pool_info", [] { return pool().info(); });
  m.def("output_pool_enabled", [] { return pool().enabled(); });
  m.def(
      "set_output_pool_bytes", [](std::size_t n) { pool().set_limit(n); }, py::arg("n"));
}

}  // namespace gmmav::python
