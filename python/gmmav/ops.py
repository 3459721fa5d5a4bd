"""torch_npu's ``npu_gmm_alltoallv`` (combine) and ``npu_alltoallv_gmm`` (dispatch) on CPU tensors,
computed by gmmav, and their autograd (docs/python.md, "The API", "Autograd").

A call: arguments.check_op_arguments (what the C++ Plan cannot check), layouts.op_layouts (what
gmmav reads), the weight cache, then one _native call; the C++ Plan checks the rest.
"""
import itertools
import threading

import torch

from . import _native, output_pool
from .arguments import check_flag, check_op_arguments
from .backward import refuse_double_backward, wants_grad
from .errors import raise_from_native
from .gemm import gemm
from .layouts import native_view, op_layouts, readable
from .weight_cache import cache as _weight_cache

_lock = threading.Lock()
# The ops' Python work before and after the C++ call, one thread of the process at a time (D104):
# torch's calls in it release the GIL, and with W rank threads each release handed the GIL to
# another rank, so every rank's prologue waited for all of them. Never held into the C++ call.
_python_side = threading.Lock()
_call_locks = {}  # _native.Group -> Lock held while a thread of this process is in a call on it
_failed_outputs = []  # outputs of calls that failed after starting (see _native_call)


def _mm_out(gmm_x, mm_x, mm_weight, trans_mm_weight):
    """mm_y shaped as gmmav will check it (gmmav names the input at fault when it cannot be)."""
    if mm_x is None:
        return None
    bs = mm_x.shape[0] if mm_x.dim() == 2 else 0
    n2 = mm_weight.shape[0 if trans_mm_weight else 1] if mm_weight.dim() == 2 else 0
    return output_pool.empty((bs, n2), gmm_x.dtype, "mm_y")


def _busy(g):
    """RuntimeError for a second thread of this process calling on a rank already in a call."""
    return RuntimeError(f"hcom {g.name!r} (rank {g.rank} of {g.size}): expected one call at a time on a rank of a group, "
                        "got a call from a second thread of this process while another thread's call on it is in "
                        "progress; refused (nothing sent: queuing it could pair it with another call of the peers)")


def _native_call(outputs, fn, g, *args):
    """One gmmav call on group g; on a failure after the call started, the outputs stay allocated
    for the process's lifetime (a backend may still have transfers in flight into them, e.g. a
    peer's late message after a timeout). Nothing is returned to the caller on error. One call
    at a time per group handle: a second thread's call is refused (RuntimeError) before it
    reaches gmmav (two gloo collectives at once on one process group abort the process)."""
    with _lock:
        busy = _call_locks.setdefault(g, threading.Lock())
    if not busy.acquire(blocking=False):
        raise _busy(g)
    try:
        fn(g, *args)  # returns the seconds spent in C++ (benchmarks wrap _native.run to read them)
    except _native.Error as e:
        if e.code in ("timeout", "internal", "out_of_memory"):
            _failed_outputs.append(outputs)
        raise_from_native(e)
    finally:
        busy.release()


def _shared_views(mm_x, mm_weight, mm_y):
    """The shared expert's three tensors as _native takes them (None each without it)."""
    if mm_x is None:
        return None, None, None
    return native_view(mm_x), native_view(mm_weight), native_view(mm_y)


class _Call:
    """One op call prepared by its Python prologue: its outputs, the _native function and its
    arguments, and the weight cache's pending entry (stored after a successful call)."""
    __slots__ = ("outputs", "fn", "args", "packed", "pending")

    def __init__(self, outputs, fn, args, packed, pending):
        self.outputs, self.fn, self.args, self.packed, self.pending = outputs, fn, args, packed, pending

    def run(self, g):
        """The C++ call (outside _python_side: it waits for the peers), then the cache's store."""
        _native_call(self.outputs, self.fn, g, *self.args, self.packed)
        if self.pending is not None:
            with _python_side:
                _weight_cache.store(self.pending, self.packed)
        return self.outputs


