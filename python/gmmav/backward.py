"""What the differentiable entry points share (docs/python.md, "Autograd"): whether a call records
a graph, and the guard that makes double backward an error rather than a silent wrong answer."""
import torch


def wants_grad(*tensors):
    """Whether a call records an autograd node: grad mode on and an input that requires grad."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


# Double backward (create_graph=True): the ops' backward is computed once, as with
# torch.autograd.function.once_differentiable; each gradient then hangs from a node that raises
# when anything is differentiated through it. Unlike once_differentiable, the node is joined to
# every tensor the true gradient depends on (the op's inputs and the output gradients that require
# grad), so differentiating towards a weight raises too instead of finding it "unused".
_TWICE = (b"gmmav.torch: double backward (differentiating a gradient of npu_gmm_alltoallv, npu_alltoallv_gmm or "
          b"npu_grouped_matmul, e.g. after backward(create_graph=True)) is not supported")


def refuse_double_backward(grads, sources):
    """The gradients a backward returns; under create_graph=True each behind a node that raises."""
    if not torch.is_grad_enabled():
        return grads
    present = [i for i, t in enumerate(grads) if t is not None]
    deps = [t for t in sources if isinstance(t, torch.Tensor) and t.requires_grad]
    if not present or not deps:  # nothing differentiable upstream: the gradients are constants
        return grads
    err = torch._C._functions.DelayedError(_TWICE, len(present) + len(deps))
    wrapped = err(*[grads[i].detach() for i in present], *deps)
    wrapped = wrapped if isinstance(wrapped, tuple) else (wrapped,)
    out = list(grads)
    for i, t in zip(present, wrapped):
        out[i] = t
    return tuple(out)
