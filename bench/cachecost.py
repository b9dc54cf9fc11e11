"""CPU cost of create's config step, without the cache, on a miss and on a hit.

Each sample is a fresh interpreter (the launcher's flags, -IS) that first
imports what `create` has loaded before the step (CLI, container, state,
syscalls, log, rootfs, process), then times with time.thread_time the step
as create does it: no cache (pyrunc.config.cache.fresh: the imports of the
validator and converter, load, validate, convert), a miss (an empty cache
directory: key, fresh verdict, entry written) or a hit; known_cap_count
included.  The three alternate, --runs each (default 30); prints min,
quartile and median in ms.  Needs no root and creates no container.

usage: cachecost.py [--runs N]
"""

import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PYTHON = os.path.join(REPO, ".venv", "bin", "python3")
MKBUNDLE = os.path.join(os.path.dirname(REPO), "shared", "tools", "mkbundle.sh")

SAMPLE = r"""
import sys, time, shutil
sys.path.insert(0, sys.argv[1])
import gc; gc.disable()
import pyrunc.cli, pyrunc.container, pyrunc.state, pyrunc.syscalls, pyrunc.log, pyrunc.rootfs, pyrunc.process
mode, cache_dir, bundle = sys.argv[2:5]
import os
os.environ["PYRUNC_CONFIG_CACHE"] = cache_dir
if mode == "miss":
    shutil.rmtree(cache_dir, ignore_errors=True)
    os.mkdir(cache_dir, 0o700)
t0 = time.thread_time()
if mode == "none":
    from pyrunc.config.cache import fresh
    doc, cfg = fresh(bundle + "/config.json", bundle, False, lambda line: None)
else:
    from pyrunc.config.cache import load_validated
    doc, cfg = load_validated(bundle + "/config.json", bundle)
from pyrunc.config.convert import known_cap_count
known_cap_count()
print((time.thread_time() - t0) * 1e3)
"""


def main(argv):
    runs = int(argv[argv.index("--runs") + 1]) if "--runs" in argv else 30
    work = tempfile.mkdtemp(prefix="pyrunc-cachecost-")
    try:
        bundle = os.path.join(work, "bundle")
        subprocess.run([MKBUNDLE, bundle, "sleep", "1"], check=True, stdout=subprocess.DEVNULL)
        cache_dir = os.path.join(work, "cache")
        samples = {"none": [], "miss": [], "hit": []}
        for _ in range(runs):
            for mode in samples:
                out = subprocess.run([PYTHON, "-IS", "-c", SAMPLE, REPO, mode, cache_dir, bundle],
                                     check=True, capture_output=True, text=True).stdout
                samples[mode].append(float(out))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("| path | min (ms) | q1 (ms) | median (ms) |\n|---|---:|---:|---:|")
    for mode, label in (("none", "no cache"), ("miss", "cache miss"), ("hit", "cache hit")):
        v = sorted(samples[mode])
        print(f"| {label} | {v[0]:.2f} | {v[len(v) // 4]:.2f} | {v[len(v) // 2]:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
