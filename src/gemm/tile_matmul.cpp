#include "gemm/tile_matmul.hpp"

#include <fmt/format.h>

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <new>
#include <oneapi/dnnl/dnnl.hpp>
#include <tuple>
#include <vector>

#include "common/cpu_isa.hpp"
#include "common/fail.hpp"
#include "gemm/buffer_cache.hpp"
#include "gemm/chain_kernel.hpp"
#include "numeric/convert.hpp"

namespace gmmav::gemm {
namespace {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

// oneDNN's ISA for a gmmav level (common/cpu_isa.hpp): portable has no oneDNN counterpart below
// sse41, oneDNN's lowest; avx512 is avx512_core (F/BW/VL/DQ, no BF16 dot products).
dnnl::cpu_isa onednn_isa(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::portable:
      return dnnl::cpu_isa::sse41;
    case CpuIsa::avx2:
      return dnnl::cpu_isa::avx2;
    case CpuIsa::avx512:
      return dnnl::cpu_isa::avx512_core;
    case CpuIsa::avx512_bf16:
      break;
  }
  return dnnl::cpu_isa::avx512_core_bf16;
}

// GMMAV_MAX_CPU_ISA caps oneDNN too (one knob for both; it overrides ONEDNN_MAX_CPU_ISA): set
// before oneDNN's first use in the process, which is the engine's creation as far as gmmav goes.
// If something else used oneDNN first, its cap can no longer move: that is only refused when its
// ISA is above the cap asked for.
void cap_onednn_isa() {
  const auto cap = cpu_isa_cap();
  if (!cap) return;
  const dnnl::cpu_isa want = onednn_isa(*cap);
  if (dnnl::set_max_cpu_isa(want) == dnnl::status::success) return;
  const auto have = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  if ((have & static_cast<unsigned>(want)) != have)  // oneDNN's ISA values are bit sets, each level holding the ones below
    fail(Errc::invalid_argument, "GMMAV_MAX_CPU_ISA",
         "expected oneDNN not to be used in this process before gmmav's first GEMM (it runs at ISA {:#x} and cannot be capped "
         "to {} any more); set ONEDNN_MAX_CPU_ISA too",
         have, to_string(*cap));
}

dnnl::engine& cpu_engine() {
  static dnnl::engine eng = [] {
    cap_onednn_isa();
    return dnnl::engine(dnnl::engine::kind::cpu, 0);
  }();
  return eng;
}

// One stream per thread (oneDNN streams are not shared across threads).
dnnl::stream& thread_stream() {
  thread_local dnnl::stream s(cpu_engine());
  return s;
}

// Per-thread FP32 scratch for the f32 route (pool workers live for the process).
float* scratch(int which, std::size_t n) {
  thread_local std::vector<float> bufs[2];
  auto& v = bufs[which];
  if (v.size() < n) v.resize(n);
  return v.data();
}

// Scratchpads are supplied per thread: oneDNN's library-managed scratchpad is
// not safe when pool workers run the same primitive concurrently (measured:
// wrong results), docs/gemm-measurements.md.
dnnl::matmul::primitive_desc make_pd(dt type, std::int64_t m, std::int64_t k, std::int64_t n, const dnnl::memory::desc& w) {
  const dnnl::memory::desc a({m, k}, type, tag::ab);
  const dnnl::memory::desc c({m, n}, type, tag::ab);
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return dnnl::matmul::primitive_desc(dnnl::matmul::desc(a, w, c), attr, cpu_engine());
}

struct Matmul {
  dnnl::matmul prim;
  dnnl::memory::desc scratchpad;
};

dnnl::memory thread_scratchpad(const Matmul& mm) {
  thread_local std::vector<std::uint8_t> buf;
  if (buf.size() < mm.scratchpad.get_size()) buf.resize(mm.scratchpad.get_size());
  return dnnl::memory(mm.scratchpad, cpu_engine(), buf.data());
}

// The packed weight layout oneDNN prefers for this problem (same for every M: measured).
// Only for shapes onednn_accepts(kPackRows, k, n).
constexpr std::int64_t kPackRows = 128;
dnnl::memory::desc packed_desc(dt type, std::int64_t k, std::int64_t n) {
  const dnnl::memory::desc any({k, n}, type, tag::any);
  return make_pd(type, kPackRows, k, n, any).weights_desc();
}

// Primitives by (type, M, K, N, packed layout); created by the pool worker that needs them.
class PrimitiveCache {
 public:
  Matmul get(dt type, std::int64_t m, std::int64_t k, std::int64_t n, const dnnl::memory::desc& w) {
    std::lock_guard lk(mu_);
    const auto key = std::make_tuple(static_cast<int>(type), m, k, n, w);
    for (auto& [kk, mm] : cache_)
      if (kk == key) return mm;
    const auto pd = make_pd(type, m, k, n, w);
    Matmul mm{dnnl::matmul(pd), pd.scratchpad_desc()};
    cache_.emplace_back(key, mm);
    if (cache_.size() > 512) cache_.erase(cache_.begin());
    return mm;
  }

