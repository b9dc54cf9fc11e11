"""Read the walls of a running container back from the kernel.

``inspect()`` compares what a container's config.json asked for with what
the kernel reports for its init process (``/proc/<pid>/...``, the nsfs
inodes, the cgroup files) and with the host, and returns a report: for each
wall an ordered list of lines ``{item, asked, actual, verdict}``.

Verdicts:

* ``ok``   - the kernel shows what the config asked for, and it isolates;
* ``WARN`` - the kernel agrees with the config, but the setting is weak
  (shared network namespace, no seccomp filter, writable /sys, no pids
  limit, ...), or the fact could not be read;
* ``FAIL`` - the kernel disagrees with the config (a namespace not
  unshared, a limit not applied, a capability the config did not grant);
  callers exit 2 on any FAIL (``exit_code()``);
* ``info`` - a measured fact that the config does not constrain.

Everything is read, never written; the container is not entered except by
a short-lived forked probe that joins its uts/ipc/net/mount namespaces to
read the hostname, sysctls and the namespace's root mount.  Paths inside
the container are opened through ``/proc/<pid>/root`` with openat2
``RESOLVE_IN_ROOT`` so that a symlink planted in the rootfs cannot point
the inspector at a host file.

Only the standard library's cheap modules are imported at module level;
``json`` is imported where it is used.
"""

from __future__ import annotations

import os
import stat

from .capabilities import CAP_NAMES, names_of_mask
from .errors import ContainerNotRunning
from .namespaces import PROC_NAMES
from .linux import procfs

FORMAT_VERSION = 1
WALLS = ("namespaces", "filesystem", "cgroups", "privileges", "process")
VERDICTS = ("ok", "info", "WARN", "FAIL")

# Capabilities that let a container process break out or take over the host
# when combined with a weak spot; present in the effective set -> WARN.
DANGEROUS_CAPS = frozenset(
    {
        "CAP_SYS_ADMIN",
        "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO",
        "CAP_SYS_PTRACE",
        "CAP_DAC_READ_SEARCH",
        "CAP_NET_ADMIN",
        "CAP_SYS_BOOT",
        "CAP_MAC_ADMIN",
        "CAP_MAC_OVERRIDE",
        "CAP_BPF",
        "CAP_PERFMON",
        "CAP_SYS_TIME",
    }
)

# Namespaces whose sharing with the host weakens isolation warn when the
# config shares them.
_NS_WEAK_WHEN_SHARED = frozenset({"pid", "network", "ipc", "uts", "mount"})

# /proc/<pid>/limits row titles -> OCI rlimit names.
_RLIMIT_TITLES = {
    "Max cpu time": "RLIMIT_CPU",
    "Max file size": "RLIMIT_FSIZE",
    "Max data size": "RLIMIT_DATA",
    "Max stack size": "RLIMIT_STACK",
    "Max core file size": "RLIMIT_CORE",
    "Max resident set": "RLIMIT_RSS",
    "Max processes": "RLIMIT_NPROC",
    "Max open files": "RLIMIT_NOFILE",
    "Max locked memory": "RLIMIT_MEMLOCK",
    "Max address space": "RLIMIT_AS",
    "Max file locks": "RLIMIT_LOCKS",
    "Max pending signals": "RLIMIT_SIGPENDING",
    "Max msgqueue size": "RLIMIT_MSGQUEUE",
    "Max nice priority": "RLIMIT_NICE",
    "Max realtime priority": "RLIMIT_RTPRIO",
    "Max realtime timeout": "RLIMIT_RTTIME",
}
RLIM_INFINITY = 2**64 - 1
# cgroup v1 reports "no memory limit" as PAGE_COUNTER_MAX pages; anything
# this large is unlimited in practice.
_V1_UNLIMITED = 2**62
# Mounts whose writability gives the container a handle on the host kernel.
_SENSITIVE_RW = ("/sys", "/proc/sys", "/proc/sysrq-trigger", "/sys/fs/cgroup")

_SECCOMP_MODES = {"0": "disabled", "1": "strict", "2": "filter"}


# ---------------------------------------------------------------------------
# small readers


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def parse_mountinfo(text: str) -> list[dict]:
    """``procfs.parse_mountinfo`` plus each mount's propagation as one
    string (``shared:5 master:2``, or ``private``)."""
    mounts = procfs.parse_mountinfo(text)
    for m in mounts:
        m["propagation"] = (
            " ".join(
                o for o in m["optional"] if o.split(":")[0] in ("shared", "master", "propagate_from", "unbindable")
            )
            or "private"
        )
    return mounts


def _mount_at(mounts: list[dict], path: str) -> dict | None:
    """The topmost mount whose mountpoint is exactly ``path``."""
    found = None
    for m in mounts:
        if m["mountpoint"] == path:
            found = m
    return found


def parse_limits(text: str) -> dict[str, tuple[int, int]]:
    """/proc/<pid>/limits -> {RLIMIT_X: (soft, hard)}; unlimited = 2**64-1."""
    out: dict[str, tuple[int, int]] = {}
    for line in text.splitlines()[1:]:
        title = line[:26].strip()
        name = _RLIMIT_TITLES.get(title)
        if not name:
            continue
        soft, hard = (RLIM_INFINITY if v == "unlimited" else int(v) for v in line[26:].split()[:2])
        out[name] = (soft, hard)
    return out


def _parse_id_map(text: str) -> list[tuple[int, int, int]]:
    # each line of uid_map/gid_map is three numbers: inside, outside, count
    return sorted(
        (int(inside), int(outside), int(count))
        for inside, outside, count in (line.split() for line in text.splitlines() if line.strip())
    )


def _fmt_map(entries) -> str:
    return ", ".join(f"{c}->{h} x{n}" for c, h, n in entries) or "(none)"


def _fmt_bytes(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} B"


# ---------------------------------------------------------------------------
# the report


class _Wall:
    def __init__(self):
        self.lines: list[dict] = []

    def add(self, item, asked, actual, verdict, note=None):
        assert verdict in VERDICTS, verdict
        line = {
            "item": item,
            "asked": None if asked is None else str(asked),
            "actual": None if actual is None else str(actual),
            "verdict": verdict,
        }
        if note:
            line["note"] = note
        self.lines.append(line)

    def unreadable(self, item, asked, err):
        self.add(item, asked, None, "WARN", f"cannot read: {err}")


def _alive(pid: int) -> bool:
    """``pid`` exists and is not a zombie (whose /proc entries are empty)."""
    try:
        stat_line = _read(f"/proc/{pid}/stat")
    except OSError:
        return False
    return stat_line.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _reference_pid() -> int:
    """The host's namespaces: pid 1's when we may read them, else our own."""
    try:
        os.stat("/proc/1/ns/net")
        return 1
    except OSError:
        return os.getpid()


