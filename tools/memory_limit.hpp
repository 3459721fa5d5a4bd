// How much memory a case may take: the machine's physical memory. A case that
// needs more is refused up front with both numbers, instead of failing with
// std::bad_alloc (or swapping) halfway through building it.
#pragma once

#include <string>

namespace gmmav::cli {

/// This machine's physical memory in bytes (sysconf), or 0 when unknown.
double physical_memory_bytes();

/// "1.5 GiB", "12.0 TiB", "512 bytes".
std::string bytes_text(double bytes);

}  // namespace gmmav::cli
