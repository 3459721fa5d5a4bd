#!/usr/bin/python3
"""Writes a random case for `gmmav verify`: every rank's inputs and its expected outputs.

Files (r = 0..W-1): gmmX_r{r}.npy, gmmWeight_r{r}.npy, sendCounts_r{r}.npy,
recvCounts_r{r}.npy, optionally mmX_r{r}.npy and mmWeight_r{r}.npy (--shared),
and the expected outputs: y_r{r}.npy / mmY_r{r}.npy for the combine op (the
default), gmmY_r{r}.npy / mmY_r{r}.npy / permuteOut_r{r}.npy for --op dispatch
(docs/dispatch-op.md; --no-permute-out leaves permuteOut out). FP16 arrays are
'<f2', BF16 arrays are raw bit patterns '<u2'; counts are int64.

The expected outputs are computed in float64 from the same 16-bit inputs
(every product is exact in float64) and rounded once to the output dtype,
round-to-nearest-even (docs/spec.md §4). NumPy's float64 -> float16 cast rounds
once (no detour through float32); float64 -> bfloat16 is done exactly here.

Only NumPy is needed (Debian's python3-numpy).
"""

import argparse
import os
import sys

import numpy as np


# ---- 16-bit encodings ---------------------------------------------------------

def round_rne(v, man_bits, emin, emax):
    """float64 array -> the nearest value (ties to even) of a binary format with
    `man_bits` stored mantissa bits, normal exponents [emin, emax] and subnormals;
    +-inf past the largest finite value. NaN stays NaN, signs (and -0) are kept.

    The value is rounded straight onto the format's grid: in the binade
    [2^E, 2^(E+1)) (or the subnormal range, which has emin's spacing) the grid is
    2^(E - man_bits); scaling by powers of two is exact and np.rint rounds half
    to even, so there is exactly one rounding (no float32 detour).
    """
    v = np.asarray(v, dtype=np.float64)
    a = np.abs(v)
    finite = np.isfinite(a)
    _, e2 = np.frexp(np.where(finite & (a > 0), a, 1.0))    # a = f * 2^e2, f in [0.5, 1)
    q = np.maximum(e2 - 1, emin) - man_bits                   # grid spacing 2^q
    rounded = np.ldexp(np.rint(np.ldexp(np.where(finite, a, 0.0), -q)), q)
    rounded = np.where(rounded >= 2.0 ** (emax + 1), np.inf, rounded)
    rounded = np.where(finite, rounded, a)                    # inf and nan as they were
    return np.copysign(rounded, v)


def fp16_from_f64(v):
    """float64 -> float16, one RNE rounding (every rounded value is exact in float16)."""
    return round_rne(v, 10, -14, 15).astype(np.float16)


def bf16_bits_from_f64(v):
    """float64 -> bfloat16 bit patterns (uint16), one RNE rounding.

    bfloat16 has 7 stored mantissa bits and float32's exponent range, so every
    rounded value is exact in float32 and its bit pattern is the float32's top half.
    """
    r = round_rne(v, 7, -126, 127).astype(np.float32)
    bits = (r.view(np.uint32) >> 16).astype(np.uint16)
    return np.where(np.isnan(r), bits | np.uint16(0x0040), bits).astype(np.uint16)  # keep NaN quiet


def bf16_to_f64(bits):
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32).astype(np.float64)


def encode(values_f64, dtype):
    """float64 -> the array stored in the files ('<f2' or '<u2' bit patterns)."""
    if dtype == "fp16":
        return fp16_from_f64(values_f64)
    return bf16_bits_from_f64(values_f64)


def decode(stored, dtype):
    """The stored array -> its exact float64 values."""
    if dtype == "fp16":
        return stored.astype(np.float64)
    return bf16_to_f64(stored)


# ---- the case -----------------------------------------------------------------