def _combine_call(W, send, recv, gmm_x, gmm_weight, mm_x, mm_weight, trans_gmm, trans_mm):
    """The combine op's prologue on checked, row-major arguments (op_layouts); under _python_side."""
    n1 = gmm_weight.shape[1 if trans_gmm else 2] if gmm_weight.dim() == 3 else 0
    y = output_pool.empty((max(sum(recv), 0), n1), gmm_x.dtype, "y")
    mm_y = _mm_out(gmm_x, mm_x, mm_weight, trans_mm)
    shared = mm_x is not None
    packed, pending = _weight_cache.lookup(gmm_weight, trans_gmm, mm_weight if shared else None, trans_mm)
    args = (W, send, recv, trans_gmm, trans_mm, native_view(gmm_x), native_view(gmm_weight), native_view(y),
            *_shared_views(mm_x, mm_weight, mm_y))
    return _Call((y, mm_y), _native.run, args, packed, pending)


def _combine(g, W, send, recv, gmm_x, gmm_weight, mm_x, mm_weight, trans_gmm, trans_mm):
    """The combine op on checked, row-major arguments (op_layouts) -> (y, mm_y or None)."""
    with _python_side:
        call = _combine_call(W, send, recv, gmm_x, gmm_weight, mm_x, mm_weight, trans_gmm, trans_mm)
    return call.run(g)


def _dispatch_call(W, send, recv, gmm_x, gmm_weight, mm_x, mm_weight, trans_gmm, trans_mm, permute_out):
    """The dispatch op's prologue on checked, row-major arguments; under _python_side."""
    n1 = gmm_weight.shape[1 if trans_gmm else 2] if gmm_weight.dim() == 3 else 0
    a = max(sum(recv), 0)
    gmm_y = output_pool.empty((a, n1), gmm_x.dtype, "gmm_y")
    perm = output_pool.empty((a, gmm_x.shape[1] if gmm_x.dim() == 2 else 0), gmm_x.dtype, "permute_out") if permute_out else None
    mm_y = _mm_out(gmm_x, mm_x, mm_weight, trans_mm)
    shared = mm_x is not None
    packed, pending = _weight_cache.lookup(gmm_weight, trans_gmm, mm_weight if shared else None, trans_mm)
    args = (W, send, recv, trans_gmm, trans_mm, native_view(gmm_x), native_view(gmm_weight), native_view(gmm_y),
            *_shared_views(mm_x, mm_weight, mm_y), native_view(perm) if permute_out else None)
    return _Call((gmm_y, mm_y, perm), _native.run_dispatch, args, packed, pending)


def _dispatch(g, W, send, recv, gmm_x, gmm_weight, mm_x, mm_weight, trans_gmm, trans_mm, permute_out):
    """The dispatch op on checked, row-major arguments -> (gmm_y, mm_y or None, permute_out or None)."""
    with _python_side:
        call = _dispatch_call(W, send, recv, gmm_x, gmm_weight, mm_x, mm_weight, trans_gmm, trans_mm, permute_out)
    return call.run(g)


