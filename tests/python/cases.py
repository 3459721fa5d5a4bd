"""Cases for the Python tests: inputs every rank can regenerate, the float64 golden and docs/spec.md §4's bound."""
import random
import threading

import torch

import gmmav.torch as gt


class Case:
    """W ranks, e experts each; counts[s][d][j] = rows rank s's expert j sends to rank d (docs/spec.md §2)."""

    def __init__(self, W, e, h1, n1, dtype, seed, shared=None, trans_gmm=False, trans_mm=False, pattern="random"):
        self.W, self.e, self.h1, self.n1, self.dtype, self.seed = W, e, h1, n1, dtype, seed
        self.shared, self.trans_gmm, self.trans_mm = shared, trans_gmm, trans_mm
        rng = random.Random(seed)
        c = [[[0] * e for _ in range(W)] for _ in range(W)]
        for s in range(W):
            for d in range(W):
                for j in range(e):
                    if pattern == "random":
                        c[s][d][j] = rng.randint(0, 9)
                    elif pattern == "skewed":  # nearly everything to rank 0's... expert 0 of every rank, rest tiny
                        c[s][d][j] = rng.randint(150, 300) if (j == 0 and d == 0) else rng.randint(0, 2)
                    elif pattern == "heavy":  # as skewed, with more tiles to rank 0 than a send ring's slots
                        c[s][d][j] = rng.randint(600, 900) if (j == 0 and d == 0) else rng.randint(0, 2)
                    elif pattern == "empty":  # rank W-1 sends nothing, expert 1 empty everywhere
                        c[s][d][j] = 0 if (s == W - 1 or j == 1) else rng.randint(0, 5)
        if pattern == "empty" and all(c[s][d][j] == 0 for s in range(W) for d in range(W) for j in range(e)):
            c[0][0][0] = 1
        self.c = c

    def send(self, r):
        return [self.c[r][d][j] for d in range(self.W) for j in range(self.e)]

    def recv(self, r):
        return [self.c[s][r][j] for s in range(self.W) for j in range(self.e)]

    def inputs(self, r):
        g = torch.Generator().manual_seed(self.seed * 1000 + r)
        A = sum(self.send(r))
        x = torch.randn(A, self.h1, generator=g).to(self.dtype)
        wshape = (self.e, self.n1, self.h1) if self.trans_gmm else (self.e, self.h1, self.n1)
        w = (torch.randn(*wshape, generator=g) / self.h1 ** 0.5).to(self.dtype)
        kw = {}
        if self.shared:
            bs, h2, n2 = self.shared
            kw["mm_x"] = torch.randn(bs, h2, generator=g).to(self.dtype)
            kw["mm_weight"] = (torch.randn(*((n2, h2) if self.trans_mm else (h2, n2)), generator=g) / h2 ** 0.5).to(self.dtype)
        return x, w, kw

    def call(self, r, name, op=None):
        x, w, kw = self.inputs(r)
        op = op or gt.npu_gmm_alltoallv
        return op(x, w, name, self.W, self.send(r), self.recv(r), trans_gmm_weight=self.trans_gmm,
                  trans_mm_weight=self.trans_mm, **kw)

    def golden(self, r):
        """(y, |products| sums) and (mm_y, sums) in float64 for rank r."""
        ys, bounds = [], []
        for s in range(self.W):
            x, w, _ = self.inputs(s)
            starts = [0]
            for j in range(self.e):
                starts.append(starts[-1] + sum(self.c[s][d][j] for d in range(self.W)))
            for j in range(self.e):
                first = starts[j] + sum(self.c[s][d][j] for d in range(r))
                rows = x[first:first + self.c[s][r][j]].double()
                wj = w[j].double()
                wj = wj.t() if self.trans_gmm else wj
                ys.append(rows @ wj)
                bounds.append(rows.abs() @ wj.abs())
        y = torch.cat(ys) if ys else torch.zeros(0, self.n1, dtype=torch.float64)
        b = torch.cat(bounds) if bounds else torch.zeros(0, self.n1, dtype=torch.float64)
        mm = None
        if self.shared:
            _, _, kw = self.inputs(r)
            mw = kw["mm_weight"].double()
            mw = mw.t() if self.trans_mm else mw
            mx = kw["mm_x"].double()
            mm = (mx @ mw, mx.abs() @ mw.abs())
        return (y.reshape(-1, self.n1), b.reshape(-1, self.n1)), mm


def check_within_bound(got, ref, absprod, k, dtype, what=""):
    """docs/spec.md §4: |got - ref| <= 1 ulp of the output dtype at ref + the FP32 accumulation bound.
    Returns the largest err/bound ratio (<= 1)."""
    assert got.shape == ref.shape, (what, got.shape, ref.shape)
    if got.numel() == 0:
        return 0.0
    mant = 10 if dtype == torch.float16 else 7
    min_exp = -14 if dtype == torch.float16 else -126
    e = torch.floor(torch.log2(ref.abs().clamp_min(2.0 ** min_exp)))
    ulp = torch.pow(2.0, e - mant)
    gamma = k * 2.0 ** -24 / (1 - k * 2.0 ** -24)
    bound = ulp + gamma * absprod
    err = (got.double() - ref).abs()
    bad = err > bound
    assert not bad.any(), (f"{what}: {int(bad.sum())} elements beyond docs/spec.md §4's bound; "
                           f"worst err/bound {float((err / bound).max()):.3g}")
    return float((err / bound).max())


