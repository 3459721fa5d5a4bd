#!/usr/bin/env python3
"""The curated bench results (bench/results/curated.json) and the tables docs/performance.md shows from them
(standard library only; docs/decisions/D99.md).

    bench_summary.py --add RUN.json [RUN-2.json ...] --label LABEL [--commit C] [--command CMD] [--host TEXT]
                     [--when DATE] [--note TEXT] [--replace] [--curated FILE]
    bench_summary.py --write [--docs FILE] [--curated FILE]     # regenerate the docs' generated sections
    bench_summary.py --check [--docs FILE] [--curated FILE]     # exit 1 when a section differs
    bench_summary.py --table KIND LABEL [LABEL ...]             # print one table (labels may be globs)

--add turns one or more `gmmav bench` JSON files (or sets of runs, {"runs": [...]}) into one record: per case and
dtype the median over the runs of each run's figures (times in ms, ratios, overlap, other CPU), the spread (min, max)
of the times — over the samples of a single run, over the runs' medians otherwise — and the host, commit, command and
date (from the JSON's `machine` and `run` when the bench wrote them, else the options). No per-iteration samples.

A generated section of a Markdown file is
    <!-- bench-summary:begin KIND LABEL [LABEL ...] -->
    ...table...
    <!-- bench-summary:end -->
with KIND one of TABLES (entry: decode/prefill against the entry points, the library, PyTorch and the roofline;
medians: json_to_markdown.py --median's columns; per-run: its per-run columns; dispatch: the dispatch op's) and each
LABEL a record's label, a glob, or LABEL=SHOWN to show the record as SHOWN (shell quoting: 'A=before, 1 Gbit/s');
strip=PREFIX shows labels without PREFIX; cases=A,B keeps only those cases of the records.
"""
import argparse
import collections
import fnmatch
import json
import math
import os
import re
import shlex
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CURATED = os.path.join(ROOT, "bench", "results", "curated.json")
DOCS = os.path.join(ROOT, "docs", "performance.md")
SCHEMA = 1

# Variant name in the record -> key of its median time in a combine-op case of the bench's JSON.
TIMES = collections.OrderedDict([
    ("fused", "t_fused_s"), ("gemm_alone", "t_gemm_alone_s"), ("a2a_alone", "t_a2a_alone_s"),
    ("sequential", "t_sequential_s"), ("per_expert", "t_per_expert_s"), ("library", "t_library_s"),
    ("fused_per_call", "t_fused_per_call_s"), ("aclnn", "t_aclnn_s"), ("cpu_bound", "t_cpu_bound_s"),
    ("weight_prep", "t_weight_prep_s")])
# Variant name in the record -> its samples in the bench's JSON (the spread of a single run).
SAMPLES = {"fused": "fused", "gemm_alone": "gemm_alone", "a2a_alone": "a2a_alone", "sequential": "sequential",
           "per_expert": "per_expert_overlap", "library": "library_matmul", "fused_per_call": "fused_per_call",
           "aclnn": "aclnn"}
RATIOS = ["fused_over_bound", "fused_over_cpu_bound", "speedup_vs_sequential", "speedup_vs_per_expert",
          "gemm_vs_library", "torch_over_fused", "torch_over_fused_per_call", "torch_over_aclnn", "fused_over_roofline",
          "python_over_fused"]
OTHER = ["overlap_pct", "max_overlap_pct", "gflops", "contention_pct"]
EXTRA = ["python_over_native"]  # figures of a baseline's own JSON (not top-level ratios of a case)


# ---- reading the bench's JSON ---------------------------------------------------------------------------------

def runs_of(path):
    """(run name or None, bench result) for each run in a file: a bench JSON is one run; a set of runs is
    {"runs": [{"file", "result"}, ...]} (older sets list the bench results themselves)."""
    with open(path) as f:
        data = json.load(f)
    if "runs" not in data:
        return [(None, data)]
    return [(run.get("file"), run.get("result", run)) for run in data["runs"]]


