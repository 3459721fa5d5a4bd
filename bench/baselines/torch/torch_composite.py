#!/usr/bin/python3
"""The PyTorch composite a user without gmmav writes, timed for `gmmav bench`.

Per rank, the combine op (case.json "op": "combine", the default): one torch.matmul per local
expert over its rows of gmmX (expert-major, docs/spec.md §3), torch.cat into destination order,
torch.distributed all_to_all_single over gloo, and the shared expert's torch.matmul.
The dispatch op ("op": "dispatch", docs/dispatch-op.md): all_to_all_single of gmmX, the
received rows permuted into expert-major order (torch.index_select), one torch.matmul per
local expert, and the shared expert's torch.matmul.
W processes (torch.multiprocessing), `--threads` intra-op threads each. FP16 matmul has no
CPU kernel in PyTorch 1.13: it is upcast to FP32 and the result rounded once, as such a
user would do. With GMMAV_BENCH_TORCH_NO_MKLDNN=1 (set by the bench under GMMAV_MAX_CPU_ISA=avx2 or
portable) oneDNN is off for PyTorch, as its BF16 matmul is on a real host below AVX-512.

Input: a case directory written by the bench (bench_case.py: case.json + raw little-endian 16-bit arrays).
Output: y (the dispatch op: gmmY) / mm_y of every rank (bench_case.write_outputs) and one JSON object on stdout:
{"available": true, "torch": "1.13.1", "samples_s": [...], "median_s": ...}
or {"available": false, "why": "..."} when torch cannot be imported (exit 0).
"""
import argparse
import json
import os
import socket
import statistics
import sys
import time

import bench_case


def rank_main(rank, args, case, port, out_queue):
    import torch
    import torch.distributed as dist

    torch.set_num_threads(args.threads)
    if os.environ.get("GMMAV_BENCH_TORCH_NO_MKLDNN") == "1":  # the bench simulates a host below AVX-512 (D101)
        torch.backends.mkldnn.enabled = False
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=case["world_size"])
    W, e = case["world_size"], case["local_experts"]
    h1, n1 = case["h1"], case["n1"]
    dt = bench_case.dtype_of(case, torch)
    me = case["ranks"][rank]
    send, recv = me["send_counts"], me["recv_counts"]
    rows_out = sum(recv)
    x, w, mx, mw = bench_case.load_rank(args.dir, case, rank, torch)
    shared = mx is not None
    upcast = dt == torch.float16  # no CPU fp16 matmul: compute in fp32, round once
    if upcast:
        w = w.float()
        if shared:
            mw = mw.float()

    def matmul(lhs, rhs):
        return (lhs.float() @ rhs).to(dt) if upcast else lhs @ rhs

    in_splits = [sum(send[dd * e + j] for j in range(e)) for dd in range(W)]
    out_splits = [sum(recv[s * e + j] for j in range(e)) for s in range(W)]
    # gloo rejects bfloat16 ("Invalid scalar type"): a 16-bit view moves the same bytes.
    wire = (lambda t: t.view(torch.float16)) if dt == torch.bfloat16 else (lambda t: t)
    y = torch.empty((rows_out, n1), dtype=dt)

    # The combine op. Block (j, d) of gmmX: rows to destination d for local expert j.
    group = [sum(send[dd * e + j] for dd in range(W)) for j in range(e)]
    starts = {}
    row = 0
    for j in range(e):
        for dd in range(W):
            starts[(j, dd)] = row
            row += send[dd * e + j]

    def combine():
        outs, first = [], 0
        for j in range(e):
            outs.append(matmul(x[first:first + group[j]], w[j]))
            first += group[j]
        gmm_y = torch.cat(outs)
        send_buf = torch.cat([gmm_y[starts[(j, dd)]:starts[(j, dd)] + send[dd * e + j]]
                              for dd in range(W) for j in range(e)])
        dist.all_to_all_single(wire(y), wire(send_buf), out_splits, in_splits)
        return matmul(mx, mw) if shared else None

    # The dispatch op. The received rows arrive source-major (block (s, j) after rank s's
    # earlier blocks); expert j's GEMM wants its rows from every source together: the
    # permutation is the same every call, so it is made once.
    received = torch.empty((rows_out, h1), dtype=dt)
    order, recv_groups = [], []
    for j in range(e):
        recv_groups.append(sum(recv[s * e + j] for s in range(W)))
        for s in range(W):
            first = sum(out_splits[:s]) + sum(recv[s * e + jj] for jj in range(j))
            order.extend(range(first, first + recv[s * e + j]))
    order = torch.tensor(order, dtype=torch.int64)

    def dispatch():
        dist.all_to_all_single(wire(received), wire(x), out_splits, in_splits)
        permuted = torch.index_select(received, 0, order)
        first = 0
        for j in range(e):
            y[first:first + recv_groups[j]] = matmul(permuted[first:first + recv_groups[j]], w[j])
            first += recv_groups[j]
        return matmul(mx, mw) if shared else None

    composite = dispatch if case.get("op", "combine") == "dispatch" else combine

    samples = []
    with torch.inference_mode():
        for it in range(args.warmup + args.repeat):
            dist.barrier()
            t0 = time.perf_counter()
            mm_y = composite()
            dt_s = torch.tensor([time.perf_counter() - t0], dtype=torch.float64)
            dist.all_reduce(dt_s, op=dist.ReduceOp.MAX)
            if it >= args.warmup:
                samples.append(float(dt_s[0]))
    bench_case.write_outputs(args.dir, rank, y, mm_y, torch)
    if rank == 0:
        out_queue.put({"available": True, "torch": torch.__version__, "threads_per_rank": args.threads,
                       "samples_s": samples, "median_s": statistics.median(samples)})
    dist.destroy_process_group()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dir", help="case directory (case.json and the arrays)")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="intra-op threads per rank process")
    args = p.parse_args()
    try:
        import torch  # noqa: F401 (the ImportError below names what is missing)
        import torch.distributed as dist
        import torch.multiprocessing as mp
        if not dist.is_available() or not dist.is_gloo_available():
            raise ImportError("torch.distributed with gloo is not available")
    except ImportError as e:
        print(json.dumps({"available": False, "why": f"PyTorch not importable by {sys.executable}: {e}"}))
        return 0
    case = bench_case.read_case(args.dir)
    with socket.socket() as s:  # a free port for gloo's rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    q = ctx.SimpleQueue()
    procs = [ctx.Process(target=rank_main, args=(r, args, case, port, q)) for r in range(case["world_size"])]
    for pr in procs:
        pr.start()
    for pr in procs:
        pr.join()
    bad = [r for r, pr in enumerate(procs) if pr.exitcode != 0]
    if bad:
        print(json.dumps({"available": True, "error": f"rank processes {bad} failed"}))
        return 1
    print(json.dumps(q.get()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
