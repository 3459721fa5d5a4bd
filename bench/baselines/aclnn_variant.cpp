#include "aclnn_variant.hpp"

#include <fmt/format.h>

#include <mutex>
#include <stdexcept>

#include "acl/acl.h"
#include "aclnnop/aclnn_allto_allv_grouped_mat_mul.h"
#include "aclnnop/aclnn_grouped_mat_mul_allto_allv.h"
#include "gmmav/build_options.hpp"
#include "hccl/hccl.h"

namespace gmmav::bench {

std::string recent_acl_error() {
  const char* m = aclGetRecentErrMsg();
  return m != nullptr && m[0] != '\0' ? std::string(m) : std::string("(no message)");
}

namespace {

[[noreturn]] void fail(const std::string& what, int code) {
  throw std::runtime_error(fmt::format("aclnn variant: {} returned {}: {}", what, code, recent_acl_error()));
}

void check(int code, const char* what) {
  if (code != 0) fail(what, code);
}

// aclInit once per process; aclFinalize never (it may finalize the MPI the bench still uses).
void init_acl_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    const int rc = aclInit(nullptr);
    if (rc != ACL_SUCCESS && rc != ACL_ERROR_REPEAT_INITIALIZE) fail("aclInit", rc);
  });
}

aclDataType acl_type(DType t) { return t == DType::bf16 ? ACL_BF16 : ACL_FLOAT16; }

}  // namespace

// ---- communicators ----

std::unique_ptr<AclnnCommunicators> AclnnCommunicators::in_process(int world_size) {
  init_acl_once();
  std::unique_ptr<AclnnCommunicators> c(new AclnnCommunicators);
  std::vector<std::int32_t> devices(static_cast<std::size_t>(world_size));
  for (int r = 0; r < world_size; ++r) devices[static_cast<std::size_t>(r)] = r;
  c->comms_.assign(static_cast<std::size_t>(world_size), nullptr);
  const HcclResult rc = HcclCommInitAll(static_cast<std::uint32_t>(world_size), devices.data(), c->comms_.data());
  if (rc != HCCL_SUCCESS) {
    c->error_ = fmt::format("HcclCommInitAll returned {}: {}", static_cast<int>(rc), recent_acl_error());
    c->comms_.clear();
  }
  return c;
}

AclnnCommunicators::~AclnnCommunicators() {
  for (void* h : comms_) HcclCommDestroy(h);
}

void* AclnnCommunicators::comm(int rank) const {
  if (comms_.empty()) return nullptr;
  return per_process_ ? comms_.front() : comms_.at(static_cast<std::size_t>(rank));
}

void use_aclnn_device(int rank) {
  init_acl_once();
  check(aclrtSetDevice(rank), "aclrtSetDevice");
}

// ---- one rank ----

// The per-call objects a user makes (tensors over the device buffers, count
// arrays), destroyed when the call is done.
struct AclnnCallArgs {
  aclTensor *gmm_x = nullptr, *gmm_weight = nullptr, *y = nullptr, *mm_x = nullptr, *mm_weight = nullptr, *mm_y = nullptr,
            *permute_out = nullptr;
  aclIntArray *send = nullptr, *recv = nullptr;

  explicit AclnnCallArgs(const AclnnRank& a) {
    const ProblemDesc& d = a.plan_.desc();
    const aclDataType t = acl_type(d.dtype);
    const auto tensor = [t](std::vector<std::int64_t> shape, void* p) {
      std::vector<std::int64_t> strides(shape.size(), 1);
      for (std::size_t i = shape.size(); i-- > 1;) strides[i - 1] = strides[i] * shape[i];
      return aclCreateTensor(shape.data(), shape.size(), t, strides.data(), 0, ACL_FORMAT_ND, shape.data(), shape.size(), p);
    };
    gmm_x = tensor({a.plan_.rows_in(), d.h1}, a.gmm_x_.p);
    gmm_weight = tensor(d.trans_gmm_weight ? std::vector<std::int64_t>{d.local_experts, d.n1, d.h1}
                                           : std::vector<std::int64_t>{d.local_experts, d.h1, d.n1},
                        a.gmm_weight_.p);
    y = tensor({a.plan_.rows_out(), d.n1}, a.y_.p);
    if (d.shared) {
      const SharedExpertDesc& s = *d.shared;
      mm_x = tensor({s.bs, s.h2}, a.mm_x_.p);
      mm_weight = tensor(s.trans_mm_weight ? std::vector<std::int64_t>{s.n2, s.h2} : std::vector<std::int64_t>{s.h2, s.n2},
                         a.mm_weight_.p);
      mm_y = tensor({s.bs, s.n2}, a.mm_y_.p);
    }
    if (d.permute_out) permute_out = tensor({a.plan_.rows_out(), d.h1}, a.permute_out_.p);
    send = aclCreateIntArray(d.send_counts.data(), d.send_counts.size());
    recv = aclCreateIntArray(d.recv_counts.data(), d.recv_counts.size());
    if (!gmm_x || !gmm_weight || !y || !send || !recv || (d.shared && (!mm_x || !mm_weight || !mm_y)) ||
        (d.permute_out && !permute_out))
      throw std::runtime_error("aclnn variant: aclCreateTensor / aclCreateIntArray failed: " + recent_acl_error());
  }
  ~AclnnCallArgs() {
    for (const aclTensor* t : {gmm_x, gmm_weight, y, mm_x, mm_weight, mm_y, permute_out})
      if (t) aclDestroyTensor(t);
    for (const aclIntArray* a : {send, recv})
      if (a) aclDestroyIntArray(a);
  }
  AclnnCallArgs(const AclnnCallArgs&) = delete;
  AclnnCallArgs& operator=(const AclnnCallArgs&) = delete;

