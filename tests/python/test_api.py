"""gmmav.torch in one process: the worked example of docs/spec.md §3, the API's shape, every validation error."""
import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cases  # noqa: E402
import gmmav.compat.torch_npu as stand_in  # noqa: E402
import gmmav.torch as gt  # noqa: E402
from gmmav import _native  # noqa: E402

F16, BF16 = torch.float16, torch.bfloat16


def test_worked_example_spec_section_3():
    # Identity weights: y rows are bit copies of gmmX rows, so the layout is checked exactly.
    send = [[2, 1, 3, 1], [1, 2, 0, 2]]
    recv = [[2, 1, 1, 2], [3, 1, 0, 2]]
    H = 8
    xs = [torch.arange(sum(send[r]) * H, dtype=torch.float32).reshape(-1, H).add(100 * r).to(BF16) for r in range(2)]
    w = torch.eye(H).expand(2, H, H).contiguous().to(BF16)
    ys = cases.run_ranks(gt.in_process_hcoms(2), lambda r, n: gt.npu_gmm_alltoallv(xs[r], w, n, 2, send[r], recv[r]))
    r0, r1 = xs
    assert torch.equal(ys[0][0], torch.stack([r0[0], r0[1], r0[5], r1[0], r1[1], r1[2]]))
    assert torch.equal(ys[1][0], torch.stack([r0[2], r0[3], r0[4], r0[6], r1[3], r1[4]]))
    assert ys[0][1] is None and ys[1][1] is None


@pytest.mark.parametrize("dtype", [F16, BF16])
@pytest.mark.parametrize("shared", [None, (6, 24, 20)])
@pytest.mark.parametrize("trans", [(False, False), (True, True)])
def test_in_process_within_bound(dtype, shared, trans):
    trans_gmm, trans_mm = trans if shared else (trans[0], False)
    case = cases.Case(2, 2, 40, 24, dtype, 3, shared, trans_gmm, trans_mm)
    out = cases.in_process_results(case)
    for r in range(2):
        y, mm_y = out[r]
        assert y.dtype == dtype and y.is_contiguous() and y.device.type == "cpu"
        cases.check_case_rank(case, r, y, mm_y)


def test_registered_as_torch_op_and_torch_npu_stand_in():
    assert hasattr(torch.ops.gmmav, "npu_gmm_alltoallv")
    mod = gt.patch_torch_npu()
    import torch_npu

    assert torch_npu is mod and torch_npu.npu_gmm_alltoallv is gt.npu_gmm_alltoallv


def test_hcom_without_a_launcher_is_a_clear_error():
    import torch.distributed as dist

    if dist.is_initialized() or _native.launched_by_mpi():
        pytest.skip("a launcher is present")
    with pytest.raises(RuntimeError, match="torch.distributed"):
        gt.hcom()


def test_hcom_under_mpirun_without_mpi_names_the_build(monkeypatch):
    # Built without MPI (GMMAV_WITH_MPI=OFF, D98): under a launcher, without torch.distributed, hcom()
    # says that gmmav has no MPI instead of failing later.
    import gmmav
    import torch.distributed as dist

    assert gmmav.with_mpi is _native.with_mpi and isinstance(gmmav.with_mpi, bool)
    if gmmav.with_mpi or dist.is_initialized():
        pytest.skip("built with MPI (python.mpi.* cover hcom() under mpirun)")
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    assert _native.launched_by_mpi()
    with pytest.raises(RuntimeError, match=r"gmmav was built without MPI \(GMMAV_WITH_MPI=OFF\)"):
        gt.hcom()


# Every validation error: ValueError naming the parameter, before any peer is needed (W = 1 group).
NAME = None


def one_rank():
    global NAME
    if NAME is None:
        NAME = gt.in_process_hcoms(1)[0]
    return NAME


