// gemm_libraries.cpp — standalone measurement of the GEMM libraries available on the build
// machine (oneDNN 2.6.3 from Debian libdnnl-dev, OpenMP runtime; OpenBLAS 0.3.21 pthreads),
// used to choose the per-dtype GEMM path of the gmmav engine. Results: docs/gemm-measurements.md.
//
// Build (by hand; not part of the CMake build):
//   g++ -O2 -std=c++20 -I/usr/include/x86_64-linux-gnu/openblas-pthread bench/gemm_libraries.cpp -o /tmp/gemm_libraries -ldnnl
//   -lopenblas -fopenmp -pthread (GCC 12 with -Wall prints -Wmaybe-uninitialized false positives from its own avx512fintrin.h.)
// Run:
//   /tmp/gemm_libraries            (about 3.5 minutes on 2 idle cores; retries contended cells)
//   /tmp/gemm_libraries --quick    (3 repetitions everywhere, for a smoke test)
//   /tmp/gemm_libraries --only "OpenBLAS sgemm f32"   (re-measure the variants whose name matches)
//   ONEDNN_VERBOSE=1 additionally makes oneDNN print its own dispatch lines.
//
// Problem per expert: C[M,N] = A[M,K] * B[K,N], K = 7168, N = 4096, all row-major.
// M = 2048 is one whole expert block; M = 256 and M = 64 are row tiles of that block (the tile
// measured is the second tile, rows [M, 2M), so that its A/C pointers are offset like the engine's).
// Modes: "1t"   one library call with 1 thread;
//        "2t"   one library call with 2 threads (omp_set_num_threads / openblas_set_num_threads);
//        "pool" the engine's scheme: 2 std::threads, each computing whole row tiles of the 2048-row
//               block with 1-thread library calls (tiles handed out by an atomic counter);
//               the GFLOP/s is for all 2048 rows.
// Timing: one warm-up call, then the median (and minimum) of several repetitions.

#include <cblas.h>
#include <cpuid.h>
#include <immintrin.h>
#include <omp.h>
#include <sys/resource.h>
#include <unistd.h>
#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

using u16 = std::uint16_t;
using u32 = std::uint32_t;

static constexpr long K = 7168;
static constexpr long N = 4096;
static constexpr long MFULL = 2048;

static double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// ---------------------------------------------------------------------------------------------
// aligned, first-touched buffers
struct Buf {
  void* p = nullptr;
  size_t bytes = 0;
  Buf() = default;
  explicit Buf(size_t b) : bytes(b) {
    size_t r = (b + 4095) / 4096 * 4096;
    p = std::aligned_alloc(4096, r ? r : 4096);
    if (!p) {
      std::fprintf(stderr, "out of memory\n");
      std::exit(1);
    }
    std::memset(p, 0, r);
  }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  Buf(Buf&& o) noexcept : p(o.p), bytes(o.bytes) {
    o.p = nullptr;
    o.bytes = 0;
  }
  Buf& operator=(Buf&& o) noexcept {
    std::swap(p, o.p);
    std::swap(bytes, o.bytes);
    return *this;
  }
  ~Buf() { std::free(p); }
  template <class T>
  T* as() const {
    return static_cast<T*>(p);
  }
};

// ---------------------------------------------------------------------------------------------
// scalar reference conversions (exact; RNE; subnormals kept)
static float bits_f32(u32 u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
static u32 f32_bits(float f) {
  u32 u;
  std::memcpy(&u, &f, 4);
  return u;
}

static u16 f32_to_bf16_scalar(float f) {
  u32 u = f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return u16((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return u16(u >> 16);
}
static float bf16_to_f32_scalar(u16 h) { return bits_f32(u32(h) << 16); }

static float f16_to_f32_scalar(u16 h) {
  u32 sign = u32(h & 0x8000) << 16;
  u32 exp = (h >> 10) & 0x1f;
  u32 man = h & 0x3ff;
  if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | (man << 13));
  if (exp == 0) {
    if (man == 0) return bits_f32(sign);
    float v = std::ldexp(float(man), -24);  // exact
    return sign ? -v : v;
  }
  return bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}
static u16 f32_to_f16_scalar(float f) {
  u32 u = f32_bits(f);
  u32 sign = (u >> 16) & 0x8000;
  u32 a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return u16(sign | 0x7e00 | ((a >> 13) & 0x3ff));
  if (a >= 0x477ff000u) return u16(sign | 0x7c00);  // rounds to inf (>= 65520)
  if (a < 0x38800000u) {                            // result subnormal or zero
    // value * 2^24 rounded to nearest even integer gives the subnormal mantissa
    float v = bits_f32(a);
    float m = std::nearbyint(std::ldexp(v, 24));  // default rounding mode is RNE
    return u16(sign | u32(m));                    // m <= 1024 (1024 = min normal, correct)
  }
  u32 r = a + 0xfffu + ((a >> 13) & 1u);
  return u16(sign | ((r - 0x38000000u) >> 13));
}

// ---------------------------------------------------------------------------------------------
// SIMD conversions with runtime dispatch (AVX-512F, else AVX2+F16C, else scalar)
static bool cpu_has_f16c() {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  return (c & (1u << 29)) != 0 && __builtin_cpu_supports("avx2");
}
static const bool g_avx512 = __builtin_cpu_supports("avx512f");
static const bool g_f16c = cpu_has_f16c();

__attribute__((target("avx512f"))) static void cvt_f16_f32_512(const u16* s, float* d, size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(d + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i))));
  for (; i < n; ++i) d[i] = f16_to_f32_scalar(s[i]);
}
__attribute__((target("avx2,f16c"))) static void cvt_f16_f32_256(const u16* s, float* d, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i))));
  for (; i < n; ++i) d[i] = f16_to_f32_scalar(s[i]);
}
static void cvt_f16_f32_sc(const u16* s, float* d, size_t n) {
  for (size_t i = 0; i < n; ++i) d[i] = f16_to_f32_scalar(s[i]);
}
__attribute__((target("avx512f"))) static void cvt_f32_f16_512(const float* s, u16* d, size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + i),
                        _mm512_cvtps_ph(_mm512_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  for (; i < n; ++i) d[i] = f32_to_f16_scalar(s[i]);
}
__attribute__((target("avx2,f16c"))) static void cvt_f32_f16_256(const float* s, u16* d, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i), _mm256_cvtps_ph(_mm256_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < n; ++i) d[i] = f32_to_f16_scalar(s[i]);
}
static void cvt_f32_f16_sc(const float* s, u16* d, size_t n) {
  for (size_t i = 0; i < n; ++i) d[i] = f32_to_f16_scalar(s[i]);
}
__attribute__((target("avx512f"))) static void cvt_bf16_f32_512(const u16* s, float* d, size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i)));
    _mm512_storeu_ps(d + i, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
  }
  for (; i < n; ++i) d[i] = bf16_to_f32_scalar(s[i]);
}
__attribute__((target("avx2"))) static void cvt_bf16_f32_256(const u16* s, float* d, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i)));
    _mm256_storeu_ps(d + i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
  }
  for (; i < n; ++i) d[i] = bf16_to_f32_scalar(s[i]);
}
static void cvt_bf16_f32_sc(const u16* s, float* d, size_t n) {
  for (size_t i = 0; i < n; ++i) d[i] = bf16_to_f32_scalar(s[i]);
}
// f32 -> bf16, RNE, subnormals kept, NaN quieted (integer arithmetic: no DAZ/FTZ involved)
__attribute__((target("avx512f"))) static void cvt_f32_bf16_512(const float* s, u16* d, size_t n) {
  const __m512i one = _mm512_set1_epi32(1), bias = _mm512_set1_epi32(0x7fff);
  const __m512i absm = _mm512_set1_epi32(0x7fffffff), inf = _mm512_set1_epi32(0x7f800000);
  const __m512i qbit = _mm512_set1_epi32(0x40);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512i u = _mm512_castps_si512(_mm512_loadu_ps(s + i));
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), one);
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, bias)), 16);
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, absm), inf);
    r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(_mm512_srli_epi32(u, 16), qbit));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + i), _mm512_cvtepi32_epi16(r));
  }
  for (; i < n; ++i) d[i] = f32_to_bf16_scalar(s[i]);
}
static void cvt_f32_bf16_sc(const float* s, u16* d, size_t n) {
  for (size_t i = 0; i < n; ++i) d[i] = f32_to_bf16_scalar(s[i]);
}

