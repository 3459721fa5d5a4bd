#!/usr/bin/env python3
"""Checks the layers of src/ against the table in docs/architecture.md.

Every `#include "X/..."` in src/<layer>/ must name the layer itself or a layer
the table allows for it (headers under include/ count as `include/X`). The table
is the one between the markers `<!-- layers:begin -->` and `<!-- layers:end -->`:
rows `| <layer> | ... | <allowed, comma separated> |`, the layer's name in backticks.

  check_layers.py ROOT                  exit 1 and list every violation
  check_layers.py ROOT --actual         print the dependencies as they are
  check_layers.py ROOT --forbid L:D     the same check with D removed from L's
                                        allowed list; exit 0 only if that makes it
                                        FAIL (the check's own test: it can fail)
"""
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"/]+)/([^"]+)"', re.M)


def table(root):
    text = open(os.path.join(root, "docs", "architecture.md"), encoding="utf-8").read()
    m = re.search(r"<!-- layers:begin -->(.*?)<!-- layers:end -->", text, re.S)
    if not m:
        sys.exit("check_layers: docs/architecture.md has no <!-- layers:begin --> ... <!-- layers:end --> table")
    allowed = {}
    for line in m.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[0].startswith("`src/"):
            continue
        layer = cells[0].strip("`")[len("src/"):]
        deps = {d.strip().strip("`") for d in cells[-1].split(",") if d.strip() and d.strip() != "nothing"}
        allowed[layer] = {d[len("src/"):] if d.startswith("src/") else d for d in deps}
    if not allowed:
        sys.exit("check_layers: the layer table in docs/architecture.md has no rows")
    return allowed


def actual(root):
    src = os.path.join(root, "src")
    deps = {}
    for layer in sorted(os.listdir(src)):
        ldir = os.path.join(src, layer)
        if not os.path.isdir(ldir):
            continue
        for dirpath, _, files in os.walk(ldir):
            for f in sorted(files):
                if not f.endswith((".cpp", ".hpp", ".h", ".c")):
                    continue
                path = os.path.join(dirpath, f)
                for top, rest in INCLUDE.findall(open(path, encoding="utf-8").read()):
                    if os.path.exists(os.path.join(src, top, rest)):
                        dep = top
                    # (".in": a header CMake generates from that template, gmmav/build_options.hpp)
                    elif any(os.path.exists(os.path.join(root, "include", top, rest + t)) for t in ("", ".in")):
                        dep = "include/" + top
                    else:
                        dep = "?" + top
                    if dep != layer:
                        deps.setdefault(layer, {}).setdefault(dep, []).append(os.path.relpath(path, root))
    return deps


def violations(allowed, deps):
    out = []
    for layer, ds in sorted(deps.items()):
        if layer not in allowed:
            out.append(f"src/{layer}: not in the layer table of docs/architecture.md")
            continue
        for dep, files in sorted(ds.items()):
            if dep not in allowed[layer]:
                out.append(f"src/{layer} -> {dep} (not allowed): {', '.join(sorted(set(files)))}")
    return out


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    root = sys.argv[1]
    deps = actual(root)
    if "--actual" in sys.argv:
        for layer, ds in sorted(deps.items()):
            print(f"src/{layer}: {', '.join(sorted(ds))}")
        return 0
    allowed = table(root)
    if "--forbid" in sys.argv:
        layer, dep = sys.argv[sys.argv.index("--forbid") + 1].split(":")
        if dep not in allowed.get(layer, set()):
            sys.exit(f"check_layers --forbid: {layer} is not allowed {dep} in the table anyway")
        allowed[layer].discard(dep)
        bad = violations(allowed, deps)
        if bad:
            print(f"check_layers --forbid {layer}:{dep}: the check fails as it must:\n  " + "\n  ".join(bad))
            return 0
        print(f"check_layers --forbid {layer}:{dep}: no violation reported (src/{layer} does not use {dep}?)")
        return 1
    bad = violations(allowed, deps)
    if bad:
        print("check_layers: includes across layers that docs/architecture.md does not allow:\n  " + "\n  ".join(bad))
        return 1
    print(f"check_layers: {sum(len(v) for v in deps.values())} layer dependencies of {len(deps)} layers, all allowed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
