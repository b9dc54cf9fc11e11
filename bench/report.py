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

# (metric key, what issue 21 asks of pyrunc / runc, limit)
TARGETS = (
    ("run", "run `true`", 1.2),
    ("lifecycle.create", "create", 1.3),
    ("exec", "exec `true`", 1.3),
    ("lifecycle.total", "lifecycle sum (create + start + wait + delete)", 1.6),
    ("throughput", "throughput (50 sequential runs)", 1.5),
    ("parallel", "parallel (8 workers, 40 containers)", 1.5),
    ("mem.create_hwm", "peak RSS of the `create` process", 1.0),
)
# (metric key, what): at most the interpreter floor + 2.5 ms (issue 21)
FLOOR_TARGETS = (("state", "state"), ("lifecycle.start", "start"), ("lifecycle.delete", "delete"))
FLOOR_MARGIN_MS = 2.5

LATENCY = (
    ("run", "run"),
    ("lifecycle.create", "create"),
    ("lifecycle.start", "start"),
    ("lifecycle.delete", "delete"),
    ("state", "state"),
    ("exec", "exec"),
)
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


def load_floor(results):
    try:
        with open(os.path.join(results, "floor.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def floor_rows(doc, floor):
    if not floor:
        return []
    rows = []
    for key, what in FLOOR_TARGETS:
        ours = median(doc["summary"], key, "pyrunc")
        limit = floor["median_ms"] + FLOOR_MARGIN_MS
        if ours is None:
            rows.append((what, f"<= floor + {FLOOR_MARGIN_MS:g} ms", "-", "not measured"))
            continue
        rows.append(
            (
                what,
                f"<= floor + {FLOOR_MARGIN_MS:g} ms ({limit:.1f} ms)",
                f"{ours:.1f} ms",
                "holds" if ours <= limit else "does not hold",
            )
        )
    return rows


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
    names = [n for n in ("runc", "crun", "pyrunc", "floor") if any(n in summ.get(k, {}) for k, _ in LATENCY + BATCH)]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2), gridspec_kw={"width_ratios": [3.2, 1.2, 1.2]})
    panels = (
        (axes[0], LATENCY, "median latency (ms)", 1.0),
        (axes[1], BATCH, "median total (s)", 1e-3),
        (axes[2], MEMORY, "median (MiB)", 1 / 1024),
    )
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
                ax.annotate(
                    f"{y:.1f}" if y < 100 else f"{y:.0f}",
                    (b.get_x() + b.get_width() / 2, y),
                    ha="center",
                    va="bottom",
                    fontsize=6.5,
                    rotation=90,
                    xytext=(0, 2),
                    textcoords="offset points",
                )
        ax.set_xticks(range(len(metrics)))
        ax.set_xticklabels([label for _, label in metrics], fontsize=8)
        ax.set_ylabel(ylabel)
        ax.margins(y=0.18)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    meta = doc.get("meta", {})
    fig.suptitle(
        f"OCI runtimes side by side: medians of {len(doc.get('rounds', []))} rounds "
        f"({meta.get('cpus', '?')} cpus, load {meta.get('loadavg_start', [0])[0]:.1f}"
        f" -> {meta.get('loadavg_end', [0])[0]:.1f})",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def markdown(doc, text, has_chart, chart_name, scale=None, floor=None, engines=None):
    lines = [l for l in text.splitlines() if l.strip()]
    command = lines[0][2:] if lines and lines[0].startswith("# ") else "?"
    meta = doc.get("meta", {})
    out = [
        "# Benchmarks",
        "",
        "Produced by `make bench` (bench/run.py then bench/report.py); do not edit by hand.",
        "",
        f"Run finished {meta.get('finished', '?')}; command (inside `../shared/tools/cgroup-sandbox`):",
        "",
        "```",
        command,
        "```",
        "",
    ]
    if has_chart:
        out += [f"![median latency per phase and runtime]({chart_name})", ""]
    out += [
        "## Targets of issue 21 in this run",
        "",
        "| target | limit | pyrunc / runc | verdict |",
        "|---|---|---|---|",
    ]
    for what, limit, ratio, verdict in target_rows(doc):
        out.append(f"| {what} | {limit} | {ratio} | {verdict} |")
    if floor:
        out += [
            "",
            f"Interpreter floor, `{floor['command']}`, measured before and after the harness "
            f"in the same minutes: median **{floor['median_ms']:.1f} ms** "
            f"({len(floor['samples_ms'])} samples).",
            "",
            "| command | limit | pyrunc | verdict |",
            "|---|---|---|---|",
        ]
        for what, limit, value, verdict in floor_rows(doc, floor):
            out.append(f"| {what} | {limit} | {value} | {verdict} |")
    if scale:
        out += [
            "",
            "## Scale: containers created and not started (`make bench-scale`)",
            "",
            "State and list are medians of wall time at each count; memory is per waiting init.",
            "",
            scale.rstrip(),
        ]
    if engines:
        out += ["", "## End to end through the engines (`make bench-engines`)", "", engines.rstrip()]
    out += (
        [
            "",
            "Ratios are of medians from the same run. Why some targets are out of reach for a",
            "CPython process is measured in [performance.md](performance.md).",
            "",
            "## The harness's table",
            "",
            "```",
        ]
        + lines
        + ["```", ""]
    )
    return "\n".join(out)


README_BEGIN = "<!-- bench:begin -->"
README_END = "<!-- bench:end -->"
SUMMARY = (
    ("run", "run `true` (ms)"),
    ("lifecycle.total", "create+start+wait+delete (ms)"),
    ("state", "state (ms)"),
    ("exec", "exec `true` (ms)"),
    ("mem.create_hwm", "create peak RSS (KiB)"),
    ("mem.init_uss", "created init USS (KiB)"),
)


def readme_block(doc, command, floor=None):
    """The latest figures for README.md, between its bench markers."""
    summ = doc["summary"]
    names = [n for n in ("pyrunc", "runc", "crun") if any(n in summ.get(k, {}) for k, _ in SUMMARY)]
    out = [
        README_BEGIN,
        "",
        f"Latest `make bench` ({doc.get('meta', {}).get('finished', '?')}, medians; details and chart in "
        "[docs/benchmarks.md](docs/benchmarks.md), analysis in [docs/performance.md](docs/performance.md)):",
        "",
        "| | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for key, label in SUMMARY:
        cells = []
        for n in names:
            v = median(summ, key, n)
            cells.append("-" if v is None else (f"{v:.0f}" if v >= 100 else f"{v:.1f}"))
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    if floor:
        out += ["", f"Interpreter floor (`python3 -IS -c pass`, same minutes): {floor['median_ms']:.1f} ms."]
    out += ["", "```", command, "```", "", README_END]
    return "\n".join(out)


def update_readme(path, doc, command, floor=None):
    """Replace the text between the bench markers of README.md, if it has them."""
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return False
    i, j = text.find(README_BEGIN), text.find(README_END)
    if i < 0 or j < i:
        return False
    text = text[:i] + readme_block(doc, command, floor) + text[j + len(README_END) :]
    with open(path, "w") as f:
        f.write(text)
    return True


def main(argv):
    results = argv[0] if argv else os.path.join(HERE, "results")
    docs = argv[1] if len(argv) > 1 else os.path.join(REPO, "docs")
    doc, text = load(results)
    floor = load_floor(results)
    chart_name = "benchmarks.png"
    has_chart = chart(doc, os.path.join(docs, chart_name))
    if not has_chart:
        print("report.py: matplotlib missing, no chart drawn", file=sys.stderr)
    scale = None
    if os.path.exists(os.path.join(results, "scale.md")):
        with open(os.path.join(results, "scale.md")) as f:
            scale = f.read()
    # bench/engines.py's tables: the end-to-end run, then its --per-call run
    engines = []
    for name in ("engines.md", "engines-calls.md"):
        if os.path.exists(os.path.join(results, name)):
            with open(os.path.join(results, name)) as f:
                engines.append(f.read())
    with open(os.path.join(docs, "benchmarks.md"), "w") as f:
        f.write(markdown(doc, text, has_chart, chart_name, scale, floor, "\n".join(engines)))
    print(f"wrote {os.path.join(docs, 'benchmarks.md')}" + (" and the chart" if has_chart else ""))
    lines = [l for l in text.splitlines() if l.strip()]
    command = lines[0][2:] if lines and lines[0].startswith("# ") else "?"
    if update_readme(os.path.join(os.path.dirname(docs), "README.md"), doc, command, floor):
        print("updated the figures in README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
