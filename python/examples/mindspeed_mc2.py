"""MindSpeed's MC2 MoE autograd pair on CPUs through gmmav's torch_npu stand-in (docs/python.md,
"MindSpeed-style layers").

    torchrun --nproc_per_node 2 python/examples/mindspeed_mc2.py      # torch.distributed (gloo)
    mpirun -np 2 python3 python/examples/mindspeed_mc2.py              # launched by mpirun, gloo between the ranks

(PYTHONPATH=build/python from a build tree.) The two autograd Functions below are wired the way
MindSpeed wires the fused MC2 ops of an expert-parallel MoE layer, calling torch_npu.* only:
forward `npu_alltoallv_gmm(..., permute_out_flag=True)` (tokens to their experts, FC1), then
`npu_gmm_alltoallv` (FC2, back to their ranks) with the counts exchanged; backward the other op
with the weight read transposed through a view (`w.permute(0, 2, 1)`, `w.t()`), the hcom name
from `ep_group.get_hccl_comm_name(rank)` (or `ep_group._get_backend(torch.device("npu"))...` on
torch >= 2), and the expert weight gradients from `torch_npu.npu_grouped_matmul` (a K-split
grouped GEMM: group_type=2). On a CPU the only added line is `gmmav.torch.patch_torch_npu()`
before `import torch_npu`. Each rank checks every gradient against float64 autograd of the whole
layer (all ranks' tensors gathered) in bf16 and fp16, then trains the layer for a few SGD steps.
"""
import os

import torch
import torch.distributed as dist

import gmmav.torch

gmmav.torch.patch_torch_npu()  # before `import torch_npu`: the MoE code below is what runs on the accelerator
import torch_npu  # noqa: E402

E, H, F, FS, BS, K = 2, 64, 96, 48, 24, 2  # local experts, hidden, expert FFN, shared FFN, tokens, top-k


def hccl_comm_name(ep_group):
    """The hcom of the expert-parallel group, asked as MindSpeed asks it (torch >= 2: through the
    group's NPU backend)."""
    rank = dist.get_rank()
    if hasattr(ep_group, "_get_backend"):
        return ep_group._get_backend(torch.device("npu")).get_hccl_comm_name(rank)
    return ep_group.get_hccl_comm_name(rank)


class AlltoAllvGmm(torch.autograd.Function):
    """Dispatch + FC1: the routed rows go to their expert's rank and meet W1 there (shared expert
    in the same call). Backward: the combine op with W1 transposed (a view) sends dX home; dW1
    from the rows this rank received (permute_out), grouped by expert."""

    @staticmethod
    def forward(ctx, x, w1, ep_group, send_counts, recv_counts, group_list, shared_x, shared_w1):
        hcom, world = hccl_comm_name(ep_group), dist.get_world_size(ep_group)
        h, shared_h, permuted = torch_npu.npu_alltoallv_gmm(
            gmm_x=x, gmm_weight=w1, hcom=hcom, ep_world_size=world, send_counts=send_counts, recv_counts=recv_counts,
            send_counts_tensor=None, recv_counts_tensor=None, mm_x=shared_x, mm_weight=shared_w1,
            trans_gmm_weight=False, trans_mm_weight=False, permute_out_flag=True)
        ctx.save_for_backward(w1, permuted, shared_x, shared_w1)
        ctx.comm = (hcom, world, send_counts, recv_counts, group_list)
        return h, shared_h

    @staticmethod
    def backward(ctx, dh, dshared_h):
        w1, permuted, shared_x, shared_w1 = ctx.saved_tensors
        hcom, world, send_counts, recv_counts, group_list = ctx.comm
        shared = shared_x is not None and dshared_h is not None
        dx, dshared_x = torch_npu.npu_gmm_alltoallv(
            gmm_x=dh, gmm_weight=w1.permute(0, 2, 1), hcom=hcom, ep_world_size=world, send_counts=recv_counts,
            recv_counts=send_counts, send_counts_tensor=None, recv_counts_tensor=None,
            mm_x=dshared_h if shared else None, mm_weight=shared_w1.t() if shared else None,
            trans_gmm_weight=False, trans_mm_weight=False)
        dw1 = torch_npu.npu_grouped_matmul([permuted.T], [dh], bias=None, group_list=group_list, split_item=3,
                                           group_type=2, group_list_type=1)[0]
        dshared_w1 = None
        if shared:
            dshared_w1 = torch_npu.npu_grouped_matmul([shared_x.t().contiguous()], [dshared_h], bias=None, split_item=0,
                                                      group_type=-1)[0]
        return dx, dw1, None, None, None, None, dshared_x, dshared_w1


