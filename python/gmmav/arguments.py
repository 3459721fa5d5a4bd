"""The checks the ops make in Python before gmmav sees a call (docs/python.md, "Errors").

Each protects something the C++ Plan cannot see or name: that a value is a tensor at all, on the
CPU, of a dtype gmmav reads, with at most the 3 dims the binding carries, before its data pointer
is taken; Python ints that would not fit the binding's int64/int (a pybind TypeError otherwise);
the Python argument names where the tests and docs promise them (``gmm_x``, ``mm_weight``, ...).
Everything else — shapes, counts against the group, the shared expert's consistency — is the C++
Plan's, with its messages (``gmmX``, ``sendCounts``, ``epWorldSize``, ...).
"""
import operator

import torch

from .distributed import native_group
from .layouts import NATIVE_DTYPES

_INT64 = 1 << 63
_INT32 = 1 << 31


def int_list(param, values, what="ints"):
    """A list of Python ints from a list/tuple of integers (not bools) that fit int64."""
    if isinstance(values, torch.Tensor):
        return int_tensor(param, values)
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


def int_tensor(param, t):
    """A 1-D integer CPU tensor as a list of ints."""
    if t.device.type != "cpu":
        raise ValueError(f"{param}: expected a CPU tensor, got device {t.device}")
    if t.dim() != 1 or t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
        raise ValueError(f"{param}: expected a 1-D integer tensor, got {t.dim()}-D {t.dtype}")
    return [int(v) for v in t.tolist()]


def counts(param, values, tensor):
    """Counts from the list (or an integer tensor in its place) and/or, beyond torch_npu, the
    count tensor; as a list of ints."""
    from_tensor = None
    if tensor is not None:
        if not isinstance(tensor, torch.Tensor):
            raise ValueError(f"{param}_tensor: expected a tensor or None, got {type(tensor).__name__}")
        from_tensor = int_tensor(f"{param}_tensor", tensor)
    if values is None:
        if from_tensor is None:
            raise ValueError(f"{param}: expected a list of ints (or {param}_tensor), got None")
        return from_tensor
    out = int_list(param, values)
    if from_tensor is not None and from_tensor != out:
        raise ValueError(f"{param}_tensor: expected the same counts as {param} ({out}), got {from_tensor}")
    return out


def check_cpu_16bit(param, t, dtype_note=""):
    """A CPU tensor of gmmav's dtypes, or ValueError naming `param`."""
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{param}: expected a torch.Tensor, got {type(t).__name__}")
    if t.device.type != "cpu":
        raise ValueError(f"{param}: expected a CPU tensor, got device {t.device}")
    if t.dtype not in NATIVE_DTYPES:
        raise ValueError(f"{param}: expected dtype torch.float16 or torch.bfloat16{dtype_note}, got {t.dtype}")


def check_tensor(param, t):
    """An op's tensor argument: check_cpu_16bit, and at most the 3 dims gmmav._native carries."""
    check_cpu_16bit(param, t)
    if t.dim() > 3:
        raise ValueError(f"{param}: expected a 2-D or 3-D tensor, got {t.dim()}-D")


def check_flag(name, flag):
    """A flag argument: a bool (pybind would take 1 or 0, and name no parameter)."""
    if not isinstance(flag, bool):
        raise ValueError(f"{name}: expected a bool, got {type(flag).__name__}")


def check_op_arguments(gmm_x, gmm_weight, hcom, ep_world_size, send_counts, recv_counts, send_counts_tensor, recv_counts_tensor,
                       mm_x, mm_weight, trans_gmm_weight, trans_mm_weight):
    """The checks both ops make before gmmav sees the call -> (group, ep_world_size, send, recv)."""
    g = native_group(hcom)
    try:
        if isinstance(ep_world_size, bool):
            raise TypeError
        ep_world_size = operator.index(ep_world_size)
    except TypeError:
        raise ValueError(f"ep_world_size: expected an int, got {type(ep_world_size).__name__}") from None
    if not -_INT32 <= ep_world_size < _INT32:  # gmmav takes an int; it would name epWorldSize for any other value
        raise ValueError(f"ep_world_size: expected the group's size {g.size}, got {ep_world_size}")
    send = counts("send_counts", send_counts, send_counts_tensor)
    recv = counts("recv_counts", recv_counts, recv_counts_tensor)
    check_flag("trans_gmm_weight", trans_gmm_weight)
    check_flag("trans_mm_weight", trans_mm_weight)
    check_tensor("gmm_x", gmm_x)
    check_tensor("gmm_weight", gmm_weight)
    if (mm_x is None) != (mm_weight is None):
        raise ValueError("mm_x, mm_weight: expected both (the shared expert) or neither, got "
                         + ("mm_x only" if mm_weight is None else "mm_weight only"))
    if mm_x is not None:
        check_tensor("mm_x", mm_x)
        check_tensor("mm_weight", mm_weight)
        if mm_x.dtype != gmm_x.dtype or mm_weight.dtype != gmm_x.dtype:
            bad, t = ("mm_x", mm_x) if mm_x.dtype != gmm_x.dtype else ("mm_weight", mm_weight)
            raise ValueError(f"{bad}: expected gmm_x's dtype {gmm_x.dtype}, got {t.dtype}")
    if gmm_weight.dtype != gmm_x.dtype:
        raise ValueError(f"gmm_weight: expected gmm_x's dtype {gmm_x.dtype}, got {gmm_weight.dtype}")
    return g, ep_world_size, send, recv