def case_figures(c):
    """The figures of one case of a bench result, as flat numbers (None where not run); times in ms."""
    if "skipped" in c:
        return {"skipped": c["skipped"]}
    if c.get("op") == "dispatch" or "variants" in c:  # the dispatch op's own layout
        ms = {v: x["t_s"] * 1e3 for v, x in c["variants"].items() if x and x.get("t_s") is not None}
        samples = {v: x.get("samples_s") or [] for v, x in c["variants"].items() if x}
    else:
        ms = {v: c[k] * 1e3 for v, k in TIMES.items() if c.get(k) is not None}
        if "library" in ms and ms["library"] == 0:
            del ms["library"]  # the bench writes 0 when the library variant did not run
        samples = {v: c.get("samples_s", {}).get(s) or [] for v, s in SAMPLES.items()}
    fig = {}
    torch = c.get("torch") or {}
    if torch.get("available") and torch.get("t_s") is not None:
        ms["torch"] = torch["t_s"] * 1e3
        samples["torch"] = torch.get("samples_s") or []
    python = c.get("python") or {}
    if python.get("available") and python.get("t_s") is not None:
        ms["python"] = python["t_s"] * 1e3
        samples["python"] = python.get("samples_s") or []
        if python.get("over_native") is not None:
            fig["python_over_native"] = python["over_native"]
    roof = c.get("roofline") or {}
    if roof.get("t_s"):
        ms["roofline"] = roof["t_s"] * 1e3
    fig.update({"ms": ms, "samples": samples})
    for k in RATIOS + OTHER:
        if c.get(k) is not None:
            fig[k] = c[k]
    if c.get("op") == "dispatch" or "variants" in c:
        for v in ("fused_per_call", "aclnn"):
            if "torch" in ms and v in ms and ms[v] > 0:
                fig["torch_over_" + v] = ms["torch"] / ms[v]
        if "torch" in ms and ms.get("fused"):
            fig["torch_over_fused"] = ms["torch"] / ms["fused"]
        if "python" in ms and ms.get("fused"):
            fig["python_over_fused"] = ms["python"] / ms["fused"]
    fig["verified"] = c.get("verified", True)
    fig["h1"] = h1_of(c)
    if roof.get("bound"):
        fig["roofline_bound"] = roof["bound"]
    return fig


def case_key(c):
    """What makes cases of several runs one case of a record (H1 may differ: calibration picks it per run)."""
    return {"case": c.get("name", c.get("case")), "dtype": c["dtype"], "W": c["W"], "e": c["e"]}


def h1_of(c):
    return (c.get("shape") or {}).get("h1", c.get("h1"))


def host_of(result):
    """A short description of the machine a result was measured on (None when the JSON has no machine)."""
    m = result.get("machine")
    if not m:
        return None
    text = "%s family %s model %s, %s cores" % (
        m.get("cpu_model", "?"), m.get("cpu_family", "?"), m.get("cpu_model_number", "?"), m.get("cores", "?"))
    routes = m.get("gemm_routes") or {}
    isa = routes.get("isa_level") or m.get("peak", {}).get("isa_level")
    if isa:
        text += ", ISA level " + isa
        if routes.get("isa_cap"):
            text += " (capped: GMMAV_MAX_CPU_ISA=%s)" % routes["isa_cap"]
    if m.get("onednn_version"):
        text += ", oneDNN " + m["onednn_version"]
    return text


def host_ceilings(results):
    """The machine's ceilings over the runs (best of each), as the roofline uses them."""
    best = {}
    for r in results:
        m = r.get("machine") or {}
        peak = m.get("peak") or {}
        for name, value in (("fp32_gflops", peak.get("fp32_gflops_all_cores")),
                            ("bf16_dot_gflops", peak.get("bf16_dot_gflops_all_cores")),
                            ("read_gbps", (m.get("read_gbps") or {}).get("1GiB_all_cores"))):
            if value:
                best[name] = max(best.get(name, 0), value)
    return {k: round(v, 1) for k, v in best.items()}


# ---- records --------------------------------------------------------------------------------------------------

# A record's cases are rows of these columns (the file names them once): what docs/performance.md's tables show.
# Times are medians in ms (roofline: the least time of a call); *_min_ms/*_max_ms the spread; ratios as the bench's
# JSON names them (medians over the runs); null where a variant did not run.
MS = ["fused", "gemm_alone", "a2a_alone", "sequential", "per_expert", "library", "fused_per_call", "aclnn", "torch",
      "roofline", "python"]
SPREAD = ["fused", "gemm_alone", "a2a_alone", "torch"]
RATIOS_KEPT = [k for k in RATIOS if k not in ("torch_over_fused_per_call", "torch_over_aclnn")]  # = ms ratios
COLUMNS = (["case", "dtype", "W", "e", "h1", "runs", "verified"] + [v + "_ms" for v in MS]
           + [v + m for v in SPREAD for m in ("_min_ms", "_max_ms")] + RATIOS_KEPT + OTHER + ["skipped"] + EXTRA)


