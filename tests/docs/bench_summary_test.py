#!/usr/bin/env python3
"""ctest docs.bench_summary_self_test: bench/report/bench_summary.py on a small fixture (one decode case and one
case skipped for memory, three samples each): --add makes a record with the run's medians and spreads, --write fills
a Markdown file's generated sections, --check passes on it and fails once a generated table is edited by hand, and
malformed sections or unknown labels fail with a clear message; rows can be shown under the docs' own labels and
restricted to some cases.

    bench_summary_test.py [REPO]      (default: the repository this file is in)
"""
import json
import os
import subprocess
import sys
import tempfile

REPO = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "bench", "report", "bench_summary.py")
JSON_TO_MARKDOWN = os.path.join(REPO, "bench", "report", "json_to_markdown.py")
FIXTURE = os.path.join(REPO, "tests", "docs", "bench_run_fixture.json")

DOC = """# Fixture doc

Prose the script must leave alone.

<!-- bench-summary:begin entry fixture-run -->
<!-- bench-summary:end -->

Between the sections.

<!-- bench-summary:begin medians fixture-* -->
stale text that --write replaces
<!-- bench-summary:end -->
"""

failures = []


def expect(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL: " + what)


def run(args, rc):
    p = subprocess.run([sys.executable, SCRIPT] + args, capture_output=True, text=True)
    expect(p.returncode == rc, "bench_summary.py %s: exit %d, expected %d\n%s%s" % (
        " ".join(args), p.returncode, rc, p.stdout, p.stderr))
    return p


def main():
    with open(FIXTURE) as f:
        fixture = json.load(f)
    case = fixture["cases"][0]
    with tempfile.TemporaryDirectory() as tmp:
        curated = os.path.join(tmp, "curated.json")
        doc = os.path.join(tmp, "perf.md")
        with open(doc, "w") as f:
            f.write(DOC)
        files = ["--curated", curated, "--docs", doc]

        # add: one record, the run's figures, its provenance from the JSON.
        run(["--curated", curated, "--add", FIXTURE, "--label", "fixture-run", "--note", "test"], 0)
        with open(curated) as f:
            data = json.load(f)
        rec = data["records"][0]
        row = dict(zip(data["columns"], rec["cases"][0]))
        expect(rec["label"] == "fixture-run" and rec["git_commit"] == "29621db12345", "label/commit not recorded")
        expect(rec["command"] == fixture["run"]["command"] and rec["when"] == fixture["run"]["finished_utc"],
               "command/date not taken from the run")
        expect("AMD EPYC family 25 model 17" in rec["host"] and "avx512_bf16" in rec["host"], "host: " + rec["host"])
        expect(abs(row["fused_ms"] - case["t_fused_s"] * 1e3) < 1e-4, "fused_ms is not the run's median")
        expect(abs(row["fused_min_ms"] - min(case["samples_s"]["fused"]) * 1e3) < 1e-2
               and abs(row["fused_max_ms"] - max(case["samples_s"]["fused"]) * 1e3) < 1e-2, "fused spread is not the samples'")
        expect(abs(row["torch_ms"] - case["torch"]["t_s"] * 1e3) < 1e-4, "torch_ms missing")
        expect(row["runs"] == 1 and row["verified"] is True and row["h1"] == 1792, "runs/verified/h1")
        skipped = dict(zip(data["columns"], rec["cases"][1]))
        expect(skipped["case"] == "prefill" and "memory-limit" in skipped["skipped"] and skipped["runs"] == 0,
               "the skipped case is not kept with its reason")
        expect("samples_s" not in open(curated).read(), "samples leaked into the curated file")

        # The same label again: refused unless --replace.
        p = run(["--curated", curated, "--add", FIXTURE, "--label", "fixture-run"], 1)
        expect("already has a record" in p.stderr, "no clear message for a duplicate label")
        run(["--curated", curated, "--add", FIXTURE, "--label", "fixture-run", "--replace"], 0)

        # Two runs of one command: medians over the runs, spread over the runs' medians.
        slower = json.loads(json.dumps(fixture))
        slower["cases"][0]["t_fused_s"] *= 2
        second = os.path.join(tmp, "run-2.json")
        with open(second, "w") as f:
            json.dump(slower, f)
        run(["--curated", curated, "--add", FIXTURE, second, "--label", "fixture-two"], 0)
        with open(curated) as f:
            data = json.load(f)
        two = dict(zip(data["columns"], data["records"][1]["cases"][0]))
        expect(two["runs"] == 2 and abs(two["fused_ms"] - 1.5 * case["t_fused_s"] * 1e3) < 1e-3,
               "two runs: fused_ms is not their median")
        expect(abs(two["fused_max_ms"] - 2 * case["t_fused_s"] * 1e3) < 1e-2, "two runs: spread is not over the runs")

        # gmmav's Python path (bench --python, session 14 on): kept per case; the entry table shows py/fused and
        # py/native only for records that have it, so older tables stay as they were.
        with_py = json.loads(json.dumps(fixture))
        with_py["cases"][0]["python"] = {"available": True, "t_s": case["t_fused_s"] * 1.02,
                                         "samples_s": [case["t_fused_s"] * 1.02], "over_native": 1.01}
        py_run = os.path.join(tmp, "run-py.json")
        with open(py_run, "w") as f:
            json.dump(with_py, f)
        run(["--curated", curated, "--add", py_run, "--label", "fixture-py"], 0)
        with open(curated) as f:
            data = json.load(f)
        py_row = dict(zip(data["columns"], data["records"][2]["cases"][0]))
        expect(abs(py_row["python_ms"] - case["t_fused_s"] * 1.02e3) < 1e-4 and py_row["python_over_native"] == 1.01,
               "python_ms / python_over_native not kept: %s / %s" % (py_row["python_ms"], py_row["python_over_native"]))
        p = run(["--curated", curated, "--table", "entry", "fixture-py"], 0)
        expect("py/fused | py/native" in p.stdout and "| 1.02 | 1.01 |" in p.stdout, "entry table without py/fused:\n" + p.stdout)
        p = run(["--curated", curated, "--table", "entry", "fixture-run"], 0)
        expect("py/fused" not in p.stdout, "a record without the Python path grew py columns")

        # generate -> check passes; the prose is untouched.
        run(["--check"] + files, 1)  # not generated yet
        run(["--write"] + files, 0)
        text = open(doc).read()
        expect("Prose the script must leave alone." in text and "Between the sections." in text, "prose changed")
        expect("stale text" not in text, "--write left the stale section")
        fused = "%.1f" % (case["t_fused_s"] * 1e3)
        expect("| decode bf16 | %s |" % fused in text, "entry table has no decode row with fused %s ms" % fused)
        expect("| fixture-run | decode | bf16 |" in text and "| fixture-two | decode | bf16 |" in text,
               "medians table misses a record matched by fixture-*")
        expect("| prefill bf16 | skipped: estimated peak" in text, "the skipped case is not in the entry table")
        p = run(["--check"] + files, 0)
        expect("2 generated section(s) match" in p.stdout, "check does not count the sections")
        run(["--write"] + files, 0)
        expect(open(doc).read() == text, "--write is not idempotent")

        # Row labels as the docs show them (LABEL=SHOWN, strip=PREFIX) and a subset of the cases (cases=...).
        p = run(["--curated", curated, "--table", "medians", "fixture-run=before, 1 Gbit/s", "strip=fixture-",
                 "fixture-two", "cases=decode"], 0)
        rows = p.stdout.rstrip("\n").split("\n")[2:]
        expect([r.split(" | ")[0] for r in rows] == ["| before, 1 Gbit/s", "| two"], "shown labels: %s" % rows)
        expect(all(" | decode | " in r for r in rows), "cases=decode kept another case: %s" % rows)
        expect(text.count("| fixture-") > 2 and "| prefill | bf16 | skipped:" in text,
               "without cases=, the medians table lost the skipped case")

        # A hand edit of a generated table fails the check, naming the line.
        with open(doc, "w") as f:
            f.write(text.replace("| decode bf16 | %s |" % fused, "| decode bf16 | 0.1 |"))
        p = run(["--check"] + files, 1)
        expect("differs" in p.stderr and "| decode bf16 | 0.1 |" in p.stderr, "the failed check does not show the line")

        # Malformed sections and unknown labels fail clearly.
        for body, message in (("<!-- bench-summary:begin entry nothing-like-this -->\n<!-- bench-summary:end -->\n",
                               "no record labelled 'nothing-like-this'"),
                              ("<!-- bench-summary:begin entry fixture-run -->\n| no end\n", "section without"),
                              ("<!-- bench-summary:begin table fixture-run -->\n<!-- bench-summary:end -->\n",
                               "unknown table kind"),
                              ("<!-- bench-summary:begin -->\n<!-- bench-summary:end -->\n",
                               "expected '<!-- bench-summary:begin")):
            with open(doc, "w") as f:
                f.write(body)
            p = run(["--check"] + files, 1)
            expect(message in p.stderr, "no clear message (%s): %s" % (message, p.stderr))

        # json_to_markdown.py prints the same medians table from the raw runs.
        p = subprocess.run([sys.executable, JSON_TO_MARKDOWN, "--median", FIXTURE, second, "--label", "fixture-two",
                            "--label", "fixture-two"], capture_output=True, text=True)
        expect(p.returncode == 0 and "| fixture-two | decode | bf16 |" in p.stdout, "json_to_markdown --median: " + p.stderr)
        expect(p.stdout.split("\n")[2] == [x for x in text.split("\n") if x.startswith("| fixture-two | decode")][0],
               "json_to_markdown and bench_summary disagree on a row")

    print("bench_summary_test: %s" % ("%d failure(s)" % len(failures) if failures else "all checks passed"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
