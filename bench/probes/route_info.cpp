#include "route_info.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "common/cpu_isa.hpp"
#include "engine/tile_schedule.hpp"
#include "gemm/chain_kernel.hpp"
#include "gemm/tile_matmul.hpp"

namespace gmmav::bench {

const char* to_string(PeakKind k) {
  switch (k) {
    case PeakKind::fp32_fma:
      return "fp32 fma";
    case PeakKind::bf16_dot:
      return "bf16 dot";
    case PeakKind::amx_bf16:
      return "amx bf16";
  }
  return "?";
}

namespace {

HostRoutes read_host_routes() {
  HostRoutes h;
  h.chain = gemm::chain_kernel_path();
  const CpuIsa level = cpu_isa();
  h.isa_level = to_string(level);
  h.isa_host = to_string(host_cpu_isa());
  if (const auto cap = cpu_isa_cap()) h.isa_cap = to_string(*cap);
  h.isa_info = gemm::isa_info();
  if (gemm::f32_route_packs()) h.onednn_f32 = gemm::onednn_impl(false);
  if (gemm::native_bf16_matmul()) h.onednn_bf16 = gemm::onednn_impl(true);
  h.fp32_lanes = level >= CpuIsa::avx512 ? 16 : level >= CpuIsa::avx2 ? 8 : 0;
  h.bf16_dot = level >= CpuIsa::avx512_bf16;
  // oneDNN's name says what its BF16 kernel computes with: AMX tiles, vdpbf16ps, or FP32 FMAs
  // (a BF16 kernel on a level without BF16 instructions converts).
  h.bf16_native_peak = h.onednn_bf16.find("amx") != std::string::npos    ? PeakKind::amx_bf16
                       : h.onednn_bf16.find("bf16") != std::string::npos ? PeakKind::bf16_dot
                                                                         : PeakKind::fp32_fma;
  return h;
}

// The route of one GEMM of `rows` x k x n (gemm::route_of) with the peak its kernel computes at.
RouteShare route_of(const HostRoutes& h, DType dtype, std::int64_t rows, std::int64_t k, std::int64_t n) {
  switch (gemm::route_of(dtype, rows, k, n)) {
    case gemm::Route::onednn_bf16:
      return {"oneDNN bf16 " + h.onednn_bf16, h.bf16_native_peak};
    case gemm::Route::onednn_f32:
      return {"oneDNN f32 " + h.onednn_f32, PeakKind::fp32_fma};
    case gemm::Route::chain:
      break;
  }
  return {"chain " + h.chain, PeakKind::fp32_fma};
}

}  // namespace

const HostRoutes& host_routes() {
  static const HostRoutes h = read_host_routes();
  return h;
}

std::vector<RouteShare> route_shares(const std::vector<Plan>& plans) {
  const HostRoutes& h = host_routes();
  std::vector<RouteShare> out;
  const auto add = [&](DType dtype, std::int64_t rows, std::int64_t k, std::int64_t n) {
    RouteShare r = route_of(h, dtype, rows, k, n);
    auto it = std::find_if(out.begin(), out.end(), [&](const RouteShare& o) { return o.kernel == r.kernel; });
    if (it == out.end()) it = out.insert(out.end(), r);
    it->gemms += 1;
    it->flops += 2.0 * static_cast<double>(rows) * static_cast<double>(k) * static_cast<double>(n);
  };
  for (const Plan& p : plans) {
    const ProblemDesc& d = p.desc();
    for (int j = 0; j < d.local_experts; ++j)
      for (const engine::TileGroup& g : engine::routed_groups(p, j)) add(d.dtype, g.rows, d.h1, d.n1);
    if (d.shared)
      for (const engine::SharedTile& t : engine::shared_tiles(p)) add(d.dtype, t.rows, d.shared->h2, d.shared->n2);
  }
  return out;
}

std::string to_text(const std::vector<RouteShare>& routes) {
  double total = 0;
  for (const auto& r : routes) total += r.flops;
  std::string s;
  for (const auto& r : routes)
    s += fmt::format("{}{} GEMMs {} ({}, {:.0f}% of FLOPs)", s.empty() ? "" : " + ", r.gemms, r.kernel, to_string(r.peak),
                     total > 0 ? 100 * r.flops / total : 0.0);
  return s;
}

nlohmann::json to_json(const std::vector<RouteShare>& routes) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& r : routes)
    j.push_back({{"kernel", r.kernel}, {"peak", to_string(r.peak)}, {"gemms", r.gemms}, {"flops", r.flops}});
  return j;
}

}  // namespace gmmav::bench
