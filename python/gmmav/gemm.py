"""gmmav's GEMM on torch tensors: ``matmul`` (docs/python.md, "The API") and ``gemm``, the one
product the ops' gradients and npu_grouped_matmul are made of — round(a @ b), FP32 accumulation
over the whole reduction, one rounding, the same bits for any thread count."""
import torch

from . import _native
from .arguments import check_flag, check_tensor
from .errors import raise_from_native
from .layouts import native_view, readable, weight_layout


def gemm(a, b, out=None):
    """round(a @ b) with gmmav's GEMM, a (m, k) and b (k, n) 2-D tensors of one dtype in any
    layout: a is copied when not row-major; b is read in place when row-major or a transposed
    view of a row-major tensor (gmmav's trans flag), else copied. `out` (m, n), row-major, is
    written when given."""
    a = readable(a)
    b, trans, _ = weight_layout(b, False)
    n = b.shape[0] if trans else b.shape[1]
    if out is None:
        out = torch.empty((a.shape[0], n), dtype=a.dtype)
    if a.shape[1] == 0:
        return out.zero_()  # an empty sum
    try:
        _native.matmul(native_view(a), native_view(b), native_view(out), trans)
    except _native.Error as e:
        raise_from_native(e)
    return out


def matmul(x, w, trans_w=False):
    """round(x @ W) with gmmav's GEMM: x (rows, k), W = w (k, n) or, with trans_w, w stored (n, k);
    FP16/BF16 in and out, FP32 accumulation over the whole k, one round-to-nearest-even, the same
    bits for any thread count (docs/spec.md §4). The gradients of both ops are made with it, not
    torch.matmul, whose CPU reduction order and BF16 accumulation are not specified. Views are
    taken as the ops take them: w transposed in place, anything else copied once."""
    check_tensor("x", x)
    check_tensor("w", w)
    check_flag("trans_w", trans_w)
    if x.dim() != 2 or w.dim() != 2:
        raise ValueError(f"x, w: expected 2-D tensors, got {x.dim()}-D and {w.dim()}-D")
    if w.dtype != x.dtype:
        raise ValueError(f"w: expected x's dtype {x.dtype}, got {w.dtype}")
    k = x.shape[1]
    if (w.shape[1] if trans_w else w.shape[0]) != k:
        raise ValueError(f"w: expected {'(n, k)' if trans_w else '(k, n)'} with k = {k} (x's columns), got {tuple(w.shape)}")
    return gemm(x, w.t() if trans_w else w)
