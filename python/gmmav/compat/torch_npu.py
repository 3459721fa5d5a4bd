"""gmmav's stand-in for torch_npu (docs/python.md, "The API": ``patch_torch_npu``): MoE code written
for the accelerator imports ``torch_npu`` and asks a process group for its HCCL comm name; on a
machine without torch_npu this module answers both with gmmav's ops and groups.
"""
import importlib.util
import sys
import types

import torch
import torch.distributed as dist

from ..distributed import hcom
from ..grouped_matmul import npu_grouped_matmul
from ..ops import npu_alltoallv_gmm, npu_gmm_alltoallv


def _hccl_comm_name(group, rank):
    """torch_npu's ProcessGroupHCCL.get_hccl_comm_name(rank) for a torch.distributed group: its
    gmmav name, hcom(group) (collective the first time, as hcom is)."""
    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError("get_hccl_comm_name: expected torch.distributed to be initialised, got none")
    if isinstance(rank, bool) or not isinstance(rank, int):
        raise ValueError(f"rank: expected an int (this process's global rank), got {type(rank).__name__}")
    if rank != dist.get_rank():
        raise ValueError(f"rank: expected this process's global rank {dist.get_rank()} (torch.distributed.get_rank()), "
                         f"got {rank}")
    return hcom(group)


class _HcclBackend:
    """What group._get_backend(torch.device("npu")) gives under the stand-in: the one method MoE
    code asks of the HCCL backend."""

    def __init__(self, group):
        self._group = group

    def get_hccl_comm_name(self, rank, init_comm=True):
        return _hccl_comm_name(self._group, rank)

    def __repr__(self):
        return f"<gmmav stand-in for the HCCL backend of {self._group!r}>"


def _is_npu(device):
    kind = device if isinstance(device, str) else getattr(device, "type", None)
    return isinstance(kind, str) and kind.split(":")[0] == "npu"


def _patch_process_group(cls):
    """cls (torch.distributed.ProcessGroup) gets torch_npu's get_hccl_comm_name(rank), and, where
    torch has ProcessGroup._get_backend (torch >= 2.0), _get_backend("npu") answers with it."""
    if cls.__dict__.get("_gmmav_patched"):
        return

    def get_hccl_comm_name(self, rank, init_comm=True):
        return _hccl_comm_name(self, rank)

    cls.get_hccl_comm_name = get_hccl_comm_name
    original = getattr(cls, "_get_backend", None)
    if original is not None:
        def _get_backend(self, device):
            return _HcclBackend(self) if _is_npu(device) else original(self, device)

        cls._get_backend = _get_backend
    cls._gmmav_patched = True


def _name_npu_device():
    """torch.device("npu") as torch_npu makes it exist (torch >= 2.1: the PrivateUse1 backend's
    name), so that MoE code can write group._get_backend(torch.device("npu"))."""
    rename = getattr(getattr(torch, "utils", None), "rename_privateuse1_backend", None)
    current = getattr(torch._C, "_get_privateuse1_backend_name", None)
    if rename is None or current is None or current() != "privateuseone":
        return
    try:
        rename("npu")
    except Exception:  # noqa: BLE001 - best effort: the string "npu" works as well
        pass


def patch_torch_npu():
    """On a machine without torch_npu: installs a ``torch_npu`` module in sys.modules whose
    ``npu_gmm_alltoallv``, ``npu_alltoallv_gmm`` and ``npu_grouped_matmul`` are gmmav's, and gives
    torch.distributed process groups torch_npu's ``get_hccl_comm_name(rank)`` (and
    ``_get_backend(torch.device("npu"))`` where torch has ``_get_backend``), returning
    ``hcom(group)``; so MoE code written for torch_npu runs unchanged. Returns the module. With a
    real torch_npu installed nothing is changed (the real one is returned)."""
    existing = sys.modules.get("torch_npu")
    if existing is not None and not getattr(existing, "__gmmav__", False):
        return existing
    if existing is None and importlib.util.find_spec("torch_npu") is not None:
        import torch_npu  # the real one

        return torch_npu
    if dist.is_available():
        _patch_process_group(dist.ProcessGroup)
        _name_npu_device()
    if existing is not None:
        return existing
    mod = types.ModuleType("torch_npu", "gmmav's stand-in for torch_npu (gmmav.torch.patch_torch_npu)")
    mod.npu_gmm_alltoallv = npu_gmm_alltoallv
    mod.npu_alltoallv_gmm = npu_alltoallv_gmm
    mod.npu_grouped_matmul = npu_grouped_matmul
    mod.__gmmav__ = True
    sys.modules["torch_npu"] = mod
    return mod