def dispatch_golden(case, r):
    """The dispatch op (docs/dispatch-op.md) for rank r in float64: (gmm_y, |products| sums),
    permute_out (exact), the shared expert's (mm_y, sums) or None. Rank r's gmm_x rows go in
    ascending global expert g = d*e + j; r receives, expert-major and source-minor, the block
    g = r*e + j of every source s, and multiplies it by its own W_j."""
    e, W = case.e, case.W
    _, w, kw = case.inputs(r)
    ys, bounds, perm = [], [], []
    for j in range(e):
        wj = w[j].double()
        wj = wj.t() if case.trans_gmm else wj
        for s in range(W):
            x_s = case.inputs(s)[0]
            flat = case.send(s)
            first = sum(flat[:r * e + j])
            rows = x_s[first:first + flat[r * e + j]]
            perm.append(rows)
            ys.append(rows.double() @ wj)
            bounds.append(rows.double().abs() @ wj.abs())
    y = torch.cat(ys).reshape(-1, case.n1)
    b = torch.cat(bounds).reshape(-1, case.n1)
    mm = None
    if case.shared:
        mw = kw["mm_weight"].double()
        mw = mw.t() if case.trans_mm else mw
        mx = kw["mm_x"].double()
        mm = (mx @ mw, mx.abs() @ mw.abs())
    return (y, b), torch.cat(perm).reshape(-1, case.h1), mm


def check_dispatch_rank(case, r, out, permute_out_flag):
    gmm_y, mm_y, perm = out
    (ref, absprod), ref_perm, mm = dispatch_golden(case, r)
    check_within_bound(gmm_y, ref, absprod, case.h1, case.dtype, "gmm_y")
    if permute_out_flag:
        assert bits_equal(perm, ref_perm), "permute_out is not the received rows, bit for bit"
    else:
        assert perm is None
    if case.shared:
        check_within_bound(mm_y, mm[0], mm[1], case.shared[1], case.dtype, "mm_y")
    else:
        assert mm_y is None


def call_dispatch(case, r, name, permute_out_flag=False, op=None):
    x, w, kw = case.inputs(r)
    op = op or gt.npu_alltoallv_gmm
    return op(x, w, name, case.W, case.send(r), case.recv(r), trans_gmm_weight=case.trans_gmm,
              trans_mm_weight=case.trans_mm, permute_out_flag=permute_out_flag, **kw)


def check_case_rank(case, r, y, mm_y):
    (ref, absprod), mm = case.golden(r)
    check_within_bound(y, ref, absprod, case.h1, case.dtype)
    if case.shared:
        assert mm_y is not None
        check_within_bound(mm_y, mm[0], mm[1], case.shared[1], case.dtype)
    else:
        assert mm_y is None


def run_ranks(names, fn):
    """fn(r, names[r]) for every rank r, each on its own thread of this process (in-process group):
    the results in rank order; the first exception raised by any rank is raised again."""
    out, errors = [None] * len(names), []

    def body(r):
        try:
            out[r] = fn(r, names[r])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=body, args=(r,)) for r in range(len(names))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return out


def in_process_results(case):
    """Every rank's (y, mm_y) from the C++ API's in-process group (rank threads of this process)."""
    return run_ranks(gt.in_process_hcoms(case.W), case.call)


def bits_equal(a, b):
    if a is None or b is None:
        return a is None and b is None
    return a.shape == b.shape and torch.equal(a.view(torch.int16), b.view(torch.int16))


def matrix(W):
    """The case matrix the multi-rank tests run: both dtypes, with and without the shared expert,
    both transposition flags, skewed and empty counts."""
    out = []
    seed = 1
    for dtype in (torch.bfloat16, torch.float16):
        for shared in (None, (8 * W, 48, 40)):
            for trans_gmm, trans_mm in ((False, False), (True, True)) if shared else ((False, False), (True, False)):
                for pattern in ("random", "skewed", "empty"):
                    h1 = 272 if pattern == "skewed" else 64  # >= 256: merged tiles (D3)
                    out.append(Case(W, 3, h1, 72, dtype, seed, shared, trans_gmm, trans_mm, pattern))
                    seed += 1
    # Rows to rank 0 over 63 KiB per peer: sent tile by tile, through more tiles than
    # the send ring has slots (the exchange reuses them), not as one message.
    for dtype in (torch.bfloat16, torch.float16):
        out.append(Case(W, 2, 64, 520, dtype, seed, pattern="heavy"))
        seed += 1
    return out
