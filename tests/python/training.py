"""One training step of gmmav.torch.MoEExperts (forward, loss, backward) on every rank, and its check
against PyTorch's float64 autograd of the same layer written as plain float64 ops in one process
(moe64). Used in one process (in-process ranks) and by the gloo/MPI rank scenarios (ranks.py)."""
import random

import torch

import cases
import gmmav.torch as gt
import moe64

# The tensors a step returns, compared bit for bit across runs, thread counts and backends.
KEYS = ("y", "shared_y", "h", "a", "dh", "da", "dx", "dw1", "dw2", "shared_h", "shared_a", "dshared_h", "dshared_a",
        "dshared_x", "dshared_w1", "dshared_w2")


class LayerCase:
    """W ranks of e experts; c[s][d][j] rows rank s routes to rank d's expert j (dispatch's counts)."""

    def __init__(self, W, e, hidden, ffn, dtype, seed, shared=None, pattern="random"):
        self.W, self.e, self.hidden, self.ffn, self.dtype, self.seed, self.shared = W, e, hidden, ffn, dtype, seed, shared
        rng = random.Random(seed)
        c = [[[rng.randint(0, 12) for _ in range(e)] for _ in range(W)] for _ in range(W)]
        if pattern == "empty":  # expert 1 receives nothing anywhere, rank W-1 routes nothing: dW_1 = 0, k = 0
            for s in range(W):
                for d in range(W):
                    c[s][d][1] = 0
                    if s == W - 1:
                        c[s][d] = [0] * e
        self.c = c

    def send(self, r):
        return [self.c[r][d][j] for d in range(self.W) for j in range(self.e)]

    def recv(self, r):
        return [self.c[s][r][j] for s in range(self.W) for j in range(self.e)]

    def data(self, r):
        """Rank r's inputs, parameters and output gradients (regenerated identically anywhere)."""
        g = torch.Generator().manual_seed(self.seed * 1000 + r)
        H, F, dt = self.hidden, self.ffn, self.dtype
        bsk = sum(self.send(r))
        d = {"x": torch.randn(bsk, H, generator=g).to(dt), "gy": torch.randn(bsk, H, generator=g).to(dt),
             "w1": (torch.randn(self.e, H, F, generator=g) / H ** 0.5).to(dt),
             "w2": (torch.randn(self.e, F, H, generator=g) / F ** 0.5).to(dt)}
        if self.shared:
            bs, fs = self.shared
            d.update(shared_x=torch.randn(bs, H, generator=g).to(dt), gsy=torch.randn(bs, H, generator=g).to(dt),
                     sw1=(torch.randn(H, fs, generator=g) / H ** 0.5).to(dt),
                     sw2=(torch.randn(fs, H, generator=g) / fs ** 0.5).to(dt))
        return d


def step(case, r, name):
    """Rank r's training step through MoEExperts: loss = sum(y * gy) (+ sum(shared_y * gsy)) in
    FP32, backward; returns the outputs, the intermediates and every gradient."""
    d = case.data(r)
    layer = gt.MoEExperts(name, case.W, case.e, case.hidden, case.ffn, dtype=case.dtype,
                          shared_ffn=case.shared[1] if case.shared else None)
    with torch.no_grad():
        layer.w1.copy_(d["w1"])
        layer.w2.copy_(d["w2"])
        if case.shared:
            layer.shared_w1.copy_(d["sw1"])
            layer.shared_w2.copy_(d["sw2"])
    layer.keep_intermediates = True
    x = d["x"].clone().requires_grad_()
    sx = d["shared_x"].clone().requires_grad_() if case.shared else None
    y, sy = layer(x, case.send(r), case.recv(r), sx)
    loss = (y.float() * d["gy"].float()).sum()
    if case.shared:
        loss = loss + (sy.float() * d["gsy"].float()).sum()
    loss.backward()
    it = layer.intermediates
    out = {"y": y.detach(), "shared_y": sy.detach() if sy is not None else None, "h": it["h"].detach(),
           "a": it["a"].detach(), "dh": it["h"].grad, "da": it["a"].grad, "dx": x.grad, "dw1": layer.w1.grad,
           "dw2": layer.w2.grad}
    for k in ("shared_h", "shared_a"):
        t = it[k]
        out[k] = t.detach() if t is not None else None
        out["d" + k] = t.grad if t is not None else None
    out["dshared_x"] = sx.grad if sx is not None else None
    out["dshared_w1"] = layer.shared_w1.grad if case.shared else None
    out["dshared_w2"] = layer.shared_w2.grad if case.shared else None
    return out