def good(**over):
    kw = dict(gmm_x=torch.zeros(3, 4, dtype=F16), gmm_weight=torch.zeros(2, 4, 5, dtype=F16), hcom=one_rank(),
              ep_world_size=1, send_counts=[1, 2], recv_counts=[1, 2])
    kw.update(over)
    args = [kw.pop(k) for k in ("gmm_x", "gmm_weight", "hcom", "ep_world_size", "send_counts", "recv_counts")]
    return args, kw


def test_the_good_call_works():
    args, kw = good()
    y, mm_y = gt.npu_gmm_alltoallv(*args, **kw)
    assert y.shape == (3, 5) and mm_y is None
    args, kw = good(mm_x=torch.zeros(2, 6, dtype=F16), mm_weight=torch.zeros(7, 6, dtype=F16), trans_mm_weight=True)
    y, mm_y = gt.npu_gmm_alltoallv(*args, **kw)
    assert mm_y.shape == (2, 7)


BAD = {
    "unknown hcom": (dict(hcom="nobody"), "hcom"),
    "hcom not a str": (dict(hcom=3), "hcom"),
    "ep_world_size != group size": (dict(ep_world_size=2), "epWorldSize"),
    "ep_world_size not an int": (dict(ep_world_size=1.0), "ep_world_size"),
    "send_counts length": (dict(send_counts=[3]), "sendCounts"),
    "recv_counts length": (dict(recv_counts=[1, 1, 1]), "recvCounts"),
    "negative count": (dict(send_counts=[4, -1]), "sendCounts"),
    "count not an int": (dict(send_counts=[1.5, 1.5]), "send_counts"),
    "counts None": (dict(send_counts=None), "send_counts"),
    "gmm_x rows != sum(send_counts)": (dict(send_counts=[1, 1]), "gmmX"),
    "float32": (dict(gmm_x=torch.zeros(3, 4)), "gmm_x"),
    "weight dtype differs": (dict(gmm_weight=torch.zeros(2, 4, 5, dtype=BF16)), "gmm_weight"),
    "gmm_x 3-D": (dict(gmm_x=torch.zeros(3, 4, 1, dtype=F16)), "gmmX"),
    "gmm_x 4-D": (dict(gmm_x=torch.zeros(3, 4, 1, 1, dtype=F16)), "gmm_x"),
    "gmm_weight 2-D": (dict(gmm_weight=torch.zeros(4, 5, dtype=F16)), "gmmWeight"),
    "H1 differs": (dict(gmm_weight=torch.zeros(2, 6, 5, dtype=F16)), "gmmX"),
    "no experts": (dict(gmm_weight=torch.zeros(0, 4, 5, dtype=F16), send_counts=[], recv_counts=[]), ""),
    "gmm_x transposed but the wrong shape": (dict(gmm_x=torch.zeros(3, 4, dtype=F16).t()), "gmmX"),
    "not on the CPU": (dict(gmm_x=torch.zeros(3, 4, dtype=F16, device="meta")), "gmm_x"),
    "mm_x only": (dict(mm_x=torch.zeros(2, 6, dtype=F16)), "mm_x"),
    "mm_weight only": (dict(mm_weight=torch.zeros(6, 7, dtype=F16)), "mm_weight"),
    "trans_mm_weight without shared expert": (dict(trans_mm_weight=True), "transMmWeight"),
    "trans flag not a bool": (dict(trans_gmm_weight=1), "trans_gmm_weight"),
    "H2 differs": (dict(mm_x=torch.zeros(2, 6, dtype=F16), mm_weight=torch.zeros(5, 7, dtype=F16)), "mmX"),
    "mm dtype differs": (dict(mm_x=torch.zeros(2, 6, dtype=BF16), mm_weight=torch.zeros(6, 7, dtype=F16)), "mm_x"),
    "mm_weight 3-D": (dict(mm_x=torch.zeros(2, 6, dtype=F16), mm_weight=torch.zeros(6, 7, 1, dtype=F16)), "mmWeight"),
    "count tensor differs": (dict(send_counts_tensor=torch.tensor([2, 1])), "send_counts_tensor"),
    "count tensor 2-D": (dict(recv_counts_tensor=torch.tensor([[2, 1]])), "recv_counts_tensor"),
    "count tensor float": (dict(recv_counts_tensor=torch.tensor([2.0, 1.0])), "recv_counts_tensor"),
    "count tensor not on the CPU": (dict(send_counts_tensor=torch.tensor([1, 2], device="meta")), "send_counts_tensor"),
    "count tensor in place of the list, float": (dict(send_counts=torch.tensor([1.0, 2.0])), "send_counts"),
    # Issue 30, item 7: beyond int64 / int, once a pybind TypeError.
    "count >= 2**63": (dict(send_counts=[2 ** 63, 0]), "send_counts"),
    "count < -2**63": (dict(recv_counts=[1, -2 ** 63 - 1]), "recv_counts"),
    "ep_world_size 2**40": (dict(ep_world_size=2 ** 40), "ep_world_size"),
    "ep_world_size -2**40": (dict(ep_world_size=-2 ** 40), "ep_world_size"),
}


