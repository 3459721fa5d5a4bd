"""Both operators and the MoE layer written as plain float64 torch ops over ALL ranks in one process
(the golden of the autograd tests: torch's float64 autograd differentiates these), and the
per-GEMM comparison of gmmav's gradients with them.

Counts c[s][d][j]: rows rank s sends to rank d's expert j (dispatch), or rows rank s's expert j
sends to rank d (combine): cases.Case's array, used by both ops as their docs index it."""
import torch

import cases


def _g_offset(c, s, d, j):
    """Offset of block g = d*e + j in rank s's g-ordered rows (dispatch gmmX, combine y)."""
    e = len(c[0][0])
    flat = [c[s][dd][jj] for dd in range(len(c)) for jj in range(e)]
    return sum(flat[:d * e + j])


def _combine_offset(c, s, j, d):
    """Offset of block (expert j, destination d) in rank s's expert-major, destination-minor rows."""
    W = len(c)
    return sum(c[s][dd][jj] for jj in range(j) for dd in range(W)) + sum(c[s][dd][j] for dd in range(d))


def dispatch64(c, xs, ws):
    """Every rank's (gmm_y, permute_out): xs[s] (BSK_s, H1) in g order, ws[d] (e, H1, N1) float64."""
    W, e = len(c), len(c[0][0])
    ys, perms = [], []
    for d in range(W):
        out, perm = [], []
        for j in range(e):
            rows = torch.cat([xs[s][_g_offset(c, s, d, j):_g_offset(c, s, d, j) + c[s][d][j]] for s in range(W)])
            perm.append(rows)
            out.append(rows @ ws[d][j])
        ys.append(torch.cat(out))
        perms.append(torch.cat(perm))
    return ys, perms


def combine64(c, xs, ws):
    """Every rank's y: xs[s] (A_s, H1) expert-major destination-minor, ws[s] (e, H1, N1) float64."""
    W, e = len(c), len(c[0][0])
    ys = []
    for d in range(W):
        ys.append(torch.cat([xs[s][_combine_offset(c, s, j, d):_combine_offset(c, s, j, d) + c[s][d][j]] @ ws[s][j]
                             for s in range(W) for j in range(e)]))
    return ys


def transpose_counts(c):
    """The counts of the op that sends the rows back: ct[d][s][j] = c[s][d][j]."""
    W, e = len(c), len(c[0][0])
    return [[[c[s][d][j] for j in range(e)] for s in range(W)] for d in range(W)]


def grads64(fn, leaves, upstream):
    """float64 autograd of fn(leaves) (a list of outputs) with the given output gradients, and the
    same with every value replaced by its absolute value: the second gives, for a bilinear fn,
    the sums of |products| that docs/spec.md §4's accumulation bound needs. Leaves may be None."""
    def run(vals, ups):
        ls = [None if v is None else v.detach().double().clone().requires_grad_() for v in vals]
        outs = fn(ls)
        pairs = [(o, u.double()) for o, u in zip(outs, ups) if u is not None and o.numel() > 0]
        if pairs:
            torch.autograd.backward([p[0] for p in pairs], [p[1] for p in pairs])
        return [None if leaf is None else (leaf.grad if leaf.grad is not None else torch.zeros_like(leaf)) for leaf in ls]

    ref = run(leaves, upstream)
    absprod = run([None if v is None else v.abs() for v in leaves], [None if u is None else u.abs() for u in upstream])
    return ref, absprod


def check(got, ref, absprod, k, dtype, what, ratios):
    """gmmav's gradient within docs/spec.md §4's bound of the float64 one; records the worst err/bound."""
    ratios[what] = max(ratios.get(what, 0.0), cases.check_within_bound(got, ref, absprod, max(k, 1), dtype, what))
