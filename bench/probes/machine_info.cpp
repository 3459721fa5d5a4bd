#include "machine_info.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <oneapi/dnnl/dnnl.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "engine/compute_pool.hpp"
#include "gemm/tile_matmul.hpp"
#include "gmmav/gmmav.hpp"
#include "route_info.hpp"

namespace gmmav::bench {
namespace {

// The flags that decide which GEMM kernels can run (docs/gemm-measurements.md).
const char* const kFlagsOfInterest[] = {"avx2",        "fma",         "f16c",        "avx512f",  "avx512bw", "avx512vl",
                                        "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_tile", "hypervisor"};

// GB/s of memcpy over `bytes` per thread, `threads` threads each with its own buffers; best of `reps`.
double memcpy_gbps(std::size_t bytes, int threads, int reps) {
  std::vector<std::vector<char>> src(static_cast<std::size_t>(threads)), dst(src.size());
  for (int t = 0; t < threads; ++t) {
    src[static_cast<std::size_t>(t)].assign(bytes, static_cast<char>(t + 1));
    dst[static_cast<std::size_t>(t)].assign(bytes, 0);  // touched: no page faults in the timing
  }
  double best = 0;
  for (int r = 0; r < reps + 1; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
      ts.emplace_back(
          [&, t] { std::memcpy(dst[static_cast<std::size_t>(t)].data(), src[static_cast<std::size_t>(t)].data(), bytes); });
    for (auto& t : ts) t.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (r > 0) best = std::max(best, static_cast<double>(bytes) * threads / s * 1e-9);  // r = 0 warms up
  }
  return best;
}

}  // namespace

double Spread::best() const { return samples.empty() ? 0 : *std::max_element(samples.begin(), samples.end()); }
double Spread::min() const { return samples.empty() ? 0 : *std::min_element(samples.begin(), samples.end()); }
double Spread::median() const {
  if (samples.empty()) return 0;
  std::vector<double> v = samples;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}
nlohmann::json Spread::to_json() const { return {{"best", best()}, {"min", min()}, {"median", median()}, {"n", samples.size()}}; }
std::string Spread::to_text() const {
  return samples.empty() ? std::string("-")
                         : fmt::format("{:.0f} (min {:.0f}, median {:.0f}, n {})", best(), min(), median(), samples.size());
}

Bandwidth measure_memcpy(int cores) {
  Bandwidth b;
  b.mib8_one_core = memcpy_gbps(std::size_t{8} << 20, 1, 20);
  b.mib256_one_core = memcpy_gbps(std::size_t{256} << 20, 1, 3);
  b.mib256_all_cores = memcpy_gbps(std::size_t{256} << 20, cores, 3);
  b.read_1gib_all_cores = measure_read_gbps(std::size_t{1} << 30, cores);
  return b;
}

MachineInfo machine_info(bool measure, int peak_rounds) {
  MachineInfo m;
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  std::set<std::string> flags;
  while (std::getline(in, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon);
    key.erase(key.find_last_not_of(" \t") + 1);
    const std::string value = colon + 2 <= line.size() ? line.substr(colon + 2) : "";
    if (key == "model name" && m.cpu_model.empty()) m.cpu_model = value;
    if (key == "cpu family" && m.cpu_family == 0) m.cpu_family = std::atoi(value.c_str());
    if (key == "model" && m.cpu_model_number == 0) m.cpu_model_number = std::atoi(value.c_str());
    if (key == "flags" && flags.empty()) {
      std::istringstream ss(value);
      for (std::string f; ss >> f;) flags.insert(f);
    }
  }
  for (const char* f : kFlagsOfInterest)
    if (flags.count(f)) m.isa_flags.emplace_back(f);
  m.cores = engine::available_cores();
  m.onednn = gemm::implementation_info();
  const dnnl_version_t* v = dnnl_version();
  m.onednn_version =
      fmt::format("{}.{}.{} ({})", v->major, v->minor, v->patch, v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "other");
  m.compute_threads = compute_threads();
  if (measure) {
    m.peak = measure_peak(m.cores, peak_rounds);
    m.memcpy = measure_memcpy(m.cores);
    m.tcp = measure_tcp_loopback();
    m.measured = true;
  }
  return m;
}

nlohmann::json to_json(const MachineInfo& m) {
  nlohmann::json j;
  j["cpu_model"] = m.cpu_model;
  j["cpu_family"] = m.cpu_family;
  j["cpu_model_number"] = m.cpu_model_number;
  j["cores"] = m.cores;
  j["isa_flags"] = m.isa_flags;
  j["onednn"] = m.onednn;
  j["onednn_version"] = m.onednn_version;
  j["compute_threads"] = m.compute_threads;
  const HostRoutes& h = host_routes();
  j["gemm_routes"] = {{"isa_level", h.isa_level},
                      {"isa_host", h.isa_host},
                      {"isa_cap", h.isa_cap},
                      {"chain_kernel", h.chain},
                      {"onednn_f32", h.onednn_f32},
                      {"onednn_bf16", h.onednn_bf16},
                      {"bf16_native_peak", to_string(h.bf16_native_peak)}};
  if (m.measured) {
    // The figures are the best samples (CPU time); "spread" has every figure's best, min, median and
    // count, and the all-cores samples over wall time (lower when other work shared the cores).
    j["peak"] = {{"fma_isa", m.peak.isa},
                 {"isa_level", m.peak.level},
                 {"fp32_gflops_one_core", m.peak.fp32_one_core.best()},
                 {"fp32_gflops_all_cores", m.peak.fp32_all_cores.best()},
                 {"bf16_dot_gflops_one_core", m.peak.bf16_one_core.best()},
                 {"bf16_dot_gflops_all_cores", m.peak.bf16_all_cores.best()},
                 {"spread",
                  {{"fp32_one_core", m.peak.fp32_one_core.to_json()},
                   {"fp32_all_cores", m.peak.fp32_all_cores.to_json()},
                   {"bf16_dot_one_core", m.peak.bf16_one_core.to_json()},
                   {"bf16_dot_all_cores", m.peak.bf16_all_cores.to_json()},
                   {"fp32_all_cores_wall", m.peak.fp32_all_cores_wall.to_json()},
                   {"bf16_dot_all_cores_wall", m.peak.bf16_all_cores_wall.to_json()}}}};
    j["memcpy_gbps"] = {{"8MiB_one_core", m.memcpy.mib8_one_core},
                        {"256MiB_one_core", m.memcpy.mib256_one_core},
                        {"256MiB_all_cores", m.memcpy.mib256_all_cores}};
    j["read_gbps"] = {{"1GiB_all_cores", m.memcpy.read_1gib_all_cores}};
    j["tcp_loopback"] = {{"gbps", m.tcp.gbps}, {"cpu_ns_per_byte", m.tcp.cpu_ns_per_byte}};
  }
  return j;
}

std::string to_text(const MachineInfo& m) {
  std::string flags;
  for (const auto& f : m.isa_flags) flags += (flags.empty() ? "" : " ") + f;
  std::string s = fmt::format("machine: {} (family {} model {}), {} cores; flags: {}\n", m.cpu_model, m.cpu_family,
                              m.cpu_model_number, m.cores, flags);
  s += fmt::format("oneDNN {}: {}; compute pool {} threads\n", m.onednn_version, m.onednn, m.compute_threads);
  if (m.measured) {
    s += fmt::format(
        "peak, GFLOP/s over CPU time, best of the samples (FMA kernel {}, ISA level {}): FP32 FMA one core {}, all cores {} "
        "(wall clock: median {:.0f})",
        m.peak.isa, m.peak.level, m.peak.fp32_one_core.to_text(), m.peak.fp32_all_cores.to_text(),
        m.peak.fp32_all_cores_wall.median());
    if (!m.peak.bf16_all_cores.samples.empty())
      s += fmt::format("; BF16 dot one core {}, all cores {} (wall clock: median {:.0f})", m.peak.bf16_one_core.to_text(),
                       m.peak.bf16_all_cores.to_text(), m.peak.bf16_all_cores_wall.median());
    s += "\n";
    s += fmt::format(
        "memcpy {:.1f} GB/s (8 MiB, one core), {:.1f} (256 MiB, one core), {:.1f} (256 MiB, all cores); "
        "DRAM read {:.1f} GB/s (1 GiB, all cores)\n",
        m.memcpy.mib8_one_core, m.memcpy.mib256_one_core, m.memcpy.mib256_all_cores, m.memcpy.read_1gib_all_cores);
  }
  if (m.measured)
    s += fmt::format("loopback TCP: {:.2f} GB/s one stream, {:.2f} ns of CPU per byte (sender + receiver, kernel copies)\n",
                     m.tcp.gbps, m.tcp.cpu_ns_per_byte);
  return s;
}

}  // namespace gmmav::bench
