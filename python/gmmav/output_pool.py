"""The ops' outputs in memory gmmav keeps resident between calls (docs/python.md, "Outputs"; D102).

torch.empty gives an output of a MiB or more fresh pages from glibc, and the call that writes it
faults every page in (1.5-2 ms of a 35 ms decode call, measured). gmmav._native keeps freed output
blocks by size class up to a budget; an output is torch.frombuffer over one, so its storage holds
the block and gives it back when the last tensor on that storage is freed. The tensors are plain
CPU tensors; their storage cannot be resized (``resize_`` to a larger size raises).
"""
import math

import torch

from . import _native

_MIN_BYTES = 1 << 16  # below this glibc's heap serves torch.empty without fresh pages: no block
_itemsize = {}


def empty(shape, dtype, name):
    """An uninitialised output tensor `name` of `shape` and `dtype` on a pooled block (torch.empty
    for small ones, or when the pool is off). MemoryError naming the output when its memory cannot
    be had (the C++ Plan checks the counts it came from only once the outputs exist)."""
    numel = math.prod(shape)
    if dtype not in _itemsize:
        _itemsize[dtype] = torch.empty(0, dtype=dtype).element_size()
    nbytes = numel * _itemsize[dtype]
    if nbytes < _MIN_BYTES or not _native.output_pool_enabled():
        return torch.empty(shape, dtype=dtype)
    why = "got a size no machine has"
    if nbytes < 1 << 62:
        try:
            return torch.frombuffer(_native.output_block(nbytes), dtype=dtype, count=numel).view(shape)
        except MemoryError:
            why = "got an allocation failure"
    raise MemoryError(f"{name}: expected host memory for a {tuple(shape)} {str(dtype).replace('torch.', '')} output "
                      f"({nbytes} bytes), {why}")


def set_output_pool_bytes(n):
    """Keeps at most ``n`` bytes of freed output blocks for the next calls; 0 turns the pool off
    (outputs from torch.empty) and frees what it kept. Default: an eighth of the physical memory,
    at most 1 GiB. docs/python.md, "Outputs"."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n: expected an integer >= 0 (bytes; 0 turns the output pool off), got {n!r}")
    _native.set_output_pool_bytes(n)


def output_pool_info():
    """-> dict: ``limit_bytes`` (the budget), ``bytes`` and ``blocks`` (freed blocks kept now),
    ``reused`` (outputs given a kept block), ``allocated`` (outputs given a new one)."""
    return dict(_native.output_pool_info())
