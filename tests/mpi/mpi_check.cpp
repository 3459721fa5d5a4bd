// gmmav_mpi_check: run under an MPI launcher (one process per rank).
//
//   --cases N      N seeded random cases: each process computes its rank on the
//                  MPI backend, and the whole case on the in-process backend
//                  too; y and mmY must be bit-identical, and match the reference.
//   --cases N min  the same with the smallest workspace (one staging tile):
//                  the staging ring is reused for every tile.
//   --property FIRST COUNT  the across-hosts property series (case_generator.hpp's
//                  property_spec: both ops, edge-case counts, small calls that
//                  carry heads and large ones that split), seeds FIRST.., on one
//                  group; every output bit for bit against in-process (D61).
//   --absent-at-creation R  rank R never makes the group: every other rank's
//                  create_mpi_group must fail with a timeout within ~the
//                  group's timeout (2 s), not hang (prints UNEXPECTED otherwise).
//   --mismatch     counts that break the cross-rank contract: every process
//                  must get the count-mismatch error naming the same triple,
//                  with y and mmY untouched, and the group must still work.
//   --mismatch min the same with one staging tile: remote tiles computed
//                  while the count check travels fill the ring and wait for it.
//   --absent R     rank R never calls: the others must get a timeout error.
//   ... carry      (--absent, --late) a small call first: the call that
//                  fails is one whose count check travels in the peers' one
//                  message each (D56).
//   ... funneled   (last) MPI initialised at MPI_THREAD_FUNNELED.
//   --killed R DIR [S]  rank R dies (SIGKILL) in the middle of the call: the
//                  others must get an error within the timeout (run with mpirun
//                  --enable-recovery so the launcher lets them finish). Each
//                  survivor writes its verdict line to DIR/rank<r>, since a
//                  launcher whose rank was killed reports no useful status
//                  (tests/mpi/survivors_report.sh requires every survivor's).
//                  S: survivor S aborts instead of reporting (the wrapper's
//                  own test: it must then fail).
//   --fault DIR P [after]  a fault from outside (tests/cluster/fault.sh on
//                  simulated hosts: a link taken down, a host's processes
//                  killed): rank P writes DIR/midcall after a few tiles and
//                  waits for DIR/go (the controller injects the fault in
//                  between). Every rank that lives must get an error within the
//                  timeout; it writes its verdict to DIR/rank<r>. With "after":
//                  once DIR/healed exists (the link is back) it keeps its
//                  workspace, drives MPI for 3 s and checks that y and mmY did
//                  not change after the error (DIR/rank<r>.after), its
//                  workspace filled with a pattern and freed (D47).
//   --late P [before]  rank P stalls mid-call, once the group agreed to it, past
//                  the timeout, then resumes and sends the rest. Every other
//                  rank must get the timeout; then it fills its workspace with
//                  a pattern and unmaps it, drives MPI while P's late rows
//                  arrive, and checks that y and mmY did not change after the
//                  error; a later call on the group must be refused at once
//                  (group broken) without touching its outputs (D47).
//                  "before": P calls only after the others timed out.
// Exit 0 only when every process passed (the verdict is reduced over MPI).
#include <mpi.h>
#include <sys/mman.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "../support/case_generator.hpp"
#include "../support/forwarding_communicator.hpp"
#include "comm/communicator.hpp"
#include "engine/tile_schedule.hpp"
#include "gmmav/gmmav.hpp"
#include "gmmav/mpi.hpp"
#include "reference/synthetic_case.hpp"

