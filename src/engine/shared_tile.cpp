#include "engine/shared_tile.hpp"

#include <cstring>
#include <vector>

namespace gmmav::engine {

void shared_tile(comm::Exchange& ex, const gemm::PreparedWeight& w, const std::uint16_t* x, std::int64_t rows, std::int64_t n,
                 std::uint16_t* out) {
  if (ex.agreed()) {
    w.matmul_rows(x, rows, out);
    return;
  }
  thread_local std::vector<std::uint16_t> scratch;  // one tile per pool thread, kept between calls
  scratch.resize(static_cast<std::size_t>(rows * n));
  w.matmul_rows(x, rows, scratch.data());
  ex.wait_agreed();
  std::memcpy(out, scratch.data(), scratch.size() * sizeof(std::uint16_t));
}

}  // namespace gmmav::engine
