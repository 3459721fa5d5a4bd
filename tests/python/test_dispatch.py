"""gmmav.torch.npu_alltoallv_gmm (the dispatch op) in one process: docs/dispatch-op.md's worked
example, random cases vs the float64 golden, combine(dispatch(x)) = x bit for bit, validation."""
import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cases  # noqa: E402
import test_api  # noqa: E402
import gmmav.torch as gt  # noqa: E402

F16, BF16 = torch.float16, torch.bfloat16


def test_worked_example_dispatch_op_section_3():
    # Identity weights: gmm_y rows are bit copies of the received rows, so the layout is checked exactly.
    send = [[2, 1, 1, 2], [3, 1, 0, 2]]
    recv = [[2, 1, 3, 1], [1, 2, 0, 2]]
    H = 8
    xs = [torch.arange(sum(send[r]) * H, dtype=torch.float32).reshape(-1, H).add(100 * r).to(BF16) for r in range(2)]
    w = torch.eye(H).expand(2, H, H).contiguous().to(BF16)
    out = cases.run_ranks(gt.in_process_hcoms(2),
                          lambda r, n: gt.npu_alltoallv_gmm(xs[r], w, n, 2, send[r], recv[r], permute_out_flag=True))
    r0, r1 = xs
    want = [torch.stack([r0[0], r0[1], r1[0], r1[1], r1[2], r0[2], r1[3]]),
            torch.stack([r0[3], r0[4], r0[5], r1[4], r1[5]])]
    for r in range(2):
        gmm_y, mm_y, perm = out[r]
        assert torch.equal(perm, want[r]) and torch.equal(gmm_y, want[r]) and mm_y is None


@pytest.mark.parametrize("dtype", [F16, BF16])
@pytest.mark.parametrize("shared", [None, (6, 24, 20)])
@pytest.mark.parametrize("trans", [(False, False), (True, True)])
@pytest.mark.parametrize("permute_out_flag", [False, True])
def test_in_process_within_bound(dtype, shared, trans, permute_out_flag):
    trans_gmm, trans_mm = trans if shared else (trans[0], False)
    case = cases.Case(2, 2, 40, 24, dtype, 4, shared, trans_gmm, trans_mm)
    out = cases.run_ranks(gt.in_process_hcoms(2), lambda r, n: cases.call_dispatch(case, r, n, permute_out_flag))
    for r in range(2):
        gmm_y = out[r][0]
        assert gmm_y.dtype == dtype and gmm_y.is_contiguous() and gmm_y.shape == (sum(case.recv(r)), case.n1)
        cases.check_dispatch_rank(case, r, out[r], permute_out_flag)


@pytest.mark.parametrize("W", [2, 3])
@pytest.mark.parametrize("pattern", ["random", "skewed", "empty"])
@pytest.mark.parametrize("dtype", [F16, BF16])
def test_combine_of_dispatch_is_the_identity(W, pattern, dtype):
    """dispatch with identity weights, then combine with the counts exchanged: every rank's gmm_x
    comes back bit for bit (docs/dispatch-op.md §3), subnormals included. (Not -0.0: x * 1 summed
    with +0 products gives +0, as in the native test.)"""
    case = cases.Case(W, 3, 24, 24, dtype, 40 + W, pattern=pattern)
    eye = torch.eye(case.h1).expand(case.e, case.h1, case.h1).contiguous().to(dtype)

    def body(r, name):
        x, _, _ = case.inputs(r)
        tiny = [2.0 ** -20, -(2.0 ** -22), 2.0 ** -24, 0.0] if dtype == F16 else [2.0 ** -130, -(2.0 ** -131), 2.0 ** -133, 0.0]
        if x.shape[0]:
            x[0, 0:4] = torch.tensor(tiny, dtype=torch.float64).to(dtype)
            assert x[0, 1] != 0  # a subnormal, not flushed
        gmm_y, _, perm = gt.npu_alltoallv_gmm(x, eye, name, W, case.send(r), case.recv(r), permute_out_flag=True)
        back, _ = gt.npu_gmm_alltoallv(gmm_y, eye, name, W, case.recv(r), case.send(r))
        return x, gmm_y, perm, back

    for x, gmm_y, perm, back in cases.run_ranks(gt.in_process_hcoms(W), body):
        assert cases.bits_equal(perm, gmm_y)
        assert cases.bits_equal(back, x)


def test_registered_as_torch_op_and_torch_npu_stand_in():
    assert hasattr(torch.ops.gmmav, "npu_alltoallv_gmm")
    mod = gt.patch_torch_npu()
    import torch_npu

    assert torch_npu is mod and torch_npu.npu_alltoallv_gmm is gt.npu_alltoallv_gmm
    case = cases.Case(2, 2, 16, 8, BF16, 9, (4, 8, 6))

    def body(r, name):
        fn = cases.call_dispatch(case, r, name, True)
        via_op = cases.call_dispatch(case, r, name, True, op=torch.ops.gmmav.npu_alltoallv_gmm)
        no_perm = cases.call_dispatch(case, r, name, False, op=torch.ops.gmmav.npu_alltoallv_gmm)
        return fn, via_op, no_perm

    for fn, via_op, no_perm in cases.run_ranks(gt.in_process_hcoms(2), body):
        assert all(cases.bits_equal(a, b) for a, b in zip(fn, via_op))
        assert no_perm[2].numel() == 0  # torch.ops cannot return None: empty stands for "not asked for"


