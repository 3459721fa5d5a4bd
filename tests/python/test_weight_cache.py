"""gmmav.torch's weight cache (docs/python.md, "Weight cache"; issue 31): a hit computes the bits
of an uncached call; a weight changed in any way torch's version counter sees (in-place writes,
through views, optimizer steps, load_state_dict), or a different tensor at the same address, is
never served stale; transposed views share the stored tensor's entry; the budget is honoured;
threads may call at once."""
import gc
import os
import sys
import threading

import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cases  # noqa: E402
import gmmav.torch as gt  # noqa: E402

F16, BF16 = torch.float16, torch.bfloat16
E, H1, N1, H2, N2 = 3, 64, 48, 40, 24
SEND = RECV = [40, 0, 70]  # W = 1: rows of experts 0..2 (one empty; > 32 rows: tiles read the packed copy)
A = sum(SEND)


@pytest.fixture(autouse=True)
def fresh_cache():
    gt.set_weight_cache_bytes(1 << 30)
    gt.clear_weight_cache()
    yield
    gt.set_weight_cache_bytes(1 << 30)
    gt.clear_weight_cache()


_names = {}


def one_rank():
    """A single-rank in-process group per thread (one call at a time per group)."""
    t = threading.get_ident()
    if t not in _names:
        _names[t] = gt.in_process_hcoms(1)[0]
    return _names[t]


