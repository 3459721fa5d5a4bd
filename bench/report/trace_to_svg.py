#!/usr/bin/env python3
"""Renders a `gmmav bench --trace` file (Chrome/Perfetto "traceEvents" JSON) as an SVG timeline.

One lane per (rank, thread): the rank's own thread (meet, poll, finish), every pool worker that
computed a tile for that rank, and (in-process) the rows arriving in the rank's y. Routed tiles are
coloured by local expert; shared-expert tiles are known only by their end (a tick). Standard
library only:  trace_to_svg.py TRACE.json OUT.svg [--width 1400]
"""
import argparse
import html
import json

EXPERT_COLOURS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7"]
COMM_COLOURS = {"meet": "#9c9c9c", "finish (all rows in)": "#c7c7c7", "poll": "#d4a6c8", "wait (count check)": "#e8b0b0",
                "wait (staging slot or count check)": "#e8b0b0"}


def lane_name(pid, tid, names):
    return "rank %d: %s" % (pid, names.get((pid, tid), "thread %d" % tid))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trace")
    ap.add_argument("out")
    ap.add_argument("--width", type=int, default=1400)
    a = ap.parse_args()
    doc = json.load(open(a.trace))
    events = doc["traceEvents"]
    meta = doc.get("metadata", {})
    names = {(e["pid"], e.get("tid", 0)): e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    timed = [e for e in events if e["ph"] in ("X", "i")]
    lanes = sorted({(e["pid"], e["tid"]) for e in timed})
    t0 = min(e["ts"] for e in timed)
    t1 = max(e["ts"] + e.get("dur", 0) for e in timed)
    span = max(t1 - t0, 1e-3)

    left, right, top, lane_h, gap = 230, 20, 58, 15, 3
    plot_w = a.width - left - right
    height = top + len(lanes) * (lane_h + gap) + 70

    def x(t):
        return left + (t - t0) / span * plot_w

    row = {lane: top + i * (lane_h + gap) for i, lane in enumerate(lanes)}

    svg_open = '<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">'
    out = [svg_open % (a.width, height), '<rect width="100%" height="100%" fill="white"/>']
    title = "gmmav bench --trace: one fused call, case %s, %s, W=%s, e=%s, %s, H1=%s, N1=%s" % (
        meta.get("case", "?"), meta.get("backend", "?"), meta.get("W", "?"), meta.get("e", "?"), meta.get("dtype", "?"),
        meta.get("h1", "?"), meta.get("n1", "?"))
    out.append('<text x="%d" y="18" font-size="14" font-weight="bold">%s</text>' % (left, html.escape(title)))
    # Time axis.
    step = 10 ** len(str(int(span / 8))) / 10 if span >= 8 else 1
    while span / step > 12:
        step *= 2
    t = 0.0
    while t <= span:
        xx = x(t0 + t)
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eee"/>' % (xx, top - 6, xx, height - 60))
        label = "%.3g ms" % (t / 1000) if span >= 1000 else "%.0f µs" % t
        out.append('<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%s</text>' % (xx, top - 10, label))
        t += step
    # Lanes.
    prev_pid = None
    for lane in lanes:
        y = row[lane]
        if prev_pid is not None and lane[0] != prev_pid:
            out.append('<line x1="0" y1="%d" x2="%d" y2="%d" stroke="#888"/>' % (y - 2, a.width, y - 2))
        prev_pid = lane[0]
        label = html.escape(lane_name(lane[0], lane[1], names))
        out.append('<text x="%d" y="%d" text-anchor="end">%s</text>' % (left - 6, y + lane_h - 3, label))
    # Spans, then instants on top.
    for e in sorted(timed, key=lambda e: e["ph"] != "X"):
        y = row[(e["pid"], e["tid"])]
        tip = "%s (%s) at %.1f µs" % (e["name"], e.get("cat", ""), e["ts"] - t0)
        if e["ph"] == "X":
            if e["name"] == "gmmav::run":
                out.append('<rect x="%.2f" y="%d" width="%.2f" height="3" fill="#333"><title>%s, %.1f µs</title></rect>' % (
                    x(e["ts"]), y + lane_h - 3, max(e["dur"] / span * plot_w, 0.5), html.escape(tip), e["dur"]))
                continue
            if e.get("cat") == "tile":
                colour = EXPERT_COLOURS[e["args"]["expert"] % len(EXPERT_COLOURS)]
            else:
                colour = COMM_COLOURS.get(e["name"], "#bbbbbb")
            h = lane_h if e.get("cat") == "tile" else lane_h - 4
            rect = ('<rect x="%.2f" y="%d" width="%.2f" height="%d" fill="%s" stroke="white" stroke-width="0.3">'
                    '<title>%s, %.1f µs</title></rect>')
            out.append(rect % (x(e["ts"]), y, max(e["dur"] / span * plot_w, 0.6), h, colour, html.escape(tip), e["dur"]))
        else:
            colour = {"arrival": "#1f4e79", "shared": "#000000", "send": "#d35400"}.get(e.get("cat"), "#555")
            xx = x(e["ts"])
            out.append('<line x1="%.2f" y1="%d" x2="%.2f" y2="%d" stroke="%s" stroke-width="1"><title>%s</title></line>' % (
                xx, y + 1, xx, y + lane_h - 1, colour, html.escape(tip)))
    # Legend.
    ly = height - 40
    experts = sorted({e["args"]["expert"] for e in timed if e.get("cat") == "tile"})
    lx = left
    for j in experts:
        out.append('<rect x="%d" y="%d" width="12" height="10" fill="%s"/><text x="%d" y="%d">expert %d tiles</text>' % (
            lx, ly, EXPERT_COLOURS[j % len(EXPERT_COLOURS)], lx + 16, ly + 9, j))
        lx += 105
    for name, colour in COMM_COLOURS.items():
        key = '<rect x="%d" y="%d" width="12" height="10" fill="%s"/><text x="%d" y="%d">%s</text>'
        out.append(key % (lx, ly, colour, lx + 16, ly + 9, name))
        lx += 150
    ly += 18
    lx = left
    for label, colour in (("| shared-expert tile done", "#000000"), ("| rows arrived in y (in-process)", "#1f4e79"),
                          ("| tile queued for MPI send", "#d35400"), ("▁ gmmav::run", "#333")):
        out.append('<text x="%d" y="%d" fill="%s">%s</text>' % (lx, ly + 9, colour, html.escape(label)))
        lx += 230
    out.append("</svg>")
    with open(a.out, "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