@pytest.mark.parametrize("what", sorted(BAD))
def test_validation_error_is_value_error(what):
    over, param = BAD[what]
    args, kw = good(**over)
    inputs = [t.clone() for t in list(args) + list(kw.values()) if isinstance(t, torch.Tensor) and t.device.type == "cpu"]
    with pytest.raises(ValueError) as info:
        gt.npu_gmm_alltoallv(*args, **kw)
    msg = str(info.value)
    assert "expected" in msg and "got" in msg, msg
    assert param.lower() in msg.lower(), f"{what}: message does not name {param}: {msg}"
    after = [t for t in list(args) + list(kw.values()) if isinstance(t, torch.Tensor) and t.device.type == "cpu"]
    assert all(torch.equal(a, b) for a, b in zip(inputs, after))  # inputs untouched


def test_validation_error_through_torch_ops_is_value_error():
    args, kw = good(send_counts=[3])
    with pytest.raises(ValueError, match="sendCounts"):
        torch.ops.gmmav.npu_gmm_alltoallv(*args, **kw)


def test_count_tensors_in_place_of_the_lists():
    args, kw = good()
    want, _ = gt.npu_gmm_alltoallv(*args, **kw)
    args[4], args[5] = torch.tensor(args[4]), torch.tensor(args[5], dtype=torch.int32)
    got, _ = gt.npu_gmm_alltoallv(*args, **kw)
    assert cases.bits_equal(got, want)


# Issue 30, items 2 and 4: every tensor argument may be a view (strided, transposed, broadcast with
# all strides 0). The result is the bits of the same values passed contiguous; a broadcast tensor
# was once read as if dense (out of bounds: garbage, or SIGSEGV at large sizes).
def _broadcast(t):
    return t.reshape(-1)[:1].reshape([1] * t.dim()).expand(t.shape)


def _strided(t):
    wide = torch.zeros(*t.shape[:-1], 2 * t.shape[-1], dtype=t.dtype)
    wide[..., ::2] = t
    return wide[..., ::2]


def _transposed(t):  # the same values, stored transposed: the view a weight's .permute/.t() gives
    return t.transpose(-1, -2).contiguous().transpose(-1, -2)


def _other_permutation(t):  # (e, H, N) stored (H, e, N): neither row-major nor transposed
    return t.permute(1, 0, 2).contiguous().permute(1, 0, 2) if t.dim() == 3 else _strided(t)


VIEWS = {"broadcast": _broadcast, "strided": _strided, "transposed": _transposed, "permuted": _other_permutation}
ARGS = ("gmm_x", "gmm_weight", "mm_x", "mm_weight")


def _views_case():
    return cases.Case(2, 2, 24, 16, BF16, 17, shared=(6, 20, 12))


