"""The weight cache (docs/python.md, "Weight cache"; D78): the ops keep the packed weights gmmav
reads while torch says the weights are unchanged.

gmmav packs every expert weight for its GEMM kernel on each call unless it is handed the weights
packed already (gmmav::PackedWeights, _native.PackedWeights here). MoE weights are passed
unchanged to call after call (inference, micro-batches, recomputation), so the ops keep packed
weights keyed by what they read:
  the storage (its StorageImpl, identified by address while a weak reference to it is held, so
  no other storage can take that address), the storage's data pointer, the storage offset,
  shape, strides and dtype of the tensor gmmav reads (after layouts.op_layouts: a transposed view
  is its stored tensor with the flag flipped, so both name one entry), the trans flag, and the
  same for the shared expert's weight (one PackedWeights holds both);
and valid while the tensors' version counters (`_version`, bumped by every in-place write
torch sees, through any view) are the ones read before packing. A weight is packed into the
cache the second time a call sees it unchanged; the first call packs in the call as before and
only leaves a marker, so training, whose weights change every step, keeps nothing and pays
nothing. Entries are evicted least recently used beyond a byte budget (packed bytes), and
dropped once their storage is freed (at the next call that packs, or clear_weight_cache()).
"""
import collections
import os
import threading

from . import _native


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


class WeightCache:
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


cache = WeightCache()  # the one the ops use
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=cache.after_fork)


def set_weight_cache_bytes(n):
    """Sets the weight cache's budget: at most ``n`` bytes of packed weights are kept (least
    recently used evicted first); 0 turns the cache off and empties it. Default: a quarter of the
    physical memory. docs/python.md, "Weight cache"."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n: expected an integer >= 0 (bytes; 0 turns the weight cache off), got {n!r}")
    cache.set_limit(n)


def clear_weight_cache():
    """Drops every packed weight the ops keep. Call it after writing weights in a way torch's
    version counter does not see (through ``.data``, a numpy array or another process sharing the
    memory): the next calls pack the weights as they are then."""
    cache.clear()


def weight_cache_info():
    """-> dict: ``limit_bytes`` (the budget), ``bytes`` and ``entries`` (packed weights held now),
    ``hits`` (calls that used packed weights from the cache), ``misses`` (calls that did not),
    ``packs`` (weights packed into the cache)."""
    return cache.info()
