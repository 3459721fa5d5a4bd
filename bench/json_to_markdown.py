#!/usr/bin/env python3
"""Prints the cases of `gmmav bench --json` files as one Markdown table (standard library only).

    json_to_markdown.py RESULT.json [MORE.json ...] [--label LABEL ...]
"""
import argparse
import json


def ms(v):
    return "%.3f" % (v * 1e3) if v < 0.1 else "%.1f" % (v * 1e3)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--label", action="append", default=[], help="a label per file (e.g. 'MPI tcp np=2')")
    a = ap.parse_args()
    print("| run | case | W | e | dtype | H1 | fused ms | gemm_alone | a2a_alone | sequential | per_expert | library "
          "| overlap % | fused/bound | × seq | × per-exp | gemm/lib | GFLOP/s | other CPU |")
    print("|---|---|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for i, f in enumerate(a.files):
        label = a.label[i] if i < len(a.label) else f
        doc = json.load(open(f))
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


if __name__ == "__main__":
    main()
