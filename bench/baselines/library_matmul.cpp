#include "library_matmul.hpp"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <oneapi/dnnl/dnnl.hpp>
#include <random>
#include <vector>

#include "gemm/tile_matmul.hpp"

namespace gmmav::bench {
namespace {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

// Source buffers are capped (128 MiB) so the seed case (65536 x 7168 rows) does not need
// gigabytes: a GEMM of M rows runs as ceil(M / m_chunk) calls of at most m_chunk rows.
constexpr std::int64_t kMaxSourceBytes = std::int64_t{128} << 20;

// The weight shape's packed layout is oneDNN's choice for this many rows; every GEMM on it
// takes that layout (as the engine's packed weights do, gemm/tile_matmul.cpp).
constexpr std::int64_t kPackRows = 128;

// One weight shape: its packed weight (one, shared by the shape's GEMMs: a weight larger than
// the last-level cache is streamed from memory by each GEMM, as the operator's distinct weights
// are; a smaller one may stay cached between GEMMs, which can only favour the library), the
// source and output buffers of its largest call, and a primitive per row count.
struct Shape {
  std::int64_t k = 0, n = 0, chunk = 0;
  std::vector<std::int64_t> rows;
  dnnl::memory weights, src, dst;
  std::map<std::int64_t, dnnl::matmul> by_rows;
  std::string impl;
};

std::int64_t chunk_rows(std::int64_t k, std::int64_t elem, std::int64_t largest) {
  return std::clamp<std::int64_t>(kMaxSourceBytes / (k * elem), 1, std::max<std::int64_t>(largest, 1));
}

}  // namespace

struct LibraryMatmul::Impl {
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream strm{eng};
  dt type = dt::f32;
  int threads = 1;
  std::string note;  // why the type differs from the case's
  std::vector<Shape> shapes;

  dnnl::matmul::primitive_desc desc(std::int64_t rows, std::int64_t k, std::int64_t n, const dnnl::memory::desc& w) const {
    return dnnl::matmul::primitive_desc(
        dnnl::matmul::desc(dnnl::memory::desc({rows, k}, type, tag::ab), w, dnnl::memory::desc({rows, n}, type, tag::ab)), eng);
  }

  void add(const LibraryGemms& g, std::mt19937& rng) {
    Shape s;
    s.k = g.k;
    s.n = g.n;
    for (const std::int64_t r : g.rows)
      if (r > 0) s.rows.push_back(r);
    if (s.rows.empty()) return;
    const std::int64_t elem = type == dt::bf16 ? 2 : 4;
    s.chunk = chunk_rows(s.k, elem, *std::max_element(s.rows.begin(), s.rows.end()));
    const dnnl::memory::desc wany({s.k, s.n}, type, tag::any);
    const dnnl::memory::desc packed = desc(kPackRows, s.k, s.n, wany).weights_desc();
    for (const std::int64_t r : s.rows) {
      const std::int64_t calls = (r + s.chunk - 1) / s.chunk;
      for (const std::int64_t m : {std::min(r, s.chunk), r - (calls - 1) * s.chunk})
        if (!s.by_rows.count(m)) {
          const auto pd = desc(m, s.k, s.n, packed);
          if (s.impl.empty()) s.impl = pd.impl_info_str();
          s.by_rows.emplace(m, dnnl::matmul(pd));
        }
    }
    s.src = dnnl::memory({{s.chunk, s.k}, type, tag::ab}, eng);
    s.dst = dnnl::memory({{s.chunk, s.n}, type, tag::ab}, eng);
    fill(s.src, s.chunk * s.k, rng);
    // Pack once, outside the timing (as the engine variants' PackedWeights).
    dnnl::memory plain({{s.k, s.n}, type, tag::ab}, eng);
    fill(plain, s.k * s.n, rng);
    s.weights = dnnl::memory(packed, eng);
    dnnl::reorder(plain, s.weights).execute(strm, plain, s.weights);
    strm.wait();
    shapes.push_back(std::move(s));
  }

