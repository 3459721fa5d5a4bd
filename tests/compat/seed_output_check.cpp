// Checks the outputs of the vendor's example_processes, built unchanged.
//
// Linked into a second build of the seed's example with
//   -Wl,--wrap=aclCreateTensor,--wrap=aclCreateIntArray,
//      --wrap=aclnnGroupedMatMulAlltoAllvGetWorkspaceSize,--wrap=aclnnGroupedMatMulAlltoAllv
// so the example's own calls pass through here: the tensors and count lists it
// makes are remembered, and after the operator ran (and its stream drained)
// every rank checks every element of its y and mmY.
// Nothing of the example is copied: what makes an exact answer known is the
// example's data as it arrives here. Each rank fills gmmX and gmmW (and mmX,
// mmW) with one value each; the ranks tell each other theirs (one
// MPI_Allgather), so every row of y from source s is fp16(H * x_s * w_s) and
// mmY is fp16(H * mx * mw). The check first proves that this closed form is
// the operator's exact answer — every partial sum k * x * w (k <= H) is a
// float32 without rounding, so any order of FP32 accumulation gives it —
// and refuses to judge (an error) when it is not.
// Prints one "[seed-check] rank R: ... exact" line per rank, or "[ERROR] ..."
// lines (the tests fail on "[ERROR]" and count the exact lines).
#include <mpi.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <thread>
#include <vector>

#include "acl/acl.h"
#include "aclnn/acl_meta.h"
#include "aclnnop/aclnn_grouped_mat_mul_allto_allv.h"
#include "numeric/half.hpp"

extern "C" {
aclTensor* __real_aclCreateTensor(const int64_t* viewDims, uint64_t viewDimsNum, aclDataType dataType, const int64_t* stride,
                                  int64_t offset, aclFormat format, const int64_t* storageDims, uint64_t storageDimsNum,
                                  void* tensorData);
aclIntArray* __real_aclCreateIntArray(const int64_t* value, uint64_t size);
aclnnStatus __real_aclnnGroupedMatMulAlltoAllvGetWorkspaceSize(
    const aclTensor* gmmX, const aclTensor* gmmWeight, const aclTensor* sendCountsTensorOptional,
    const aclTensor* recvCountsTensorOptional, const aclTensor* mmXOptional, const aclTensor* mmWeightOptional, const char* group,
    int64_t epWorldSize, const aclIntArray* sendCounts, const aclIntArray* recvCounts, bool transGmmWeight, bool transMmWeight,
    aclTensor* gmmY, aclTensor* mmYOptional, uint64_t* workspaceSize, aclOpExecutor** executor);
aclnnStatus __real_aclnnGroupedMatMulAlltoAllv(void* workspace, uint64_t workspaceSize, aclOpExecutor* executor,
                                               aclrtStream stream);
}

