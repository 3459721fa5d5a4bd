// libFuzzer target: the aclnn entry point with arbitrary arguments.
//
// Every input must give either success — and then, on a 1-rank group, a
// result that matches the reference — or 161001/161002 with a message; never
// a crash, a sanitizer report or a hang. Phase 1 never reads tensor data, so
// any shape may be tried; phase 2 runs only when every tensor's storage was
// really allocated (the harness does not lie about buffer sizes).
//   scripts/fuzz.sh [seconds]     (builds build-fuzz/ with clang, runs with the corpus in tests/fuzz/corpus)
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "acl/acl.h"
#include "aclnnop/aclnn_grouped_mat_mul_allto_allv.h"
#include "hccl/hccl.h"
#include "numeric/half.hpp"
#include "reference/reference.hpp"

namespace {

class Reader {
 public:
  Reader(const std::uint8_t* d, std::size_t n) : d_(d), n_(n) {}
  std::uint8_t byte() { return i_ < n_ ? d_[i_++] : 0; }
  bool chance(int percent) { return byte() % 100 < percent; }
  std::int64_t i64() {
    std::uint64_t v = 0;
    for (int k = 0; k < 8; ++k) v = (v << 8) | byte();
    return static_cast<std::int64_t>(v);
  }
  // Mostly small sizes, sometimes zero, negative or huge.
  std::int64_t dim() {
    const std::uint8_t sel = byte();
    if (sel < 200) return 1 + sel % 9;
    if (sel < 215) return 0;
    if (sel < 225) return -1 - byte() % 3;
    if (sel < 240) return 65535 + byte();
    return i64();
  }

 private:
  const std::uint8_t* d_;
  std::size_t n_, i_ = 0;
};

struct Env {
  HcclComm one = nullptr;
  char one_name[128] = {0};
  HcclComm two[2] = {nullptr, nullptr};
  char two_name[128] = {0};
  aclrtStream stream = nullptr;
  Env() {
    if (aclInit(nullptr) != ACL_SUCCESS || aclrtSetDevice(0) != ACL_SUCCESS) std::abort();
    int32_t d0[1] = {0}, d2[2] = {0, 1};
    if (HcclCommInitAll(1, d0, &one) != HCCL_SUCCESS || HcclCommInitAll(2, d2, two) != HCCL_SUCCESS) std::abort();
    HcclGetCommName(one, one_name);
    HcclGetCommName(two[0], two_name);
    if (aclrtCreateStream(&stream) != ACL_SUCCESS) std::abort();
  }
};

constexpr std::int64_t kMaxAlloc = 1 << 15;  // elements a tensor may really have

struct FuzzTensor {
  std::vector<std::int64_t> view, strides, storage;
  aclDataType dtype = ACL_FLOAT16;
  aclFormat format = ACL_FORMAT_ND;
  std::int64_t offset = 0;
  std::vector<std::uint16_t> mem;
  bool honest = true;  // storage fully allocated
  aclTensor* t = nullptr;

