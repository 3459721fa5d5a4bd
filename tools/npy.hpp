// A small, strict reader and writer of NumPy .npy files (format versions 1.0
// and 2.0, C order, little-endian), for the CLI's case files. Every error
// names the file and says what was expected and what was found.
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace gmmav::cli {

/// A problem with an .npy file (message starts with the file's path).
class NpyError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// One array: its dtype string as NumPy writes it ("<f2", "<u2", "<i8", ...),
/// its shape and its raw little-endian bytes in C order.
struct NpyArray {
  std::string descr;
  std::vector<std::int64_t> shape;
  std::vector<unsigned char> bytes;

  std::int64_t elements() const noexcept;
  /// The elements reinterpreted as T (copied; sizeof(T) must be the item size).
  template <typename T>
  std::vector<T> values() const;
};

/// Reads `path`. Accepts descr "<f2", "<u2", "<i8", "<f4", "<f8", "<i4", "|u1"
/// (the caller checks which one it wants); rejects fortran_order True,
/// big-endian or structured dtypes, versions other than 1.0/2.0, and files
/// whose size does not match the header.
NpyArray read_npy(const std::filesystem::path& path);

/// Writes `bytes` (C order) as an .npy file (version 1.0, or 2.0 for huge headers).
void write_npy(const std::filesystem::path& path, std::string_view descr, std::span<const std::int64_t> shape,
               std::span<const unsigned char> bytes);

/// The size in bytes of one element of `descr` (0 when unsupported).
std::size_t npy_item_size(std::string_view descr) noexcept;

/// "(2, 3)" — a shape as NumPy prints it.
std::string shape_string(std::span<const std::int64_t> shape);

template <typename T>
std::vector<T> NpyArray::values() const {
  std::vector<T> out(bytes.size() / sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), bytes.data(), out.size() * sizeof(T));
  return out;
}

}  // namespace gmmav::cli