using CvtHF = void (*)(const u16*, float*, size_t);
using CvtFH = void (*)(const float*, u16*, size_t);
static CvtHF g_f16_f32 = g_avx512 ? cvt_f16_f32_512 : g_f16c ? cvt_f16_f32_256 : cvt_f16_f32_sc;
static CvtFH g_f32_f16 = g_avx512 ? cvt_f32_f16_512 : g_f16c ? cvt_f32_f16_256 : cvt_f32_f16_sc;
static CvtHF g_bf16_f32 = g_avx512 ? cvt_bf16_f32_512 : __builtin_cpu_supports("avx2") ? cvt_bf16_f32_256 : cvt_bf16_f32_sc;
static CvtFH g_f32_bf16 = g_avx512 ? cvt_f32_bf16_512 : cvt_f32_bf16_sc;

template <class S, class D>
static void par_convert(void (*fn)(const S*, D*, size_t), const S* s, D* d, size_t n, int nt) {
  if (nt <= 1) {
    fn(s, d, n);
    return;
  }
#pragma omp parallel num_threads(nt)
  {
    int t = omp_get_thread_num(), T = omp_get_num_threads();
    size_t chunk = (n / T + 63) / 64 * 64;
    size_t b = std::min(n, chunk * t), e = std::min(n, b + chunk);
    if (t == T - 1) e = n;
    if (e > b) fn(s + b, d + b, e - b);
  }
}

// ---------------------------------------------------------------------------------------------
// contention monitor: CPU time used on this machine by anything other than this process, and
// hypervisor steal time, as a share of the 2 CPUs' wall time during a measurement
struct CpuSample {
  double busy_s = 0, steal_s = 0, self_s = 0, wall = 0;
};
static CpuSample cpu_sample() {
  CpuSample c;
  static const double hz = double(sysconf(_SC_CLK_TCK));
  if (FILE* f = std::fopen("/proc/stat", "r")) {
    unsigned long long v[8] = {};
    if (std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) ==
        8) {
      c.busy_s = double(v[0] + v[1] + v[2] + v[5] + v[6]) / hz;
      c.steal_s = double(v[7]) / hz;
    }
    std::fclose(f);
  }
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  c.self_s = double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + 1e-6 * double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
  c.wall = now_s();
  return c;
}
static const double g_ncpu = double(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));

// timing
struct Stat {
  double med = 0, min = 0, other = 0, steal = 0;
};  // other/steal: fraction of all CPUs
static Stat measure_once(const std::function<void()>& fn, int reps) {
  fn();  // warm-up
  std::vector<double> t;
  CpuSample a = cpu_sample();
  for (int r = 0; r < reps; ++r) {
    double t0 = now_s();
    fn();
    t.push_back(now_s() - t0);
  }
  CpuSample b = cpu_sample();
  std::sort(t.begin(), t.end());
  double cap = (b.wall - a.wall) * g_ncpu;
  double other = std::max(0.0, (b.busy_s - a.busy_s) - (b.self_s - a.self_s)) / cap;
  return {t[t.size() / 2], t.front(), other, (b.steal_s - a.steal_s) / cap};
}
// The machine is shared: when others took > 10 % of the CPUs during a measurement, wait and
// measure again (at most 2 more times, within a global budget of 90 s of retries); keep the
// least contended attempt.
static double g_retry_budget_s = 90;
static Stat measure(const std::function<void()>& fn, int reps) {
  Stat best = measure_once(fn, reps);
  for (int attempt = 0; attempt < 2 && best.other + best.steal > 0.10 && g_retry_budget_s > 0; ++attempt) {
    double t0 = now_s();
    std::this_thread::sleep_for(std::chrono::seconds(2));
    Stat s = measure_once(fn, reps);
    if (s.other + s.steal < best.other + best.steal) best = s;
    g_retry_budget_s -= now_s() - t0;
  }
  return best;
}
static std::string load_str(const Stat& s) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "[others %2.0f%%, steal %2.0f%% of CPUs]%s", 100 * s.other, 100 * s.steal,
                (s.other + s.steal) > 0.10 ? " CONTENDED" : "");
  return buf;
}
static double gflops(long M, double sec) { return 2.0 * double(M) * K * N / sec * 1e-9; }

// ---------------------------------------------------------------------------------------------
// oneDNN helpers
using namespace dnnl;
using mdt = memory::data_type;
using mtag = memory::format_tag;

static engine g_eng(engine::kind::cpu, 0);

struct Mm {
  matmul::primitive_desc pd;
  matmul prim;
  memory::desc a, b, c;
};
static std::mutex g_mm_mu;
static std::map<std::tuple<int, long, bool, int>, std::shared_ptr<Mm>> g_mm_cache;

static const char* dt_name(mdt t) { return t == mdt::bf16 ? "bf16" : t == mdt::f32 ? "f32" : t == mdt::f16 ? "f16" : "?"; }