  void make(Reader& r, std::vector<std::int64_t> want, aclDataType want_type) {
    view = std::move(want);
    if (r.chance(8)) view.resize(r.byte() % 4);  // wrong rank
    for (auto& d : view)
      if (r.chance(10)) d = r.dim();  // wrong extent
    dtype = want_type;
    if (r.chance(4)) dtype = static_cast<aclDataType>(static_cast<int>(r.byte() % 42) - 1);
    if (r.chance(3)) format = static_cast<aclFormat>(static_cast<int>(r.byte() % 40) - 1);
    if (r.chance(3)) offset = r.byte() % 5;
    storage = view;
    if (r.chance(5) && !storage.empty()) storage[0] = r.dim();  // storage smaller/larger
    if (r.chance(6)) {
      strides.resize(view.size());
      for (auto& s : strides) s = r.byte() % 12;
    }
    std::int64_t elems = 1;
    for (auto d : storage) {
      if (d < 0 || (d > 0 && elems > kMaxAlloc / d)) {
        elems = -1;
        break;
      }
      elems *= d;
    }
    honest = elems >= 0 && elems <= kMaxAlloc;
    mem.assign(static_cast<std::size_t>(honest ? std::max<std::int64_t>(elems, 1) : 1), 0);
    for (auto& v : mem) v = gmmav::numeric::double_to_half(static_cast<int>(r.byte() % 17) / 8.0 - 1.0);
    if (dtype == ACL_BF16)
      for (auto& v : mem) v = gmmav::numeric::double_to_bf16(gmmav::numeric::half_to_float(v));
    t = aclCreateTensor(view.data(), view.size(), dtype, strides.empty() ? nullptr : strides.data(), offset, format,
                        storage.data(), storage.size(), mem.data());
  }
  ~FuzzTensor() {
    if (t) aclDestroyTensor(t);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Env env;
  Reader r(data, size);
  const bool two_ranks = r.chance(30);
  std::int64_t W = two_ranks ? 2 : 1;
  const std::int64_t e = 1 + r.byte() % 4, h1 = 1 + r.byte() % 6, n1 = 1 + r.byte() % 6;
  const bool shared = r.chance(50);
  const std::int64_t bs = 1 + r.byte() % 4, h2 = 1 + r.byte() % 5, n2 = 1 + r.byte() % 5;
  const bool trans_w = r.chance(30), trans_mm = r.chance(20);
  const aclDataType type = r.chance(50) ? ACL_FLOAT16 : ACL_BF16;
  // Counts: a W = 1 group receives what it sends; K = BSK / BS in [2, 8] keeps the shared expert valid.
  std::vector<std::int64_t> send(static_cast<std::size_t>(e * W));
  for (auto& c : send) c = r.byte() % 4;
  std::int64_t a = 0;
  for (auto c : send) a += c;
  if (shared) {  // make BSK = 2 * BS on rank 0 when possible
    send.assign(send.size(), 0);
    send[0] = 2 * bs;
    a = 2 * bs;
  }
  std::vector<std::int64_t> recv = send;
  if (r.chance(10)) send.resize(r.byte() % 9);
  if (r.chance(10) && !recv.empty()) recv[r.byte() % recv.size()] = r.chance(50) ? -r.byte() : r.i64();
  if (r.chance(5)) W = r.dim();
  const std::int64_t bsk = a;

  FuzzTensor x, w, y, mx, mw, my;
  x.make(r, {a, h1}, type);
  w.make(r, trans_w ? std::vector<std::int64_t>{e, n1, h1} : std::vector<std::int64_t>{e, h1, n1}, type);
  y.make(r, {bsk, n1}, type);
  if (shared || r.chance(5)) {
    mx.make(r, {bs, h2}, type);
    mw.make(r, trans_mm ? std::vector<std::int64_t>{n2, h2} : std::vector<std::int64_t>{h2, n2}, type);
    my.make(r, {bs, n2}, type);
  }
  aclIntArray* sc = aclCreateIntArray(send.data(), send.size());
  aclIntArray* rc = aclCreateIntArray(recv.data(), recv.size());

  std::string group = two_ranks ? env.two_name : env.one_name;
  const std::uint8_t g = r.byte();
  if (g < 10)
    group = "";
  else if (g < 20)
    group = std::string(128 + g, 'g');
  else if (g < 30)
    group = "no-such-group";
  const bool null_group = r.chance(3);
  const std::uint8_t nulls = r.chance(15) ? r.byte() : 0;
  FuzzTensor counts_tensor;
  const bool count_tensor = r.chance(3);
  if (count_tensor) counts_tensor.make(r, {static_cast<std::int64_t>(send.size())}, ACL_INT64);
  const bool strict = r.chance(10);
  if (strict) setenv("GMMAV_STRICT_A3", "1", 1);

  std::uint64_t ws = 0;
  aclOpExecutor* exec = nullptr;
  const auto rc1 = aclnnGroupedMatMulAlltoAllvGetWorkspaceSize(
      nulls & 1 ? nullptr : x.t, nulls & 2 ? nullptr : w.t, count_tensor ? counts_tensor.t : nullptr, nullptr,
      nulls & 4 ? nullptr : mx.t, mw.t, null_group ? nullptr : group.c_str(), W, nulls & 8 ? nullptr : sc, rc, trans_w, trans_mm,
      nulls & 16 ? nullptr : y.t, my.t, nulls & 32 ? nullptr : &ws, nulls & 64 ? nullptr : &exec);
  if (strict) unsetenv("GMMAV_STRICT_A3");
  const char* msg = aclGetRecentErrMsg();
  if (rc1 != ACL_SUCCESS) {
    if (rc1 != 161001 && rc1 != 161002) std::abort();           // only the two documented codes
    if (msg == nullptr || std::strlen(msg) == 0) std::abort();  // and always a message
  } else {
    const bool honest = x.honest && w.honest && y.honest && (!mx.t || (mx.honest && mw.honest && my.honest));
    if (!honest || W != 1 || exec == nullptr) {
      aclDestroyAclOpExecutor(exec);
    } else {
      std::vector<std::uint16_t> ws_mem(ws / 2 + 1);
      if (aclnnGroupedMatMulAlltoAllv(ws ? ws_mem.data() : nullptr, ws, exec, env.stream) != ACL_SUCCESS) std::abort();
      const aclError sync = aclrtSynchronizeStreamWithTimeout(env.stream, 60000);
      if (sync == ACL_ERROR_RT_PARAM_INVALID) {  // counts that break the contract: a reported run-time error
        aclDestroyIntArray(sc);
        aclDestroyIntArray(rc);
        return 0;
      }
      if (sync != ACL_SUCCESS) std::abort();
      // The result must be right: compare with the reference.
      // The shapes the call really had (the fuzzer may have changed extents consistently).
      const std::int64_t re = w.view[0], rh1 = trans_w ? w.view[2] : w.view[1], rn1 = trans_w ? w.view[1] : w.view[2];
      const std::int64_t rh2 = mx.t ? mx.view[1] : 0, rn2 = mx.t ? my.view[1] : 0;
      gmmav::reference::Shapes sh{x.dtype == ACL_FLOAT16 ? gmmav::DType::f16 : gmmav::DType::bf16,
                                  1,
                                  static_cast<int>(re),
                                  rh1,
                                  rn1,
                                  rh2,
                                  rn2,
                                  trans_w,
                                  trans_mm};
      gmmav::reference::RankInputs in;
      in.send_counts = send;
      in.recv_counts = recv;
      in.gmm_x = x.mem.data();
      in.gmm_weight = w.mem.data();
      if (mx.t) {
        in.mm_x = mx.mem.data();
        in.mm_weight = mw.mem.data();
        in.bs = mx.view[0];
      }
      const auto ref = gmmav::reference::compute(sh, std::vector<gmmav::reference::RankInputs>{in});
      std::vector<std::uint16_t> got(y.mem.begin(), y.mem.begin() + static_cast<std::ptrdiff_t>(ref[0].y.bits.size()));
      const auto cmp = gmmav::reference::compare(sh.dtype, got, ref[0].y, false);
      if (!cmp.ok()) {
        std::fprintf(stderr, "result mismatch: e=%lld h1=%lld n1=%lld trans=%d: %s\n", (long long)re, (long long)rh1,
                     (long long)rn1, trans_w, cmp.first_mismatch_text.c_str());
        std::abort();
      }
    }
  }
  aclDestroyIntArray(sc);
  aclDestroyIntArray(rc);
  return 0;
}
