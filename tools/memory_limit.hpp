// How much memory a case may take. `gmmav run`: the machine's physical memory
// (or --memory-limit); a case that needs more is refused up front with both
// numbers, instead of failing with std::bad_alloc (or swapping) halfway through
// building it. `gmmav bench`: what the machine has available when a case starts
// (or --memory-limit), against the bench's estimate of the case (bench/memory_budget.*).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace gmmav::cli {

/// This machine's physical memory in bytes (sysconf), or 0 when unknown.
double physical_memory_bytes();

/// Memory that can be had now without swapping: /proc/meminfo's MemAvailable in bytes,
/// else the physical memory (0 when neither is known).
double available_memory_bytes();

/// "1.5 GiB", "12.0 TiB", "512 bytes".
std::string bytes_text(double bytes);

/// Parses a size: a number of bytes with an optional unit K, M, G, T (powers of 1024; also
/// KiB/MiB/GiB/TiB and KB/MB/GB/TB, read as the same), e.g. "512MiB", "1.5G", "1048576".
/// False (and `bytes` unchanged) for anything else, for 0 and for sizes above 2^60.
bool parse_bytes(const std::string& text, double& bytes);

/// `--memory-limit SIZE` (a parse_bytes size) on `cmd`, stored in `bytes` (0: not given).
CLI::Option* add_memory_limit_option(CLI::App* cmd, double& bytes, const std::string& help);

}  // namespace gmmav::cli
