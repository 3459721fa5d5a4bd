"""gmmav.torch's weight cache measured (issue 31): one prefill-sized call with unchanged weights,

  native packed   the C++ API with the weights packed once (PackedWeights::create + run(..., packed),
                  timed in C++ by gmmav._native.time_cpp_packed_calls): the target
  python cached   gmmav.torch.npu_gmm_alltoallv, weights from the cache (after two warm-up calls)
  python uncached the same with the cache bypassed: every call packs the weights
  native per call the C++ API's plain run (packs in the call)

    PYTHONPATH=build/python /usr/bin/python3 tests/python/weight_cache_bench.py [--W 1|2] [--dtype bf16|fp16]
        [--e 4] [--h 2048] [--n 2048] [--rows 512] [--rounds 9] [--dispatch]

W ranks are threads of this process (in-process group), sharing the compute pool; every round
runs the four variants once each in a shuffled order (the same on every rank); rank 0 prints the
medians and the ratio of each to the packed native call. Outputs are checked bit-identical to the
native call's. Asserts nothing about time (a perf smoke: the numbers are docs/python.md's)."""
import argparse
import os
import random
import statistics
import sys
import threading
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cases  # noqa: E402

import gmmav.distributed as gd  # noqa: E402
import gmmav.torch as gt  # noqa: E402
import gmmav.weight_cache  # noqa: E402
from gmmav import _native  # noqa: E402
from gmmav.layouts import NATIVE_DTYPES  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--W", type=int, default=1)
p.add_argument("--dtype", choices=("bf16", "fp16"), default="bf16")
p.add_argument("--e", type=int, default=4)
p.add_argument("--h", type=int, default=2048)
p.add_argument("--n", type=int, default=2048)
p.add_argument("--rows", type=int, default=512, help="A: rows each rank's experts compute (sum of recv counts)")
p.add_argument("--rounds", type=int, default=9)
p.add_argument("--dispatch", action="store_true", help="the dispatch op (npu_alltoallv_gmm) instead of combine")
a = p.parse_args()
dt = torch.bfloat16 if a.dtype == "bf16" else torch.float16
W, e, h1, n1 = a.W, a.e, a.h, a.n
per = a.rows // (W * e)
counts = [per] * (W * e)
A = per * W * e
names = gt.in_process_hcoms(W)
order = [random.Random(i).sample(["packed", "plain", "cached", "uncached"], 4) for i in range(a.rounds)]
times = [dict(packed=[], plain=[], cached=[], uncached=[]) for _ in range(W)]
inner = [[] for _ in range(W)]  # python cached: the C++ part of each call (what _native.run returned)
info = {}
bypass = threading.local()
cache = gmmav.weight_cache.cache  # the ops' cache
real_lookup = cache.lookup


def lookup(*args):  # the cache bypassed on threads that ask for it (the uncached variant)
    return (None, None) if getattr(bypass, "on", False) else real_lookup(*args)


cache.lookup = lookup
cpp_seconds = threading.local()  # per rank's thread: the seconds of its last _native.run / run_dispatch
real_native = {fn: getattr(_native, fn) for fn in ("run", "run_dispatch")}


def timed(fn):
    def call(*args):
        cpp_seconds.last = real_native[fn](*args)
        return cpp_seconds.last
    return call


for _fn in real_native:  # gmmav.ops looks them up at each call
    setattr(_native, _fn, timed(_fn))


def view(t):
    return (t.data_ptr(), NATIVE_DTYPES[t.dtype], tuple(t.shape), tuple(t.stride()))


def rank(r, name):
    g = gd.native_group(name)
    gen = torch.Generator().manual_seed(r)
    x = torch.randn(A, h1, generator=gen).to(dt)
    w = (torch.randn(e, h1, n1, generator=gen) / h1 ** 0.5).to(dt)
    y = torch.empty(A, n1, dtype=dt)
    op = gt.npu_alltoallv_gmm if a.dispatch else gt.npu_gmm_alltoallv
    args = (g, W, counts, counts, False, False, view(x), view(w), view(y), None, None, None)
    if a.dispatch:  # time_cpp_* run the combine op; the dispatch op's native call is run_dispatch
        def cpp(packed):
            h = _native.PackedWeights() if packed else None
            if h is not None:
                _native.run_dispatch(*args, None, h)  # packs (not timed)
            t0 = time.perf_counter()
            _native.run_dispatch(*args, None, h)
            return [time.perf_counter() - t0]
    else:
        def cpp(packed):
            return (_native.time_cpp_packed_calls if packed else _native.time_cpp_calls)(*args, 1)
    for _ in range(2):  # warm-up: the second call packs the weights into the cache
        op(x, w, name, W, counts, counts)
    cpp(True)
    for rnd in order:
        for v in rnd:
            if v in ("packed", "plain"):
                times[r][v] += cpp(v == "packed")
                continue
            bypass.on = v == "uncached"
            t0 = time.perf_counter()
            out = op(x, w, name, W, counts, counts)[0]
            times[r][v].append(time.perf_counter() - t0)
            if v == "cached":
                inner[r].append(cpp_seconds.last)
            bypass.on = False
            assert cases.bits_equal(out, y), f"rank {r}: {v} differs from the native call"
    if r == 0:
        info.update(gt.weight_cache_info())  # while the weights live (entries go with their storage)
    return None


cases.run_ranks(names, rank)
med = {v: statistics.median(times[0][v]) for v in times[0]}
op_name = "npu_alltoallv_gmm (dispatch)" if a.dispatch else "npu_gmm_alltoallv (combine)"
print(f"{op_name} {a.dtype} e={e} H1={h1} N1={n1} A={A} rows/rank W={W} (in-process), {_native.compute_threads()} "
      f"compute threads, {a.rounds} rounds, rank 0 medians:")
for v, label in (("packed", "native, PackedWeights"), ("cached", "python, cached"), ("uncached", "python, uncached"),
                 ("plain", "native, per call")):
    print(f"  {label:22s} {med[v] * 1e3:8.2f} ms  {med[v] / med['packed']:5.3f}x  (min {min(times[0][v]) * 1e3:.2f})")
if inner[0]:
    own = [t - i for t, i in zip(times[0]["cached"], inner[0])]
    print(f"  python cached, outside the C++ call: median {statistics.median(own) * 1e6:.0f} us per call "
          f"(C++ part {statistics.median(inner[0]) * 1e3:.2f} ms)")
print(f"  cache: {info['entries']} entries, {info['bytes'] / 2**20:.1f} MiB, {info['hits']} hits, {info['packs']} packs")
