// A process-wide cache of large, 64-byte-aligned buffers (packed weights,
// FP32 conversions). Every call prepares weights of the same sizes again;
// reusing the memory avoids re-faulting tens of MiB of fresh pages per call,
// which otherwise costs more than the packing itself (measured with perf).
#pragma once

#include <cstddef>
#include <memory>

namespace gmmav::gemm {

/// A buffer of at least `bytes` bytes; it returns to the cache when the last
/// copy of the pointer is dropped. Contents are unspecified.
std::shared_ptr<std::byte> cached_buffer(std::size_t bytes);

/// Frees every cached (unused) buffer.
void release_cached_buffers();

}  // namespace gmmav::gemm