def inspect(pid: int, config: dict, *, cgroup_paths: dict[str, str] | None, status: str, container_id: str) -> dict:
    """Build the report of container ``container_id`` whose init is ``pid``.

    ``config`` is the container's config.json as a dict; ``cgroup_paths``
    maps controller -> absolute cgroup directory (cgroup v2: ``{"": dir}``);
    None derives them from ``/proc/<pid>/cgroup``.  ``status`` is the
    runtime's state (created, running, paused); in ``created`` the process
    is still the runtime's init stage, so process-level mismatches are
    reported as WARN, not FAIL.
    """
    if status == "stopped" or not _alive(pid):
        raise ContainerNotRunning("container not running")
    ref = _reference_pid()
    ctx = _Context(pid, config or {}, ref, status)
    if cgroup_paths is None:
        try:
            cgroup_paths = cgroup_paths_of(pid)
        except OSError:
            cgroup_paths = {}
    walls = {
        "namespaces": _namespaces(ctx),
        "filesystem": _filesystem(ctx),
        "cgroups": _cgroups(ctx, cgroup_paths),
        "privileges": _privileges(ctx),
        "process": _process(ctx),
    }
    if not _alive(pid):  # it died while we read: the lines are not trustworthy
        raise ContainerNotRunning("container not running")
    summary = {v: 0 for v in VERDICTS}
    for lines in walls.values():
        for line in lines:
            summary[line["verdict"]] += 1
    worst = "FAIL" if summary["FAIL"] else "WARN" if summary["WARN"] else "ok"
    return {
        "pyruncInspect": FORMAT_VERSION,
        "id": container_id,
        "pid": pid,
        "status": status,
        "host": "pid 1" if ref == 1 else f"the inspecting process (pid {ref})",
        "walls": walls,
        "summary": summary,
        "verdict": worst,
    }


def exit_code(report: dict) -> int:
    """2 when the kernel disagrees with the config somewhere, else 0."""
    return 2 if report["summary"].get("FAIL") else 0


class _Context:
    def __init__(self, pid, config, ref, status):
        self.pid = pid
        self.config = config
        self.ref = ref
        self.status = status
        self.proc = f"/proc/{pid}"
        self.linux = config.get("linux") or {}
        self.process = config.get("process") or {}
        self._status = None
        self._mounts = None
        self._probe = None

    @property
    def started(self):
        return self.status != "created"

    def mismatch(self):
        """The verdict for a config/kernel mismatch at process level."""
        return "FAIL" if self.started else "WARN"

    def status_fields(self):
        if self._status is None:
            self._status = procfs.status(self.pid)
        return self._status

    def mounts(self):
        if self._mounts is None:
            self._mounts = parse_mountinfo(_read(f"{self.proc}/mountinfo"))
        return self._mounts

    def probe(self):
        if self._probe is None:
            self._probe = _probe_namespaces(self.pid, self.linux.get("sysctl") or {})
        return self._probe

    def ns_requests(self) -> dict[str | None, dict]:
        return {n.get("type"): n for n in self.linux.get("namespaces") or [] if isinstance(n, dict)}


# ---------------------------------------------------------------------------
# probe: join the container's namespaces in a forked child


def _probe_namespaces(pid: int, sysctls: dict) -> dict:
    """Fork a child that joins the uts, ipc, net and mount namespaces of
    ``pid`` and reports the hostname, domainname, the sysctls asked for and
    the mount namespace's root mount.

    Values are read through the inspector's own /proc (opened before the
    mount namespace is joined), never through the container's files.
    """
    import json
    from .linux import syscalls

    r, w = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        code = 0
        try:
            os.close(r)
            out: dict[str, object] = {}
            proc_self = os.open("/proc/self", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            nsfds = {}
            for name in ("uts", "ipc", "net", "mnt"):
                nsfds[name] = os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC)
            for name in ("uts", "ipc", "net"):
                syscalls.setns(nsfds[name], 0, display=name)
            u = os.uname()
            out["hostname"] = u.nodename
            out["domainname"] = _read("/proc/sys/kernel/domainname").strip()
            values: dict[str, str | None] = {}
            for key in sysctls:
                parts = key.replace(".", "/").split("/")
                if any(p in ("", ".", "..") for p in parts):
                    values[key] = None
                    continue
                try:
                    values[key] = _read("/proc/sys/" + "/".join(parts)).strip()
                except OSError as e:
                    values[key] = f"<{e.strerror}>"
            out["sysctl"] = values
            syscalls.setns(nsfds["mnt"], syscalls.CLONE_NEWNS, display="mnt")
            fd = os.open("mountinfo", os.O_RDONLY | os.O_CLOEXEC, dir_fd=proc_self)
            with os.fdopen(fd) as f:
                ns_mounts = parse_mountinfo(f.read())
            root = _mount_at(ns_mounts, "/")
            out["ns_root_mount_id"] = root["id"] if root else None
            os.write(w, json.dumps(out).encode())
        except BaseException as e:  # report, never raise out of the child
            try:
                os.write(w, json.dumps({"error": str(e)}).encode())
            except BaseException:
                code = 1
        finally:
            os._exit(code)
    os.close(w)
    chunks = []
    while True:
        b = os.read(r, 65536)
        if not b:
            break
        chunks.append(b)
    os.close(r)
    os.waitpid(child, 0)
    try:
        return json.loads(b"".join(chunks) or b'{"error": "probe died"}')
    except ValueError:
        return {"error": "probe sent garbage"}


def _open_in_root(pid: int, path: str, flags: int = os.O_PATH) -> int:
    """Open ``path`` as the container sees it, confined to its root."""
    from .linux import syscalls

    root = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return syscalls.openat2(
            root,
            path.lstrip("/") or ".",
            flags,
            syscalls.RESOLVE_IN_ROOT | syscalls.RESOLVE_NO_MAGICLINKS,
            display=path,
        )
    finally:
        os.close(root)


# ---------------------------------------------------------------------------
# namespaces