 private:
  std::mutex mu_;
  std::vector<std::pair<std::tuple<int, std::int64_t, std::int64_t, std::int64_t, dnnl::memory::desc>, Matmul>> cache_;
};

PrimitiveCache& primitives() {
  static PrimitiveCache c;
  return c;
}

std::string impl_of(dt type) {
  try {
    const dnnl::memory::desc any({4096, 4096}, type, tag::any);
    return make_pd(type, 128, 4096, 4096, any).impl_info_str();
  } catch (const dnnl::error&) {
    return "unavailable";
  }
}

}  // namespace

// oneDNN 2.6 keeps dimensions in 32-bit ints inside its kernels: a dimension of 2^32 or more
// kills the process (SIGFPE in primitive creation: M or K = 2^32, K = 2^36), brgemm refuses
// 2^31 <= K < 2^32 but accepts K = 2^32 + 1 (as if truncated to 32 bits), and a 2^31 x 2^31
// weight reports 0 bytes (D65). Rows of 2^29 FP32 values are 2^31 bytes, so the bound also keeps
// every row stride a 32-bit byte offset. Tensors beyond 2^31 elements and 2^32 bytes were
// measured correct (exact integer products) as long as each dimension is small.
bool onednn_accepts(std::int64_t m, std::int64_t k, std::int64_t n) {
  const auto ok = [](std::int64_t d) { return d >= 1 && d <= kOneDnnMaxDim; };
  return ok(m) && ok(k) && ok(n);
}

// Native BF16 matmul is worth it only with a real BF16 kernel (not oneDNN's reference code).
bool native_bf16_matmul() {
  static const bool yes = [] {
    const std::string impl = impl_of(dt::bf16);
    return impl.find("bf16") != std::string::npos && impl.find("ref") == std::string::npos;
  }();
  return yes;
}

// oneDNN's FP32 matmul is used for large f32-route tiles only where it has a
// brgemm kernel (AVX-512 hosts: 86-93 % of the FMA peak on packed weights).
// Elsewhere (AVX2 hosts) it runs `gemm:jit` at about half of what the chain
// kernel reaches on the weight as stored (D24), so every f32-route tile takes
// the chain kernel and no weight is ever converted or packed for it.
bool f32_route_packs() {
  static const bool yes = impl_of(dt::f32).find("brg") != std::string::npos;
  return yes;
}

namespace {

// Reorders a plain weight (k x n, or n x k when trans) into `packed`, held in `storage`.
dnnl::memory pack(dt type, const void* w, std::int64_t k, std::int64_t n, bool trans, const dnnl::memory::desc& packed,
                  std::shared_ptr<std::byte>& storage) {
  const dnnl::memory::desc plain({k, n}, type, trans ? tag::ba : tag::ab);
  dnnl::memory src(plain, cpu_engine(), const_cast<void*>(w));
  storage = cached_buffer(packed.get_size());
  dnnl::memory dst(packed, cpu_engine(), storage.get());
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  const dnnl::reorder::primitive_desc pd(src, dst, attr);
  std::vector<std::uint8_t> pad(pd.scratchpad_desc().get_size());
  dnnl::memory scratch(pd.scratchpad_desc(), cpu_engine(), pad.data());
  dnnl::reorder(pd).execute(thread_stream(), {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}, {DNNL_ARG_SCRATCHPAD, scratch}});
  thread_stream().wait();
  return dst;
}

}  // namespace

