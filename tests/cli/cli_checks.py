#!/usr/bin/python3
"""End-to-end checks of the gmmav CLI (`verify` on cases made by
tools/make_verify_case.py, and `run --json`). One check per invocation:

    cli_checks.py GMMAV MAKE_CASE CHECK

Each check prints what it did and exits 0 (pass) or 1 (fail).
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np

from check_runner import expect, main

GMMAV, MAKE_CASE = sys.argv[1], sys.argv[2]


def run(args, expect_rc, timeout=300):
    p = subprocess.run([GMMAV] + args, capture_output=True, text=True, timeout=timeout)
    print(f"$ gmmav {' '.join(args)}  -> exit {p.returncode}")
    if p.stdout:
        print(p.stdout.rstrip())
    if p.stderr:
        print("[stderr] " + p.stderr.rstrip())
    expect(expect_rc is None or p.returncode == expect_rc, f"expected exit {expect_rc}, got {p.returncode}")
    return p


def make_case(d, *flags):
    subprocess.run([sys.executable, MAKE_CASE, "--out", d] + list(flags), check=True, stdout=subprocess.DEVNULL)
    return d


# ---- verify passes ------------------------------------------------------------

PASS_CASES = {
    "verify_pass_fp16": ["-W", "3", "-e", "2"],
    "verify_pass_bf16": ["-W", "2", "-e", "3", "--dtype", "bf16"],
    "verify_pass_fp16_shared": ["-W", "4", "-e", "2", "--shared"],
    "verify_pass_bf16_shared": ["-W", "3", "-e", "2", "--shared", "--dtype", "bf16", "--seed", "3"],
    "verify_pass_fp16_trans": ["-W", "2", "-e", "2", "--shared", "--trans-gmm-weight", "--trans-mm-weight"],
    "verify_pass_bf16_trans": ["-W", "3", "-e", "1", "--shared", "--dtype", "bf16", "--trans-gmm-weight",
                               "--trans-mm-weight", "--seed", "4"],
    "verify_pass_zero_rank": ["-W", "4", "-e", "3", "--zero-rank", "--seed", "5"],
    "verify_pass_large_k": ["-W", "2", "-e", "2", "--rows", "256", "--h1", "512", "--n1", "64", "--shared",
                            "--h2", "512", "--seed", "6"],
}


def verify_pass(tmp, flags):
    d = make_case(os.path.join(tmp, "case"), *flags)
    extra = ["--dtype", "bf16"] if "bf16" in flags else []
    extra += [f for f in ("--trans-gmm-weight", "--trans-mm-weight") if f in flags]
    p = run(["verify", "--inputs", d] + extra, 0)
    expect("PASS" in p.stdout, "no PASS in the output")
    j = json.loads(run(["verify", "--inputs", d, "--json"] + extra, 0).stdout)
    expect(j["pass"] is True, "JSON pass is not true")
    tensors = 2 if "--shared" in flags else 1
    expect(j["checked"] == j["world_size"] * tensors, f"expected {j['world_size'] * tensors} checked tensors")
    expect(all(r["checked"] and r["pass"] and r["mismatches"] == 0 for r in j["results"]), "a tensor did not pass")


def verify_out_files(tmp):
    """--out writes y/mmY in the input convention; they pass --exact as expected outputs of the same case."""
    d = make_case(os.path.join(tmp, "case"), "-W", "3", "--shared", "--dtype", "bf16", "--seed", "8")
    out = os.path.join(tmp, "out", "nested")
    run(["verify", "--inputs", d, "--dtype", "bf16", "--out", out], 0)
    for r in range(3):
        for t in ("y", "mmY"):
            got, want = np.load(os.path.join(out, f"{t}_r{r}.npy")), np.load(os.path.join(d, f"{t}_r{r}.npy"))
            expect(got.dtype == np.dtype("<u2") and got.shape == want.shape, f"{t}_r{r}.npy: dtype/shape")
            shutil.copy(os.path.join(out, f"{t}_r{r}.npy"), os.path.join(d, f"{t}_r{r}.npy"))
    # Deterministic: a second run reproduces the written outputs bit for bit.
    run(["verify", "--inputs", d, "--dtype", "bf16", "--exact"], 0)


def verify_no_expected(tmp):
    d = make_case(os.path.join(tmp, "case"), "-W", "2", "--no-expected")
    p = run(["verify", "--inputs", d, "--out", os.path.join(tmp, "out")], 0)
    expect("not checked" in p.stdout, "unchecked tensors are not marked")
    expect(os.path.exists(os.path.join(tmp, "out", "y_r1.npy")), "y_r1.npy not written")


# ---- verify fails (exit 1) ----------------------------------------------------

def corrupt(path, row, col, factor=1.5, add=0.25):
    a = np.load(path)
    if a.dtype == np.float16:
        a[row, col] = np.float16(float(a[row, col]) * factor + add)
    else:  # bf16 bits: flip a high mantissa bit (a relative change of 25-50 %)
        a[row, col] ^= np.uint16(0x0040)
    np.save(path, a)


def verify_fail_y(tmp):
    d = make_case(os.path.join(tmp, "case"), "-W", "3", "--shared", "--seed", "5")
    corrupt(os.path.join(d, "y_r1.npy"), 2, 5)
    p = run(["verify", "--inputs", d], 1)
    expect("rank 1 y: first mismatch at (row 2, col 5)" in p.stdout, "the first mismatch is not named")
    expect("FAIL" in p.stdout, "no FAIL")
    j = json.loads(run(["verify", "--inputs", d, "--json"], 1).stdout)
    expect(j["pass"] is False, "JSON pass is not false")
    bad = [r for r in j["results"] if r["checked"] and not r["pass"]]
    expect(len(bad) == 1 and bad[0]["rank"] == 1 and bad[0]["tensor"] == "y", f"wrong failing tensors: {bad}")
    expect(bad[0]["first_mismatch"]["row"] == 2 and bad[0]["first_mismatch"]["col"] == 5, "wrong first mismatch")


def verify_fail_mmy_bf16(tmp):
    d = make_case(os.path.join(tmp, "case"), "-W", "2", "--shared", "--dtype", "bf16", "--seed", "9")
    corrupt(os.path.join(d, "mmY_r0.npy"), 7, 3)
    p = run(["verify", "--inputs", d, "--dtype", "bf16"], 1)
    expect("rank 0 mmY: first mismatch at (row 7, col 3)" in p.stdout, "the first mismatch is not named")


def verify_exact(tmp):
    """A one-ulp change passes the tolerance but not --exact."""
    d = make_case(os.path.join(tmp, "case"), "-W", "2", "--seed", "10")
    path = os.path.join(d, "y_r0.npy")
    a = np.load(path)
    bits = a.view(np.uint16)
    bits[1, 1] = bits[1, 1] + 1 if bits[1, 1] & 0x7FFF != 0x7BFF else bits[1, 1] - 1
    np.save(path, a)
    run(["verify", "--inputs", d], 0)
    p = run(["verify", "--inputs", d, "--exact"], 1)
    expect("rank 0 y: first mismatch at (row 1, col 1)" in p.stdout, "the first mismatch is not named")


def verify_fail_large_sums(tmp):
    """Issue 16: where sum |a*b| exceeds FP16's range (65504) an element 200 % wrong still fails."""
    d = make_case(os.path.join(tmp, "case"), "-W", "2", "--seed", "11")
    for name in os.listdir(d):
        path = os.path.join(d, name)
        if name.startswith(("gmmX_", "gmmWeight_")):  # +-32: every sum |a*b| is 64 * 1024 = 65536
            a = np.load(path)
            np.save(path, np.where(a < 0, -32.0, 32.0).astype(np.float16))
        elif name.startswith("y_"):
            os.remove(path)
    out = os.path.join(tmp, "out")
    # Every partial sum is a multiple of 1024 below 65536: exact in FP32, so gmmav's y is the exact result.
    run(["verify", "--inputs", d, "--out", out], 0)
    corrupted = None
    for r in range(2):
        y = np.load(os.path.join(out, f"y_r{r}.npy"))
        nonzero = np.argwhere(y != 0)
        if corrupted is None and len(nonzero):
            corrupted = (r, *map(int, nonzero[0]))
            y[corrupted[1], corrupted[2]] = -y[corrupted[1], corrupted[2]]  # 200 % wrong
        np.save(os.path.join(d, f"y_r{r}.npy"), y)
    expect(corrupted is not None, "the case has no nonzero output")
    r, row, col = corrupted
    p = run(["verify", "--inputs", d], 1)
    expect(f"rank {r} y: first mismatch at (row {row}, col {col})" in p.stdout, "the 200 % error is not reported")


