#include "npy.hpp"

#include <bit>
#include <cctype>
#include <fstream>
#include <limits>

namespace gmmav::cli {

static_assert(std::endian::native == std::endian::little, "the .npy reader copies little-endian data as is");

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicLen = 6;

[[noreturn]] void bad(const std::filesystem::path& path, const std::string& what) { throw NpyError(path.string() + ": " + what); }

// The header is a Python dict literal, e.g.
//   {'descr': '<f2', 'fortran_order': False, 'shape': (3, 4), }
// We parse exactly that grammar: string keys; values are a string, True/False
// or a tuple of non-negative integers.
class HeaderParser {
 public:
  HeaderParser(const std::filesystem::path& path, std::string_view text) : path_(path), s_(text) {}

  void parse(NpyArray& out, bool& fortran_order) {
    bool have_descr = false, have_order = false, have_shape = false;
    expect('{');
    while (true) {
      skip_space();
      if (peek() == '}') {
        ++i_;
        break;
      }
      const std::string key = string_literal();
      expect(':');
      skip_space();
      if (key == "descr") {
        if (peek() == '[') fail("structured dtypes (descr is a list) are not supported");
        out.descr = string_literal();
        have_descr = true;
      } else if (key == "fortran_order") {
        fortran_order = boolean();
        have_order = true;
      } else if (key == "shape") {
        out.shape = tuple();
        have_shape = true;
      } else {
        fail("unexpected header key '" + key + "' (expected only descr, fortran_order, shape)");
      }
      skip_space();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      expect('}');
      break;
    }
    skip_space();
    if (i_ != s_.size()) fail("trailing characters after the header dict");
    if (!have_descr || !have_order || !have_shape)
      fail("header lacks " + std::string(!have_descr ? "'descr'" : !have_order ? "'fortran_order'" : "'shape'"));
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { bad(path_, "bad .npy header (" + what + "): " + std::string(s_)); }
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  void skip_space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t' || s_[i_] == '\r')) ++i_;
  }
  void expect(char c) {
    skip_space();
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++i_;
  }
  std::string string_literal() {
    skip_space();
    const char q = peek();
    if (q != '\'' && q != '"') fail("expected a quoted string");
    const std::size_t end = s_.find(q, i_ + 1);
    if (end == std::string_view::npos) fail("unterminated string");
    std::string v(s_.substr(i_ + 1, end - i_ - 1));
    i_ = end + 1;
    return v;
  }
  bool boolean() {
    if (s_.substr(i_, 4) == "True") {
      i_ += 4;
      return true;
    }
    if (s_.substr(i_, 5) == "False") {
      i_ += 5;
      return false;
    }
    fail("fortran_order must be True or False");
  }
  std::vector<std::int64_t> tuple() {
    std::vector<std::int64_t> dims;
    expect('(');
    while (true) {
      skip_space();
      if (peek() == ')') {
        ++i_;
        return dims;
      }
      if (!std::isdigit(static_cast<unsigned char>(peek()))) fail("shape must be a tuple of non-negative integers");
      std::int64_t v = 0;
      while (std::isdigit(static_cast<unsigned char>(peek()))) {
        if (v > (std::numeric_limits<std::int64_t>::max() - 9) / 10) fail("a dimension is too large");
        v = v * 10 + (s_[i_++] - '0');
      }
      if (peek() == 'L') ++i_;  // Python 2 long literal
      dims.push_back(v);
      skip_space();
      if (peek() == ',') {
        ++i_;
      } else if (peek() != ')') {
        fail("expected ',' or ')' in the shape");
      }
    }
  }

  const std::filesystem::path& path_;
  std::string_view s_;
  std::size_t i_ = 0;
};

std::uint64_t checked_bytes(const std::filesystem::path& path, const NpyArray& a, std::size_t item) {
  std::uint64_t n = item;
  for (auto d : a.shape) {
    if (d != 0 && n > std::numeric_limits<std::uint64_t>::max() / static_cast<std::uint64_t>(d))
      bad(path, "shape " + shape_string(a.shape) + " is too large");
    n *= static_cast<std::uint64_t>(d);
  }
  return n;
}

}  // namespace

