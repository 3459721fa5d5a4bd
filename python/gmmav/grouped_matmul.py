"""torch_npu's ``npu_grouped_matmul`` on CPU tensors, on gmmav's GEMM (docs/python.md,
"npu_grouped_matmul"): the grouped GEMMs MoE code computes its expert weights' gradients with.

Every product is one 2-D GEMM y = round(a @ b) (gemm.gemm), FP32 accumulation over the whole
reduction, written once into its place in the output; its gradients are GEMMs of the same kind.
"""
import itertools

import torch

from .arguments import check_cpu_16bit, int_list, int_tensor
from .backward import refuse_double_backward, wants_grad
from .gemm import gemm
from .layouts import readable


class _GmmSpec:
    """A checked npu_grouped_matmul call: group_type (-1, 0, 2), split_item, how many of the
    tensors are x's, and the group sizes along the grouped axis (rows of x for 0, the reduction
    for 2; None for -1)."""

    def __init__(self, group_type, split_item, nx, sizes):
        self.group_type, self.split_item, self.nx, self.sizes = group_type, split_item, nx, sizes

    @property
    def single(self):
        return self.split_item in (2, 3)

    def starts(self):
        return list(itertools.accumulate([0] + self.sizes))


def _gmm_tensors(param, values):
    if isinstance(values, torch.Tensor) or not isinstance(values, (list, tuple)):
        raise ValueError(f"{param}: expected a list of tensors, got {type(values).__name__}")
    if not 1 <= len(values) <= 128:
        raise ValueError(f"{param}: expected a list of 1 to 128 tensors (torch_npu's limit), got {len(values)}")
    for i, t in enumerate(values):
        check_cpu_16bit(f"{param}[{i}]", t, " (gmmav's GEMM)")
    return list(values)


def _gmm_int(param, v, allowed):
    if isinstance(v, bool) or not isinstance(v, int) or v not in allowed:
        raise ValueError(f"{param}: expected one of {sorted(allowed)}, got {v!r}")
    return v


def _gmm_sizes(group_list, group_list_type, length, what):
    """Group sizes from group_list (cumulative or counts), which must cover `length`."""
    values = int_tensor("group_list", group_list) if isinstance(group_list, torch.Tensor) else \
        int_list("group_list", group_list)
    if not values:
        raise ValueError("group_list: expected at least one group, got an empty list")
    if any(v < 0 for v in values):
        raise ValueError(f"group_list: expected non-negative values, got {values}")
    if group_list_type == 0:
        if any(b < a for a, b in zip(values, values[1:])):
            raise ValueError(f"group_list: expected a non-decreasing cumulative sum (group_list_type 0), got {values}")
        if values[-1] != length:
            raise ValueError(f"group_list: expected its last value (cumulative, group_list_type 0) to be {what} "
                             f"{length}, got {values[-1]}")
        return [b - a for a, b in zip([0] + values[:-1], values)]
    if sum(values) != length:
        raise ValueError(f"group_list: expected counts (group_list_type 1) summing to {what} {length}, got sum {sum(values)}")
    return values