# ---- verify rejects bad input (exit 2, naming the file) -----------------------

def bad_input(tmp, mutate, needle, flags=("-W", "3", "--shared"), verify_flags=()):
    d = make_case(os.path.join(tmp, "case"), *flags)
    mutate(d)
    p = run(["verify", "--inputs", d] + list(verify_flags), 2)
    expect(needle in p.stderr, f"stderr does not name {needle!r}")
    expect(p.stdout == "", "bad input printed results")


def swap_recv_counts(d):
    c = np.load(os.path.join(d, "recvCounts_r1.npy"))
    i = int(np.argmax(c))
    j = (i + 1) % len(c)
    expect(c[i] != c[j], "test case has equal counts")
    c[i], c[j] = c[j], c[i]
    np.save(os.path.join(d, "recvCounts_r1.npy"), c)


def rewrite(d, name, fn):
    p = os.path.join(d, name)
    np.save(p, fn(np.load(p)))


BAD_CASES = {
    "verify_bad_missing_companion": (lambda d: os.remove(os.path.join(d, "gmmWeight_r1.npy")), "gmmWeight_r1.npy"),
    "verify_bad_missing_counts": (lambda d: os.remove(os.path.join(d, "recvCounts_r2.npy")), "recvCounts_r2.npy"),
    "verify_bad_missing_shared": (lambda d: os.remove(os.path.join(d, "mmWeight_r2.npy")), "mmWeight_r2.npy"),
    "verify_bad_rank_gap": (lambda d: os.remove(os.path.join(d, "gmmX_r1.npy")), "gmmX_r1.npy"),
    "verify_bad_stray_rank": (lambda d: shutil.copy(os.path.join(d, "sendCounts_r0.npy"),
                                                    os.path.join(d, "sendCounts_r3.npy")), "sendCounts_r3.npy"),
    "verify_bad_shape_gmmx": (lambda d: rewrite(d, "gmmX_r0.npy", lambda a: a[:, :-1].copy()), "gmmX_r0.npy"),
    "verify_bad_shape_weight": (lambda d: rewrite(d, "gmmWeight_r2.npy", lambda a: a[:, :, :-1].copy()),
                                "gmmWeight_r2.npy"),
    "verify_bad_shape_expected": (lambda d: rewrite(d, "mmY_r1.npy", lambda a: a[:-1].copy()), "mmY_r1.npy"),
    "verify_bad_counts_length": (lambda d: rewrite(d, "sendCounts_r0.npy", lambda a: a[:-1].copy()),
                                 "sendCounts_r0.npy"),
    "verify_bad_counts_dtype": (lambda d: rewrite(d, "sendCounts_r1.npy", lambda a: a.astype(np.int32)),
                                "sendCounts_r1.npy: dtype '<i4'"),
    "verify_bad_contract": (swap_recv_counts, "recvCounts_r1.npy"),
    "verify_bad_dtype_f32": (lambda d: rewrite(d, "mmX_r2.npy", lambda a: a.astype(np.float32)),
                             "mmX_r2.npy: dtype '<f4'"),
    "verify_bad_fortran": (lambda d: np.save(os.path.join(d, "gmmX_r0.npy"),
                                             np.asfortranarray(np.load(os.path.join(d, "gmmX_r0.npy")))),
                           "gmmX_r0.npy: fortran_order is True"),
    "verify_bad_truncated": (lambda d: open(os.path.join(d, "gmmX_r2.npy"), "r+b").truncate(
        os.path.getsize(os.path.join(d, "gmmX_r2.npy")) - 2), "gmmX_r2.npy: has"),
}