std::int64_t NpyArray::elements() const noexcept {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

std::size_t npy_item_size(std::string_view descr) noexcept {
  if (descr == "<f2" || descr == "<u2" || descr == "<i2") return 2;
  if (descr == "<f4" || descr == "<i4" || descr == "<u4") return 4;
  if (descr == "<f8" || descr == "<i8" || descr == "<u8") return 8;
  if (descr == "|u1" || descr == "|i1" || descr == "|b1") return 1;
  return 0;
}

std::string shape_string(std::span<const std::int64_t> shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

NpyArray read_npy(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) bad(path, "cannot open for reading");
  in.seekg(0, std::ios::end);
  const auto file_size = static_cast<std::uint64_t>(in.tellg());
  in.seekg(0);

  unsigned char pre[kMagicLen + 2];
  if (file_size < sizeof pre || !in.read(reinterpret_cast<char*>(pre), sizeof pre))
    bad(path, "not an .npy file (shorter than the 8-byte preamble)");
  if (std::memcmp(pre, kMagic, kMagicLen) != 0) bad(path, "not an .npy file (no \\x93NUMPY magic)");
  const int major = pre[6], minor = pre[7];
  std::uint64_t header_len = 0, prefix = 0;
  if (major == 1 && minor == 0) {
    unsigned char l[2];
    if (!in.read(reinterpret_cast<char*>(l), 2)) bad(path, "truncated header length");
    header_len = l[0] | (static_cast<std::uint64_t>(l[1]) << 8);
    prefix = 10;
  } else if (major == 2 && minor == 0) {
    unsigned char l[4];
    if (!in.read(reinterpret_cast<char*>(l), 4)) bad(path, "truncated header length");
    header_len = l[0] | (static_cast<std::uint64_t>(l[1]) << 8) | (static_cast<std::uint64_t>(l[2]) << 16) |
                 (static_cast<std::uint64_t>(l[3]) << 24);
    prefix = 12;
  } else {
    bad(path,
        "unsupported .npy format version " + std::to_string(major) + "." + std::to_string(minor) + " (expected 1.0 or 2.0)");
  }
  if (prefix + header_len > file_size) bad(path, "truncated header");
  std::string header(header_len, '\0');
  in.read(header.data(), static_cast<std::streamsize>(header_len));

  NpyArray a;
  bool fortran_order = false;
  HeaderParser(path, header).parse(a, fortran_order);
  if (fortran_order) bad(path, "fortran_order is True; only C-order arrays are supported (save with np.ascontiguousarray)");
  if (!a.descr.empty() && a.descr[0] == '>') bad(path, "dtype '" + a.descr + "' is big-endian; expected little-endian");
  const std::size_t item = npy_item_size(a.descr);
  if (item == 0) bad(path, "unsupported dtype '" + a.descr + "'");

  const std::uint64_t want = checked_bytes(path, a, item);
  const std::uint64_t have = file_size - prefix - header_len;
  if (have != want)
    bad(path, "has " + std::to_string(have) + " data bytes, but its header says shape " + shape_string(a.shape) + " of '" +
                  a.descr + "' = " + std::to_string(want) + " bytes");
  a.bytes.resize(static_cast<std::size_t>(want));
  if (want != 0 && !in.read(reinterpret_cast<char*>(a.bytes.data()), static_cast<std::streamsize>(want))) bad(path, "read error");
  return a;
}

void write_npy(const std::filesystem::path& path, std::string_view descr, std::span<const std::int64_t> shape,
               std::span<const unsigned char> bytes) {
  std::uint64_t want = npy_item_size(descr);
  for (auto d : shape) want *= static_cast<std::uint64_t>(d);
  if (want == 0 && npy_item_size(descr) == 0) bad(path, "cannot write unsupported dtype '" + std::string(descr) + "'");
  if (want != bytes.size())
    bad(path, "cannot write " + std::to_string(bytes.size()) + " bytes as shape " + shape_string(shape) + " of '" +
                  std::string(descr) + "' (" + std::to_string(want) + " bytes)");
  std::string header = "{'descr': '" + std::string(descr) + "', 'fortran_order': False, 'shape': " + shape_string(shape) + ", }";
  // Pad with spaces so the data starts at a multiple of 64 bytes, ending in '\n' (as NumPy does).
  const bool v2 = header.size() + 1 + 10 > 65535;
  const std::size_t prefix = v2 ? 12 : 10;
  const std::size_t total = (prefix + header.size() + 1 + 63) / 64 * 64;
  header.append(total - prefix - header.size() - 1, ' ');
  header.push_back('\n');

  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) bad(path, "cannot open for writing");
  out.write(kMagic, kMagicLen);
  const std::uint32_t len = static_cast<std::uint32_t>(header.size());
  const char version[2] = {static_cast<char>(v2 ? 2 : 1), 0};
  out.write(version, 2);
  const unsigned char l[4] = {static_cast<unsigned char>(len), static_cast<unsigned char>(len >> 8),
                              static_cast<unsigned char>(len >> 16), static_cast<unsigned char>(len >> 24)};
  out.write(reinterpret_cast<const char*>(l), v2 ? 4 : 2);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out.flush()) bad(path, "write error");
}

}  // namespace gmmav::cli