// Biased exponent >= 127 - 56 = 71 for every nonzero value (sign and mantissa
// ignored): the smallest nonzero magnitude must be >= 71 << 7. It runs over
// every weight once per call, so it has an AVX2 path (run-time check).
std::uint16_t min_nonzero_magnitude_scalar(const std::uint16_t* v, std::size_t n) {
  std::uint16_t lo = 0xFFFF;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint16_t mag = v[i] & 0x7FFF;
    lo = std::min<std::uint16_t>(lo, mag == 0 ? 0xFFFF : mag);
  }
  return lo;
}

__attribute__((target("avx2"))) std::uint16_t min_nonzero_magnitude_avx2(const std::uint16_t* v, std::size_t n) {
  const __m256i magnitude = _mm256_set1_epi16(0x7FFF), zero = _mm256_setzero_si256();
  __m256i lo = _mm256_set1_epi16(-1);
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i mag = _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(v + i)), magnitude);
    lo = _mm256_min_epu16(lo, _mm256_or_si256(mag, _mm256_cmpeq_epi16(mag, zero)));  // zeros become 0xFFFF
  }
  alignas(32) std::uint16_t lanes[16];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), lo);
  std::uint16_t m = min_nonzero_magnitude_scalar(v + i, n - i);
  for (std::uint16_t x : lanes) m = std::min(m, x);
  return m;
}

bool bf16_dot_exact(const std::uint16_t* v, std::size_t n) {
  const bool avx2 = cpu_isa() >= CpuIsa::avx2;
  return (avx2 ? min_nonzero_magnitude_avx2(v, n) : min_nonzero_magnitude_scalar(v, n)) >= (71u << 7);
}

// D82: BF16 GEMMs of every size take the native route where the host has it (at decode sizes
// oneDNN's BF16 brgemm is 2.3-2.6x the chain kernel); FP16 ones of at most kSmallMRows rows keep
// the chain kernel (D13: oneDNN's FP32 route needs an FP32 copy of the weight, twice the bytes).
Route route_of(DType dtype, std::int64_t rows, std::int64_t k, std::int64_t n) {
  if (!onednn_accepts(rows, k, n) || !onednn_accepts(kPackRows, k, n)) return Route::chain;
  if (dtype == DType::bf16 && native_bf16_matmul()) return Route::onednn_bf16;
  if (rows > kSmallMRows && f32_route_packs()) return Route::onednn_f32;
  return Route::chain;
}

std::string kernel_name(Route route) {
  switch (route) {
    case Route::chain:
      return fmt::format("chain {}", chain_kernel_path());
    case Route::onednn_f32:
      return "oneDNN f32 " + onednn_impl(false);
    case Route::onednn_bf16:
      return "oneDNN bf16 " + onednn_impl(true);
  }
  return "?";
}

PreparedWeight::Packing packing_for(DType dtype, std::int64_t max_rows, std::int64_t k, std::int64_t n) {
  if (max_rows < 1 || route_of(dtype, max_rows, k, n) == Route::chain) return PreparedWeight::Packing::first_need;
  return max_rows > kSmallMRows ? PreparedWeight::Packing::now : PreparedWeight::Packing::small_tiles;
}

bool packs_weights(DType dtype) { return f32_route_packs() || (dtype == DType::bf16 && native_bf16_matmul()); }

std::string onednn_impl(bool bf16) {
  static const std::string f32 = impl_of(dt::f32), b16 = impl_of(dt::bf16);
  return bf16 ? b16 : f32;
}

bool packs_weights(DType dtype, std::int64_t k, std::int64_t n) {
  return packs_weights(dtype) && onednn_accepts(kPackRows, k, n);
}

std::string isa_info() {
  const auto cap = cpu_isa_cap();
  return fmt::format("isa {} (host {}{}), chain kernel {}", to_string(cpu_isa()), to_string(host_cpu_isa()),
                     cap ? fmt::format(", GMMAV_MAX_CPU_ISA={}", to_string(*cap)) : std::string(), chain_kernel_path());
}

std::string implementation_info() {
  const std::string f32 = f32_route_packs()
                              ? impl_of(dt::f32)
                              : fmt::format("chain kernel {} (oneDNN's is {})", chain_kernel_path(), impl_of(dt::f32));
  return fmt::format("{}; bf16: {}, f32: {}", isa_info(), impl_of(dt::bf16), f32);
}

