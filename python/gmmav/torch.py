"""torch_npu's ``npu_gmm_alltoallv`` (combine) and ``npu_alltoallv_gmm`` (dispatch) on CPU
tensors, computed by gmmav, differentiable, ``npu_grouped_matmul`` on gmmav's GEMM, and an
expert-parallel MoE layer built on them (``MoEExperts``); docs/python.md.

    import gmmav.torch
    name = gmmav.torch.hcom()                     # every rank; torch.distributed or mpirun
    y, mm_y = gmmav.torch.npu_gmm_alltoallv(gmm_x, gmm_weight, name, W, send_counts, recv_counts)

Also registered as ``torch.ops.gmmav.npu_gmm_alltoallv`` (there ``mm_y`` is an empty tensor when
there is no shared expert: an operator schema cannot return None). ``patch_torch_npu()`` makes
``import torch_npu`` give these functions on a machine without torch_npu, and gives
torch.distributed process groups torch_npu's ``get_hccl_comm_name(rank)``.

Weights are packed for gmmav's GEMM once and kept while they are unchanged (torch's ``_version``
counter): ``set_weight_cache_bytes``, ``clear_weight_cache``, ``weight_cache_info``; docs/python.md,
"Weight cache".

Errors: ValueError for bad arguments (gmmav's message: parameter, expected, got), RuntimeError for
cross-rank mismatches, timeouts and broken groups, MemoryError when the call's memory cannot be had.
Nothing is written on error (y and mm_y are allocated by the call and not returned).
"""
import collections
import importlib.util
import itertools
import operator
import os
import sys
import threading
import types

import torch

from . import _native
from ._dist import Transport

__all__ = ["npu_gmm_alltoallv", "npu_alltoallv_gmm", "npu_grouped_matmul", "matmul", "MoEExperts", "hcom", "patch_torch_npu",
           "in_process_hcoms", "set_weight_cache_bytes", "clear_weight_cache", "weight_cache_info"]

_DTYPES = {torch.float16: 0, torch.bfloat16: 1}
_groups = {}  # hcom name -> _native.Group (this process's rank of it)
_dist_names = {}  # torch.distributed process group -> hcom name
_mpi_name = None
_lock = threading.Lock()
_ids = itertools.count()
_failed_outputs = []  # outputs of calls that failed after starting (see npu_gmm_alltoallv)
_last_cpp_seconds = 0.0  # seconds the last call spent in the C++ API (binding-overhead measurement)
_call_locks = {}  # _native.Group -> Lock held while a thread of this process is in a call on it
_INT64 = 1 << 63
_INT32 = 1 << 31


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
            ranks = _usable_group_ranks(pg)
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


def _usable_group_ranks(pg):
    """The global ranks of a subgroup gmmav can move rows over (its own gloo transport), else a
    ValueError naming the group."""
    import torch.distributed as dist

    ranks = dist.distributed_c10d._pg_group_ranks.get(pg)
    if ranks is None:
        raise ValueError(f"group: expected a torch.distributed process group of this process (the world or one made by "
                         f"new_group), got {pg!r}")
    ranks = sorted(ranks.keys())
    try:
        backend = str(dist.get_backend(pg))
    except Exception as e:  # noqa: BLE001 - whatever torch says, the group cannot be used
        raise ValueError(f"group: the process group of global ranks {ranks} has no usable backend ({e})") from None
    if backend != "gloo":
        raise ValueError(f"group: expected a gloo process group (gmmav moves rows with gloo's CPU isend/irecv), got "
                         f"backend {backend!r} for the process group of global ranks {ranks}; create it with "
                         f"torch.distributed.new_group({ranks}, backend=\"gloo\")")
    return ranks


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


def _int_list(param, values, what="ints"):
    """A list of Python ints from a list/tuple of integers (not bools) that fit int64."""
    if isinstance(values, torch.Tensor):
        return _int_tensor(param, values)
    try:
        out = [int(v) if not isinstance(v, bool) and int(v) == v else None for v in values]
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{param}: expected a list of {what}, got {values!r}") from None
    if any(v is None for v in out):
        raise ValueError(f"{param}: expected a list of {what}, got {values!r}")
    big = [v for v in out if not -_INT64 <= v < _INT64]
    if big:
        raise ValueError(f"{param}: expected {what} that fit int64 (below 2**63), got {big[0]}")
    return out


def _int_tensor(param, t):
    """A 1-D integer CPU tensor as a list of ints."""
    if t.device.type != "cpu":
        raise ValueError(f"{param}: expected a CPU tensor, got device {t.device}")
    if t.dim() != 1 or t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
        raise ValueError(f"{param}: expected a 1-D integer tensor, got {t.dim()}-D {t.dtype}")
    return [int(v) for v in t.tolist()]


def _counts(param, values, tensor):
    """Counts from the list (or an integer tensor in its place) and/or, beyond torch_npu, the
    count tensor; as a list of ints."""
    from_tensor = None
    if tensor is not None:
        if not isinstance(tensor, torch.Tensor):
            raise ValueError(f"{param}_tensor: expected a tensor or None, got {type(tensor).__name__}")
        from_tensor = _int_tensor(f"{param}_tensor", tensor)
    if values is None:
        if from_tensor is None:
            raise ValueError(f"{param}: expected a list of ints (or {param}_tensor), got None")
        return from_tensor
    out = _int_list(param, values)
    if from_tensor is not None and from_tensor != out:
        raise ValueError(f"{param}_tensor: expected the same counts as {param} ({out}), got {from_tensor}")
    return out


def _check_cpu_16bit(param, t, dtype_note=""):
    """A CPU tensor of gmmav's dtypes, or ValueError naming `param`."""
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{param}: expected a torch.Tensor, got {type(t).__name__}")
    if t.device.type != "cpu":
        raise ValueError(f"{param}: expected a CPU tensor, got device {t.device}")
    if t.dtype not in _DTYPES:
        raise ValueError(f"{param}: expected dtype torch.float16 or torch.bfloat16{dtype_note}, got {t.dtype}")


def _check_tensor(param, t):
    _check_cpu_16bit(param, t)
    if t.dim() > 3:
        raise ValueError(f"{param}: expected a 2-D or 3-D tensor, got {t.dim()}-D")


