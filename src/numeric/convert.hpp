// Bulk FP16/BF16 <-> FP32 conversions for the engine's hot paths. Uses F16C
// at ISA level avx2 and up (common/cpu_isa.hpp: the host's, capped by
// GMMAV_MAX_CPU_ISA), a portable loop otherwise; both give the same bits (RNE,
// subnormals kept).
#pragma once

#include <cstddef>
#include <cstdint>

#include "gmmav/types.hpp"

namespace gmmav::numeric {

/// dst[i] = (float) src[i] for n 16-bit values of type t.
void to_float(DType t, const std::uint16_t* src, float* dst, std::size_t n);
/// dst[i] = round_RNE(src[i]) to type t.
void from_float(DType t, const float* src, std::uint16_t* dst, std::size_t n);

/// True when the F16C path is in use (ISA level avx2 or higher; for benchmarks' reports).
bool has_f16c();

}  // namespace gmmav::numeric