# Validation: ValueError naming the parameter, before any peer is needed (W = 1 group), inputs untouched.
BAD = dict(test_api.BAD)
BAD["permute_out_flag not a bool"] = (dict(permute_out_flag=1), "permute_out_flag")
BAD["trans_mm_weight without shared expert"] = (dict(trans_mm_weight=True), "transMmWeight")


@pytest.mark.parametrize("what", sorted(BAD))
def test_validation_error_is_value_error(what):
    over, param = BAD[what]
    args, kw = test_api.good(**over)
    inputs = [t.clone() for t in list(args) + list(kw.values()) if isinstance(t, torch.Tensor) and t.device.type == "cpu"]
    with pytest.raises(ValueError) as info:
        gt.npu_alltoallv_gmm(*args, **kw)
    msg = str(info.value)
    assert "expected" in msg and "got" in msg, msg
    assert param.lower() in msg.lower(), f"{what}: message does not name {param}: {msg}"
    after = [t for t in list(args) + list(kw.values()) if isinstance(t, torch.Tensor) and t.device.type == "cpu"]
    assert all(torch.equal(a, b) for a, b in zip(inputs, after))


def test_the_good_call_works():
    args, kw = test_api.good()
    gmm_y, mm_y, perm = gt.npu_alltoallv_gmm(*args, **kw)
    assert gmm_y.shape == (3, 5) and mm_y is None and perm is None
    args, kw = test_api.good(mm_x=torch.zeros(2, 6, dtype=F16), mm_weight=torch.zeros(7, 6, dtype=F16),
                             trans_mm_weight=True, permute_out_flag=True)
    gmm_y, mm_y, perm = gt.npu_alltoallv_gmm(*args, **kw)
    assert mm_y.shape == (2, 7) and perm.shape == (3, 4)


def test_validation_error_through_torch_ops_is_value_error():
    args, kw = test_api.good(send_counts=[3])
    with pytest.raises(ValueError, match="sendCounts"):
        torch.ops.gmmav.npu_alltoallv_gmm(*args, **kw)


def test_matmul_binding():
    """gmmav.torch.matmul: one rounding of the exact product (here exactly representable), both
    layouts of W, an empty reduction, and ValueError for mismatched shapes."""
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]).to(BF16)
    w = torch.tensor([[1.0, 0.5], [0.25, 2.0], [-1.0, 1.0]]).to(BF16)
    want = (x.double() @ w.double()).to(BF16)
    assert torch.equal(gt.matmul(x, w), want)
    assert torch.equal(gt.matmul(x, w.t().contiguous(), True), want)
    assert torch.equal(gt.matmul(torch.zeros(3, 0, dtype=F16), torch.zeros(0, 2, dtype=F16)), torch.zeros(3, 2, dtype=F16))
    with pytest.raises(ValueError, match="w"):
        gt.matmul(x, w.t().contiguous())


def _every_rank_raises(W, body):
    """body(r, name) on every rank; each rank's exception (or None) -> list."""
    def wrapped(r, name):
        try:
            body(r, name)
        except Exception as e:  # noqa: BLE001 - returned for the assertion
            return e
        return None

    return cases.run_ranks(gt.in_process_hcoms(W), wrapped)


def test_count_mismatch_is_runtime_error_on_every_rank():
    case = cases.Case(3, 2, 16, 8, F16, 12)

    def body(r, name):
        x, w, _ = case.inputs(r)
        recv = case.recv(r)
        if r == 2:
            recv[0] += 1  # disagrees with rank 0's send_counts
        gt.npu_alltoallv_gmm(x, w, name, 3, case.send(r), recv)

    errors = _every_rank_raises(3, body)
    assert all(isinstance(e, RuntimeError) and not isinstance(e, ValueError) and "mismatch" in str(e) for e in errors), errors


def test_mixed_ops_are_runtime_error_on_every_rank():
    """Rank 0 calls the dispatch op while rank 1 calls the combine op with the same counts."""
    case = cases.Case(2, 2, 16, 16, BF16, 13)

    def body(r, name):
        x, w, _ = case.inputs(r)
        if r == 0:
            gt.npu_alltoallv_gmm(x, w, name, 2, case.send(r), case.recv(r))
        else:
            gt.npu_gmm_alltoallv(x, w, name, 2, case.send(r), case.recv(r))

    errors = _every_rank_raises(2, body)
    assert all(isinstance(e, RuntimeError) and not isinstance(e, ValueError) and "operator" in str(e) for e in errors), errors