# Layouts (docs/python.md, "Views"). gmmav reads row-major tensors. A tensor torch calls
# contiguous is passed as it is; a weight whose last two dimensions are a transposed view of a
# row-major tensor (w.transpose(-1, -2), w.permute(0, 2, 1), w.t(), w.T) is passed as that tensor
# with its trans flag flipped: the same bytes, no copy. Anything else (expanded, sliced, other
# permutations) is copied once with .contiguous(). Strides never reach gmmav as torch has them:
# _view gives the row-major strides of the (contiguous) tensor it is handed, so a broadcast
# tensor (all strides 0) is never read as if it were dense.

def _readable(t):
    """t when row-major, else a row-major copy (one per call)."""
    return t if t.is_contiguous() else t.contiguous()


def _weight_layout(w, trans):
    """-> (tensor gmmav reads, its trans flag, whether the flag was flipped)."""
    if w.is_contiguous():
        return w, trans, False
    if w.dim() >= 2:
        wt = w.transpose(-1, -2)
        if wt.is_contiguous():
            return wt, not trans, True
    return w.contiguous(), trans, False


def _view(t):
    """(data_ptr, dtype, shape, row-major strides) of a contiguous tensor, for gmmav._native."""
    if not t.is_contiguous():
        raise AssertionError("gmmav internal: _view of a non-contiguous tensor")
    strides, step = [], 1
    for d in reversed(t.shape):
        strides.append(step)
        step *= d
    return (t.data_ptr(), _DTYPES[t.dtype], tuple(t.shape), tuple(reversed(strides)))


def _layouts(gmm_x, gmm_weight, mm_x, mm_weight, trans_gmm, trans_mm):
    """The tensors gmmav reads and their flags -> (gmm_x, gmm_weight, mm_x, mm_weight, trans_gmm,
    trans_mm, gmm_weight flipped, mm_weight flipped)."""
    x = _readable(gmm_x)
    w, trans_gmm, flip_gmm = _weight_layout(gmm_weight, trans_gmm)
    mx = _readable(mm_x) if mm_x is not None else None
    flip_mm = False
    mw = mm_weight
    if mm_weight is not None:
        mw, trans_mm, flip_mm = _weight_layout(mm_weight, trans_mm)
    return x, w, mx, mw, trans_gmm, trans_mm, flip_gmm, flip_mm


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
    if not -_INT32 <= ep_world_size < _INT32:  # gmmav takes an int; it would name epWorldSize for any other value
        raise ValueError(f"ep_world_size: expected the group's size {g.size}, got {ep_world_size}")
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


# The weight cache (docs/python.md, "Weight cache"; D78). gmmav packs every expert weight for its
# GEMM kernel on each call unless it is handed the weights packed already (gmmav::PackedWeights,
# _native.PackedWeights here). MoE weights are passed unchanged to call after call (inference,
# micro-batches, recomputation), so the ops keep packed weights keyed by what they read:
#   the storage (its StorageImpl, identified by address while a weak reference to it is held, so
#   no other storage can take that address), the storage's data pointer, the storage offset,
#   shape, strides and dtype of the tensor gmmav reads (after _layouts: a transposed view is its
#   stored tensor with the flag flipped, so both name one entry), the trans flag, and the same for
#   the shared expert's weight (one PackedWeights holds both);
# and valid while the tensors' version counters (`_version`, bumped by every in-place write
# torch sees, through any view) are the ones read before packing. A weight is packed into the
# cache the second time a call sees it unchanged; the first call packs in the call as before and
# only leaves a marker, so training, whose weights change every step, keeps nothing and pays
# nothing. Entries are evicted least recently used beyond a byte budget (packed bytes), and
# dropped once their storage is freed (at the next call that packs, or clear_weight_cache()).