def verify_bad_dtype_bf16_without_flag(tmp):
    bad_input(tmp, lambda d: None, "gmmWeight_r0.npy: dtype '<u2' found, but --dtype fp16", ("-W", "2", "--dtype", "bf16"))


def verify_bad_dtype_fp16_as_bf16(tmp):
    bad_input(tmp, lambda d: None, "gmmWeight_r0.npy: dtype '<f2' found, but --dtype bf16", ("-W", "2"),
              ("--dtype", "bf16"))


def verify_bad_trans_flag(tmp):
    # (e, H1, N1) read as (e, N1, H1): gmmX's H1 no longer matches.
    bad_input(tmp, lambda d: None, "gmmX_r0.npy: expected shape", ("-W", "2",), ("--trans-gmm-weight",))


def verify_bad_out_is_inputs(tmp):
    d = make_case(os.path.join(tmp, "case"), "-W", "2")
    p = run(["verify", "--inputs", d, "--out", d], 2)
    expect("is the --inputs directory" in p.stderr, "no clear message")


def verify_bad_no_case(tmp):
    p = run(["verify", "--inputs", tmp], 2)
    expect("gmmX_r0.npy" in p.stderr, "no clear message")


def verify_bad_fifo(tmp):
    """A FIFO in place of an input file is refused by name (reading it would block forever)."""
    d = make_case(os.path.join(tmp, "case"), "-W", "2")
    os.remove(os.path.join(d, "gmmX_r1.npy"))
    os.mkfifo(os.path.join(d, "gmmX_r1.npy"))
    p = run(["verify", "--inputs", d], 2, timeout=20)
    expect("gmmX_r1.npy" in p.stderr and "expected a regular file, got a FIFO" in p.stderr, "no clear message")


def verify_bad_tolerance(tmp):
    """--tolerance and --floor must be finite and >= 0."""
    d = make_case(os.path.join(tmp, "case"), "-W", "2")
    for option, value in (("--tolerance", "nan"), ("--tolerance", "inf"), ("--tolerance", "-0.1"), ("--floor", "nan")):
        p = run(["verify", "--inputs", d, option, value], 2)
        expect(option in p.stderr and f"expected a finite number >= 0, got '{value}'" in p.stderr,
               f"{option} {value}: no clear message")
        expect(p.stdout == "", f"{option} {value}: printed results")