def _namespaces(ctx: _Context) -> list[dict]:
    wall = _Wall()
    asked = ctx.ns_requests()
    for oci, name in PROC_NAMES.items():
        try:
            mine = os.stat(f"{ctx.proc}/ns/{name}")
        except FileNotFoundError:
            continue  # kernel without this namespace type
        except OSError as e:
            wall.unreadable(oci, None, e)
            continue
        try:
            host = os.stat(f"/proc/{ctx.ref}/ns/{name}")
        except OSError:
            host = None
        shared = host is not None and (host.st_dev, host.st_ino) == (mine.st_dev, mine.st_ino)
        actual = f"{'shared with host' if shared else 'isolated'} [{mine.st_ino}]"
        req = asked.get(oci)
        if req is None:
            if shared:
                verdict = "WARN" if oci in _NS_WEAK_WHEN_SHARED else "info"
                wall.add(oci, "host", actual, verdict, "shares the host's namespace" if verdict == "WARN" else None)
            else:
                wall.add(
                    oci, "host", actual, "info", "inherited from the runtime, which is not in the host's namespace"
                )
        elif req.get("path"):
            path = req["path"]
            try:
                target = os.stat(path)
                same = (target.st_dev, target.st_ino) == (mine.st_dev, mine.st_ino)
                wall.add(
                    oci,
                    f"join {path}",
                    actual,
                    "ok" if same else ctx.mismatch(),
                    None if same else f"{path} is [{target.st_ino}]",
                )
            except OSError as e:
                wall.add(oci, f"join {path}", actual, "WARN", f"cannot stat {path}: {e.strerror}")
        else:
            if shared:
                wall.add(oci, "new", actual, ctx.mismatch(), "not unshared from the host")
            else:
                wall.add(oci, "new", actual, "ok")
    _user_maps(ctx, wall, "user" in asked)
    if "time" in asked:
        _time_offsets(ctx, wall)
    if "uts" in asked:
        _uts(ctx, wall)
    return wall.lines


def _user_maps(ctx, wall, userns_asked):
    for kind, key in (("uid", "uidMappings"), ("gid", "gidMappings")):
        want = _parse_id_map(
            "\n".join(f"{m.get('containerID')} {m.get('hostID')} {m.get('size')}" for m in ctx.linux.get(key) or [])
        )
        try:
            have = _parse_id_map(_read(f"{ctx.proc}/{kind}_map"))
        except OSError as e:
            wall.unreadable(f"{kind} map", _fmt_map(want), e)
            continue
        if userns_asked and want:
            ok = want == have
            wall.add(f"{kind} map", _fmt_map(want), _fmt_map(have), "ok" if ok else ctx.mismatch())
        else:
            wall.add(f"{kind} map", _fmt_map(want) if want else None, _fmt_map(have), "info")


def _time_offsets(ctx, wall):
    want = ctx.linux.get("timeOffsets") or {}
    try:
        text = _read(f"{ctx.proc}/timens_offsets")
    except OSError as e:
        wall.unreadable("time offsets", None, e)
        return
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 3:
            continue
        clock, secs, nsecs = parts[0], int(parts[1]), int(parts[2])
        req = want.get(clock)
        actual = f"{secs}s {nsecs}ns"
        if req is None:
            wall.add(f"{clock} offset", None, actual, "info")
        else:
            asked = f"{int(req.get('secs', 0))}s {int(req.get('nanosecs', 0))}ns"
            wall.add(f"{clock} offset", asked, actual, "ok" if asked == actual else ctx.mismatch())


def _uts(ctx, wall):
    probe = ctx.probe()
    if "error" in probe:
        wall.add("hostname", ctx.config.get("hostname"), None, "WARN", f"cannot join the namespaces: {probe['error']}")
        return
    for key, field in (("hostname", "hostname"), ("domainname", "domainname")):
        want = ctx.config.get(field)
        have = probe.get(key)
        if want is None:
            wall.add(key, None, have, "info")
        else:
            wall.add(key, want, have, "ok" if want == have else ctx.mismatch())


# ---------------------------------------------------------------------------
# filesystem


def _filesystem(ctx: _Context) -> list[dict]:
    wall = _Wall()
    try:
        mounts = ctx.mounts()
    except OSError as e:
        wall.unreadable("mounts", None, e)
        return wall.lines
    root_cfg = ctx.config.get("root") or {}
    root = _mount_at(mounts, "/")
    _root_lines(ctx, wall, root, root_cfg)
    _mount_lines(ctx, wall, mounts)
    _masked_lines(ctx, wall, mounts)
    _readonly_lines(ctx, wall, mounts)
    _sysctl_lines(ctx, wall)
    return wall.lines


def _root_lines(ctx, wall, root, root_cfg):
    if root is None:
        wall.add("root", root_cfg.get("path"), None, "FAIL", "no mount at / in the container's view")
        return
    ro = "ro" in root["options"]
    asked_ro = bool(root_cfg.get("readonly"))
    actual = f"{root['fstype']} {root['root']} ({'ro' if ro else 'rw'})"
    if asked_ro and not ro:
        wall.add("root", f"{root_cfg.get('path')} (ro)", actual, ctx.mismatch(), "read-only root is writable")
    else:
        wall.add("root", f"{root_cfg.get('path')} ({'ro' if asked_ro else 'rw'})", actual, "ok" if asked_ro else "info")
    # pivot_root leaves the rootfs as the mount namespace's root; chroot
    # leaves the old root there, with the rootfs below it.
    no_pivot = bool(ctx.linux.get("noPivotRoot") or ctx.config.get("noPivotRoot"))
    if "mount" in ctx.ns_requests():
        probe = ctx.probe()
        if "error" in probe or probe.get("ns_root_mount_id") is None:
            wall.add(
                "root switch",
                "chroot" if no_pivot else "pivot_root",
                None,
                "WARN",
                f"cannot join the mount namespace: {probe.get('error')}",
            )
        else:
            pivoted = probe["ns_root_mount_id"] == root["id"]
            actual = "pivot_root" if pivoted else "chroot (host root still in the mount namespace)"
            verdict = "ok" if pivoted else "WARN"
            wall.add("root switch", "chroot" if no_pivot else "pivot_root", actual, verdict)
    else:
        wall.add("root switch", "chroot", "chroot in the host's mount namespace", "WARN")
    prop = ctx.linux.get("rootfsPropagation")
    want = (
        {"shared": "shared", "slave": "master", "private": "private", "unbindable": "unbindable"}.get(prop)
        if prop
        else None
    )
    actual = root["propagation"]
    if want is None:
        wall.add("root propagation", prop, actual, "info")
    else:
        ok = any(p.split(":")[0] == want for p in actual.split()) or actual == want
        wall.add("root propagation", prop, actual, "ok" if ok else ctx.mismatch())
    if root["fstype"] == "overlay":
        for opt in root["super_options"]:
            key, _, value = opt.partition("=")
            if key in ("lowerdir", "upperdir", "workdir"):
                for i, layer in enumerate(value.split(":")):
                    wall.add(f"overlay {key}" + (f"[{i}]" if key == "lowerdir" else ""), None, layer, "info")