def _default_cache_bytes():
    """A quarter of the physical memory (the aclnn layer's default budget), else 1 GiB."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 4
    except (AttributeError, ValueError, OSError):
        return 1 << 30


def _storage_of(t):
    return t.untyped_storage() if hasattr(t, "untyped_storage") else t.storage()


def _weight_key(t):
    """(identity, version, storage) of a weight as gmmav reads it, or None when it cannot be
    cached (an inference tensor has no version counter; an empty one packs nothing)."""
    if t.numel() == 0 or t.is_inference():
        return None
    s = _storage_of(t)
    return (s._cdata, s.data_ptr(), t.storage_offset(), tuple(t.shape), tuple(t.stride()), t.dtype), t._version, s


class _CacheEntry:
    __slots__ = ("versions", "packed", "bytes", "refs", "too_big")

    def __init__(self, versions, refs):
        self.versions = versions
        self.packed = None  # _native.PackedWeights once packed into the cache; None: a marker (seen once)
        self.bytes = 0
        self.refs = refs  # weak references to the storages: an entry lives no longer than they do
        self.too_big = 0  # packed bytes of weights larger than the budget (then not kept)

    def expired(self):
        return any(r.expired() for r in self.refs)


class _WeightCache:
    MAX_ENTRIES = 4096  # markers included (they hold no packed bytes)

    def __init__(self):
        self.lock = threading.Lock()
        self.entries = collections.OrderedDict()  # slot -> _CacheEntry, least recently used first
        self.limit = _default_cache_bytes()
        self.bytes = 0
        self.hits = self.misses = self.packs = 0

    def lookup(self, w, trans_w, mw, trans_mw):
        """-> (packed or None, pending or None) for a call reading weight w (and mw, the shared
        expert's, or None): a packed handle from the cache (hit); an empty handle the call packs
        into, with `pending` for store(); or None (the call packs in the call, as without a cache)."""
        if self.limit == 0:
            return None, None
        gk = _weight_key(w)
        mk = _weight_key(mw) if mw is not None else None
        if gk is None or (mw is not None and mk is None):
            with self.lock:
                self.misses += 1
            return None, None
        slot = (gk[0], trans_w, mk[0] if mk else None, trans_mw if mk else None)
        versions = (gk[1], mk[1] if mk else None)
        with self.lock:
            e = self.entries.get(slot)
            if e is not None and e.versions == versions and not e.expired():
                self.entries.move_to_end(slot)
                if e.packed is not None:
                    self.hits += 1
                    return e.packed, None
                self.misses += 1
                if e.too_big > self.limit:  # would not be kept: pack in the call
                    return None, None
                return _native.PackedWeights(), (slot, versions, w, mw)
            # First sight of these weights (or they changed): a marker, no packing for the cache.
            self.misses += 1
            if e is not None:
                self._drop(slot)
            self._sweep()
            refs = [_StorageWeakRef(gk[2])] + ([_StorageWeakRef(mk[2])] if mk else [])
            self.entries[slot] = _CacheEntry(versions, refs)
            while len(self.entries) > self.MAX_ENTRIES:
                self._drop(next(iter(self.entries)))
            return None, None

    def store(self, pending, packed):
        """After a successful call that packed into `packed`: keep it, unless the weights were
        written meanwhile or it exceeds the budget."""
        slot, versions, w, mw = pending
        if (w._version, mw._version if mw is not None else None) != versions:
            return
        size = packed.bytes
        with self.lock:
            e = self.entries.get(slot)
            if e is None or e.versions != versions or e.packed is not None or e.expired():
                return
            if size > self.limit:
                e.too_big = size
                return
            self.packs += 1
            self._fit(size)
            e.packed, e.bytes = packed, size
            self.bytes += size
            self.entries.move_to_end(slot)

    def _drop(self, slot):
        e = self.entries.pop(slot)
        self.bytes -= e.bytes

    def _sweep(self):
        """Drops entries whose storage was freed."""
        for slot in [s for s, e in self.entries.items() if e.expired()]:
            self._drop(slot)

    def _fit(self, incoming):
        """Evicts packed entries, least recently used first, until `incoming` more bytes fit."""
        for slot in [s for s, e in self.entries.items() if e.packed is not None]:
            if self.bytes + incoming <= self.limit:
                break
            self._drop(slot)

    def clear(self):
        with self.lock:
            self.entries.clear()
            self.bytes = 0

    def set_limit(self, n):
        with self.lock:
            self.limit = n
            self._fit(0)
            if n == 0:
                self.entries.clear()

    def info(self):
        with self.lock:
            self._sweep()
            packed = sum(1 for e in self.entries.values() if e.packed is not None)
            return {"limit_bytes": self.limit, "bytes": self.bytes, "entries": packed, "hits": self.hits,
                    "misses": self.misses, "packs": self.packs}

    def after_fork(self):
        self.lock = threading.Lock()


def _StorageWeakRef(storage):  # noqa: N802 - a class, imported on first use
    from torch.multiprocessing.reductions import StorageWeakRef

    return StorageWeakRef(storage)


_weight_cache = _WeightCache()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_weight_cache.after_fork)


def set_weight_cache_bytes(n):
    """Sets the weight cache's budget: at most ``n`` bytes of packed weights are kept (least
    recently used evicted first); 0 turns the cache off and empties it. Default: a quarter of the
    physical memory. docs/python.md, "Weight cache"."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n: expected an integer >= 0 (bytes; 0 turns the weight cache off), got {n!r}")
    _weight_cache.set_limit(n)


def clear_weight_cache():
    """Drops every packed weight the ops keep. Call it after writing weights in a way torch's
    version counter does not see (through ``.data``, a numpy array or another process sharing the
    memory): the next calls pack the weights as they are then."""
    _weight_cache.clear()


def weight_cache_info():
    """-> dict: ``limit_bytes`` (the budget), ``bytes`` and ``entries`` (packed weights held now),
    ``hits`` (calls that used packed weights from the cache), ``misses`` (calls that did not),
    ``packs`` (weights packed into the cache)."""
    return _weight_cache.info()


def _mm_out(gmm_x, mm_x, mm_weight, trans_mm_weight):
    """mm_y shaped as gmmav will check it (gmmav names the input at fault when it cannot be)."""
    if mm_x is None:
        return None
    bs = mm_x.shape[0] if mm_x.dim() == 2 else 0
    n2 = mm_weight.shape[0 if trans_mm_weight else 1] if mm_weight.dim() == 2 else 0
    return torch.empty((bs, n2), dtype=gmm_x.dtype)


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
    global _last_cpp_seconds
    with _lock:
        busy = _call_locks.setdefault(g, threading.Lock())
    if not busy.acquire(blocking=False):
        raise _busy(g)
    try:
        _last_cpp_seconds = fn(g, *args)
    except _native.Error as e:
        if e.code in ("timeout", "internal", "out_of_memory"):
            _failed_outputs.append(outputs)
        _raise(e)
    finally:
        busy.release()


def _combine(g, W, send, recv, gmm_x, gmm_weight, mm_x, mm_weight, trans_gmm, trans_mm):
    """The combine op on checked, row-major arguments (_layouts) -> (y, mm_y or None)."""
    n1 = gmm_weight.shape[1 if trans_gmm else 2] if gmm_weight.dim() == 3 else 0
    y = torch.empty((max(sum(recv), 0), n1), dtype=gmm_x.dtype)
    mm_y = _mm_out(gmm_x, mm_x, mm_weight, trans_mm)
    shared = mm_x is not None
    packed, pending = _weight_cache.lookup(gmm_weight, trans_gmm, mm_weight if shared else None, trans_mm)
    _native_call((y, mm_y), _native.run, g, W, send, recv, trans_gmm, trans_mm, _view(gmm_x), _view(gmm_weight), _view(y),
                 _view(mm_x) if shared else None, _view(mm_weight) if shared else None, _view(mm_y) if shared else None,
                 packed)
    if pending is not None:
        _weight_cache.store(pending, packed)
    return y, mm_y


def _dispatch(g, W, send, recv, gmm_x, gmm_weight, mm_x, mm_weight, trans_gmm, trans_mm, permute_out):
    """The dispatch op on checked, row-major arguments -> (gmm_y, mm_y or None, permute_out or None)."""
    n1 = gmm_weight.shape[1 if trans_gmm else 2] if gmm_weight.dim() == 3 else 0
    a = max(sum(recv), 0)
    gmm_y = torch.empty((a, n1), dtype=gmm_x.dtype)
    perm = torch.empty((a, gmm_x.shape[1] if gmm_x.dim() == 2 else 0), dtype=gmm_x.dtype) if permute_out else None
    mm_y = _mm_out(gmm_x, mm_x, mm_weight, trans_mm)
    shared = mm_x is not None
    packed, pending = _weight_cache.lookup(gmm_weight, trans_gmm, mm_weight if shared else None, trans_mm)
    _native_call((gmm_y, mm_y, perm), _native.run_dispatch, g, W, send, recv, trans_gmm, trans_mm, _view(gmm_x),
                 _view(gmm_weight), _view(gmm_y), _view(mm_x) if shared else None, _view(mm_weight) if shared else None,
                 _view(mm_y) if shared else None, _view(perm) if permute_out else None, packed)
    if pending is not None:
        _weight_cache.store(pending, packed)
    return gmm_y, mm_y, perm


