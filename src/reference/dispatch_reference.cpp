#include "reference/dispatch_reference.hpp"

#include <stdexcept>
#include <string>

#include "reference/fp64_rows.hpp"

namespace gmmav::reference {

std::vector<DispatchRankOutputs> compute_dispatch(const Shapes& sh, std::span<const DispatchRankInputs> ranks) {
  const int W = sh.world_size, e = sh.local_experts;
  if (static_cast<int>(ranks.size()) != W) throw std::invalid_argument("reference: one DispatchRankInputs per rank expected");
  const auto at = [](const std::vector<std::int64_t>& v, int i) { return v[static_cast<std::size_t>(i)]; };
  // 1. AlltoAllv: rank s's gmmX rows for global expert g start at the sum of its earlier counts.
  std::vector<std::vector<std::int64_t>> first_row(static_cast<std::size_t>(W));  // [s][g]
  for (int s = 0; s < W; ++s) {
    std::int64_t row = 0;
    for (int g = 0; g < W * e; ++g) {
      first_row[static_cast<std::size_t>(s)].push_back(row);
      row += at(ranks[static_cast<std::size_t>(s)].send_counts, g);
    }
  }
  std::vector<DispatchRankOutputs> out(static_cast<std::size_t>(W));
  for (int r = 0; r < W; ++r) {
    const DispatchRankInputs& in = ranks[static_cast<std::size_t>(r)];
    DispatchRankOutputs& o = out[static_cast<std::size_t>(r)];
    std::int64_t a = 0;
    for (auto c : in.recv_counts) a += c;
    // 2. Permute: block (j, s) = what s sent for (r, j), expert-major, source-minor.
    o.permute_out.reserve(static_cast<std::size_t>(a * sh.h1));
    for (int j = 0; j < e; ++j)
      for (int s = 0; s < W; ++s) {
        const std::int64_t rows = at(in.recv_counts, s * e + j);
        if (rows != at(ranks[static_cast<std::size_t>(s)].send_counts, r * e + j))
          throw std::invalid_argument("reference: recvCounts@" + std::to_string(r) + "[" + std::to_string(s * e + j) +
                                      "] differs from sendCounts@" + std::to_string(s) + "[" + std::to_string(r * e + j) + "]");
        const std::uint16_t* src =
            ranks[static_cast<std::size_t>(s)].gmm_x + at(first_row[static_cast<std::size_t>(s)], r * e + j) * sh.h1;
        o.permute_out.insert(o.permute_out.end(), src, src + rows * sh.h1);
      }
    // 3. GroupedMatMul over the permuted rows, group j with local expert j's weight.
    resize(o.gmm_y, a * sh.n1, sh.h1);
    std::int64_t row = 0;
    for (int j = 0; j < e; ++j) {
      std::int64_t g = 0;
      for (int s = 0; s < W; ++s) g += at(in.recv_counts, s * e + j);
      dot_rows(sh.dtype, o.permute_out.data() + row * sh.h1, g, sh.h1,
               in.gmm_weight + static_cast<std::int64_t>(j) * sh.h1 * sh.n1, sh.n1, sh.trans_gmm_weight, o.gmm_y, row);
      row += g;
    }
    if (in.mm_x != nullptr) {
      resize(o.mm_y, in.bs * sh.n2, sh.h2);
      dot_rows(sh.dtype, in.mm_x, in.bs, sh.h2, in.mm_weight, sh.n2, sh.trans_mm_weight, o.mm_y, 0);
    }
  }
  return out;
}

}  // namespace gmmav::reference