  void fill(dnnl::memory& m, std::int64_t n, std::mt19937& rng) {
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    if (type == dt::f32) {
      auto* f = static_cast<float*>(m.get_data_handle());
      for (std::int64_t i = 0; i < n; ++i) f[i] = u(rng);
    } else {
      auto* b = static_cast<std::uint16_t*>(m.get_data_handle());
      for (std::int64_t i = 0; i < n; ++i) {
        const float v = u(rng);
        std::uint32_t bits;
        std::memcpy(&bits, &v, 4);
        b[i] = static_cast<std::uint16_t>(bits >> 16);  // truncation is fine for benchmark data
      }
    }
  }
};

LibraryMatmul::LibraryMatmul(DType dtype, const LibraryShape& s, int threads) : impl_(std::make_unique<Impl>()) {
  impl_->type = dtype == DType::bf16 ? dt::bf16 : dt::f32;
  impl_->threads = threads;
  omp_set_num_threads(threads);  // this thread's OpenMP team size (pool workers keep theirs at 1)
  const auto add_all = [&] {
    std::mt19937 rng(7);
    impl_->add(s.routed, rng);
    impl_->add(s.shared, rng);
  };
  try {
    add_all();
  } catch (const dnnl::error&) {
    if (impl_->type != dt::bf16) throw;
    // No BF16 matmul on this CPU (oneDNN 2.6 without AVX-512): the library's best is FP32, as the engine's f32 route.
    impl_->shapes.clear();
    impl_->type = dt::f32;
    impl_->note = "no bf16 matmul on this CPU: ";
    add_all();
  }
}

double LibraryMatmul::estimate_bytes(DType dtype, const LibraryShape& s) {
  const double elem = dtype == DType::bf16 && gemm::native_bf16_matmul() ? 2 : 4;
  const auto shape = [&](const LibraryGemms& g) {
    std::int64_t largest = 0;
    for (const std::int64_t r : g.rows) largest = std::max(largest, r);
    if (largest <= 0) return 0.0;
    // As add(): a chunk of sources and outputs, the packed weight and the plain weight it is packed from.
    const std::int64_t chunk = chunk_rows(g.k, static_cast<std::int64_t>(elem), largest);
    return elem * (static_cast<double>(chunk) * static_cast<double>(g.k + g.n) +
                   2 * static_cast<double>(g.k) * static_cast<double>(g.n));
  };
  return shape(s.routed) + shape(s.shared);
}

LibraryMatmul::~LibraryMatmul() = default;

void LibraryMatmul::wake() {
  omp_set_num_threads(impl_->threads);
#pragma omp parallel
  {}
}

void LibraryMatmul::quiesce() { omp_pause_resource_all(omp_pause_soft); }

void LibraryMatmul::run() {
  omp_set_num_threads(impl_->threads);
  for (Shape& s : impl_->shapes)
    for (const std::int64_t r : s.rows)
      for (std::int64_t at = 0; at < r; at += s.chunk) {
        const std::int64_t m = std::min(s.chunk, r - at);
        dnnl::memory src({{m, s.k}, impl_->type, tag::ab}, impl_->eng, s.src.get_data_handle());
        dnnl::memory dst({{m, s.n}, impl_->type, tag::ab}, impl_->eng, s.dst.get_data_handle());
        s.by_rows.at(m).execute(impl_->strm, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, s.weights}, {DNNL_ARG_DST, dst}});
      }
  impl_->strm.wait();
}

double LibraryMatmul::flops() const {
  double f = 0;
  for (const Shape& s : impl_->shapes)
    for (const std::int64_t r : s.rows) f += 2.0 * static_cast<double>(r) * static_cast<double>(s.k) * static_cast<double>(s.n);
  return f;
}

std::string LibraryMatmul::description() const {
  std::string s = impl_->note + (impl_->type == dt::bf16 ? "bf16 in/out" : "f32 in/out");
  s += ", " + std::to_string(impl_->threads) + " threads";
  for (const Shape& p : impl_->shapes) {
    const auto [lo, hi] = std::minmax_element(p.rows.begin(), p.rows.end());
    s += "; " + std::to_string(p.rows.size()) + " GEMMs of " + std::to_string(*lo) +
         (*lo == *hi ? "" : "-" + std::to_string(*hi)) + " x " + std::to_string(p.k) + " x " + std::to_string(p.n) +
         " rows on one packed weight [" + p.impl + "]";
  }
  return s;
}

}  // namespace gmmav::bench
