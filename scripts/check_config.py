#!/usr/bin/env python3
"""Checks that every GMMAV_* environment variable is read in one place.

  check_config.py ROOT
  check_config.py ROOT --also FILE   the same with FILE scanned as if it were in src/;
                                     exit 0 only if that makes the check FAIL (its own test)

- no file under src/, tools/, bench/ other than src/common/config.hpp names a
  GMMAV_* variable in a getenv/setenv/unsetenv/env_int/env_switch call;
- the variables of config.hpp's kVariables table and the README's table
  (section "Environment") are the same set.
Exit 1 listing what differs.
"""
import os
import re
import sys

CALL = re.compile(r'\b(?:getenv|setenv|unsetenv|env_int|env_switch)\s*\(\s*"(GMMAV_\w+)"')
CONFIG = os.path.join("src", "common", "config.hpp")


def main():
    root = sys.argv[1]
    also = sys.argv[sys.argv.index("--also") + 1] if "--also" in sys.argv else None
    bad = []
    paths = []
    for top in ("src", "tools", "bench"):
        for dirpath, _, files in os.walk(os.path.join(root, top)):
            paths += [os.path.join(dirpath, f) for f in files if f.endswith((".cpp", ".hpp", ".h", ".c"))]
    if also:
        paths.append(also)
    for path in paths:
        rel = os.path.relpath(path, root)
        if rel == CONFIG:
            continue
        for name in CALL.findall(open(path, encoding="utf-8").read()):
            bad.append(f"{rel} reads {name} itself (read it through {CONFIG})")
    config = open(os.path.join(root, CONFIG), encoding="utf-8").read()
    table = config[config.index("kVariables[]"):]
    table = table[:table.index("};")]
    in_config = set(re.findall(r'\{"(GMMAV_\w+)"', table))
    readme = open(os.path.join(root, "README.md"), encoding="utf-8").read()
    env = readme[readme.index("## Environment"):]
    env = env[:env.index("\n## ", 1)]
    in_readme = set(re.findall(r"^\| `(GMMAV_\w+)`", env, re.M))
    bad += [f"{n}: in config.hpp's table, not in the README's" for n in sorted(in_config - in_readme)]
    bad += [f"{n}: in the README's table, not in config.hpp's" for n in sorted(in_readme - in_config)]
    if len(in_config) < 5:
        bad.append(f"only {len(in_config)} variables found in config.hpp (the parser lost them?)")
    if also:
        if bad:
            print("check_config --also: the check fails as it must:\n  " + "\n  ".join(bad))
            return 0
        print(f"check_config --also {also}: no violation reported")
        return 1
    if bad:
        print("check_config:\n  " + "\n  ".join(bad))
        return 1
    print(f"check_config: {len(in_config)} GMMAV_* variables, all read in {CONFIG} and listed in the README")
    return 0


if __name__ == "__main__":
    sys.exit(main())
