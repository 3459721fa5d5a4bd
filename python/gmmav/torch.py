"""torch_npu's ``npu_gmm_alltoallv`` (combine) and ``npu_alltoallv_gmm`` (dispatch) on CPU
tensors, computed by gmmav, differentiable, and an expert-parallel MoE layer built on them
(``MoEExperts``); docs/python.md.

    import gmmav.torch
    name = gmmav.torch.hcom()                     # every rank; torch.distributed or mpirun
    y, mm_y = gmmav.torch.npu_gmm_alltoallv(gmm_x, gmm_weight, name, W, send_counts, recv_counts)

Also registered as ``torch.ops.gmmav.npu_gmm_alltoallv`` (there ``mm_y`` is an empty tensor when
there is no shared expert: an operator schema cannot return None). ``patch_torch_npu()`` makes
``import torch_npu`` give this function on a machine without torch_npu.

Errors: ValueError for bad arguments (gmmav's message: parameter, expected, got), RuntimeError for
cross-rank mismatches, timeouts and broken groups, MemoryError when the call's memory cannot be had.
Nothing is written on error (y and mm_y are allocated by the call and not returned).
"""
import importlib.util
import itertools
import operator
import sys
import threading
import types

import torch

from . import _native
from ._dist import Transport

__all__ = ["npu_gmm_alltoallv", "npu_alltoallv_gmm", "matmul", "MoEExperts", "hcom", "patch_torch_npu", "in_process_hcoms"]

_DTYPES = {torch.float16: 0, torch.bfloat16: 1}
_groups = {}  # hcom name -> _native.Group (this process's rank of it)
_dist_names = {}  # torch.distributed process group -> hcom name
_mpi_name = None
_lock = threading.Lock()
_ids = itertools.count()
_failed_outputs = []  # outputs of calls that failed after starting (see npu_gmm_alltoallv)
_last_cpp_seconds = 0.0  # seconds the last call spent in the C++ API (binding-overhead measurement)


def _raise(e):
    """gmmav._native.Error -> the Python exception the API promises."""
    code = getattr(e, "code", "")
    msg = str(e)
    if code in ("null_argument", "invalid_argument"):
        raise ValueError(msg) from None
    if code == "out_of_memory":
        raise MemoryError(msg) from None
    raise RuntimeError(msg) from None


def hcom(group=None):
    """The name to pass as ``hcom`` for this rank.

    With torch.distributed initialised: a gmmav group over ``group``. For the world (``group``
    None or the world group) gmmav creates its own gloo process group over all ranks, whose timeout
    is gmmav's (GMMAV_TIMEOUT_MS, default 60 s): collective like ``torch.distributed.new_group``,
    every rank calls it, in the same order. For a subgroup (e.g. one expert-parallel group of
    several) gmmav uses that group itself — each rank calls ``hcom`` with its own group; create
    the group with ``backend="gloo"`` and, ideally, ``timeout=`` gmmav's. Under mpirun without
    torch.distributed: the MPI world (``group`` must be None). The same group gives the same name
    again (no new group)."""
    try:
        return _hcom(group)
    except _native.Error as e:  # e.g. a bad GMMAV_TIMEOUT_MS (ValueError), MPI start-up failures
        _raise(e)


def _hcom(group):
    """hcom() without the error mapping."""
    global _mpi_name
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        world = dist.group.WORLD
        pg = world if group is None else group
        if pg == dist.GroupMember.NON_GROUP_MEMBER:
            raise ValueError("group: expected a process group this rank belongs to, got NON_GROUP_MEMBER")
        with _lock:
            if pg in _dist_names:
                return _dist_names[pg]
        timeout_ms = _native.default_timeout_ms()
        if pg == world:
            import datetime

            ranks = list(range(dist.get_world_size()))
            own = dist.new_group(ranks=ranks, timeout=datetime.timedelta(milliseconds=timeout_ms), backend="gloo")
        else:
            ranks = sorted(dist.distributed_c10d._pg_group_ranks[pg].keys())
            own = pg
        rank, size = dist.get_rank(own), dist.get_world_size(own)
        _share_cores(own)
        # Same name on every rank of the group: its global ranks and how many gmmav groups this process made.
        label = "-".join(map(str, ranks)) if len(ranks) <= 8 else f"{ranks[0]}-{ranks[-1]}x{len(ranks)}"
        name = f"gmmav_torch_{label}_{next(_ids)}"
        native = _native.torch_dist_group(rank, size, name, timeout_ms, Transport(own, timeout_ms))
        with _lock:
            _groups[name] = native
            _dist_names[pg] = name
        return name
    if _native.launched_by_mpi():
        if group is not None:
            raise ValueError(f"group: expected None under mpirun without torch.distributed (the MPI world), got {group!r}")
        with _lock:
            if _mpi_name is None:
                native = _native.mpi_world_group()
                _mpi_name = native.name
                _groups[_mpi_name] = native
            return _mpi_name
    raise RuntimeError("gmmav.torch.hcom: expected torch.distributed to be initialised (torchrun, "
                       "torch.multiprocessing) or a start by mpirun, got neither")