def _call_with(case, op, views, permute=False):
    """Every rank's outputs of `op` with views[arg](tensor) in place of each named argument."""
    def body(r, name):
        x, w, kw = case.inputs(r)
        t = {"gmm_x": x, "gmm_weight": w, **kw}
        t = {k: views[k](v) if k in views else v for k, v in t.items()}
        extra = {"permute_out_flag": permute} if op in (gt.npu_alltoallv_gmm, torch.ops.gmmav.npu_alltoallv_gmm) else {}
        return op(t["gmm_x"], t["gmm_weight"], name, case.W, case.send(r), case.recv(r), mm_x=t["mm_x"],
                  mm_weight=t["mm_weight"], **extra)
    return cases.run_ranks(gt.in_process_hcoms(case.W), body)


OPS = {"combine": gt.npu_gmm_alltoallv, "dispatch": gt.npu_alltoallv_gmm,
       "torch.ops combine": torch.ops.gmmav.npu_gmm_alltoallv, "torch.ops dispatch": torch.ops.gmmav.npu_alltoallv_gmm}


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("view", sorted(VIEWS))
@pytest.mark.parametrize("arg", ARGS)
def test_views_read_as_their_values(op, view, arg):
    case = _views_case()
    fn = VIEWS[view]
    dense = lambda t: fn(t).contiguous()  # noqa: E731 - the same values, row-major
    got = _call_with(case, OPS[op], {arg: fn}, permute=True)
    want = _call_with(case, OPS[op], {arg: dense}, permute=True)
    for r in range(case.W):
        for a, b in zip(got[r], want[r]):
            assert cases.bits_equal(a, b), f"{op}, {view} {arg}: rank {r} differs from the same values passed row-major"


def test_broadcast_gmm_x_of_the_issue():
    """torch.ones(1, 1, dtype=bf16).expand(A, H1): every output row is the sum of W's column."""
    case = cases.Case(2, 2, 64, 32, BF16, 18)

    def body(r, name):
        _, w, _ = case.inputs(r)
        x = torch.ones(1, 1, dtype=BF16).expand(sum(case.send(r)), case.h1)
        return gt.npu_gmm_alltoallv(x, w, name, 2, case.send(r), case.recv(r))[0], w

    out = cases.run_ranks(gt.in_process_hcoms(2), body)
    for r in range(2):
        y = out[r][0]
        # rank r receives from s, expert j: rows of ones @ W_j of rank s
        rows = [torch.ones(case.c[s][r][j], case.h1, dtype=BF16) for s in range(2) for j in range(2)]
        want = torch.cat([gt.matmul(rw, out[s][1][j]) for (s, j), rw in zip([(s, j) for s in range(2) for j in range(2)], rows)])
        assert cases.bits_equal(y, want)


def test_transposed_weight_view_is_read_in_place(monkeypatch):
    """A weight that is a transposed view reaches gmmav as the tensor it views, with the trans flag
    flipped: no copy (the data pointer gmmav reads is the stored tensor's), forward and backward."""
    seen = []
    for fn in ("run", "run_dispatch"):
        real = getattr(_native, fn)

        def spy(*a, real=real):
            seen.append((a[4], a[7][0], a[5], a[10][0] if a[10] is not None else None))  # flags and weight pointers
            return real(*a)
        monkeypatch.setattr(_native, fn, spy)
    g = torch.Generator().manual_seed(3)
    w_stored = torch.randn(2, 5, 4, generator=g).to(F16)  # (e, N1, H1): the op gets the (e, H1, N1) view
    mw_stored = torch.randn(7, 6, generator=g).to(F16)  # (N2, H2): the op gets the (H2, N2) view .t()
    x, mx = torch.randn(3, 4, generator=g).to(F16), torch.randn(2, 6, generator=g).to(F16)
    for op in (gt.npu_gmm_alltoallv, gt.npu_alltoallv_gmm):
        seen.clear()
        op(x, w_stored.permute(0, 2, 1), one_rank(), 1, [1, 2], [1, 2], mm_x=mx, mm_weight=mw_stored.t())
        assert seen == [(True, w_stored.data_ptr(), True, mw_stored.data_ptr())], seen
    w = w_stored.clone().requires_grad_()
    seen.clear()
    y, _ = gt.npu_gmm_alltoallv(x, w.permute(0, 2, 1), one_rank(), 1, [1, 2], [1, 2])
    y.float().sum().backward()  # backward: the dispatch op reads the same bytes, flag flipped back
    assert [p for _, p, _, _ in seen] == [w.data_ptr()] * 2 and [t for t, _, _, _ in seen] == [True, False], seen
    assert w.grad.shape == w.shape