def _gmm_check(x, weight, bias, absent, group_list, split_item, group_type, group_list_type, act_type, output_dtype):
    """torch_npu's rules for the non-quantized calls gmmav computes -> (_GmmSpec, xs, ws)."""
    xs = _gmm_tensors("x", x)
    ws = _gmm_tensors("weight", weight)
    dtype = xs[0].dtype
    for param, ts in (("x", xs), ("weight", ws)):
        for i, t in enumerate(ts):
            if t.dtype != dtype:
                raise ValueError(f"{param}[{i}]: expected x[0]'s dtype {dtype}, got {t.dtype}")
    if bias is not None and not (isinstance(bias, (list, tuple)) and len(bias) == 0):
        raise ValueError("bias: expected None (gmmav's npu_grouped_matmul has no bias; add it afterwards), got "
                         f"{type(bias).__name__}")
    for name, v in absent.items():
        if v is not None and not (isinstance(v, (list, tuple)) and len(v) == 0):
            raise ValueError(f"{name}: expected None (quantized and activation-fused calls are not supported by gmmav), "
                             f"got {type(v).__name__}")
    if act_type != 0:
        raise ValueError(f"act_type: expected 0 (no activation; gmmav fuses none), got {act_type!r}")
    if output_dtype is not None and output_dtype != dtype:
        raise ValueError(f"output_dtype: expected None or x's dtype {dtype}, got {output_dtype}")
    split_item = _gmm_int("split_item", split_item, {0, 1, 2, 3})
    if group_type is None:  # torch_npu's List[int] API: a group_list splits x's rows
        group_type = -1 if group_list is None else 0
    if group_type == 1:
        raise ValueError("group_type: expected -1, 0 or 2, got 1 (N-axis grouping: torch_npu does not support it on "
                         "Atlas A2/A3 either)")
    group_type = _gmm_int("group_type", group_type, {-1, 0, 2})
    if group_list_type is None:
        group_list_type = 0
    if group_list_type == 2:
        raise ValueError("group_list_type: expected 0 (cumulative) or 1 (counts), got 2 (torch_npu: int8 only)")
    group_list_type = _gmm_int("group_list_type", group_list_type, {0, 1})
    if group_list is not None and not isinstance(group_list, (list, tuple, torch.Tensor)):
        raise ValueError(f"group_list: expected None, a list of ints or a 1-D int64 tensor, got {type(group_list).__name__}")
    single = split_item in (2, 3)

    def dims(param, i, t, allowed):
        if t.dim() not in allowed:
            want = " or ".join(str(d) for d in sorted(allowed)) if len(allowed) < 3 else f"{min(allowed)}- to {max(allowed)}"
            raise ValueError(f"{param}[{i}]: expected a {want}-D tensor, got {t.dim()}-D")

    def reduction(i, k_x, w, what="weight"):
        if w.shape[0] != k_x:
            raise ValueError(f"{what}[{i}]: expected {k_x} rows (x's reduction dimension), got shape {tuple(w.shape)}")

    def same_n(mats):
        ns = {m.shape[-1] for m in mats}
        if single and len(ns) > 1:
            raise ValueError(f"weight: expected one N for every group (split_item {split_item}: one output), got {sorted(ns)}")

    if group_type == -1:
        if group_list is not None:
            raise ValueError("group_list: expected None with group_type -1 (no grouping), got a group list")
        if len(xs) != len(ws):
            raise ValueError(f"x, weight: expected as many x tensors as weights (group_type -1), got {len(xs)} and {len(ws)}")
        for i, (a, b) in enumerate(zip(xs, ws)):
            dims("x", i, a, {2} if single else {2, 3, 4, 5, 6})
            dims("weight", i, b, {2})
            reduction(i, a.shape[-1], b)
        same_n(ws)
        return _GmmSpec(-1, split_item, len(xs), None), xs, ws
    if group_type == 0:
        if len(ws) == 1:
            dims("weight", 0, ws[0], {3})
            mats = list(ws[0])
        else:
            for i, b in enumerate(ws):
                dims("weight", i, b, {2})
            mats = ws
        for i, a in enumerate(xs):
            dims("x", i, a, {2})
        if len(xs) == 1:
            if group_list is None:
                raise ValueError("group_list: expected the split of x's rows (group_type 0 with one x), got None")
            sizes = _gmm_sizes(group_list, group_list_type, xs[0].shape[0], "x's rows")
        else:
            if not single:
                raise ValueError(f"split_item: expected 2 or 3 with several x tensors and group_type 0, got {split_item}")
            sizes = [a.shape[0] for a in xs]
            if group_list is not None and _gmm_sizes(group_list, group_list_type, sum(sizes), "x's rows") != sizes:
                raise ValueError(f"group_list: expected the rows of each x tensor ({sizes}), got {group_list}")
        if len(sizes) != len(mats):
            raise ValueError(f"group_list: expected one group per weight ({len(mats)}), got {len(sizes)} groups")
        for i, b in enumerate(mats):
            reduction(i, xs[0 if len(xs) == 1 else i].shape[1], b)
        same_n(mats)
        return _GmmSpec(0, split_item, len(xs), sizes), xs, ws
    # group_type 2: the reduction axis is grouped: x (K, M) (MoE code passes X.T, a view), weight (M, N).
    if len(xs) != 1 or len(ws) != 1:
        raise ValueError(f"x, weight: expected one tensor each with group_type 2, got {len(xs)} and {len(ws)}")
    dims("x", 0, xs[0], {2})
    dims("weight", 0, ws[0], {2})
    reduction(0, xs[0].shape[1], ws[0])
    if group_list is None:
        raise ValueError("group_list: expected the split of the reduction dimension (group_type 2), got None")
    sizes = _gmm_sizes(group_list, group_list_type, xs[0].shape[1], "the reduction dimension (x's columns)")
    return _GmmSpec(2, split_item, 1, sizes), xs, ws


