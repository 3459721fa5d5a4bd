// Packed weights kept across aclnn calls. The vendor's calling pattern passes
// the same weight tensors to every call and has no way to say "these did not
// change", so without this every call re-packs every expert's weight, which
// at decode token counts costs several times the GEMMs themselves. The cache
// is safe here (and not in the native API, D9) because this layer owns the
// runtime that performs every write to device memory a valid program makes:
// an entry is used only while the write versions of its weights' memory
// (runtime/memory_versions.hpp) are the ones read before packing (D12).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "gmmav/gmmav.hpp"

namespace gmmav::aclnn {

/// The weights of `t` packed for `plan`: from the cache when the weight memory
/// has not been written since they were packed, else packed now (and kept,
/// within the byte budget). nullptr when the weights cannot be cached (not in
/// aclrtMalloc memory, or the cache is off): the caller packs per call.
/// Thread-safe; call it where the weights are read (on the stream).
std::shared_ptr<const PackedWeights> cached_weights(const Plan& plan, const OpTensors& t);

/// Whether the cache is on (GMMAV_WEIGHT_CACHE_MB != 0). Throws
/// Error{invalid_argument} (161002 from the C API) for a malformed
/// GMMAV_WEIGHT_CACHE_MB: phase 1 calls it, so the error comes back from the
/// call that can report it.
bool weight_cache_enabled();

/// What the cache holds and has done (for tests and diagnostics).
struct WeightCacheStats {
  std::size_t entries = 0, bytes = 0;
  std::uint64_t hits = 0, misses = 0;  ///< calls served from / packing into the cache
};
WeightCacheStats weight_cache_stats();

}  // namespace gmmav::aclnn