def random_counts(rng, world, experts, rows_per_rank, zero_rank):
    """send[s][d*e + j]: random counts averaging rows_per_rank per rank, zeros included."""
    cells = world * experts
    avg = max(1, rows_per_rank // cells)
    send = [rng.integers(0, 2 * avg + 1, size=cells).astype(np.int64) for _ in range(world)]
    if zero_rank is not None:
        send[zero_rank][:] = 0           # a rank that sends nothing
    # docs/spec.md §2: recv@d[s*e + j] = send@s[d*e + j]
    recv = []
    for d in range(world):
        r = np.zeros(cells, dtype=np.int64)
        for s in range(world):
            r[s * experts:(s + 1) * experts] = send[s][d * experts:(d + 1) * experts]
        recv.append(r)
    return send, recv


def random_values(rng, shape, dtype):
    return encode(rng.uniform(-1.0, 1.0, size=shape), dtype)


def expected_outputs(args, send, recv, gmm_x, gmm_w, mm_x, mm_w):
    """Every rank's y and mmY in float64, straight from docs/spec.md §1-§3."""
    world, e = args.world_size, args.experts
    # GroupedMatMul: gmmY rows in gmmX order (expert-major, then destination).
    gmm_y = []
    for r in range(world):
        x = decode(gmm_x[r], args.dtype)
        w = decode(gmm_w[r], args.dtype)
        out = np.zeros((x.shape[0], args.n1), dtype=np.float64)
        row = 0
        for j in range(e):
            g = int(sum(send[r][d * e + j] for d in range(world)))
            wj = w[j].T if args.trans_gmm_weight else w[j]
            out[row:row + g] = x[row:row + g] @ wj
            row += g
        gmm_y.append(out)
    # Unpermute + AlltoAllv: y on rank d = concat over s, then j, of block (j -> d) of rank s.
    ys = []
    for d in range(world):
        parts = []
        for s in range(world):
            offset = 0
            starts = {}
            for j in range(e):
                for dd in range(world):
                    starts[(j, dd)] = offset
                    offset += int(send[s][dd * e + j])
            for j in range(e):
                start, n = starts[(j, d)], int(send[s][d * e + j])
                parts.append(gmm_y[s][start:start + n])
        y = np.concatenate(parts, axis=0) if parts else np.zeros((0, args.n1))
        assert y.shape[0] == int(recv[d].sum())
        ys.append(y)
    return ys, shared_outputs(args, mm_x, mm_w)


def shared_outputs(args, mm_x, mm_w):
    if not args.shared:
        return []
    out = []
    for r in range(args.world_size):
        w = decode(mm_w[r], args.dtype)
        out.append(decode(mm_x[r], args.dtype) @ (w.T if args.trans_mm_weight else w))
    return out


def expected_dispatch_outputs(args, send, recv, gmm_x, gmm_w, mm_x, mm_w):
    """Every rank's permuteOut, gmmY and mmY in float64, from docs/dispatch-op.md sections 2-3:
    gmmX rows go by destination global expert d*e + j; rank d receives them expert-major,
    source-minor, and multiplies group j by its weight j."""
    world, e = args.world_size, args.experts
    permuted, gmm_ys = [], []
    for d in range(world):
        parts, groups = [], []
        for j in range(e):
            g = 0
            for s in range(world):
                start = int(send[s][:d * e + j].sum())  # block (d, j) of rank s's gmmX
                n = int(send[s][d * e + j])
                parts.append(gmm_x[s][start:start + n])
                g += n
            groups.append(g)
        p = np.concatenate(parts, axis=0) if parts else np.zeros((0, args.h1), dtype=gmm_x[d].dtype)
        assert p.shape[0] == int(recv[d].sum())
        w = decode(gmm_w[d], args.dtype)
        x = decode(p, args.dtype)
        y = np.zeros((x.shape[0], args.n1), dtype=np.float64)
        row = 0
        for j in range(e):
            wj = w[j].T if args.trans_gmm_weight else w[j]
            y[row:row + groups[j]] = x[row:row + groups[j]] @ wj
            row += groups[j]
        permuted.append(p)
        gmm_ys.append(y)
    return permuted, gmm_ys


def write_case(args):
    rng = np.random.default_rng(args.seed)
    world, e = args.world_size, args.experts
    zero_rank = world - 1 if (args.zero_rank and world > 1) else None
    send, recv = random_counts(rng, world, e, args.rows, zero_rank)
    gmm_x, gmm_w, mm_x, mm_w = [], [], [], []
    for r in range(world):
        a = int(send[r].sum())
        gmm_x.append(random_values(rng, (a, args.h1), args.dtype))
        wshape = (e, args.n1, args.h1) if args.trans_gmm_weight else (e, args.h1, args.n1)
        gmm_w.append(random_values(rng, wshape, args.dtype))
        if args.shared:
            mm_x.append(random_values(rng, (args.bs, args.h2), args.dtype))
            mshape = (args.n2, args.h2) if args.trans_mm_weight else (args.h2, args.n2)
            mm_w.append(random_values(rng, mshape, args.dtype))
    dispatch = args.op == "dispatch"
    if dispatch:
        # The same arrays serve: gmmX has sum(sendCounts) rows in both operators.
        permuted, ys = expected_dispatch_outputs(args, send, recv, gmm_x, gmm_w, mm_x, mm_w)
        mm_ys = shared_outputs(args, mm_x, mm_w)
    else:
        ys, mm_ys = expected_outputs(args, send, recv, gmm_x, gmm_w, mm_x, mm_w)

    os.makedirs(args.out, exist_ok=True)
    save = lambda name, r, arr: np.save(os.path.join(args.out, f"{name}_r{r}.npy"), np.ascontiguousarray(arr))
    for r in range(world):
        save("gmmX", r, gmm_x[r])
        save("gmmWeight", r, gmm_w[r])
        save("sendCounts", r, send[r])
        save("recvCounts", r, recv[r])
        if args.shared:
            save("mmX", r, mm_x[r])
            save("mmWeight", r, mm_w[r])
        if not args.no_expected:
            save("gmmY" if dispatch else "y", r, encode(ys[r], args.dtype))
            if args.shared:
                save("mmY", r, encode(mm_ys[r], args.dtype))
            if dispatch and not args.no_permute_out:
                save("permuteOut", r, permuted[r])  # a copy: the stored 16-bit values as they are
    flags = [f"--op {args.op}", f"--dtype {args.dtype}"]
    if args.trans_gmm_weight:
        flags.append("--trans-gmm-weight")
    if args.trans_mm_weight:
        flags.append("--trans-mm-weight")
    print(f"wrote a W={world}, e={e} {args.dtype} {args.op} case to {args.out}; check it with: "
          f"gmmav verify --inputs {args.out} {' '.join(flags)}")


# ---- self-test of the BF16 rounding -------------------------------------------

def self_test():
    """Checks bf16_bits_from_f64 on hand-made edge cases and against an
    independent float32 route on values where that route is exact."""
    cases = [
        (1.0, 0x3F80), (-1.0, 0xBF80), (0.0, 0x0000), (-0.0, 0x8000),
        (1.0 + 2.0 ** -8, 0x3F80),                   # tie -> even (down)
        (1.0 + 3 * 2.0 ** -8, 0x3F82),               # tie -> even (up)
        (1.0 + 2.0 ** -8 + 2.0 ** -30, 0x3F81),      # just above a tie: up (a float32 detour ties and goes down)
        (1.0 + 2.0 ** -8 - 2.0 ** -40, 0x3F80),      # just below a tie: down
        (2.0 - 2.0 ** -9, 0x4000),                   # rounds up into the next binade
        (2.0 ** -126, 0x0080),                       # smallest normal
        (2.0 ** -133, 0x0001),                       # smallest subnormal
        (2.0 ** -134, 0x0000),                       # half of it: tie -> even (zero)
        (3 * 2.0 ** -134, 0x0002),                   # 1.5 quanta: tie -> even (2)
        (2.0 ** -134 + 2.0 ** -160, 0x0001),         # above the tie: up
        (2.0 ** -126 - 2.0 ** -134, 0x0080),         # largest subnormal + half quantum: tie -> even (min normal)
        ((2.0 - 2.0 ** -7) * 2.0 ** 127, 0x7F7F),    # largest finite
        ((2.0 - 2.0 ** -8) * 2.0 ** 127, 0x7F80),    # tie above the largest finite -> even -> inf
        (2.0 ** 200, 0x7F80), (-2.0 ** 200, 0xFF80),
        (float("inf"), 0x7F80), (float("-inf"), 0xFF80),
    ]
    failures = 0
    values = np.array([v for v, _ in cases], dtype=np.float64)
    got = bf16_bits_from_f64(values)
    for (v, want), g in zip(cases, got):
        if int(g) != want:
            print(f"bf16({v!r}) = 0x{int(g):04x}, expected 0x{want:04x}")
            failures += 1
    if int(bf16_bits_from_f64(np.array([float("nan")]))[0]) & 0x7FFF <= 0x7F80:
        print("bf16(nan) is not a NaN")
        failures += 1
    # Random float32 values (float64 = float32 exactly): the integer RNE trick on the float32 bits is exact.
    rng = np.random.default_rng(7)
    bits = rng.integers(0, 2 ** 32, size=200000, dtype=np.uint64).astype(np.uint32)
    f32 = bits.view(np.float32)
    f32 = f32[np.isfinite(f32)]
    u = f32.view(np.uint32).astype(np.uint64)
    ref = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    mine = bf16_bits_from_f64(f32.astype(np.float64))
    bad = np.nonzero(mine != ref)[0]
    if bad.size:
        i = bad[0]
        print(f"{bad.size} float32 values differ, e.g. {f32[i]!r}: 0x{int(mine[i]):04x} vs 0x{int(ref[i]):04x}")
        failures += 1
    # FP16 edge cases.
    f16_cases = [
        (1.0 + 2.0 ** -11, 0x3C00),                  # tie -> even (down)
        (1.0 + 2.0 ** -11 + 2.0 ** -40, 0x3C01),     # just above a tie: up (a float32 detour would go down)
        (2.0 ** -24, 0x0001), (2.0 ** -25, 0x0000),  # smallest subnormal; half of it -> even (zero)
        (65504.0, 0x7BFF), (65520.0, 0x7C00),        # largest finite; the tie above it -> inf
        (-0.0, 0x8000), (float("-inf"), 0xFC00),
    ]
    got16 = fp16_from_f64(np.array([v for v, _ in f16_cases])).view(np.uint16)
    for (v, want), g in zip(f16_cases, got16):
        if int(g) != want:
            print(f"fp16({v!r}) = 0x{int(g):04x}, expected 0x{want:04x}")
            failures += 1
    # Against NumPy's own float64 -> float16 cast (also a single rounding) on random values of every scale.
    f64 = rng.standard_normal(200000) * np.exp2(rng.integers(-30, 17, size=200000))
    with np.errstate(over="ignore"):
        diff = np.nonzero(fp16_from_f64(f64).view(np.uint16) != f64.astype(np.float16).view(np.uint16))[0]
    if diff.size:
        print(f"{diff.size} values differ from numpy's float16 cast, e.g. {f64[diff[0]]!r}")
        failures += 1
    print("self-test: " + ("PASS" if failures == 0 else f"FAIL ({failures})"))
    return 0 if failures == 0 else 1


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", help="directory to write the case to (created)")
    p.add_argument("--op", choices=["combine", "dispatch"], default="combine",
                   help="the operator whose expected outputs to write (default combine)")
    p.add_argument("--no-permute-out", action="store_true",
                   help="--op dispatch: do not write permuteOut_r*.npy (the run then skips permuteOut)")
    p.add_argument("-W", "--world-size", type=int, default=2, help="ranks (default 2)")
    p.add_argument("-e", "--experts", type=int, default=2, help="local experts per rank (default 2)")
    p.add_argument("--rows", type=int, default=48, help="average routed rows (A) per rank (default 48)")
    p.add_argument("--h1", type=int, default=64, help="H1 (default 64)")
    p.add_argument("--n1", type=int, default=40, help="N1 (default 40)")
    p.add_argument("--dtype", choices=["fp16", "bf16"], default="fp16")
    p.add_argument("--shared", action="store_true", help="add the shared expert (mmX, mmWeight, mmY)")
    p.add_argument("--bs", type=int, default=24, help="shared expert rows BS (default 24)")
    p.add_argument("--h2", type=int, default=32, help="H2 (default 32)")
    p.add_argument("--n2", type=int, default=24, help="N2 (default 24)")
    p.add_argument("--trans-gmm-weight", action="store_true", help="store gmmWeight as (e, N1, H1)")
    p.add_argument("--trans-mm-weight", action="store_true", help="store mmWeight as (N2, H2)")
    p.add_argument("--zero-rank", action="store_true", help="the last rank sends nothing")
    p.add_argument("--no-expected", action="store_true", help="do not write y_r*.npy / mmY_r*.npy")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--self-test", action="store_true", help="check the BF16 rounding and exit")
    args = p.parse_args()
    if args.self_test:
        return self_test()
    if not args.out:
        p.error("--out is required")
    for name in ("world_size", "experts", "h1", "n1", "bs", "h2", "n2"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.rows < 0:
        p.error("--rows must be >= 0")
    if args.trans_mm_weight and not args.shared:
        p.error("--trans-mm-weight needs --shared")
    if args.no_permute_out and args.op != "dispatch":
        p.error("--no-permute-out needs --op dispatch")
    write_case(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
