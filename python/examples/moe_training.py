"""Training an expert-parallel MoE layer on CPUs with gmmav (docs/python.md, "Training").

    torchrun --nproc_per_node 2 python/examples/moe_training.py        # torch.distributed (gloo)
    mpirun -np 2 python3 python/examples/moe_training.py                # MPI

(PYTHONPATH=build/python from a build tree.) Each rank holds E experts of a top-K MoE layer
(gmmav.torch.MoEExperts: dispatch W1 -> SiLU -> combine W2, plus a shared expert) and a router
that is fixed here for brevity. A few steps of SGD fit the layer to a fixed random target; the
example fails unless the loss falls on every rank. Gradients come from gmmav's autograd: backward
runs the two ops again with the counts exchanged (collective: every rank calls backward)."""
import os

import torch
import torch.distributed as dist

import gmmav.distributed
import gmmav.torch

E, H, F, FS, BS, K, STEPS, LR = 2, 64, 128, 64, 32, 2, 8, 0.5
DTYPE = torch.bfloat16


def route(rank, W):
    """Top-K experts for each of this rank's BS tokens (a fixed random router) -> the rows to send
    sorted by global expert, their token ids, and send_counts[g] (g = d*E + j)."""
    g = torch.Generator().manual_seed(100 + rank)
    experts = torch.rand(BS, W * E, generator=g).topk(K, dim=1).indices  # (BS, K) global experts
    flat = experts.reshape(-1)
    order = torch.argsort(flat * BS * K + torch.arange(BS * K), stable=True)  # by expert, token order kept
    tokens = order // K
    send = torch.bincount(flat, minlength=W * E).tolist()
    return tokens, send


def main():
    if "RANK" in os.environ:  # torchrun
        dist.init_process_group("gloo")
    hcom = gmmav.torch.hcom()
    group = gmmav.distributed.native_group(hcom)  # this rank of the group: .rank, .size
    rank, W = group.rank, group.size
    tokens, send = route(rank, W)
    # Every rank needs the counts it receives: recv[s*E + j] = send of rank s for g = rank*E + j.
    # (A real layer exchanges them with an all-to-all; here every rank recomputes the router.)
    recv = [route(s, W)[1][rank * E + j] for s in range(W) for j in range(E)]

    torch.manual_seed(rank)
    layer = gmmav.torch.MoEExperts(hcom, W, E, H, F, shared_ffn=FS, dtype=DTYPE)
    g = torch.Generator().manual_seed(7 + rank)
    x = torch.randn(BS, H, generator=g).to(DTYPE)
    target = torch.randn(BS, H, generator=g)
    losses = []
    for _ in range(STEPS):
        y_rows, shared = layer(x[tokens], send, recv, shared_x=x)  # routed copies, then the shared expert
        out = torch.zeros(BS, H).index_add_(0, tokens, y_rows.float()) / K + shared.float()
        loss = ((out - target) ** 2).mean()
        layer.zero_grad()
        loss.backward()
        with torch.no_grad():
            for p in layer.parameters():
                p -= (LR * p.grad.float()).to(DTYPE)
        losses.append(float(loss))
    ok = losses[-1] < losses[0]
    print(f"rank {rank}/{W}: loss {losses[0]:.4f} -> {losses[-1]:.4f} over {STEPS} steps: {'PASS' if ok else 'FAIL'}",
          flush=True)
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
