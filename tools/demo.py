"""`make demo`: build a busybox bundle and run one container with pyrunc
that shows its isolation (PID 1 inside, own hostname, reduced
capabilities, its own cgroup), next to the same facts on the host.

usage: demo.py /abs/path/to/pyrunc [--diagram=FILE.svg]
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

pyrunc = sys.argv[1]
work = tempfile.mkdtemp(prefix="pyrunc-demo-")
root = os.path.join(work, "state")
bundle = os.path.join(work, "bundle")
rootfs = os.path.join(bundle, "rootfs")
try:
    for d in ("bin", "proc", "sys", "dev", "tmp", "etc", "root"):
        os.makedirs(os.path.join(rootfs, d))
    shutil.copy("/bin/busybox", os.path.join(rootfs, "bin/busybox"))
    for applet in ("sh", "cat", "grep", "hostname", "id", "ps", "ls", "echo", "head", "sed", "sleep"):
        os.symlink("busybox", os.path.join(rootfs, "bin", applet))
    subprocess.run([pyrunc, "spec", "--bundle", bundle], check=True)
    with open(os.path.join(bundle, "config.json")) as f:
        cfg = json.load(f)
    script = (
        'echo "inside:  my pid is $$, hostname $(hostname)"; '
        'echo "inside:  processes:"; ps -o pid,comm | sed "s/^/           /"; '
        'grep -E "^Cap(Eff|Bnd):" /proc/self/status | sed "s/^/inside:  /"; '
        'echo "inside:  cgroup $(head -1 /proc/self/cgroup)"; '
        "echo inside:  root filesystem: $(ls /)"
    )
    cfg["process"]["args"] = ["/bin/sh", "-c", script.replace("sed", "sed")]
    cfg["process"]["terminal"] = False
    cfg["hostname"] = "pyrunc-demo"
    cfg["linux"]["cgroupsPath"] = "/pyrunc-demo"
    cfg["linux"].setdefault("resources", {})["pids"] = {"limit": 64}
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    with open("/proc/self/status") as f:
        caps = [l.strip() for l in f if l.startswith(("CapEff", "CapBnd"))]
    print(f"host:    pid {os.getpid()}, hostname {os.uname().nodename}, {' '.join(caps)}")
    print(f"$ pyrunc run --detach --bundle {bundle} demo")
    cfg["process"]["args"] = ["/bin/sleep", "300"]
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    rc = subprocess.run(
        [pyrunc, "--root", root, "run", "--detach", "--bundle", bundle, "demo"], stdin=subprocess.DEVNULL
    ).returncode
    if rc != 0:
        sys.exit(rc)
    print("$ pyrunc exec demo sh -c '...'")
    rc = subprocess.run(
        [pyrunc, "--root", root, "exec", "demo", "/bin/sh", "-c", script], stdin=subprocess.DEVNULL
    ).returncode
    print("$ pyrunc inspect demo    (the walls, read back from the kernel)")
    subprocess.run([pyrunc, "--root", root, "inspect", "demo"] + sys.argv[2:3], stdin=subprocess.DEVNULL)
    sys.exit(rc)
finally:
    subprocess.run([pyrunc, "--root", root, "delete", "--force", "demo"], stderr=subprocess.DEVNULL)
    shutil.rmtree(work, ignore_errors=True)
