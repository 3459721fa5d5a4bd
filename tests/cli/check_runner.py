"""What cli_checks.py and mpi_cli_checks.py share: the failure type, `expect`,
and the entry point that lists the checks or runs one of them in a fresh
temporary directory (one ctest test per check)."""

import sys
import tempfile


class CheckFailed(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise CheckFailed(what)


def main(checks, name_index, prefix):
    """argv[name_index] is the check's name, or --list (prints the names for CMake)."""
    if len(sys.argv) == name_index + 1 and sys.argv[name_index] == "--list":
        print(";".join(sorted(checks)))
        return 0
    name = sys.argv[name_index]
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        try:
            checks[name](tmp)
        except CheckFailed as e:
            print(f"FAIL {name}: {e}")
            return 1
    print(f"PASS {name}")
    return 0
