// MPI transport choice for the backend (docs/decisions.md D6): the operator's
// traffic pattern -- every rank sends T row tiles of B bytes to every peer,
// each landing at its own offset of the peer's output -- moved with
//   p2p: MPI_Irecv posted per tile at its final offset + MPI_Isend per tile, Waitall;
//   rma: MPI_Put per tile into a window over the output, MPI_Win_lock_all/flush_all/unlock_all
//        (passive target), with a barrier so every rank knows the data has landed.
// Median of 7 timed rounds after a warm-up; the slowest rank's time counts.
//
// Build and run (not part of the default build):
//   cmake -DGMMAV_BENCH_EXPERIMENTS=ON (target gmmav_mpi_p2p_vs_rma), or
//   mpicxx -O2 -std=c++20 bench/experiments/mpi_p2p_vs_rma.cpp -o /tmp/mpi_p2p_vs_rma
//   mpirun --allow-run-as-root --oversubscribe -np 4 [--mca btl tcp,self] /tmp/mpi_p2p_vs_rma [tile_KiB] [tiles_per_peer]
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int me = 0, W = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &me);
  MPI_Comm_size(MPI_COMM_WORLD, &W);
  const std::size_t tile = static_cast<std::size_t>(argc > 1 ? std::atoi(argv[1]) : 256) * 1024;
  const int tiles = argc > 2 ? std::atoi(argv[2]) : 16;
  const std::size_t per_peer = tile * static_cast<std::size_t>(tiles);
  std::vector<char> src(per_peer * static_cast<std::size_t>(W), static_cast<char>(me + 1));
  char* dst = nullptr;
  MPI_Alloc_mem(static_cast<MPI_Aint>(per_peer * static_cast<std::size_t>(W)), MPI_INFO_NULL, &dst);
  MPI_Win win;
  MPI_Win_create(dst, static_cast<MPI_Aint>(per_peer * static_cast<std::size_t>(W)), 1, MPI_INFO_NULL, MPI_COMM_WORLD, &win);

  const auto p2p = [&] {
    std::vector<MPI_Request> reqs;
    for (int s = 0; s < W; ++s) {
      if (s == me) continue;
      for (int t = 0; t < tiles; ++t) {
        reqs.emplace_back();
        MPI_Irecv(dst + static_cast<std::size_t>(s) * per_peer + static_cast<std::size_t>(t) * tile, static_cast<int>(tile),
                  MPI_BYTE, s, t, MPI_COMM_WORLD, &reqs.back());
      }
    }
    for (int t = 0; t < tiles; ++t) {
      for (int i = 1; i < W; ++i) {
        const int d = (me + i) % W;
        reqs.emplace_back();
        MPI_Isend(src.data() + static_cast<std::size_t>(d) * per_peer + static_cast<std::size_t>(t) * tile,
                  static_cast<int>(tile), MPI_BYTE, d, t, MPI_COMM_WORLD, &reqs.back());
      }
    }
    MPI_Waitall(static_cast<int>(reqs.size()), reqs.data(), MPI_STATUSES_IGNORE);
  };
  const auto rma = [&] {
    MPI_Win_lock_all(0, win);
    for (int t = 0; t < tiles; ++t) {
      for (int i = 1; i < W; ++i) {
        const int d = (me + i) % W;
        MPI_Put(src.data() + static_cast<std::size_t>(d) * per_peer + static_cast<std::size_t>(t) * tile, static_cast<int>(tile),
                MPI_BYTE, d, static_cast<MPI_Aint>(static_cast<std::size_t>(me) * per_peer + static_cast<std::size_t>(t) * tile),
                static_cast<int>(tile), MPI_BYTE, win);
      }
    }
    MPI_Win_flush_all(win);
    MPI_Win_unlock_all(win);
    MPI_Barrier(MPI_COMM_WORLD);  // the receiver may read only after every origin flushed
  };
  const auto alltoall = [&] {
    MPI_Alltoall(src.data(), static_cast<int>(per_peer), MPI_BYTE, dst, static_cast<int>(per_peer), MPI_BYTE, MPI_COMM_WORLD);
  };
  const auto time_it = [&](auto&& fn) {
    std::vector<double> t;
    for (int r = 0; r < 8; ++r) {
      MPI_Barrier(MPI_COMM_WORLD);
      const double t0 = MPI_Wtime();
      fn();
      double dt = MPI_Wtime() - t0, slowest = 0;
      MPI_Allreduce(&dt, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
      if (r > 0) t.push_back(slowest);
    }
    return median(t);
  };
  double tp = 0, tr = 0, ta = 0;
  for (int round = 0; round < 2; ++round) {  // interleaved, twice
    tp = time_it(p2p);
    tr = time_it(rma);
    ta = time_it(alltoall);
  }
  if (me == 0) {
    const double mib = static_cast<double>(per_peer) * (W - 1) / (1 << 20);
    std::printf(
        "W=%d tile=%zu KiB tiles/peer=%d send/rank=%.1f MiB: p2p %.2f ms, rma %.2f ms, MPI_Alltoall %.2f ms; rma/p2p %.2f\n", W,
        tile / 1024, tiles, mib, tp * 1e3, tr * 1e3, ta * 1e3, tr / tp);
  }
  MPI_Win_free(&win);
  MPI_Free_mem(dst);
  MPI_Finalize();
  return 0;
}