_cores_shared = False


def _share_cores(group):
    """Once per process, unless GMMAV_NUM_THREADS is set: the compute pool gets this machine's cores
    divided by the ranks on it (torchrun's LOCAL_WORLD_SIZE, else the group's ranks with this
    host name), as the MPI backend does with the launcher's local size (D4) — otherwise every
    rank's pool would take all the cores. Results do not depend on it (D3)."""
    global _cores_shared
    import os
    import socket

    import torch.distributed as dist

    if _cores_shared or os.environ.get("GMMAV_NUM_THREADS"):
        return
    _cores_shared = True
    local = os.environ.get("LOCAL_WORLD_SIZE", "")
    if local.isdigit() and int(local) > 0:
        n = int(local)
    else:
        hosts = [None] * dist.get_world_size(group)
        dist.all_gather_object(hosts, socket.gethostname(), group=group)
        n = hosts.count(socket.gethostname())
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    _native.set_compute_threads(max(1, cores // max(n, 1)))


def in_process_hcoms(world_size):
    """An in-process group (ranks are threads of this process, the C++ API's
    create_in_process_group): one hcom name per rank; rank r calls the op with names[r]
    from its own thread (every rank must call, concurrently)."""
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size: expected an integer >= 1, got {world_size!r}")
    try:
        ranks = _native.in_process_group(world_size)
    except _native.Error as e:
        _raise(e)
    names = []
    with _lock:
        for r, g in enumerate(ranks):
            name = f"{g.name}/rank{r}"
            _groups[name] = g
            names.append(name)
    return names


def _group(name):
    if not isinstance(name, str):
        raise ValueError(f"hcom: expected a str returned by gmmav.torch.hcom(), got {type(name).__name__}")
    g = _groups.get(name)
    if g is None:
        raise ValueError(f"hcom: expected a name returned by gmmav.torch.hcom() in this process, got {name!r}")
    return g


def _counts(param, values, tensor):
    """Counts from the list and/or (beyond torch_npu) the tensor; as a list of ints."""
    from_tensor = None
    if tensor is not None:
        if not isinstance(tensor, torch.Tensor):
            raise ValueError(f"{param}_tensor: expected a tensor or None, got {type(tensor).__name__}")
        if tensor.dim() != 1 or tensor.dtype.is_floating_point or tensor.dtype.is_complex or tensor.dtype == torch.bool:
            raise ValueError(f"{param}_tensor: expected a 1-D integer tensor, got {tensor.dim()}-D {tensor.dtype}")
        from_tensor = [int(v) for v in tensor.tolist()]
    if values is None:
        if from_tensor is None:
            raise ValueError(f"{param}: expected a list of ints (or {param}_tensor), got None")
        return from_tensor
    try:
        out = [int(v) if not isinstance(v, bool) and int(v) == v else None for v in values]
    except (TypeError, ValueError):
        raise ValueError(f"{param}: expected a list of ints, got {values!r}") from None
    if any(v is None for v in out):
        raise ValueError(f"{param}: expected a list of ints, got {values!r}")
    if from_tensor is not None and from_tensor != out:
        raise ValueError(f"{param}_tensor: expected the same counts as {param} ({out}), got {from_tensor}")
    return out


def _check_tensor(param, t):
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{param}: expected a torch.Tensor, got {type(t).__name__}")
    if t.device.type != "cpu":
        raise ValueError(f"{param}: expected a CPU tensor, got device {t.device}")
    if t.dtype not in _DTYPES:
        raise ValueError(f"{param}: expected dtype torch.float16 or torch.bfloat16, got {t.dtype}")
    if t.dim() > 3:
        raise ValueError(f"{param}: expected a 2-D or 3-D tensor, got {t.dim()}-D")


def _view(t):
    return (t.data_ptr(), _DTYPES[t.dtype], tuple(t.shape), tuple(t.stride()))


def _check_flag(name, flag):
    if not isinstance(flag, bool):
        raise ValueError(f"{name}: expected a bool, got {type(flag).__name__}")


def _prepare(gmm_x, gmm_weight, hcom, ep_world_size, send_counts, recv_counts, send_counts_tensor, recv_counts_tensor,
             mm_x, mm_weight, trans_gmm_weight, trans_mm_weight):
    """The checks both ops make before gmmav sees the call -> (group, ep_world_size, send, recv)."""
    g = _group(hcom)
    try:
        if isinstance(ep_world_size, bool):
            raise TypeError
        ep_world_size = operator.index(ep_world_size)
    except TypeError:
        raise ValueError(f"ep_world_size: expected an int, got {type(ep_world_size).__name__}") from None
    send = _counts("send_counts", send_counts, send_counts_tensor)
    recv = _counts("recv_counts", recv_counts, recv_counts_tensor)
    _check_flag("trans_gmm_weight", trans_gmm_weight)
    _check_flag("trans_mm_weight", trans_mm_weight)
    _check_tensor("gmm_x", gmm_x)
    _check_tensor("gmm_weight", gmm_weight)
    if (mm_x is None) != (mm_weight is None):
        raise ValueError("mm_x, mm_weight: expected both (the shared expert) or neither, got "
                         + ("mm_x only" if mm_weight is None else "mm_weight only"))
    if mm_x is not None:
        _check_tensor("mm_x", mm_x)
        _check_tensor("mm_weight", mm_weight)
        if mm_x.dtype != gmm_x.dtype or mm_weight.dtype != gmm_x.dtype:
            bad, t = ("mm_x", mm_x) if mm_x.dtype != gmm_x.dtype else ("mm_weight", mm_weight)
            raise ValueError(f"{bad}: expected gmm_x's dtype {gmm_x.dtype}, got {t.dtype}")
    if gmm_weight.dtype != gmm_x.dtype:
        raise ValueError(f"gmm_weight: expected gmm_x's dtype {gmm_x.dtype}, got {gmm_weight.dtype}")
    return g, ep_world_size, send, recv


def _mm_out(gmm_x, mm_x, mm_weight, trans_mm_weight):
    """mm_y shaped as gmmav will check it (gmmav names the input at fault when it cannot be)."""
    if mm_x is None:
        return None
    bs = mm_x.shape[0] if mm_x.dim() == 2 else 0
    n2 = mm_weight.shape[0 if trans_mm_weight else 1] if mm_weight.dim() == 2 else 0
    return torch.empty((bs, n2), dtype=gmm_x.dtype)


def _native_call(outputs, fn, *args):
    """One gmmav call; on a failure after the call started, the outputs stay allocated for the
    process's lifetime (a backend may still have transfers in flight into them, e.g. a peer's late
    message after a timeout). Nothing is returned to the caller on error."""
    global _last_cpp_seconds
    try:
        _last_cpp_seconds = fn(*args)
    except _native.Error as e:
        if e.code in ("timeout", "internal", "out_of_memory"):
            _failed_outputs.append(outputs)
        _raise(e)


def _combine(g, W, send, recv, gmm_x, gmm_weight, mm_x, mm_weight, trans_gmm, trans_mm):
    """The combine op on checked arguments -> (y, mm_y or None)."""
    n1 = gmm_weight.shape[1 if trans_gmm else 2] if gmm_weight.dim() == 3 else 0
    y = torch.empty((max(sum(recv), 0), n1), dtype=gmm_x.dtype)
    mm_y = _mm_out(gmm_x, mm_x, mm_weight, trans_mm)
    shared = mm_x is not None
    _native_call((y, mm_y), _native.run, g, W, send, recv, trans_gmm, trans_mm, _view(gmm_x), _view(gmm_weight), _view(y),
                 _view(mm_x) if shared else None, _view(mm_weight) if shared else None, _view(mm_y) if shared else None)
    return y, mm_y


def _dispatch(g, W, send, recv, gmm_x, gmm_weight, mm_x, mm_weight, trans_gmm, trans_mm, permute_out):
    """The dispatch op on checked arguments -> (gmm_y, mm_y or None, permute_out or None)."""
    n1 = gmm_weight.shape[1 if trans_gmm else 2] if gmm_weight.dim() == 3 else 0
    a = max(sum(recv), 0)
    gmm_y = torch.empty((a, n1), dtype=gmm_x.dtype)
    perm = torch.empty((a, gmm_x.shape[1] if gmm_x.dim() == 2 else 0), dtype=gmm_x.dtype) if permute_out else None
    mm_y = _mm_out(gmm_x, mm_x, mm_weight, trans_mm)
    shared = mm_x is not None
    _native_call((gmm_y, mm_y, perm), _native.run_dispatch, g, W, send, recv, trans_gmm, trans_mm, _view(gmm_x), _view(gmm_weight), _view(gmm_y),
                 _view(mm_x) if shared else None, _view(mm_weight) if shared else None, _view(mm_y) if shared else None,
                 _view(perm) if permute_out else None)
    return gmm_y, mm_y, perm


def _wants_grad(*tensors):
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def npu_gmm_alltoallv(gmm_x, gmm_weight, hcom, ep_world_size, send_counts, recv_counts, *, send_counts_tensor=None,
                      recv_counts_tensor=None, mm_x=None, mm_weight=None, trans_gmm_weight=False, trans_mm_weight=False):
    """torch_npu.npu_gmm_alltoallv on CPU tensors -> (y, mm_y); mm_y is None without the shared expert.

    gmm_x (A, H1); gmm_weight (e, H1, N1), or (e, N1, H1) with trans_gmm_weight; send_counts and
    recv_counts of length e * ep_world_size (SPEC §2 indexing); y (sum(recv_counts), N1);
    mm_x (BS, H2) and mm_weight (H2, N2) (or (N2, H2) with trans_mm_weight) give mm_y (BS, N2).
    Collective: every rank of the group calls it. Differentiable when an input requires grad
    (docs/python.md, "Autograd"): backward is collective too."""
    g, W, send, recv = _prepare(gmm_x, gmm_weight, hcom, ep_world_size, send_counts, recv_counts, send_counts_tensor,
                                recv_counts_tensor, mm_x, mm_weight, trans_gmm_weight, trans_mm_weight)
    if _wants_grad(gmm_x, gmm_weight, mm_x, mm_weight):
        out = _CombineFunction.apply(gmm_x, gmm_weight, mm_x, mm_weight, (g, W, send, recv, trans_gmm_weight, trans_mm_weight))
        return out[0], (out[1] if mm_x is not None else None)
    return _combine(g, W, send, recv, gmm_x, gmm_weight, mm_x, mm_weight, trans_gmm_weight, trans_mm_weight)


def npu_alltoallv_gmm(gmm_x, gmm_weight, hcom, ep_world_size, send_counts, recv_counts, *, send_counts_tensor=None,
                      recv_counts_tensor=None, mm_x=None, mm_weight=None, trans_gmm_weight=False, trans_mm_weight=False,
                      permute_out_flag=False):
    """torch_npu.npu_alltoallv_gmm (the dispatch op, docs/dispatch-op.md) on CPU tensors
    -> (gmm_y, mm_y, permute_out); mm_y is None without the shared expert, permute_out None
    unless permute_out_flag.

    gmm_x (BSK, H1) rows by global expert g = d*e + j (BSK = sum(send_counts)); gmm_weight
    (e, H1, N1), or (e, N1, H1) with trans_gmm_weight; gmm_y (A, N1) and permute_out (A, H1)
    expert-major, source-minor (A = sum(recv_counts)); the shared expert as npu_gmm_alltoallv's.
    Collective; differentiable like npu_gmm_alltoallv."""
    g, W, send, recv = _prepare(gmm_x, gmm_weight, hcom, ep_world_size, send_counts, recv_counts, send_counts_tensor,
                                recv_counts_tensor, mm_x, mm_weight, trans_gmm_weight, trans_mm_weight)
    _check_flag("permute_out_flag", permute_out_flag)
    if _wants_grad(gmm_x, gmm_weight, mm_x, mm_weight):
        out = _DispatchFunction.apply(gmm_x, gmm_weight, mm_x, mm_weight,
                                      (g, W, send, recv, trans_gmm_weight, trans_mm_weight, permute_out_flag))
        return out[0], (out[1] if mm_x is not None else None), (out[2] if permute_out_flag else None)
    return _dispatch(g, W, send, recv, gmm_x, gmm_weight, mm_x, mm_weight, trans_gmm_weight, trans_mm_weight, permute_out_flag)


def matmul(x, w, trans_w=False):
    """round(x @ W) with gmmav's GEMM: x (rows, k), W = w (k, n) or, with trans_w, w stored (n, k);
    FP16/BF16 in and out, FP32 accumulation over the whole k, one round-to-nearest-even, the same
    bits for any thread count (SPEC §4). The gradients of both ops are made with it, not
    torch.matmul, whose CPU reduction order and BF16 accumulation are not specified."""
    _check_tensor("x", x)
    _check_tensor("w", w)
    if x.dim() != 2 or w.dim() != 2:
        raise ValueError(f"x, w: expected 2-D tensors, got {x.dim()}-D and {w.dim()}-D")
    if w.dtype != x.dtype:
        raise ValueError(f"w: expected x's dtype {x.dtype}, got {w.dtype}")
    k = x.shape[1]
    if (w.shape[1] if trans_w else w.shape[0]) != k:
        raise ValueError(f"w: expected {'(n, k)' if trans_w else '(k, n)'} with k = {k} (x's columns), got {tuple(w.shape)}")
    n = w.shape[0] if trans_w else w.shape[1]
    out = torch.empty((x.shape[0], n), dtype=x.dtype)
    if k == 0:
        return out.zero_()  # an empty sum
    try:
        _native.matmul(_view(x.contiguous()), _view(w.contiguous()), _view(out), trans_w)
    except _native.Error as e:
        _raise(e)
    return out


# Autograd (docs/python.md, "Autograd"; D-py1). The two ops are each other's adjoint
# (docs/dispatch-op.md §6): the routed input gradient of one is the other op on the output
# gradient, with the counts exchanged (what a rank sent it now receives) and the weights
# transposed (the flag flipped: the same tensor read the other way). The weight gradients are
# per-expert GEMMs on rows in the expert-major order, made with matmul() above.

def _group_bounds(counts, W, e):
    """Row offsets of the e expert-major groups of a (W*e)-count array: group j holds
    sum_s counts[s*e + j] rows."""
    sizes = [sum(counts[s * e + j] for s in range(W)) for j in range(e)]
    starts = list(itertools.accumulate([0] + sizes))
    return list(zip(starts[:-1], sizes))


def _expert_weight_grad(rows_in, rows_grad, bounds, trans_gmm, weight):
    """dW_j = X_j^T dY_j (or its transpose with trans_gmm, the weight's layout), X_j and dY_j the
    expert-major groups of rows_in and rows_grad."""
    grads = []
    for first, n in bounds:
        x_j, dy_j = rows_in[first:first + n], rows_grad[first:first + n]
        if trans_gmm:
            grads.append(matmul(dy_j.t().contiguous(), x_j))  # (N1, H1)
        else:
            grads.append(matmul(x_j.t().contiguous(), dy_j))  # (H1, N1)
    return torch.stack(grads) if grads else torch.zeros_like(weight)


def _shared_grads(ctx, mm_x, mm_weight, dmm_y, trans_mm):
    """The shared expert's MatMul gradients: d(mmX) = dmmY mmW^T, d(mmW) = mmX^T dmmY."""
    if mm_x is None or dmm_y is None:
        return None, None
    dmm_y = dmm_y.contiguous()
    dx = matmul(dmm_y, mm_weight, not trans_mm) if ctx.needs_input_grad[2] else None
    dw = None
    if ctx.needs_input_grad[3]:
        dw = matmul(dmm_y.t().contiguous(), mm_x) if trans_mm else matmul(mm_x.t().contiguous(), dmm_y)
    return dx, dw


class _CombineFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, gmm_x, gmm_weight, mm_x, mm_weight, meta):
        g, W, send, recv, trans_gmm, trans_mm = meta
        y, mm_y = _combine(g, W, send, recv, gmm_x, gmm_weight, mm_x, mm_weight, trans_gmm, trans_mm)
        ctx.meta = meta
        ctx.save_for_backward(gmm_x, gmm_weight, mm_x, mm_weight)
        ctx.set_materialize_grads(False)
        return y, (mm_y if mm_y is not None else torch.empty(0, dtype=gmm_x.dtype))

    @staticmethod
    def backward(ctx, dy, dmm_y):
        g, W, send, recv, trans_gmm, trans_mm = ctx.meta
        gmm_x, gmm_weight, mm_x, mm_weight = ctx.saved_tensors
        dx = dw = None
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            if dy is None:  # y unused downstream: collective anyway, every rank takes part
                dy = torch.zeros((sum(recv), gmm_weight.shape[1 if trans_gmm else 2]), dtype=gmm_x.dtype)
            # dX = dispatch(dY) with the counts exchanged and W^T; its permuteOut is dY in the
            # expert-major order of gmm_x, what dW needs.
            dxg, _, dy_perm = _dispatch(g, W, recv, send, dy.contiguous(), gmm_weight, None, None, not trans_gmm, False,
                                        ctx.needs_input_grad[1])
            dx = dxg if ctx.needs_input_grad[0] else None
            if ctx.needs_input_grad[1]:
                e = gmm_weight.shape[0]
                dw = _expert_weight_grad(gmm_x, dy_perm, _group_bounds(send, W, e), trans_gmm, gmm_weight)
        dmm_x, dmm_w = _shared_grads(ctx, mm_x, mm_weight, dmm_y, trans_mm)
        return dx, dw, dmm_x, dmm_w, None


class _DispatchFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, gmm_x, gmm_weight, mm_x, mm_weight, meta):
        g, W, send, recv, trans_gmm, trans_mm, permute_out = meta
        # dW needs permuteOut (the received rows, expert-major): asked for whenever W needs a grad.
        keep = permute_out or ctx.needs_input_grad[1]
        gmm_y, mm_y, perm = _dispatch(g, W, send, recv, gmm_x, gmm_weight, mm_x, mm_weight, trans_gmm, trans_mm, keep)
        ctx.meta = meta
        ctx.h1 = gmm_x.shape[1]
        ctx.save_for_backward(gmm_weight, mm_x, mm_weight, perm)
        ctx.set_materialize_grads(False)
        empty = torch.empty(0, dtype=gmm_x.dtype)
        if not permute_out and perm is not None:
            ctx.mark_non_differentiable(perm)  # internal, not the caller's output
        return gmm_y, (mm_y if mm_y is not None else empty), (perm if perm is not None else empty)

    @staticmethod
    def backward(ctx, dgmm_y, dmm_y, dperm):
        g, W, send, recv, trans_gmm, trans_mm, permute_out = ctx.meta
        gmm_weight, mm_x, mm_weight, perm = ctx.saved_tensors
        dtype = gmm_weight.dtype
        e = gmm_weight.shape[0]
        n1 = gmm_weight.shape[1 if trans_gmm else 2]
        if dgmm_y is None:
            dgmm_y = torch.zeros((sum(recv), n1), dtype=dtype)
        dgmm_y = dgmm_y.contiguous()
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
                local = torch.cat([matmul(dgmm_y[f:f + n], gmm_weight[j], not trans_gmm) for j, (f, n) in enumerate(bounds)]) \
                    if bounds else torch.zeros((0, ctx.h1), dtype=dtype)
                local = (local + dperm).contiguous()
                eye = torch.eye(ctx.h1).to(dtype).expand(e, ctx.h1, ctx.h1).contiguous()
                dx, _ = _combine(g, W, recv, send, local, eye, None, None, False, False)
        if ctx.needs_input_grad[1]:
            dw = _expert_weight_grad(perm, dgmm_y, bounds, trans_gmm, gmm_weight)
        dmm_x, dmm_w = _shared_grads(ctx, mm_x, mm_weight, dmm_y, trans_mm)
        return dx, dw, dmm_x, dmm_w, None


