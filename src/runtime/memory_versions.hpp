// Write versions of "device" memory: every write the runtime sees (aclrtMemcpy,
// aclrtMemcpyAsync, aclrtMemset, the outputs of our own operator) gives the
// blocks it touches a new version, so a layer above can keep something derived
// from device memory (packed weights) and know when it is stale. Writes made
// directly through a pointer are not seen: on the accelerator device memory is
// not addressable from the host, so a program valid there makes none.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

namespace gmmav::runtime {

/// The version of the aclrtMalloc block holding all of [p, p + bytes), or
/// nullopt when that range is not inside one live device block. Versions are
/// unique across blocks and time: a block freed and allocated again at the
/// same address has a new one.
std::optional<std::uint64_t> device_range_version(const void* p, std::size_t bytes);

/// Gives every live block (device or host) that overlaps [p, p + bytes) a new
/// version. Writers call it before and after writing, so a reader that took
/// the version before reading sees a change if a write overlapped its read.
void note_write(const void* p, std::size_t bytes);

}  // namespace gmmav::runtime