def _wants_grad(*tensors):
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


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
    g, W, send, recv = _prepare(gmm_x, gmm_weight, hcom, ep_world_size, send_counts, recv_counts, send_counts_tensor,
                                recv_counts_tensor, mm_x, mm_weight, trans_gmm_weight, trans_mm_weight)
    if _wants_grad(gmm_x, gmm_weight, mm_x, mm_weight):
        out = _CombineFunction.apply(gmm_x, gmm_weight, mm_x, mm_weight, (g, W, send, recv, trans_gmm_weight, trans_mm_weight))
        return out[0], (out[1] if mm_x is not None else None)
    x, w, mx, mw, tg, tm, _, _ = _layouts(gmm_x, gmm_weight, mm_x, mm_weight, trans_gmm_weight, trans_mm_weight)
    return _combine(g, W, send, recv, x, w, mx, mw, tg, tm)


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
    g, W, send, recv = _prepare(gmm_x, gmm_weight, hcom, ep_world_size, send_counts, recv_counts, send_counts_tensor,
                                recv_counts_tensor, mm_x, mm_weight, trans_gmm_weight, trans_mm_weight)
    _check_flag("permute_out_flag", permute_out_flag)
    if _wants_grad(gmm_x, gmm_weight, mm_x, mm_weight):
        out = _DispatchFunction.apply(gmm_x, gmm_weight, mm_x, mm_weight,
                                      (g, W, send, recv, trans_gmm_weight, trans_mm_weight, permute_out_flag))
        return out[0], (out[1] if mm_x is not None else None), (out[2] if permute_out_flag else None)
    x, w, mx, mw, tg, tm, _, _ = _layouts(gmm_x, gmm_weight, mm_x, mm_weight, trans_gmm_weight, trans_mm_weight)
    return _dispatch(g, W, send, recv, x, w, mx, mw, tg, tm, permute_out_flag)


def _mm(a, b, out=None):
    """round(a @ b) with gmmav's GEMM, a (m, k) and b (k, n) 2-D tensors of one dtype in any
    layout: a is copied when not row-major; b is read in place when row-major or a transposed
    view of a row-major tensor (gmmav's trans flag), else copied. `out` (m, n), row-major, is
    written when given."""
    a = _readable(a)
    b, trans, _ = _weight_layout(b, False)
    n = b.shape[0] if trans else b.shape[1]
    if out is None:
        out = torch.empty((a.shape[0], n), dtype=a.dtype)
    if a.shape[1] == 0:
        return out.zero_()  # an empty sum
    try:
        _native.matmul(_view(a), _view(b), _view(out), trans)
    except _native.Error as e:
        _raise(e)
    return out


def matmul(x, w, trans_w=False):
    """round(x @ W) with gmmav's GEMM: x (rows, k), W = w (k, n) or, with trans_w, w stored (n, k);
    FP16/BF16 in and out, FP32 accumulation over the whole k, one round-to-nearest-even, the same
    bits for any thread count (docs/spec.md §4). The gradients of both ops are made with it, not
    torch.matmul, whose CPU reduction order and BF16 accumulation are not specified. Views are
    taken as the ops take them: w transposed in place, anything else copied once."""
    _check_tensor("x", x)
    _check_tensor("w", w)
    _check_flag("trans_w", trans_w)
    if x.dim() != 2 or w.dim() != 2:
        raise ValueError(f"x, w: expected 2-D tensors, got {x.dim()}-D and {w.dim()}-D")
    if w.dtype != x.dtype:
        raise ValueError(f"w: expected x's dtype {x.dtype}, got {w.dtype}")
    k = x.shape[1]
    if (w.shape[1] if trans_w else w.shape[0]) != k:
        raise ValueError(f"w: expected {'(n, k)' if trans_w else '(k, n)'} with k = {k} (x's columns), got {tuple(w.shape)}")
    return _mm(x, w.t() if trans_w else w)


# Double backward (create_graph=True): the ops' backward is computed once, as with
# torch.autograd.function.once_differentiable; each gradient then hangs from a node that raises
# when anything is differentiated through it. Unlike once_differentiable, the node is joined to
# every tensor the true gradient depends on (the op's inputs and the output gradients that require
# grad), so differentiating towards a weight raises too instead of finding it "unused".
_TWICE = (b"gmmav.torch: double backward (differentiating a gradient of npu_gmm_alltoallv, npu_alltoallv_gmm or "
          b"npu_grouped_matmul, e.g. after backward(create_graph=True)) is not supported")


def _once(grads, sources):
    """The gradients a backward returns; under create_graph=True each behind a node that raises."""
    if not torch.is_grad_enabled():
        return grads
    present = [i for i, t in enumerate(grads) if t is not None]
    deps = [t for t in sources if isinstance(t, torch.Tensor) and t.requires_grad]
    if not present or not deps:  # nothing differentiable upstream: the gradients are constants
        return grads
    err = torch._C._functions.DelayedError(_TWICE, len(present) + len(deps))
    wrapped = err(*[grads[i].detach() for i in present], *deps)
    wrapped = wrapped if isinstance(wrapped, tuple) else (wrapped,)
    out = list(grads)
    for i, t in zip(present, wrapped):
        out[i] = t
    return tuple(out)


# Autograd (docs/python.md, "Autograd"; D45). The two ops are each other's adjoint
# (docs/dispatch-op.md §6): the routed input gradient of one is the other op on the output
# gradient, with the counts exchanged (what a rank sent it now receives) and the weights
# transposed (the flag flipped: the same tensor read the other way). The weight gradients are
# per-expert GEMMs on rows in the expert-major order, made with _mm above. Each Function reads
# its inputs through _layouts once (forward) and keeps those tensors for backward; a weight read
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
            _mm(dy_j.t(), x_j, out=out[j])  # (N1, H1)
        else:
            _mm(x_j.t(), dy_j, out=out[j])  # (H1, N1)
    return out