# torch.ops.gmmav.* (torch_npu's schemas; an absent optional output is an empty tensor). No
# autograd through torch.ops: the differentiable entry points are the Python functions.
_SCHEMAS = {
    "npu_gmm_alltoallv": (
        "npu_gmm_alltoallv(Tensor gmm_x, Tensor gmm_weight, str hcom, int ep_world_size, int[] send_counts, "
        "int[] recv_counts, *, Tensor? send_counts_tensor=None, Tensor? recv_counts_tensor=None, Tensor? mm_x=None, "
        "Tensor? mm_weight=None, bool trans_gmm_weight=False, bool trans_mm_weight=False) -> (Tensor, Tensor)"),
    "npu_alltoallv_gmm": (
        "npu_alltoallv_gmm(Tensor gmm_x, Tensor gmm_weight, str hcom, int ep_world_size, int[] send_counts, "
        "int[] recv_counts, *, Tensor? send_counts_tensor=None, Tensor? recv_counts_tensor=None, Tensor? mm_x=None, "
        "Tensor? mm_weight=None, bool trans_gmm_weight=False, bool trans_mm_weight=False, "
        "bool permute_out_flag=False) -> (Tensor, Tensor, Tensor)"),
}


def _op_kernel(gmm_x, gmm_weight, hcom, ep_world_size, send_counts, recv_counts, send_counts_tensor=None,
               recv_counts_tensor=None, mm_x=None, mm_weight=None, trans_gmm_weight=False, trans_mm_weight=False):
    y, mm_y = npu_gmm_alltoallv(gmm_x, gmm_weight, hcom, ep_world_size, list(send_counts), list(recv_counts),
                                send_counts_tensor=send_counts_tensor, recv_counts_tensor=recv_counts_tensor, mm_x=mm_x,
                                mm_weight=mm_weight, trans_gmm_weight=trans_gmm_weight, trans_mm_weight=trans_mm_weight)
    return y, (mm_y if mm_y is not None else torch.empty(0, dtype=gmm_x.dtype))


