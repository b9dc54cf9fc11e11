"""systemd as PID 1 in a container on this host (cgroup v1 hybrid), for
tests/integration/test_systemd_v1.py.

This host's PID 1 is not systemd and no VM here boots cgroup v1 with
systemd, so the systemd cgroup driver's v1/hybrid path is tested in a
"box": a pyrunc container that boots the host's own systemd (Debian 12's
252) on

* a root directory holding only /etc (the few files systemd and dbus read,
  a fresh machine-id) and the /bin /sbin /lib* links of a merged /usr;
* a read-only bind of the host's /usr, tmpfs /run /tmp /var /root;
* a private cgroup namespace whose /sys/fs/cgroup is the host's layout
  (tmpfs, one writable v1 mount per hierarchy, name=systemd, cgroup2 at
  unified): systemd sees a hybrid host and is root of the box's cgroups;
* this checkout bound at its own path, so the box runs the same pyrunc
  (its .venv) and tests, and Debian's runc from the bound /usr;
* ``container=pyrunc``, all capabilities, no seccomp, no masked paths (the
  runtimes inside create containers of their own), every device allowed;
* the units a container does not need masked, a target that wants only
  dbus.socket.

``SystemdBox.boot()`` returns once the system bus answers; ``exec()`` runs a
command in the box; ``teardown()`` kills the box (SIGKILL to every process
of its cgroup), deletes the container and removes whatever cgroup of the
box is left (systemd's own and the tests' units below it), deepest first.
It never relies on the caller's cgroup sandbox.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid

from helpers import REPO, RUNTIME

CG = "/sys/fs/cgroup"
SYSTEMD = "/lib/systemd/system"
BOX_TARGET = "pyrunc-box.target"
# Not needed in the box, or slow; everything else the basic boot pulls in
# starts (journald, tmpfiles, dbus).
MASKED_UNITS = (
    "systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket "
    "systemd-udev-trigger.service systemd-udev-settle.service systemd-logind.service "
    "systemd-networkd.service systemd-resolved.service systemd-timesyncd.service "
    "systemd-journal-flush.service systemd-journal-catalog-update.service systemd-update-done.service "
    "systemd-update-utmp.service systemd-update-utmp-runlevel.service systemd-machine-id-commit.service "
    "systemd-random-seed.service systemd-sysusers.service systemd-firstboot.service "
    "systemd-hwdb-update.service systemd-remount-fs.service systemd-binfmt.service systemd-sysctl.service "
    "systemd-modules-load.service systemd-pcrphase.service systemd-pcrphase-sysinit.service "
    "systemd-repart.service systemd-pstore.service systemd-ask-password-wall.path "
    "systemd-ask-password-console.path systemd-tmpfiles-clean.timer ldconfig.service "
    "proc-sys-fs-binfmt_misc.automount sys-kernel-config.mount sys-kernel-debug.mount "
    "sys-kernel-tracing.mount sys-fs-fuse-connections.mount dev-hugepages.mount dev-mqueue.mount "
    "kmod-static-nodes.service modprobe@configfs.service modprobe@drm.service modprobe@efi_pstore.service "
    "modprobe@fuse.service modprobe@dm_mod.service modprobe@loop.service getty.target "
    "console-getty.service apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer "
    "e2scrub_all.timer e2scrub_reap.service fstrim.timer man-db.timer cron.service apparmor.service "
    "containerd.service docker.service docker.socket ssh.service rsyslog.service"
).split()
MASKED_GENERATORS = (
    "systemd-getty-generator systemd-gpt-auto-generator systemd-sysv-generator "
    "systemd-hibernate-resume-generator systemd-bless-boot-generator systemd-system-update-generator "
    "systemd-veritysetup-generator systemd-integritysetup-generator systemd-cryptsetup-generator "
    "systemd-rc-local-generator systemd-fstab-generator systemd-run-generator systemd-debug-generator"
).split()
# /etc files systemd, dbus, the dynamic loader and the tests' tools read
ETC_FILES = ("passwd", "group", "nsswitch.conf", "ld.so.cache", "ld.so.conf", "os-release", "login.defs")
ETC_DIRS = ("dbus-1", "ld.so.conf.d")

ALL_CAPS = [
    "CAP_" + c
    for c in (
        "CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE "
        "NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO SYS_CHROOT "
        "SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE "
        "AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ "
        "PERFMON BPF CHECKPOINT_RESTORE"
    ).split()
]


def own_capabilities() -> list[str]:
    """The capabilities of our bounding set (a host may lack some, e.g. CAP_SYS_RESOURCE)."""
    with open("/proc/self/status") as f:
        bnd = next(int(line.split()[1], 16) for line in f if line.startswith("CapBnd:"))
    return [c for i, c in enumerate(ALL_CAPS) if bnd >> i & 1]


class BootError(AssertionError):
    pass


class SystemdBox:
    """One systemd container; ``base`` (a fresh directory) holds its bundle and state."""

    def __init__(self, base: str, runtime: str = RUNTIME):
        self.base = base
        self.runtime = runtime
        self.cid = "sdbox-" + uuid.uuid4().hex[:10]
        self.state_root = os.path.join(base, "state")
        self.bundle = os.path.join(base, "bundle")
        self.rootfs = os.path.join(self.bundle, "rootfs")
        self.log_path = os.path.join(base, "console.log")
        self.cgroup = "/pyrunc-sdbox-" + self.cid[6:]  # absolute: below the caller's cgroups (the sandbox's)
        self.created = False

    # -- the bundle -------------------------------------------------------------
    def _rootfs(self) -> None:
        r = self.rootfs
        for d in ("usr", "etc", "proc", "sys", "dev", "run", "tmp", "var", "root", "mnt", "srv", "opt", "home"):
            os.makedirs(os.path.join(r, d), exist_ok=True)
        for link in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            if os.path.islink("/" + link):
                os.symlink(os.readlink("/" + link), os.path.join(r, link))
        etc = os.path.join(r, "etc")
        for name in ETC_FILES:
            src = "/etc/" + name
            if os.path.islink(src):
                os.symlink(os.readlink(src), os.path.join(etc, name))
            elif os.path.isfile(src):
                shutil.copy2(src, os.path.join(etc, name))
        for name in ETC_DIRS:
            if os.path.isdir("/etc/" + name):
                shutil.copytree("/etc/" + name, os.path.join(etc, name), symlinks=True)
        with open(os.path.join(etc, "machine-id"), "w") as f:
            f.write(uuid.uuid4().hex + "\n")
        with open(os.path.join(etc, "hostname"), "w") as f:
            f.write("sdbox\n")
        os.makedirs(os.path.join(etc, "systemd", "system-generators"))
        units = os.path.join(etc, "systemd", "system")
        os.makedirs(units)
        for u in MASKED_UNITS:
            os.symlink("/dev/null", os.path.join(units, u))
        for g in MASKED_GENERATORS:
            os.symlink("/dev/null", os.path.join(etc, "systemd", "system-generators", g))
        with open(os.path.join(units, BOX_TARGET), "w") as f:
            f.write(
                "[Unit]\nDescription=pyrunc systemd box\nRequires=basic.target dbus.socket\n"
                "Wants=dbus.service\nAfter=basic.target dbus.socket\nAllowIsolate=yes\n"
            )
        os.symlink(BOX_TARGET, os.path.join(units, "default.target"))
        with open(os.path.join(etc, "systemd", "system.conf"), "w") as f:
            # the box's own processes are few; a quick stop on teardown
            f.write("[Manager]\nDefaultTimeoutStopSec=5s\nShowStatus=no\n")

    def _config(self) -> dict:
        def bind(src, dst, *opts):
            return {"destination": dst, "type": "bind", "source": src, "options": ["rbind", *opts]}

        def tmpfs(dst, *opts):
            return {"destination": dst, "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", *opts]}

        return {
            "ociVersion": "1.0.2",
            "process": {
                "terminal": False,
                "user": {"uid": 0, "gid": 0},
                "args": ["/lib/systemd/systemd", "--log-level=info"],
                "env": ["container=pyrunc", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "cwd": "/",
                "capabilities": {k: own_capabilities() for k in ("bounding", "effective", "permitted")},
                "noNewPrivileges": False,
            },
            "root": {"path": "rootfs", "readonly": False},
            "hostname": "sdbox",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {
                    "destination": "/dev",
                    "type": "tmpfs",
                    "source": "tmpfs",
                    "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
                },
                {
                    "destination": "/dev/pts",
                    "type": "devpts",
                    "source": "devpts",
                    "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
                },
                tmpfs("/dev/shm", "noexec", "mode=1777"),
                {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec"]},
                {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev"]},
                # rw: systemd (and the runtimes it serves) manage the box's cgroups
                {
                    "destination": CG,
                    "type": "cgroup",
                    "source": "cgroup",
                    "options": ["nosuid", "noexec", "nodev", "rw"],
                },
                bind("/usr", "/usr", "ro"),
                tmpfs("/run", "mode=755"),
                tmpfs("/tmp", "mode=1777"),
                tmpfs("/var", "mode=755"),
                tmpfs("/root", "mode=700"),
                bind(REPO, REPO, "ro"),
            ],
            "linux": {
                "cgroupsPath": self.cgroup,
                "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "cgroup")],
                "resources": {"devices": [{"allow": True, "access": "rwm"}]},
            },
        }

    # -- lifecycle --------------------------------------------------------------
    def _rt(self, *args, timeout=30, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(
            [self.runtime, "--root", self.state_root, *args], capture_output=True, text=True, timeout=timeout, **kw
        )

    def boot(self, timeout: float = 60) -> float:
        """Start the box; return the seconds until its system bus answered."""
        os.makedirs(self.bundle)
        self._rootfs()
        with open(os.path.join(self.bundle, "config.json"), "w") as f:
            json.dump(self._config(), f, indent=1)
        t0 = time.monotonic()
        with open(self.log_path, "w") as log:
            p = subprocess.run(
                [self.runtime, "--root", self.state_root, "run", "-d", "--bundle", self.bundle, self.cid],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                timeout=60,
            )
        self.created = True
        if p.returncode != 0:
            raise BootError(f"the systemd box did not start (rc {p.returncode}):\n{self.log()}")
        deadline = t0 + timeout
        while True:
            bus = self.exec(
                "busctl", "--system", "call", "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                "org.freedesktop.DBus.Properties", "Get", "ss", "org.freedesktop.systemd1.Manager", "Version",
                timeout=10, check=False,
            )  # fmt: skip
            if bus.returncode == 0:
                booted = time.monotonic() - t0
                break
            if time.monotonic() > deadline or self.status() != "running":
                raise BootError(
                    f"the systemd box's bus did not answer within {timeout:.0f} s "
                    f"(status {self.status()}): {bus.stderr.strip()}\n{self.log()}"
                )
            time.sleep(0.3)
        # the boot's jobs done, so that the tests' units are the only ones queued
        self.exec("systemctl", "is-system-running", "--wait", timeout=max(5, deadline - time.monotonic()), check=False)
        # A runtime (runc as pyrunc) makes system.slice's directory in the
        # hierarchies systemd leaves alone on v1 (freezer, cpuset; cpuacct when
        # it is mounted apart from cpu) and leaves it there, as on any v1 host
        # that ran a container: made now, so that the tests' leak check sees
        # only what the tests leave.
        self.exec(
            "sh", "-c",
            "for h in /sys/fs/cgroup/*/; do [ -d $h/system.slice ] || mkdir $h/system.slice; done; "
            "d=/sys/fs/cgroup/cpuset/system.slice; [ -s $d/cpuset.cpus ] || cat $d/../cpuset.cpus > $d/cpuset.cpus; "
            "[ -s $d/cpuset.mems ] || cat $d/../cpuset.mems > $d/cpuset.mems",
        )  # fmt: skip
        return booted

    def status(self) -> str:
        p = self._rt("state", self.cid)
        try:
            return json.loads(p.stdout)["status"]
        except (ValueError, KeyError):
            return "gone"

    def log(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-6000:]
        except OSError:
            return ""

    def exec(self, *argv, timeout=60, check=True, env=(), cwd="/") -> subprocess.CompletedProcess:
        args = ["exec", "--cwd", cwd]
        for e in ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", *env):
            args += ["--env", e]
        p = self._rt(*args, self.cid, *argv, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"in the systemd box: {' '.join(argv)}: rc {p.returncode}\n{p.stdout}\n{p.stderr}")
        return p

    def teardown(self) -> list[str]:
        """Kill and delete the box, remove its cgroups; return what could not be undone."""
        problems = []
        dirs = self.cgroup_dirs()
        state = os.path.join(self.state_root, self.cid)
        deadline = time.monotonic() + 30
        while self.created and os.path.exists(state):
            try:
                self._rt("kill", "--all", self.cid, "KILL", timeout=30)
                p = self._rt("delete", "--force", self.cid, timeout=60)
            except subprocess.TimeoutExpired as e:
                p = subprocess.CompletedProcess(e.cmd, -1, "", "timeout")
            if not os.path.exists(state):
                break
            if time.monotonic() > deadline:
                problems.append(f"delete --force {self.cid}: {p.stderr.strip()}")
                break
            time.sleep(0.2)
        # what systemd made below the box's cgroup (its slices, the tests'
        # units) and the runtime did not remove: kill, then remove deepest first
        deadline = time.monotonic() + 10
        while True:
            left = [d for d in dirs if os.path.isdir(d)]
            if not left:
                break
            for d in left:
                for sub, _, _ in sorted(os.walk(d), key=lambda w: -w[0].count("/")):
                    try:
                        with open(os.path.join(sub, "cgroup.procs")) as f:
                            for pid in f.read().split():
                                try:
                                    os.kill(int(pid), 9)
                                except ProcessLookupError:
                                    pass
                    except OSError:
                        pass
                    for freezer in ("freezer.state",):
                        try:
                            with open(os.path.join(sub, freezer), "w") as f:
                                f.write("THAWED")
                        except OSError:
                            pass
                    try:
                        os.rmdir(sub)
                    except OSError:
                        pass
            if time.monotonic() > deadline:
                problems += [f"cgroup left: {d}" for d in left if os.path.isdir(d)]
                break
            time.sleep(0.1)
        shutil.rmtree(self.base, ignore_errors=True)
        if os.path.exists(self.base):
            problems.append(f"{self.base} could not be removed")
        return problems

    def cgroup_dirs(self) -> list[str]:
        """The box's cgroup in every hierarchy mounted here (absolute cgroupsPath)."""
        out = []
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                mnt = fields[4]
                fstype = fields[fields.index("-") + 1]
                if fstype in ("cgroup", "cgroup2") and (mnt == CG or mnt.startswith(CG + "/")):
                    out.append(mnt + self.cgroup)
        return out
