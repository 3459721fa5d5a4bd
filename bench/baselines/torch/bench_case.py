"""A bench case as the bench's Python baselines read it (torch_composite.py, gmmav_python.py).

The bench writes a case directory: case.json (the shape, the dtype, every rank's counts and the
names of its arrays) and one raw little-endian 16-bit file per array (bench/baselines/python_baseline.cpp).
A baseline writes each rank's outputs beside them as y_<rank>.bin (the combine op's y, the
dispatch op's gmmY) and, with the shared expert, mm_y_<rank>.bin; the bench checks them against
gmmav's fused outputs.
"""
import json
import os


def read_case(directory):
    with open(os.path.join(directory, "case.json")) as f:
        return json.load(f)


def _load(path, shape, dtype, torch):
    with open(path, "rb") as f:
        data = bytearray(f.read())
    return torch.frombuffer(data, dtype=dtype).reshape(shape)


def dtype_of(case, torch):
    return torch.bfloat16 if case["dtype"] == "bf16" else torch.float16


def load_rank(directory, case, rank, torch):
    """-> (x, w, mx, mw) of one rank: gmmX, the routed weights as (e, H1, N1) (a transposed view of
    the stored (e, N1, H1) with trans_gmm_weight), and the shared expert's mmX and (H2, N2) weight
    (likewise a view with trans_mm_weight), or None, None without it."""
    e, h1, n1 = case["local_experts"], case["h1"], case["n1"]
    dt = dtype_of(case, torch)
    me = case["ranks"][rank]
    x = _load(os.path.join(directory, me["gmm_x"]), (sum(me["send_counts"]), h1), dt, torch)  # both ops
    trans = case["trans_gmm_weight"]
    w = _load(os.path.join(directory, me["gmm_weight"]), (e, n1, h1) if trans else (e, h1, n1), dt, torch)
    if trans:
        w = w.transpose(1, 2)
    shared = case.get("shared")
    if not shared:
        return x, w, None, None
    mx = _load(os.path.join(directory, me["mm_x"]), (shared["bs"], shared["h2"]), dt, torch)
    trans = shared["trans_mm_weight"]
    mw = _load(os.path.join(directory, me["mm_weight"]), (shared["n2"], shared["h2"]) if trans
               else (shared["h2"], shared["n2"]), dt, torch)
    if trans:
        mw = mw.t()
    return x, w, mx, mw


def write_outputs(directory, rank, y, mm_y, torch):
    """y_<rank>.bin and, when mm_y is not None, mm_y_<rank>.bin: the raw 16-bit values."""
    with open(os.path.join(directory, f"y_{rank}.bin"), "wb") as f:
        f.write(y.contiguous().view(torch.int16).numpy().tobytes())
    if mm_y is not None:
        with open(os.path.join(directory, f"mm_y_{rank}.bin"), "wb") as f:
            f.write(mm_y.contiguous().view(torch.int16).numpy().tobytes())
