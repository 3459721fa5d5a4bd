"""A torch_npu-style MoE combine step running on CPUs through gmmav (docs/python.md).

    torchrun --nproc_per_node 2 python/examples/torch_npu_style.py        # torch.distributed (gloo)
    mpirun -np 2 python3 python/examples/torch_npu_style.py                # MPI, no torch.distributed

(PYTHONPATH=build/python from a build tree; nothing from an installed gmmav.) Each rank computes
its y and mm_y with torch_npu.npu_gmm_alltoallv — gmmav's, installed by patch_torch_npu() — and
compares them with a float64 golden it computes from every rank's inputs (all ranks derive them
from the same seeds)."""
import os

import torch
import torch.distributed as dist

import gmmav.distributed
import gmmav.torch

gmmav.torch.patch_torch_npu()  # before `import torch_npu`: accelerator code imports it unchanged
import torch_npu  # noqa: E402

E, H1, N1, BS, K, H2, N2 = 2, 512, 256, 32, 2, 384, 192  # experts per rank, widths, tokens, top-k
DTYPE = torch.bfloat16


def counts(W):
    """c[s][d][j]: rows rank s's expert j sends to rank d (every rank derives the same table)."""
    g = torch.Generator().manual_seed(1234)
    return torch.randint(0, 2 * BS * K // (W * E), (W, W, E), generator=g)


def inputs(rank, W, c):
    g = torch.Generator().manual_seed(rank)
    x = torch.randn(int(c[rank].sum()), H1, generator=g).to(DTYPE)
    w = (torch.randn(E, H1, N1, generator=g) / H1 ** 0.5).to(DTYPE)
    mm_x = torch.randn(BS, H2, generator=g).to(DTYPE)
    mm_w = (torch.randn(H2, N2, generator=g) / H2 ** 0.5).to(DTYPE)
    return x, w, mm_x, mm_w


def golden(rank, W, c):
    """y of `rank` in float64: from each source s, expert j, the rows s sends to `rank` times W_j."""
    rows = []
    for s in range(W):
        x, w, _, _ = inputs(s, W, c)
        first = 0
        for j in range(E):
            start = first + int(c[s, :rank, j].sum())
            rows.append(x[start:start + int(c[s, rank, j])].double() @ w[j].double())
            first += int(c[s, :, j].sum())
    return torch.cat(rows)


def main():
    if "RANK" in os.environ:  # torchrun
        dist.init_process_group("gloo")
    hcom = gmmav.torch.hcom()  # torch.distributed's world, or the MPI world under mpirun
    group = gmmav.distributed.native_group(hcom)  # this rank of the group: .rank, .size
    rank, W = group.rank, group.size
    c = counts(W)
    send = c[rank].reshape(-1).tolist()  # [d*e + j]
    recv = c[:, rank].reshape(-1).tolist()  # [s*e + j]
    x, w, mm_x, mm_w = inputs(rank, W, c)

    y, mm_y = torch_npu.npu_gmm_alltoallv(x, w, hcom, W, send, recv, mm_x=mm_x, mm_weight=mm_w)

    ref = golden(rank, W, c)
    mm_ref = mm_x.double() @ mm_w.double()
    rel = lambda a, b: float(((a.double() - b).abs().sum() / b.abs().sum().clamp_min(1e-30)))  # noqa: E731
    err, mm_err = rel(y, ref), rel(mm_y, mm_ref)
    ok = err <= 0.005 and mm_err <= 0.005  # the vendor's acceptance bar (docs/spec.md §4)
    print(f"rank {rank}/{W}: y {tuple(y.shape)} rel. error {err:.2e}, mm_y {tuple(mm_y.shape)} rel. error {mm_err:.2e} "
          f"vs float64: {'PASS' if ok else 'FAIL'}", flush=True)
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