def significant(x, digits):
    """x rounded to `digits` significant digits (None stays None)."""
    if x is None or x == 0:
        return x
    return round(float(x), digits - 1 - int(math.floor(math.log10(abs(x)))))


def median_of(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def case_row(key, figs):
    """One case of a record: the medians over the runs of each figure, and the spread of the times (over the
    samples of a single run, over the runs' medians otherwise). H1: one value, or "min-max" over the runs."""
    row = dict.fromkeys(COLUMNS)
    row.update(key)
    ran = [f for f in figs if "skipped" not in f]
    row["runs"] = len(ran)
    if not ran:
        row["skipped"] = figs[0]["skipped"]
        return row
    row["verified"] = all(f["verified"] for f in ran)
    h1s = sorted({f["h1"] for f in ran if f["h1"] is not None})
    row["h1"] = h1s[0] if len(h1s) == 1 else "%d-%d" % (h1s[0], h1s[-1]) if h1s else None
    for v in MS:
        row[v + "_ms"] = significant(median_of([f["ms"].get(v) for f in ran]), 7)
    for v in SPREAD:
        values = [x * 1e3 for x in ran[0]["samples"].get(v, [])] if len(ran) == 1 else [f["ms"].get(v) for f in ran]
        values = [x for x in values if x is not None]
        if len(values) > 1:
            row[v + "_min_ms"], row[v + "_max_ms"] = significant(min(values), 4), significant(max(values), 4)
    for k in RATIOS_KEPT:
        row[k] = significant(median_of([f.get(k) for f in ran]), 7)
    for k in OTHER:
        value = median_of([f.get(k) for f in ran])
        row[k] = None if value is None else round(value)
    for k in EXTRA:
        row[k] = significant(median_of([f.get(k) for f in ran]), 7)
    return row


def make_record(results, label, commit=None, command=None, host=None, when=None, note=None, sources=None):
    """One curated record from the bench results of one session's runs of one command (medians over the runs)."""
    groups = collections.OrderedDict()
    for result in results:
        for c in result.get("cases", []):
            key = case_key(c)
            groups.setdefault(tuple(key.values()), (key, []))[1].append(case_figures(c))
    first = results[0] if results else {}
    run = first.get("run") or {}
    record = collections.OrderedDict()
    record["label"] = label
    record["when"] = when or run.get("finished_utc")
    record["git_commit"] = commit or run.get("git_commit")
    record["command"] = command or run.get("command")
    record["host"] = host or host_of(first)
    record["ceilings"] = host_ceilings(results)
    record["run"] = {"op": first.get("op", "combine"), "backend": run.get("backend"), "quick": run.get("quick"),
                     "repeat": run.get("repeat"), "runs": len(results),
                     "spread": "samples" if len(results) == 1 else "runs"}
    if note:
        record["note"] = note
    if sources:
        record["sources"] = sources
    record["cases"] = [case_row(key, figs) for key, figs in groups.values()]
    return record


ABOUT = ("Curated `gmmav bench` results the docs cite (docs/decisions/D99.md). One record per label: the host, "
         "commit, command, and one row per case (the columns below): medians over the runs in ms, spreads (min, max: "
         "over the samples of one run, or over the runs' medians), ratios as the bench's JSON names them. Add runs "
         "with bench/report/bench_summary.py --add; docs/performance.md's generated tables come from here.")


def load_curated(path):
    """The curated file with each case as a dict of COLUMNS."""
    if not os.path.exists(path):
        return {"schema": SCHEMA, "about": ABOUT, "columns": COLUMNS, "records": []}
    with open(path) as f:
        data = json.load(f)
    if data.get("schema") != SCHEMA:
        sys.exit("%s: schema %s, expected %d" % (path, data.get("schema"), SCHEMA))
    columns = data["columns"]
    for rec in data["records"]:
        rec["cases"] = [dict(zip(columns, row)) for row in rec["cases"]]
    return data


def dump_curated(data):
    """The curated file's text: one line per case, so diffs show which figures changed."""
    out = ['{', '  "schema": %d,' % SCHEMA, '  "about": %s,' % json.dumps(ABOUT),
           '  "columns": %s,' % json.dumps(COLUMNS), '  "records": [']
    for i, rec in enumerate(data["records"]):
        out.append("    {")
        for k, v in rec.items():
            if k != "cases":
                out.append("      %s: %s," % (json.dumps(k), json.dumps(v)))
        out.append('      "cases": [')
        rows = [json.dumps([c.get(col) for col in COLUMNS], separators=(",", ":")) for c in rec["cases"]]
        out.append(",\n".join("        " + r for r in rows))
        out.append("      ]")
        out.append("    }" + ("," if i + 1 < len(data["records"]) else ""))
    out += ["  ]", "}"]
    return "\n".join(out) + "\n"


def add(curated_path, files, label, replace=False, **meta):
    data = load_curated(curated_path)
    results, sources = [], []
    for path in files:
        results += [result for _, result in runs_of(path)]
        sources.append(os.path.basename(path))
    if not results:
        sys.exit("--add: no runs in %s" % " ".join(files))
    record = make_record(results, label, sources=sources, **meta)
    labels = [r["label"] for r in data["records"]]
    if label in labels:
        if not replace:
            sys.exit("--add: %s already has a record %r (--replace to overwrite it)" % (curated_path, label))
        data["records"][labels.index(label)] = record
    else:
        data["records"].append(record)
    with open(curated_path, "w") as f:
        f.write(dump_curated(data))
    return record


def select(records, patterns):
    """The records whose labels match the patterns (globs), in the patterns' order. PATTERN=SHOWN shows its
    records as SHOWN in the tables (the docs' own row labels); strip=PREFIX shows the labels without PREFIX;
    cases=A,B keeps only those cases."""
    options = {k: p.split("=", 1)[1] for p in patterns for k in ("cases", "strip") if p.startswith(k + "=")}
    cases = options["cases"].split(",") if "cases" in options else None
    prefix = options.get("strip", "")
    chosen, seen = [], set()
    for p in patterns:
        if p.split("=", 1)[0] in ("cases", "strip"):
            continue
        pattern, _, shown = p.partition("=")
        hits = [r for r in records if fnmatch.fnmatchcase(r["label"], pattern) and r["label"] not in seen]
        if not hits:
            raise KeyError("no record labelled %r" % pattern)
        seen.update(r["label"] for r in hits)
        for r in hits:
            label = shown or (r["label"][len(prefix):] if prefix and r["label"].startswith(prefix) else r["label"])
            chosen.append(dict(r, label=label) if label != r["label"] else r)
    if cases:
        chosen = [dict(r, cases=[c for c in r["cases"] if c["case"] in cases]) for r in chosen]
    return chosen


# ---- tables ---------------------------------------------------------------------------------------------------

def num(x, fmt="%.2f"):
    return "" if x is None else fmt % x


def ms_cell(x):
    """json_to_markdown.py's per-run times: 3 decimals below 100 ms, 1 above."""
    return "" if x is None else ("%.3f" % x if x < 100 else "%.1f" % x)


def ratio(a, b):
    return a / b if a is not None and b else None


def has_python(records):
    """Whether any case of the records timed gmmav's Python path (records before session 14 did not)."""
    return any(c.get("python_ms") is not None for rec in records for c in rec["cases"])


def entry_table(records):
    """Decode/prefill as users call them: the entry points, the library, PyTorch and the roofline (issue 31);
    gmmav's Python path (py/fused, and py/native: against the native call interleaved with it) where it ran."""
    py = has_python(records)
    rows = ["| case | fused ms | per call | aclnn | " + ("py/fused | py/native | " if py else "")
            + "gemm alone | lib | g/lib | PyTorch | torch/fused | roof ms | f/roof | torch/roof |",
            "|---|--:|--:|--:|" + ("--:|--:|" if py else "") + "--:|--:|--:|--:|--:|--:|--:|--:|"]
    many = len(records) > 1
    for rec in records:
        for c in rec["cases"]:
            name = "%s %s" % (c["case"], c["dtype"]) + (" (%s)" % rec["label"] if many else "")
            if c["skipped"]:
                rows.append("| %s | skipped: %s |||||||||||" % (name, c["skipped"]) + ("||" if py else ""))
                continue
            cells = [name, num(c["fused_ms"], "%.1f"), num(c["fused_per_call_ms"], "%.1f"), num(c["aclnn_ms"], "%.1f")]
            if py:
                cells += [num(ratio(c.get("python_ms"), c["fused_ms"])), num(c.get("python_over_native"))]
            cells += [num(c["gemm_alone_ms"], "%.1f"), num(c["library_ms"], "%.1f"), num(c["gemm_vs_library"]),
                      num(c["torch_ms"], "%.1f"), num(c["torch_over_fused"]), num(c["roofline_ms"], "%.1f"),
                      num(c["fused_over_roofline"]), num(ratio(c["torch_ms"], c["roofline_ms"]))]
            rows.append("| " + " | ".join(cells) + " |")
    return rows


def medians_table(records):
    """json_to_markdown.py --median's columns: one row per record, case and dtype."""
    rows = ["| runs of | case | dtype | fused ms | gemm_alone | a2a_alone | sequential | fused / CPU-aware bound "
            "| fused / bound | x seq | overlap % | best overlap % | other CPU % | runs |",
            "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for rec in records:
        for c in rec["cases"]:
            if c["skipped"]:
                rows.append("| %s | %s | %s | skipped: %s ||||||||||" % (
                    rec["label"], c["case"], c["dtype"], c["skipped"]))
                continue
            rows.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d |" % (
                rec["label"], c["case"], c["dtype"], num(c["fused_ms"]), num(c["gemm_alone_ms"]),
                num(c["a2a_alone_ms"]), num(c["sequential_ms"]), num(c["fused_over_cpu_bound"]),
                num(c["fused_over_bound"]), num(c["speedup_vs_sequential"]), num(c["overlap_pct"], "%.0f"),
                num(c["max_overlap_pct"], "%.0f"), num(c["contention_pct"], "%.0f"), c["runs"]))
    return rows


