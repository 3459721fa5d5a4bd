"""What gmmav reads of a tensor (docs/python.md, "Views"): row-major tensors, handed to gmmav._native
as (data_ptr, dtype, shape, row-major strides) tuples."""
import torch

NATIVE_DTYPES = {torch.float16: 0, torch.bfloat16: 1}  # torch dtype -> gmmav._native's dtype code


# Layouts (docs/python.md, "Views"). gmmav reads row-major tensors. A tensor torch calls
# contiguous is passed as it is; a weight whose last two dimensions are a transposed view of a
# row-major tensor (w.transpose(-1, -2), w.permute(0, 2, 1), w.t(), w.T) is passed as that tensor
# with its trans flag flipped: the same bytes, no copy. Anything else (expanded, sliced, other
# permutations) is copied once with .contiguous(). Strides never reach gmmav as torch has them:
# native_view gives the row-major strides of the (contiguous) tensor it is handed, so a broadcast
# tensor (all strides 0) is never read as if it were dense.

def readable(t):
    """t when row-major, else a row-major copy (one per call)."""
    return t if t.is_contiguous() else t.contiguous()


def weight_layout(w, trans):
    """-> (tensor gmmav reads, its trans flag, whether the flag was flipped)."""
    if w.is_contiguous():
        return w, trans, False
    if w.dim() >= 2:
        wt = w.transpose(-1, -2)
        if wt.is_contiguous():
            return wt, not trans, True
    return w.contiguous(), trans, False


def native_view(t):
    """(data_ptr, dtype, shape, row-major strides) of a contiguous tensor, for gmmav._native."""
    if not t.is_contiguous():
        raise AssertionError("gmmav internal: native_view of a non-contiguous tensor")
    strides, step = [], 1
    for d in reversed(t.shape):
        strides.append(step)
        step *= d
    return (t.data_ptr(), NATIVE_DTYPES[t.dtype], tuple(t.shape), tuple(reversed(strides)))


def op_layouts(gmm_x, gmm_weight, mm_x, mm_weight, trans_gmm, trans_mm):
    """The tensors gmmav reads and their flags -> (gmm_x, gmm_weight, mm_x, mm_weight, trans_gmm,
    trans_mm, gmm_weight flipped, mm_weight flipped)."""
    x = readable(gmm_x)
    w, trans_gmm, flip_gmm = weight_layout(gmm_weight, trans_gmm)
    mx = readable(mm_x) if mm_x is not None else None
    flip_mm = False
    mw = mm_weight
    if mm_weight is not None:
        mw, trans_mm, flip_mm = weight_layout(mm_weight, trans_mm)
    return x, w, mx, mw, trans_gmm, trans_mm, flip_gmm, flip_mm
