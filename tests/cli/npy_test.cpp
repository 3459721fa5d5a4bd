// The .npy reader/writer of the CLI: round trips, NumPy's header variants, and
// that every malformed file is rejected with a message naming it.
#include <gtest/gtest.h>

#include <unistd.h>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "npy.hpp"

namespace gmmav::cli {
namespace {

namespace fs = std::filesystem;

class Npy : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("gmmav_npy_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path write_raw(const std::string& name, const std::string& header, std::size_t data_bytes, int major = 1) {
    std::string h = header;
    const std::size_t prefix = major == 1 ? 10 : 12;
    while ((prefix + h.size() + 1) % 64 != 0) h.push_back(' ');
    h.push_back('\n');
    std::string bytes = std::string("\x93NUMPY", 6) + static_cast<char>(major) + '\0';
    const auto n = static_cast<std::uint32_t>(h.size());
    bytes += static_cast<char>(n & 0xFF);
    bytes += static_cast<char>((n >> 8) & 0xFF);
    if (major != 1) {
      bytes += static_cast<char>((n >> 16) & 0xFF);
      bytes += static_cast<char>((n >> 24) & 0xFF);
    }
    bytes += h + std::string(data_bytes, '\x01');
    const fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }

  // Expects read_npy(p) to throw a message containing the file name and `what`.
  void expect_error(const fs::path& p, const std::string& what) {
    try {
      read_npy(p);
      FAIL() << "no error for " << p;
    } catch (const NpyError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(p.filename().string()), std::string::npos) << msg;
      EXPECT_NE(msg.find(what), std::string::npos) << msg;
    }
  }

  fs::path dir_;
};

TEST_F(Npy, RoundTrip) {
  const std::vector<std::uint16_t> v = {1, 2, 3, 0xFFFF, 0x8000, 7};
  const std::int64_t shape[] = {2, 3};
  write_npy(dir_ / "a.npy", "<u2", shape, {reinterpret_cast<const unsigned char*>(v.data()), v.size() * 2});
  const NpyArray a = read_npy(dir_ / "a.npy");
  EXPECT_EQ(a.descr, "<u2");
  EXPECT_EQ(a.shape, (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(a.values<std::uint16_t>(), v);
  EXPECT_EQ(fs::file_size(dir_ / "a.npy") % 64, 12u);  // header padded to 64 bytes, then 12 data bytes
}

TEST_F(Npy, EmptyAndOneDimensional) {
  const std::int64_t empty[] = {0, 5};
  write_npy(dir_ / "e.npy", "<f2", empty, {});
  EXPECT_EQ(read_npy(dir_ / "e.npy").elements(), 0);
  const std::vector<std::int64_t> c = {3, -1, 4};
  const std::int64_t one[] = {3};
  write_npy(dir_ / "c.npy", "<i8", one, {reinterpret_cast<const unsigned char*>(c.data()), c.size() * 8});
  const NpyArray a = read_npy(dir_ / "c.npy");
  EXPECT_EQ(a.shape, (std::vector<std::int64_t>{3}));
  EXPECT_EQ(a.values<std::int64_t>(), c);
}

TEST_F(Npy, HeaderVariants) {
  // Version 2.0, double quotes, keys in another order, no trailing comma, scalar shape.
  EXPECT_EQ(read_npy(write_raw("v2.npy", "{'descr': '<f2', 'fortran_order': False, 'shape': (4,), }", 8, 2)).elements(), 4);
  EXPECT_EQ(read_npy(write_raw("q.npy", "{\"shape\": (2, 2), \"fortran_order\": False, \"descr\": \"<u2\"}", 8)).elements(), 4);
  EXPECT_EQ(read_npy(write_raw("s.npy", "{'descr': '<i8', 'fortran_order': False, 'shape': ()}", 8)).elements(), 1);
}

TEST_F(Npy, RejectsMalformedFiles) {
  expect_error(write_raw("f.npy", "{'descr': '<f2', 'fortran_order': True, 'shape': (2, 2), }", 8), "fortran_order is True");
  expect_error(write_raw("b.npy", "{'descr': '>f2', 'fortran_order': False, 'shape': (2,), }", 4), "big-endian");
  expect_error(write_raw("t.npy", "{'descr': '<f2', 'fortran_order': False, 'shape': (3, 2), }", 10), "has 10 data bytes");
  expect_error(write_raw("l.npy", "{'descr': '<f2', 'fortran_order': False, 'shape': (1,), }", 4), "has 4 data bytes");
  expect_error(write_raw("s.npy", "{'descr': [('a', '<f2')], 'fortran_order': False, 'shape': (1,), }", 2), "structured");
  expect_error(write_raw("k.npy", "{'descr': '<f2', 'fortran_order': False, 'shape': (1,), 'x': 1}", 2), "unexpected header key");
  expect_error(write_raw("m.npy", "{'descr': '<f2', 'shape': (1,), }", 2), "lacks 'fortran_order'");
  expect_error(write_raw("n.npy", "{'descr': '<f2', 'fortran_order': False, 'shape': (-1,), }", 2), "non-negative");
  expect_error(write_raw("u.npy", "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", 8), "unsupported dtype");
  expect_error(write_raw("v3.npy", "{'descr': '<f2', 'fortran_order': False, 'shape': (1,), }", 2, 3), "version 3.0");
  std::ofstream(dir_ / "x.npy") << "not numpy at all";
  expect_error(dir_ / "x.npy", "no \\x93NUMPY magic");
  expect_error(dir_ / "missing.npy", "cannot open");
}

TEST_F(Npy, WriterRejectsSizeMismatch) {
  const std::int64_t shape[] = {2, 2};
  const unsigned char bytes[6] = {};
  EXPECT_THROW(write_npy(dir_ / "w.npy", "<f2", shape, bytes), NpyError);
}

}  // namespace
}  // namespace gmmav::cli
