#include "gemm/tile_matmul.hpp"

#include <algorithm>

#include "gemm/sgemm.hpp"
#include "numeric/convert.hpp"

namespace gmmav::gemm {
namespace {
constexpr std::size_t kChunkElems = std::size_t{1} << 20;  // 4 MiB of FP32 per preparation chunk

// Per-thread scratch that only grows (pool workers live for the process).
std::vector<float>& scratch(int which) {
  thread_local std::vector<float> bufs[2];
  return bufs[which];
}
float* scratch_of(int which, std::size_t n) {
  auto& v = scratch(which);
  if (v.size() < n) v.resize(n);
  return v.data();
}
}  // namespace

void PreparedWeight::reset(DType dtype, std::int64_t k, std::int64_t n, bool trans) {
  dtype_ = dtype;
  k_ = k;
  n_ = n;
  trans_ = trans;
  f32_.resize(static_cast<std::size_t>(k * n));
}

std::size_t PreparedWeight::chunks() const { return (f32_.size() + kChunkElems - 1) / kChunkElems; }

void PreparedWeight::prepare_chunk(std::size_t c, const std::uint16_t* w) {
  const std::size_t begin = c * kChunkElems;
  const std::size_t end = std::min(f32_.size(), begin + kChunkElems);
  numeric::to_float(dtype_, w + begin, f32_.data() + begin, end - begin);
}

void matmul_rows(const PreparedWeight& w, const std::uint16_t* x, std::int64_t rows, std::uint16_t* out) {
  if (rows <= 0) return;
  const std::int64_t k = w.k(), n = w.n();
  float* xf = scratch_of(0, static_cast<std::size_t>(rows * k));
  float* cf = scratch_of(1, static_cast<std::size_t>(rows * n));
  numeric::to_float(w.dtype(), x, xf, static_cast<std::size_t>(rows * k));
  sgemm(rows, n, k, xf, k, w.data(), w.trans() ? k : n, w.trans(), cf, n);
  numeric::from_float(w.dtype(), cf, out, static_cast<std::size_t>(rows * n));
}

}  // namespace gmmav::gemm
