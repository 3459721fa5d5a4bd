"""``MoEExperts``: an expert-parallel MoE layer on gmmav's two ops (docs/python.md, "Training")."""
import torch

from .distributed import native_group
from .layouts import NATIVE_DTYPES
from .ops import npu_alltoallv_gmm, npu_gmm_alltoallv

_ACTIVATIONS = {"silu": torch.nn.functional.silu, "gelu": torch.nn.functional.gelu}


class MoEExperts(torch.nn.Module):
    """This rank's experts of an expert-parallel MoE layer: dispatch (W1) -> activation -> combine (W2).

        h = npu_alltoallv_gmm(x, w1)        routed rows travel to their expert's rank, x W1_j there
        a = act(h)                          in FP32, rounded once to the layer's dtype
        y = npu_gmm_alltoallv(a, w2)        a W2_j, rows travel back to the rank they came from

    x (BSK, hidden) holds this rank's routed token copies sorted by global expert g = d*e + j
    (send_counts[g] of them for each); y (BSK, hidden) is the experts' outputs in the same order
    (weighting by router probabilities and summing a token's K copies are the caller's).
    recv_counts are the rows this rank's experts receive (docs/dispatch-op.md §2); combine gets
    the two arrays exchanged. With ``shared_ffn`` a shared expert runs on ``shared_x`` (BS,
    hidden) inside the same two calls (their mm_x slots): shared_y = act(shared_x S1) S2.

    Parameters: w1 (e, hidden, ffn), w2 (e, ffn, hidden), shared_w1 (hidden, shared_ffn),
    shared_w2 (shared_ffn, hidden), in ``dtype`` (FP16 or BF16). Forward and backward are
    collective over ``hcom``'s group."""

    def __init__(self, hcom, ep_world_size, num_local_experts, hidden, ffn, *, shared_ffn=None, activation="silu",
                 dtype=torch.bfloat16, generator=None):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation: expected one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        if dtype not in NATIVE_DTYPES:
            raise ValueError(f"dtype: expected torch.float16 or torch.bfloat16, got {dtype}")
        for name, v in (("num_local_experts", num_local_experts), ("hidden", hidden), ("ffn", ffn)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {v!r}")
        native_group(hcom)  # a clear error now rather than at the first forward
        self.hcom, self.ep_world_size, self.activation = hcom, ep_world_size, activation
        self.keep_intermediates = False  # True: self.intermediates holds h, a (and shared) with their grads retained

        def param(*shape):  # N(0, 1/fan_in) in FP32, rounded once
            return torch.nn.Parameter((torch.randn(*shape, generator=generator) / shape[-2] ** 0.5).to(dtype))

        self.w1 = param(num_local_experts, hidden, ffn)
        self.w2 = param(num_local_experts, ffn, hidden)
        if shared_ffn is not None:
            self.shared_w1 = param(hidden, shared_ffn)
            self.shared_w2 = param(shared_ffn, hidden)
        else:
            self.shared_w1 = self.shared_w2 = None
        self.intermediates = {}

    def _act(self, h):
        return _ACTIVATIONS[self.activation](h.float()).to(h.dtype)

    def forward(self, x, send_counts, recv_counts, shared_x=None):
        """-> (y, shared_y); shared_y is None without the shared expert."""
        if (shared_x is None) != (self.shared_w1 is None):
            raise ValueError("shared_x: expected a (BS, hidden) tensor exactly when the layer has a shared expert "
                             f"(shared_ffn), got {'None' if shared_x is None else 'a tensor'} and "
                             f"{'no' if self.shared_w1 is None else 'a'} shared expert")
        h, mm_h, _ = npu_alltoallv_gmm(x, self.w1, self.hcom, self.ep_world_size, send_counts, recv_counts,
                                       mm_x=shared_x, mm_weight=self.shared_w1)
        a = self._act(h)
        mm_a = self._act(mm_h) if mm_h is not None else None
        y, mm_y = npu_gmm_alltoallv(a, self.w2, self.hcom, self.ep_world_size, recv_counts, send_counts,
                                    mm_x=mm_a, mm_weight=self.shared_w2)
        if self.keep_intermediates:
            self.intermediates = {"h": h, "a": a, "shared_h": mm_h, "shared_a": mm_a}
            for t in self.intermediates.values():
                if t is not None and t.requires_grad:
                    t.retain_grad()
        return y, mm_y
