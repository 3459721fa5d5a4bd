#include "comm/count_verdict.hpp"

#include "common/fail.hpp"

namespace gmmav::comm {

Mismatch column_mismatch(std::span<const std::int64_t> column, std::span<const std::int64_t> recv, int rank, int size,
                         std::int64_t e) {
  for (std::size_t g = 0; g < column.size(); ++g) {
    if (column[g] == recv[g]) continue;
    const auto s = static_cast<std::int64_t>(g) / e, j = static_cast<std::int64_t>(g) % e;
    return {.key = (s * size + rank) * e + j, .sent = column[g], .received = recv[g]};
  }
  return {};
}

Mismatch first_mismatch(std::span<const Mismatch> all) {
  Mismatch first;
  for (const Mismatch& m : all)
    if (m.key < first.key) first = m;
  return first;
}

void refuse(const Mismatch& m, int size, std::int64_t e) {
  const std::int64_t j = m.key % e, sd = m.key / e;
  const std::int64_t s = sd / size, d = sd % size;
  fail(Errc::count_mismatch, "recvCounts",
       "cross-rank count mismatch at (source {}, destination {}, expert {}): rank {} sendCounts[{}] = {} but rank {} "
       "recvCounts[{}] = {}",
       s, d, j, s, d * e + j, m.sent, d, s * e + j, m.received);
}

}  // namespace gmmav::comm