def verify_bad_counts_sum_overflow(tmp):
    """Counts whose sum overflows int64 (each one valid) are refused naming the file and the overflow,
    not as a shape mismatch with a wrapped, negative row count (issue 29)."""
    for name in ("sendCounts_r0.npy", "recvCounts_r1.npy"):
        d = make_case(os.path.join(tmp, name), "-W", "2")
        rewrite(d, name, lambda a: np.full_like(a, 2**62))
        p = run(["verify", "--inputs", d], 2)
        expect(f"{name}: sum overflows int64" in p.stderr, f"{name}: the overflow is not named")
        expect("-9223372036854775" not in p.stderr, f"{name}: a wrapped sum is printed")
        expect(p.stdout == "", f"{name}: printed results")


# ---- run: bad parameters ------------------------------------------------------

def run_bad_dimension(tmp):
    """A dimension of 0 is refused with a readable range (not CLI::PositiveNumber's 300-digit doubles)."""
    for option, value in (("--bs", "0"), ("--h1", "0"), ("-k", "-3"), ("--n2", "x")):
        p = run(["run", option, value], 2)
        expect("expected an integer >= 1, got" in p.stderr, f"{option} {value}: no clear message")
        expect(len(p.stderr) < 300, f"{option} {value}: a {len(p.stderr)}-character message")


def run_bad_seed(tmp):
    """--seed is checked like every other numeric option: an unsigned 64-bit integer, nothing else."""
    for value in ("-1", "18446744073709551616", "1.5", "0x10", "seven"):
        p = run(["run", "--seed", value], 2)
        expect(f"expected an integer in [0, 18446744073709551615], got '{value}'" in p.stderr and "--seed" in p.stderr,
               f"--seed {value!r}: no clear message")
        expect(p.stdout == "", f"--seed {value!r}: printed results")
    for value in ("0", "18446744073709551615"):
        run(["run", "--seed", value, "-W", "2", "--bs", "8", "--h1", "16", "--n1", "16", "--n2", "16", "--repeat", "1"], 0)


def run_bad_too_large(tmp):
    """A case larger than the machine's memory is refused before anything is allocated."""
    p = run(["run", "--h1", "1000000000", "--n1", "1000000000"], 2, timeout=60)
    expect("bad_alloc" not in p.stderr, "std::bad_alloc instead of a message")
    expect("the case needs about" in p.stderr and "of memory" in p.stderr and "H1=1000000000" in p.stderr,
           "the message does not say how much memory the case needs and what the limit is")


WITHOUT_MPI = "gmmav was built without MPI (GMMAV_WITH_MPI=OFF)"


def built_with_mpi():
    """What `gmmav --version` says of the MPI backend (GMMAV_WITH_MPI, D98); it must say one or the other."""
    p = run(["--version"], 0)
    on, off = "(with MPI: GMMAV_WITH_MPI=ON)" in p.stdout, "(without MPI: GMMAV_WITH_MPI=OFF)" in p.stdout
    expect(on != off, f"--version does not say whether the MPI backend is built in: {p.stdout!r}")
    return on


def backend_mpi_without_launcher(tmp):
    """--backend mpi outside mpirun is a usage error that says how to start it (or, built without MPI, that
    gmmav has no MPI), for run and verify."""
    d = make_case(os.path.join(tmp, "case"), "-W", "2")
    want = "--backend mpi: expected a process started by mpirun/mpiexec" if built_with_mpi() else "--backend mpi: " + WITHOUT_MPI
    for args in (["run", "--backend", "mpi"], ["verify", "--inputs", d, "--backend", "mpi"]):
        p = run(args, 2)
        expect(want in p.stderr, "no clear message")


def without_mpi_says_so(tmp):
    """Built without MPI (D98): every command that would need it refuses with the same message — --backend mpi
    of run, verify and bench, and --backend auto under an MPI launcher (each process would otherwise run the whole
    group). Built with MPI: --version says so (the other checks cover MPI itself)."""
    if built_with_mpi():
        return
    d = make_case(os.path.join(tmp, "case"), "-W", "2")
    for args in (["run", "--backend", "mpi"], ["verify", "--inputs", d, "--backend", "mpi"],
                 ["bench", "--quick", "--backend", "mpi"]):
        p = run(args, 2)
        expect(WITHOUT_MPI in p.stderr and "--backend" in p.stderr, f"{args[0]}: no message naming the missing MPI")
    launcher = dict(os.environ, OMPI_COMM_WORLD_SIZE="2")
    for args in (["run", "-W", "2", "--bs", "8", "--h1", "16", "--n1", "16", "--n2", "8", "--repeat", "1"],
                 ["verify", "--inputs", d]):
        p = subprocess.run([GMMAV] + args, capture_output=True, text=True, timeout=300, env=launcher)
        print(f"$ OMPI_COMM_WORLD_SIZE=2 gmmav {' '.join(args)}  -> exit {p.returncode}\n[stderr] {p.stderr.rstrip()}")
        expect(p.returncode == 2 and "--backend auto: started by an MPI launcher" in p.stderr and WITHOUT_MPI in p.stderr,
               f"{args[0]} under a launcher without MPI: not refused with the reason")