namespace {

using namespace gmmav::reference;

// The cross-backend series (tests/support/case_generator.hpp; the same cases run through the spawn harness).
CaseSpec spec_for(int index, int W) { return gmmav::testing::cross_backend_spec(index, W); }

// Runs this process's rank of `c` on `comm`.
bool g_min_workspace = false;

std::string run_rank(Case& c, int rank, const gmmav::Comm& comm, bool packed = false, std::vector<std::byte>* keep = nullptr) {
  try {
    const auto plan = gmmav::Plan::create(c.desc(rank));
    std::size_t bytes = gmmav::workspace_size(plan, comm);
    if (g_min_workspace && bytes > 0) bytes = static_cast<std::size_t>(gmmav::engine::kTileRows * plan.desc().n1 * 2);
    std::vector<std::byte> local;
    std::vector<std::byte>& ws = keep != nullptr ? *keep : local;
    ws.assign(bytes, std::byte{0});
    if (packed)  // one pool job for the whole call: the shared expert's tiles run even after a routed tile failed
      gmmav::run(plan, comm, c.tensors(rank), gmmav::PackedWeights::create(plan, c.tensors(rank)), ws);
    else
      gmmav::run(plan, comm, c.tensors(rank), ws);
    return "";
  } catch (const std::exception& e) {
    return e.what();
  }
}

bool cases(int n, const gmmav::Comm& comm) {
  const int W = comm.size(), me = comm.rank();
  bool ok = true;
  for (int i = 0; i < n; ++i) {
    const CaseSpec spec = spec_for(i, W);
    Case mpi_case = make_case(spec);
    const std::string err = run_rank(mpi_case, me, comm);
    if (!err.empty()) {
      std::fprintf(stderr, "rank %d case %d: error: %s\n", me, i, err.c_str());
      ok = false;
      continue;
    }
    Case local = make_case(spec);
    const auto errors = run_in_process(local);
    if (!errors[static_cast<std::size_t>(me)].empty()) {
      std::fprintf(stderr, "rank %d case %d: in-process error: %s\n", me, i, errors[static_cast<std::size_t>(me)].c_str());
      ok = false;
      continue;
    }
    const RankData& a = mpi_case.ranks[static_cast<std::size_t>(me)];
    const RankData& b = local.ranks[static_cast<std::size_t>(me)];
    if (a.y != b.y || a.mm_y != b.mm_y) {
      std::fprintf(stderr, "rank %d case %d: MPI and in-process results differ\n", me, i);
      ok = false;
    }
    const CaseCheck check = check_case(local, spec.values == ValueKind::exact);
    if (!check.ok) {
      std::fprintf(stderr, "rank %d case %d: reference check failed: %s\n", me, i, check.first_failure.c_str());
      ok = false;
    }
  }
  if (me == 0)
    std::printf("%d cases on %d MPI ranks: %s\n", n, W, ok ? "bit-identical to in-process, match the reference" : "FAILED");
  return ok;
}

// --property FIRST COUNT: the across-hosts property series (property_spec),
// cases FIRST .. FIRST+COUNT-1 one after another on one group (a small call
// after a small call carries its counts in heads), each compared bit for bit
// with the same case on the in-process backend and with the reference.
bool property(std::uint64_t first, int count, const gmmav::Comm& comm) {
  const int W = comm.size(), me = comm.rank();
  int mismatches = 0, errors = 0;
  for (int i = 0; i < count; ++i) {
    const std::uint64_t seed = first + static_cast<std::uint64_t>(i);
    const CaseSpec spec = gmmav::testing::property_spec(seed, W);
    Case mpi_case = make_case(spec);
    const std::string err = run_rank(mpi_case, me, comm);
    Case local = make_case(spec);
    const auto local_errors = run_in_process(local);
    const std::string& lerr = local_errors[static_cast<std::size_t>(me)];
    const char* op = spec.op == gmmav::Op::dispatch ? "dispatch" : "combine";
    if (!err.empty() || !lerr.empty()) {
      std::fprintf(stderr, "rank %d seed %llu (%s): error: MPI: %s | in-process: %s\n", me, static_cast<unsigned long long>(seed),
                   op, err.c_str(), lerr.c_str());
      ++errors;
      continue;
    }
    const RankData& a = mpi_case.ranks[static_cast<std::size_t>(me)];
    const RankData& b = local.ranks[static_cast<std::size_t>(me)];
    if (a.y != b.y || a.mm_y != b.mm_y || a.permute_out != b.permute_out) {
      std::size_t at = 0;
      while (at < a.y.size() && at < b.y.size() && a.y[at] == b.y[at]) ++at;
      std::fprintf(stderr,
                   "rank %d seed %llu (%s, e=%d, %s counts, H1=%lld N1=%lld): MPI and in-process differ (y: first at element %zu "
                   "of %zu%s%s)\n",
                   me, static_cast<unsigned long long>(seed), op, spec.local_experts, to_string(spec.counts),
                   static_cast<long long>(spec.h1), static_cast<long long>(spec.n1), at, a.y.size(),
                   a.mm_y != b.mm_y ? "; mmY differs" : "", a.permute_out != b.permute_out ? "; permuteOut differs" : "");
      ++mismatches;
    }
    const CaseCheck check = check_case(local, true, me);
    if (!check.ok) {
      std::fprintf(stderr, "rank %d seed %llu (%s): reference check failed: %s\n", me, static_cast<unsigned long long>(seed), op,
                   check.first_failure.c_str());
      ++mismatches;
    }
  }
  int totals[2] = {mismatches, errors}, all[2] = {0, 0};
  MPI_Allreduce(totals, all, 2, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (me == 0) {
    const char* bytes = std::getenv("GMMAV_MPI_MESSAGE_BYTES");
    std::printf("property: seeds %llu..%llu on %d MPI ranks (GMMAV_MPI_MESSAGE_BYTES %s): %d cases, %d mismatches, %d errors\n",
                static_cast<unsigned long long>(first), static_cast<unsigned long long>(first + count - 1), W,
                bytes ? bytes : "unset", count, all[0], all[1]);
  }
  return all[0] == 0 && all[1] == 0;
}

bool mismatch(const gmmav::Comm& comm) {
  const int W = comm.size(), me = comm.rank();
  CaseSpec s;
  s.world_size = W;
  s.local_experts = 2;
  // Several 128-row tiles per rank and peer: with one staging slot the
  // second remote tile must wait for the check's verdict.
  s.rows_per_rank = g_min_workspace ? 1200 : 40;
  s.h1 = 24;
  s.n1 = 16;
  s.shared_expert = true;
  s.counts = CountPattern::balanced;
  // A good call twice (the second meets in one round: counts as last time),
  // then the broken counts, then the good call again: the group must still
  // check every call's counts and still work after a refused call.
  Case expected = make_case(s);
  run_in_process(expected);
  const auto good_call = [&](const char* when) {
    Case g = make_case(s);
    const std::string e = run_rank(g, me, comm);
    const bool same = g.ranks[static_cast<std::size_t>(me)].y == expected.ranks[static_cast<std::size_t>(me)].y &&
                      g.ranks[static_cast<std::size_t>(me)].mm_y == expected.ranks[static_cast<std::size_t>(me)].mm_y;
    if (!e.empty() || !same) std::printf("rank %d: good call %s failed: %s%s\n", me, when, e.c_str(), same ? "" : "y differs");
    return e.empty() && same;
  };
  bool good = good_call("1") && good_call("2");
  Case c = make_case(s);
  auto& rc = c.ranks[static_cast<std::size_t>(W - 1)].recv_counts;
  rc[0] += 1;  // (source 0, destination W-1, expert 0) now disagrees
  rc[1] -= 1;
  // A later mismatch in another rank's column: every rank must still name the group's first.
  auto& later = c.ranks[1].recv_counts;
  later[static_cast<std::size_t>((W - 1) * 2)] += 1;  // (source W-1, destination 1, expert 0)
  later[static_cast<std::size_t>((W - 1) * 2 + 1)] -= 1;
  const std::string want = "(source 0, destination " + std::to_string(W - 1) + ", expert 0)";
  bool refused = true;
  std::string err;
  for (const bool packed : {false, true}) {
    err = run_rank(c, me, comm, packed);
    bool untouched = true;
    for (auto v : c.ranks[static_cast<std::size_t>(me)].y) untouched = untouched && v == 0xA5A5;
    for (auto v : c.ranks[static_cast<std::size_t>(me)].mm_y) untouched = untouched && v == 0xA5A5;
    if (!untouched) std::printf("rank %d: the refused call (%s weights) wrote y or mmY\n", me, packed ? "packed" : "plain");
    refused = refused && untouched && err.find(want) != std::string::npos;
  }
  good = good_call("after the refused one") && good;
  const bool ok = refused && good;
  std::printf("rank %d: %s -> %s\n", me, err.empty() ? "no error" : err.c_str(), ok ? "expected" : "UNEXPECTED");
  return ok;
}

// A small call that must succeed (so that the group's next call carries its
// count check in its messages, D56).
bool small_call_first(const gmmav::Comm& comm) {
  CaseSpec s;
  s.world_size = comm.size();
  s.local_experts = 2;
  s.rows_per_rank = 40;
  Case c = make_case(s);
  const std::string err = run_rank(c, comm.rank(), comm);
  if (!err.empty()) std::printf("rank %d: the small call first failed: %s -> UNEXPECTED\n", comm.rank(), err.c_str());
  return err.empty();
}

bool absent(int who, bool carry, const gmmav::Comm& comm) {
  const int me = comm.rank();
  if (carry && !small_call_first(comm)) return false;
  if (me == who) {
    std::printf("rank %d: not calling\n", me);
    return true;
  }
  CaseSpec s;
  s.world_size = comm.size();
  s.local_experts = 2;
  s.rows_per_rank = 40;
  Case c = make_case(s);
  const auto t0 = std::chrono::steady_clock::now();
  const std::string err = run_rank(c, me, comm);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const bool ok = err.find("timed out") != std::string::npos;
  std::printf("rank %d: after %.2f s: %s -> %s\n", me, secs, err.c_str(), ok ? "expected" : "UNEXPECTED");
  return ok;
}

bool file_exists(const std::string& path) {
  if (std::FILE* f = std::fopen(path.c_str(), "r")) {
    std::fclose(f);
    return true;
  }
  return false;
}

void write_line(const std::string& path, const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
  const std::string tmp = path + ".tmp";
  if (FILE* f = std::fopen(tmp.c_str(), "w")) {
    std::fprintf(f, "%s\n", line.c_str());
    std::fclose(f);
    std::rename(tmp.c_str(), path.c_str());  // the controller never sees half a line
  }
}

// Waits (up to `limit`) for a file the controller creates.
bool wait_for_file(const std::string& path, std::chrono::seconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!file_exists(path)) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

// Kills this process after it has handed out a few tiles of the call.
class DyingExchange final : public gmmav::testing::ForwardingExchange {
 public:
  using ForwardingExchange::ForwardingExchange;
  void* rows_for(int d, int j, std::int64_t f, std::int64_t r) override {
    if (++tiles_ == 3) raise(SIGKILL);
    return ForwardingExchange::rows_for(d, j, f, r);
  }

 private:
  std::atomic<int> tiles_{0};
};

bool killed(int who, const std::string& dir, int crashing, const gmmav::Comm& comm) {
  const int me = comm.rank();
  CaseSpec s;
  s.world_size = comm.size();
  s.local_experts = 2;
  s.rows_per_rank = 2000;
  s.h1 = 64;
  s.n1 = 64;
  s.counts = CountPattern::balanced;
  Case c = make_case(s);
  // One good call first: every TCP connection exists before a rank dies (a
  // connect to a peer that already died can stall Open MPI itself).
  Case warm = make_case(s);
  if (const std::string e = run_rank(warm, me, comm); !e.empty())
    std::fprintf(stderr, "rank %d: warm-up call failed: %s\n", me, e.c_str());
  const gmmav::Comm use =
      me == who ? gmmav::testing::wrapped(comm, [](auto inner) { return std::make_unique<DyingExchange>(std::move(inner)); })
                : comm;
  const auto t0 = std::chrono::steady_clock::now();
  const std::string err = run_rank(c, me, use);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const bool ok = !err.empty();
  if (me == crashing) std::abort();
  const std::string line = "rank " + std::to_string(me) + ": after " + std::to_string(secs) +
                           " s: " + (err.empty() ? "no error" : err) + " -> " + (ok ? "expected" : "UNEXPECTED");
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
  if (FILE* f = std::fopen((dir + "/rank" + std::to_string(me)).c_str(), "w")) {
    std::fprintf(f, "%s\n", line.c_str());
    std::fclose(f);
  }
  // Stay until every other survivor has written its verdict (at most 5 s): the
  // launcher may end the whole job when the first survivor exits without
  // MPI_Finalize, before a slower one reported (seen across simulated hosts).
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (int r = 0; r < comm.size(); ++r) {
    if (r == who || r == me) continue;
    while (!file_exists(dir + "/rank" + std::to_string(r)) && std::chrono::steady_clock::now() < end)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return ok;
}

// Pages of this test's own, so that it can unmap a workspace after a failed
// call: any later read by MPI then faults instead of going unseen.
struct MappedBytes {
  std::byte* data = nullptr;
  std::size_t bytes = 0;
  explicit MappedBytes(std::size_t n) : bytes(std::max<std::size_t>(n, 1)) {
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) std::abort();
    data = static_cast<std::byte*>(p);
  }
  void unmap() {
    if (data != nullptr) munmap(data, bytes);
    data = nullptr;
  }
};

std::string run_rank_in(Case& c, int rank, const gmmav::Comm& comm, std::span<std::byte> ws) {
  try {
    gmmav::run(gmmav::Plan::create(c.desc(rank)), comm, c.tensors(rank), ws);
    return "";
  } catch (const std::exception& e) {
    return e.what();
  }
}

// Pauses the call after a few tiles: tells the controller, waits for its fault.
class PausingExchange final : public gmmav::testing::ForwardingExchange {
 public:
  PausingExchange(std::unique_ptr<gmmav::comm::Exchange> inner, std::string dir)
      : ForwardingExchange(std::move(inner)), dir_(std::move(dir)) {}
  void* rows_for(int d, int j, std::int64_t f, std::int64_t r) override {
    // Every computing thread stops here from the third tile on, so this rank
    // sends nothing more until the fault is in place.
    const int n = ++tiles_;
    if (n == 3) write_line(dir_ + "/midcall", "mid-call");
    if (n >= 3 && !go_.load()) go_ = wait_for_file(dir_ + "/go", std::chrono::seconds(30));
    return ForwardingExchange::rows_for(d, j, f, r);
  }

 private:
  std::string dir_;
  std::atomic<int> tiles_{0};
  std::atomic<bool> go_{false};
};

bool fault(const std::string& dir, int pauser, bool after, const gmmav::Comm& comm) {
  const int me = comm.rank();
  CaseSpec s;
  s.world_size = comm.size();
  s.local_experts = 2;
  s.rows_per_rank = 3000;
  s.h1 = 64;
  s.n1 = 256;  // 64 KiB tiles: rendezvous messages, several in flight on the wire
  s.counts = CountPattern::balanced;
  Case c = make_case(s);
  const gmmav::Comm use =
      me == pauser
          ? gmmav::testing::wrapped(comm, [&](auto inner) { return std::make_unique<PausingExchange>(std::move(inner), dir); })
          : comm;
  const auto t0 = std::chrono::steady_clock::now();
  MappedBytes ws(gmmav::workspace_size(gmmav::Plan::create(c.desc(me)), comm));
  const std::string err = run_rank_in(c, me, use, {ws.data, ws.bytes});
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const RankData& mine = c.ranks[static_cast<std::size_t>(me)];
  const auto y = mine.y;
  const auto mm_y = mine.mm_y;
  const bool ok = !err.empty();
  write_line(dir + "/rank" + std::to_string(me), "rank " + std::to_string(me) + ": after " + std::to_string(secs) +
                                                     " s: " + (err.empty() ? "no error" : err) + " -> " +
                                                     (ok ? "expected" : "UNEXPECTED"));
  // Stay until the controller has every verdict (DIR/healed), so that the
  // launcher does not end the job when this rank exits before a slower one reported.
  if (!after) {
    wait_for_file(dir + "/healed", std::chrono::seconds(60));
    return ok;
  }
  // The link is back (or the dead host stays dead): whatever MPI still had
  // pending for this call must not land in the outputs, nor read the
  // workspace, which the caller may now reuse or free.
  std::memset(ws.data, 0x5A, ws.bytes);
  ws.unmap();
  if (!wait_for_file(dir + "/healed", std::chrono::seconds(60))) return ok;
  const auto end =
      std::chrono::steady_clock::now() + std::chrono::seconds(3);  // TCP retransmits after the link is back within ~1-2 s
  while (std::chrono::steady_clock::now() < end) {
    int flag = 0;
    MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, MPI_STATUS_IGNORE);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const bool same = mine.y == y && mine.mm_y == mm_y;
  write_line(dir + "/rank" + std::to_string(me) + ".after", "rank " + std::to_string(me) + ": outputs after the error " +
                                                                (same ? "unchanged -> expected" : "CHANGED -> UNEXPECTED"));
  return ok && same;
}

// Stalls the call at its third tile, once the group agreed to it (the peers
// posted their receives and started their sends), for `stall`: past the peers'
// timeout. Every computing thread stops, so nothing drives MPI on this rank.
class StallingExchange final : public gmmav::testing::ForwardingExchange {
 public:
  StallingExchange(std::unique_ptr<gmmav::comm::Exchange> inner, std::chrono::milliseconds stall)
      : ForwardingExchange(std::move(inner)), stall_(stall) {}
  void* rows_for(int d, int j, std::int64_t f, std::int64_t r) override {
    const int n = ++tiles_;
    if (n == 3) {
      ForwardingExchange::wait_agreed();
      // A moment of progress: the peers' own check completes (a collective
      // may still need this rank's forwarding); short, so that their sends
      // to this rank are still in flight when it stops.
      const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(20);
      while (std::chrono::steady_clock::now() < until) {
        ForwardingExchange::progress();
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      std::this_thread::sleep_for(stall_);
      resumed_ = true;
    } else if (n > 3) {
      while (!resumed_.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return ForwardingExchange::rows_for(d, j, f, r);
  }

 private:
  std::chrono::milliseconds stall_;
  std::atomic<int> tiles_{0};
  std::atomic<bool> resumed_{false};
};

// before_call: rank `who` calls only after the others timed out (they are
// still in the count check, nothing posted), instead of stalling mid-call.
// carry: a small call (heads carry the rows, D56) after a small one.
bool late(int who, bool before_call, bool carry, const gmmav::Comm& comm) {
  const int me = comm.rank();
  if (carry && !small_call_first(comm)) return false;
  CaseSpec s;
  s.world_size = comm.size();
  s.local_experts = 2;
  s.rows_per_rank = carry ? 60 : 3000;
  s.h1 = 64;
  s.n1 = carry ? 32 : 256;  // 64 KiB tiles: rendezvous messages, several in flight
  s.shared_expert = true;
  s.counts = CountPattern::balanced;
  const auto timeout = comm.timeout();
  const auto stall = 2 * timeout;
  Case c = make_case(s);
  const gmmav::Comm use =
      me == who && !before_call
          ? gmmav::testing::wrapped(comm, [&](auto inner) { return std::make_unique<StallingExchange>(std::move(inner), stall); })
          : comm;
  MappedBytes ws(gmmav::workspace_size(gmmav::Plan::create(c.desc(me)), comm));
  if (me == who && before_call) std::this_thread::sleep_for(stall);
  const auto t0 = std::chrono::steady_clock::now();
  const std::string err = run_rank_in(c, me, use, {ws.data, ws.bytes});
  const auto failed_at = std::chrono::steady_clock::now();
  const double secs = std::chrono::duration<double>(failed_at - t0).count();
  const RankData& mine = c.ranks[static_cast<std::size_t>(me)];
  const auto y = mine.y;
  const auto mm_y = mine.mm_y;
  // The late rank may fail or not; every other one must time out.
  bool ok = me == who || err.find("timed out") != std::string::npos;
  std::printf("rank %d: after %.2f s: %s -> %s\n", me, secs, err.empty() ? "no error" : err.c_str(),
              ok ? "expected" : "UNEXPECTED");
  std::fflush(stdout);
  // The failed call's workspace is the caller's again: overwrite it, then give the pages back.
  std::memset(ws.data, 0x5A, ws.bytes);
  ws.unmap();
  if (!err.empty()) {
    // A later call on the broken group: refused at once, its outputs untouched.
    Case again = make_case(s);
    std::vector<std::byte> ws2(gmmav::workspace_size(gmmav::Plan::create(again.desc(me)), comm));
    const auto t1 = std::chrono::steady_clock::now();
    const std::string err2 = run_rank_in(again, me, comm, ws2);
    const double secs2 = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    bool untouched = true;
    for (auto v : again.ranks[static_cast<std::size_t>(me)].y) untouched = untouched && v == 0xA5A5;
    for (auto v : again.ranks[static_cast<std::size_t>(me)].mm_y) untouched = untouched && v == 0xA5A5;
    const bool refused = err2.find("broken") != std::string::npos && secs2 < 0.5 && untouched;
    std::printf("rank %d: the next call after %.3f s: %s%s -> %s\n", me, secs2, err2.empty() ? "no error" : err2.c_str(),
                untouched ? "" : " (it wrote y or mmY)", refused ? "expected" : "UNEXPECTED");
    ok = ok && refused;
  }
  // Drive MPI while the late rank resumes, sends its rows and gives up (its
  // own timeout, ~3 timeouts after the call began; this rank failed after
  // ~1): nothing of it may land in this rank's outputs. The late rank itself
  // goes on (MPI_Allreduce at the end drives its sends).
  const auto end = me == who ? failed_at : failed_at + stall + timeout + timeout / 2;
  while (std::chrono::steady_clock::now() < end) {
    int flag = 0;
    MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, MPI_STATUS_IGNORE);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const bool same = mine.y == y && mine.mm_y == mm_y;
  std::printf("rank %d: outputs after the error %s\n", me, same ? "unchanged -> expected" : "CHANGED -> UNEXPECTED");
  return ok && same;
}

}  // namespace

int main(int argc, char** argv) {
  // A last argument "funneled": MPI at MPI_THREAD_FUNNELED, where only the
  // calling thread may call MPI (the count check completes in meet, and that
  // thread polls while the pool computes).
  const bool funneled = argc > 1 && std::string(argv[argc - 1]) == "funneled";
  if (funneled) --argc;
  int provided = 0;
  MPI_Init_thread(&argc, &argv, funneled ? MPI_THREAD_FUNNELED : MPI_THREAD_MULTIPLE, &provided);
  int ok = 1;
  {
    gmmav::GroupOptions opt;
    std::string mode = argc > 1 ? argv[1] : "--cases";
    if (mode == "--absent" || mode == "--killed" || mode == "--fault" || mode == "--late")
      opt.timeout = std::chrono::milliseconds(2000);
    if (mode == "--absent-at-creation") {  // rank R never makes the group: the others' creation times out (issue 29)
      int rank = 0;
      MPI_Comm_rank(MPI_COMM_WORLD, &rank);
      const int absent_rank = argc > 2 ? std::atoi(argv[2]) : 1;
      opt.timeout = std::chrono::milliseconds(2000);
      if (rank == absent_rank) {
        std::this_thread::sleep_for(std::chrono::milliseconds(6000));
        std::printf("rank %d: stayed away\n", rank);
      } else {
        const auto start = std::chrono::steady_clock::now();
        try {
          (void)gmmav::create_mpi_group(MPI_COMM_WORLD, opt);
          std::printf("UNEXPECTED: rank %d made the group without rank %d\n", rank, absent_rank);
        } catch (const gmmav::Error& e) {
          const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          const bool ok_error = e.code() == gmmav::Errc::timeout && s < 4.0;
          std::printf("rank %d: group creation failed after %.1f s -> %s (%s)\n", rank, s, ok_error ? "expected" : "UNEXPECTED",
                      e.what());
        }
      }
      std::fflush(stdout);
      std::_Exit(0);  // a collective of the creation may still be pending: no teardown (the verdict is the output)
    }
    if (mode == "--refused-group") {  // the group's creation must fail on this rank (e.g. env that differs per rank)
      try {
        (void)gmmav::create_mpi_group(MPI_COMM_WORLD, opt);
        std::printf("UNEXPECTED: the group was created\n");
        ok = 0;
      } catch (const gmmav::Error& e) {
        int rank = 0;
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        std::printf("rank %d: group refused -> expected (%s)\n", rank, e.what());
      }
      std::fflush(stdout);
      MPI_Finalize();
      return ok ? 0 : 1;
    }
    const gmmav::Comm comm = gmmav::create_mpi_group(MPI_COMM_WORLD, opt);
    g_min_workspace =
        (argc > 3 && std::string(argv[3]) == "min") || (mode == "--mismatch" && argc > 2 && std::string(argv[2]) == "min");
    if (mode == "--cases")
      ok = cases(argc > 2 ? std::atoi(argv[2]) : 20, comm);
    else if (mode == "--property")
      ok = property(argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 0, argc > 3 ? std::atoi(argv[3]) : 8, comm);
    else if (mode == "--mismatch")
      ok = mismatch(comm);
    else if (mode == "--absent")
      ok = absent(argc > 2 ? std::atoi(argv[2]) : 0, argc > 3 && std::string(argv[3]) == "carry", comm);
    else if (mode == "--killed") {
      killed(argc > 2 ? std::atoi(argv[2]) : 0, argc > 3 ? argv[3] : ".", argc > 4 ? std::atoi(argv[4]) : -1, comm);
      std::_Exit(0);  // a peer is dead: no collective teardown (MPI_Finalize could wait for it)
    } else if (mode == "--late")
      ok = late(argc > 2 ? std::atoi(argv[2]) : 1, argc > 3 && std::string(argv[3]) == "before",
                std::string(argv[argc - 1]) == "carry", comm);
    else if (mode == "--fault") {
      fault(argc > 2 ? argv[2] : ".", argc > 3 ? std::atoi(argv[3]) : 0, argc > 4 && std::string(argv[4]) == "after", comm);
      std::_Exit(0);  // peers are gone or unreachable: no collective teardown
    } else {
      std::fprintf(
          stderr,
          "usage: gmmav_mpi_check --cases N | --mismatch | --refused-group | --absent R [carry] | --killed R DIR | --fault DIR "
          "P [after] | --late "
          "P [before] [carry]\n");
      ok = 0;
    }
  }
  int all_ok = 0;
  MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  MPI_Finalize();
  return all_ok ? 0 : 1;
}