def _fmt_mount(m) -> str:
    opts = [o for o in m["options"] if o in ("ro", "rw", "nosuid", "nodev", "noexec")]
    src = m["source"] if m["root"] == "/" else f"{m['source']}:{m['root']}"
    return f"{m['fstype']} {src} {','.join(opts)} {m['propagation']}"


def _mount_lines(ctx, wall, mounts):
    by_dest = {}
    for m in ctx.config.get("mounts") or []:
        if isinstance(m, dict) and m.get("destination"):
            by_dest[os.path.normpath(m["destination"])] = m
    special: set[str] = set()
    for key in ("maskedPaths", "readonlyPaths"):
        special.update(os.path.normpath(p) for p in ctx.linux.get(key) or [])
    cgroup_dests = [d for d, m in by_dest.items() if m.get("type") == "cgroup"]
    folded: dict[str, list[dict]] = {}
    for m in mounts:
        mp = m["mountpoint"]
        if mp == "/":
            continue
        want = by_dest.get(mp)
        if want is None:
            if mp in special:
                continue  # reported by the masked/read-only lines
            parent = next((d for d in cgroup_dests if mp.startswith(d + "/")), None)
            if parent:
                folded.setdefault(parent, []).append(m)
                continue
            wall.add(f"mount {mp}", None, _fmt_mount(m), "info")
            continue
        opts = set(want.get("options") or [])
        flags = [o for o in want.get("options") or [] if o in ("ro", "rw", "nosuid", "nodev", "noexec")]
        asked = f"{want.get('type')} {want.get('source')} {','.join(flags) or 'rw'}"
        have = set(m["options"])
        if want.get("type") == "cgroup" and m["fstype"] == "tmpfs":
            # cgroup v1: a tmpfs holds one mount per hierarchy; their
            # flags are what the config's options govern.
            subs = [s for s in mounts if s["mountpoint"].startswith(mp + "/")]
            if subs:
                have = set.intersection(*(set(s["options"]) for s in subs))
        missing = [o for o in ("ro", "nosuid", "nodev", "noexec") if o in opts and o not in have]
        if "rw" in opts and "ro" in have:
            missing.append("rw")
        if missing:
            wall.add(f"mount {mp}", asked, _fmt_mount(m), ctx.mismatch(), "kernel lacks " + ",".join(missing))
        elif mp in _SENSITIVE_RW and "rw" in have:
            wall.add(f"mount {mp}", asked, _fmt_mount(m), "WARN", f"{mp} is writable")
        else:
            wall.add(f"mount {mp}", asked, _fmt_mount(m), "ok")
    present = {m["mountpoint"] for m in mounts}
    for dest, want in by_dest.items():
        if dest not in present and dest != "/":
            wall.add(f"mount {dest}", f"{want.get('type')} {want.get('source')}", None, ctx.mismatch(), "not mounted")
    for parent, subs in folded.items():
        ro = all("ro" in m["options"] for m in subs)
        kinds = sorted({m["mountpoint"][len(parent) + 1 :] for m in subs})
        wall.add(
            f"mount {parent}/*",
            None,
            f"{len(subs)} {subs[0]['fstype']} mounts ({'ro' if ro else 'some rw'}): " + " ".join(kinds),
            "info",
        )


def _paths_in_root(ctx, wall, paths, label, want):
    """Yield ``(path, fd)`` for each of ``paths`` present in the container's
    root (the fd is closed when the caller moves on); an absent path is
    fine for masking and read-only alike, an unreadable one is reported."""
    for path in paths or []:
        path = os.path.normpath(path)
        try:
            fd = _open_in_root(ctx.pid, path)
        except OSError as e:
            if e.errno == 2:
                wall.add(f"{label} {path}", want, "absent", "ok")
            else:
                wall.unreadable(f"{label} {path}", want, e)
            continue
        try:
            yield path, fd
        finally:
            os.close(fd)


def _masked_lines(ctx, wall, mounts):
    from .linux import syscalls

    for path, fd in _paths_in_root(ctx, wall, ctx.linux.get("maskedPaths"), "masked", "masked"):
        st = os.fstat(fd)
        m = _mount_at(mounts, path)
        if stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 3:
            wall.add(f"masked {path}", "masked", "/dev/null bound over it", "ok")
        elif stat.S_ISDIR(st.st_mode):
            ro = bool(os.fstatvfs(fd).f_flag & os.ST_RDONLY)
            dfd = syscalls.openat2(fd, ".", os.O_RDONLY | os.O_DIRECTORY, 0, display=path)
            try:
                entries = os.listdir(dfd)
            finally:
                os.close(dfd)
            if m is not None and ro and not entries:
                wall.add(f"masked {path}", "masked", f"empty read-only {m['fstype']}", "ok")
            else:
                wall.add(
                    f"masked {path}",
                    "masked",
                    f"directory, {len(entries)} entries, {'ro' if ro else 'rw'}" + ("" if m else ", no mount over it"),
                    ctx.mismatch(),
                    "readable",
                )
        else:
            kind = "file" if stat.S_ISREG(st.st_mode) else "special file"
            wall.add(f"masked {path}", "masked", f"{kind}, not masked", ctx.mismatch(), "readable")


def _readonly_lines(ctx, wall, mounts):
    for path, fd in _paths_in_root(ctx, wall, ctx.linux.get("readonlyPaths"), "read-only", "ro"):
        ro = bool(os.fstatvfs(fd).f_flag & os.ST_RDONLY)
        m = _mount_at(mounts, path)
        actual = ("ro" if ro else "rw") + ("" if m else " (no mount of its own)")
        wall.add(f"read-only {path}", "ro", actual, "ok" if ro else ctx.mismatch())


def _sysctl_lines(ctx, wall):
    want = ctx.linux.get("sysctl") or {}
    if not want:
        return
    probe = ctx.probe()
    for key, value in want.items():
        if "error" in probe:
            wall.add(f"sysctl {key}", value, None, "WARN", f"cannot join the namespaces: {probe['error']}")
            continue
        have = (probe.get("sysctl") or {}).get(key)
        same = have is not None and have.split() == str(value).split()
        wall.add(f"sysctl {key}", value, have, "ok" if same else ctx.mismatch())


# ---------------------------------------------------------------------------
# cgroups


def cgroup_paths_of(pid: int) -> dict[str, str]:
    """Controller -> cgroup directory of ``pid``, from /proc/<pid>/cgroup and
    the cgroup mounts this process sees (v2: key ``""``)."""
    own = parse_mountinfo(_read("/proc/self/mountinfo"))
    paths = {}
    for hid, ctrls, path in procfs.cgroups(pid):
        for m in own:
            if hid == "0" and m["fstype"] == "cgroup2":
                key = ""
            elif (
                hid != "0"
                and m["fstype"] == "cgroup"
                and ctrls
                and all(c in m["super_options"] for c in ctrls.split(","))
            ):
                key = ctrls
            else:
                continue
            rel = path if m["root"] == "/" else path[len(m["root"]) :] if path.startswith(m["root"]) else None
            if rel is None:
                continue
            paths[key] = os.path.join(m["mountpoint"], rel.lstrip("/")).rstrip("/")
            break
    return paths