def _shared_grads(needs, mm_x, mm_weight, dmm_y, trans_mm, flip_mm):
    """The shared expert's MatMul gradients: d(mmX) = dmmY mmW^T, d(mmW) = mmX^T dmmY."""
    if mm_x is None or dmm_y is None:
        return None, None
    dx = _mm(dmm_y, mm_weight if trans_mm else mm_weight.t()) if needs[2] else None
    dw = None
    if needs[3]:
        dw = _mm(dmm_y.t(), mm_x) if trans_mm else _mm(mm_x.t(), dmm_y)
        dw = dw.t() if flip_mm else dw
    return dx, dw


class _CombineFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, gmm_x, gmm_weight, mm_x, mm_weight, meta):
        g, W, send, recv, trans_gmm, trans_mm = meta
        x, w, mx, mw, tg, tm, fg, fm = _layouts(gmm_x, gmm_weight, mm_x, mm_weight, trans_gmm, trans_mm)
        y, mm_y = _combine(g, W, send, recv, x, w, mx, mw, tg, tm)
        ctx.meta = (g, W, send, recv, tg, tm, fg, fm)
        ctx.save_for_backward(x, w, mx, mw, gmm_x, gmm_weight, mm_x, mm_weight)  # the inputs too, for _once
        ctx.set_materialize_grads(False)
        return y, (mm_y if mm_y is not None else torch.empty(0, dtype=gmm_x.dtype))

    @staticmethod
    def backward(ctx, dy, dmm_y):
        with torch.no_grad():
            grads = _CombineFunction._grads(ctx, dy, dmm_y)
        return _once(grads, ctx.saved_tensors[4:] + (dy, dmm_y)) + (None,)

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
            dxg, _, dy_perm = _dispatch(g, W, recv, send, _readable(dy), gmm_weight, None, None, not trans_gmm, False,
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
        x, w, mx, mw, tg, tm, fg, fm = _layouts(gmm_x, gmm_weight, mm_x, mm_weight, trans_gmm, trans_mm)
        # dW needs permuteOut (the received rows, expert-major): asked for whenever W needs a grad.
        keep = permute_out or ctx.needs_input_grad[1]
        gmm_y, mm_y, perm = _dispatch(g, W, send, recv, x, w, mx, mw, tg, tm, keep)
        ctx.meta = (g, W, send, recv, tg, tm, fg, fm, permute_out)
        ctx.h1 = gmm_x.shape[1]
        # The inputs too, for _once (not gmm_x: its memory would outlive the forward; dW's dependence
        # on it goes through perm, an output of this node, differentiable even when internal).
        ctx.save_for_backward(w, mx, mw, perm, gmm_weight, mm_x, mm_weight)
        ctx.set_materialize_grads(False)
        empty = torch.empty(0, dtype=gmm_x.dtype)
        return gmm_y, (mm_y if mm_y is not None else empty), (perm if perm is not None else empty)

    @staticmethod
    def backward(ctx, dgmm_y, dmm_y, dperm):
        with torch.no_grad():
            grads = _DispatchFunction._grads(ctx, dgmm_y, dmm_y, dperm)
        return _once(grads, ctx.saved_tensors[3:] + (dgmm_y, dmm_y, dperm)) + (None,)

    @staticmethod
    def _grads(ctx, dgmm_y, dmm_y, dperm):
        g, W, send, recv, trans_gmm, trans_mm, flip_gmm, flip_mm, permute_out = ctx.meta
        gmm_weight, mm_x, mm_weight, perm = ctx.saved_tensors[:4]
        dtype = gmm_weight.dtype
        e = gmm_weight.shape[0]
        n1 = gmm_weight.shape[1 if trans_gmm else 2]
        if dgmm_y is None:
            dgmm_y = torch.zeros((sum(recv), n1), dtype=dtype)
        dgmm_y = _readable(dgmm_y)
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
                    _mm(dgmm_y[f:f + n], wj if trans_gmm else wj.t(), out=local[f:f + n])
                local = _readable(local + dperm)
                eye = torch.eye(ctx.h1).to(dtype).expand(e, ctx.h1, ctx.h1).contiguous()
                dx, _ = _combine(g, W, recv, send, local, eye, None, None, False, False)
        if ctx.needs_input_grad[1]:
            dw = _expert_weight_grad(perm, dgmm_y, bounds, trans_gmm, gmm_weight)
            dw = dw.transpose(-1, -2) if flip_gmm else dw
        dmm_x, dmm_w = _shared_grads(ctx.needs_input_grad, mm_x, mm_weight, dmm_y, trans_mm, flip_mm)
        return dx, dw, dmm_x, dmm_w


# torch_npu.npu_grouped_matmul (docs/python.md, "npu_grouped_matmul"): the grouped GEMMs MoE code
# computes its expert weights' gradients with, on gmmav's GEMM (_mm). Every product is one
# 2-D GEMM y = round(a @ b), FP32 accumulation over the whole reduction, written once into its
# place in the output; its gradients are GEMMs of the same kind.

class _GmmSpec:
    """A checked npu_grouped_matmul call: group_type (-1, 0, 2), split_item, how many of the
    tensors are x's, and the group sizes along the grouped axis (rows of x for 0, the reduction
    for 2; None for -1)."""

    def __init__(self, group_type, split_item, nx, sizes):
        self.group_type, self.split_item, self.nx, self.sizes = group_type, split_item, nx, sizes

    @property
    def single(self):
        return self.split_item in (2, 3)

    def starts(self):
        return list(itertools.accumulate([0] + self.sizes))


def _gmm_tensors(param, values):
    if isinstance(values, torch.Tensor) or not isinstance(values, (list, tuple)):
        raise ValueError(f"{param}: expected a list of tensors, got {type(values).__name__}")
    if not 1 <= len(values) <= 128:
        raise ValueError(f"{param}: expected a list of 1 to 128 tensors (torch_npu's limit), got {len(values)}")
    for i, t in enumerate(values):
        _check_cpu_16bit(f"{param}[{i}]", t, " (gmmav's GEMM)")
    return list(values)


def _gmm_int(param, v, allowed):
    if isinstance(v, bool) or not isinstance(v, int) or v not in allowed:
        raise ValueError(f"{param}: expected one of {sorted(allowed)}, got {v!r}")
    return v


def _gmm_sizes(group_list, group_list_type, length, what):
    """Group sizes from group_list (cumulative or counts), which must cover `length`."""
    values = _int_tensor("group_list", group_list) if isinstance(group_list, torch.Tensor) else \
        _int_list("group_list", group_list)
    if not values:
        raise ValueError("group_list: expected at least one group, got an empty list")
    if any(v < 0 for v in values):
        raise ValueError(f"group_list: expected non-negative values, got {values}")
    if group_list_type == 0:
        if any(b < a for a, b in zip(values, values[1:])):
            raise ValueError(f"group_list: expected a non-decreasing cumulative sum (group_list_type 0), got {values}")
        if values[-1] != length:
            raise ValueError(f"group_list: expected its last value (cumulative, group_list_type 0) to be {what} "
                             f"{length}, got {values[-1]}")
        return [b - a for a, b in zip([0] + values[:-1], values)]
    if sum(values) != length:
        raise ValueError(f"group_list: expected counts (group_list_type 1) summing to {what} {length}, got sum {sum(values)}")
    return values


def _gmm_check(x, weight, bias, absent, group_list, split_item, group_type, group_list_type, act_type, output_dtype):
    """torch_npu's rules for the non-quantized calls gmmav computes -> (_GmmSpec, xs, ws)."""
    xs = _gmm_tensors("x", x)
    ws = _gmm_tensors("weight", weight)
    dtype = xs[0].dtype
    for param, ts in (("x", xs), ("weight", ws)):
        for i, t in enumerate(ts):
            if t.dtype != dtype:
                raise ValueError(f"{param}[{i}]: expected x[0]'s dtype {dtype}, got {t.dtype}")
    if bias is not None and not (isinstance(bias, (list, tuple)) and len(bias) == 0):
        raise ValueError("bias: expected None (gmmav's npu_grouped_matmul has no bias; add it afterwards), got "
                         f"{type(bias).__name__}")
    for name, v in absent.items():
        if v is not None and not (isinstance(v, (list, tuple)) and len(v) == 0):
            raise ValueError(f"{name}: expected None (quantized and activation-fused calls are not supported by gmmav), "
                             f"got {type(v).__name__}")
    if act_type != 0:
        raise ValueError(f"act_type: expected 0 (no activation; gmmav fuses none), got {act_type!r}")
    if output_dtype is not None and output_dtype != dtype:
        raise ValueError(f"output_dtype: expected None or x's dtype {dtype}, got {output_dtype}")
    split_item = _gmm_int("split_item", split_item, {0, 1, 2, 3})
    if group_type is None:  # torch_npu's List[int] API: a group_list splits x's rows
        group_type = -1 if group_list is None else 0
    if group_type == 1:
        raise ValueError("group_type: expected -1, 0 or 2, got 1 (N-axis grouping: torch_npu does not support it on "
                         "Atlas A2/A3 either)")
    group_type = _gmm_int("group_type", group_type, {-1, 0, 2})
    if group_list_type is None:
        group_list_type = 0
    if group_list_type == 2:
        raise ValueError("group_list_type: expected 0 (cumulative) or 1 (counts), got 2 (torch_npu: int8 only)")
    group_list_type = _gmm_int("group_list_type", group_list_type, {0, 1})
    if group_list is not None and not isinstance(group_list, (list, tuple, torch.Tensor)):
        raise ValueError(f"group_list: expected None, a list of ints or a 1-D int64 tensor, got {type(group_list).__name__}")
    single = split_item in (2, 3)

    def dims(param, i, t, allowed):
        if t.dim() not in allowed:
            want = " or ".join(str(d) for d in sorted(allowed)) if len(allowed) < 3 else f"{min(allowed)}- to {max(allowed)}"
            raise ValueError(f"{param}[{i}]: expected a {want}-D tensor, got {t.dim()}-D")

    def reduction(i, k_x, w, what="weight"):
        if w.shape[0] != k_x:
            raise ValueError(f"{what}[{i}]: expected {k_x} rows (x's reduction dimension), got shape {tuple(w.shape)}")

    def same_n(mats):
        ns = {m.shape[-1] for m in mats}
        if single and len(ns) > 1:
            raise ValueError(f"weight: expected one N for every group (split_item {split_item}: one output), got {sorted(ns)}")

    if group_type == -1:
        if group_list is not None:
            raise ValueError("group_list: expected None with group_type -1 (no grouping), got a group list")
        if len(xs) != len(ws):
            raise ValueError(f"x, weight: expected as many x tensors as weights (group_type -1), got {len(xs)} and {len(ws)}")
        for i, (a, b) in enumerate(zip(xs, ws)):
            dims("x", i, a, {2} if single else {2, 3, 4, 5, 6})
            dims("weight", i, b, {2})
            reduction(i, a.shape[-1], b)
        same_n(ws)
        return _GmmSpec(-1, split_item, len(xs), None), xs, ws
    if group_type == 0:
        if len(ws) == 1:
            dims("weight", 0, ws[0], {3})
            mats = list(ws[0])
        else:
            for i, b in enumerate(ws):
                dims("weight", i, b, {2})
            mats = ws
        for i, a in enumerate(xs):
            dims("x", i, a, {2})
        if len(xs) == 1:
            if group_list is None:
                raise ValueError("group_list: expected the split of x's rows (group_type 0 with one x), got None")
            sizes = _gmm_sizes(group_list, group_list_type, xs[0].shape[0], "x's rows")
        else:
            if not single:
                raise ValueError(f"split_item: expected 2 or 3 with several x tensors and group_type 0, got {split_item}")
            sizes = [a.shape[0] for a in xs]
            if group_list is not None and _gmm_sizes(group_list, group_list_type, sum(sizes), "x's rows") != sizes:
                raise ValueError(f"group_list: expected the rows of each x tensor ({sizes}), got {group_list}")
        if len(sizes) != len(mats):
            raise ValueError(f"group_list: expected one group per weight ({len(mats)}), got {len(sizes)} groups")
        for i, b in enumerate(mats):
            reduction(i, xs[0 if len(xs) == 1 else i].shape[1], b)
        same_n(mats)
        return _GmmSpec(0, split_item, len(xs), sizes), xs, ws
    # group_type 2: the reduction axis is grouped: x (K, M) (MoE code passes X.T, a view), weight (M, N).
    if len(xs) != 1 or len(ws) != 1:
        raise ValueError(f"x, weight: expected one tensor each with group_type 2, got {len(xs)} and {len(ws)}")
    dims("x", 0, xs[0], {2})
    dims("weight", 0, ws[0], {2})
    reduction(0, xs[0].shape[1], ws[0])
    if group_list is None:
        raise ValueError("group_list: expected the split of the reduction dimension (group_type 2), got None")
    sizes = _gmm_sizes(group_list, group_list_type, xs[0].shape[1], "the reduction dimension (x's columns)")
    return _GmmSpec(2, split_item, 1, sizes), xs, ws


def _gmm_forward(spec, xs, ws):
    """The outputs of a checked call (a tuple: one tensor with split_item 2/3, one per group else)."""
    if spec.group_type == -1:
        if spec.single:
            out = torch.empty((sum(a.shape[0] for a in xs), ws[0].shape[1]), dtype=xs[0].dtype)
            first = 0
            for a, b in zip(xs, ws):
                _mm(a, b, out=out[first:first + a.shape[0]])
                first += a.shape[0]
            return (out,)
        return tuple(_mm(a.reshape(-1, a.shape[-1]), b).reshape(*a.shape[:-1], b.shape[1]) for a, b in zip(xs, ws))
    mats = list(ws[0]) if len(ws) == 1 and ws[0].dim() == 3 else ws
    starts = spec.starts()
    if spec.group_type == 0:
        xs = [_readable(a) for a in xs]  # once, not per group
        rows = [(xs[0], s) for s in starts[:-1]] if len(xs) == 1 else [(a, 0) for a in xs]
        if spec.single:
            out = torch.empty((starts[-1], mats[0].shape[1]), dtype=xs[0].dtype)
            for j, ((a, first), b) in enumerate(zip(rows, mats)):
                _mm(a[first:first + spec.sizes[j]], b, out=out[starts[j]:starts[j + 1]])
            return (out,)
        return tuple(_mm(a[first:first + spec.sizes[j]], b) for j, ((a, first), b) in enumerate(zip(rows, mats)))
    a, b = xs[0], ws[0]  # group_type 2: y_j = a[:, group j] @ b[group j]
    if spec.single:
        out = torch.empty((len(spec.sizes), a.shape[0], b.shape[1]), dtype=a.dtype)
        for j in range(len(spec.sizes)):
            _mm(a[:, starts[j]:starts[j + 1]], b[starts[j]:starts[j + 1]], out=out[j])
        return (out,)
    return tuple(_mm(a[:, starts[j]:starts[j + 1]], b[starts[j]:starts[j + 1]]) for j in range(len(spec.sizes)))


def _gmm_backward(spec, xs, ws, grads, needs):
    """The gradients of every x and weight tensor (None where not needed): GEMMs of the same kind."""
    nx = len(xs)
    dxs, dws = [None] * nx, [None] * len(ws)
    need_x, need_w = needs[:nx], needs[nx:]
    if spec.group_type == -1:
        first = 0
        for i, (a, b) in enumerate(zip(xs, ws)):
            a2 = a.reshape(-1, a.shape[-1])
            dy = grads[0][first:first + a2.shape[0]] if spec.single else grads[i].reshape(-1, b.shape[1])
            first += a2.shape[0]
            if need_x[i]:
                dxs[i] = _mm(dy, b.t()).reshape(a.shape)
            if need_w[i]:
                dws[i] = _mm(a2.t(), dy)
        return dxs, dws
    starts, sizes = spec.starts(), spec.sizes
    stacked = len(ws) == 1 and ws[0].dim() == 3
    mats = list(ws[0]) if stacked else ws
    if spec.group_type == 0:
        dy_of = (lambda j: grads[0][starts[j]:starts[j + 1]]) if spec.single else (lambda j: grads[j])
        if nx == 1:
            a = xs[0]
            dx = torch.empty_like(a, memory_format=torch.contiguous_format) if need_x[0] else None
            parts = [(a, starts[j]) for j in range(len(sizes))]
        else:
            dx = None
            parts = [(t, 0) for t in xs]
        dw_all = torch.empty(ws[0].shape, dtype=ws[0].dtype) if stacked and need_w[0] else None
        for j, b in enumerate(mats):
            a, first = parts[j]
            rows = a[first:first + sizes[j]]
            dy = dy_of(j)
            if nx == 1 and dx is not None:
                _mm(dy, b.t(), out=dx[first:first + sizes[j]])
            elif nx > 1 and need_x[j]:
                dxs[j] = _mm(dy, b.t())
            if stacked and dw_all is not None:
                _mm(rows.t(), dy, out=dw_all[j])
            elif not stacked and need_w[j]:
                dws[j] = _mm(rows.t(), dy)
        if nx == 1:
            dxs[0] = dx
        if stacked:
            dws[0] = dw_all
        return dxs, dws
    a, b = xs[0], ws[0]  # group_type 2: y_j = a[:, c_j] @ b[c_j]
    dy_of = (lambda j: grads[0][j]) if spec.single else (lambda j: grads[j])
    da_t = torch.empty((a.shape[1], a.shape[0]), dtype=a.dtype) if need_x[0] else None  # da, transposed (rows c_j)
    db = torch.empty(b.shape, dtype=b.dtype) if need_w[0] else None
    for j in range(len(sizes)):
        c = slice(starts[j], starts[j + 1])
        if da_t is not None:  # da[:, c_j] = dy_j b[c_j]^T, i.e. da^T[c_j] = b[c_j] dy_j^T
            _mm(b[c], dy_of(j).t(), out=da_t[c])
        if db is not None:  # db[c_j] = a[:, c_j]^T dy_j
            _mm(a[:, c].t(), dy_of(j), out=db[c])
    dxs[0] = da_t.t() if da_t is not None else None
    dws[0] = db
    return dxs, dws


class _GroupedMatmulFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, spec, *tensors):
        ctx.spec = spec
        ctx.save_for_backward(*tensors)
        return _gmm_forward(spec, tensors[:spec.nx], tensors[spec.nx:])

    @staticmethod
    def backward(ctx, *grads):
        with torch.no_grad():
            tensors = ctx.saved_tensors
            nx = ctx.spec.nx
            dxs, dws = _gmm_backward(ctx.spec, tensors[:nx], tensors[nx:], grads, ctx.needs_input_grad[1:])
        return (None,) + _once(tuple(dxs) + tuple(dws), tensors + grads)


