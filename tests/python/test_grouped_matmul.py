"""gmmav.torch.npu_grouped_matmul (torch_npu's schema, gmmav's GEMM), in one process: every supported
combination of group_type, split_item, group_list form and type, weight layout (3-D, list,
transposed views) against float64 — outputs and every gradient within docs/spec.md §4's bound — and the
same bits for 1 and 2 compute threads; torch_npu's rejections as ValueError; double backward raises."""
import itertools
import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cases  # noqa: E402
import moe64  # noqa: E402
import gmmav.torch as gt  # noqa: E402
from gmmav import _native  # noqa: E402

F16, BF16 = torch.float16, torch.bfloat16
K, N = 40, 24
SIZES = [0, 150, 7, 131]  # one empty group; two groups of more than one 128-row tile


def _rand(g, *shape, scale=1.0):
    return torch.randn(*shape, generator=g) * scale


def _group_list(sizes, form, list_type):
    values = list(itertools.accumulate(sizes)) if list_type == 0 else list(sizes)
    return torch.tensor(values, dtype=torch.int64) if form == "tensor" else values


def _combo(name, dtype, seed=1):
    """-> (kwargs of the call, list of leaf tensors (float32 masters), build(leaves) -> (x, weight),
    reference(x64 list, w64 list) -> outputs in float64, reduction length of each output and of
    each leaf's gradient)."""
    g = torch.Generator().manual_seed(seed)
    M = sum(SIZES)
    e = len(SIZES)
    if name.startswith("-1"):  # group_type -1: x[i] @ weight[i]
        rows = [5, 0, 140]
        split = 3 if "single" in name else 0
        xs = [_rand(g, r, K) for r in rows]
        if "3d" in name:
            xs[0] = _rand(g, 2, 3, K)
        ws = [_rand(g, K, N, scale=K ** -0.5) for _ in rows]
        kw = dict(split_item=split, group_type=-1)

        def ref(x, w):
            outs = [a @ b for a, b in zip(x, w)]
            return [torch.cat(outs)] if split == 3 else outs
        return kw, xs, ws, (lambda x, w: (x, w)), ref, {"out": K, "x": N, "w": max(rows) * 6}
    if name.startswith("0"):  # group_type 0: x rows split, weight (e, K, N) / list / transposed views
        form, list_type = ("tensor", 1) if "counts" in name else ("list", 0)
        split = 0 if "multi_out" in name else 2
        gl = _group_list(SIZES, form, list_type)
        if "several_x" in name:
            xs = [_rand(g, s, K) for s in SIZES]
        else:
            xs = [_rand(g, M, K)]
        if "w_list" in name:
            ws = [_rand(g, K, N, scale=K ** -0.5) for _ in SIZES]
        else:
            ws = [_rand(g, e, K, N, scale=K ** -0.5)]
        transposed = "wT" in name  # the weights kept (.., N, K) and passed as transposed views (MindSpeed's dX)
        if transposed:
            ws = [w.transpose(-1, -2).contiguous() for w in ws]
        kw = dict(split_item=split, group_type=0, group_list=None if "several_x" in name else gl,
                  group_list_type=list_type)
        if name.endswith("legacy"):  # torch_npu's List[int] API: no group_type, cumulative list
            kw = dict(split_item=split, group_list=gl)

        def build(x, w):
            return x, [t.transpose(-1, -2) for t in w] if transposed else w

        def ref(x, w):
            mats = list(w[0]) if w[0].dim() == 3 else w
            rows = x if len(x) > 1 else list(torch.split(x[0], SIZES))
            outs = [a @ b for a, b in zip(rows, mats)]
            return [torch.cat(outs)] if split == 2 else outs
        return kw, xs, ws, build, ref, {"out": K, "x": N, "w": max(SIZES)}
    # group_type 2: x = X.T (a view), weight (M, N): y_j = X_j^T dY_j, the expert weight gradients
    form, list_type = ("tensor", 1) if "counts" in name else ("tensor", 0)
    split = 0 if "multi_out" in name else 3
    X, dY = _rand(g, M, K), _rand(g, M, N, scale=M ** -0.5)
    kw = dict(split_item=split, group_type=2, group_list=_group_list(SIZES, form, list_type), group_list_type=list_type)

    def ref(x, w):
        starts = list(itertools.accumulate([0] + SIZES))
        outs = [x[0][:, a:b] @ w[0][a:b] for a, b in zip(starts, starts[1:])]
        return [torch.stack(outs)] if split == 3 else outs
    return kw, [X], [dY], (lambda x, w: ([x[0].T], w)), ref, {"out": max(SIZES), "x": N, "w": K}


