"""The torch.distributed transport of gmmav's third backend (python/src/torch_dist_transport.hpp).

The C++ exchange algorithm decides what moves where; this object only moves bytes over a
dedicated gloo process group (created by gmmav.torch.hcom with gmmav's timeout, so
that gloo's own waits end at that timeout too). Called from the rank's thread that called
the operator, with the GIL; its own threads wait for the transfers it started.
"""
import ctypes
import queue
import threading

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
        self._lanes = {}  # 2 * peer (+ 1: receives) -> the queue of its waiting thread

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

    # The exchange's transfers (python/src/torch_dist_transport.hpp): posted here, then waited for
    # on a thread per peer and direction, in posting order. torch cannot test a point-to-point
    # transfer without blocking (D97), so that thread waits (without the GIL) and sets its mark.

    def send(self, dst, tag, addr, nbytes, mark):
        """Starts sending `nbytes` at `addr` to group rank `dst`; mark.set(...) once it completed."""
        buf = _bytes_at(addr, nbytes)
        self._watch(2 * dst, dist.isend(buf, self.globals[dst], group=self.group, tag=tag), buf, mark)

    def recv(self, src, tag, addr, nbytes, mark):
        """Starts receiving `nbytes` at `addr` from group rank `src`; mark.set(...) once it completed."""
        buf = _bytes_at(addr, nbytes)
        self._watch(2 * src + 1, dist.irecv(buf, self.globals[src], group=self.group, tag=tag), buf, mark)

    def _watch(self, lane, work, buf, mark):
        queue_ = self._lanes.get(lane)
        if queue_ is None:
            queue_ = self._lanes[lane] = queue.SimpleQueue()
            threading.Thread(target=_wait_in_order, args=(queue_,), name=f"gmmav-transfers-{lane}", daemon=True).start()
        queue_.put((work, buf, mark))

    def close(self):
        """Ends the waiting threads once they waited for what they hold."""
        for queue_ in self._lanes.values():
            queue_.put(None)
        self._lanes = {}

    def __del__(self):
        self.close()


def _wait_in_order(queue_):
    """A waiting thread: each transfer in posting order until close(). gloo's wait ends at the
    group's timeout (gmmav's for the group it creates); the buffer stays alive until then."""
    while True:
        item = queue_.get()
        if item is None:
            return
        work, buf, mark = item
        try:
            work.wait()
            failure = ""
        except RuntimeError as e:
            failure = str(e) or "the transfer failed"
        del work, buf, item
        mark.set(failure)
