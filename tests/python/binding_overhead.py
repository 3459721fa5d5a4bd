"""The binding's overhead: gmmav.torch.npu_gmm_alltoallv vs the C++ API (Plan::from_tensors +
gmmav::run, timed in C++ by gmmav._native.time_cpp_calls) on the same tensors and group.

    mpirun -np 2 -x PYTHONPATH=build/python /usr/bin/python3 tests/python/binding_overhead.py [--small] [--reps N]

Default shape: prefill, the seed widths (BS=256, K=2, H=7168, N=4096, e=4, W=2, shared expert,
fp16). --small: H=N=64 (where the fixed cost per call shows). Calls alternate C++/Python; rank 0
prints the medians (noisy on a shared machine: calls of seconds vary by more than the binding
costs) and, per Python call, its wall time minus the C++ time of the same call (the binding's own
cost: argument conversion, output allocation, the GIL), which no load on the machine can hide."""
import argparse
import statistics
import time

import torch

import gmmav
import gmmav.distributed as gd
import gmmav.torch as gt
from gmmav import _native

p = argparse.ArgumentParser()
p.add_argument("--small", action="store_true")
p.add_argument("--reps", type=int, default=7)
a = p.parse_args()
assert gmmav.launched_by_mpi(), "run under mpirun -np 2"
name = gt.hcom()
g = gd.native_group(name)
W, r, e, bs, k = g.size, g.rank, 4, 256, 2
h = n = 64 if a.small else None
h1 = h2 = h or 7168
n1 = n2 = n or 4096
A = bs * k
per = A // (W * e)
send = [per] * (W * e)
recv = [per] * (W * e)
torch.manual_seed(r)
dt = torch.float16
x = torch.randn(A, h1).to(dt)
w = (torch.randn(e, h1, n1) / h1 ** 0.5).to(dt)
mx = torch.randn(bs, h2).to(dt)
mw = (torch.randn(h2, n2) / h2 ** 0.5).to(dt)


def view(t):
    return (t.data_ptr(), 0, tuple(t.shape), tuple(t.stride()))


cpp_seconds = []  # per gmmav.torch call: the seconds _native.run (the C++ API) reports for that very call
run = _native.run


def timed_run(*args):
    seconds = run(*args)
    cpp_seconds.append(seconds)
    return seconds


_native.run = timed_run  # gmmav.ops looks it up at each call
y = torch.empty(sum(recv), n1, dtype=dt)
my = torch.empty(bs, n2, dtype=dt)
cpp, py, inner = [], [], []
gt.npu_gmm_alltoallv(x, w, name, W, send, recv, mm_x=mx, mm_weight=mw)  # warm-up
for _ in range(a.reps):
    cpp += _native.time_cpp_calls(g, W, send, recv, False, False, view(x), view(w), view(y), view(mx), view(mw), view(my), 1)
    t0 = time.perf_counter()
    yp, myp = gt.npu_gmm_alltoallv(x, w, name, W, send, recv, mm_x=mx, mm_weight=mw)
    py.append(time.perf_counter() - t0)
    inner.append(cpp_seconds[-1])  # the C++ part of that very call
    assert torch.equal(yp.view(torch.int16), y.view(torch.int16)) and torch.equal(myp.view(torch.int16), my.view(torch.int16))
mc, mp_ = statistics.median(cpp), statistics.median(py)
own = [p_ - i for p_, i in zip(py, inner)]  # per call: Python wall time minus its own C++ time
if r == 0:
    print(f"shape BS={bs} K={k} H1={h1} N1={n1} H2={h2} N2={n2} e={e} W={W} fp16, {a.reps} calls each, "
          f"{gmmav.compute_threads()} compute threads per rank")
    print(f"C++ API   median {mc * 1e3:9.3f} ms  (min {min(cpp) * 1e3:.3f})")
    print(f"Python    median {mp_ * 1e3:9.3f} ms  (min {min(py) * 1e3:.3f})")
    print(f"overhead  {(mp_ - mc) * 1e6:+.0f} us per call = {100 * (mp_ / mc - 1):+.2f} % (medians); "
          f"{(min(py) - min(cpp)) * 1e6:+.0f} us = {100 * (min(py) / min(cpp) - 1):+.2f} % (minima); outputs bit-identical")
    print(f"binding's own time per call (Python wall minus the C++ time of the same call): median "
          f"{statistics.median(own) * 1e6:.0f} us, max {max(own) * 1e6:.0f} us = "
          f"{100 * statistics.median(own) / statistics.median(inner):.3f} % / "
          f"{100 * max(o / i for o, i in zip(own, inner)):.3f} % "
          f"of the C++ call (median / worst)")