def _gmm_forward(spec, xs, ws):
    """The outputs of a checked call (a tuple: one tensor with split_item 2/3, one per group else)."""
    if spec.group_type == -1:
        if spec.single:
            out = torch.empty((sum(a.shape[0] for a in xs), ws[0].shape[1]), dtype=xs[0].dtype)
            first = 0
            for a, b in zip(xs, ws):
                gemm(a, b, out=out[first:first + a.shape[0]])
                first += a.shape[0]
            return (out,)
        return tuple(gemm(a.reshape(-1, a.shape[-1]), b).reshape(*a.shape[:-1], b.shape[1]) for a, b in zip(xs, ws))
    mats = list(ws[0]) if len(ws) == 1 and ws[0].dim() == 3 else ws
    starts = spec.starts()
    if spec.group_type == 0:
        xs = [readable(a) for a in xs]  # once, not per group
        rows = [(xs[0], s) for s in starts[:-1]] if len(xs) == 1 else [(a, 0) for a in xs]
        if spec.single:
            out = torch.empty((starts[-1], mats[0].shape[1]), dtype=xs[0].dtype)
            for j, ((a, first), b) in enumerate(zip(rows, mats)):
                gemm(a[first:first + spec.sizes[j]], b, out=out[starts[j]:starts[j + 1]])
            return (out,)
        return tuple(gemm(a[first:first + spec.sizes[j]], b) for j, ((a, first), b) in enumerate(zip(rows, mats)))
    a, b = xs[0], ws[0]  # group_type 2: y_j = a[:, group j] @ b[group j]
    if spec.single:
        out = torch.empty((len(spec.sizes), a.shape[0], b.shape[1]), dtype=a.dtype)
        for j in range(len(spec.sizes)):
            gemm(a[:, starts[j]:starts[j + 1]], b[starts[j]:starts[j + 1]], out=out[j])
        return (out,)
    return tuple(gemm(a[:, starts[j]:starts[j + 1]], b[starts[j]:starts[j + 1]]) for j in range(len(spec.sizes)))


def _gmm_backward(spec, xs, ws, grads, needs):
    """The gradients of every x and weight tensor (None where not needed): GEMMs of the same kind."""
    nx = len(xs)
    dxs, dws = [None] * nx, [None] * len(ws)
    need_x, need_w = needs[:nx], needs[nx:]
    if spec.group_type == -1:
        first = 0
        for i, (a, b) in enumerate(zip(xs, ws)):
            a2 = a.reshape(-1, a.shape[-1])
            dy = grads[0][first:first + a2.shape[0]] if spec.single else grads[i].reshape(-1, b.shape[1])
            first += a2.shape[0]
            if need_x[i]:
                dxs[i] = gemm(dy, b.t()).reshape(a.shape)
            if need_w[i]:
                dws[i] = gemm(a2.t(), dy)
        return dxs, dws
    starts, sizes = spec.starts(), spec.sizes
    stacked = len(ws) == 1 and ws[0].dim() == 3
    mats = list(ws[0]) if stacked else ws
    if spec.group_type == 0:
        dy_of = (lambda j: grads[0][starts[j]:starts[j + 1]]) if spec.single else (lambda j: grads[j])
        if nx == 1:
            a = xs[0]
            dx = torch.empty_like(a, memory_format=torch.contiguous_format) if need_x[0] else None
            parts = [(a, starts[j]) for j in range(len(sizes))]
        else:
            dx = None
            parts = [(t, 0) for t in xs]
        dw_all = torch.empty(ws[0].shape, dtype=ws[0].dtype) if stacked and need_w[0] else None
        for j, b in enumerate(mats):
            a, first = parts[j]
            rows = a[first:first + sizes[j]]
            dy = dy_of(j)
            if nx == 1 and dx is not None:
                gemm(dy, b.t(), out=dx[first:first + sizes[j]])
            elif nx > 1 and need_x[j]:
                dxs[j] = gemm(dy, b.t())
            if stacked and dw_all is not None:
                gemm(rows.t(), dy, out=dw_all[j])
            elif not stacked and need_w[j]:
                dws[j] = gemm(rows.t(), dy)
        if nx == 1:
            dxs[0] = dx
        if stacked:
            dws[0] = dw_all
        return dxs, dws
    a, b = xs[0], ws[0]  # group_type 2: y_j = a[:, c_j] @ b[c_j]
    dy_of = (lambda j: grads[0][j]) if spec.single else (lambda j: grads[j])
    da_t = torch.empty((a.shape[1], a.shape[0]), dtype=a.dtype) if need_x[0] else None  # da, transposed (rows c_j)
    db = torch.empty(b.shape, dtype=b.dtype) if need_w[0] else None
    for j in range(len(sizes)):
        c = slice(starts[j], starts[j + 1])
        if da_t is not None:  # da[:, c_j] = dy_j b[c_j]^T, i.e. da^T[c_j] = b[c_j] dy_j^T
            gemm(b[c], dy_of(j).t(), out=da_t[c])
        if db is not None:  # db[c_j] = a[:, c_j]^T dy_j
            gemm(a[:, c].t(), dy_of(j), out=db[c])
    dxs[0] = da_t.t() if da_t is not None else None
    dws[0] = db
    return dxs, dws


