"""gmmav.torch's output pool (docs/python.md, "Outputs"; D102): outputs of a MiB or more live on
blocks kept resident between calls. A block is handed out again only after every tensor on its
storage (views included) is freed; pooled outputs have the bits of unpooled ones; the budget and
the switch work; what the docs say about resizing holds."""
import gc
import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cases  # noqa: E402
import gmmav.torch as gt  # noqa: E402

E, H1, N1, H2, N2 = 2, 64, 1024, 40, 2048
SEND = RECV = [300, 400]  # W = 1: y is 700 x 1024 BF16 (1.4 MB, pooled); mm_y 300 x 2048 (pooled)
BS = 300


@pytest.fixture(autouse=True)
def pool_on():
    gc.collect()
    gt.set_output_pool_bytes(0)  # empty: each test counts its own blocks
    gt.set_output_pool_bytes(1 << 30)
    yield
    gt.set_output_pool_bytes(1 << 30)


_name = []


def hcom():
    if not _name:
        _name.append(gt.in_process_hcoms(1)[0])
    return _name[0]


def tensors(seed=0, dtype=torch.bfloat16):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(sum(SEND), H1, generator=g).to(dtype)
    w = (torch.randn(E, H1, N1, generator=g) / H1 ** 0.5).to(dtype)
    mx = torch.randn(BS, H2, generator=g).to(dtype)
    mw = (torch.randn(H2, N2, generator=g) / H2 ** 0.5).to(dtype)
    return x, w, mx, mw


def combine(x, w, mx=None, mw=None, send=SEND):
    return gt.npu_gmm_alltoallv(x[:sum(send)], w, hcom(), 1, send, send, mm_x=mx, mm_weight=mw)


def info():
    return gt.output_pool_info()


def test_a_freed_output_is_reused_with_the_bits_of_an_unpooled_call():
    x, w, mx, mw = tensors(1)
    gt.set_output_pool_bytes(0)
    want = combine(x, w, mx, mw)
    assert info()["bytes"] == 0
    gt.set_output_pool_bytes(1 << 30)
    y, mm_y = combine(x, w, mx, mw)
    ptrs = {y.data_ptr(), mm_y.data_ptr()}
    assert cases.bits_equal(y, want[0]) and cases.bits_equal(mm_y, want[1])
    del y, mm_y
    assert info()["blocks"] == 2
    before = info()
    y, mm_y = combine(x, w, mx, mw)
    assert {y.data_ptr(), mm_y.data_ptr()} == ptrs  # the same blocks, pages in place
    assert info()["reused"] - before["reused"] == 2 and info()["allocated"] == before["allocated"]
    assert cases.bits_equal(y, want[0]) and cases.bits_equal(mm_y, want[1])


def test_a_live_output_or_view_keeps_its_block():
    x, w, _, _ = tensors(2)
    y1, _ = combine(x, w)
    kept = y1.clone()
    y2, _ = combine(x, w)  # y1 alive: another block
    assert y2.data_ptr() != y1.data_ptr()
    view = y1[5:9, 100:]
    p1 = y1.data_ptr()
    del y1, y2  # y2's block goes back; y1's storage lives on in the view
    x2, w2, _, _ = tensors(3)
    outs = [combine(x2, w2)[0] for _ in range(3)]
    assert all(o.data_ptr() != p1 for o in outs)
    assert cases.bits_equal(view, kept[5:9, 100:])  # nothing wrote into it
    before = info()["blocks"]
    del view
    assert info()["blocks"] == before + 1  # y1's block comes back only now


def test_outputs_whose_rows_change_share_a_size_class():
    """The counts change from call to call: 700 rows, then 690, fit one block (classes of 1/8 of a
    power of two)."""
    x, w, _, _ = tensors(4)
    y, _ = combine(x, w)
    p = y.data_ptr()
    del y
    y, _ = combine(x, w, send=[300, 390])
    assert y.shape == (690, N1) and y.data_ptr() == p
    y_ref = gt.npu_gmm_alltoallv(x[:690].clone(), w, hcom(), 1, [300, 390], [300, 390])[0]
    assert cases.bits_equal(y, y_ref)


def test_dispatch_outputs_are_pooled():
    x, w, mx, mw = tensors(5)
    out = gt.npu_alltoallv_gmm(x, w, hcom(), 1, SEND, RECV, mm_x=mx, mm_weight=mw, permute_out_flag=True)
    before = info()
    del out
    assert info()["blocks"] - before["blocks"] == 3  # gmm_y, mm_y, permute_out


def test_budget_and_off_switch():
    x, w, mx, mw = tensors(6)
    outs = [combine(x, w, mx, mw) for _ in range(3)]
    del outs
    assert info()["blocks"] == 6 and info()["bytes"] > 0
    gt.set_output_pool_bytes(info()["bytes"] // 2)  # the largest blocks go first
    assert 0 < info()["bytes"] <= info()["limit_bytes"]
    gt.set_output_pool_bytes(0)
    assert info()["bytes"] == 0 and info()["blocks"] == 0
    before = info()
    y, mm_y = combine(x, w, mx, mw)  # off: torch.empty
    assert info()["allocated"] == before["allocated"] and info()["reused"] == before["reused"]
    for bad in (-1, 1.5, True, "1"):
        with pytest.raises(ValueError, match="expected an integer >= 0"):
            gt.set_output_pool_bytes(bad)


def test_a_pooled_output_cannot_grow():
    """docs/python.md says so: resize_ to a larger size raises (the storage is the block's)."""
    x, w, _, _ = tensors(7)
    y, _ = combine(x, w)
    with pytest.raises(RuntimeError):
        y.resize_(y.shape[0] * 4, y.shape[1])
    y.resize_(10, N1)  # smaller is a view of the same storage
    assert y.shape == (10, N1)


@pytest.mark.parametrize("count", [2**40, 2**62, 2**63 - 1])
def test_an_output_too_large_for_the_machine_is_a_memory_error_naming_it(count):
    """Counts no gmmX matches (the C++ Plan refuses them once the outputs exist): an output of that
    many rows cannot be had, and the error says which output and its size."""
    x, w, _, _ = tensors(9)
    before = info()
    with pytest.raises(MemoryError, match=r"^y: expected host memory for a \(\d+, 1024\) bfloat16 output"):
        gt.npu_gmm_alltoallv(x, w, hcom(), 1, [count, 0], [count, 0])
    assert info()["bytes"] == before["bytes"]  # nothing kept from the failed call


def test_small_outputs_come_from_torch():
    x, w, _, _ = tensors(8)
    before = info()
    y, _ = gt.npu_gmm_alltoallv(x[:20], w[:, :, :16].contiguous(), hcom(), 1, [10, 10], [10, 10])
    assert y.shape == (20, 16)
    assert info()["allocated"] == before["allocated"] and info()["reused"] == before["reused"]
