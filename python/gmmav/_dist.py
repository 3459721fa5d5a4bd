"""The torch.distributed transport of gmmav's third backend (python/src/torch_dist_communicator.cpp).

The C++ communicator decides what moves where; this object only moves bytes over a
dedicated gloo process group (created by gmmav.torch.hcom with gmmav's timeout, so
that gloo's own waits end at that timeout too). Called only from the rank's thread
that called the operator, with the GIL.
"""
import ctypes
import datetime
import time

import torch
import torch.distributed as dist


def _bytes_at(addr, nbytes):
    """A uint8 tensor over `nbytes` of memory at `addr` (no copy)."""
    return torch.frombuffer((ctypes.c_char * nbytes).from_address(addr), dtype=torch.uint8)


def _int64_at(addr, count):
    """An int64 tensor over `count` values at `addr` (no copy)."""
    return torch.frombuffer((ctypes.c_char * (8 * count)).from_address(addr), dtype=torch.int64)


def _global_rank(group, rank):
    get = getattr(dist, "get_global_rank", None) or dist.distributed_c10d._get_global_rank
    return get(group, rank)


class Transport:
    def __init__(self, group, timeout_ms):
        self.group = group
        self.size = dist.get_world_size(group)
        self.timeout_ms = timeout_ms
        self.globals = [_global_rank(group, r) for r in range(self.size)]

    # The count check's collectives (src/comm/count_check.hpp): started here, tested with done().
    # The C++ side owns the memory and keeps it while a collective may write it.

    def all_gather_into(self, addr, count, out_addr):
        """Starts gathering `count` int64 at `addr` from every rank: rank r's land at out_addr + 8*r*count."""
        mine = _int64_at(addr, count)
        out = _int64_at(out_addr, count * self.size)
        work = dist.all_gather(list(out.chunk(self.size)), mine, group=self.group, async_op=True)
        return (work, mine, out)

    def all_to_all_into(self, addr, count, out_addr):
        """Starts an all-to-all of `count` int64 per pair: [d*count] to rank d, rank s's at out_addr + 8*s*count."""
        mine = _int64_at(addr, count * self.size)
        out = _int64_at(out_addr, count * self.size)
        work = dist.all_to_all_single(out, mine, group=self.group, async_op=True)
        return (work, mine, out)

    def done(self, handle):
        """True once the collective completed (never blocks); raises its failure."""
        work = handle[0]
        if not work.is_completed():
            return False
        work.wait()
        return True

    def irecv(self, src, tag, addr, nbytes):
        buf = _bytes_at(addr, nbytes)
        return (dist.irecv(buf, self.globals[src], group=self.group, tag=tag), buf)

    def isend(self, dst, tag, addr, nbytes):
        buf = _bytes_at(addr, nbytes)
        return (dist.isend(buf, self.globals[dst], group=self.group, tag=tag), buf)

    def wait(self, handles, timeout_ms):
        deadline = time.monotonic() + timeout_ms / 1000.0
        for h in handles:
            work = h[0] if isinstance(h, tuple) else h
            left = max(deadline - time.monotonic(), 0.001)
            try:
                work.wait(datetime.timedelta(seconds=left))
            except RuntimeError as e:
                raise RuntimeError(f"no progress within {timeout_ms} ms (GMMAV_TIMEOUT_MS): {e}") from None