class _GroupedMatmulFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, spec, *tensors):
        ctx.spec = spec
        ctx.save_for_backward(*tensors)
        return _gmm_forward(spec, tensors[:spec.nx], tensors[spec.nx:])

    @staticmethod
    def backward(ctx, *grads):
        with torch.no_grad():
            tensors = ctx.saved_tensors
            nx = ctx.spec.nx
            dxs, dws = _gmm_backward(ctx.spec, tensors[:nx], tensors[nx:], grads, ctx.needs_input_grad[1:])
        return (None,) + refuse_double_backward(tuple(dxs) + tuple(dws), tensors + grads)


def npu_grouped_matmul(x, weight, *, bias=None, scale=None, offset=None, antiquant_scale=None, antiquant_offset=None,
                       per_token_scale=None, group_list=None, activation_input=None, activation_quant_scale=None,
                       activation_quant_offset=None, split_item=0, group_type=None, group_list_type=0, act_type=0,
                       output_dtype=None, tuning_config=None):
    """torch_npu.npu_grouped_matmul on CPU tensors (FP16/BF16, no bias, not quantized) -> a list of
    tensors: one per group with split_item 0/1, one tensor with 2/3.

    group_type -1: y_i = x[i] @ weight[i]. 0: x one (M, K) tensor whose rows group_list splits
    (or several x tensors, split_item 2/3), weight one (g, K, N) tensor or g (K, N) tensors:
    y rows of group j = x rows of group j @ W_j. 2: x one (K, M) tensor (MoE code passes X.T) and
    weight one (M, N) tensor, group_list splitting M: y_j = x[:, group j] @ weight[group j]
    ((g, K, N) with split_item 2/3: the expert weight gradients). group_list: a list of ints or a
    1-D integer tensor, cumulative (group_list_type 0) or counts (1). None group_type: 0 with a
    group_list, else -1 (torch_npu's List[int] API). gmmav's GEMM: FP32 accumulation over the whole
    reduction, one rounding, the same bits for any thread count. Differentiable. tuning_config is a
    performance hint and is ignored. docs/python.md lists what is not supported."""
    absent = {"scale": scale, "offset": offset, "antiquant_scale": antiquant_scale, "antiquant_offset": antiquant_offset,
              "per_token_scale": per_token_scale, "activation_input": activation_input,
              "activation_quant_scale": activation_quant_scale, "activation_quant_offset": activation_quant_offset}
    spec, xs, ws = _gmm_check(x, weight, bias, absent, group_list, split_item, group_type, group_list_type, act_type,
                              output_dtype)
    if wants_grad(*xs, *ws):
        return list(_GroupedMatmulFunction.apply(spec, *xs, *ws))
    return list(_gmm_forward(spec, xs, ws))