def _controller_dir(paths: dict[str, str], controller: str, v2: bool) -> str | None:
    if v2:
        return paths.get("")
    for key, d in paths.items():
        if controller in key.split(","):
            return d
    return None


def _read_cg(d, name) -> str:
    return _read(os.path.join(d, name)).strip()


def _cgroups(ctx: _Context, paths: dict[str, str]) -> list[dict]:
    wall = _Wall()
    v1 = any(k for k in paths)
    v2 = not v1 and "" in paths
    version = "v2" if v2 else ("v1 (hybrid: v2 tree mounted too)" if "" in paths else "v1") if v1 else None
    if version is None:
        wall.add("version", None, None, "WARN", "no cgroup directories known")
        return wall.lines
    wall.add("version", None, version, "info")
    cgpath = ctx.linux.get("cgroupsPath")
    try:
        kernel = {}
        for hid, ctrls, p in procfs.parse_cgroup(_read(f"{ctx.proc}/cgroup")):
            kernel[ctrls if hid != "0" else ""] = p
        shown = kernel.get("") if v2 else next((p for k, p in kernel.items() if k), None)
        if cgpath:
            ok = shown is not None and (
                shown.rstrip("/").endswith("/" + cgpath.strip("/")) or shown == cgpath or ":" in cgpath
            )
            wall.add(
                "path",
                cgpath,
                shown,
                "ok" if ok else "WARN",
                None if ok else "cgroup path does not end with cgroupsPath",
            )
        else:
            wall.add("path", None, shown, "info")
    except OSError as e:
        wall.unreadable("path", cgpath, e)
    # The runtime's record of the cgroup directories against the kernel's.
    strays = []
    for key, d in paths.items():
        if key == "" and not v2:
            continue
        try:
            procs = _read_cg(d, "cgroup.procs").split()
        except OSError as e:
            strays.append(f"{key or 'v2'}: {e.strerror}")
            continue
        if str(ctx.pid) not in procs:
            strays.append(key or "v2")
    wall.add(
        "membership",
        f"{len(paths)} dirs",
        "pid in every dir" if not strays else "pid missing from " + ", ".join(strays),
        "FAIL" if strays else "ok",
    )
    res = ctx.linux.get("resources") or {}
    _cg_memory(ctx, wall, paths, v2, res.get("memory") or {})
    _cg_pids(ctx, wall, paths, v2, res.get("pids") or {})
    _cg_cpu(ctx, wall, paths, v2, res.get("cpu") or {})
    if v2:
        for fname, value in (res.get("unified") or {}).items():
            try:
                have = _read_cg(paths[""], fname)
                ok = have.split() == str(value).split()
                wall.add(f"unified {fname}", value, have, "ok" if ok else "FAIL")
            except OSError as e:
                wall.add(f"unified {fname}", value, None, "FAIL", f"cannot read: {e.strerror}")
    _cg_devices(wall, paths, v2)
    return wall.lines


