"""Soak: many ``run -d`` + ``delete --force`` cycles must not grow host
file descriptors, mounts, cgroups or the runtime's memory.

Default: 60 cycles.  ``PYRUNC_SOAK_CYCLES=1000`` for the issue's size; the
measured numbers are printed (``-s``) and written to
``$PYRUNC_SOAK_REPORT`` (JSON) when that is set, for docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import time

from helpers import new_id
from test_reliability_support import assert_clean, host_counts, run_measured

CYCLES = int(os.environ.get("PYRUNC_SOAK_CYCLES", "60"))
WINDOW = max(5, CYCLES // 10)  # first/last cycles compared


def test_soak_run_delete(rt, bundle):
    bundle.set_args("true")
    bundle.write()
    base = [rt.path, "--root", rt.root]
    warm = host_counts()
    samples = []
    t0 = time.monotonic()
    for n in range(CYCLES):
        cid = new_id("soak")
        rt.ids.append(cid)
        rc, run_rss, err = run_measured(base + ["run", "-d", "--bundle", bundle.path, cid])
        assert rc == 0, f"cycle {n}: run failed: {err}"
        rc, del_rss, err = run_measured(base + ["delete", "--force", cid])
        assert rc == 0, f"cycle {n}: delete failed: {err}"
        rt.ids.remove(cid)
        counts = host_counts()
        counts.update(run_rss_kib=run_rss, delete_rss_kib=del_rss)
        samples.append(counts)
    elapsed = time.monotonic() - t0
    assert_clean(rt, cid, bundle)

    def avg(key, part):
        return sum(s[key] for s in part) / len(part)

    first, last = samples[:WINDOW], samples[-WINDOW:]
    report = {
        "cycles": CYCLES,
        "seconds": round(elapsed, 1),
        "per_cycle_ms": round(1000 * elapsed / CYCLES, 1),
        "before": warm,
    }
    for key in ("host_fds", "mounts", "cgroups", "run_rss_kib", "delete_rss_kib"):
        report[key] = {
            "first": round(avg(key, first), 1),
            "last": round(avg(key, last), 1),
            "max": max(s[key] for s in samples),
        }
    print("soak:", json.dumps(report))
    if os.environ.get("PYRUNC_SOAK_REPORT"):
        with open(os.environ["PYRUNC_SOAK_REPORT"], "w") as f:
            json.dump(report, f, indent=2)
    # nothing accumulates: mounts and cgroups exactly back, fds within the
    # noise of other tenants, each runtime process no bigger at the end
    assert report["mounts"]["last"] == warm["mounts"], report
    assert report["cgroups"]["last"] == warm["cgroups"], report
    assert report["host_fds"]["last"] - report["host_fds"]["first"] < 200, report
    for key in ("run_rss_kib", "delete_rss_kib"):
        assert report[key]["last"] <= report[key]["first"] * 1.05 + 512, report