# ---- run --json ---------------------------------------------------------------

RUN_SMALL = ["run", "--json", "-W", "3", "-e", "2", "--bs", "24", "--h1", "64", "--n1", "32", "--n2", "16",
             "--counts", "random", "--repeat", "1"]


def run_json_pass(tmp):
    j = json.loads(run(RUN_SMALL, 0).stdout)
    expect(j["pass"] is True, "pass is not true")
    expect(len(j["cases"]) == 2 and all(c["pass"] and c["verified"] for c in j["cases"]), "a case did not pass")


def run_json_fault(tensor, shown=None, args=RUN_SMALL):
    """--inject-fault TENSOR fails every case, naming the output as `shown` (the dispatch op's y is gmmY)."""
    shown = shown or tensor

    def check(tmp):
        j = json.loads(run(args + ["--inject-fault", tensor], 1).stdout)
        expect(j["pass"] is False, "pass is not false")
        for c in j["cases"]:
            expect(c["pass"] is False and f" {shown}: " in c.get("first_failure", ""),
                   f"case {c['dtype']} does not report the corrupted {shown}")
    return check


def run_text_fault(tmp):
    p = run(["run", "-W", "2", "--bs", "16", "--h1", "32", "--n1", "16", "--repeat", "1", "--dtype", "bf16",
             "--inject-fault", "y"], 1)
    expect(p.stdout.rstrip().endswith("FAIL"), "text output does not end in FAIL")


# ---- the dispatch op (--op dispatch) -------------------------------------------

RUN_DISPATCH = RUN_SMALL + ["--op", "dispatch", "--permute-out"]


def run_dispatch_json_pass(tmp):
    j = json.loads(run(RUN_DISPATCH, 0).stdout)
    expect(j["op"] == "dispatch" and j["permute_out"] is True, "the JSON does not say which op ran")
    expect(j["pass"] is True, "pass is not true")
    expect(len(j["cases"]) == 2 and all(c["pass"] and c["verified"] for c in j["cases"]), "a case did not pass")
    # Exact values: gmmY, mmY and permuteOut bit for bit, without the shared expert and with transposed weights.
    j = json.loads(run(RUN_DISPATCH + ["--values", "exact", "--no-shared", "--trans-gmm-weight"], 0).stdout)
    expect(all(c["elements_differing_from_reference_rounding"] == 0 for c in j["cases"]), "exact values differ")


def run_dispatch_text(tmp):
    p = run(["run", "--op", "dispatch", "-W", "2", "--bs", "16", "--h1", "32", "--n1", "16", "--repeat", "1"], 0)
    expect("dispatch op (gmmY)" in p.stdout, "the summary does not name the dispatch op")
    expect(p.stdout.rstrip().endswith("PASS"), "text output does not end in PASS")


def bad_op(tmp):
    """--op takes combine or dispatch, in every subcommand, with a message that lists both."""
    d = make_case(os.path.join(tmp, "case"), "-W", "2")
    for args in (["run", "--op", "dispatcher"], ["verify", "--inputs", d, "--op", "dispatcher"],
                 ["bench", "--op", "dispatcher", "--quick"]):
        p = run(args, 2)
        expect("--op" in p.stderr and "expected combine or dispatch, got 'dispatcher'" in p.stderr,
               f"{args[0]}: no clear message")
        expect(p.stdout == "", f"{args[0]}: printed results")
    p = run(["run", "--permute-out"], 2)
    expect("--permute-out: expected --op dispatch" in p.stderr, "--permute-out without --op dispatch: no clear message")


DISPATCH_PASS = {
    "verify_dispatch_pass_fp16_shared": ["-W", "3", "-e", "2", "--shared"],
    "verify_dispatch_pass_bf16_trans": ["-W", "2", "-e", "3", "--dtype", "bf16", "--shared", "--trans-gmm-weight",
                                        "--trans-mm-weight", "--seed", "4"],
    "verify_dispatch_pass_no_permute_out": ["-W", "4", "-e", "2", "--zero-rank", "--no-permute-out", "--seed", "5"],
}


