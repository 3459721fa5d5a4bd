"""gmmav: the fused MoE operators GroupedMatMul -> Unpermute -> AlltoAllv (combine) and its mirror
AlltoAllv -> Permute -> GroupedMatMul (dispatch), each with a shared-expert MatMul, on CPUs.

The PyTorch face is ``gmmav.torch`` (torch_npu's ``npu_gmm_alltoallv`` and ``npu_alltoallv_gmm`` on CPU tensors, over
torch.distributed or MPI); see docs/python.md. ``with_mpi``: whether this gmmav was built with its MPI backend
(GMMAV_WITH_MPI).
"""
from ._native import compute_threads, launched_by_mpi, with_mpi  # noqa: F401

__all__ = ["compute_threads", "launched_by_mpi", "with_mpi", "torch"]

try:  # gmmav.torch needs PyTorch; the package itself does not.
    from . import torch  # noqa: F401
except ImportError as _e:  # pragma: no cover - depends on the machine
    if getattr(_e, "name", None) != "torch":
        raise
