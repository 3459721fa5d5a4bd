// What the gemm layer runs on this host, as the bench reports it: the ISA level
// (common/cpu_isa.hpp, capped by GMMAV_MAX_CPU_ISA), the kernel of each GEMM route
// (gemm/tile_matmul.hpp) and which peak bounds each route's FLOPs (FP32 FMA, BF16
// dot products, AMX). The bench asks the gemm layer here and nowhere else, so a
// richer gemm API (a per-GEMM route query) replaces this file's internals only.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gmmav/plan.hpp"
#include "gmmav/types.hpp"

namespace gmmav::bench {

/// The arithmetic that bounds a route's FLOPs (the roofline's compute term).
enum class PeakKind { fp32_fma, bf16_dot, amx_bf16 };
const char* to_string(PeakKind k);

struct HostRoutes {
  std::string isa_level;    ///< gmmav's ISA level in this process ("avx512_bf16", ... ; GMMAV_MAX_CPU_ISA caps it)
  std::string isa_host;     ///< the host's own level
  std::string isa_cap;      ///< GMMAV_MAX_CPU_ISA, "" when not set
  std::string isa_info;     ///< the gemm layer's one-line description
  std::string chain;        ///< the chain kernel's path ("avx512", "avx2+fma+f16c", "portable")
  std::string onednn_f32;   ///< oneDNN's FP32 kernel (gemm::Route::onednn_f32); "" where no GEMM takes it
  std::string onednn_bf16;  ///< oneDNN's BF16 kernel for the native route; "" where BF16 has none (f32 route)
  PeakKind bf16_native_peak = PeakKind::bf16_dot;  ///< what the native BF16 kernel computes with
  /// The FP32 FMA kernel the peak is measured with: the vector width of the ISA level the
  /// FP32 routes run at (16 lanes at avx512 and above, 8 at avx2, 0 = no FMA kernel below).
  int fp32_lanes = 0;
  /// BF16 dot products (vdpbf16ps) in use at this level: the BF16 peak is measured.
  bool bf16_dot = false;
};

/// Read once per process (the gemm layer's routes are fixed for the process).
const HostRoutes& host_routes();

/// One route of a case: its kernel, the peak that bounds it, and the GEMMs and FLOPs that took it.
struct RouteShare {
  std::string kernel;  ///< e.g. "chain avx512", "oneDNN bf16 brg:avx512_core_bf16"
  PeakKind peak = PeakKind::fp32_fma;
  std::int64_t gemms = 0;
  double flops = 0;
};

/// Every GEMM of one call of every rank (the engine's tile groups and shared-expert tiles),
/// by route (gemm::route_of). BF16 GEMMs are counted on the native route where the host has one:
/// the bench's data is drawn so that it applies (the route is chosen per GEMM from the data).
std::vector<RouteShare> route_shares(const std::vector<Plan>& plans);

/// "96 GEMMs chain avx512 (fp32 fma, 12% of FLOPs) + 40 oneDNN bf16 brg:avx512_core_bf16 (bf16 dot, 88%)".
std::string to_text(const std::vector<RouteShare>& routes);
nlohmann::json to_json(const std::vector<RouteShare>& routes);

}  // namespace gmmav::bench
