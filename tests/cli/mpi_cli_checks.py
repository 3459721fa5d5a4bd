#!/usr/bin/python3
"""`gmmav run` and `gmmav verify` under an MPI launcher (one process per rank):
every process exits with the group's status, and rank 0 alone prints. One check
per invocation:

    mpi_cli_checks.py MPIEXEC GMMAV MAKE_CASE CHECK

Each rank runs under `sh -c` that prints its exit status, so a check sees every
rank's status, not only the launcher's first non-zero one.
"""

import os
import subprocess
import sys

import numpy as np

from check_runner import expect, main

MPIEXEC, GMMAV, MAKE_CASE = sys.argv[1], sys.argv[2], sys.argv[3]
SMALL_RUN = ["run", "--backend", "mpi", "--bs", "16", "--h1", "32", "--n1", "32", "--n2", "16", "--repeat", "1"]


def mpirun(np_, args):
    """Runs gmmav ARGS on NP_ ranks; returns (stdout, stderr, every rank's exit status)."""
    wrapped = ["sh", "-c", '"$0" "$@"; echo "gmmav exit status $?"', GMMAV] + args
    p = subprocess.run([MPIEXEC, "-np", str(np_)] + wrapped, capture_output=True, text=True, timeout=120)
    print(f"$ mpiexec -np {np_} gmmav {' '.join(args)}")
    print(p.stdout.rstrip())
    if p.stderr:
        print("[stderr] " + p.stderr.rstrip())
    statuses = [int(line.split()[-1]) for line in p.stdout.splitlines() if line.startswith("gmmav exit status")]
    expect(len(statuses) == np_, f"expected {np_} exit statuses, got {statuses}")
    return p.stdout, p.stderr, statuses


def make_case(d, *flags):
    subprocess.run([sys.executable, MAKE_CASE, "--out", d] + list(flags), check=True, stdout=subprocess.DEVNULL)
    return d


def run_fault_fails_every_rank(tmp):
    """Rank 0's y is corrupted: rank 1's own check passes, yet every rank exits 1."""
    out, _, statuses = mpirun(2, SMALL_RUN + ["--dtype", "fp16", "--inject-fault", "y"])
    expect(statuses == [1, 1], f"exit statuses {statuses}, expected 1 on every rank")
    expect(out.count("MPI group (one process per rank) W=2") == 1, "the summary is not printed once (by rank 0)")
    expect("rank 0 y: 1 mismatches" in out, "the failing rank is not named")


def run_world_size_mismatch(tmp):
    _, err, statuses = mpirun(2, SMALL_RUN + ["-W", "3"])
    expect(statuses == [2, 2], f"exit statuses {statuses}, expected 2 on every rank")
    expect("-W/--world-size: expected 2" in err and "got 3" in err, "no clear message")


def verify_fail_every_rank(tmp):
    """Rank 1's expected y is wrong: rank 0's tensors pass, yet every rank exits 1."""
    d = make_case(os.path.join(tmp, "case"), "-W", "2", "--seed", "12")
    path = os.path.join(d, "y_r1.npy")
    y = np.load(path)
    y[0, 0] = np.float16(float(y[0, 0]) * 1.5 + 0.25)
    np.save(path, y)
    out, _, statuses = mpirun(2, ["verify", "--backend", "mpi", "--inputs", d])
    expect(statuses == [1, 1], f"exit statuses {statuses}, expected 1 on every rank")
    expect("rank 1 y: first mismatch at (row 0, col 0)" in out, "rank 1's mismatch is not reported by rank 0")
    expect(out.count("FAIL: 1 of 2 tensors differ") == 1, "the summary is not printed once")


def verify_world_size_mismatch(tmp):
    d = make_case(os.path.join(tmp, "case"), "-W", "3")
    _, err, statuses = mpirun(2, ["verify", "--backend", "mpi", "--inputs", d])
    expect(statuses == [2, 2], f"exit statuses {statuses}, expected 2 on every rank")
    expect(err.count("expected a case of W = 2 ranks") == 1 and "mpirun -np 3" in err,
           "the message is missing, repeated, or does not say how to run the case")


CHECKS = {f.__name__: f for f in (run_fault_fails_every_rank, run_world_size_mismatch, verify_fail_every_rank,
                                  verify_world_size_mismatch)}


if __name__ == "__main__":
    sys.exit(main(CHECKS, 4, "gmmav_mpi_cli_"))
