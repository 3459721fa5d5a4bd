"""gmmav.torch in one process: the worked example of SPEC §3, the API's shape, every validation error."""
import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cases  # noqa: E402
import gmmav.torch as gt  # noqa: E402

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

    if dist.is_initialized() or gt._native.launched_by_mpi():
        pytest.skip("a launcher is present")
    with pytest.raises(RuntimeError, match="torch.distributed"):
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
    "non-contiguous gmm_x": (dict(gmm_x=torch.zeros(4, 3, dtype=F16).t()), "gmmX"),
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
