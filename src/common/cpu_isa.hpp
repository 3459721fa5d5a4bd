// The instruction-set level gmmav's own kernels use (the chain kernel, the
// FP16/BF16 conversions, the input scans) and, when GMMAV_MAX_CPU_ISA is set,
// oneDNN's too (gemm/tile_matmul.cpp caps it before its first use: one knob
// for both). Levels are ordered; each includes the ones below it:
//   portable    plain C++ (std::fma), no SIMD intrinsics
//   avx2        AVX2 + FMA + F16C (8 FP32 lanes)
//   avx512      + AVX-512 F/BW/VL/DQ, what oneDNN calls avx512_core (16 lanes)
//   avx512_bf16 + AVX512_BF16: only oneDNN's native BF16 route uses it
// The level is the host's (CPUID, and the OS saving the vector state), capped by
// GMMAV_MAX_CPU_ISA; it is fixed at the first use in a process (routes and bits
// are a property of the process, D24), so changing the variable later has no
// effect. A bad value makes that first use throw Error{invalid_argument,
// "GMMAV_MAX_CPU_ISA"}, and the next use reads it again.
#pragma once

#include <cpuid.h>

#include <cstdint>
#include <optional>

#include "common/config.hpp"

namespace gmmav {

enum class CpuIsa : int { portable = 0, avx2 = 1, avx512 = 2, avx512_bf16 = 3 };

inline const char* to_string(CpuIsa isa) {
  return config::kCpuIsaNames[static_cast<int>(isa)];  // the names GMMAV_MAX_CPU_ISA takes
}

namespace detail {

inline std::uint64_t xcr0() {
  std::uint32_t lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<std::uint64_t>(hi) << 32) | lo;
}

inline CpuIsa detect_cpu_isa() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid(1, &a, &b, &c, &d) == 0) return CpuIsa::portable;
  const bool fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, f16c = (c >> 29) & 1;
  if (!(fma && osxsave && avx && f16c)) return CpuIsa::portable;
  const std::uint64_t xcr = xcr0();
  if ((xcr & 0x6) != 0x6) return CpuIsa::portable;  // the OS saves XMM and YMM state
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d) == 0 || ((b >> 5) & 1) == 0) return CpuIsa::portable;  // AVX2
  const bool avx512 = ((b >> 16) & 1) && ((b >> 17) & 1) && ((b >> 30) & 1) && ((b >> 31) & 1);      // F, DQ, BW, VL
  if (!avx512 || (xcr & 0xE6) != 0xE6) return CpuIsa::avx2;  // + opmask, ZMM0-15 high, ZMM16-31
  unsigned a1 = 0, b1 = 0, c1 = 0, d1 = 0;
  const bool bf16 = __get_cpuid_count(7, 1, &a1, &b1, &c1, &d1) != 0 && ((a1 >> 5) & 1);  // AVX512_BF16
  return bf16 ? CpuIsa::avx512_bf16 : CpuIsa::avx512;
}

struct IsaSetting {
  CpuIsa level;               ///< what gmmav's kernels use
  std::optional<CpuIsa> cap;  ///< GMMAV_MAX_CPU_ISA, when set
};

inline const IsaSetting& isa_setting() {
  static const IsaSetting s = [] {  // a throw leaves it unset: the next use reads the variable again
    IsaSetting out{detect_cpu_isa(), std::nullopt};
    if (const auto cap = config::max_cpu_isa()) {
      out.cap = static_cast<CpuIsa>(*cap);
      if (*out.cap < out.level) out.level = *out.cap;
    }
    return out;
  }();
  return s;
}

}  // namespace detail

/// What this CPU (and OS) supports, whatever the cap.
inline CpuIsa host_cpu_isa() {
  static const CpuIsa isa = detail::detect_cpu_isa();
  return isa;
}

/// The level gmmav's kernels use in this process: the host's, capped by GMMAV_MAX_CPU_ISA.
inline CpuIsa cpu_isa() { return detail::isa_setting().level; }

/// GMMAV_MAX_CPU_ISA as read at the first use (nullopt: not set, nothing capped).
inline std::optional<CpuIsa> cpu_isa_cap() { return detail::isa_setting().cap; }

}  // namespace gmmav