def verify_dispatch_pass(tmp, flags):
    d = make_case(os.path.join(tmp, "case"), "--op", "dispatch", *flags)
    extra = ["--op", "dispatch"] + (["--dtype", "bf16"] if "bf16" in flags else [])
    extra += [f for f in ("--trans-gmm-weight", "--trans-mm-weight") if f in flags]
    j = json.loads(run(["verify", "--inputs", d, "--json"] + extra, 0).stdout)
    expect(j["op"] == "dispatch" and j["pass"] is True, "JSON op/pass")
    names = {"gmmY", "mmY"} if "--shared" in flags else {"gmmY"}
    if "--no-permute-out" not in flags:
        names.add("permuteOut")
    expect({r["tensor"] for r in j["results"]} == names, f"expected tensors {names}, got {[r['tensor'] for r in j['results']]}")
    expect(j["checked"] == j["world_size"] * len(names), "not every tensor was checked")
    expect(all(r["pass"] and r["mismatches"] == 0 for r in j["results"]), "a tensor did not pass")
    p = run(["verify", "--inputs", d] + extra, 0)
    expect("dispatch op" in p.stdout and "PASS" in p.stdout, "the table does not name the op or PASS")


def verify_dispatch_fail(tmp):
    """A wrong gmmY element fails naming it; one flipped bit of permuteOut fails even within the tolerance."""
    d = make_case(os.path.join(tmp, "case"), "--op", "dispatch", "-W", "3", "--shared", "--seed", "6")
    corrupt(os.path.join(d, "gmmY_r1.npy"), 2, 5)
    p = run(["verify", "--inputs", d, "--op", "dispatch"], 1)
    expect("rank 1 gmmY: first mismatch at (row 2, col 5)" in p.stdout, "the first mismatch is not named")
    d = make_case(os.path.join(tmp, "case2"), "--op", "dispatch", "-W", "2", "--seed", "7")
    path = os.path.join(d, "permuteOut_r0.npy")
    a = np.load(path)
    a.view(np.uint16)[1, 3] ^= np.uint16(1)  # one ulp: inside the tolerance, but permuteOut is a copy
    np.save(path, a)
    p = run(["verify", "--inputs", d, "--op", "dispatch"], 1)
    expect("rank 0 permuteOut: first mismatch at (row 1, col 3)" in p.stdout, "the permuteOut mismatch is not named")


def verify_dispatch_wrong_op(tmp):
    """A case of one operator verified as the other is bad input naming the file and the fix."""
    d = make_case(os.path.join(tmp, "dispatch"), "--op", "dispatch", "-W", "2")
    p = run(["verify", "--inputs", d], 2)
    expect("gmmY_r0.npy found" in p.stderr and "pass --op dispatch" in p.stderr, "dispatch case as combine: no clear message")
    d = make_case(os.path.join(tmp, "combine"), "-W", "2")
    p = run(["verify", "--inputs", d, "--op", "dispatch"], 2)
    expect("y_r0.npy found" in p.stderr and "pass --op combine" in p.stderr, "combine case as dispatch: no clear message")


def verify_dispatch_out_files(tmp):
    """--out writes gmmY/mmY/permuteOut; they pass --exact as the expected outputs of the same case."""
    d = make_case(os.path.join(tmp, "case"), "--op", "dispatch", "-W", "3", "--shared", "--dtype", "bf16", "--seed", "8")
    out = os.path.join(tmp, "out")
    run(["verify", "--inputs", d, "--op", "dispatch", "--dtype", "bf16", "--out", out], 0)
    for r in range(3):
        for t in ("gmmY", "mmY", "permuteOut"):
            got, want = np.load(os.path.join(out, f"{t}_r{r}.npy")), np.load(os.path.join(d, f"{t}_r{r}.npy"))
            expect(got.dtype == np.dtype("<u2") and got.shape == want.shape, f"{t}_r{r}.npy: dtype/shape")
            if t == "permuteOut":
                expect(np.array_equal(got, want), "permuteOut differs from the copy the case expects")
            shutil.copy(os.path.join(out, f"{t}_r{r}.npy"), os.path.join(d, f"{t}_r{r}.npy"))
    run(["verify", "--inputs", d, "--op", "dispatch", "--dtype", "bf16", "--exact"], 0)


# ---- bench: the memory estimate (--memory-limit) ---------------------------------

BENCH_TINY = ["bench", "--quick", "--cases", "tiny", "--dtype", "bf16", "--repeat", "1", "--json", "-"]


def bench_json(args, rc):
    j = json.loads(run(args, rc).stdout)
    expect(len(j["cases"]) == 1, "expected one case")
    return j["cases"][0]


