"""ctest's entry to the Python tests: skips (exit 77, with the reason) when torch or pytest is
absent, else runs pytest on the given arguments (or, with --mpi N, mpirun of ranks.py)."""
import importlib.util
import os
import subprocess
import sys


def main():
    missing = [m for m in ("torch", "pytest") if importlib.util.find_spec(m) is None]
    if missing:
        print(f"SKIP: {sys.executable} lacks {', '.join(missing)} (apt-get install python3-torch python3-pytest; "
              "./scripts/setup.sh --suite installs them)")
        sys.exit(77)
    if sys.argv[1] == "--run":  # any command (the docs' example under torchrun / mpirun)
        sys.exit(subprocess.call(sys.argv[2:]))
    if sys.argv[1] == "--mpi":
        mpiexec, np, scenario = sys.argv[2], sys.argv[3], sys.argv[4]
        exports = [a for v in ("PYTHONPATH", "GMMAV_TIMEOUT_MS") if v in os.environ for a in ("-x", v)]
        cmd = [mpiexec, "--oversubscribe", "-np", np] + exports + [
            sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "ranks.py"), scenario]
        sys.exit(subprocess.call(cmd))
    import pytest

    sys.exit(pytest.main(["-q", "-p", "no:cacheprovider"] + sys.argv[1:]))


if __name__ == "__main__":  # torch.multiprocessing's spawned ranks import this module again
    main()