// primitive for C[M,N] = A[M,K]*B[K,N] in dtype t, created with nt OpenMP threads
static std::shared_ptr<Mm> get_mm(mdt t, long M, bool packed, int nt, long Kd = K, long Nd = N) {
  std::lock_guard<std::mutex> lk(g_mm_mu);
  auto key = std::make_tuple(int(t) * 1000 + int(Kd == K), M, packed, nt);
  if (Kd == K && Nd == N) {
    auto it = g_mm_cache.find(key);
    if (it != g_mm_cache.end()) return it->second;
  }
  omp_set_num_threads(nt);
  memory::desc a({M, Kd}, t, mtag::ab), b({Kd, Nd}, t, packed ? mtag::any : mtag::ab), c({M, Nd}, t, mtag::ab);
  double t0 = now_s();
  matmul::desc d(a, b, c);
  // user-managed scratchpad: the default library scratchpad of this oneDNN build is shared by all
  // primitives and is unsafe when a primitive runs on a thread other than its creator's (see the
  // "pool, library scratchpad" check in main); each worker passes its own scratchpad buffer.
  primitive_attr attr;
  attr.set_scratchpad_mode(scratchpad_mode::user);
  matmul::primitive_desc pd(d, attr, g_eng);
  auto m = std::make_shared<Mm>(Mm{pd, matmul(pd), a, pd.weights_desc(), c});
  double t1 = now_s();
  std::printf("  [oneDNN] matmul %s M=%ld K=%ld N=%ld weights=%s threads=%d -> impl '%s' (create %.2f ms, scratchpad %.2f MiB)\n",
              dt_name(t), M, Kd, Nd, packed ? "any(packed)" : "ab(plain)", nt, pd.impl_info_str(), (t1 - t0) * 1e3,
              pd.scratchpad_desc().get_size() / 1048576.0);
  if (Kd == K && Nd == N) g_mm_cache[key] = m;
  return m;
}
// per-worker state: conversion buffers for the routes, a stream and a oneDNN scratchpad
struct Scratch {
  Buf Af32, Cf32, pad;
  std::unique_ptr<stream> s;
  Scratch() : Af32(sizeof(float) * MFULL * K), Cf32(sizeof(float) * MFULL * N), s(new stream(g_eng)) {}
};
static void mm_exec(const Mm& m, Scratch& sc, const void* A, const void* B, void* C) {
  memory::desc pdsc = m.pd.scratchpad_desc();
  if (pdsc.get_size() > sc.pad.bytes) sc.pad = Buf(pdsc.get_size());
  memory am(m.a, g_eng, const_cast<void*>(A)), bm(m.b, g_eng, const_cast<void*>(B)), cm(m.c, g_eng, C);
  memory pm(pdsc, g_eng, sc.pad.p);
  m.prim.execute(*sc.s, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}, {DNNL_ARG_SCRATCHPAD, pm}});
  sc.s->wait();
}

static const char* isa_name(cpu_isa i) {
  switch (i) {
    case cpu_isa::sse41:
      return "sse41";
    case cpu_isa::avx:
      return "avx";
    case cpu_isa::avx2:
      return "avx2";
    case cpu_isa::avx512_core:
      return "avx512_core";
    case cpu_isa::avx512_core_vnni:
      return "avx512_core_vnni";
    case cpu_isa::avx512_core_bf16:
      return "avx512_core_bf16";
    case cpu_isa::avx512_core_amx:
      return "avx512_core_amx";
    case cpu_isa::avx2_vnni:
      return "avx2_vnni";
    default:
      return "other";
  }
}

// ---------------------------------------------------------------------------------------------
// data
struct Data {
  Buf A_bf16, B_bf16, A_f32, B_f32;  // f32 = bf16 values widened (exactly)
  Buf A_f16, B_f16, B_f32_of_f16;    // fp16 inputs and the fp16 B converted to f32
  Buf B_bf16_packed, B_f32_packed, B_f32_packed_of_f16;
  memory::desc bf16_packed_desc, f32_packed_desc;
};

static u32 g_rng = 0x12345678u;
static float rnd() {  // uniform in [-1, 1)
  g_rng ^= g_rng << 13;
  g_rng ^= g_rng >> 17;
  g_rng ^= g_rng << 5;
  return float(int32_t(g_rng)) * (1.0f / 2147483648.0f);
}

// A variant computes rows [row0, row0+M) of the 2048-row problem into Cfull (ldc = N).
struct Variant {
  std::string name;
  int out_bytes;
  bool openblas;
  std::function<void(long M, long row0, int nt, void* Cfull, Scratch& sc)> run;
};

static void sgemm_rows(const float* A, const float* B, float* C, long M, int nt) {
  openblas_set_num_threads(nt);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(M), int(N), int(K), 1.0f, A, int(K), B, int(N), 0.0f, C, int(N));
}

// ---------------------------------------------------------------------------------------------
// comparison of results
struct Cmp {
  long differ = 0;
  long total = 0;
  double max_ulp = 0;
};
static Cmp compare(const void* x, const void* y, long rows, int bytes) {
  Cmp c;
  c.total = rows * N;
  for (long i = 0; i < rows * N; ++i) {
    double a, b;
    long ia, ib;
    if (bytes == 4) {
      u32 ua = static_cast<const u32*>(x)[i], ub = static_cast<const u32*>(y)[i];
      if (ua == ub) continue;
      ia = (ua & 0x80000000u) ? -long(ua & 0x7fffffffu) : long(ua);
      ib = (ub & 0x80000000u) ? -long(ub & 0x7fffffffu) : long(ub);
    } else {
      u16 ua = static_cast<const u16*>(x)[i], ub = static_cast<const u16*>(y)[i];
      if (ua == ub) continue;
      ia = (ua & 0x8000) ? -long(ua & 0x7fff) : long(ua);
      ib = (ub & 0x8000) ? -long(ub & 0x7fff) : long(ub);
    }
    ++c.differ;
    a = double(ia);
    b = double(ib);
    c.max_ulp = std::max(c.max_ulp, std::fabs(a - b));
  }
  return c;
}
static std::string cmp_str(const Cmp& c) {
  char buf[160];
  if (c.differ == 0)
    std::snprintf(buf, sizeof buf, "bit-identical (%ld values)", c.total);
  else
    std::snprintf(buf, sizeof buf, "DIFFER: %ld of %ld values (%.3f%%), max %.0f ulp", c.differ, c.total,
                  100.0 * double(c.differ) / double(c.total), c.max_ulp);
  return buf;
}

