#!/usr/bin/python3
"""gmmav's Python path, timed for `gmmav bench` (`--python`): what a PyTorch user calls.

Per rank, torch_npu's call on gmmav (`gmmav.torch.npu_gmm_alltoallv`, or `npu_alltoallv_gmm` for
case.json "op": "dispatch") with the shared expert when the case has one, the weights unchanged
from call to call, so they come from the ops' weight cache (docs/python.md "Weight cache": packed
on the second call that sees them; the warm-up makes at least two calls). The W ranks are threads
of this process (`gmmav.torch.in_process_hcoms`), as the bench's in-process ranks are.

Each repetition also runs the native C++ call with the weights packed once (gmmav's `run` with
PackedWeights, what the bench's `fused` variant calls), the two interleaved and their order
alternated, so the ratio python / native is measured side by side in this process.

Each timed call also records when the last rank entered C++ (gmmav._native's run, wrapped here
for both calls alike), counted from the first rank's start: `entry_us`, the median over calls. The
native call's ranks enter within microseconds; the Python call's take their turns on the GIL for
the op's Python prologue, with a thread wake-up at each hand-over — what W rank threads of one
interpreter cost, and ranks in processes of their own do not.

Input: a case directory written by the bench (bench_case.py). `--package DIR`: where the gmmav
package is (the build tree's build/python, or the installed one); without it, `import gmmav` as
the interpreter finds it.
Output: every rank's y (gmmY) / mm_y of the Python call (bench_case.write_outputs) and one JSON
object on stdout: {"available": true, "torch": ..., "samples_s": [...], "median_s": ...,
"native_samples_s": [...], "native_median_s": ..., "cache": {...}, "entry_us": {"python": ...,
"native": ...}}, or {"available": false,
"why": ...} when torch or gmmav cannot be imported (exit 0).
"""
import argparse
import json
import statistics
import sys
import threading
import time

import bench_case


def watch_entries(native, entered):
    """Wraps native.run / native.run_dispatch (the ops look them up at each call) to record in
    entered[rank] when each rank's last call entered C++."""
    for fn_name in ("run", "run_dispatch"):
        def wrapped(g, *a, _fn=getattr(native, fn_name)):
            entered[g.rank] = time.perf_counter()
            return _fn(g, *a)
        setattr(native, fn_name, wrapped)


def rank_main(r, name, case, args, barrier, times):
    import torch

    import gmmav.distributed as gd
    import gmmav.torch as gt
    from gmmav import _native
    from gmmav.layouts import native_view, op_layouts

    W = case["world_size"]
    me = case["ranks"][r]
    send, recv = me["send_counts"], me["recv_counts"]
    x, w, mx, mw = bench_case.load_rank(args.dir, case, r, torch)
    dispatch = case.get("op", "combine") == "dispatch"
    op = gt.npu_alltoallv_gmm if dispatch else gt.npu_gmm_alltoallv

    def python_call():
        out = op(x, w, name, W, send, recv, mm_x=mx, mm_weight=mw)
        return out[0], out[1]

    # The native call on the same tensors, as stored (a transposed weight view with its flag).
    nx, nw, nmx, nmw, trans_gmm, trans_mm, _, _ = op_layouts(x, w, mx, mw, False, False)
    y = torch.empty((sum(recv), w.shape[2]), dtype=x.dtype)
    mm_y = torch.empty((mx.shape[0], mw.shape[1]), dtype=x.dtype) if mx is not None else None
    shared = tuple(native_view(t) for t in (nmx, nmw, mm_y)) if mx is not None else (None, None, None)
    native_args = (gd.native_group(name), W, send, recv, trans_gmm, trans_mm, native_view(nx), native_view(nw),
                   native_view(y), *shared)
    packed = _native.PackedWeights()

    def native_call():
        if dispatch:
            _native.run_dispatch(*native_args, None, packed)
        else:
            _native.run(*native_args, packed)

    def timed(fn):
        barrier.wait()
        t0 = time.perf_counter()
        out = fn()
        return t0, time.perf_counter() - t0, out

    with torch.no_grad():  # not inference_mode: inference tensors have no version counter, so no cache
        native_call()  # packs `packed` (not timed)
        for _ in range(max(2, args.warmup)):  # the second call packs the weights into the cache
            python_call()
        for it in range(args.repeat):
            order = ("python", "native") if it % 2 == 0 else ("native", "python")
            for v in order:
                t0, t, out = timed(python_call if v == "python" else native_call)
                times[v][r].append(t)
                times["starts"][v][r].append(t0)
                times["entries"][v][r].append(times["entered"][r])
                if v == "python":
                    got = out
    bench_case.write_outputs(args.dir, r, got[0], got[1], torch)
    if r == 0:
        times["cache"] = gt.weight_cache_info()  # while the weights live (entries go with their storage)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dir", help="case directory (case.json and the arrays)")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2, help="untimed calls first (at least 2: the cache packs on the second)")
    p.add_argument("--package", help="the directory holding the gmmav package (put first on sys.path)")
    args = p.parse_args()
    if args.package:
        sys.path.insert(0, args.package)
    try:
        import torch
        import gmmav.torch as gt
        from gmmav import _native
    except ImportError as e:
        print(json.dumps({"available": False, "why": f"gmmav's Python package not importable by {sys.executable}"
                          f"{' from ' + args.package if args.package else ''}: {e}"}))
        return 0
    case = bench_case.read_case(args.dir)
    W = case["world_size"]
    names = gt.in_process_hcoms(W)
    barrier = threading.Barrier(W)
    times = {v: [[] for _ in range(W)] for v in ("python", "native")}
    times.update({k: {v: [[] for _ in range(W)] for v in ("python", "native")} for k in ("starts", "entries")})
    times["entered"] = [0.0] * W
    watch_entries(_native, times["entered"])
    errors = []

    def body(r):
        try:
            rank_main(r, names[r], case, args, barrier, times)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"rank {r}: {type(e).__name__}: {e}")
            barrier.abort()

    threads = [threading.Thread(target=body, args=(r,)) for r in range(W)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        print(json.dumps({"available": True, "error": errors[0]}))
        return 1
    slowest = {v: [max(rank[i] for rank in times[v]) for i in range(args.repeat)] for v in ("python", "native")}
    # The last rank's entry into C++ after the first rank's start, per call (one clock: one process).
    entry_us = {v: statistics.median(max(rank[i] for rank in times["entries"][v]) - min(rank[i] for rank in times["starts"][v])
                                     for i in range(args.repeat)) * 1e6 for v in ("python", "native")}
    print(json.dumps({"available": True, "torch": torch.__version__, "compute_threads": _native.compute_threads(),
                      "samples_s": slowest["python"], "median_s": statistics.median(slowest["python"]),
                      "native_samples_s": slowest["native"], "native_median_s": statistics.median(slowest["native"]),
                      "cache": times["cache"], "entry_us": entry_us}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