struct PreparedWeight::Impl {
  const char* param = "gmmWeight";
  DType dtype = DType::f16;
  std::int64_t k = 0, n = 0;
  bool trans = false;
  const std::uint16_t* raw = nullptr;
  // The packed copies, made once each (prepare() or the first GEMM that needs them).
  mutable bool bf16_route = false;
  mutable dnnl::memory::desc bf16_desc, f32_desc;
  mutable dnnl::memory bf16_packed;
  mutable std::shared_ptr<std::byte> bf16_storage;
  mutable std::once_flag f32_once;
  mutable dnnl::memory f32_packed;
  mutable std::shared_ptr<std::byte> f32_storage;
  // Read by bytes() without taking the once flags.
  mutable std::atomic<std::size_t> bf16_bytes{0}, f32_bytes{0};
  // False when the shape is beyond what oneDNN takes (onednn_accepts): every tile then takes the
  // chain kernel and nothing is packed.
  bool onednn = true;

  void prepare_f32() const {
    f32_desc = packed_desc(dt::f32, k, n);
    const auto plain = cached_buffer(static_cast<std::size_t>(k * n) * sizeof(float));
    float* f = reinterpret_cast<float*>(plain.get());
    numeric::to_float(dtype, raw, f, static_cast<std::size_t>(k * n));
    f32_packed = pack(dt::f32, f, k, n, trans, f32_desc, f32_storage);
    f32_bytes.store(f32_desc.get_size(), std::memory_order_relaxed);
  }
  const dnnl::memory& f32_weight() const {
    std::call_once(f32_once, [this] { prepare_f32(); });
    return f32_packed;
  }
  // The BF16 copy, when the weight passes the exactness rule (bf16_route); once.
  mutable std::once_flag bf16_once;
  void prepare_bf16() const {
    bf16_route = onednn && dtype == DType::bf16 && native_bf16_matmul() && bf16_dot_exact(raw, static_cast<std::size_t>(k * n));
    if (!bf16_route) return;
    bf16_desc = packed_desc(dt::bf16, k, n);
    bf16_packed = pack(dt::bf16, raw, k, n, trans, bf16_desc, bf16_storage);
    bf16_bytes.store(bf16_desc.get_size(), std::memory_order_relaxed);
  }
  // Runs `make` (a packing step) with oneDNN's and the allocator's failures reported as gmmav errors.
  template <class F>
  void packing(F&& make) const {
    try {
      make();
    } catch (const dnnl::error& e) {
      fail(Errc::internal, param, "oneDNN failed to prepare a {} x {} weight: {}", k, n, e.what());
    } catch (const std::bad_alloc&) {  // the sizes come from the caller's shapes: say which
      fail(Errc::out_of_memory, param,
           "expected {} bytes of host memory to pack a {} x {} weight (FP32), got an allocation failure",
           static_cast<std::uint64_t>(k) * static_cast<std::uint64_t>(n) * 4, k, n);
    }
  }
  // What GEMMs of at most kSmallMRows rows may read: the BF16 copy (route_of: only BF16 leaves the chain kernel there).
  void packed_small() const {
    packing([this] { std::call_once(bf16_once, [this] { prepare_bf16(); }); });
  }
  // The FP32 copy (f32 route), with errors reported.
  void packed_f32() const {
    packing([this] { f32_weight(); });
  }
  // What GEMMs of more rows will read: the BF16 copy, or, off the bf16 route, the FP32 one (a GEMM
  // whose own data fail the exactness rule makes the FP32 copy of a bf16-route weight when it runs).
  void packed() const {
    packed_small();
    if (onednn && !bf16_route && f32_route_packs()) packed_f32();
  }
  // The chain kernel on the weight as stored; its buffers grow with rows x k.
  void chain(const std::uint16_t* x, std::int64_t rows, std::uint16_t* out) const {
    try {
      chain_matmul(dtype, x, rows, k, raw, n, trans, out);
    } catch (const std::bad_alloc&) {
      fail(Errc::out_of_memory, param,
           "expected {} bytes of host memory for the FP32 rows of a {} x {} x {} row tile (rows x K x N), got an allocation "
           "failure",
           static_cast<std::uint64_t>(rows) * static_cast<std::uint64_t>(k) * 4, rows, k, n);
    }
  }
};