def npu_gmm_alltoallv(gmm_x, gmm_weight, hcom, ep_world_size, send_counts, recv_counts, *, send_counts_tensor=None,
                      recv_counts_tensor=None, mm_x=None, mm_weight=None, trans_gmm_weight=False, trans_mm_weight=False):
    """torch_npu.npu_gmm_alltoallv on CPU tensors -> (y, mm_y); mm_y is None without the shared expert.

    gmm_x (A, H1); gmm_weight (e, H1, N1), or (e, N1, H1) with trans_gmm_weight; send_counts and
    recv_counts of length e * ep_world_size (docs/spec.md §2 indexing); y (sum(recv_counts), N1);
    mm_x (BS, H2) and mm_weight (H2, N2) (or (N2, H2) with trans_mm_weight) give mm_y (BS, N2).
    Tensors may be views: a weight that is a transposed view is read in place, anything else not
    row-major is copied once (docs/python.md, "Views"). Collective: every rank of the group calls
    it. Differentiable when an input requires grad (docs/python.md, "Autograd"): backward is
    collective too."""
    with _python_side:
        g, W, send, recv = check_op_arguments(gmm_x, gmm_weight, hcom, ep_world_size, send_counts, recv_counts,
                                              send_counts_tensor, recv_counts_tensor, mm_x, mm_weight, trans_gmm_weight,
                                              trans_mm_weight)
        grad = wants_grad(gmm_x, gmm_weight, mm_x, mm_weight)
        if not grad:
            x, w, mx, mw, tg, tm, _, _ = op_layouts(gmm_x, gmm_weight, mm_x, mm_weight, trans_gmm_weight, trans_mm_weight)
            call = _combine_call(W, send, recv, x, w, mx, mw, tg, tm)
    if grad:
        out = _CombineFunction.apply(gmm_x, gmm_weight, mm_x, mm_weight, (g, W, send, recv, trans_gmm_weight, trans_mm_weight))
        return out[0], (out[1] if mm_x is not None else None)
    return call.run(g)


def npu_alltoallv_gmm(gmm_x, gmm_weight, hcom, ep_world_size, send_counts, recv_counts, *, send_counts_tensor=None,
                      recv_counts_tensor=None, mm_x=None, mm_weight=None, trans_gmm_weight=False, trans_mm_weight=False,
                      permute_out_flag=False):
    """torch_npu.npu_alltoallv_gmm (the dispatch op, docs/dispatch-op.md) on CPU tensors
    -> (gmm_y, mm_y, permute_out); mm_y is None without the shared expert, permute_out None
    unless permute_out_flag.

    gmm_x (BSK, H1) rows by global expert g = d*e + j (BSK = sum(send_counts)); gmm_weight
    (e, H1, N1), or (e, N1, H1) with trans_gmm_weight; gmm_y (A, N1) and permute_out (A, H1)
    expert-major, source-minor (A = sum(recv_counts)); the shared expert as npu_gmm_alltoallv's.
    Views as npu_gmm_alltoallv's. Collective; differentiable like npu_gmm_alltoallv."""
    with _python_side:
        g, W, send, recv = check_op_arguments(gmm_x, gmm_weight, hcom, ep_world_size, send_counts, recv_counts,
                                              send_counts_tensor, recv_counts_tensor, mm_x, mm_weight, trans_gmm_weight,
                                              trans_mm_weight)
        check_flag("permute_out_flag", permute_out_flag)
        grad = wants_grad(gmm_x, gmm_weight, mm_x, mm_weight)
        if not grad:
            x, w, mx, mw, tg, tm, _, _ = op_layouts(gmm_x, gmm_weight, mm_x, mm_weight, trans_gmm_weight, trans_mm_weight)
            call = _dispatch_call(W, send, recv, x, w, mx, mw, tg, tm, permute_out_flag)
    if grad:
        out = _DispatchFunction.apply(gmm_x, gmm_weight, mm_x, mm_weight,
                                      (g, W, send, recv, trans_gmm_weight, trans_mm_weight, permute_out_flag))
        return out[0], (out[1] if mm_x is not None else None), (out[2] if permute_out_flag else None)
    return call.run(g)


# Autograd (docs/python.md, "Autograd"; D45). The two ops are each other's adjoint
# (docs/dispatch-op.md §6): the routed input gradient of one is the other op on the output
# gradient, with the counts exchanged (what a rank sent it now receives) and the weights
# transposed (the flag flipped: the same tensor read the other way). The weight gradients are
# per-expert GEMMs on rows in the expert-major order, made with gemm.gemm. Each Function reads
# its inputs through op_layouts once (forward) and keeps those tensors for backward; a weight read
# through a flipped flag gets its gradient transposed back (a view), the input's own shape.

