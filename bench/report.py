"""Render the latest benchmark run as docs/benchmarks.md and docs/benchmarks.png.

Input: bench/results/latest.json and latest.txt (written by bench/run.py).
The markdown carries the command, the harness's table verbatim, and the
issue's targets checked against this one run; the PNG shows the median
latency of each phase per runtime (matplotlib, a bench-only dependency;
without it the chart is skipped with a note).

usage: report.py [RESULTS_DIR] [DOCS_DIR]
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

# (metric key, what the issue asks of pyrunc / runc, limit)
TARGETS = (
    ("run", "run `true`", 0.8),
    ("lifecycle.total", "lifecycle sum (create + start + wait + delete)", 0.9),
    ("state", "state", 1.2),
    ("exec", "exec `true`", 1.0),
    ("throughput", "throughput (50 sequential runs)", 0.9),
    ("parallel", "parallel (8 workers, 40 containers)", 0.9),
    ("mem.create_hwm", "peak RSS of the `create` process", 1.0),
    ("mem.init_uss", "USS of a created, not started init", 1.0),
)

LATENCY = (("run", "run"), ("lifecycle.create", "create"), ("lifecycle.start", "start"),
           ("lifecycle.delete", "delete"), ("state", "state"), ("exec", "exec"))
BATCH = (("throughput", "throughput\n50x run"), ("parallel", "parallel\n8w/40"))
MEMORY = (("mem.create_hwm", "create\npeak RSS"), ("mem.init_uss", "created init\nUSS"))
COLORS = {"runc": "#4c72b0", "crun": "#55a868", "pyrunc": "#dd8452", "floor": "#999999"}


def load(results):
    with open(os.path.join(results, "latest.json")) as f:
        doc = json.load(f)
    with open(os.path.join(results, "latest.txt")) as f:
        text = f.read()
    return doc, text


def median(summary, key, runtime):
    return (summary.get(key, {}).get(runtime) or {}).get("median")


def target_rows(doc):
    summ = doc["summary"]
    ref = doc.get("reference") or "runc"
    rows = []
    for key, what, limit in TARGETS:
        ours, theirs = median(summ, key, "pyrunc"), median(summ, key, ref)
        fails = (summ.get(key, {}).get("pyrunc") or {}).get("fail", 0)
        if ours is None or not theirs:
            rows.append((what, f"<= {limit:g} x {ref}", "-", "not measured"))
            continue
        ratio = ours / theirs
        ok = ratio <= limit and not fails
        verdict = "holds" if ok else "does not hold"
        if fails:
            verdict += f" ({fails} failed samples)"
        rows.append((what, f"<= {limit:g} x {ref}", f"{ratio:.2f}", verdict))
    return rows


def chart(doc, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    summ = doc["summary"]
    names = [n for n in ("runc", "crun", "pyrunc", "floor")
             if any(n in summ.get(k, {}) for k, _ in LATENCY + BATCH)]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2), gridspec_kw={"width_ratios": [3.2, 1.2, 1.2]})
    panels = ((axes[0], LATENCY, "median latency (ms)", 1.0),
              (axes[1], BATCH, "median total (s)", 1e-3),
              (axes[2], MEMORY, "median (MiB)", 1 / 1024))
    for ax, metrics, ylabel, scale in panels:
        present = [n for n in names if any(median(summ, k, n) is not None for k, _ in metrics)]
        width = 0.8 / max(1, len(present))
        for i, name in enumerate(present):
            xs, ys = [], []
            for j, (key, _label) in enumerate(metrics):
                v = median(summ, key, name)
                if v is not None:
                    xs.append(j + (i - (len(present) - 1) / 2) * width)
                    ys.append(v * scale)
            bars = ax.bar(xs, ys, width, label=name, color=COLORS.get(name))
            for b, y in zip(bars, ys):
                ax.annotate(f"{y:.1f}" if y < 100 else f"{y:.0f}", (b.get_x() + b.get_width() / 2, y),
                            ha="center", va="bottom", fontsize=6.5, rotation=90, xytext=(0, 2),
                            textcoords="offset points")
        ax.set_xticks(range(len(metrics)))
        ax.set_xticklabels([label for _, label in metrics], fontsize=8)
        ax.set_ylabel(ylabel)
        ax.margins(y=0.18)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    meta = doc.get("meta", {})
    fig.suptitle(f"OCI runtimes side by side: medians of {len(doc.get('rounds', []))} rounds "
                 f"({meta.get('cpus', '?')} cpus, load {meta.get('loadavg_start', [0])[0]:.1f}"
                 f" -> {meta.get('loadavg_end', [0])[0]:.1f})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def markdown(doc, text, has_chart, chart_name, scale=None):
    lines = [l for l in text.splitlines() if l.strip()]
    command = lines[0][2:] if lines and lines[0].startswith("# ") else "?"
    meta = doc.get("meta", {})
    out = ["# Benchmarks", "",
           "Produced by `make bench` (bench/run.py then bench/report.py); do not edit by hand.", "",
           f"Run finished {meta.get('finished', '?')}; command (inside `../shared/tools/cgroup-sandbox`):", "",
           "```", command, "```", ""]
    if has_chart:
        out += [f"![median latency per phase and runtime]({chart_name})", ""]
    out += ["## Targets of issue 9 in this run", "",
            "| target | limit | pyrunc / runc | verdict |", "|---|---|---|---|"]
    for what, limit, ratio, verdict in target_rows(doc):
        out.append(f"| {what} | {limit} | {ratio} | {verdict} |")
    if scale:
        out += ["", "## Scale: containers created and not started (`make bench-scale`)", "",
                "State and list are medians of wall time at each count; memory is per waiting init.", "",
                scale.rstrip()]
    out += ["", "Ratios are of medians from the same run. Why some targets are out of reach for a",
            "CPython process is measured in [performance.md](performance.md).", "",
            "## The harness's table", "", "```"] + lines + ["```", ""]
    return "\n".join(out)


README_BEGIN = "<!-- bench:begin -->"
README_END = "<!-- bench:end -->"
SUMMARY = (("run", "run `true` (ms)"), ("lifecycle.total", "create+start+wait+delete (ms)"),
           ("state", "state (ms)"), ("exec", "exec `true` (ms)"),
           ("mem.create_hwm", "create peak RSS (KiB)"), ("mem.init_uss", "created init USS (KiB)"))


def readme_block(doc, command):
    """The latest figures for README.md, between its bench markers."""
    summ = doc["summary"]
    names = [n for n in ("pyrunc", "runc", "crun") if any(n in summ.get(k, {}) for k, _ in SUMMARY)]
    out = [README_BEGIN, "",
           f"Latest `make bench` ({doc.get('meta', {}).get('finished', '?')}, medians; details and chart in "
           "[docs/benchmarks.md](docs/benchmarks.md), analysis in [docs/performance.md](docs/performance.md)):", "",
           "| | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for key, label in SUMMARY:
        cells = []
        for n in names:
            v = median(summ, key, n)
            cells.append("-" if v is None else (f"{v:.0f}" if v >= 100 else f"{v:.1f}"))
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    out += ["", "```", command, "```", "", README_END]
    return "\n".join(out)


def update_readme(path, doc, command):
    """Replace the text between the bench markers of README.md, if it has them."""
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return False
    i, j = text.find(README_BEGIN), text.find(README_END)
    if i < 0 or j < i:
        return False
    text = text[:i] + readme_block(doc, command) + text[j + len(README_END):]
    with open(path, "w") as f:
        f.write(text)
    return True


def main(argv):
    results = argv[0] if argv else os.path.join(HERE, "results")
    docs = argv[1] if len(argv) > 1 else os.path.join(REPO, "docs")
    doc, text = load(results)
    chart_name = "benchmarks.png"
    has_chart = chart(doc, os.path.join(docs, chart_name))
    if not has_chart:
        print("report.py: matplotlib missing, no chart drawn", file=sys.stderr)
    scale = None
    if os.path.exists(os.path.join(results, "scale.md")):
        with open(os.path.join(results, "scale.md")) as f:
            scale = f.read()
    with open(os.path.join(docs, "benchmarks.md"), "w") as f:
        f.write(markdown(doc, text, has_chart, chart_name, scale))
    print(f"wrote {os.path.join(docs, 'benchmarks.md')}" + (" and the chart" if has_chart else ""))
    lines = [l for l in text.splitlines() if l.strip()]
    command = lines[0][2:] if lines and lines[0].startswith("# ") else "?"
    if update_readme(os.path.join(os.path.dirname(docs), "README.md"), doc, command):
        print("updated the figures in README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
