#!/usr/bin/env python3
"""Prints the cases of `gmmav bench --json` files as one Markdown table (standard library only).

    json_to_markdown.py FILE [MORE ...] [--label LABEL ...] [--median]

Each FILE is a bench JSON (by default under bench-results/, where the bench writes it) or a set of runs,
{"runs": [{"file", "result"}, ...]}. By default one row per case of each run, labelled by --label (one per FILE, in
order) or the file's path.
--median: one row per group of runs: medians over the runs of a file's name (without .json and a trailing -N run
number, or its --label), case and dtype. Columns: fused, gemm_alone, a2a_alone, sequential (ms), fused / CPU-aware
bound, fused / max(gemm, a2a), x sequential, overlap %, the best overlap the CPU-aware bound allows, other CPU %, runs
(docs/performance.md).

The rows are bench_summary.py's records (the curated file's, docs/decisions/D99.md) made on the fly: the same
tables, from raw files instead of bench/results/curated.json.
"""
import argparse
import collections
import os
import re

import bench_summary


def print_per_run(files, labels):
    records = []
    for i, f in enumerate(files):
        for run_name, result in bench_summary.runs_of(f):
            label = labels[i] if i < len(labels) else f
            if run_name is not None:
                label = "%s: %s" % (label, run_name)
            records.append(bench_summary.make_record([result], label))
    print(bench_summary.table("per-run", records))


def print_medians(files, labels):
    groups = collections.OrderedDict()
    for i, f in enumerate(files):
        # Runs repeated as name-1.json, name-2.json, ... (or inside one file) form one group.
        tag = labels[i] if i < len(labels) else re.sub(r"-\d+$", "", os.path.basename(f)[:-5])
        groups.setdefault(tag, []).extend(result for _, result in bench_summary.runs_of(f))
    print(bench_summary.table("medians", [bench_summary.make_record(rs, tag) for tag, rs in groups.items()]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--label", action="append", default=[], help="a label per file (e.g. 'MPI tcp np=2')")
    ap.add_argument("--median", action="store_true", help="medians over the runs of each file name, case and dtype")
    a = ap.parse_args()
    (print_medians if a.median else print_per_run)(a.files, a.label)


if __name__ == "__main__":
    main()