def _group_bounds(counts, W, e):
    """Row offsets of the e expert-major groups of a (W*e)-count array: group j holds
    sum_s counts[s*e + j] rows."""
    sizes = [sum(counts[s * e + j] for s in range(W)) for j in range(e)]
    starts = list(itertools.accumulate([0] + sizes))
    return list(zip(starts[:-1], sizes))


def _expert_weight_grad(rows_in, rows_grad, bounds, trans_gmm, weight):
    """dW_j = X_j^T dY_j (or its transpose with trans_gmm, the weight's layout), X_j and dY_j the
    expert-major groups of rows_in and rows_grad."""
    out = torch.empty_like(weight)
    for j, (first, n) in enumerate(bounds):
        x_j, dy_j = rows_in[first:first + n], rows_grad[first:first + n]
        if trans_gmm:
            gemm(dy_j.t(), x_j, out=out[j])  # (N1, H1)
        else:
            gemm(x_j.t(), dy_j, out=out[j])  # (H1, N1)
    return out


def _shared_grads(needs, mm_x, mm_weight, dmm_y, trans_mm, flip_mm):
    """The shared expert's MatMul gradients: d(mmX) = dmmY mmW^T, d(mmW) = mmX^T dmmY."""
    if mm_x is None or dmm_y is None:
        return None, None
    dx = gemm(dmm_y, mm_weight if trans_mm else mm_weight.t()) if needs[2] else None
    dw = None
    if needs[3]:
        dw = gemm(dmm_y.t(), mm_x) if trans_mm else gemm(mm_x.t(), dmm_y)
        dw = dw.t() if flip_mm else dw
    return dx, dw


class _CombineFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, gmm_x, gmm_weight, mm_x, mm_weight, meta):
        g, W, send, recv, trans_gmm, trans_mm = meta
        x, w, mx, mw, tg, tm, fg, fm = op_layouts(gmm_x, gmm_weight, mm_x, mm_weight, trans_gmm, trans_mm)
        y, mm_y = _combine(g, W, send, recv, x, w, mx, mw, tg, tm)
        ctx.meta = (g, W, send, recv, tg, tm, fg, fm)
        ctx.save_for_backward(x, w, mx, mw, gmm_x, gmm_weight, mm_x, mm_weight)  # the inputs too, for refuse_double_backward
        ctx.set_materialize_grads(False)
        return y, (mm_y if mm_y is not None else torch.empty(0, dtype=gmm_x.dtype))

    @staticmethod
    def backward(ctx, dy, dmm_y):
        with torch.no_grad():
            grads = _CombineFunction._grads(ctx, dy, dmm_y)
        return refuse_double_backward(grads, ctx.saved_tensors[4:] + (dy, dmm_y)) + (None,)

    @staticmethod
    def _grads(ctx, dy, dmm_y):
        g, W, send, recv, trans_gmm, trans_mm, flip_gmm, flip_mm = ctx.meta
        gmm_x, gmm_weight, mm_x, mm_weight = ctx.saved_tensors[:4]
        dx = dw = None
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            if dy is None:  # y unused downstream: collective anyway, every rank takes part
                dy = torch.zeros((sum(recv), gmm_weight.shape[1 if trans_gmm else 2]), dtype=gmm_x.dtype)
            # dX = dispatch(dY) with the counts exchanged and W^T; its permuteOut is dY in the
            # expert-major order of gmm_x, what dW needs.
            dxg, _, dy_perm = _dispatch(g, W, recv, send, readable(dy), gmm_weight, None, None, not trans_gmm, False,
                                        ctx.needs_input_grad[1])
            dx = dxg if ctx.needs_input_grad[0] else None
            if ctx.needs_input_grad[1]:
                e = gmm_weight.shape[0]
                dw = _expert_weight_grad(gmm_x, dy_perm, _group_bounds(send, W, e), trans_gmm, gmm_weight)
                dw = dw.transpose(-1, -2) if flip_gmm else dw
        dmm_x, dmm_w = _shared_grads(ctx.needs_input_grad, mm_x, mm_weight, dmm_y, trans_mm, flip_mm)
        return dx, dw, dmm_x, dmm_w


