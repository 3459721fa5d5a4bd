#!/usr/bin/env python3
"""Medians over several `gmmav bench --json` runs, as one markdown table (docs/performance.md).

  runs_table.py FILE...   each FILE is a bench JSON, or {"runs": [{"file", "result"}, ...]}
                          (bench/results/simcluster-s7-*.json); rows are grouped by the
                          file's name (without .json and a trailing -N run number), case, dtype.
Columns: fused, gemm_alone, a2a_alone, sequential (ms), fused / CPU-aware bound, fused /
max(gemm, a2a), x sequential, overlap %, the best overlap the CPU-aware bound allows, other CPU %.
"""
import collections
import json
import os
import re
import statistics
import sys


def results(path):
    data = json.load(open(path))
    base = re.sub(r"-\d+$", "", os.path.basename(path)[:-5])
    if "runs" in data:
        for run in data["runs"]:
            yield base, run["result"]
    else:
        yield base, data


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    rows = collections.OrderedDict()
    for path in sys.argv[1:]:
        for tag, result in results(path):
            for c in result["cases"]:
                rows.setdefault((tag, c["name"], c["dtype"]), []).append(c)
    print("| runs of | case | dtype | fused ms | gemm_alone | a2a_alone | sequential | fused / CPU-aware bound"
          " | fused / bound | x seq | overlap % | best overlap % | other CPU % | runs |")
    print("|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for (tag, name, dtype), cs in rows.items():
        def med(f):
            vals = [f(c) for c in cs if f(c) is not None]
            return statistics.median(vals) if vals else float("nan")
        print("| %s | %s | %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.0f | %.0f | %.0f | %d |" % (
            tag, name, dtype, med(lambda c: c["t_fused_s"] * 1e3), med(lambda c: c["t_gemm_alone_s"] * 1e3),
            med(lambda c: c["t_a2a_alone_s"] * 1e3), med(lambda c: c["t_sequential_s"] * 1e3),
            med(lambda c: c.get("fused_over_cpu_bound")), med(lambda c: c["fused_over_bound"]),
            med(lambda c: c["speedup_vs_sequential"]), med(lambda c: c["overlap_pct"]),
            med(lambda c: c.get("max_overlap_pct")), med(lambda c: c["contention_pct"]), len(cs)))


if __name__ == "__main__":
    main()
