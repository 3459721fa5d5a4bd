"""Seconds per call of gmmav.torch.npu_gmm_alltoallv on each backend, same shapes and inputs.

    PYTHONPATH=build/python /usr/bin/python3 tests/python/backend_timing.py            # gloo, 2 spawned ranks
    mpirun -np 2 -x PYTHONPATH /usr/bin/python3 tests/python/backend_timing.py          # MPI

Shape (--shape): quick (default) BS=256, K=2, e=4, W=2, shared expert, fp16, H=1792, N=1024 (the
bench's --quick prefill widths); full: H=7168, N=4096 (--full); decode: BS=64 at the full widths
(the bench's decode, A=128); tiny: BS=8 at the quick widths (a peer's rows in one message).
--busy: each rank also runs a Python thread that always wants the GIL.
Rank 0 prints the median and minimum of --reps calls."""
import argparse
import os
import socket
import statistics
import time

import torch


SHAPES = {"quick": (1792, 1024, 4, 256, 2), "full": (7168, 4096, 4, 256, 2), "decode": (7168, 4096, 4, 64, 2),
          "tiny": (1792, 1024, 4, 8, 2)}


def _spin():
    """A Python thread that always wants the GIL (as a training loop's helper threads may)."""
    while True:
        sum(range(1000))


def measure(name, W, rank, shape, reps, busy=False):
    import threading

    import gmmav
    import gmmav.torch as gt

    if busy:
        threading.Thread(target=_spin, daemon=True).start()
    h, n, e, bs, k = SHAPES[shape]
    per = bs * k // (W * e)
    counts = [per] * (W * e)
    g = torch.Generator().manual_seed(rank)
    x = torch.randn(bs * k, h, generator=g).half()
    w = (torch.randn(e, h, n, generator=g) / h ** 0.5).half()
    mx = torch.randn(bs, h, generator=g).half()
    mw = (torch.randn(h, n, generator=g) / h ** 0.5).half()
    gt.npu_gmm_alltoallv(x, w, name, W, counts, counts, mm_x=mx, mm_weight=mw)  # warm-up
    t = []
    for _ in range(reps):
        t0 = time.perf_counter()
        gt.npu_gmm_alltoallv(x, w, name, W, counts, counts, mm_x=mx, mm_weight=mw)
        t.append(time.perf_counter() - t0)
    if rank == 0:
        print(f"{'MPI' if gmmav.launched_by_mpi() else 'gloo'}: H={h} N={n} e={e} BS={bs} K={k} W={W} fp16+shared, "
              f"{gmmav.compute_threads()} threads/rank: median {statistics.median(t) * 1e3:.1f} ms, min {min(t) * 1e3:.1f} ms "
              f"({reps} calls)", flush=True)


def gloo_rank(rank, W, port, shape, reps, busy):
    import torch.distributed as dist

    import gmmav.torch as gt

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=W)
    measure(gt.hcom(), W, rank, shape, reps, busy)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--full", action="store_true", help="--shape full")
    p.add_argument("--shape", choices=sorted(SHAPES), default="quick")
    p.add_argument("--busy", action="store_true", help="each rank also runs a Python thread that always wants the GIL")
    p.add_argument("--reps", type=int, default=7)
    a = p.parse_args()
    shape = "full" if a.full else a.shape
    import gmmav

    if gmmav.launched_by_mpi():
        import gmmav.distributed as gd

        name = gd.hcom()
        grp = gd.native_group(name)
        measure(name, grp.size, grp.rank, shape, a.reps, a.busy)
    else:
        import torch.multiprocessing as mp

        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        mp.spawn(gloo_rank, args=(2, port, shape, a.reps, a.busy), nprocs=2)