// ---------------------------------------------------------------------------------------------
// subnormal test (c): uses the benchmark's own M=64 primitives (K=7168, N=4096)
static void subnormal_tests(Scratch& sc) {
  std::printf("\n== (c) subnormal handling, M=64 K=%ld N=%ld, 1 thread (same primitives as the benchmark) ==\n", K, N);
  const long M = 64;
  // inputs as float values; all exactly representable in bf16 (and f32)
  std::vector<float> a(M * K, 0.0f), b(K * N, 0.0f);
  const float s133 = std::ldexp(1.0f, -133);  // smallest bf16 subnormal (bf16 0x0001)
  for (long k = 0; k < 32; ++k) {
    a[0 * K + k] = s133;
    b[k * N + 0] = 1.0f;
  }  // C00 = 2^-128
  for (long k = 32; k < 64; ++k) {
    a[1 * K + k] = std::ldexp(1.0f, -65);
    b[k * N + 1] = std::ldexp(1.0f, -65);
  }  // 32 x 2^-130 = 2^-125
  a[2 * K + 64] = std::ldexp(1.0f, -63);
  b[64 * N + 2] = std::ldexp(1.0f + 1.0f / 128, -63);
  a[2 * K + 65] = std::ldexp(1.0f, -63);
  b[65 * N + 2] = -std::ldexp(1.0f, -63);  // C22 = 2^-133
  const float expect[3] = {std::ldexp(1.0f, -128), std::ldexp(1.0f, -125), std::ldexp(1.0f, -133)};
  const char* what[3] = {"subnormal bf16 input 2^-133 x 1.0, 32 terms -> 2^-128 (subnormal out)",
                         "normal inputs 2^-65 x 2^-65: products 2^-130 underflow, 32 terms -> 2^-125 (normal out)",
                         "normal products 2^-126(1+2^-7) - 2^-126 -> 2^-133 (subnormal out by cancellation)"};
  Buf Ab(2 * M * K), Bb(2 * K * N), Af(4 * M * K), Bf(4 * K * N), Cb(2 * M * N), Cf(4 * M * N);
  for (long i = 0; i < M * K; ++i) {
    Ab.as<u16>()[i] = f32_to_bf16_scalar(a[i]);
    Af.as<float>()[i] = a[i];
  }
  for (long i = 0; i < K * N; ++i) {
    Bb.as<u16>()[i] = f32_to_bf16_scalar(b[i]);
    Bf.as<float>()[i] = b[i];
  }
  unsigned csr = _mm_getcsr();
  std::printf("  MXCSR before: 0x%04x (FTZ=%d DAZ=%d)\n", csr, !!(csr & 0x8000), !!(csr & 0x40));
  auto report_bf16 = [&](const char* name, const u16* C) {
    for (int t = 0; t < 3; ++t) {
      u16 got = C[t * N + t], want = f32_to_bf16_scalar(expect[t]);
      std::printf("  %-24s case %d: got bf16 0x%04x (%g) want 0x%04x (%g) %s   [%s]\n", name, t, got, bf16_to_f32_scalar(got),
                  want, bf16_to_f32_scalar(want), got == want ? "OK" : "FLUSHED/WRONG", what[t]);
    }
  };
  auto report_f32 = [&](const char* name, const float* C) {
    for (int t = 0; t < 3; ++t) {
      float got = C[t * N + t];
      std::printf("  %-24s case %d: got f32 0x%08x (%g) want 0x%08x (%g) %s\n", name, t, f32_bits(got), got, f32_bits(expect[t]),
                  expect[t], f32_bits(got) == f32_bits(expect[t]) ? "OK" : "FLUSHED/WRONG");
    }
  };
  // oneDNN bf16 plain
  {
    auto m = get_mm(mdt::bf16, M, false, 1);
    omp_set_num_threads(1);
    mm_exec(*m, sc, Ab.p, Bb.p, Cb.p);
    report_bf16("oneDNN bf16 plain", Cb.as<u16>());
  }
  // oneDNN bf16 packed
  {
    auto m = get_mm(mdt::bf16, M, true, 1);
    memory src({{K, N}, mdt::bf16, mtag::ab}, g_eng, Bb.p);
    memory dst(m->b, g_eng);
    stream s(g_eng);
    reorder(src, dst).execute(s, src, dst);
    s.wait();
    std::memset(Cb.p, 0, Cb.bytes);
    mm_exec(*m, sc, Ab.p, dst.get_data_handle(), Cb.p);
    report_bf16("oneDNN bf16 packed", Cb.as<u16>());
  }
  // oneDNN bf16 matmul with f32 output: shows whether the flush happens in the dot product
  // itself (vdpbf16ps) or only in the final f32->bf16 conversion
  try {
    omp_set_num_threads(1);
    memory::desc ad({M, K}, mdt::bf16, mtag::ab), bd({K, N}, mdt::bf16, mtag::ab), cd({M, N}, mdt::f32, mtag::ab);
    matmul::primitive_desc pd(matmul::desc(ad, bd, cd), g_eng);
    std::printf("  [oneDNN] matmul bf16 x bf16 -> f32 M=64: impl '%s'\n", pd.impl_info_str());
    memory am(ad, g_eng, Ab.p), bm(bd, g_eng, Bb.p), cm(cd, g_eng, Cf.p);
    matmul(pd).execute(*sc.s, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}});
    sc.s->wait();
    report_f32("oneDNN bf16->f32 out", Cf.as<float>());
  } catch (const dnnl::error& e) {
    std::printf("  oneDNN bf16 x bf16 -> f32: not available (%s)\n", e.what());
  }
  // oneDNN f32 plain / packed
  {
    auto m = get_mm(mdt::f32, M, false, 1);
    std::memset(Cf.p, 0, Cf.bytes);
    mm_exec(*m, sc, Af.p, Bf.p, Cf.p);
    report_f32("oneDNN f32 plain", Cf.as<float>());
    auto mp = get_mm(mdt::f32, M, true, 1);
    memory src({{K, N}, mdt::f32, mtag::ab}, g_eng, Bf.p);
    memory dst(mp->b, g_eng);
    stream s(g_eng);
    reorder(src, dst).execute(s, src, dst);
    s.wait();
    std::memset(Cf.p, 0, Cf.bytes);
    mm_exec(*mp, sc, Af.p, dst.get_data_handle(), Cf.p);
    report_f32("oneDNN f32 packed", Cf.as<float>());
  }
  // OpenBLAS sgemm
  {
    std::memset(Cf.p, 0, Cf.bytes);
    sgemm_rows(Af.as<float>(), Bf.as<float>(), Cf.as<float>(), M, 1);
    report_f32("OpenBLAS sgemm", Cf.as<float>());
  }
  // bf16 route: bf16->f32 shift, sgemm, software RNE f32->bf16
  {
    g_bf16_f32(Ab.as<u16>(), sc.Af32.as<float>(), M * K);
    Buf Bw(4 * K * N);
    g_bf16_f32(Bb.as<u16>(), Bw.as<float>(), K * N);
    sgemm_rows(sc.Af32.as<float>(), Bw.as<float>(), sc.Cf32.as<float>(), M, 1);
    g_f32_bf16(sc.Cf32.as<float>(), Cb.as<u16>(), M * N);
    report_bf16("bf16 route (sgemm)", Cb.as<u16>());
  }
  // fp16 route: fp16 subnormals
  {
    std::vector<float> a16(M * K, 0.0f), b16(K * N, 0.0f);
    for (long k = 0; k < 32; ++k) {
      a16[0 * K + k] = std::ldexp(1.0f, -24);
      b16[k * N + 0] = 1.0f;
    }  // 2^-19
    for (long k = 32; k < 64; ++k) {
      a16[1 * K + k] = std::ldexp(1.0f, -13);
      b16[k * N + 1] = std::ldexp(1.0f, -13);
    }  // 32 x 2^-26 = 2^-21
    a16[2 * K + 64] = std::ldexp(1.0f, -7);
    b16[64 * N + 2] = std::ldexp(1.0f + 1.0f / 1024, -7);
    a16[2 * K + 65] = std::ldexp(1.0f, -7);
    b16[65 * N + 2] = -std::ldexp(1.0f, -7);  // 2^-24
    const float e16[3] = {std::ldexp(1.0f, -19), std::ldexp(1.0f, -21), std::ldexp(1.0f, -24)};
    Buf Ah(2 * M * K), Bh(2 * K * N), Ch(2 * M * N), Bw(4 * K * N);
    for (long i = 0; i < M * K; ++i) Ah.as<u16>()[i] = f32_to_f16_scalar(a16[i]);
    for (long i = 0; i < K * N; ++i) Bh.as<u16>()[i] = f32_to_f16_scalar(b16[i]);
    g_f16_f32(Ah.as<u16>(), sc.Af32.as<float>(), M * K);
    g_f16_f32(Bh.as<u16>(), Bw.as<float>(), K * N);
    sgemm_rows(sc.Af32.as<float>(), Bw.as<float>(), sc.Cf32.as<float>(), M, 1);
    g_f32_f16(sc.Cf32.as<float>(), Ch.as<u16>(), M * N);
    for (int t = 0; t < 3; ++t) {
      u16 got = Ch.as<u16>()[t * N + t], want = f32_to_f16_scalar(e16[t]);
      std::printf("  %-24s case %d: got fp16 0x%04x want 0x%04x %s (fp16 subnormal inputs/outputs)\n", "fp16 route (sgemm)", t,
                  got, want, got == want ? "OK" : "FLUSHED/WRONG");
    }
  }
  csr = _mm_getcsr();
  std::printf("  MXCSR after:  0x%04x (FTZ=%d DAZ=%d)\n", csr, !!(csr & 0x8000), !!(csr & 0x40));
}

