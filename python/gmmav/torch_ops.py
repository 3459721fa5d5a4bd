"""``torch.ops.gmmav.npu_gmm_alltoallv`` and ``torch.ops.gmmav.npu_alltoallv_gmm``: the ops registered
with torch.library under torch_npu's schemas (docs/python.md, "The API"). An absent optional
output is an empty tensor there (an operator schema cannot return None). No autograd through
torch.ops: the differentiable entry points are the Python functions (gmmav.ops).
"""
import torch

from .ops import npu_alltoallv_gmm, npu_gmm_alltoallv

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
