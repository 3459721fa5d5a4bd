"""The groups the ops run over (docs/python.md, "The API": ``hcom``, ``in_process_hcoms``).

An hcom name stands for this process's rank of a gmmav group (a _native.Group): over a
torch.distributed process group (gloo, the transport in _dist.py), the MPI world under mpirun,
or threads of this process. The names live in this process only; the ops look them up here.
"""
import datetime
import itertools
import os
import socket
import threading

import torch.distributed as dist

from . import _native
from ._dist import Transport
from .errors import raise_from_native

_groups = {}  # hcom name -> _native.Group (this process's rank of it)
_dist_names = {}  # torch.distributed process group -> hcom name
_mpi_name = None
_lock = threading.Lock()
_ids = itertools.count()


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
        raise_from_native(e)


def _hcom(group):
    """hcom() without the error mapping."""
    global _mpi_name
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
        raise_from_native(e)
    names = []
    with _lock:
        for r, g in enumerate(ranks):
            name = f"{g.name}/rank{r}"
            _groups[name] = g
            names.append(name)
    return names


def native_group(name):
    """This process's rank of the group an hcom name stands for (a _native.Group: ``rank``, ``size``,
    ``name``, ``timeout_ms``), or ValueError naming ``hcom``."""
    if not isinstance(name, str):
        raise ValueError(f"hcom: expected a str returned by gmmav.torch.hcom(), got {type(name).__name__}")
    g = _groups.get(name)
    if g is None:
        raise ValueError(f"hcom: expected a name returned by gmmav.torch.hcom() in this process, got {name!r}")
    return g
