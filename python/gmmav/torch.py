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
"Weight cache". Outputs live in memory kept resident between calls: ``set_output_pool_bytes``,
``output_pool_info``; docs/python.md, "Outputs".

Errors: ValueError for bad arguments (gmmav's message: parameter, expected, got), RuntimeError for
cross-rank mismatches, timeouts and broken groups, MemoryError when the call's memory cannot be had.
Nothing is written on error (y and mm_y are allocated by the call and not returned).

This module only gathers the package's public names in one place (the name users and docs know);
each lives in its own module: gmmav.distributed (groups), gmmav.ops (the ops, autograd),
gmmav.torch_ops (torch.ops.gmmav.*), gmmav.grouped_matmul, gmmav.gemm (matmul), gmmav.nn
(MoEExperts), gmmav.weight_cache, gmmav.compat.torch_npu (the stand-in).
"""
from . import torch_ops  # noqa: F401 - registers torch.ops.gmmav.* on import
from .compat.torch_npu import patch_torch_npu
from .distributed import _groups, hcom, in_process_hcoms  # noqa: F401 - _groups: read by scripts written before the split
from .gemm import matmul
from .grouped_matmul import npu_grouped_matmul
from .nn import MoEExperts
from .ops import npu_alltoallv_gmm, npu_gmm_alltoallv
from .output_pool import output_pool_info, set_output_pool_bytes
from .weight_cache import clear_weight_cache, set_weight_cache_bytes, weight_cache_info

__all__ = ["npu_gmm_alltoallv", "npu_alltoallv_gmm", "npu_grouped_matmul", "matmul", "MoEExperts", "hcom", "patch_torch_npu",
           "in_process_hcoms", "set_weight_cache_bytes", "clear_weight_cache", "weight_cache_info", "set_output_pool_bytes",
           "output_pool_info"]