def in_process_step(case):
    return cases.run_ranks(gt.in_process_hcoms(case.W), lambda r, n: step(case, r, n))


def _silu64(h):
    return torch.nn.functional.silu(h)


def check_against_float64(case, outs):
    """Every rank's gradients vs float64 autograd of the layer (moe64), one GEMM at a time: each
    GEMM's output is compared with float64 evaluated on the same rounded inputs gmmav's GEMM had
    (its forward inputs and the rounded output gradient it received), within docs/spec.md §4's bound;
    the activation's gradient (elementwise, FP32 then one rounding) within 1 ulp + FP32 noise.
    Returns {gradient: worst err/bound} and the end-to-end normwise errors (whole layer in
    float64 from the leaves, no intermediate rounding) for the record."""
    W, dt = case.W, case.dtype
    c, ct = case.c, moe64.transpose_counts(case.c)
    data = [case.data(r) for r in range(W)]
    ratios = {}
    rows = max(sum(case.send(r)) + sum(case.recv(r)) for r in range(W))  # bounds every dW's reduction length
    # Forward: h = dispatch(x, W1), y = combine(a, W2), a = act(h).
    h64, _ = moe64.dispatch64(c, [d["x"].double() for d in data], [d["w1"].double() for d in data])
    h_abs, _ = moe64.dispatch64(c, [d["x"].double().abs() for d in data], [d["w1"].double().abs() for d in data])
    y64 = moe64.combine64(ct, [o["a"].double() for o in outs], [d["w2"].double() for d in data])
    y_abs = moe64.combine64(ct, [o["a"].double().abs() for o in outs], [d["w2"].double().abs() for d in data])
    for r in range(W):
        moe64.check(outs[r]["h"], h64[r], h_abs[r], case.hidden, dt, "h (forward)", ratios)
        moe64.check(outs[r]["y"], y64[r], y_abs[r], case.ffn, dt, "y (forward)", ratios)
        a_ref = _silu64(outs[r]["h"].double())
        moe64.check(outs[r]["a"], a_ref, a_ref.abs(), 4, dt, "a = silu(h) (forward)", ratios)
    # Combine's backward: da, dW2 from dY = gy.

    def combine_fn(ls):
        return moe64.combine64(ct, ls[:W], ls[W:])

    ref, absp = moe64.grads64(combine_fn, [o["a"] for o in outs] + [d["w2"] for d in data], [d["gy"] for d in data])
    for r in range(W):
        moe64.check(outs[r]["da"], ref[r], absp[r], case.hidden, dt, "da (combine dX)", ratios)
        moe64.check(outs[r]["dw2"], ref[W + r], absp[W + r], rows, dt, "dW2 (combine dW)", ratios)
    # The activation's backward: dh = round(FP32 silu'(h) * da).
    for r in range(W):
        h = outs[r]["h"].double().requires_grad_()
        torch.autograd.backward(_silu64(h), outs[r]["da"].double())
        moe64.check(outs[r]["dh"], h.grad, h.grad.abs(), 8, dt, "dh (activation)", ratios)
    # Dispatch's backward: dX, dW1 from gmmav's dh.

    def dispatch_fn(ls):
        return moe64.dispatch64(c, ls[:W], ls[W:])[0]

    ref, absp = moe64.grads64(dispatch_fn, [d["x"] for d in data] + [d["w1"] for d in data], [o["dh"] for o in outs])
    for r in range(W):
        moe64.check(outs[r]["dx"], ref[r], absp[r], case.ffn, dt, "dX (dispatch dX)", ratios)
        moe64.check(outs[r]["dw1"], ref[W + r], absp[W + r], rows, dt, "dW1 (dispatch dW)", ratios)
    if case.shared:
        bs, fs = case.shared
        for r in range(W):
            d, o = data[r], outs[r]
            ref, absp = moe64.grads64(lambda ls: [ls[0] @ ls[1]], [o["shared_a"], d["sw2"]], [d["gsy"]])
            moe64.check(o["dshared_a"], ref[0], absp[0], case.hidden, dt, "shared da", ratios)
            moe64.check(o["dshared_w2"], ref[1], absp[1], bs, dt, "shared dW2", ratios)
            hh = o["shared_h"].double().requires_grad_()
            torch.autograd.backward(_silu64(hh), o["dshared_a"].double())
            moe64.check(o["dshared_h"], hh.grad, hh.grad.abs(), 8, dt, "shared dh (activation)", ratios)
            ref, absp = moe64.grads64(lambda ls: [ls[0] @ ls[1]], [d["shared_x"], d["sw1"]], [o["dshared_h"]])
            moe64.check(o["dshared_x"], ref[0], absp[0], fs, dt, "shared dX", ratios)
            moe64.check(o["dshared_w1"], ref[1], absp[1], bs, dt, "shared dW1", ratios)
    return ratios, end_to_end(case, outs, data)