def test_the_python_side_lock_is_never_held_into_the_native_call(monkeypatch):
    """The ops' Python prologue runs under ops._python_side (D104), released before gmmav's C++
    call: a rank held in C++ waiting for its peers must not keep their prologues out. Forward and
    backward, both ops, with the weight cache packing (second call) and reading (third)."""
    from gmmav import ops
    held = []
    for fn in ("run", "run_dispatch"):
        real = getattr(_native, fn)

        def spy(*a, real=real):
            held.append(ops._python_side.locked())
            return real(*a)
        monkeypatch.setattr(_native, fn, spy)
    g = torch.Generator().manual_seed(4)
    w = torch.randn(2, 4, 5, generator=g).to(F16)
    x, mx, mw = torch.randn(3, 4, generator=g).to(F16), torch.randn(2, 6, generator=g).to(F16), torch.randn(6, 7).to(F16)
    with torch.no_grad():
        for _ in range(3):
            for op in (gt.npu_gmm_alltoallv, gt.npu_alltoallv_gmm):
                op(x, w, one_rank(), 1, [1, 2], [1, 2], mm_x=mx, mm_weight=mw)
    wg = w.clone().requires_grad_()
    y, _ = gt.npu_gmm_alltoallv(x, wg, one_rank(), 1, [1, 2], [1, 2])
    y.float().sum().backward()
    assert len(held) == 8 and not any(held), held
    assert not ops._python_side.locked()


def test_get_hccl_comm_name_and_npu_backend_are_given_to_process_groups(monkeypatch):
    """patch_torch_npu gives torch.distributed.ProcessGroup get_hccl_comm_name(rank); where torch
    has _get_backend (torch >= 2), _get_backend(npu) gives an object with it; other devices go to
    torch's own _get_backend. (The real thing over gloo: python.mindspeed.gloo.*.)"""
    import torch.distributed as dist

    gt.patch_torch_npu()
    assert hasattr(dist.ProcessGroup, "get_hccl_comm_name")

    class Group:  # stands for a torch >= 2 ProcessGroup
        def _get_backend(self, device):
            return ("torch's", device)

    stand_in._patch_process_group(Group)
    asked = []
    monkeypatch.setattr(stand_in, "_hccl_comm_name", lambda group, rank: asked.append((group, rank)) or "gmmav_name")
    g = Group()
    assert g._get_backend("cpu") == ("torch's", "cpu")
    npu = type("Device", (), {"type": "npu"})()
    assert g._get_backend(npu).get_hccl_comm_name(3) == "gmmav_name"
    assert g._get_backend("npu:0").get_hccl_comm_name(4) == "gmmav_name"
    assert g.get_hccl_comm_name(5) == "gmmav_name"
    assert asked == [(g, 3), (g, 4), (g, 5)]


def test_get_hccl_comm_name_without_torch_distributed_is_a_clear_error():
    import torch.distributed as dist

    if dist.is_initialized():
        pytest.skip("torch.distributed is initialised")
    with pytest.raises(RuntimeError, match="torch.distributed"):
        stand_in._hccl_comm_name(object(), 0)
