// Reliability of the native API: property tests at scale, memory bounds
// (guard pages, read-only inputs), a rank failing mid-call, many calls, several
// groups at once, and resources returning to their starting counts.
#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <latch>
#include <optional>
#include <random>
#include <thread>

#include "../support/forwarding_communicator.hpp"
#include "../support/spawn.hpp"
#include "comm/communicator.hpp"
#include "comm/in_process.hpp"
#include "gemm/chain_kernel.hpp"
#include "gmmav/gmmav.hpp"
#include "reference/synthetic_case.hpp"

namespace {

using namespace gmmav::reference;
using namespace std::chrono_literals;

// ---------- property tests at scale: >= 1000 cases, W up to 16, e up to 64 ----------

CaseSpec scale_spec(int index) {
  std::mt19937_64 rng(0xA11CE000ULL + static_cast<unsigned>(index));
  CaseSpec s;
  s.seed = rng();
  s.world_size = 1 + static_cast<int>(rng() % 16);
  s.local_experts = 1 + static_cast<int>(rng() % (rng() % 4 == 0 ? 64 : 8));
  s.dtype = rng() % 2 ? gmmav::DType::f16 : gmmav::DType::bf16;
  s.trans_gmm_weight = rng() % 2;
  s.shared_expert = rng() % 3 == 0;
  s.trans_mm_weight = s.shared_expert && rng() % 2;
  const CountPattern patterns[] = {CountPattern::random, CountPattern::skewed, CountPattern::balanced};
  s.counts = patterns[rng() % 3];
  s.values = ValueKind::exact;
  s.rows_per_rank = static_cast<std::int64_t>(rng() % 160);
  s.h1 = 1 + static_cast<std::int64_t>(rng() % 24);
  s.n1 = 1 + static_cast<std::int64_t>(rng() % 24);
  s.h2 = 1 + static_cast<std::int64_t>(rng() % 16);
  s.n2 = 1 + static_cast<std::int64_t>(rng() % 16);
  s.bs = 1 + static_cast<std::int64_t>(rng() % 40);
  return s;
}

TEST(Scale, ThousandCasesBitExact) {
  int failures = 0, max_w = 0, max_e = 0;
  for (int i = 0; i < 1000 && failures < 5; ++i) {
    const CaseSpec spec = scale_spec(i);
    max_w = std::max(max_w, spec.world_size);
    max_e = std::max(max_e, spec.local_experts);
    Case c = make_case(spec);
    const auto errors = run_in_process(c);
    for (const auto& e : errors) {
      if (!e.empty()) {
        ADD_FAILURE() << "case " << i << ": " << e;
        ++failures;
        break;
      }
    }
    const CaseCheck check = check_case(c, true);
    if (!check.ok) {
      ADD_FAILURE() << "case " << i << " (W=" << spec.world_size << " e=" << spec.local_experts << "): " << check.first_failure;
      ++failures;
    }
  }
  EXPECT_EQ(max_w, 16);
  EXPECT_GE(max_e, 60);
}

// CPU time of this process so far (user + system), in ms.
double cpu_ms() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e3 + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e3;
}