// ---------------------------------------------------------------------------------------------
int main(int argc, char** argv) {
  bool quick = false;
  std::string only;  // --only SUBSTRING: run just the variants whose name contains it
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick")
      quick = true;
    else if (a == "--only" && i + 1 < argc)
      only = argv[++i];
    else {
      std::fprintf(stderr, "usage: %s [--quick] [--only SUBSTRING]\n", argv[0]);
      return 2;
    }
  }
  auto reps_for = [&](long M) { return quick ? 3 : (M >= 2048 ? 5 : M >= 256 ? 7 : 11); };
  const int reps_pool = quick ? 3 : 5;
  setvbuf(stdout, nullptr, _IOLBF, 0);

  const dnnl_version_t* v = dnnl_version();
  std::printf("oneDNN %d.%d.%d (cpu runtime %s), effective ISA: %s\n", v->major, v->minor, v->patch,
              v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "other", isa_name(get_effective_cpu_isa()));
  std::printf("OpenBLAS: corename '%s', config '%s'\n", openblas_get_corename(), openblas_get_config());
  std::printf("conversions: fp16<->f32 via %s; bf16->f32 via %s; f32->bf16 via %s (integer RNE)\n",
              g_avx512 ? "AVX-512F vcvtph2ps/vcvtps2ph"
              : g_f16c ? "F16C (256-bit)"
                       : "scalar",
              g_avx512 ? "AVX-512F shift" : "AVX2/scalar shift", g_avx512 ? "AVX-512F" : "scalar");
  std::printf("omp_get_max_threads()=%d, hardware_concurrency=%u\n", omp_get_max_threads(), std::thread::hardware_concurrency());
  std::printf("shape: K=%ld N=%ld, M in {2048, 256, 64}; reps: %d/%d/%d (+1 warm-up), pool %d\n\n", K, N, reps_for(2048),
              reps_for(256), reps_for(64), reps_pool);

  // ---- data
  Data d;
  d.A_bf16 = Buf(2 * MFULL * K);
  d.B_bf16 = Buf(2 * K * N);
  d.A_f32 = Buf(4 * MFULL * K);
  d.B_f32 = Buf(4 * K * N);
  d.A_f16 = Buf(2 * MFULL * K);
  d.B_f16 = Buf(2 * K * N);
  d.B_f32_of_f16 = Buf(4 * K * N);
  for (long i = 0; i < MFULL * K; ++i) {
    u16 h = f32_to_bf16_scalar(rnd());
    d.A_bf16.as<u16>()[i] = h;
    d.A_f32.as<float>()[i] = bf16_to_f32_scalar(h);
    d.A_f16.as<u16>()[i] = f32_to_f16_scalar(rnd());
  }
  for (long i = 0; i < K * N; ++i) {
    u16 h = f32_to_bf16_scalar(rnd());
    d.B_bf16.as<u16>()[i] = h;
    d.B_f32.as<float>()[i] = bf16_to_f32_scalar(h);
    d.B_f16.as<u16>()[i] = f32_to_f16_scalar(rnd());
  }
  // self-check of the SIMD conversions against the scalar reference on all fp16/bf16 bit patterns
  {
    std::vector<u16> all(65536);
    std::vector<float> f(65536), g(65536);
    for (int i = 0; i < 65536; ++i) all[i] = u16(i);
    g_f16_f32(all.data(), f.data(), 65536);
    long bad = 0;
    for (int i = 0; i < 65536; ++i) {
      float r = f16_to_f32_scalar(u16(i));
      if (f32_bits(f[i]) != f32_bits(r) && !(std::isnan(f[i]) && std::isnan(r))) ++bad;
    }
    // f32 -> fp16 on a sweep of f32 bit patterns around the fp16 range, incl. subnormals and ties
    std::vector<float> src;
    std::vector<u16> h1, h2;
    for (u32 u = 0x33000000u; u < 0x47800000u; u += 0x1ffu) {
      src.push_back(bits_f32(u));
      src.push_back(-bits_f32(u));
    }
    h1.resize(src.size());
    h2.resize(src.size());
    g_f32_f16(src.data(), h1.data(), src.size());
    cvt_f32_f16_sc(src.data(), h2.data(), src.size());
    long bad2 = 0;
    for (size_t i = 0; i < src.size(); ++i) bad2 += h1[i] != h2[i];
    std::vector<u16> b1(src.size()), b2(src.size());
    for (u32 u = 0; u < 0x00800000u; u += 0x3fu) {
      src.push_back(bits_f32(u));
    }  // f32 subnormals
    b1.resize(src.size());
    b2.resize(src.size());
    g_f32_bf16(src.data(), b1.data(), src.size());
    cvt_f32_bf16_sc(src.data(), b2.data(), src.size());
    long bad3 = 0;
    for (size_t i = 0; i < src.size(); ++i) bad3 += b1[i] != b2[i];
    std::printf("conversion self-check: f16->f32 %ld mismatches / 65536; f32->f16 %ld / %zu; f32->bf16 %ld / %zu\n\n", bad, bad2,
                h1.size(), bad3, b1.size());
  }

  // ---- B preparation costs (once per expert per call)
  std::printf("== B (K x N = %ld x %ld) preparation costs, median of 5 ==\n", K, N);
  std::map<std::string, double> prep;  // name/nt -> seconds
  for (int nt : {1, 2}) {
    omp_set_num_threads(nt);
    Stat s = measure([&] { par_convert(g_f16_f32, d.B_f16.as<u16>(), d.B_f32_of_f16.as<float>(), size_t(K * N), nt); }, 5);
    prep["cvt_f16/" + std::to_string(nt)] = s.med;
    std::printf("  fp16->f32 convert B, %d thread(s): %.2f ms (min %.2f) = %.2f GB/s read+write %s\n", nt, s.med * 1e3,
                s.min * 1e3, 6.0 * K * N / s.med * 1e-9, load_str(s).c_str());
    Buf tmp(4 * K * N);
    s = measure([&] { par_convert(g_bf16_f32, d.B_bf16.as<u16>(), tmp.as<float>(), size_t(K * N), nt); }, 5);
    prep["cvt_bf16/" + std::to_string(nt)] = s.med;
    std::printf("  bf16->f32 convert B, %d thread(s): %.2f ms (min %.2f) %s\n", nt, s.med * 1e3, s.min * 1e3,
                load_str(s).c_str());
  }
  // packed weight descriptors: are they the same for every M and thread count?
  {
    for (mdt t : {mdt::bf16, mdt::f32}) {
      auto ref = get_mm(t, MFULL, true, 1);
      bool same = true;
      for (long M : {2048L, 256L, 64L})
        for (int nt : {1, 2}) same = same && (get_mm(t, M, true, nt)->b == ref->b);
      std::printf("  %s packed weights desc identical for M in {2048,256,64} x threads in {1,2}: %s\n", dt_name(t),
                  same ? "yes (one reorder serves all tiles)" : "NO (reorder per primitive)");
      (t == mdt::bf16 ? d.bf16_packed_desc : d.f32_packed_desc) = ref->b;
    }
    d.B_bf16_packed = Buf(d.bf16_packed_desc.get_size());
    d.B_f32_packed = Buf(d.f32_packed_desc.get_size());
    d.B_f32_packed_of_f16 = Buf(d.f32_packed_desc.get_size());
    Buf fused_f16(d.f32_packed_desc.get_size());
    bool fused_ok = false;
    for (int nt : {1, 2}) {
      omp_set_num_threads(nt);
      stream s(g_eng);
      {
        memory src({{K, N}, mdt::bf16, mtag::ab}, g_eng, d.B_bf16.p);
        memory dst(d.bf16_packed_desc, g_eng, d.B_bf16_packed.p);
        reorder r(src, dst);
        Stat st = measure(
            [&] {
              r.execute(s, src, dst);
              s.wait();
            },
            5);
        prep["reorder_bf16/" + std::to_string(nt)] = st.med;
        std::printf("  oneDNN reorder bf16 B plain->packed, %d thread(s): %.2f ms (min %.2f) %s\n", nt, st.med * 1e3,
                    st.min * 1e3, load_str(st).c_str());
      }
      {
        memory src({{K, N}, mdt::f32, mtag::ab}, g_eng, d.B_f32.p);
        memory dst(d.f32_packed_desc, g_eng, d.B_f32_packed.p);
        reorder r(src, dst);
        Stat st = measure(
            [&] {
              r.execute(s, src, dst);
              s.wait();
            },
            5);
        prep["reorder_f32/" + std::to_string(nt)] = st.med;
        std::printf("  oneDNN reorder f32 B plain->packed, %d thread(s): %.2f ms (min %.2f) %s\n", nt, st.med * 1e3, st.min * 1e3,
                    load_str(st).c_str());
      }
      try {  // fused bf16 plain -> f32 packed (exact widening) in one oneDNN reorder
        Buf tmp(d.f32_packed_desc.get_size());
        memory src({{K, N}, mdt::bf16, mtag::ab}, g_eng, d.B_bf16.p);
        memory dst(d.f32_packed_desc, g_eng, tmp.p);
        reorder r(src, dst);
        Stat st = measure(
            [&] {
              r.execute(s, src, dst);
              s.wait();
            },
            5);
        prep["reorder_bf16_f32/" + std::to_string(nt)] = st.med;
        std::printf(
            "  oneDNN reorder bf16 B plain -> f32 packed (fused), %d thread(s): %.2f ms (min %.2f); same bytes as f32 reorder: "
            "%s\n",
            nt, st.med * 1e3, st.min * 1e3, std::memcmp(tmp.p, d.B_f32_packed.p, tmp.bytes) == 0 ? "yes" : "NO");
      } catch (const dnnl::error& e) {
        std::printf("  oneDNN reorder bf16 plain -> f32 packed: unavailable (%s)\n", e.what());
        prep["reorder_bf16_f32/" + std::to_string(nt)] =
            prep["cvt_bf16/" + std::to_string(nt)] + prep["reorder_f32/" + std::to_string(nt)];
      }
      try {  // fused fp16 plain -> f32 packed (exact widening) in one oneDNN reorder
        memory src({{K, N}, mdt::f16, mtag::ab}, g_eng, d.B_f16.p);
        memory dst(d.f32_packed_desc, g_eng, fused_f16.p);
        reorder r(src, dst);
        Stat st = measure(
            [&] {
              r.execute(s, src, dst);
              s.wait();
            },
            1);
        fused_ok = true;
        std::printf("  oneDNN reorder fp16 B plain -> f32 packed (fused), %d thread(s): %.2f ms (1 rep)\n", nt, st.med * 1e3);
      } catch (const dnnl::error& e) {
        std::printf("  oneDNN reorder fp16 plain -> f32 packed: unavailable (%s)\n", e.what());
      }
      {  // what the route uses: our fp16->f32 conversion, then the f32 plain->packed reorder
        memory src({{K, N}, mdt::f32, mtag::ab}, g_eng, d.B_f32_of_f16.p);
        memory dst(d.f32_packed_desc, g_eng, d.B_f32_packed_of_f16.p);
        reorder r(src, dst);
        Stat st = measure(
            [&] {
              par_convert(g_f16_f32, d.B_f16.as<u16>(), d.B_f32_of_f16.as<float>(), size_t(K * N), nt);
              r.execute(s, src, dst);
              s.wait();
            },
            5);
        prep["cvt_reorder_f16_f32/" + std::to_string(nt)] = st.med;
        std::printf("  fp16->f32 convert (ours) + oneDNN reorder f32 plain->packed, %d thread(s): %.2f ms (min %.2f) %s\n", nt,
                    st.med * 1e3, st.min * 1e3, load_str(st).c_str());
      }
    }
    // the fused reorder must give exactly the same packed bytes as convert-then-reorder
    if (fused_ok)
      std::printf("  fp16->f32 packed via fused oneDNN reorder == our convert + f32 reorder: %s\n",
                  std::memcmp(fused_f16.p, d.B_f32_packed_of_f16.p, fused_f16.bytes) == 0 ? "bit-identical" : "DIFFERENT");
  }

  // ---- variants
  std::vector<Variant> vars;
  auto dnnl_variant = [&](const std::string& name, mdt t, bool packed) {
    int ob = t == mdt::bf16 ? 2 : 4;
    const void* A = t == mdt::bf16 ? d.A_bf16.p : d.A_f32.p;
    const void* B = packed ? (t == mdt::bf16 ? d.B_bf16_packed.p : d.B_f32_packed.p) : (t == mdt::bf16 ? d.B_bf16.p : d.B_f32.p);
    vars.push_back({name, ob, false, [=](long M, long row0, int nt, void* C, Scratch& sc) {
                      auto m = get_mm(t, M, packed, nt);
                      omp_set_num_threads(nt);
                      mm_exec(*m, sc, static_cast<const char*>(A) + row0 * K * ob, B, static_cast<char*>(C) + row0 * N * ob);
                    }});
  };
  dnnl_variant("oneDNN bf16 plain", mdt::bf16, false);
  dnnl_variant("oneDNN bf16 packed", mdt::bf16, true);
  dnnl_variant("oneDNN f32 plain", mdt::f32, false);
  dnnl_variant("oneDNN f32 packed", mdt::f32, true);
  // conversion routes through oneDNN f32 with packed weights
  vars.push_back({"fp16 route, oneDNN f32 packed", 2, false, [&](long M, long row0, int nt, void* C, Scratch& sc) {
                    auto m = get_mm(mdt::f32, M, true, nt);
                    omp_set_num_threads(nt);
                    par_convert(g_f16_f32, d.A_f16.as<u16>() + row0 * K, sc.Af32.as<float>(), size_t(M * K), nt);
                    mm_exec(*m, sc, sc.Af32.p, d.B_f32_packed_of_f16.p, sc.Cf32.p);
                    par_convert(g_f32_f16, sc.Cf32.as<float>(), static_cast<u16*>(C) + row0 * N, size_t(M * N), nt);
                  }});
  vars.push_back({"bf16 route, oneDNN f32 packed", 2, false, [&](long M, long row0, int nt, void* C, Scratch& sc) {
                    auto m = get_mm(mdt::f32, M, true, nt);
                    omp_set_num_threads(nt);
                    par_convert(g_bf16_f32, d.A_bf16.as<u16>() + row0 * K, sc.Af32.as<float>(), size_t(M * K), nt);
                    mm_exec(*m, sc, sc.Af32.p, d.B_f32_packed.p, sc.Cf32.p);
                    par_convert(g_f32_bf16, sc.Cf32.as<float>(), static_cast<u16*>(C) + row0 * N, size_t(M * N), nt);
                  }});
  vars.push_back({"OpenBLAS sgemm f32", 4, true, [&](long M, long row0, int nt, void* C, Scratch&) {
                    sgemm_rows(d.A_f32.as<float>() + row0 * K, d.B_f32.as<float>(), static_cast<float*>(C) + row0 * N, M, nt);
                  }});
  vars.push_back({"fp16 route, OpenBLAS sgemm", 2, true, [&](long M, long row0, int nt, void* C, Scratch& sc) {
                    omp_set_num_threads(nt);
                    par_convert(g_f16_f32, d.A_f16.as<u16>() + row0 * K, sc.Af32.as<float>(), size_t(M * K), nt);
                    sgemm_rows(sc.Af32.as<float>(), d.B_f32_of_f16.as<float>(), sc.Cf32.as<float>(), M, nt);
                    par_convert(g_f32_f16, sc.Cf32.as<float>(), static_cast<u16*>(C) + row0 * N, size_t(M * N), nt);
                  }});
  vars.push_back({"bf16 route, OpenBLAS sgemm", 2, true, [&](long M, long row0, int nt, void* C, Scratch& sc) {
                    omp_set_num_threads(nt);
                    par_convert(g_bf16_f32, d.A_bf16.as<u16>() + row0 * K, sc.Af32.as<float>(), size_t(M * K), nt);
                    sgemm_rows(sc.Af32.as<float>(), d.B_f32.as<float>(), sc.Cf32.as<float>(), M, nt);
                    par_convert(g_f32_bf16, sc.Cf32.as<float>(), static_cast<u16*>(C) + row0 * N, size_t(M * N), nt);
                  }});

  Scratch main_sc;
  Scratch pool_sc[2];

  struct Row {
    std::string name;
    std::map<std::string, double> g;
    std::map<std::string, double> tmed;
    std::vector<std::string> contended;
  };
  std::vector<Row> table;
  std::vector<std::string> det_lines;
  std::map<std::string, Buf> refs;  // variant -> 1-thread M=2048 output

  double t_start = now_s();
  for (auto& var : vars) {
    if (!only.empty() && var.name.find(only) == std::string::npos) continue;
    std::printf("\n== %s ==\n", var.name.c_str());
    Row row{var.name, {}, {}, {}};
    const size_t cbytes = size_t(var.out_bytes) * MFULL * N;
    Buf ref(cbytes), out(cbytes);
    // 1 thread
    for (long M : {2048L, 256L, 64L}) {
      long row0 = M == MFULL ? 0 : M;
      Buf& dst = M == MFULL ? ref : out;
      Stat s = measure([&] { var.run(M, row0, 1, dst.p, main_sc); }, reps_for(M));
      std::string key = "M" + std::to_string(M) + "/1t";
      row.g[key] = gflops(M, s.med);
      row.tmed[key] = s.med;
      std::printf("  %-10s median %8.2f ms  min %8.2f ms  -> %6.1f GFLOP/s (best %6.1f) %s\n", key.c_str(), s.med * 1e3,
                  s.min * 1e3, gflops(M, s.med), gflops(M, s.min), load_str(s).c_str());
      if (s.other + s.steal > 0.10) row.contended.push_back(key);
      if (M != MFULL) {
        Cmp c = compare(static_cast<char*>(out.p) + row0 * N * var.out_bytes,
                        static_cast<char*>(ref.p) + row0 * N * var.out_bytes, M, var.out_bytes);
        std::string l = var.name + ": rows [" + std::to_string(row0) + "," + std::to_string(2 * row0) +
                        ") as M=" + std::to_string(M) + " tile vs inside M=2048 call (1 thread): " + cmp_str(c);
        std::printf("  (a/b) %s\n", l.c_str());
        det_lines.push_back("(a/b) " + l);
      }
    }
    // engine scheme: 2 workers x 1-thread calls on row tiles
    for (long M : {256L, 64L}) {
      // reference for the engine's invariant: the same tiles computed one after another on 1 thread
      Buf seq(cbytes);
      omp_set_num_threads(1);
      if (var.openblas) openblas_set_num_threads(1);
      for (long r0 = 0; r0 < MFULL; r0 += M) var.run(M, r0, 1, seq.p, main_sc);
      std::memset(out.p, 0, cbytes);
      auto pool_run = [&] {
        std::atomic<long> next{0};
        auto work = [&](int w) {
          omp_set_num_threads(1);
          for (;;) {
            long tile = next.fetch_add(1);
            if (tile * M >= MFULL) break;
            var.run(M, tile * M, 1, out.p, pool_sc[w]);
          }
        };
        std::thread t0(work, 0), t1(work, 1);
        t0.join();
        t1.join();
      };
      if (var.openblas) openblas_set_num_threads(1);
      Stat s = measure(pool_run, reps_pool);
      std::string key = "pool/M" + std::to_string(M);
      row.g[key] = gflops(MFULL, s.med);
      row.tmed[key] = s.med;
      std::printf(
          "  %-10s median %8.2f ms  min %8.2f ms  -> %6.1f GFLOP/s (best %6.1f)  [2 workers x 1-thread calls, 2048 rows in M=%ld "
          "tiles] %s\n",
          key.c_str(), s.med * 1e3, s.min * 1e3, gflops(MFULL, s.med), gflops(MFULL, s.min), M, load_str(s).c_str());
      if (s.other + s.steal > 0.10) row.contended.push_back(key);
      Cmp c = compare(out.p, seq.p, MFULL, var.out_bytes);
      std::string l = var.name + ": pool of 2 workers, M=" + std::to_string(M) +
                      " tiles, vs the same tiles sequentially on 1 thread: " + cmp_str(c);
      std::printf("  (d) %s\n", l.c_str());
      det_lines.push_back("(d) " + l);
      c = compare(out.p, ref.p, MFULL, var.out_bytes);
      l = var.name + ": pool of 2 workers, M=" + std::to_string(M) + " tiles, vs one 1-thread M=2048 call: " + cmp_str(c);
      std::printf("  (a/b/d) %s\n", l.c_str());
      det_lines.push_back("(a/b/d) " + l);
    }
    // 2 threads in one call
    for (long M : {2048L, 256L, 64L}) {
      long row0 = M == MFULL ? 0 : M;
      std::memset(out.p, 0, cbytes);
      Stat s = measure([&] { var.run(M, row0, 2, out.p, main_sc); }, reps_for(M));
      std::string key = "M" + std::to_string(M) + "/2t";
      row.g[key] = gflops(M, s.med);
      row.tmed[key] = s.med;
      std::printf("  %-10s median %8.2f ms  min %8.2f ms  -> %6.1f GFLOP/s (best %6.1f) %s\n", key.c_str(), s.med * 1e3,
                  s.min * 1e3, gflops(M, s.med), gflops(M, s.min), load_str(s).c_str());
      if (s.other + s.steal > 0.10) row.contended.push_back(key);
      Cmp c = compare(static_cast<char*>(out.p) + row0 * N * var.out_bytes, static_cast<char*>(ref.p) + row0 * N * var.out_bytes,
                      M, var.out_bytes);
      std::string l = var.name + ": M=" + std::to_string(M) + " call with 2 threads vs 1 thread: " + cmp_str(c);
      std::printf("  (d) %s\n", l.c_str());
      det_lines.push_back("(d) " + l);
    }
    if (var.openblas) openblas_set_num_threads(1);
    refs.emplace(var.name, std::move(ref));
    table.push_back(row);
    std::printf("  (elapsed %.0f s)\n", now_s() - t_start);
  }

  // ---- why user scratchpads: the same pool with oneDNN's default (library) scratchpad
  std::printf("\n== pool of 2 workers sharing primitives created on the main thread, DEFAULT library scratchpad ==\n");
  for (mdt t : {mdt::bf16, mdt::f32}) {
    const int ob = t == mdt::bf16 ? 2 : 4;
    const long M = 256;
    if (!refs.count(t == mdt::bf16 ? "oneDNN bf16 packed" : "oneDNN f32 packed")) continue;
    omp_set_num_threads(1);
    memory::desc ad({M, K}, t, mtag::ab), cd({M, N}, t, mtag::ab);
    memory::desc bd = t == mdt::bf16 ? d.bf16_packed_desc : d.f32_packed_desc;
    matmul::primitive_desc pd(matmul::desc(ad, bd, cd), g_eng);  // default attr: library scratchpad
    matmul prim(pd);
    const char* A = static_cast<const char*>(t == mdt::bf16 ? d.A_bf16.p : d.A_f32.p);
    const void* B = t == mdt::bf16 ? d.B_bf16_packed.p : d.B_f32_packed.p;
    Buf out(size_t(ob) * MFULL * N);
    std::atomic<long> next{0};
    auto work = [&](int) {
      omp_set_num_threads(1);
      stream s(g_eng);
      for (;;) {
        long tile = next.fetch_add(1);
        if (tile * M >= MFULL) break;
        memory am(ad, g_eng, const_cast<char*>(A) + tile * M * K * ob), bm(bd, g_eng, const_cast<void*>(B)),
            cm(cd, g_eng, static_cast<char*>(out.p) + tile * M * N * ob);
        prim.execute(s, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}});
        s.wait();
      }
    };
    std::thread t0(work, 0), t1(work, 1);
    t0.join();
    t1.join();
    const char* ref_name = t == mdt::bf16 ? "oneDNN bf16 packed" : "oneDNN f32 packed";
    std::string l = std::string(ref_name) + ", default library-managed scratchpad, pool M=256 vs 1-thread M=2048 call: " +
                    cmp_str(compare(out.p, refs.at(ref_name).p, MFULL, ob));
    std::printf("  %s\n", l.c_str());
    det_lines.push_back("(scratchpad) " + l);
  }

  // ---- cross-library agreement (informative: different summation orders)
  std::printf("\n== cross-library agreement, 1 thread, M=2048 ==\n");
  auto xcmp = [&](const char* a, const char* b, int bytes) {
    if (!refs.count(a) || !refs.count(b)) return;
    std::printf("  %-32s vs %-32s: %s\n", a, b, cmp_str(compare(refs.at(a).p, refs.at(b).p, MFULL, bytes)).c_str());
  };
  xcmp("oneDNN bf16 plain", "oneDNN bf16 packed", 2);
  xcmp("oneDNN bf16 plain", "bf16 route, OpenBLAS sgemm", 2);
  xcmp("bf16 route, oneDNN f32 packed", "bf16 route, OpenBLAS sgemm", 2);
  xcmp("oneDNN f32 plain", "oneDNN f32 packed", 4);
  xcmp("oneDNN f32 plain", "OpenBLAS sgemm f32", 4);
  xcmp("fp16 route, oneDNN f32 packed", "fp16 route, OpenBLAS sgemm", 2);

  // ---- subnormals
  omp_set_num_threads(1);
  openblas_set_num_threads(1);
  subnormal_tests(main_sc);

  // ---- summary table
  const char* cols[] = {"M2048/1t", "M256/1t", "M64/1t", "M2048/2t", "M256/2t", "M64/2t", "pool/M256", "pool/M64"};
  std::printf("\n== GFLOP/s (median) ==\n| variant | ");
  for (auto c : cols) std::printf("%s | ", c);
  std::printf("\n|---|");
  for (size_t i = 0; i < std::size(cols); ++i) std::printf("---:|");
  std::printf("\n");
  for (auto& r : table) {
    std::printf("| %s | ", r.name.c_str());
    for (auto c : cols)
      std::printf("%.1f%s | ", r.g[c], std::find(r.contended.begin(), r.contended.end(), c) != r.contended.end() ? " (c)" : "");
    std::printf("\n");
  }
  std::printf("(c) = other processes or hypervisor steal took > 10%% of the CPUs during that measurement\n");
  // routes including the once-per-expert B preparation, for one 2048-row expert
  std::printf("\n== conversion routes per 2048-row expert, incl. B preparation (GFLOP/s) ==\n");
  std::printf(
      "| route | B prep 1t ms | B prep 2t ms | M2048/1t | M2048/2t | pool/M256 (B prep 2t) | pool/M64 (B prep 2t) "
      "|\n|---|---:|---:|---:|---:|---:|---:|\n");
  for (auto& r : table) {
    std::string bp;
    if (r.name == "fp16 route, oneDNN f32 packed")
      bp = "cvt_reorder_f16_f32";
    else if (r.name == "bf16 route, oneDNN f32 packed")
      bp = "reorder_bf16_f32";
    else if (r.name == "fp16 route, OpenBLAS sgemm")
      bp = "cvt_f16";
    else if (r.name == "bf16 route, OpenBLAS sgemm")
      bp = "cvt_bf16";
    else if (r.name == "oneDNN bf16 packed")
      bp = "reorder_bf16";
    else if (r.name == "oneDNN f32 packed")
      bp = "reorder_f32";
    else
      continue;
    double p1 = prep[bp + "/1"], p2 = prep[bp + "/2"];
    std::printf("| %s (+%s) | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f |\n", r.name.c_str(), bp.c_str(), p1 * 1e3, p2 * 1e3,
                gflops(MFULL, p1 + r.tmed["M2048/1t"]), gflops(MFULL, p2 + r.tmed["M2048/2t"]),
                gflops(MFULL, p2 + r.tmed["pool/M256"]), gflops(MFULL, p2 + r.tmed["pool/M64"]));
  }
  std::printf("\n== determinism summary ==\n");
  for (auto& l : det_lines) std::printf("  %s\n", l.c_str());
  std::printf("\ntotal benchmark time %.0f s\n", now_s() - t_start);
  return 0;
}
