#include "library_matmul.hpp"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <oneapi/dnnl/dnnl.hpp>
#include <random>
#include <vector>

#include "gemm/tile_matmul.hpp"

namespace gmmav::bench {
namespace {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

// Source buffers are capped (128 MiB) so the seed case (65536 x 7168 rows) does not need
// gigabytes: a product of M rows runs as ceil(M / m_chunk) calls of m_chunk rows.
constexpr std::int64_t kMaxSourceBytes = std::int64_t{128} << 20;

struct Product {
  std::int64_t m = 0, k = 0, n = 0, chunk = 0, calls = 0, last = 0;
  dnnl::memory src, dst, weights, tail_src, tail_dst, tail_weights;
  dnnl::matmul full, tail;
  std::string impl;
};

}  // namespace

struct LibraryMatmul::Impl {
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream strm{eng};
  dt type = dt::f32;
  int threads = 1;
  std::string note;  // why the type differs from the case's
  std::vector<Product> products;

  void add(std::int64_t m, std::int64_t k, std::int64_t n, std::mt19937& rng) {
    if (m <= 0) return;
    Product p;
    p.m = m;
    p.k = k;
    p.n = n;
    const std::int64_t elem = type == dt::bf16 ? 2 : 4;
    p.chunk = std::clamp<std::int64_t>(kMaxSourceBytes / (k * elem), 1, m);
    p.calls = (m + p.chunk - 1) / p.chunk;
    p.last = m - (p.calls - 1) * p.chunk;
    const dnnl::memory::desc wany({k, n}, type, tag::any);
    const auto make = [&](std::int64_t rows) {
      return dnnl::matmul::primitive_desc(
          dnnl::matmul::desc(dnnl::memory::desc({rows, k}, type, tag::ab), wany, dnnl::memory::desc({rows, n}, type, tag::ab)),
          eng);
    };
    const auto pd = make(p.chunk);
    p.impl = pd.impl_info_str();
    p.full = dnnl::matmul(pd);
    const auto tail_pd = make(p.last);
    p.tail = dnnl::matmul(tail_pd);
    p.src = dnnl::memory({{p.chunk, k}, type, tag::ab}, eng);
    p.dst = dnnl::memory({{p.chunk, n}, type, tag::ab}, eng);
    fill(p.src, p.chunk * k, rng);
    // Pack once, outside the timing (the operator's engine repacks per call).
    dnnl::memory plain({{k, n}, type, tag::ab}, eng);
    fill(plain, k * n, rng);
    p.weights = dnnl::memory(pd.weights_desc(), eng);
    dnnl::reorder(plain, p.weights).execute(strm, plain, p.weights);
    p.tail_weights = p.weights;
    if (tail_pd.weights_desc() != pd.weights_desc()) {
      p.tail_weights = dnnl::memory(tail_pd.weights_desc(), eng);
      dnnl::reorder(plain, p.tail_weights).execute(strm, plain, p.tail_weights);
    }
    strm.wait();
    p.tail_src = dnnl::memory({{p.last, k}, type, tag::ab}, eng, p.src.get_data_handle());
    p.tail_dst = dnnl::memory({{p.last, n}, type, tag::ab}, eng, p.dst.get_data_handle());
    products.push_back(std::move(p));
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
    impl_->add(s.m1, s.k1, s.n1, rng);
    impl_->add(s.m2, s.k2, s.n2, rng);
  };
  try {
    add_all();
  } catch (const dnnl::error&) {
    if (impl_->type != dt::bf16) throw;
    // No BF16 matmul on this CPU (oneDNN 2.6 without AVX-512): the library's best is FP32, as the engine's f32 route.
    impl_->products.clear();
    impl_->type = dt::f32;
    impl_->note = "no bf16 matmul on this CPU: ";
    add_all();
  }
}

double LibraryMatmul::estimate_bytes(DType dtype, const LibraryShape& s) {
  const double elem = dtype == DType::bf16 && gemm::native_bf16_matmul() ? 2 : 4;
  const auto product = [&](std::int64_t m, std::int64_t k, std::int64_t n) {
    if (m <= 0) return 0.0;
    // As add(): a chunk of sources and outputs, the packed weights (a second copy for the tail
    // chunk when there is more than one call) and the plain weight they are packed from.
    const std::int64_t chunk = std::clamp<std::int64_t>(kMaxSourceBytes / (k * static_cast<std::int64_t>(elem)), 1, m);
    const double weights = chunk < m ? 3 : 2;
    return elem *
           (static_cast<double>(chunk) * static_cast<double>(k + n) + weights * static_cast<double>(k) * static_cast<double>(n));
  };
  return product(s.m1, s.k1, s.n1) + product(s.m2, s.k2, s.n2);
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
  for (Product& p : impl_->products) {
    for (std::int64_t c = 0; c < p.calls; ++c) {
      if (c + 1 < p.calls)
        p.full.execute(impl_->strm, {{DNNL_ARG_SRC, p.src}, {DNNL_ARG_WEIGHTS, p.weights}, {DNNL_ARG_DST, p.dst}});
      else
        p.tail.execute(impl_->strm, {{DNNL_ARG_SRC, p.tail_src}, {DNNL_ARG_WEIGHTS, p.tail_weights}, {DNNL_ARG_DST, p.tail_dst}});
    }
  }
  impl_->strm.wait();
}

double LibraryMatmul::flops() const {
  double f = 0;
  for (const Product& p : impl_->products)
    f += 2.0 * static_cast<double>(p.m) * static_cast<double>(p.k) * static_cast<double>(p.n);
  return f;
}

std::string LibraryMatmul::description() const {
  std::string s = impl_->note + (impl_->type == dt::bf16 ? "bf16 in/out" : "f32 in/out");
  s += ", " + std::to_string(impl_->threads) + " threads";
  for (const Product& p : impl_->products)
    s += "; " + std::to_string(p.m) + "x" + std::to_string(p.k) + "x" + std::to_string(p.n) + " as " + std::to_string(p.calls) +
         " call(s) [" + p.impl + "]";
  return s;
}

}  // namespace gmmav::bench