// An empty problem (every count 0) on W in-process ranks with e = 1, one
// thread per rank; `mismatch`: rank 1 expects one row from rank 0 that rank 0
// does not send. Every thread builds its plan, then all call at once: the
// time printed is the calls' (the group's meet, check and finish).
std::vector<std::string> run_empty_problem(int W, bool mismatch) {
  auto comms = gmmav::create_in_process_group(W);
  std::vector<std::string> err(static_cast<std::size_t>(W));
  std::vector<std::uint16_t> y1(8, 0xA5A5);
  std::latch planned(W + 1), go(1);
  std::vector<std::thread> t;
  t.reserve(static_cast<std::size_t>(W));
  for (int r = 0; r < W; ++r)
    t.emplace_back([&, r] {
      try {
        gmmav::ProblemDesc d;
        d.world_size = W;
        d.rank = r;
        d.local_experts = 1;
        d.send_counts.assign(static_cast<std::size_t>(W), 0);
        d.recv_counts.assign(static_cast<std::size_t>(W), 0);
        d.h1 = 8;
        d.n1 = 8;
        const bool receiver = mismatch && r == 1;
        if (receiver) d.recv_counts[0] = 1;
        std::optional<gmmav::Plan> plan;
        try {
          plan = gmmav::Plan::create(d);
        } catch (...) {
          planned.count_down();
          throw;
        }
        std::uint16_t w[64] = {};
        gmmav::OpTensors o;
        o.gmm_x = gmmav::ConstTensorView::matrix(nullptr, gmmav::DType::f16, 0, 8);
        o.gmm_weight = gmmav::ConstTensorView::cube(w, gmmav::DType::f16, 1, 8, 8);
        o.y = gmmav::TensorView::matrix(receiver ? y1.data() : nullptr, gmmav::DType::f16, receiver ? 1 : 0, 8);
        planned.count_down();
        go.wait();
        gmmav::run(*plan, comms[static_cast<std::size_t>(r)], o);
      } catch (const std::exception& e) {
        err[static_cast<std::size_t>(r)] = e.what();
      }
    });
  planned.arrive_and_wait();
  const double cpu0 = cpu_ms();
  const auto start = std::chrono::steady_clock::now();
  go.count_down();
  for (auto& th : t) th.join();
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  std::printf("W=%d e=1 empty problem%s: the calls took %.0f ms (%.0f ms of CPU)\n", W,
              mismatch ? " with one mismatched count" : "", ms, cpu_ms() - cpu0);
  EXPECT_TRUE(std::all_of(y1.begin(), y1.end(), [](std::uint16_t v) { return v == 0xA5A5; }));
  return err;
}

// The cross-rank check is done once per call for the group (not by every rank): W = 4096 is cheap.
TEST(Scale, EmptyProblemOn4096InProcessRanks) {
  for (const auto& e : run_empty_problem(4096, false)) ASSERT_EQ(e, "");
}

TEST(Scale, MismatchOn4096InProcessRanksFailsEveryRankAlike) {
  const auto err = run_empty_problem(4096, true);
  EXPECT_NE(err[0].find("(source 0, destination 1, expert 0)"), std::string::npos) << err[0];
  for (const auto& e : err) ASSERT_EQ(e, err[0]);
}

// ---------- memory bounds ----------