class GmmAlltoAllv(torch.autograd.Function):
    """FC2 + combine: each expert's rows meet W2 and travel back to the rank they came from, in
    that rank's order (shared expert in the same call). Backward: the dispatch op with W2
    transposed (a view) brings dY to the experts; its permute_out is dY in the expert order of
    this op's input, which dW2 needs."""

    @staticmethod
    def forward(ctx, a, w2, ep_group, send_counts, recv_counts, group_list, shared_a, shared_w2):
        hcom, world = hccl_comm_name(ep_group), dist.get_world_size(ep_group)
        y, shared_y = torch_npu.npu_gmm_alltoallv(
            gmm_x=a, gmm_weight=w2, hcom=hcom, ep_world_size=world, send_counts=recv_counts, recv_counts=send_counts,
            send_counts_tensor=None, recv_counts_tensor=None, mm_x=shared_a, mm_weight=shared_w2,
            trans_gmm_weight=False, trans_mm_weight=False)
        ctx.save_for_backward(a, w2, shared_a, shared_w2)
        ctx.comm = (hcom, world, send_counts, recv_counts, group_list)
        return y, shared_y

    @staticmethod
    def backward(ctx, dy, dshared_y):
        a, w2, shared_a, shared_w2 = ctx.saved_tensors
        hcom, world, send_counts, recv_counts, group_list = ctx.comm
        shared = shared_a is not None and dshared_y is not None
        da, dshared_a, dy_permuted = torch_npu.npu_alltoallv_gmm(
            gmm_x=dy, gmm_weight=w2.permute(0, 2, 1), hcom=hcom, ep_world_size=world, send_counts=send_counts,
            recv_counts=recv_counts, send_counts_tensor=None, recv_counts_tensor=None,
            mm_x=dshared_y if shared else None, mm_weight=shared_w2.t() if shared else None,
            trans_gmm_weight=False, trans_mm_weight=False, permute_out_flag=True)
        dw2 = torch_npu.npu_grouped_matmul([a.T], [dy_permuted], bias=None, group_list=group_list, split_item=3,
                                           group_type=2, group_list_type=1)[0]
        dshared_w2 = None
        if shared:
            dshared_w2 = torch_npu.npu_grouped_matmul([shared_a.t().contiguous()], [dshared_y], bias=None, split_item=0,
                                                      group_type=-1)[0]
        return da, dw2, None, None, None, None, dshared_a, dshared_w2


def act(t):
    """SiLU in FP32, rounded once to the layer's dtype."""
    return torch.nn.functional.silu(t.float()).to(t.dtype) if t is not None else None


def moe_experts(x, w1, w2, ep_group, send_counts, recv_counts, shared_x=None, shared_w1=None, shared_w2=None):
    """This rank's experts: x (BSK, H) routed token copies sorted by global expert (send_counts[g]
    rows for g = d*E + j); recv_counts[s*E + j]: rows rank s sends to my expert j. -> y (BSK, H) in
    x's order, shared_y, and the intermediates (h, a, shared_h, shared_a)."""
    world, e = dist.get_world_size(ep_group), w1.shape[0]
    group_list = torch.tensor([sum(recv_counts[s * e + j] for s in range(world)) for j in range(e)], dtype=torch.int64)
    h, shared_h = AlltoAllvGmm.apply(x, w1, ep_group, send_counts, recv_counts, group_list, shared_x, shared_w1)
    a, shared_a = act(h), act(shared_h)
    y, shared_y = GmmAlltoAllv.apply(a, w2, ep_group, send_counts, recv_counts, group_list, shared_a, shared_w2)
    return y, shared_y, (h, a, shared_h, shared_a)


# --- the demo: a fixed top-K router, every gradient vs float64, a few SGD steps -------------------

def route(rank, world):
    """Top-K experts of this rank's BS tokens (a fixed random router) -> token id of each routed
    row (sorted by global expert) and send_counts."""
    g = torch.Generator().manual_seed(100 + rank)
    experts = torch.rand(BS, world * E, generator=g).topk(K, dim=1).indices.reshape(-1)
    order = torch.argsort(experts * BS * K + torch.arange(BS * K))
    return order // K, torch.bincount(experts, minlength=world * E).tolist()


def leaves(rank, dtype):
    g = torch.Generator().manual_seed(7 + rank)
    p = {"x": torch.randn(BS, H, generator=g), "w1": torch.randn(E, H, F, generator=g) / H ** 0.5,
         "w2": torch.randn(E, F, H, generator=g) / F ** 0.5, "sw1": torch.randn(H, FS, generator=g) / H ** 0.5,
         "sw2": torch.randn(FS, H, generator=g) / FS ** 0.5, "target": torch.randn(BS, H, generator=g)}
    return {k: v.to(dtype) if k != "target" else v for k, v in p.items()}


def loss_of(y, shared_y, tokens, target):
    out = torch.zeros(BS, H).index_add_(0, tokens, y.float()) / K + shared_y.float()
    return ((out - target) ** 2).mean()


