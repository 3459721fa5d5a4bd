"""torch_npu's ``npu_gmm_alltoallv`` on CPU tensors, computed by gmmav (docs/python.md).

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

__all__ = ["npu_gmm_alltoallv", "hcom", "patch_torch_npu", "in_process_hcoms"]

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


def npu_gmm_alltoallv(gmm_x, gmm_weight, hcom, ep_world_size, send_counts, recv_counts, *, send_counts_tensor=None,
                      recv_counts_tensor=None, mm_x=None, mm_weight=None, trans_gmm_weight=False, trans_mm_weight=False):
    """torch_npu.npu_gmm_alltoallv on CPU tensors -> (y, mm_y); mm_y is None without the shared expert.

    gmm_x (A, H1); gmm_weight (e, H1, N1), or (e, N1, H1) with trans_gmm_weight; send_counts and
    recv_counts of length e * ep_world_size (SPEC §2 indexing); y (sum(recv_counts), N1);
    mm_x (BS, H2) and mm_weight (H2, N2) (or (N2, H2) with trans_mm_weight) give mm_y (BS, N2).
    Collective: every rank of the group calls it."""
    g = _group(hcom)
    try:
        if isinstance(ep_world_size, bool):
            raise TypeError
        ep_world_size = operator.index(ep_world_size)
    except TypeError:
        raise ValueError(f"ep_world_size: expected an int, got {type(ep_world_size).__name__}") from None
    send = _counts("send_counts", send_counts, send_counts_tensor)
    recv = _counts("recv_counts", recv_counts, recv_counts_tensor)
    for name, flag in (("trans_gmm_weight", trans_gmm_weight), ("trans_mm_weight", trans_mm_weight)):
        if not isinstance(flag, bool):
            raise ValueError(f"{name}: expected a bool, got {type(flag).__name__}")
    _check_tensor("gmm_x", gmm_x)
    _check_tensor("gmm_weight", gmm_weight)
    if (mm_x is None) != (mm_weight is None):
        raise ValueError("mm_x, mm_weight: expected both (the shared expert) or neither, got "
                         + ("mm_x only" if mm_weight is None else "mm_weight only"))
    shared = mm_x is not None
    if shared:
        _check_tensor("mm_x", mm_x)
        _check_tensor("mm_weight", mm_weight)
        if mm_x.dtype != gmm_x.dtype or mm_weight.dtype != gmm_x.dtype:
            bad, t = ("mm_x", mm_x) if mm_x.dtype != gmm_x.dtype else ("mm_weight", mm_weight)
            raise ValueError(f"{bad}: expected gmm_x's dtype {gmm_x.dtype}, got {t.dtype}")
    if gmm_weight.dtype != gmm_x.dtype:
        raise ValueError(f"gmm_weight: expected gmm_x's dtype {gmm_x.dtype}, got {gmm_weight.dtype}")

    # Outputs, shaped as gmmav will check them (gmmav names the input at fault when they cannot be).
    n1 = gmm_weight.shape[1 if trans_gmm_weight else 2] if gmm_weight.dim() == 3 else 0
    y = torch.empty((max(sum(recv), 0), n1), dtype=gmm_x.dtype)
    mm_y = None
    if shared:
        bs = mm_x.shape[0] if mm_x.dim() == 2 else 0
        n2 = mm_weight.shape[0 if trans_mm_weight else 1] if mm_weight.dim() == 2 else 0
        mm_y = torch.empty((bs, n2), dtype=gmm_x.dtype)
    global _last_cpp_seconds
    try:
        _last_cpp_seconds = _native.run(g, ep_world_size, send, recv, trans_gmm_weight, trans_mm_weight, _view(gmm_x), _view(gmm_weight), _view(y),
                    _view(mm_x) if shared else None, _view(mm_weight) if shared else None, _view(mm_y) if shared else None)
    except _native.Error as e:
        if e.code in ("timeout", "internal", "out_of_memory"):
            # The call started: a backend may still have transfers in flight into y (a peer's
            # late message after a timeout). y stays allocated for the process's lifetime.
            _failed_outputs.append(y)
        _raise(e)
    return y, mm_y


# torch.ops.gmmav.npu_gmm_alltoallv (torch_npu's schema; mm_y is an empty tensor without the shared expert).
_SCHEMA = ("npu_gmm_alltoallv(Tensor gmm_x, Tensor gmm_weight, str hcom, int ep_world_size, int[] send_counts, "
           "int[] recv_counts, *, Tensor? send_counts_tensor=None, Tensor? recv_counts_tensor=None, Tensor? mm_x=None, "
           "Tensor? mm_weight=None, bool trans_gmm_weight=False, bool trans_mm_weight=False) -> (Tensor, Tensor)")


def _op_kernel(gmm_x, gmm_weight, hcom, ep_world_size, send_counts, recv_counts, send_counts_tensor=None,
               recv_counts_tensor=None, mm_x=None, mm_weight=None, trans_gmm_weight=False, trans_mm_weight=False):
    y, mm_y = npu_gmm_alltoallv(gmm_x, gmm_weight, hcom, ep_world_size, list(send_counts), list(recv_counts),
                                send_counts_tensor=send_counts_tensor, recv_counts_tensor=recv_counts_tensor, mm_x=mm_x,
                                mm_weight=mm_weight, trans_gmm_weight=trans_gmm_weight, trans_mm_weight=trans_mm_weight)
    return y, (mm_y if mm_y is not None else torch.empty(0, dtype=gmm_x.dtype))


def _register_op():
    if hasattr(torch.ops, "gmmav") and hasattr(torch.ops.gmmav, "npu_gmm_alltoallv"):
        return None
    lib = torch.library.Library("gmmav", "DEF")
    lib.define(_SCHEMA)
    lib.impl("npu_gmm_alltoallv", _op_kernel, "CPU")
    return lib


_library = _register_op()  # kept alive: the registration lasts while the Library object does


def patch_torch_npu():
    """On a machine without torch_npu: installs a ``torch_npu`` module in sys.modules whose
    ``npu_gmm_alltoallv`` is gmmav's, so accelerator code runs unchanged apart from the hcom
    name. Returns the module. With a real torch_npu installed nothing is changed (the real one
    is returned)."""
    existing = sys.modules.get("torch_npu")
    if existing is not None:
        return existing
    if importlib.util.find_spec("torch_npu") is not None:
        import torch_npu  # the real one

        return torch_npu
    mod = types.ModuleType("torch_npu", "gmmav's stand-in for torch_npu (gmmav.torch.patch_torch_npu)")
    mod.npu_gmm_alltoallv = npu_gmm_alltoallv
    mod.__gmmav__ = True
    sys.modules["torch_npu"] = mod
    return mod