  // Phase 1 of the plan's operator (the status; the executor and workspace size through the pointers).
  int prepare(const AclnnRank& a, std::uint64_t* workspace, aclOpExecutor** executor) const {
    const ProblemDesc& d = a.plan_.desc();
    if (d.op == Op::dispatch)
      return aclnnAlltoAllvGroupedMatMulGetWorkspaceSize(
          gmm_x, gmm_weight, nullptr, nullptr, mm_x, mm_weight, a.group_, d.world_size, send, recv, d.trans_gmm_weight,
          d.shared && d.shared->trans_mm_weight, d.permute_out, y, mm_y, permute_out, workspace, executor);
    return aclnnGroupedMatMulAlltoAllvGetWorkspaceSize(gmm_x, gmm_weight, nullptr, nullptr, mm_x, mm_weight, a.group_,
                                                       d.world_size, send, recv, d.trans_gmm_weight,
                                                       d.shared && d.shared->trans_mm_weight, y, mm_y, workspace, executor);
  }
};

AclnnRank::AclnnRank(int rank, void* hccl_comm, const Plan& plan, const OpTensors& host)
    : rank_(rank), comm_(hccl_comm), plan_(plan) {
  use_aclnn_device(rank);
  aclrtContext ctx = nullptr;
  check(aclrtCreateContext(&ctx, rank), "aclrtCreateContext");
  context_ = ctx;
  aclrtStream stream = nullptr;
  check(aclrtCreateStream(&stream), "aclrtCreateStream");
  stream_ = stream;
  if (HcclGetCommName(static_cast<HcclComm>(comm_), group_) != HCCL_SUCCESS) {
    unusable_ = "HcclGetCommName failed: " + recent_acl_error();
    return;
  }
  gmm_x_ = upload(host.gmm_x.data, host.gmm_x.bytes());
  gmm_weight_ = upload(host.gmm_weight.data, host.gmm_weight.bytes());
  y_ = zeroed(host.y.bytes());
  if (host.mm_x) {
    mm_x_ = upload(host.mm_x->data, host.mm_x->bytes());
    mm_weight_ = upload(host.mm_weight->data, host.mm_weight->bytes());
    mm_y_ = zeroed(host.mm_y->bytes());
  }
  if (host.permute_out) permute_out_ = zeroed(host.permute_out->bytes());
  // Phase 1 alone (then the executor is dropped): whether the API takes this case at all (its
  // hardware limits are tighter than the native API's, docs/spec.md §5), decided before anything is timed.
  AclnnCallArgs args(*this);
  std::uint64_t ws = 0;
  aclOpExecutor* ex = nullptr;
  if (const int rc = args.prepare(*this, &ws, &ex); rc != ACLNN_SUCCESS)
    unusable_ = fmt::format("phase 1 returned {}: {}", rc, recent_acl_error());
  else
    aclDestroyAclOpExecutor(ex);
}

AclnnRank::~AclnnRank() {
  if (stream_) {
    aclrtSynchronizeStream(stream_);
    aclrtDestroyStream(stream_);
  }
  for (Buffer* b : {&gmm_x_, &gmm_weight_, &y_, &mm_x_, &mm_weight_, &mm_y_, &permute_out_, &workspace_})
    if (b->p) aclrtFree(b->p);
  if (context_) aclrtDestroyContext(context_);
  aclrtResetDevice(rank_);
}

AclnnRank::Buffer AclnnRank::upload(const void* host, std::size_t bytes) {
  Buffer b{nullptr, std::max<std::size_t>(bytes, 2)};  // aclrtMalloc rejects 0 bytes
  check(aclrtMalloc(&b.p, b.bytes, ACL_MEM_MALLOC_HUGE_FIRST), "aclrtMalloc");
  if (bytes > 0) check(aclrtMemcpy(b.p, b.bytes, host, bytes, ACL_MEMCPY_HOST_TO_DEVICE), "aclrtMemcpy");
  return b;
}