def per_run_table(records):
    """json_to_markdown.py's per-run columns: every figure of one run per case."""
    rows = ["| run | case | W | e | dtype | H1 | fused ms | gemm_alone | a2a_alone | sequential | per_expert | library "
            "| overlap % | fused/bound | × seq | × per-exp | gemm/lib | GFLOP/s | other CPU |",
            "|---|---|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for rec in records:
        for c in rec["cases"]:
            if c["skipped"]:
                rows.append("| %s | %s | %s | %s | %s | | skipped: %s |||||||||||||" % (
                    rec["label"], c["case"], c["W"], c["e"], c["dtype"], c["skipped"]))
                continue
            flag = "" if c["verified"] else " **check failed**"
            rows.append("| %s | %s%s | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s "
                        "| %s |" % (
                            rec["label"], c["case"], flag, c["W"], c["e"], c["dtype"], c["h1"], ms_cell(c["fused_ms"]),
                            ms_cell(c["gemm_alone_ms"]), ms_cell(c["a2a_alone_ms"]), ms_cell(c["sequential_ms"]),
                            ms_cell(c["per_expert_ms"]), ms_cell(c["library_ms"] or 0.0),
                            num(c["overlap_pct"], "%.0f"), num(c["fused_over_bound"]),
                            num(c["speedup_vs_sequential"]), num(c["speedup_vs_per_expert"]),
                            num(c["gemm_vs_library"]), num(c["gflops"], "%.0f"),
                            num(c["contention_pct"] or 0, "%.0f %%")))
    return rows


def dispatch_table(records):
    """The entry points of either op against the PyTorch composite (session 6's table); py/fused and py/native
    where gmmav's Python path ran."""
    py = has_python(records)
    rows = ["| op | case | dtype | fused | per call | aclnn | " + ("py/fused | py/native | " if py else "")
            + "PyTorch | PyTorch / fused | / per call | / aclnn |",
            "|---|---|---|--:|--:|--:|" + ("--:|--:|" if py else "") + "--:|--:|--:|--:|"]
    for rec in records:
        for c in rec["cases"]:
            cells = [rec["run"]["op"], c["case"], c["dtype"], num(c["fused_ms"], "%.1f"),
                     num(c["fused_per_call_ms"], "%.1f"), num(c["aclnn_ms"], "%.1f")]
            if py:
                cells += [num(ratio(c.get("python_ms"), c["fused_ms"])), num(c.get("python_over_native"))]
            cells += [num(c["torch_ms"], "%.1f"), num(ratio(c["torch_ms"], c["fused_ms"])),
                      num(ratio(c["torch_ms"], c["fused_per_call_ms"])), num(ratio(c["torch_ms"], c["aclnn_ms"]))]
            rows.append("| " + " | ".join(cells) + " |")
    return rows


TABLES = {"entry": entry_table, "medians": medians_table, "per-run": per_run_table, "dispatch": dispatch_table}


def table(kind, records):
    if kind not in TABLES:
        raise KeyError("unknown table kind %r (one of %s)" % (kind, ", ".join(TABLES)))
    return "\n".join(TABLES[kind](records))


# ---- generated sections of the docs ---------------------------------------------------------------------------

BEGIN = re.compile(r"^<!-- bench-summary:begin (\S+) (.+) -->$")
END = "<!-- bench-summary:end -->"


def regenerate(text, records, where="docs"):
    """The text with every generated section rebuilt from the records; raises ValueError on a malformed one."""
    lines = text.split("\n")
    out, i, sections = [], 0, 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        i += 1
        m = BEGIN.match(line)
        if not m:
            if line.startswith("<!-- bench-summary:"):
                raise ValueError("%s:%d: expected '<!-- bench-summary:begin KIND LABEL... -->', got %r" % (where, i, line))
            continue
        end = next((j for j in range(i, len(lines)) if lines[j].startswith("<!-- bench-summary:")), None)
        if end is None or lines[end] != END:
            raise ValueError("%s:%d: section without '%s'" % (where, i, END))
        try:
            # Blank lines around the table: Markdown ends the comment's HTML block and the table cleanly.
            out += ["", table(m.group(1), select(records, shlex.split(m.group(2)))), ""]
        except (KeyError, ValueError) as e:  # unknown kind or label; unbalanced quotes
            raise ValueError("%s:%d: %s" % (where, i, e.args[0]))
        out.append(END)
        i = end + 1
        sections += 1
    return "\n".join(out), sections


def first_difference(a, b):
    al, bl = a.split("\n"), b.split("\n")
    for n, (x, y) in enumerate(zip(al, bl), 1):
        if x != y:
            return "line %d:\n  in the file: %s\n  generated:   %s" % (n, x, y)
    return "line %d: the lengths differ" % (min(len(al), len(bl)) + 1)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--add", nargs="+", metavar="RUN.json", help="add these runs as one record (--label)")
    mode.add_argument("--write", action="store_true", help="rewrite the generated sections of --docs")
    mode.add_argument("--check", action="store_true", help="fail when a generated section of --docs differs")
    mode.add_argument("--table", nargs="+", metavar=("KIND", "LABEL"), help="print one table: KIND LABEL...")
    ap.add_argument("--curated", default=CURATED, help="the curated file (default: %(default)s)")
    ap.add_argument("--docs", action="append", help="Markdown file with generated sections (default: %s)" % DOCS)
    ap.add_argument("--label", help="--add: the record's label, e.g. s12-zen4-decode-prefill")
    ap.add_argument("--replace", action="store_true", help="--add: replace a record with the same label")
    ap.add_argument("--commit", help="--add: git commit (default: the JSON's run.git_commit)")
    ap.add_argument("--command", help="--add: the bench command (default: the JSON's run.command)")
    ap.add_argument("--host", help="--add: host description (default: from the JSON's machine)")
    ap.add_argument("--when", help="--add: date of the runs (default: the JSON's run.finished_utc)")
    ap.add_argument("--note", help="--add: one line on what the runs were for")
    a = ap.parse_args(argv)
    if a.add:
        if not a.label:
            ap.error("--add needs --label")
        rec = add(a.curated, a.add, a.label, a.replace, commit=a.commit, command=a.command, host=a.host, when=a.when,
                  note=a.note)
        print("%s: record %r, %d cases from %d run(s)" % (a.curated, a.label, len(rec["cases"]), rec["run"]["runs"]))
        return 0
    records = load_curated(a.curated)["records"]
    if a.table:
        try:
            print(table(a.table[0], select(records, a.table[1:])))
        except KeyError as e:
            sys.exit("bench_summary: %s" % e.args[0])
        return 0
    status = 0
    for path in a.docs or [DOCS]:
        with open(path) as f:
            text = f.read()
        try:
            new, sections = regenerate(text, records, path)
        except ValueError as e:
            print("bench_summary: %s" % e, file=sys.stderr)
            return 1
        if a.check:
            if new != text:
                print("bench_summary: %s: a generated section differs from %s; run bench/report/bench_summary.py "
                      "--write\n%s" % (path, a.curated, first_difference(text, new)), file=sys.stderr)
                status = 1
            else:
                print("%s: %d generated section(s) match %s" % (path, sections, a.curated))
        elif new != text:
            with open(path, "w") as f:
                f.write(new)
            print("%s: rewrote %d generated section(s)" % (path, sections))
        else:
            print("%s: %d generated section(s) already up to date" % (path, sections))
    return status


if __name__ == "__main__":
    sys.exit(main())