def _dispatch_op_kernel(gmm_x, gmm_weight, hcom, ep_world_size, send_counts, recv_counts, send_counts_tensor=None,
                        recv_counts_tensor=None, mm_x=None, mm_weight=None, trans_gmm_weight=False, trans_mm_weight=False,
                        permute_out_flag=False):
    out = npu_alltoallv_gmm(gmm_x, gmm_weight, hcom, ep_world_size, list(send_counts), list(recv_counts),
                            send_counts_tensor=send_counts_tensor, recv_counts_tensor=recv_counts_tensor, mm_x=mm_x,
                            mm_weight=mm_weight, trans_gmm_weight=trans_gmm_weight, trans_mm_weight=trans_mm_weight,
                            permute_out_flag=permute_out_flag)
    return tuple(t if t is not None else torch.empty(0, dtype=gmm_x.dtype) for t in out)


def _register_ops():
    kernels = {"npu_gmm_alltoallv": _op_kernel, "npu_alltoallv_gmm": _dispatch_op_kernel}
    missing = [n for n in _SCHEMAS if not (hasattr(torch.ops, "gmmav") and hasattr(torch.ops.gmmav, n))]
    if not missing:
        return None
    lib = torch.library.Library("gmmav", "DEF")
    for name in missing:
        lib.define(_SCHEMAS[name])
        lib.impl(name, kernels[name], "CPU")
    return lib