def bench_memory_refused(tmp):
    """A case estimated above --memory-limit even without the variants it may leave out is skipped with
    its numbers before anything is allocated, exit 2 (issue 29: the seed case died by the OOM killer)."""
    for op in ("combine", "dispatch"):
        p = run(BENCH_TINY + ["--torch", "off", "--python", "off", "--op", op, "--memory-limit", "1MiB"], 2)
        c = json.loads(p.stdout)["cases"][0]
        m = c.get("memory") or {}
        expect("skipped" in c and m.get("refused") is True, f"{op}: the case was not refused")
        expect(m["limit_bytes"] == 2**20 and m["estimated_peak_bytes"] > 2**20, f"{op}: limit/estimate not reported")
        expect("estimated peak" in c["skipped"] and "--memory-limit 1.00 MiB" in c["skipped"], f"{op}: no clear reason")
        expect("not run" in p.stderr and "tiny bf16" in p.stderr, f"{op}: stderr does not say which case was not run")


def bench_memory_leaves_out(tmp):
    """Between the core variants' estimate and the whole case's, variants are left out in order (python,
    torch, aclnn, fused_per_call, library) and the rest still runs and is checked."""
    parts = bench_json(BENCH_TINY + ["--torch", "off", "--python", "off", "--memory-limit", "1"], 2)["memory"]["parts_bytes"]
    core = parts["data"] + parts["core"]
    variants = core + parts["fused_per_call"] + parts["aclnn"] + parts["library"]
    # Only the core variants fit.
    c = bench_json(BENCH_TINY + ["--torch", "off", "--python", "off", "--memory-limit", str(int(core) + 1)], 0)
    expect(c["memory"]["left_out"] == ["aclnn", "fused_per_call", "library"], f"left out: {c['memory']['left_out']}")
    expect(c["t_fused_s"] > 0 and c["t_sequential_s"] > 0 and c["verified"] is True, "the core variants did not run")
    expect(c["t_aclnn_s"] is None and "fit in memory" in c.get("aclnn_skipped", ""), "aclnn ran or no reason")
    expect(c["t_fused_per_call_s"] is None and c["t_library_s"] == 0 and "fit in memory" in c["library"],
           "fused_per_call or library ran")
    # One byte short of everything: aclnn goes first.
    c = bench_json(BENCH_TINY + ["--torch", "off", "--python", "off", "--memory-limit", str(int(variants) - 1)], 0)
    expect(c["memory"]["left_out"] == ["aclnn"], f"left out: {c['memory']['left_out']}")
    expect(c["t_fused_per_call_s"] is not None and c["t_library_s"] > 0, "fused_per_call or library did not run")
    # The Python baselines (named case: --torch auto and --python auto run them) go before any variant,
    # gmmav's Python path first.
    c = bench_json(BENCH_TINY + ["--memory-limit", str(int(variants) + 1)], 0)
    expect(c["memory"]["parts_bytes"]["torch"] > 0 and c["memory"]["parts_bytes"]["python"] > 0
           and c["memory"]["left_out"] == ["python", "torch"], f"left out: {c['memory']['left_out']}")
    expect(c["torch"]["attempted"] and "fit in memory" in c["torch"]["why"], "torch: no reason")
    expect(c["python"]["attempted"] and "fit in memory" in c["python"]["why"], "python: no reason")
    expect(c["t_aclnn_s"] is not None, "aclnn did not run")


def bench_memory_limit_bad(tmp):
    for value in ("0", "12XB", "1.5Q", "nan", "2000000TiB"):
        p = run(["bench", "--quick", "--memory-limit", value], 2)
        expect(f"expected a size such as 512MiB, 8GiB or 1048576 (bytes, 1 to 2^60), got '{value}'" in p.stderr,
               f"--memory-limit {value}: no clear message")
    p = run(["run", "--memory-limit", "1MiB"], 2)
    expect("more than --memory-limit 1.00 MiB" in p.stderr, "run --memory-limit: no clear refusal")


def bench_python_fault(tmp):
    """gmmav's Python path computes gmmav's outputs: one that differs from fused fails the case (exit 1),
    as any variant's does (--inject-fault python flips one bit of it as read back)."""
    args = BENCH_TINY + ["--torch", "off", "--python", "auto", "--inject-fault", "python"]
    for op in ("combine", "dispatch"):
        p = run(args + ["--op", op], None)
        c = json.loads(p.stdout)["cases"][0]
        if not c["python"]["available"]:  # no PyTorch or no package here: nothing to corrupt
            expect(p.returncode == 0, f"{op}: the Python path did not run, yet the case failed")
            print(f"the Python path did not run ({c['python']['why']}): the fault is not exercised")
            return
        expect(p.returncode == 1, f"{op}: exit {p.returncode}, expected 1")
        expect(c["verified"] is False, f"{op}: a differing Python-path output did not fail the case")
        expect(c["python"]["differ_from_fused"] == 1 and "Python path: 1 of" in c["verification"],
               f"{op}: the verification does not name the Python path's difference: {c['verification']}")


