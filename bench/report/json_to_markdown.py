#!/usr/bin/env python3
"""Prints the cases of `gmmav bench --json` files as one Markdown table (standard library only).

    json_to_markdown.py FILE [MORE ...] [--label LABEL ...] [--median]

Each FILE is a bench JSON or a set of runs, {"runs": [{"file", "result"}, ...]}
(bench/results/simcluster-*.json). By default one row per case of each run, labelled by
--label (one per FILE, in order) or the file's path.
--median: one row per group of runs: medians over the runs of a file's name (without .json and
a trailing -N run number, or its --label), case and dtype. Columns: fused, gemm_alone,
a2a_alone, sequential (ms), fused / CPU-aware bound, fused / max(gemm, a2a), x sequential,
overlap %, the best overlap the CPU-aware bound allows, other CPU %, runs (docs/performance.md).
"""
import argparse
import collections
import json
import os
import re
import statistics


def runs(path):
    """(run name or None, bench result) for each run in a file: a bench JSON is one run."""
    data = json.load(open(path))
    if "runs" not in data:
        yield None, data
        return
    for run in data["runs"]:
        # Older sets of runs (simcluster-[ABD]-*) list the bench results themselves.
        yield run.get("file"), run.get("result", run)


def ms(v):
    return "%.3f" % (v * 1e3) if v < 0.1 else "%.1f" % (v * 1e3)


def print_per_run(files, labels):
    print("| run | case | W | e | dtype | H1 | fused ms | gemm_alone | a2a_alone | sequential | per_expert | library "
          "| overlap % | fused/bound | × seq | × per-exp | gemm/lib | GFLOP/s | other CPU |")
    print("|---|---|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for i, f in enumerate(files):
        for run_name, doc in runs(f):
            label = labels[i] if i < len(labels) else f
            if run_name is not None:
                label = "%s: %s" % (label, run_name)
            for c in doc["cases"]:
                if "skipped" in c:
                    print("| %s | %s | %s | %s | %s | | skipped: %s |||||||||||||" % (label, c["name"], c["W"], c["e"], c["dtype"], c["skipped"]))
                    continue
                flag = "" if c.get("verified", True) else " **check failed**"
                print("| %s | %s%s | %d | %d | %s | %d | %s | %s | %s | %s | %s | %s | %.0f | %.2f | %.2f | %.2f | %.2f | %.0f | %.0f %% |" % (
                    label, c["name"], flag, c["W"], c["e"], c["dtype"], c["shape"]["h1"], ms(c["t_fused_s"]), ms(c["t_gemm_alone_s"]),
                    ms(c["t_a2a_alone_s"]), ms(c["t_sequential_s"]), ms(c["t_per_expert_s"]), ms(c["t_library_s"]), c["overlap_pct"],
                    c["fused_over_bound"], c["speedup_vs_sequential"], c["speedup_vs_per_expert"], c["gemm_vs_library"], c["gflops"],
                    c.get("contention_pct", 0)))


def print_medians(files, labels):
    groups = collections.OrderedDict()
    for i, f in enumerate(files):
        # Runs repeated as name-1.json, name-2.json, ... (or inside one file) form one group.
        tag = labels[i] if i < len(labels) else re.sub(r"-\d+$", "", os.path.basename(f)[:-5])
        for _, result in runs(f):
            for c in result["cases"]:
                groups.setdefault((tag, c["name"], c["dtype"]), []).append(c)
    print("| runs of | case | dtype | fused ms | gemm_alone | a2a_alone | sequential | fused / CPU-aware bound"
          " | fused / bound | x seq | overlap % | best overlap % | other CPU % | runs |")
    print("|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for (tag, name, dtype), cs in groups.items():
        def med(f):
            vals = [f(c) for c in cs if f(c) is not None]
            return statistics.median(vals) if vals else float("nan")
        print("| %s | %s | %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.0f | %.0f | %.0f | %d |" % (
            tag, name, dtype, med(lambda c: c["t_fused_s"] * 1e3), med(lambda c: c["t_gemm_alone_s"] * 1e3),
            med(lambda c: c["t_a2a_alone_s"] * 1e3), med(lambda c: c["t_sequential_s"] * 1e3),
            med(lambda c: c.get("fused_over_cpu_bound")), med(lambda c: c["fused_over_bound"]),
            med(lambda c: c["speedup_vs_sequential"]), med(lambda c: c["overlap_pct"]),
            med(lambda c: c.get("max_overlap_pct")), med(lambda c: c["contention_pct"]), len(cs)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--label", action="append", default=[], help="a label per file (e.g. 'MPI tcp np=2')")
    ap.add_argument("--median", action="store_true", help="medians over the runs of each file name, case and dtype")
    a = ap.parse_args()
    (print_medians if a.median else print_per_run)(a.files, a.label)


if __name__ == "__main__":
    main()