def npu_grouped_matmul(x, weight, *, bias=None, scale=None, offset=None, antiquant_scale=None, antiquant_offset=None,
                       per_token_scale=None, group_list=None, activation_input=None, activation_quant_scale=None,
                       activation_quant_offset=None, split_item=0, group_type=None, group_list_type=0, act_type=0,
                       output_dtype=None, tuning_config=None):
    """torch_npu.npu_grouped_matmul on CPU tensors (FP16/BF16, no bias, not quantized) -> a list of
    tensors: one per group with split_item 0/1, one tensor with 2/3.

    group_type -1: y_i = x[i] @ weight[i]. 0: x one (M, K) tensor whose rows group_list splits
    (or several x tensors, split_item 2/3), weight one (g, K, N) tensor or g (K, N) tensors:
    y rows of group j = x rows of group j @ W_j. 2: x one (K, M) tensor (MoE code passes X.T) and
    weight one (M, N) tensor, group_list splitting M: y_j = x[:, group j] @ weight[group j]
    ((g, K, N) with split_item 2/3: the expert weight gradients). group_list: a list of ints or a
    1-D integer tensor, cumulative (group_list_type 0) or counts (1). None group_type: 0 with a
    group_list, else -1 (torch_npu's List[int] API). gmmav's GEMM: FP32 accumulation over the whole
    reduction, one rounding, the same bits for any thread count. Differentiable. tuning_config is a
    performance hint and is ignored. docs/python.md lists what is not supported."""
    absent = {"scale": scale, "offset": offset, "antiquant_scale": antiquant_scale, "antiquant_offset": antiquant_offset,
              "per_token_scale": per_token_scale, "activation_input": activation_input,
              "activation_quant_scale": activation_quant_scale, "activation_quant_offset": activation_quant_offset}
    spec, xs, ws = _gmm_check(x, weight, bias, absent, group_list, split_item, group_type, group_list_type, act_type,
                              output_dtype)
    if _wants_grad(*xs, *ws):
        return list(_GroupedMatmulFunction.apply(spec, *xs, *ws))
    return list(_gmm_forward(spec, xs, ws))


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