namespace {

struct TensorSeen {
  void* data = nullptr;
  std::vector<std::int64_t> shape;
  aclDataType dtype = ACL_DT_UNDEFINED;
  std::int64_t elements() const {
    std::int64_t n = 1;
    for (std::int64_t d : shape) n *= d;
    return n;
  }
};

std::map<const void*, TensorSeen> g_tensors;
std::map<const void*, std::vector<std::int64_t>> g_arrays;

struct CallSeen {
  const aclTensor *x = nullptr, *w = nullptr, *mm_x = nullptr, *mm_w = nullptr, *y = nullptr, *mm_y = nullptr;
  std::vector<std::int64_t> recv_counts;
  std::int64_t world = 0;
  bool trans_w = false, trans_mm_w = false;
};
CallSeen g_call;
int g_errors = 0;

int world_rank() {
  int r = -1, init = 0;
  MPI_Initialized(&init);
  if (init) MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

template <class... Args>
void error(const char* format, Args... args) {
  if (++g_errors > 8) return;  // the first few say enough
  std::fprintf(stdout, "[ERROR] seed-check rank %d: ", world_rank());
  std::fprintf(stdout, format, args...);
  std::fprintf(stdout, "\n");
  std::fflush(stdout);
}

const TensorSeen* seen(const aclTensor* t) {
  const auto it = g_tensors.find(t);
  return it == g_tensors.end() ? nullptr : &it->second;
}

std::vector<std::uint16_t> contents(const TensorSeen& t) {
  std::vector<std::uint16_t> host(static_cast<std::size_t>(t.elements()));
  aclrtMemcpy(host.data(), host.size() * 2, t.data, host.size() * 2, ACL_MEMCPY_DEVICE_TO_HOST);
  return host;
}

// The one value every element of `t` holds (false when they differ).
bool uniform_value(const TensorSeen& t, std::uint16_t& v) {
  const std::vector<std::uint16_t> all = contents(t);
  if (all.empty()) return false;
  v = all.front();
  for (std::uint16_t e : all)
    if (e != v) return false;
  return true;
}

gmmav::DType dtype_of(aclDataType t) { return t == ACL_BF16 ? gmmav::DType::bf16 : gmmav::DType::f16; }

// fp16/bf16 bits of sum_{k<H} x*w when every partial sum is a float32 exactly
// (then any FP32 accumulation order gives it); false when it is not.
bool exact_answer(gmmav::DType t, std::uint16_t x, std::uint16_t w, std::int64_t h, std::uint16_t& out) {
  const double p = static_cast<double>(gmmav::numeric::to_float(t, x)) * gmmav::numeric::to_float(t, w);
  if (static_cast<double>(static_cast<float>(p)) != p) return false;
  // k * p is a float32 for every k <= h when h * |p| has at most 24 significant bits over p's exponent
  // range: p = m * 2^q with m odd, then k * m < 2^24 suffices and the value stays in float32's range.
  int q = 0;
  double m = std::frexp(std::fabs(p), &q);
  std::int64_t odd = 1;
  if (p != 0.0) {
    while (m != std::floor(m)) m *= 2.0;  // m * 2^-s == |p| * 2^-q, an integer after enough doublings
    odd = static_cast<std::int64_t>(m);
    while (odd % 2 == 0) odd /= 2;
  }
  if (static_cast<double>(h) * static_cast<double>(odd) >= 16777216.0 || std::fabs(h * p) > 3.0e38) return false;
  out = gmmav::numeric::from_double(t, static_cast<double>(h) * p);
  return true;
}

void check_rows(const char* name, const std::vector<std::uint16_t>& got, std::int64_t first, std::int64_t rows, std::int64_t cols,
                std::uint16_t want, const char* from) {
  for (std::int64_t r = first; r < first + rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) {
      const std::uint16_t v = got[static_cast<std::size_t>(r * cols + c)];
      if (v != want) {
        error("%s[%lld][%lld] = 0x%04x, expected 0x%04x (%s)", name, static_cast<long long>(r), static_cast<long long>(c), v,
              want, from);
        return;  // one per block
      }
    }
}

void check_outputs() {
  const TensorSeen *x = seen(g_call.x), *w = seen(g_call.w), *y = seen(g_call.y);
  const TensorSeen *mx = seen(g_call.mm_x), *mw = seen(g_call.mm_w), *my = seen(g_call.mm_y);
  if (x == nullptr || w == nullptr || y == nullptr) {
    error("the example's tensors were not made with aclCreateTensor: nothing to check");
    return;
  }
  // Mine: {x, w, mmX, mmW} values and whether each is uniform; everyone's, by world rank.
  std::uint16_t mine[4] = {0, 0, 0, 0};
  int ok[4] = {uniform_value(*x, mine[0]), uniform_value(*w, mine[1]), mx && uniform_value(*mx, mine[2]),
               mw && uniform_value(*mw, mine[3])};
  int size = 0, me = world_rank();
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size != g_call.world) {
    error("expected epWorldSize = %lld processes, got %d", static_cast<long long>(g_call.world), size);
    return;
  }
  // {values, uniform} of every rank; bounded: a rank whose call failed never comes.
  std::vector<int> all(static_cast<std::size_t>(8 * size));
  int both[8];
  for (int i = 0; i < 4; ++i) both[i] = mine[i], both[4 + i] = ok[i];
  MPI_Request req;
  MPI_Iallgather(both, 8, MPI_INT, all.data(), 8, MPI_INT, MPI_COMM_WORLD, &req);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  for (int done = 0; !done;) {
    MPI_Test(&req, &done, MPI_STATUS_IGNORE);
    if (!done && std::chrono::steady_clock::now() > deadline) {
      error("the other ranks did not reach the check within 120 s (did their call fail?)");
      return;
    }
    if (!done) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::vector<std::uint16_t> values(static_cast<std::size_t>(4 * size));
  std::vector<int> uniform(static_cast<std::size_t>(4 * size));
  for (int r = 0; r < size; ++r)
    for (int i = 0; i < 4; ++i) {
      values[static_cast<std::size_t>(4 * r + i)] = static_cast<std::uint16_t>(all[static_cast<std::size_t>(8 * r + i)]);
      uniform[static_cast<std::size_t>(4 * r + i)] = all[static_cast<std::size_t>(8 * r + 4 + i)];
    }
  const gmmav::DType t = dtype_of(y->dtype);
  const std::int64_t h = x->shape[1], n1 = y->shape[1];
  const std::int64_t e = static_cast<std::int64_t>(g_call.recv_counts.size()) / size;
  const std::vector<std::uint16_t> got = contents(*y);
  std::int64_t row = 0;
  for (int s = 0; s < size; ++s) {
    std::uint16_t want = 0;
    const bool known =
        uniform[static_cast<std::size_t>(4 * s)] && uniform[static_cast<std::size_t>(4 * s + 1)] &&
        exact_answer(t, values[static_cast<std::size_t>(4 * s)], values[static_cast<std::size_t>(4 * s + 1)], h, want);
    for (std::int64_t j = 0; j < e; ++j) {
      const std::int64_t rows = g_call.recv_counts[static_cast<std::size_t>(s * e + j)];
      if (!known) {
        error("rank %d's gmmX/gmmWeight are not uniform or give no exact closed form: cannot check its rows", s);
      } else {
        char from[64];
        std::snprintf(from, sizeof from, "block of rank %d's expert %lld", s, static_cast<long long>(j));
        check_rows("y", got, row, rows, n1, want, from);
      }
      row += rows;
    }
  }
  std::int64_t checked = got.size();
  if (my != nullptr && mx != nullptr && mw != nullptr) {
    std::uint16_t want = 0;
    if (!ok[2] || !ok[3] || !exact_answer(t, mine[2], mine[3], mx->shape[1], want)) {
      error("mmX/mmWeight are not uniform or give no exact closed form: cannot check mmY");
    } else {
      const std::vector<std::uint16_t> mm = contents(*my);
      check_rows("mmY", mm, 0, my->shape[0], my->shape[1], want, "shared expert");
      checked += static_cast<std::int64_t>(mm.size());
    }
  }
  if (g_errors == 0)
    std::printf("[seed-check] rank %d: y %lldx%lld and mmY exact (%lld elements)\n", me, static_cast<long long>(y->shape[0]),
                static_cast<long long>(n1), static_cast<long long>(checked));
  std::fflush(stdout);
}

}  // namespace

extern "C" {

aclTensor* __wrap_aclCreateTensor(const int64_t* viewDims, uint64_t viewDimsNum, aclDataType dataType, const int64_t* stride,
                                  int64_t offset, aclFormat format, const int64_t* storageDims, uint64_t storageDimsNum,
                                  void* tensorData) {
  aclTensor* t =
      __real_aclCreateTensor(viewDims, viewDimsNum, dataType, stride, offset, format, storageDims, storageDimsNum, tensorData);
  if (t != nullptr) g_tensors[t] = {tensorData, std::vector<std::int64_t>(viewDims, viewDims + viewDimsNum), dataType};
  return t;
}

aclIntArray* __wrap_aclCreateIntArray(const int64_t* value, uint64_t size) {
  aclIntArray* a = __real_aclCreateIntArray(value, size);
  if (a != nullptr) g_arrays[a] = std::vector<std::int64_t>(value, value + size);
  return a;
}

aclnnStatus __wrap_aclnnGroupedMatMulAlltoAllvGetWorkspaceSize(
    const aclTensor* gmmX, const aclTensor* gmmWeight, const aclTensor* sendCountsTensorOptional,
    const aclTensor* recvCountsTensorOptional, const aclTensor* mmXOptional, const aclTensor* mmWeightOptional, const char* group,
    int64_t epWorldSize, const aclIntArray* sendCounts, const aclIntArray* recvCounts, bool transGmmWeight, bool transMmWeight,
    aclTensor* gmmY, aclTensor* mmYOptional, uint64_t* workspaceSize, aclOpExecutor** executor) {
  g_call = {gmmX, gmmWeight, mmXOptional, mmWeightOptional, gmmY, mmYOptional, {}, epWorldSize, transGmmWeight, transMmWeight};
  if (const auto it = g_arrays.find(recvCounts); it != g_arrays.end()) g_call.recv_counts = it->second;
  return __real_aclnnGroupedMatMulAlltoAllvGetWorkspaceSize(
      gmmX, gmmWeight, sendCountsTensorOptional, recvCountsTensorOptional, mmXOptional, mmWeightOptional, group, epWorldSize,
      sendCounts, recvCounts, transGmmWeight, transMmWeight, gmmY, mmYOptional, workspaceSize, executor);
}

aclnnStatus __wrap_aclnnGroupedMatMulAlltoAllv(void* workspace, uint64_t workspaceSize, aclOpExecutor* executor,
                                               aclrtStream stream) {
  const aclnnStatus ret = __real_aclnnGroupedMatMulAlltoAllv(workspace, workspaceSize, executor, stream);
  if (ret != ACL_SUCCESS) return ret;                             // the example reports it
  if (aclrtSynchronizeStream(stream) != ACL_SUCCESS) return ret;  // so does its own synchronize
  check_outputs();
  return ret;
}
}
