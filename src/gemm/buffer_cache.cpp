#include "gemm/buffer_cache.hpp"

#include <cstdlib>
#include <list>
#include <mutex>
#include <new>

namespace gmmav::gemm {
namespace {

// Unused buffers kept for reuse, most recently freed first; beyond the cap the
// oldest are freed.
constexpr std::size_t kCapBytes = std::size_t{4} << 30;

struct Cache {
  std::mutex mu;
  std::list<std::pair<std::byte*, std::size_t>> free;  // (buffer, capacity)
  std::size_t free_bytes = 0;

  std::byte* take(std::size_t bytes, std::size_t& capacity) {
    std::lock_guard lk(mu);
    for (auto it = free.begin(); it != free.end(); ++it) {
      if (it->second >= bytes && it->second <= 2 * bytes) {  // fits without wasting more than half
        std::byte* p = it->first;
        capacity = it->second;
        free_bytes -= it->second;
        free.erase(it);
        return p;
      }
    }
    return nullptr;
  }
  void give(std::byte* p, std::size_t capacity) {
    std::lock_guard lk(mu);
    free.emplace_front(p, capacity);
    free_bytes += capacity;
    while (free_bytes > kCapBytes && !free.empty()) {
      free_bytes -= free.back().second;
      std::free(free.back().first);
      free.pop_back();
    }
  }
};

Cache& cache() {
  static Cache* c = new Cache;  // never destroyed: buffers may be returned during static destruction
  return *c;
}

}  // namespace

std::shared_ptr<std::byte> cached_buffer(std::size_t bytes) {
  bytes = std::max<std::size_t>(64, (bytes + 63) / 64 * 64);
  std::size_t capacity = bytes;
  std::byte* p = cache().take(bytes, capacity);
  if (p == nullptr) {
    p = static_cast<std::byte*>(std::aligned_alloc(64, bytes));
    if (p == nullptr) throw std::bad_alloc();
  }
  return std::shared_ptr<std::byte>(p, [capacity](std::byte* q) { cache().give(q, capacity); });
}

void release_cached_buffers() {
  Cache& c = cache();
  std::lock_guard lk(c.mu);
  for (auto& [p, n] : c.free) std::free(p);
  c.free.clear();
  c.free_bytes = 0;
}

}  // namespace gmmav::gemm