_library = _register_ops()  # kept alive: the registration lasts while the Library object does


def patch_torch_npu():
    """On a machine without torch_npu: installs a ``torch_npu`` module in sys.modules whose
    ``npu_gmm_alltoallv`` and ``npu_alltoallv_gmm`` are gmmav's, so accelerator code runs
    unchanged apart from the hcom name. Returns the module. With a real torch_npu installed
    nothing is changed (the real one is returned)."""
    existing = sys.modules.get("torch_npu")
    if existing is not None:
        return existing
    if importlib.util.find_spec("torch_npu") is not None:
        import torch_npu  # the real one

        return torch_npu
    mod = types.ModuleType("torch_npu", "gmmav's stand-in for torch_npu (gmmav.torch.patch_torch_npu)")
    mod.npu_gmm_alltoallv = npu_gmm_alltoallv
    mod.npu_alltoallv_gmm = npu_alltoallv_gmm
    mod.__gmmav__ = True
    sys.modules["torch_npu"] = mod
    return mod


_ACTIVATIONS = {"silu": torch.nn.functional.silu, "gelu": torch.nn.functional.gelu}


class MoEExperts(torch.nn.Module):
    """This rank's experts of an expert-parallel MoE layer: dispatch (W1) -> activation -> combine (W2).

        h = npu_alltoallv_gmm(x, w1)        routed rows travel to their expert's rank, x W1_j there
        a = act(h)                          in FP32, rounded once to the layer's dtype
        y = npu_gmm_alltoallv(a, w2)        a W2_j, rows travel back to the rank they came from

    x (BSK, hidden) holds this rank's routed token copies sorted by global expert g = d*e + j
    (send_counts[g] of them for each); y (BSK, hidden) is the experts' outputs in the same order
    (weighting by router probabilities and summing a token's K copies are the caller's).
    recv_counts are the rows this rank's experts receive (docs/dispatch-op.md §2); combine gets
    the two arrays exchanged. With ``shared_ffn`` a shared expert runs on ``shared_x`` (BS,
    hidden) inside the same two calls (their mm_x slots): shared_y = act(shared_x S1) S2.

    Parameters: w1 (e, hidden, ffn), w2 (e, ffn, hidden), shared_w1 (hidden, shared_ffn),
    shared_w2 (shared_ffn, hidden), in ``dtype`` (FP16 or BF16). Forward and backward are
    collective over ``hcom``'s group."""

    def __init__(self, hcom, ep_world_size, num_local_experts, hidden, ffn, *, shared_ffn=None, activation="silu",
                 dtype=torch.bfloat16, generator=None):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation: expected one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        if dtype not in _DTYPES:
            raise ValueError(f"dtype: expected torch.float16 or torch.bfloat16, got {dtype}")
        for name, v in (("num_local_experts", num_local_experts), ("hidden", hidden), ("ffn", ffn)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {v!r}")
        _group(hcom)  # a clear error now rather than at the first forward
        self.hcom, self.ep_world_size, self.activation = hcom, ep_world_size, activation
        self.keep_intermediates = False  # True: self.intermediates holds h, a (and shared) with their grads retained

        def param(*shape):  # N(0, 1/fan_in) in FP32, rounded once
            return torch.nn.Parameter((torch.randn(*shape, generator=generator) / shape[-2] ** 0.5).to(dtype))

        self.w1 = param(num_local_experts, hidden, ffn)
        self.w2 = param(num_local_experts, ffn, hidden)
        if shared_ffn is not None:
            self.shared_w1 = param(hidden, shared_ffn)
            self.shared_w2 = param(shared_ffn, hidden)
        else:
            self.shared_w1 = self.shared_w2 = None
        self.intermediates = {}

    def _act(self, h):
        return _ACTIVATIONS[self.activation](h.float()).to(h.dtype)

    def forward(self, x, send_counts, recv_counts, shared_x=None):
        """-> (y, shared_y); shared_y is None without the shared expert."""
        if (shared_x is None) != (self.shared_w1 is None):
            raise ValueError("shared_x: expected a (BS, hidden) tensor exactly when the layer has a shared expert "
                             f"(shared_ffn), got {'None' if shared_x is None else 'a tensor'} and "
                             f"{'no' if self.shared_w1 is None else 'a'} shared expert")
        h, mm_h, _ = npu_alltoallv_gmm(x, self.w1, self.hcom, self.ep_world_size, send_counts, recv_counts,
                                       mm_x=shared_x, mm_weight=self.shared_w1)
        a = self._act(h)
        mm_a = self._act(mm_h) if mm_h is not None else None
        y, mm_y = npu_gmm_alltoallv(a, self.w2, self.hcom, self.ep_world_size, recv_counts, send_counts,
                                    mm_x=mm_a, mm_weight=self.shared_w2)
        if self.keep_intermediates:
            self.intermediates = {"h": h, "a": a, "shared_h": mm_h, "shared_a": mm_a}
            for t in self.intermediates.values():
                if t is not None and t.requires_grad:
                    t.retain_grad()
        return y, mm_y