def _limit_line(wall, item, want, have, unlimited_verdict="info", round_to=1):
    """Compare an integer limit; None = unlimited on either side."""
    fmt = (
        (lambda v: "unlimited" if v is None else _fmt_bytes(v))
        if round_to > 1
        else (lambda v: "unlimited" if v is None else str(v))
    )
    if want is None:
        wall.add(
            item,
            None,
            fmt(have),
            unlimited_verdict if have is None else "info",
            "no limit" if have is None and unlimited_verdict == "WARN" else None,
        )
        return
    ok = have is not None and (have == want or have == want // round_to * round_to)
    wall.add(item, fmt(want), fmt(have), "ok" if ok else "FAIL", None if ok else "the kernel did not apply the limit")


def _int_or_none(text, unlimited_at=None):
    if text in ("max", "-1", ""):
        return None
    v = int(text)
    if unlimited_at is not None and v >= unlimited_at:
        return None
    return v


def _want(v):
    """Config limits: negative (and absent) mean unlimited."""
    return None if v is None or int(v) < 0 else int(v)


def _cg_memory(ctx, wall, paths, v2, mem):
    d = _controller_dir(paths, "memory", v2)
    if d is None:
        return
    page = os.sysconf("SC_PAGE_SIZE")
    try:
        if v2:
            have = _int_or_none(_read_cg(d, "memory.max"))
            usage = int(_read_cg(d, "memory.current"))
        else:
            have = _int_or_none(_read_cg(d, "memory.limit_in_bytes"), _V1_UNLIMITED)
            usage = int(_read_cg(d, "memory.usage_in_bytes"))
        _limit_line(wall, "memory limit", _want(mem.get("limit")), have, round_to=page)
        wall.add("memory usage", None, _fmt_bytes(usage // 1024 * 1024), "info")
    except (OSError, ValueError) as e:
        wall.unreadable("memory limit", mem.get("limit"), e)
    if mem.get("swap") is not None:
        try:
            if v2:
                swap = _int_or_none(_read_cg(d, "memory.swap.max"))
                limit = _want(mem.get("limit"))
                want = _want(mem["swap"])
                # v2 counts swap alone; the spec's value is memory+swap.
                want = None if want is None else (want - limit if limit is not None else want)
            else:
                swap = _int_or_none(_read_cg(d, "memory.memsw.limit_in_bytes"), _V1_UNLIMITED)
                want = _want(mem["swap"])
            _limit_line(wall, "memory+swap limit" if not v2 else "swap limit", want, swap, round_to=page)
        except (OSError, ValueError) as e:
            wall.unreadable("swap limit", mem.get("swap"), e)
    if mem.get("reservation") is not None:
        try:
            if v2:
                have = _int_or_none(_read_cg(d, "memory.low"))
            else:
                have = _int_or_none(_read_cg(d, "memory.soft_limit_in_bytes"), _V1_UNLIMITED)
            _limit_line(wall, "memory reservation", _want(mem["reservation"]), have, round_to=page)
        except (OSError, ValueError) as e:
            wall.unreadable("memory reservation", mem.get("reservation"), e)


def _cg_pids(ctx, wall, paths, v2, pids):
    d = _controller_dir(paths, "pids", v2)
    if d is None:
        wall.add(
            "pids limit", pids.get("limit"), None, "WARN" if not pids.get("limit") else "FAIL", "no pids controller"
        )
        return
    try:
        have = _int_or_none(_read_cg(d, "pids.max"))
        current = _read_cg(d, "pids.current")
    except (OSError, ValueError) as e:
        wall.unreadable("pids limit", pids.get("limit"), e)
        return
    want = pids.get("limit")
    want = None if want is None or int(want) <= 0 else int(want)
    _limit_line(wall, "pids limit", want, have, unlimited_verdict="WARN")
    wall.add("pids usage", None, current, "info")


def _cg_cpu(ctx, wall, paths, v2, cpu):
    d = _controller_dir(paths, "cpu", v2)
    if d is not None:
        try:
            if v2:
                quota_s, _, period_s = _read_cg(d, "cpu.max").partition(" ")
                quota, period = _int_or_none(quota_s), int(period_s or 100000)
            else:
                quota = _int_or_none(_read_cg(d, "cpu.cfs_quota_us"))
                period = int(_read_cg(d, "cpu.cfs_period_us"))
            want_q = _want(cpu.get("quota"))
            _limit_line(wall, "cpu quota (us)", want_q, quota)
            if cpu.get("period") is not None:
                _limit_line(wall, "cpu period (us)", int(cpu["period"]), period)
            if cpu.get("shares") is not None:
                shares = int(cpu["shares"])
                if v2:
                    want_w = 1 + ((shares - 2) * 9999) // 262142
                    _limit_line(wall, "cpu weight", want_w, int(_read_cg(d, "cpu.weight")))
                else:
                    _limit_line(wall, "cpu shares", shares, int(_read_cg(d, "cpu.shares")))
        except (OSError, ValueError) as e:
            wall.unreadable("cpu quota (us)", cpu.get("quota"), e)
    try:
        if v2 and d is not None:
            for line in _read_cg(d, "cpu.stat").splitlines():
                k, _, v = line.partition(" ")
                if k == "usage_usec":
                    wall.add("cpu usage", None, f"{int(v) / 1e6:.3f} s", "info")
        else:
            acct = _controller_dir(paths, "cpuacct", v2)
            if acct:
                wall.add("cpu usage", None, f"{int(_read_cg(acct, 'cpuacct.usage')) / 1e9:.3f} s", "info")
    except (OSError, ValueError) as e:
        wall.unreadable("cpu usage", None, e)
    cs = _controller_dir(paths, "cpuset", v2)
    for key, fname in (("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")):
        if cpu.get(key) is None or cs is None:
            continue
        try:
            have = _read_cg(cs, fname + (".effective" if v2 and not os.path.exists(os.path.join(cs, fname)) else ""))
            ok = set(procfs.parse_cpu_list(have)) == set(procfs.parse_cpu_list(str(cpu[key])))
            wall.add(f"cpuset {key}", cpu[key], have, "ok" if ok else "FAIL")
        except (OSError, ValueError) as e:
            wall.unreadable(f"cpuset {key}", cpu[key], e)


def _cg_devices(wall, paths, v2):
    if v2:
        wall.add("devices", None, "eBPF device filter (not read back)", "info")
        return
    d = _controller_dir(paths, "devices", v2)
    if d is None:
        return
    try:
        rules = _read_cg(d, "devices.list").splitlines()
    except OSError as e:
        wall.unreadable("devices", None, e)
        return
    if "a *:* rwm" in rules:
        wall.add("devices", None, "all devices allowed", "WARN", "no device cgroup restriction")
    else:
        wall.add("devices", None, f"{len(rules)} allow rules", "info")


# ---------------------------------------------------------------------------
# privileges


def _privileges(ctx: _Context) -> list[dict]:
    wall = _Wall()
    try:
        st = ctx.status_fields()
    except OSError as e:
        wall.unreadable("status", None, e)
        return wall.lines
    caps_cfg = ctx.process.get("capabilities") or {}
    have = {}
    for key, oci in (
        ("CapBnd", "bounding"),
        ("CapEff", "effective"),
        ("CapPrm", "permitted"),
        ("CapInh", "inheritable"),
        ("CapAmb", "ambient"),
    ):
        have[oci] = set(names_of_mask(int(st.get(key, "0"), 16)))
    for oci in ("bounding", "effective", "permitted", "inheritable", "ambient"):
        want = set(caps_cfg.get(oci) or [])
        extra, missing = have[oci] - want, want - have[oci]
        actual = _fmt_caps(have[oci])
        asked = _fmt_caps(want)
        if extra:
            wall.add(f"caps {oci}", asked, actual, ctx.mismatch(), "not granted by the config: " + _fmt_caps(extra))
        elif missing:
            # The kernel keeps ambient within permitted & inheritable.
            explained = oci == "ambient" and not (missing & have["permitted"] & have["inheritable"])
            wall.add(
                f"caps {oci}",
                asked,
                actual,
                "info" if explained else "WARN",
                (
                    "the kernel allows ambient only within permitted and inheritable: "
                    if explained
                    else "asked but missing: "
                )
                + _fmt_caps(missing),
            )
        else:
            wall.add(f"caps {oci}", asked, actual, "ok")
    danger = sorted(have["effective"] & DANGEROUS_CAPS)
    if danger:
        wall.add("dangerous caps", None, " ".join(danger), "WARN", "effective set holds host-level powers")
    try:
        host_bnd = set(names_of_mask(int(procfs.status(ctx.ref).get("CapBnd", "0"), 16)))
        dropped = sorted(host_bnd - have["bounding"], key=_cap_order)
        wall.add("dropped from host", None, f"{len(dropped)}: " + _fmt_caps(dropped) if dropped else "none", "info")
    except OSError:
        pass
    nnp_want = bool(ctx.process.get("noNewPrivileges"))
    nnp_have = st.get("NoNewPrivs") == "1"
    onoff = {True: "on", False: "off"}
    if nnp_want != nnp_have:
        wall.add("no_new_privs", onoff[nnp_want], onoff[nnp_have], ctx.mismatch())
    else:
        wall.add(
            "no_new_privs",
            onoff[nnp_want],
            onoff[nnp_have],
            "ok" if nnp_have else "WARN",
            None if nnp_have else "setuid binaries can gain privileges",
        )
    _seccomp_line(ctx, wall, st)
    _lsm_line(ctx, wall)
    return wall.lines


def _cap_order(name):
    try:
        return CAP_NAMES.index(name)
    except ValueError:
        return len(CAP_NAMES)


def _fmt_caps(caps) -> str:
    if not caps:
        return "(none)"
    short = [c[4:] if c.startswith("CAP_") else c for c in sorted(caps, key=_cap_order)]
    return " ".join(short)


def _seccomp_line(ctx, wall, st):
    sec = ctx.linux.get("seccomp")
    mode = st.get("Seccomp", "?")
    filters = int(st.get("Seccomp_filters", "0") or 0)
    try:
        ref_filters = int(procfs.status(ctx.ref).get("Seccomp_filters", "0") or 0)
    except OSError:
        ref_filters = 0
    actual = f"{_SECCOMP_MODES.get(mode, mode)}, {filters} filter{'s' if filters != 1 else ''}"
    if sec:
        rules = sum(len(s.get("names") or []) for s in sec.get("syscalls") or [])
        action = str(sec.get("defaultAction", "?")).removeprefix("SCMP_ACT_")
        asked = f"filter (default {action}, {rules} syscall rules)"
        ok = mode == "2" and filters > ref_filters
        wall.add(
            "seccomp",
            asked,
            actual,
            "ok" if ok else ctx.mismatch(),
            None if ok else "no filter of the container's own is installed",
        )
    else:
        wall.add(
            "seccomp",
            "none",
            actual,
            "WARN" if mode == "0" else "info",
            "every syscall is allowed" if mode == "0" else "filter inherited from the runtime",
        )


def _lsm_line(ctx, wall):
    apparmor = ctx.process.get("apparmorProfile")
    selinux = ctx.process.get("selinuxLabel")
    label = None
    for rel in ("attr/apparmor/current", "attr/current"):
        try:
            label = _read(f"{ctx.proc}/{rel}").strip("\x00\n ")
            break
        except OSError:
            continue
    asked = apparmor or selinux
    if not asked:
        wall.add("LSM label", None, label or "none (no LSM)", "info")
        return
    if label is None:
        wall.add("LSM label", asked, "none (no LSM)", ctx.mismatch(), "the profile is not applied")
        return
    if apparmor:
        ok = label.split(" (")[0] == apparmor
    else:
        ok = label == selinux
    wall.add("LSM label", asked, label, "ok" if ok else ctx.mismatch())


# ---------------------------------------------------------------------------
# process


def _process(ctx: _Context) -> list[dict]:
    wall = _Wall()
    try:
        st = ctx.status_fields()
    except OSError as e:
        wall.unreadable("status", None, e)
        return wall.lines
    user = ctx.process.get("user") or {}
    to_ctr_uid = _id_mapper(ctx, "uid")
    to_ctr_gid = _id_mapper(ctx, "gid")
    for kind, field, mapper in (("uid", "Uid", to_ctr_uid), ("gid", "Gid", to_ctr_gid)):
        ids = [mapper(int(x)) for x in st.get(field, "").split()]
        want = user.get(kind)
        actual = "/".join(str(i) for i in ids) + " (real/effective/saved/fs)"
        if want is None:
            wall.add(kind, None, actual, "info")
        else:
            ok = all(i == int(want) for i in ids)
            wall.add(kind, want, actual, "ok" if ok else ctx.mismatch())
    groups = sorted(to_ctr_gid(int(g)) for g in st.get("Groups", "").split())
    want_groups = sorted(set(int(g) for g in user.get("additionalGids") or []))
    if want_groups or "additionalGids" in user:
        ok = set(groups) - {int(user.get("gid", -1))} == set(want_groups) - {int(user.get("gid", -1))}
        wall.add(
            "groups",
            " ".join(map(str, want_groups)) or "(none)",
            " ".join(map(str, groups)) or "(none)",
            "ok" if ok else ctx.mismatch(),
        )
    else:
        wall.add("groups", None, " ".join(map(str, groups)) or "(none)", "info")
    if user.get("umask") is not None:
        have = int(st.get("Umask", "0"), 8)
        wall.add(
            "umask", f"{int(user['umask']):04o}", f"{have:04o}", "ok" if have == int(user["umask"]) else ctx.mismatch()
        )
    _rlimit_lines(ctx, wall)
    _oom_line(ctx, wall)
    _cwd_args_lines(ctx, wall)
    _fd_lines(ctx, wall)
    return wall.lines


def _id_mapper(ctx, kind):
    """Map an id as this process sees it to the id inside the container."""
    try:
        entries = _parse_id_map(_read(f"{ctx.proc}/{kind}_map"))
    except OSError:
        return lambda i: i

    def to_container(i):
        for inside, outside, count in entries:
            if outside <= i < outside + count:
                return inside + i - outside
        return i

    return to_container


def _rlimit_lines(ctx, wall):
    want = {str(r.get("type")): r for r in ctx.process.get("rlimits") or [] if isinstance(r, dict)}
    try:
        have = parse_limits(_read(f"{ctx.proc}/limits"))
    except OSError as e:
        wall.unreadable("rlimits", None, e)
        return

    def fmt(v):
        return "unlimited" if v >= RLIM_INFINITY else str(v)

    for name, r in want.items():
        soft, hard = int(r.get("soft", 0)), int(r.get("hard", 0))
        h = have.get(name)
        if h is None:
            wall.add(name, f"{fmt(soft)}/{fmt(hard)}", None, "WARN", "unknown to the kernel")
            continue
        ok = (min(soft, RLIM_INFINITY), min(hard, RLIM_INFINITY)) == h
        wall.add(name, f"{fmt(soft)}/{fmt(hard)}", f"{fmt(h[0])}/{fmt(h[1])}", "ok" if ok else ctx.mismatch())
    for name in ("RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_CORE"):
        if name not in want and name in have:
            wall.add(name, None, f"{fmt(have[name][0])}/{fmt(have[name][1])}", "info")


def _oom_line(ctx, wall):
    want = ctx.process.get("oomScoreAdj")
    try:
        have = int(_read(f"{ctx.proc}/oom_score_adj"))
    except (OSError, ValueError) as e:
        wall.unreadable("oom_score_adj", want, e)
        return
    if want is None:
        wall.add("oom_score_adj", None, have, "info")
    else:
        wall.add("oom_score_adj", want, have, "ok" if int(want) == have else ctx.mismatch())


def _cwd_args_lines(ctx, wall):
    want_cwd = ctx.process.get("cwd")
    if want_cwd:
        try:
            have = os.stat(f"{ctx.proc}/cwd")
            fd = _open_in_root(ctx.pid, want_cwd)
            try:
                there = os.fstat(fd)
            finally:
                os.close(fd)
            ok = (have.st_dev, have.st_ino) == (there.st_dev, there.st_ino)
            wall.add(
                "cwd",
                want_cwd,
                want_cwd if ok else "elsewhere",
                "ok" if ok else "info",
                None if ok else "the process changed directory, or the runtime did not",
            )
        except OSError as e:
            wall.unreadable("cwd", want_cwd, e)
    want_args = ctx.process.get("args")
    try:
        raw = open(f"{ctx.proc}/cmdline", "rb").read()
        args = [a.decode(errors="replace") for a in raw.split(b"\0")[:-1]]
        if want_args is None:
            wall.add("args", None, " ".join(args), "info")
        else:
            same = args == list(want_args)
            wall.add(
                "args",
                " ".join(want_args),
                " ".join(args),
                "ok" if same else "info",
                None if same or not ctx.started else "the process has exec'd since",
            )
    except OSError as e:
        wall.unreadable("args", None, e)


def _fd_lines(ctx, wall):
    try:
        fds = sorted(int(n) for n in os.listdir(f"{ctx.proc}/fd"))
    except OSError as e:
        wall.unreadable("open fds", None, e)
        return
    for n in fds:
        try:
            target = os.readlink(f"{ctx.proc}/fd/{n}")
            st = os.stat(f"{ctx.proc}/fd/{n}")
        except OSError:
            continue  # closed meanwhile
        if n > 2 and stat.S_ISDIR(st.st_mode):
            # A directory fd inherited from the runtime is a way out of the
            # rootfs (CVE-2024-21626); the container may own dirs fds too.
            wall.add(f"fd {n}", None, target, "WARN", "open directory: a leaked host directory escapes the root")
        else:
            wall.add(f"fd {n}", None, target, "info")


# ---------------------------------------------------------------------------
# rendering


def render_json(report: dict) -> str:
    import json

    return json.dumps(report, indent=2) + "\n"


def render_text(report: dict) -> str:
    """A table per wall: verdict, item, what the config asked, what the kernel shows."""
    out = [f"container {report['id']}  pid {report['pid']}  {report['status']}  (host = {report['host']})"]
    for wall, lines in report["walls"].items():
        out.append("")
        out.append(wall.upper())
        if not lines:
            out.append("  (nothing to report)")
            continue
        w_item = min(max(len("ITEM"), *(len(l["item"]) for l in lines)), 32)
        w_asked = min(max(len("ASKED"), *(len(_cell(l["asked"])) for l in lines)), 36)
        out.append(f"  {'':4}  {'ITEM':<{w_item}}  {'ASKED':<{w_asked}}  ACTUAL")
        for l in lines:
            text = f"  {l['verdict']:<4}  {l['item']:<{w_item}}  {_cell(l['asked']):<{w_asked}}  {_cell(l['actual'])}"
            if l.get("note"):
                text += f"  -- {l['note']}"
            out.append(text.rstrip())
    s = report["summary"]
    out.append("")
    out.append(f"verdict: {report['verdict']}  ({s['FAIL']} FAIL, {s['WARN']} WARN, {s['ok']} ok, {s['info']} info)")
    return "\n".join(out) + "\n"


def _cell(v) -> str:
    return "-" if v is None else v


# Nested walls for --diagram: outermost first.
_DIAGRAM_LAYERS = (
    ("cgroups", "cgroup"),
    ("namespaces", "namespaces"),
    ("filesystem", "filesystem"),
    ("privileges", "privileges"),
    ("process", "process"),
)
_VERDICT_COLOURS = {"ok": "#1a7f37", "WARN": "#b35900", "FAIL": "#cf222e", "info": "#57606a"}
_LAYER_FILLS = ("#f6f8fa", "#eef6ff", "#f0fff4", "#fffbea", "#fff0f0", "#f5f0ff")


def render_svg(report: dict, *, max_lines: int = 12) -> str:
    """The container drawn as nested walls (host kernel > cgroup >
    namespaces > filesystem > privileges > process), each with its measured
    facts; every WARN and FAIL is shown, then ok and info lines up to
    ``max_lines`` per wall."""
    from xml.sax.saxutils import escape

    line_h, head_h, pad, inset, width = 15, 22, 8, 18, 980
    layers = [("host kernel", [{"item": "host", "actual": report["host"], "verdict": "info"}])]
    for wall, title in _DIAGRAM_LAYERS:
        lines = report["walls"].get(wall, [])
        bad = [l for l in lines if l["verdict"] in ("FAIL", "WARN")]
        rest = [l for l in lines if l["verdict"] in ("ok", "info")]
        shown = bad + rest[: max(0, max_lines - len(bad))]
        hidden = len(lines) - len(shown)
        if hidden:
            shown = shown + [{"item": f"... {hidden} more lines", "actual": None, "verdict": "info"}]
        layers.append((title, shown))
    # heights from the innermost layer outwards
    own = [head_h + len(lines) * line_h + pad for _, lines in layers]
    heights = [0] * len(layers)
    for i in range(len(layers) - 1, -1, -1):
        inner = heights[i + 1] + pad if i + 1 < len(layers) else 0
        heights[i] = own[i] + inner + pad
    total_h = heights[0] + 2 * pad + 30
    s = report["summary"]
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width + 2 * pad}" height="{total_h}" '
        f'font-family="DejaVu Sans Mono, monospace" font-size="12">',
        f'<text x="{pad}" y="20" font-size="15" font-weight="bold">'
        f"{escape(report['id'])} (pid {report['pid']}, {escape(report['status'])}): "
        f"{report['verdict']} - {s['FAIL']} FAIL, {s['WARN']} WARN, {s['ok']} ok, {s['info']} info</text>",
    ]
    y = 30 + pad
    for i, (title, lines) in enumerate(layers):
        x = pad + i * inset
        w = width - 2 * i * inset
        worst = next((v for v in ("FAIL", "WARN") if any(l["verdict"] == v for l in lines)), None)
        stroke = _VERDICT_COLOURS[worst] if worst else "#8c959f"
        out.append(
            f'<rect x="{x}" y="{y}" width="{w}" height="{heights[i]}" rx="8" '
            f'fill="{_LAYER_FILLS[i % len(_LAYER_FILLS)]}" stroke="{stroke}" stroke-width="2"/>'
        )
        out.append(f'<text x="{x + 10}" y="{y + 16}" font-weight="bold">{escape(title)}</text>')
        ty = y + head_h + line_h - 4
        max_chars = max(20, (w - 30) // 7)
        for l in lines:
            text = l["item"] if l.get("actual") is None else f"{l['item']}: {l['actual']}"
            if len(text) > max_chars:
                text = text[: max_chars - 1] + "\u2026"
            colour = _VERDICT_COLOURS.get(l["verdict"], "#000")
            out.append(
                f'<text x="{x + 14}" y="{ty}" fill="{colour}">'
                f'<tspan font-weight="bold">{l["verdict"]:<4}</tspan> {escape(text)}</text>'
            )
            ty += line_h
        y += own[i]
    out.append("</svg>")
    return "\n".join(out) + "\n"