COMBOS = ["-1 multi", "-1 single", "-1 multi 3d", "0 single_out", "0 multi_out", "0 w_list counts", "0 wT",
          "0 w_list wT counts", "0 several_x w_list", "0 single_out legacy", "2 single_out", "2 counts", "2 multi_out counts"]


def _run(name, dtype, threads):
    kw, xs, ws, build, _, _ = _combo(name, dtype)
    leaves = [t.to(dtype).requires_grad_() for t in xs + ws]
    x, w = build(leaves[:len(xs)], leaves[len(xs):])
    old = _native.compute_threads()
    _native.set_compute_threads(threads)
    try:
        outs = gt.npu_grouped_matmul(x, w, **kw)
        g = torch.Generator().manual_seed(99)
        ups = [torch.randn(o.shape, generator=g).to(dtype) for o in outs]
        torch.autograd.backward(outs, ups)
    finally:
        _native.set_compute_threads(old)
    return [o.detach() for o in outs], ups, leaves


@pytest.mark.parametrize("dtype", [BF16, F16])
@pytest.mark.parametrize("name", COMBOS)
def test_every_combination_vs_float64_and_same_bits_for_any_thread_count(name, dtype):
    kw, xs, ws, build, ref, k = _combo(name, dtype)
    outs, ups, leaves = _run(name, dtype, 2)
    for o in outs:
        assert o.dtype == dtype and o.is_contiguous()
    nx = len(xs)

    def fn(ls):
        x, w = build(ls[:nx], ls[nx:])
        return ref(x, w)

    # Forward: each output element is one GEMM's, within docs/spec.md §4's bound of float64.
    x64, w64 = build([t.detach().double() for t in leaves[:nx]], [t.detach().double() for t in leaves[nx:]])
    xa, wa = build([t.detach().double().abs() for t in leaves[:nx]], [t.detach().double().abs() for t in leaves[nx:]])
    ratios = {}
    for i, (o, r, a) in enumerate(zip(outs, ref(x64, w64), ref(xa, wa))):
        ratios["y"] = max(ratios.get("y", 0), cases.check_within_bound(o, r, a, k["out"], dtype, f"{name}: y[{i}]"))
    # Backward: every gradient (a GEMM too) against float64 autograd of the same computation.
    grads, absp = moe64.grads64(fn, [t.detach() for t in leaves], ups)
    for i, leaf in enumerate(leaves):
        what = "dx" if i < nx else "dw"
        assert leaf.grad is not None and leaf.grad.shape == leaf.shape and leaf.grad.dtype == dtype
        moe64.check(leaf.grad, grads[i], absp[i], k["x" if i < nx else "w"], dtype, f"{name}: {what}", ratios)
    print(f"{name} {dtype}: worst err/bound {ratios}")
    # The same bits with one compute thread.
    outs1, _, leaves1 = _run(name, dtype, 1)
    assert all(cases.bits_equal(a, b) for a, b in zip(outs, outs1)), "outputs differ between 1 and 2 threads"
    assert all(cases.bits_equal(a.grad, b.grad) for a, b in zip(leaves, leaves1)), "gradients differ between 1 and 2 threads"


def test_k_split_gives_the_expert_weight_gradients_of_the_ops():
    """group_type 2 on X.T and dY: the same bits as the ops' own dW (gmmav's GEMM per expert)."""
    g = torch.Generator().manual_seed(5)
    X, dY = torch.randn(sum(SIZES), K, generator=g).to(BF16), torch.randn(sum(SIZES), N, generator=g).to(BF16)
    got = gt.npu_grouped_matmul([X.T], [dY], group_list=torch.tensor(SIZES), split_item=3, group_type=2,
                                group_list_type=1)[0]
    starts = list(itertools.accumulate([0] + SIZES))
    want = torch.stack([gt.matmul(X[a:b].t().contiguous(), dY[a:b]) for a, b in zip(starts, starts[1:])])
    assert cases.bits_equal(got, want)
    assert float(got[0].abs().sum()) == 0  # the empty group's gradient is 0


def test_transposed_weight_views_are_read_in_place(monkeypatch):
    seen = []
    real = _native.matmul

    def spy(x, w, out, trans):
        seen.append((w[0], trans))
        return real(x, w, out, trans)

    monkeypatch.setattr(_native, "matmul", spy)
    w = torch.randn(3, N, K).to(BF16)  # stored (e, N, K), passed as the (e, K, N) view
    x = torch.randn(12, K).to(BF16)
    gt.npu_grouped_matmul([x], [w.transpose(1, 2)], group_list=[4, 8, 12], split_item=2, group_type=0)
    assert [t for _, t in seen] == [True] * 3
    assert [p for p, _ in seen] == [w[j].data_ptr() for j in range(3)], "a transposed view was copied"


def test_in_the_torch_npu_stand_in():
    mod = gt.patch_torch_npu()
    import torch_npu

    assert torch_npu is mod and torch_npu.npu_grouped_matmul is gt.npu_grouped_matmul


def test_double_backward_raises():
    x = torch.randn(6, K).to(BF16).requires_grad_()
    w = torch.randn(2, K, N).to(BF16).requires_grad_()
    y = gt.npu_grouped_matmul([x], [w], group_list=[2, 6], split_item=2, group_type=0)[0]
    dx, dw = torch.autograd.grad((y.float() * torch.randn(y.shape)).sum(), [x, w], create_graph=True)
    assert dx.grad_fn is not None, "a gradient without grad_fn under create_graph=True: silently wrong"
    with pytest.raises(RuntimeError, match="double backward"):
        torch.autograd.grad(dx.float().sum(), w)


def _ok():
    return dict(x=[torch.zeros(6, 4, dtype=F16)], weight=[torch.zeros(2, 4, 5, dtype=F16)], group_list=[2, 6],
                split_item=2, group_type=0)


BAD = {
    "bias": (dict(bias=[torch.zeros(5, dtype=F16)] * 2), "bias"),
    "scale": (dict(scale=[torch.zeros(5, dtype=torch.int64)]), "scale"),
    "group_type 1": (dict(group_type=1), "group_type"),
    "group_type 3": (dict(group_type=3), "group_type"),
    "split_item 4": (dict(split_item=4), "split_item"),
    "group_list_type 2": (dict(group_list_type=2), "group_list_type"),
    "group_list decreasing": (dict(group_list=[4, 2]), "group_list"),
    "group_list short of the rows": (dict(group_list=[2, 5]), "group_list"),
    "group_list counts sum": (dict(group_list=torch.tensor([2, 3]), group_list_type=1), "group_list"),
    "group_list negative": (dict(group_list=torch.tensor([-1, 7]), group_list_type=1), "group_list"),
    "group_list length": (dict(group_list=[1, 2, 6]), "group_list"),
    "group_list float": (dict(group_list=torch.tensor([2.0, 6.0])), "group_list"),
    "group_list huge": (dict(group_list=[2, 2 ** 64]), "group_list"),
    "no group_list": (dict(group_list=None), "group_list"),
    "float32": (dict(x=[torch.zeros(6, 4)]), "x[0]"),
    "dtypes differ": (dict(weight=[torch.zeros(2, 4, 5, dtype=BF16)]), "weight[0]"),
    "x not a list": (dict(x=torch.zeros(6, 4, dtype=F16)), "x"),
    "K differs": (dict(weight=[torch.zeros(2, 3, 5, dtype=F16)]), "weight[0]"),
    "act_type": (dict(act_type=1), "act_type"),
    "output_dtype": (dict(output_dtype=torch.float32), "output_dtype"),
    "group_type -1 with group_list": (dict(group_type=-1, weight=[torch.zeros(4, 5, dtype=F16)]), "group_list"),
    "-1 counts differ": (dict(group_type=-1, group_list=None, weight=[torch.zeros(4, 5, dtype=F16)] * 2), "x, weight"),
    "several x, split 0": (dict(x=[torch.zeros(2, 4, dtype=F16)] * 2, group_list=None, split_item=0), "split_item"),
    "group_type 2, two x": (dict(group_type=2, x=[torch.zeros(4, 6, dtype=F16)] * 2), "x, weight"),
    "group_type 2 without group_list": (dict(group_type=2, x=[torch.zeros(4, 6, dtype=F16)],
                                             weight=[torch.zeros(6, 5, dtype=F16)], group_list=None), "group_list"),
    "split 2 with different N": (dict(weight=[torch.zeros(4, 5, dtype=F16), torch.zeros(4, 6, dtype=F16)]), "weight"),
}


@pytest.mark.parametrize("what", sorted(BAD))
def test_torch_npu_rejections_are_value_errors(what):
    over, param = BAD[what]
    kw = _ok()
    kw.update(over)
    with pytest.raises(ValueError) as info:
        gt.npu_grouped_matmul(kw.pop("x"), kw.pop("weight"), **kw)
    msg = str(info.value)
    assert "expected" in msg and "got" in msg and msg.startswith(param), f"{what}: {msg}"


def test_the_ok_call_works():
    kw = _ok()
    (y,) = gt.npu_grouped_matmul(kw.pop("x"), kw.pop("weight"), **kw)
    assert y.shape == (6, 5) and y.dtype == F16