def check_gradients(ep_group, rank, world, tokens, send, recv, dtype):
    """One forward/backward; every gradient against float64 autograd of the whole layer over all
    ranks (gathered here), normwise max|g - g64| / max|g64| in units of the dtype's ulp."""
    p = leaves(rank, dtype)
    ps = {k: v.clone().requires_grad_() for k, v in p.items() if k != "target"}
    y, sy, _ = moe_experts(ps["x"][tokens], ps["w1"], ps["w2"], ep_group, send, recv, ps["x"], ps["sw1"], ps["sw2"])
    loss_of(y, sy, tokens, p["target"]).backward()
    everyone = [None] * world
    dist.all_gather_object(everyone, (p, tokens, send, {k: v.grad for k, v in ps.items()}), group=ep_group)
    # float64 over every rank: rank s sends rows of its x to rank d's expert j in global-expert order.
    p64 = [{k: v.double().requires_grad_() for k, v in q[0].items() if k != "target"} for q in everyone]
    hs = [[None] * E for _ in range(world)]  # hs[d][j]: list over sources s of (s, rows)
    loss = 0.0
    for d in range(world):
        for j in range(E):
            hs[d][j] = []
            for s in range(world):
                toks, cnt = everyone[s][1], everyone[s][2]
                first = sum(cnt[:d * E + j])
                hs[d][j].append((s, first, toks[first:first + cnt[d * E + j]]))
    ys = [torch.zeros(len(everyone[s][1]), H, dtype=torch.float64) for s in range(world)]
    for d in range(world):
        for j in range(E):
            for s, first, toks in hs[d][j]:
                rows = p64[s]["x"][toks] @ p64[d]["w1"][j]
                ys[s] = ys[s].index_add(0, torch.arange(first, first + len(toks)),
                                        torch.nn.functional.silu(rows) @ p64[d]["w2"][j])
    for s in range(world):
        toks = everyone[s][1]
        shared = torch.nn.functional.silu(p64[s]["x"] @ p64[s]["sw1"]) @ p64[s]["sw2"]
        out = torch.zeros(BS, H, dtype=torch.float64).index_add(0, toks, ys[s]) / K + shared
        loss = loss + ((out - everyone[s][0]["target"].double()) ** 2).mean()
    loss.backward()
    ulp = 2.0 ** -8 if dtype == torch.bfloat16 else 2.0 ** -11
    errs = {}
    for k in ("x", "w1", "w2", "sw1", "sw2"):
        g, g64 = everyone[rank][3][k].double(), p64[rank][k].grad
        errs["d" + k] = float((g - g64).abs().max() / g64.abs().max()) / ulp
    return errs


def main():
    meeting = None
    if "RANK" in os.environ:  # torchrun
        dist.init_process_group("gloo")
    else:  # mpirun: the ranks meet through a file named after the job (no port to agree on)
        meeting = f"/tmp/gmmav_mindspeed_{os.environ.get('OMPI_MCA_ess_base_jobid') or os.environ['PMIX_NAMESPACE']}"
        dist.init_process_group("gloo", init_method=f"file://{meeting}", rank=int(os.environ["OMPI_COMM_WORLD_RANK"]),
                                world_size=int(os.environ["OMPI_COMM_WORLD_SIZE"]))
    rank, world = dist.get_rank(), dist.get_world_size()
    ep_group = dist.new_group(list(range(world)))  # the expert-parallel group (here: every rank)
    tokens, send = route(rank, world)
    recv = [route(s, world)[1][rank * E + j] for s in range(world) for j in range(E)]  # a real layer all-to-alls them
    ok = True
    for dtype in (torch.bfloat16, torch.float16):
        errs = check_gradients(ep_group, rank, world, tokens, send, recv, dtype)
        good = all(v < 8 for v in errs.values())
        ok &= good
        print(f"rank {rank}/{world} {str(dtype)[6:]}: gradient error vs float64 (ulps, normwise): "
              + ", ".join(f"{k} {v:.2f}" for k, v in errs.items()) + f": {'PASS' if good else 'FAIL'}", flush=True)
    p = {k: v.clone().requires_grad_() if k != "target" else v for k, v in leaves(rank, torch.bfloat16).items()}
    losses = []
    for _ in range(6):
        y, sy, _ = moe_experts(p["x"][tokens], p["w1"], p["w2"], ep_group, send, recv, p["x"], p["sw1"], p["sw2"])
        loss = loss_of(y, sy, tokens, p["target"])
        for k in ("w1", "w2", "sw1", "sw2"):
            p[k].grad = None
        loss.backward()  # collective: every rank
        with torch.no_grad():
            for k in ("w1", "w2", "sw1", "sw2"):
                p[k] -= (1.0 * p[k].grad.float()).to(p[k].dtype)
        losses.append(float(loss))
    ok &= losses[-1] < losses[0]
    print(f"rank {rank}/{world}: loss {losses[0]:.4f} -> {losses[-1]:.4f} over {len(losses)} steps: "
          f"{'PASS' if losses[-1] < losses[0] else 'FAIL'}", flush=True)
    dist.barrier()
    dist.destroy_process_group()
    if meeting:  # every rank is done with it (the barrier above)
        try:
            os.remove(meeting)
        except FileNotFoundError:
            pass
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