def end_to_end(case, outs, data):
    """Normwise relative error max|g - g64| / max|g64| of each gradient against float64 autograd of
    the whole layer from the same (rounded) leaves, with no rounding inside: for the record (the
    chained roundings make it a few ulps, not a per-element bound)."""
    W, c, ct = case.W, case.c, moe64.transpose_counts(case.c)

    def layer(ls):
        xs, w1, w2 = ls[:W], ls[W:2 * W], ls[2 * W:3 * W]
        hs, _ = moe64.dispatch64(c, xs, w1)
        ys = moe64.combine64(ct, [_silu64(h) for h in hs], w2)
        if not case.shared:
            return ys
        sx, s1, s2 = ls[3 * W:4 * W], ls[4 * W:5 * W], ls[5 * W:6 * W]
        return ys + [_silu64(sx[r] @ s1[r]) @ s2[r] for r in range(W)]

    leaves = [d["x"] for d in data] + [d["w1"] for d in data] + [d["w2"] for d in data]
    ups = [d["gy"] for d in data]
    if case.shared:
        leaves += [d["shared_x"] for d in data] + [d["sw1"] for d in data] + [d["sw2"] for d in data]
        ups += [d["gsy"] for d in data]
    ref, _ = moe64.grads64(layer, leaves, ups)
    names = ["dx", "dw1", "dw2"] + (["dshared_x", "dshared_w1", "dshared_w2"] if case.shared else [])
    errs = {}
    for i, k in enumerate(names):
        for r in range(W):
            g64 = ref[i * W + r]
            if g64.numel() == 0 or float(g64.abs().max()) == 0:
                continue
            err = float((outs[r][k].double() - g64).abs().max() / g64.abs().max())
            errs[k] = max(errs.get(k, 0.0), err)
    return errs


def same_bits(a, b):
    """Every tensor of two steps' results (lists over ranks) identical bit for bit -> the keys that differ."""
    bad = []
    for r, (x, y) in enumerate(zip(a, b)):
        for k in KEYS:
            if not cases.bits_equal(x[k], y[k]):
                bad.append(f"rank {r}: {k}")
    return bad


def _mindspeed_example():
    """python/examples/mindspeed_mc2.py as a module (its autograd Functions; importing it installs
    gmmav's torch_npu stand-in, as the example does)."""
    import importlib
    import os
    import sys

    examples = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python", "examples")
    if examples not in sys.path:
        sys.path.insert(0, examples)
    return importlib.import_module("mindspeed_mc2")


def mindspeed_step(case, r, ep_group):
    """Rank r's training step through the MindSpeed-style autograd Functions of the example (every
    op a torch_npu.* call, transposes as views, dW from npu_grouped_matmul): the same layer and loss
    as step(), the same dict of outputs, intermediates and gradients."""
    ms = _mindspeed_example()
    d = case.data(r)
    leaf = {k: d[k].clone().requires_grad_() for k in ("x", "w1", "w2")}
    if case.shared:
        leaf.update({k: d[k].clone().requires_grad_() for k in ("shared_x", "sw1", "sw2")})
    y, sy, (h, a, sh, sa) = ms.moe_experts(leaf["x"], leaf["w1"], leaf["w2"], ep_group, case.send(r), case.recv(r),
                                           leaf.get("shared_x"), leaf.get("sw1"), leaf.get("sw2"))
    for t in (h, a, sh, sa):
        if t is not None:
            t.retain_grad()
    loss = (y.float() * d["gy"].float()).sum()
    if case.shared:
        loss = loss + (sy.float() * d["gsy"].float()).sum()
    loss.backward()
    out = {"y": y.detach(), "shared_y": sy.detach() if sy is not None else None, "h": h.detach(), "a": a.detach(),
           "dh": h.grad, "da": a.grad, "dx": leaf["x"].grad, "dw1": leaf["w1"].grad, "dw2": leaf["w2"].grad}
    for k, t in (("shared_h", sh), ("shared_a", sa)):
        out[k] = t.detach() if t is not None else None
        out["d" + k] = t.grad if t is not None else None
    out["dshared_x"] = leaf["shared_x"].grad if case.shared else None
    out["dshared_w1"] = leaf["sw1"].grad if case.shared else None
    out["dshared_w2"] = leaf["sw2"].grad if case.shared else None
    return out