PreparedWeight::PreparedWeight() : impl_(std::make_unique<Impl>()) {}
PreparedWeight::~PreparedWeight() = default;

bool PreparedWeight::bf16_route() const {
  impl_->packed_small();
  return impl_->bf16_route;
}

std::size_t PreparedWeight::bytes() const noexcept {
  const Impl& p = *impl_;
  return p.bf16_bytes.load(std::memory_order_relaxed) + p.f32_bytes.load(std::memory_order_relaxed);
}

void PreparedWeight::prepare(DType dtype, const std::uint16_t* w, std::int64_t k, std::int64_t n, bool trans, Packing packing,
                             const char* param) {
  impl_ = std::make_unique<Impl>();
  Impl& p = *impl_;
  p.param = param;
  p.dtype = dtype;
  p.k = k;
  p.n = n;
  p.trans = trans;
  p.raw = w;
  p.onednn = onednn_accepts(kPackRows, k, n);
  if (packing == Packing::now) p.packed();
  if (packing == Packing::small_tiles) p.packed_small();
}

void PreparedWeight::matmul_rows(const std::uint16_t* x, std::int64_t rows, std::uint16_t* out) const {
  if (rows <= 0) return;
  const Impl& p = *impl_;
  const std::int64_t k = p.k, n = p.n;
  const Route route = p.onednn ? route_of(p.dtype, rows, k, n) : Route::chain;
  if (route == Route::chain) return p.chain(x, rows, out);
  bool bf16_native = false;
  if (route == Route::onednn_bf16) {
    p.packed_small();
    bf16_native = p.bf16_route && bf16_dot_exact(x, static_cast<std::size_t>(rows * k));
    // Off the bf16 route: what route_of gives the same GEMM of FP16 (the chain kernel for small ones).
    if (!bf16_native && route_of(DType::f16, rows, k, n) == Route::chain) return p.chain(x, rows, out);
  }
  if (!bf16_native) p.packed_f32();
  try {
    dnnl::stream& s = thread_stream();
    if (bf16_native) {
      const Matmul mm = primitives().get(dt::bf16, rows, k, n, p.bf16_desc);
      dnnl::memory a({{rows, k}, dt::bf16, tag::ab}, cpu_engine(), const_cast<std::uint16_t*>(x));
      dnnl::memory c({{rows, n}, dt::bf16, tag::ab}, cpu_engine(), out);
      mm.prim.execute(s, {{DNNL_ARG_SRC, a},
                          {DNNL_ARG_WEIGHTS, p.bf16_packed},
                          {DNNL_ARG_DST, c},
                          {DNNL_ARG_SCRATCHPAD, thread_scratchpad(mm)}});
      s.wait();
      return;
    }
    float* xf = scratch(0, static_cast<std::size_t>(rows * k));
    float* cf = scratch(1, static_cast<std::size_t>(rows * n));
    numeric::to_float(p.dtype, x, xf, static_cast<std::size_t>(rows * k));
    const Matmul mm = primitives().get(dt::f32, rows, k, n, p.f32_desc);
    dnnl::memory a({{rows, k}, dt::f32, tag::ab}, cpu_engine(), xf);
    dnnl::memory c({{rows, n}, dt::f32, tag::ab}, cpu_engine(), cf);
    mm.prim.execute(
        s,
        {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, p.f32_packed}, {DNNL_ARG_DST, c}, {DNNL_ARG_SCRATCHPAD, thread_scratchpad(mm)}});
    s.wait();
    numeric::from_float(p.dtype, cf, out, static_cast<std::size_t>(rows * n));
  } catch (const dnnl::error& e) {
    fail(Errc::internal, p.param, "oneDNN matmul of {} x {} x {} failed: {}", rows, k, n, e.what());
  } catch (const std::bad_alloc&) {
    fail(Errc::out_of_memory, p.param,
         "expected {} bytes of host memory for the FP32 buffers of a {} x {} x {} row tile (rows x K x N), got an allocation "
         "failure",
         static_cast<std::uint64_t>(rows) * static_cast<std::uint64_t>(k + n) * 4, rows, k, n);
  }
}

}  // namespace gmmav::gemm