class _DispatchFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, gmm_x, gmm_weight, mm_x, mm_weight, meta):
        g, W, send, recv, trans_gmm, trans_mm, permute_out = meta
        x, w, mx, mw, tg, tm, fg, fm = op_layouts(gmm_x, gmm_weight, mm_x, mm_weight, trans_gmm, trans_mm)
        # dW needs permuteOut (the received rows, expert-major): asked for whenever W needs a grad.
        keep = permute_out or ctx.needs_input_grad[1]
        gmm_y, mm_y, perm = _dispatch(g, W, send, recv, x, w, mx, mw, tg, tm, keep)
        ctx.meta = (g, W, send, recv, tg, tm, fg, fm, permute_out)
        ctx.h1 = gmm_x.shape[1]
        # The inputs too, for refuse_double_backward (not gmm_x: its memory would outlive the forward; dW's dependence
        # on it goes through perm, an output of this node, differentiable even when internal).
        ctx.save_for_backward(w, mx, mw, perm, gmm_weight, mm_x, mm_weight)
        ctx.set_materialize_grads(False)
        empty = torch.empty(0, dtype=gmm_x.dtype)
        return gmm_y, (mm_y if mm_y is not None else empty), (perm if perm is not None else empty)

    @staticmethod
    def backward(ctx, dgmm_y, dmm_y, dperm):
        with torch.no_grad():
            grads = _DispatchFunction._grads(ctx, dgmm_y, dmm_y, dperm)
        return refuse_double_backward(grads, ctx.saved_tensors[3:] + (dgmm_y, dmm_y, dperm)) + (None,)

    @staticmethod
    def _grads(ctx, dgmm_y, dmm_y, dperm):
        g, W, send, recv, trans_gmm, trans_mm, flip_gmm, flip_mm, permute_out = ctx.meta
        gmm_weight, mm_x, mm_weight, perm = ctx.saved_tensors[:4]
        dtype = gmm_weight.dtype
        e = gmm_weight.shape[0]
        n1 = gmm_weight.shape[1 if trans_gmm else 2]
        if dgmm_y is None:
            dgmm_y = torch.zeros((sum(recv), n1), dtype=dtype)
        dgmm_y = readable(dgmm_y)
        bounds = _group_bounds(recv, W, e)
        dx = dw = None
        if ctx.needs_input_grad[0]:
            if not permute_out or dperm is None:
                # dX = combine(dgmmY) with the counts exchanged and W^T.
                dx, _ = _combine(g, W, recv, send, dgmm_y, gmm_weight, None, None, not trans_gmm, False)
            else:
                # permuteOut is used downstream: d(permuteOut) = dgmmY W^T + its own gradient, summed
                # in the tensor's dtype (as autograd sums a tensor's gradients), then sent back by
                # combine with identity weights (an exact copy: x * 1 + 0, one rounding of an exact value).
                local = torch.empty((sum(n for _, n in bounds), ctx.h1), dtype=dtype)
                for j, (f, n) in enumerate(bounds):
                    wj = gmm_weight[j]
                    gemm(dgmm_y[f:f + n], wj if trans_gmm else wj.t(), out=local[f:f + n])
                local = readable(local + dperm)
                eye = torch.eye(ctx.h1).to(dtype).expand(e, ctx.h1, ctx.h1).contiguous()
                dx, _ = _combine(g, W, recv, send, local, eye, None, None, False, False)
        if ctx.needs_input_grad[1]:
            dw = _expert_weight_grad(perm, dgmm_y, bounds, trans_gmm, gmm_weight)
            dw = dw.transpose(-1, -2) if flip_gmm else dw
        dmm_x, dmm_w = _shared_grads(ctx.needs_input_grad, mm_x, mm_weight, dmm_y, trans_mm, flip_mm)
        return dx, dw, dmm_x, dmm_w