AclnnRank::Buffer AclnnRank::zeroed(std::size_t bytes) {
  Buffer b{nullptr, std::max<std::size_t>(bytes, 2)};
  check(aclrtMalloc(&b.p, b.bytes, ACL_MEM_MALLOC_HUGE_FIRST), "aclrtMalloc");
  check(aclrtMemset(b.p, b.bytes, 0, b.bytes), "aclrtMemset");  // touched: no page faults in the first call
  return b;
}

std::vector<std::uint16_t> AclnnRank::download(const Buffer& b) const {
  std::vector<std::uint16_t> v(b.bytes / 2);
  if (b.p) check(aclrtMemcpy(v.data(), v.size() * 2, b.p, v.size() * 2, ACL_MEMCPY_DEVICE_TO_HOST), "aclrtMemcpy");
  return v;
}

std::vector<std::uint16_t> AclnnRank::y() const {
  auto v = download(y_);
  v.resize(static_cast<std::size_t>(plan_.rows_out() * plan_.desc().n1));  // drop the padding of an empty y
  return v;
}

std::vector<std::uint16_t> AclnnRank::mm_y() const {
  return plan_.has_shared_expert() ? download(mm_y_) : std::vector<std::uint16_t>{};
}

std::vector<std::uint16_t> AclnnRank::permute_out() const {
  if (!plan_.desc().permute_out) return {};
  auto v = download(permute_out_);
  v.resize(static_cast<std::size_t>(plan_.rows_out() * plan_.desc().h1));
  return v;
}

void AclnnRank::call() {
  AclnnCallArgs args(*this);
  std::uint64_t ws = 0;
  aclOpExecutor* ex = nullptr;
  const bool dispatch = plan_.op() == Op::dispatch;
  check(args.prepare(*this, &ws, &ex),
        dispatch ? "aclnnAlltoAllvGroupedMatMulGetWorkspaceSize" : "aclnnGroupedMatMulAlltoAllvGetWorkspaceSize");
  if (ws > workspace_.bytes) {  // a user keeps its workspace; it grows only when a call needs more
    if (workspace_.p) check(aclrtFree(workspace_.p), "aclrtFree");
    workspace_ = {};
    check(aclrtMalloc(&workspace_.p, ws, ACL_MEM_MALLOC_HUGE_FIRST), "aclrtMalloc");
    workspace_.bytes = ws;
  }
  void* const w = ws > 0 ? workspace_.p : nullptr;
  const auto stream = static_cast<aclrtStream>(stream_);
  if (dispatch)
    check(aclnnAlltoAllvGroupedMatMul(w, ws, ex, stream), "aclnnAlltoAllvGroupedMatMul");
  else
    check(aclnnGroupedMatMulAlltoAllv(w, ws, ex, stream), "aclnnGroupedMatMulAlltoAllv");
  check(aclrtSynchronizeStream(static_cast<aclrtStream>(stream_)), "aclrtSynchronizeStream");
}

std::unique_ptr<AclnnRank> setup_aclnn_rank(support::RankGroup& g, std::unique_ptr<AclnnCommunicators>& comms, const Plan& plan,
                                            const OpTensors& host, std::string& why) {
  const int r = g.rank();
  std::string mine;
  std::unique_ptr<AclnnRank> a;
  try {
    if (g.is_mpi()) {
      use_aclnn_device(r);  // HcclCommInitRootInfo binds the communicator to the current device
      if constexpr (with_mpi) comms = AclnnCommunicators::over_mpi(g);  // over_mpi exists only then
    } else if (r == 0) {
      comms = AclnnCommunicators::in_process(plan.world_size());
    }
  } catch (const std::exception& e) {
    mine = e.what();
  }
  g.barrier();
  if (mine.empty() && (!comms || !comms->error().empty())) mine = comms ? comms->error() : "no HCCL communicator";
  if (mine.empty()) {
    try {
      a = std::make_unique<AclnnRank>(r, comms->comm(r), plan, host);
      mine = a->unusable();
    } catch (const std::exception& e) {
      mine = e.what();
    }
  }
  const bool everywhere = g.min(mine.empty() ? 1.0 : 0.0) > 0;
  const auto reasons = g.gather(mine);
  if (r == 0 && !everywhere)
    for (std::size_t q = 0; q < reasons.size(); ++q)
      if (!reasons[q].empty()) {
        why = fmt::format("rank {}: {}", q, reasons[q]);
        break;
      }
  if (!everywhere) a.reset();
  return a;
}

}  // namespace gmmav::bench