def _hccl_comm_name(group, rank):
    """torch_npu's ProcessGroupHCCL.get_hccl_comm_name(rank) for a torch.distributed group: its
    gmmav name, hcom(group) (collective the first time, as hcom is)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError("get_hccl_comm_name: expected torch.distributed to be initialised, got none")
    if isinstance(rank, bool) or not isinstance(rank, int):
        raise ValueError(f"rank: expected an int (this process's global rank), got {type(rank).__name__}")
    if rank != dist.get_rank():
        raise ValueError(f"rank: expected this process's global rank {dist.get_rank()} (torch.distributed.get_rank()), "
                         f"got {rank}")
    return hcom(group)


class _HcclBackend:
    """What group._get_backend(torch.device("npu")) gives under the stand-in: the one method MoE
    code asks of the HCCL backend."""

    def __init__(self, group):
        self._group = group

    def get_hccl_comm_name(self, rank, init_comm=True):
        return _hccl_comm_name(self._group, rank)

    def __repr__(self):
        return f"<gmmav stand-in for the HCCL backend of {self._group!r}>"


def _is_npu(device):
    kind = device if isinstance(device, str) else getattr(device, "type", None)
    return isinstance(kind, str) and kind.split(":")[0] == "npu"


def _patch_process_group(cls):
    """cls (torch.distributed.ProcessGroup) gets torch_npu's get_hccl_comm_name(rank), and, where
    torch has ProcessGroup._get_backend (torch >= 2.0), _get_backend("npu") answers with it."""
    if cls.__dict__.get("_gmmav_patched"):
        return

    def get_hccl_comm_name(self, rank, init_comm=True):
        return _hccl_comm_name(self, rank)

    cls.get_hccl_comm_name = get_hccl_comm_name
    original = getattr(cls, "_get_backend", None)
    if original is not None:
        def _get_backend(self, device):
            return _HcclBackend(self) if _is_npu(device) else original(self, device)

        cls._get_backend = _get_backend
    cls._gmmav_patched = True


def _name_npu_device():
    """torch.device("npu") as torch_npu makes it exist (torch >= 2.1: the PrivateUse1 backend's
    name), so that MoE code can write group._get_backend(torch.device("npu"))."""
    rename = getattr(getattr(torch, "utils", None), "rename_privateuse1_backend", None)
    current = getattr(torch._C, "_get_privateuse1_backend_name", None)
    if rename is None or current is None or current() != "privateuseone":
        return
    try:
        rename("npu")
    except Exception:  # noqa: BLE001 - best effort: the string "npu" works as well
        pass


def patch_torch_npu():
    """On a machine without torch_npu: installs a ``torch_npu`` module in sys.modules whose
    ``npu_gmm_alltoallv``, ``npu_alltoallv_gmm`` and ``npu_grouped_matmul`` are gmmav's, and gives
    torch.distributed process groups torch_npu's ``get_hccl_comm_name(rank)`` (and
    ``_get_backend(torch.device("npu"))`` where torch has ``_get_backend``), returning
    ``hcom(group)``; so MoE code written for torch_npu runs unchanged. Returns the module. With a
    real torch_npu installed nothing is changed (the real one is returned)."""
    existing = sys.modules.get("torch_npu")
    if existing is not None and not getattr(existing, "__gmmav__", False):
        return existing
    if existing is None and importlib.util.find_spec("torch_npu") is not None:
        import torch_npu  # the real one

        return torch_npu
    import torch.distributed as dist

    if dist.is_available():
        _patch_process_group(dist.ProcessGroup)
        _name_npu_device()
    if existing is not None:
        return existing
    mod = types.ModuleType("torch_npu", "gmmav's stand-in for torch_npu (gmmav.torch.patch_torch_npu)")
    mod.npu_gmm_alltoallv = npu_gmm_alltoallv
    mod.npu_alltoallv_gmm = npu_alltoallv_gmm
    mod.npu_grouped_matmul = npu_grouped_matmul
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