def tensors(dtype, seed=0, trans=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(A, H1, generator=g).to(dtype)
    w = (torch.randn(E, H1, N1, generator=g) / H1 ** 0.5).to(dtype)
    mx = torch.randn(7, H2, generator=g).to(dtype)
    mw = (torch.randn(H2, N2, generator=g) / H2 ** 0.5).to(dtype)
    if trans:  # stored (e, N1, H1) / (N2, H2), passed with the flags
        w, mw = w.transpose(1, 2).contiguous(), mw.t().contiguous()
    return x, w, mx, mw


def combine(x, w, mx=None, mw=None, trans=False):
    return gt.npu_gmm_alltoallv(x, w, one_rank(), 1, SEND, RECV, mm_x=mx, mm_weight=mw, trans_gmm_weight=trans,
                                trans_mm_weight=trans and mw is not None)


def dispatch(x, w, mx=None, mw=None, trans=False):
    return gt.npu_alltoallv_gmm(x, w, one_rank(), 1, SEND, RECV, mm_x=mx, mm_weight=mw, trans_gmm_weight=trans,
                                trans_mm_weight=trans and mw is not None, permute_out_flag=True)


def uncached(op, x, w, mx=None, mw=None, trans=False):
    """The op on copies of the weights: first sight of them, packed in the call."""
    return op(x, w.clone(), mx, mw.clone() if mw is not None else None, trans)


def same_bits(a, b):
    assert len(a) == len(b)
    for u, v in zip(a, b):
        assert (u is None) == (v is None)
        if u is not None:
            assert cases.bits_equal(u, v)


def info():
    return gt.weight_cache_info()


@pytest.mark.parametrize("dtype", [BF16, F16])
@pytest.mark.parametrize("op", [combine, dispatch], ids=["combine", "dispatch"])
@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("trans", [False, True])
def test_hit_gives_the_bits_of_an_uncached_call(dtype, op, shared, trans):
    x, w, mx, mw = tensors(dtype, 1, trans)
    mx, mw = (mx, mw) if shared else (None, None)
    want = uncached(op, x, w, mx, mw, trans)
    before = info()
    outs = [op(x, w, mx, mw, trans) for _ in range(4)]  # 1st: marker, 2nd: packs into the cache, 3rd, 4th: hits
    after = info()
    for out in outs:
        same_bits(out, want)
    assert after["packs"] - before["packs"] == 1 and after["hits"] - before["hits"] == 2, (before, after)
    assert after["entries"] == 1 and after["bytes"] > 0


@pytest.mark.parametrize("op", [combine, dispatch], ids=["combine", "dispatch"])
def test_in_place_writes_are_seen(op):
    """add_ on the weight, on a view of it, and on the shared expert's weight: each next call
    computes with the new values (the bits of an uncached call on them)."""
    x, w, mx, mw = tensors(BF16, 2)
    writes = [lambda: w.add_(0.25), lambda: w[1].mul_(-2), lambda: w.permute(0, 2, 1)[2, 0].fill_(1),
              lambda: mw.sub_(0.5), lambda: mw.t()[3].zero_()]
    for write in writes:
        for _ in range(3):  # cached by now
            op(x, w, mx, mw)
        with torch.no_grad():
            write()
        same_bits(op(x, w, mx, mw), uncached(op, x, w, mx, mw))
        same_bits(op(x, w, mx, mw), uncached(op, x, w, mx, mw))  # and once it is packed again
    assert info()["hits"] > 0


@pytest.mark.parametrize("foreach", [False, True])
def test_optimizer_step_is_seen(foreach):
    """SGD (torch's loop and foreach forms) and Adam update the weights in place under no_grad:
    the next forward uses the new weights, in eval (no_grad) and in training mode."""
    x, w, mx, mw = tensors(BF16, 3)  # (torch 1.13's CPU Adam has no FP16 addcmul_)
    w, mw = torch.nn.Parameter(w), torch.nn.Parameter(mw)
    for opt in (torch.optim.SGD([w, mw], lr=0.5, momentum=0.5, foreach=foreach),
                torch.optim.Adam([w, mw], lr=0.01, foreach=foreach)):
        for step in range(3):
            with torch.no_grad():  # eval between steps: the weights get cached
                for _ in range(3):
                    evald = combine(x, w, mx, mw)
            same_bits(evald, uncached(combine, x, w.detach(), mx, mw.detach()))
            y, my = combine(x, w, mx, mw)  # training forward: the cached weights, then backward
            same_bits((y, my), evald)
            opt.zero_grad()
            (y.float().square().sum() + my.float().sum()).backward()
            opt.step()
            with torch.no_grad():
                same_bits(combine(x, w, mx, mw), uncached(combine, x, w.detach(), mx, mw.detach()))


def test_moe_layer_training_step_then_eval():
    """MoEExperts: eval, an SGD step as docs/python.md writes it (p -= ...), eval again."""
    g = torch.Generator().manual_seed(4)
    layer = gt.MoEExperts(one_rank(), 1, E, H1, N1, shared_ffn=N2, dtype=BF16, generator=g)
    x, sx = torch.randn(A, H1, generator=g).to(BF16), torch.randn(7, H1, generator=g).to(BF16)

    def ref():
        clone = gt.MoEExperts(one_rank(), 1, E, H1, N1, shared_ffn=N2, dtype=BF16)
        clone.load_state_dict({k: v.clone() for k, v in layer.state_dict().items()})
        with torch.no_grad():
            return clone(x, SEND, RECV, shared_x=sx)

    for _ in range(2):
        with torch.no_grad():
            for _ in range(3):
                out = layer(x, SEND, RECV, shared_x=sx)
        same_bits(out, ref())
        y, sy = layer(x, SEND, RECV, shared_x=sx)
        layer.zero_grad()
        (y.float().sum() + sy.float().sum()).backward()
        with torch.no_grad():
            for p in layer.parameters():
                p -= (0.5 * p.grad.float()).to(p.dtype)
        with torch.no_grad():
            same_bits(layer(x, SEND, RECV, shared_x=sx), ref())


def test_load_state_dict_is_seen():
    g = torch.Generator().manual_seed(5)
    layer = gt.MoEExperts(one_rank(), 1, E, H1, N1, dtype=F16, generator=g)
    other = gt.MoEExperts(one_rank(), 1, E, H1, N1, dtype=F16, generator=g)
    x = torch.randn(A, H1, generator=g).to(F16)
    with torch.no_grad():
        for _ in range(3):
            layer(x, SEND, RECV)
        layer.load_state_dict(other.state_dict())  # param.copy_(...) in place
        same_bits(layer(x, SEND, RECV), other(x, SEND, RECV))


def test_training_keeps_nothing():
    """Weights that change every step are never packed into the cache (markers only): MoEExperts
    reads each weight once forward and once, transposed, backward."""
    g = torch.Generator().manual_seed(6)
    layer = gt.MoEExperts(one_rank(), 1, E, H1, N1, shared_ffn=N2, dtype=BF16, generator=g)
    x, sx = torch.randn(A, H1, generator=g).to(BF16), torch.randn(7, H1, generator=g).to(BF16)
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    before = info()
    for _ in range(4):
        y, sy = layer(x, SEND, RECV, shared_x=sx)
        opt.zero_grad()
        (y.float().sum() + sy.float().sum()).backward()
        opt.step()
    assert info()["packs"] == before["packs"] and info()["bytes"] == 0


def test_micro_batches_reuse_the_weights():
    """Gradient accumulation: the same weights in several forwards before a step are packed once."""
    x, w, _, _ = tensors(BF16, 7)
    w = torch.nn.Parameter(w)
    before = info()
    for _ in range(4):
        combine(x, w)[0].float().sum().backward()
    i = {k: info()[k] - before[k] for k in ("packs", "hits")}
    assert i["packs"] == 2 and i["hits"] == 4, i  # forward and backward orientation: each packed on its 2nd use


def test_a_new_tensor_at_the_same_address_is_not_served_stale():
    """A weight freed and another allocated at the same address, with the same shape, strides,
    dtype and version counter value: a different storage, a miss."""
    x, _, _, _ = tensors(BF16, 8)
    hit = False
    for seed in range(20):
        w1 = tensors(BF16, 100 + seed)[1]
        for _ in range(3):
            combine(x, w1)
        ptr, version = w1.data_ptr(), w1._version
        del w1
        gc.collect()
        w2 = tensors(BF16, 200 + seed)[1]
        if w2.data_ptr() != ptr or w2._version != version:
            continue
        hit = True
        same_bits(combine(x, w2), uncached(combine, x, w2))
    if not hit:
        pytest.skip("the allocator never gave the freed address back")


def test_a_new_storage_over_the_same_memory_is_not_served_stale():
    """The same case made deterministic: tensors over one buffer (torch.frombuffer), the first
    cached and freed, the memory rewritten, a second made over it (version 0 both)."""
    x, w, _, _ = tensors(BF16, 8)
    buf = bytearray(w.numel() * 2)
    w1 = torch.frombuffer(buf, dtype=BF16).view(w.shape)
    w1.copy_(w)
    w1 = torch.frombuffer(buf, dtype=BF16).view(w.shape)  # version 0, the values of w
    for _ in range(3):
        old = combine(x, w1)
    ptr = w1.data_ptr()
    del w1
    torch.frombuffer(buf, dtype=BF16).view(w.shape).mul_(-3)
    w2 = torch.frombuffer(buf, dtype=BF16).view(w.shape)
    assert w2.data_ptr() == ptr and w2._version == 0
    new = combine(x, w2)
    same_bits(new, uncached(combine, x, w2))
    assert not cases.bits_equal(new[0], old[0])


def test_parameter_data_reassigned_to_the_same_address_is_not_served_stale():
    """p.data = t keeps p's version counter: a new storage at the old address is still a miss."""
    x, _, _, _ = tensors(BF16, 9)
    hit = False
    for seed in range(20):
        p = torch.nn.Parameter(tensors(BF16, 300 + seed)[1], requires_grad=False)
        for _ in range(3):
            combine(x, p)
        ptr, version = p.data_ptr(), p._version
        p.data = tensors(BF16, 400 + seed)[1]  # the old storage is freed here
        p.data = tensors(BF16, 500 + seed)[1]  # and may be reused here
        if p.data_ptr() != ptr or p._version != version:
            continue
        hit = True
        same_bits(combine(x, p), uncached(combine, x, p.detach()))
    if not hit:
        pytest.skip("the allocator never gave the freed address back")


def test_transposed_view_shares_the_stored_tensors_entry():
    """w stored (e, N1, H1) passed with trans_gmm_weight, and w.permute(0, 2, 1) passed without:
    gmmav reads the same bytes with the same flag, one entry."""
    x, w, mx, mw = tensors(F16, 10, trans=True)
    combine(x, w, mx, mw, True)
    combine(x, w.permute(0, 2, 1), mx, mw.t(), False)  # 2nd sight: packs
    before = info()
    out = combine(x, w.permute(0, 2, 1), mx, mw.t(), False)
    again = combine(x, w, mx, mw, True)
    after = info()
    assert after["hits"] - before["hits"] == 2 and after["packs"] == before["packs"] and after["entries"] == 1
    same_bits(out, again)
    same_bits(out, uncached(combine, x, w, mx, mw, True))


def test_detached_and_viewed_weights_hit():
    """A fresh view or detach() per call (same storage, same version counter) still hits."""
    x, w, _, _ = tensors(BF16, 11)
    combine(x, w.detach())
    combine(x, w.view(E, H1, N1))
    before = info()
    combine(x, w.detach())
    combine(x, w[:])
    assert info()["hits"] - before["hits"] == 2


def test_writes_the_counter_cannot_see_and_clear():
    """Documented: a write through .data (or numpy, or another process) is not seen (the packed
    copy may be stale: large row tiles read it, small ones read the weight as stored);
    clear_weight_cache() makes the next call use the weights as they are."""
    x, w, _, _ = tensors(F16, 12)
    for _ in range(3):
        combine(x, w)
    version = w._version
    w.data.mul_(2)  # .data has its own version counter
    w.numpy()[0, 0, 0] = 1.0  # a numpy view has none
    assert w._version == version
    gt.clear_weight_cache()
    assert info()["entries"] == 0 and info()["bytes"] == 0
    same_bits(combine(x, w), uncached(combine, x, w))


def test_inference_tensors_are_not_cached():
    """Tensors made under inference_mode have no version counter: computed, never cached."""
    x, w, _, _ = tensors(BF16, 13)
    before = info()
    with torch.inference_mode():
        wi = w.clone()
        outs = [combine(x, wi) for _ in range(3)]
    for out in outs:
        same_bits(out, uncached(combine, x, w))
    assert info()["packs"] == before["packs"]


def test_freed_weights_leave_the_cache():
    x, w, _, _ = tensors(BF16, 14)
    for _ in range(2):
        combine(x, w)
    assert info()["entries"] == 1
    del w
    gc.collect()
    assert info()["entries"] == 0 and info()["bytes"] == 0


def test_budget_evicts_least_recently_used():
    x = tensors(BF16, 15)[0]
    ws = [tensors(BF16, 16 + i)[1] for i in range(3)]
    for w in ws:
        combine(x, w)
        combine(x, w)
    size = info()["bytes"] // 3
    assert info()["entries"] == 3 and size > 0
    gt.set_weight_cache_bytes(2 * size)  # the least recently used (ws[0]) goes
    assert info()["entries"] == 2 and info()["bytes"] == 2 * size
    before = info()
    combine(x, ws[1])
    combine(x, ws[2])
    assert info()["hits"] - before["hits"] == 2
    combine(x, ws[0])  # repacked: evicts ws[1], the least recently used now
    combine(x, ws[2])
    assert info()["entries"] == 2 and info()["hits"] - before["hits"] == 3
    gt.set_weight_cache_bytes(size - 1)  # smaller than one entry: nothing kept, results unchanged
    assert info()["entries"] == 0
    for _ in range(3):
        same_bits(combine(x, ws[0]), uncached(combine, x, ws[0]))
    assert info()["entries"] == 0 and info()["bytes"] == 0
    gt.set_weight_cache_bytes(0)  # off
    for _ in range(3):
        same_bits(combine(x, ws[1]), uncached(combine, x, ws[1]))
    assert info()["entries"] == 0 and info()["limit_bytes"] == 0


@pytest.mark.parametrize("bad", [-1, 1.5, True, "1", None])
def test_set_weight_cache_bytes_rejects(bad):
    with pytest.raises(ValueError, match="n: expected an integer >= 0"):
        gt.set_weight_cache_bytes(bad)


def test_threads_calling_at_once():
    """Four threads, each on its own single-rank group, calling with shared and own weights while
    a fifth clears the cache and changes the budget: every result is the bits of an uncached call."""
    x, shared_w, _, _ = tensors(BF16, 20)
    own = [tensors(BF16, 21 + t)[1] for t in range(4)]
    want_shared = uncached(combine, x, shared_w)
    want_own = [uncached(combine, x, w) for w in own]
    stop = threading.Event()
    errors = []

    def caller(t):
        try:
            for i in range(12):
                w, want = (shared_w, want_shared) if i % 2 else (own[t], want_own[t])
                same_bits(combine(x, w), want)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    def churn():
        i = 0
        while not stop.is_set():
            (gt.clear_weight_cache if i % 2 else lambda: gt.set_weight_cache_bytes((1 << 30) - i))()
            i += 1
            stop.wait(0.002)

    threads = [threading.Thread(target=caller, args=(t,)) for t in range(4)]
    c = threading.Thread(target=churn)
    c.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    c.join()
    assert not errors, errors[0]
    assert info()["hits"] > 0 or info()["packs"] > 0


def test_torch_ops_use_the_cache():
    x, w, _, _ = tensors(F16, 30)
    for _ in range(2):
        torch.ops.gmmav.npu_gmm_alltoallv(x, w, one_rank(), 1, SEND, RECV)
    before = info()
    y, _ = torch.ops.gmmav.npu_gmm_alltoallv(x, w, one_rank(), 1, SEND, RECV)
    assert info()["hits"] - before["hits"] == 1
    same_bits((y,), uncached(combine, x, w)[:1])