def bench_keep_case_dir(tmp):
    """--keep-case-dir keeps each Python baseline's case under DIR/<op>-<case>-<dtype>/<script>/ and records
    the command that reruns the script on it; the command runs as recorded. Without it nothing stays."""
    keep = os.path.join(tmp, "keep")
    c = bench_json(BENCH_TINY + ["--keep-case-dir", keep], 0)
    for kind in ("python", "torch"):
        b = c[kind]
        if not b["available"]:
            print(f"{kind} did not run ({b['why']}): its kept directory is not checked")
            continue
        want = os.path.join(keep, "combine-tiny-bf16", kind)
        expect(b.get("case_dir") == want, f"{kind}: case_dir {b.get('case_dir')}, expected {want}")
        expect(os.path.isfile(os.path.join(want, "case.json")) and os.path.isfile(os.path.join(want, "y_0.bin")),
               f"{kind}: the case or its outputs were not kept in {want}")
        rerun = subprocess.run(b["command"], shell=True, capture_output=True, text=True, timeout=300)
        lines = [ln for ln in rerun.stdout.splitlines() if ln.startswith("{")]
        expect(rerun.returncode == 0 and lines and json.loads(lines[-1]).get("available") is True,
               f"{kind}: the recorded command did not rerun the script: {rerun.stderr[-400:]}")
    os.environ["TMPDIR"] = tmp  # the default: a temporary directory, removed
    c = bench_json(BENCH_TINY + ["--torch", "off"], 0)
    expect("case_dir" not in c["python"], "a case directory was reported kept without --keep-case-dir")
    left = [n for n in os.listdir(tmp) if n.startswith("gmmav-torch-")]
    expect(not left, f"temporary case directories left behind: {left}")


def make_case_self_test(tmp):
    subprocess.run([sys.executable, MAKE_CASE, "--self-test"], check=True)


CHECKS = {
    **{name: (lambda flags: lambda tmp: verify_pass(tmp, flags))(flags) for name, flags in PASS_CASES.items()},
    **{name: (lambda m, n: lambda tmp: bad_input(tmp, m, n))(m, n) for name, (m, n) in BAD_CASES.items()},
    "verify_out_files": verify_out_files,
    "verify_no_expected": verify_no_expected,
    "verify_fail_y": verify_fail_y,
    "verify_fail_mmy_bf16": verify_fail_mmy_bf16,
    "verify_exact": verify_exact,
    "verify_fail_large_sums": verify_fail_large_sums,
    "verify_bad_dtype_bf16_without_flag": verify_bad_dtype_bf16_without_flag,
    "verify_bad_dtype_fp16_as_bf16": verify_bad_dtype_fp16_as_bf16,
    "verify_bad_trans_flag": verify_bad_trans_flag,
    "verify_bad_out_is_inputs": verify_bad_out_is_inputs,
    "verify_bad_no_case": verify_bad_no_case,
    "verify_bad_fifo": verify_bad_fifo,
    "verify_bad_tolerance": verify_bad_tolerance,
    "run_bad_dimension": run_bad_dimension,
    "run_bad_too_large": run_bad_too_large,
    "run_bad_seed": run_bad_seed,
    "verify_bad_counts_sum_overflow": verify_bad_counts_sum_overflow,
    "backend_mpi_without_launcher": backend_mpi_without_launcher,
    "without_mpi_says_so": without_mpi_says_so,
    "run_json_pass": run_json_pass,
    "run_json_fault_y": run_json_fault("y"),
    "run_json_fault_mmY": run_json_fault("mmY"),
    "run_text_fault": run_text_fault,
    "make_case_self_test": make_case_self_test,
    "run_dispatch_json_pass": run_dispatch_json_pass,
    "run_dispatch_fault_gmmY": run_json_fault("y", "gmmY", RUN_DISPATCH),
    "run_dispatch_fault_permuteOut": run_json_fault("permuteOut", "permuteOut", RUN_DISPATCH),
    "run_dispatch_text": run_dispatch_text,
    "bad_op": bad_op,
    "bench_memory_refused": bench_memory_refused,
    "bench_memory_leaves_out": bench_memory_leaves_out,
    "bench_memory_limit_bad": bench_memory_limit_bad,
    "bench_python_fault": bench_python_fault,
    "bench_keep_case_dir": bench_keep_case_dir,
    **{name: (lambda flags: lambda tmp: verify_dispatch_pass(tmp, flags))(flags) for name, flags in DISPATCH_PASS.items()},
    "verify_dispatch_fail": verify_dispatch_fail,
    "verify_dispatch_wrong_op": verify_dispatch_wrong_op,
    "verify_dispatch_out_files": verify_dispatch_out_files,
}


if __name__ == "__main__":
    sys.exit(main(CHECKS, 3, "gmmav_cli_"))