// A buffer whose bytes sit right before (or right after) an inaccessible page.
class GuardedBuffer {
 public:
  GuardedBuffer(std::size_t bytes, bool guard_after) : bytes_(bytes) {
    page_ = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    const std::size_t data_pages = (bytes + page_ - 1) / page_;
    total_ = (data_pages + 2) * page_;
    base_ = static_cast<std::byte*>(mmap(nullptr, total_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    mprotect(base_, page_, PROT_NONE);
    mprotect(base_ + total_ - page_, page_, PROT_NONE);
    // Flush against the upper guard, or right after the lower one.
    data_ = guard_after ? base_ + total_ - page_ - bytes : base_ + page_;
  }
  ~GuardedBuffer() { munmap(base_, total_); }
  std::uint16_t* data() { return reinterpret_cast<std::uint16_t*>(data_); }
  void read_only() { mprotect(base_ + page_, total_ - 2 * page_, PROT_READ); }

 private:
  std::size_t bytes_, page_ = 4096, total_ = 0;
  std::byte* base_ = nullptr;
  std::byte* data_ = nullptr;
};

std::uint64_t checksum(const std::vector<std::uint16_t>& v) {
  std::uint64_t h = 1469598103934665603ULL;
  for (auto x : v) h = (h ^ x) * 1099511628211ULL;
  return h;
}

// Every tensor of every rank copied next to a guard page (before or after);
// inputs are made read-only during the call. An out-of-bounds access or a
// write to an input kills the test with SIGSEGV.
void run_guarded(bool guard_after) {
  CaseSpec s;
  s.world_size = 3;
  s.local_experts = 2;
  s.rows_per_rank = 300;
  s.h1 = 37;
  s.n1 = 29;
  s.shared_expert = true;
  s.bs = 61;
  s.h2 = 23;
  s.n2 = 19;
  s.counts = CountPattern::random;
  Case c = make_case(s);
  std::vector<std::unique_ptr<GuardedBuffer>> keep;
  const auto guard = [&](std::vector<std::uint16_t>& v, bool input) {
    auto g = std::make_unique<GuardedBuffer>(std::max<std::size_t>(v.size() * 2, 2), guard_after);
    std::memcpy(g->data(), v.data(), v.size() * 2);
    if (input) g->read_only();
    std::uint16_t* p = g->data();
    keep.push_back(std::move(g));
    return p;
  };
  std::vector<std::uint64_t> input_sums;
  std::vector<gmmav::OpTensors> tensors;
  std::vector<std::uint16_t*> y_ptr, mm_y_ptr;
  for (int r = 0; r < s.world_size; ++r) {
    auto& rd = c.ranks[static_cast<std::size_t>(r)];
    input_sums.push_back(checksum(rd.gmm_x) ^ checksum(rd.gmm_weight) ^ checksum(rd.mm_x) ^ checksum(rd.mm_weight));
    gmmav::OpTensors t = c.tensors(r);
    t.gmm_x.data = guard(rd.gmm_x, true);
    t.gmm_weight.data = guard(rd.gmm_weight, true);
    t.mm_x->data = guard(rd.mm_x, true);
    t.mm_weight->data = guard(rd.mm_weight, true);
    y_ptr.push_back(guard(rd.y, false));
    mm_y_ptr.push_back(guard(rd.mm_y, false));
    t.y.data = y_ptr.back();
    t.mm_y->data = mm_y_ptr.back();
    tensors.push_back(t);
  }
  auto comms = gmmav::create_in_process_group(s.world_size);
  std::vector<std::thread> th;
  std::vector<std::string> err(static_cast<std::size_t>(s.world_size));
  for (int r = 0; r < s.world_size; ++r)
    th.emplace_back([&, r] {
      try {
        gmmav::run(gmmav::Plan::create(c.desc(r)), comms[static_cast<std::size_t>(r)], tensors[static_cast<std::size_t>(r)]);
      } catch (const std::exception& e) {
        err[static_cast<std::size_t>(r)] = e.what();
      }
    });
  for (auto& t : th) t.join();
  for (int r = 0; r < s.world_size; ++r) {
    ASSERT_EQ(err[static_cast<std::size_t>(r)], "");
    auto& rd = c.ranks[static_cast<std::size_t>(r)];
    // Inputs: the guarded copies still equal the originals.
    EXPECT_EQ(std::memcmp(tensors[static_cast<std::size_t>(r)].gmm_x.data, rd.gmm_x.data(), rd.gmm_x.size() * 2), 0);
    EXPECT_EQ(checksum(rd.gmm_x) ^ checksum(rd.gmm_weight) ^ checksum(rd.mm_x) ^ checksum(rd.mm_weight),
              input_sums[static_cast<std::size_t>(r)]);
    std::memcpy(rd.y.data(), y_ptr[static_cast<std::size_t>(r)], rd.y.size() * 2);
    std::memcpy(rd.mm_y.data(), mm_y_ptr[static_cast<std::size_t>(r)], rd.mm_y.size() * 2);
  }
  const CaseCheck check = check_case(c, true);
  EXPECT_TRUE(check.ok) << check.first_failure;
}

TEST(Bounds, OutputsAndInputsRightBeforeAGuardPage) { run_guarded(true); }
TEST(Bounds, OutputsAndInputsRightAfterAGuardPage) { run_guarded(false); }

// ---------- a rank that fails mid-call ----------

// An exchange that throws after `after` tiles (wrapped around a real one).
class FailingExchange final : public gmmav::testing::ForwardingExchange {
 public:
  FailingExchange(std::unique_ptr<gmmav::comm::Exchange> inner, int after) : ForwardingExchange(std::move(inner)), left_(after) {}
  void* rows_for(int d, int j, std::int64_t f, std::int64_t r) override {
    if (left_.fetch_sub(1) <= 0) throw std::runtime_error("injected fault");
    return ForwardingExchange::rows_for(d, j, f, r);
  }

 private:
  std::atomic<int> left_;
};

TEST(Faults, RankFailingMidCallFailsItsPeersPromptly) {
  CaseSpec s;
  s.world_size = 3;
  s.local_experts = 2;
  s.rows_per_rank = 600;
  s.counts = CountPattern::balanced;
  Case c = make_case(s);
  gmmav::GroupOptions opt;
  opt.timeout = 30s;
  std::string err[3];
  gmmav::Errc code[3] = {};
  const auto t0 = std::chrono::steady_clock::now();
  gmmav::testing::spawn(
      gmmav::testing::Backend::in_process, 3,
      [&](const gmmav::testing::Rank& me) {
        const int r = me.rank;
        // Rank 1's exchange throws after two tiles.
        const gmmav::Comm use =
            r == 1 ? gmmav::testing::wrapped(me.comm, [](auto in) { return std::make_unique<FailingExchange>(std::move(in), 2); })
                   : me.comm;
        try {
          gmmav::run(gmmav::Plan::create(c.desc(r)), use, c.tensors(r));
        } catch (const gmmav::Error& e) {
          err[r] = e.what();
          code[r] = e.code();
        } catch (const std::exception& e) {
          err[r] = e.what();
        }
        if (r != 0) return;
        // The group says it must be recreated (once rank 0 itself has failed).
        try {
          gmmav::run(gmmav::Plan::create(c.desc(0)), me.comm, c.tensors(0));
          ADD_FAILURE() << "expected group_broken";
        } catch (const gmmav::Error& e) {
          EXPECT_EQ(e.code(), gmmav::Errc::group_broken);
        }
      },
      opt);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s) << "peers must not wait for the 30 s timeout";
  EXPECT_NE(err[1].find("injected fault"), std::string::npos) << err[1];
  for (int r : {0, 2}) {
    EXPECT_EQ(code[r], gmmav::Errc::group_broken) << err[r];
    EXPECT_NE(err[r].find("rank 1 failed"), std::string::npos) << err[r];
  }
}

// ---------- many calls, several groups, resources ----------

int count_dir(const char* path) {
  int n = 0;
  if (DIR* d = opendir(path)) {
    while (readdir(d) != nullptr) ++n;
    closedir(d);
  }
  return n;
}

TEST(Resources, SeveralGroupsAtOnceAndCountsReturn) {
  // Warm up: the process-wide pool and the library's threads exist after the first call.
  {
    CaseSpec s;
    Case c = make_case(s);
    ASSERT_EQ(run_in_process(c)[0], "");
  }
  const int fds = count_dir("/proc/self/fd"), threads = count_dir("/proc/self/task");
  for (int round = 0; round < 5; ++round) {
    std::vector<std::thread> groups;
    std::atomic<int> bad{0};
    for (int g = 0; g < 4; ++g)
      groups.emplace_back([&, g] {
        CaseSpec s;
        s.world_size = 2 + g;
        s.local_experts = 1 + g;
        s.seed = static_cast<std::uint64_t>(round * 10 + g);
        s.shared_expert = g % 2;
        Case c = make_case(s);
        for (const auto& e : run_in_process(c)) bad += !e.empty();
        bad += !check_case(c, true).ok;
      });
    for (auto& t : groups) t.join();
    EXPECT_EQ(bad.load(), 0);
  }
  EXPECT_EQ(count_dir("/proc/self/fd"), fds);
  // At most as many: a thread that was still exiting when counted may be gone now (seen: 6 then 5).
  EXPECT_LE(count_dir("/proc/self/task"), threads);
}

TEST(Resources, ThousandCallsOnOneGroupAndPlan) {
  CaseSpec s;
  s.world_size = 2;
  s.local_experts = 2;
  s.rows_per_rank = 20;
  s.h1 = 8;
  s.n1 = 8;
  Case c = make_case(s);
  gmmav::testing::spawn(gmmav::testing::Backend::in_process, 2, [&](const gmmav::testing::Rank& me) {
    const auto plan = gmmav::Plan::create(c.desc(me.rank));
    const auto t = c.tensors(me.rank);
    for (int i = 0; i < 1000; ++i) gmmav::run(plan, me.comm, t);
  });
  EXPECT_TRUE(check_case(c, true).ok);
}

// A call whose shapes need more host memory than there is (issue 16): gmmX
// and a weight of terabytes, reserved but never touched. The
// call must fail with Errc::out_of_memory naming what was too big, not with a
// bare std::bad_alloc, nor kill the process: K = 2^36 is beyond what oneDNN
// takes (its primitive creation died with SIGFPE on AVX-512 hosts, D65), so
// every route — either dtype, a tile the chain kernel takes (1 row) or one
// oneDNN would (more than kSmallMRows rows), weights packed in the call or by
// PackedWeights — ends in the chain kernel, whose FP32 copy of the tile's rows
// (rows x 256 GiB) no machine has. scripts/isa-levels.sh runs it at every ISA level.
class HugeShapes : public ::testing::TestWithParam<std::tuple<gmmav::DType, std::int64_t, bool>> {};

TEST_P(HugeShapes, FailWithOutOfMemory) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "the sanitizers' allocators abort on a request this large instead of failing it";
#endif
  const auto [dtype, rows, packed_weights] = GetParam();
  constexpr std::int64_t kH1 = std::int64_t{1} << 36;
  const std::size_t w_bytes = static_cast<std::size_t>(kH1) * 2, x_bytes = w_bytes * static_cast<std::size_t>(rows);
  void* w = mmap(nullptr, w_bytes, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  void* x = mmap(nullptr, x_bytes, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (w == MAP_FAILED || x == MAP_FAILED) GTEST_SKIP() << "cannot reserve the address space here";
  std::vector<std::uint16_t> y(static_cast<std::size_t>(rows), 0x7E00);
  gmmav::ProblemDesc d;
  d.dtype = dtype;
  d.send_counts = d.recv_counts = {rows};
  d.h1 = kH1;
  d.n1 = 1;
  gmmav::OpTensors t;
  t.gmm_x = gmmav::ConstTensorView::matrix(x, dtype, rows, kH1);
  t.gmm_weight = gmmav::ConstTensorView::cube(w, dtype, 1, kH1, 1);
  t.y = gmmav::TensorView::matrix(y.data(), dtype, rows, 1);
  auto comms = gmmav::create_in_process_group(1);
  try {
    const auto plan = gmmav::Plan::create(d);
    if (packed_weights) {
      const auto packed = gmmav::PackedWeights::create(plan, t);
      EXPECT_EQ(packed.bytes(), 0u) << "nothing packed: oneDNN cannot take the shape";
      gmmav::run(plan, comms[0], t, packed);
    } else {
      gmmav::run(plan, comms[0], t);
    }
    ADD_FAILURE() << "expected an out-of-memory error";
  } catch (const gmmav::Error& e) {
    EXPECT_EQ(e.code(), gmmav::Errc::out_of_memory) << e.what();
    EXPECT_EQ(e.param(), "gmmWeight") << e.what();
    EXPECT_NE(std::string(e.what()).find("bytes of host memory"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("68719476736"), std::string::npos) << "names the shape: " << e.what();
  }
  EXPECT_EQ(y, std::vector<std::uint16_t>(static_cast<std::size_t>(rows), 0x7E00)) << "nothing written";
  munmap(w, w_bytes);
  munmap(x, x_bytes);
}

INSTANTIATE_TEST_SUITE_P(Resources, HugeShapes,
                         ::testing::Combine(::testing::Values(gmmav::DType::f16, gmmav::DType::bf16),
                                            ::testing::Values(std::int64_t{1}, gmmav::gemm::kSmallMRows + 1), ::testing::Bool()),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param) == gmmav::DType::f16 ? "fp16" : "bf16") + "_rows" +
                                  std::to_string(std::get<1>(info.param)) + (std::get<2>(info.param) ? "_packed" : "_per_call");
                         });

}  // namespace
