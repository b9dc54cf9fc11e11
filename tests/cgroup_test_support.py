"""What the cgroup manager tests share: a cgroup with the processes a test
started in it (``Cell``; the ``cell`` fixture in conftest.py always cleans
them) and small readers.  Used by tests/integration/test_cgroups_v1.py and tests/integration/test_cgroups_v2.py."""

import signal
import subprocess
import uuid

from pyrunc.cgroups import new_manager

BUSYBOX = "/bin/busybox"


def own_cgroup_is_root() -> bool:
    """True in the cgroup-sandbox (a private cgroup namespace rooted at the
    sandbox) or in the v2vm's root cgroup: our cgroup reads as "/"."""
    with open("/proc/self/cgroup") as f:
        return all(line.rstrip().endswith(":/") for line in f)


class Cell:
    """A cgroup manager plus the processes a test started in it; cleans both."""

    def __init__(self, cgroups_path=None, cid=None):
        self.id = cid or "t" + uuid.uuid4().hex[:10]
        self.mgr = new_manager(cgroups_path if cgroups_path is not None else f"/pyrunc-test-{self.id}", self.id)
        self.procs: list[subprocess.Popen] = []

    def spawn(self, *argv, apply=True):
        p = subprocess.Popen([BUSYBOX, *argv] if argv else [BUSYBOX, "sleep", "60"])
        self.procs.append(p)
        if apply:
            self.mgr.apply(p.pid)
        return p

    def cleanup(self):
        try:
            if self.mgr.exists() and self.mgr.is_frozen():
                self.mgr.thaw()
        except Exception:
            pass
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        if self.mgr.exists():
            self.mgr.kill_all(signal.SIGKILL)  # what the test's processes started
        self.mgr.destroy()


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime
