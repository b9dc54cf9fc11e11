"""Rootless mode: pyrunc run by an unprivileged user, or by root inside a
user namespace that does not map every id (rootless podman runs the
runtime so).  docs/rootless.md is the user-facing description.

Two notions, as in runc:

* **unprivileged caller** (``os.geteuid() != 0``): the container needs a
  user namespace, its id maps are written by us (one id: directly, with
  ``setgroups`` denied) or by shadow's setuid helpers ``newuidmap`` /
  ``newgidmap`` (several ranges, allotted in /etc/subuid and /etc/subgid);
  ``uid=``/``gid=`` mount options must name mapped ids.
* **rootless cgroups** (``--rootless``, default ``auto``: an unprivileged
  caller or a partial user namespace): a cgroup we may not create or join is
  not an error as long as the config asks for no limit; with limits the
  create fails with one line saying so (``settle_cgroup``).

Everything here runs with the caller's own credentials: pyrunc is never
setuid, so no path a caller passes (``--root``, ``--log``, ``--pid-file``,
``--console-socket``, bind sources) is opened with more than they have.  The
only privileged step, mapping subordinate ids, is delegated to newuidmap /
newgidmap, which check /etc/subuid themselves.

Which of the two applies, and the default ``--root``, are decided in
``caller.py``, which every command loads; this module only on the paths
that make a container (create, run, exec, restore).
"""

from . import lightos as os  # os's calls without importing os (lightos.py)

from .errors import CgroupError, ConfigError, StageError


# --- the config of an unprivileged caller -----------------------------------
def _single_own(maps, own):
    """The one mapping the kernel lets an unprivileged process write itself:
    its own id, once."""
    return len(maps) == 1 and maps[0].host_id == own and maps[0].size == 1


def _mapped(maps, cid):
    return any(m.container_id <= cid < m.container_id + m.size for m in maps)


def setgroups_denied(cfg):
    """An unprivileged caller writing a one-gid map itself must deny
    setgroups first (kernel rule since 3.19); with newgidmap it stays allowed."""
    return (
        os.geteuid() != 0
        and cfg.namespace("user") is not None
        and not cfg.namespace("user").path
        and _single_own(cfg.gid_mappings, os.getegid())
    )


def check_config(cfg):
    """What an unprivileged caller cannot run, refused before anything is
    made (one line each, runc's rules and wording where it has one)."""
    # (process ids outside the user namespace's maps: config/convert.py
    # check_model, for root as well)
    userns = cfg.namespace("user")
    if os.geteuid() == 0:
        return
    if userns is None:
        raise ConfigError(
            "rootless container requires user namespaces: pyrunc runs as uid "
            f'{os.geteuid()}; add {{"type": "user"}} to linux.namespaces with '
            "uidMappings and gidMappings (pyrunc spec --rootless)"
        )
    if not userns.path:
        if not cfg.uid_mappings:
            raise ConfigError("rootless containers require at least one UID mapping (linux.uidMappings)")
        if not cfg.gid_mappings:
            raise ConfigError("rootless containers require at least one GID mapping (linux.gidMappings)")
        for maps, own, kind in ((cfg.uid_mappings, os.geteuid(), "uid"), (cfg.gid_mappings, os.getegid(), "gid")):
            if not _single_own(maps, own):
                _check_subids(maps, own, kind)
    for m in cfg.mounts:
        for opt in (m.data or "").split(","):
            for kind, maps in (("uid", cfg.uid_mappings), ("gid", cfg.gid_mappings)):
                if opt.startswith(kind + "=") and opt[4:].isdigit() and maps and not _mapped(maps, int(opt[4:])):
                    raise ConfigError(
                        f"cannot specify {opt} mount option for rootless container: "
                        f"{kind} {opt[4:]} is not mapped in linux.{kind}Mappings "
                        f"(mount on {m.destination})"
                    )
    if cfg.process and cfg.process.user.additional_gids and setgroups_denied(cfg):
        raise ConfigError(
            "cannot set any additional groups in a rootless container: with one "
            "mapped gid setgroups is denied (map a range with newgidmap to use "
            "process.user.additionalGids)"
        )


def mapping_tool(kind):
    """The path of newuidmap/newgidmap, or None."""
    import shutil

    name = f"new{kind}map"
    return shutil.which(name, path=os.environ.get("PATH") or "/usr/bin:/bin:/usr/sbin:/sbin") or next(
        (p for p in (f"/usr/bin/{name}", f"/bin/{name}") if os.access(p, os.X_OK)), None
    )


def _user_name(uid):
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (KeyError, ImportError):
        return None


def allotted_ranges(kind, uid, path=None):
    """[(start, count)] the sub{kind} file allots to ``uid`` (by name or number)."""
    path = path or f"/etc/sub{kind}"
    names = {str(uid)}
    name = _user_name(uid)
    if name:
        names.add(name)
    out = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.strip().split(":")
                if len(parts) == 3 and parts[0] in names and parts[1].isdigit() and parts[2].isdigit():
                    out.append((int(parts[1]), int(parts[2])))
    except OSError:
        pass
    return out


def _check_subids(maps, own, kind):
    """Several ranges: newXidmap must exist and every host range must be the
    caller's own id or allotted in /etc/subXid (the helper checks too; this
    gives the one line that says which mapping and why)."""
    tool = mapping_tool(kind)
    field = f"linux.{kind}Mappings"
    if tool is None:
        raise ConfigError(
            f"{field}: mapping more than the caller's own {kind} needs new{kind}map, "
            "which is not installed (Debian package uidmap)"
        )
    ranges = allotted_ranges(kind, os.geteuid())
    user = _user_name(os.geteuid()) or str(os.geteuid())
    for i, m in enumerate(maps):
        lo, hi = m.host_id, m.host_id + m.size
        if m.size == 1 and lo == own:
            continue
        if not any(s <= lo and hi <= s + n for s, n in ranges):
            raise ConfigError(
                f"{field}[{i}]: host {kind}s {lo}-{hi - 1} are not allotted to {user} "
                f"in /etc/sub{kind} (it has: "
                f"{', '.join(f'{s}-{s + n - 1}' for s, n in ranges) or 'none'})"
            )


# --- id maps ---------------------------------------------------------------
def write_id_maps(pid, uid_maps, gid_maps):
    """Write the user namespace maps of ``pid`` (the intermediate stage).

    Root writes them directly.  An unprivileged caller writes a map of its
    own id directly (after denying setgroups for the gid map) and hands any
    other map to newuidmap/newgidmap, which may map /etc/subuid ranges."""
    euid = os.geteuid()
    for kind, maps, own in (("uid", uid_maps, euid), ("gid", gid_maps, os.getegid())):
        if not maps:
            continue
        if euid != 0 and not _single_own(maps, own):
            _run_tool(kind, pid, maps)
            continue
        if euid != 0 and kind == "gid":
            _write_proc(pid, "setgroups", "deny")
        _write_proc(pid, f"{kind}_map", "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in maps))


def _write_proc(pid, name, text):
    try:
        with open(f"/proc/{pid}/{name}", "w") as f:
            f.write(text)
    except OSError as e:
        what = " ".join(text.split())
        raise StageError(f"writing /proc/{pid}/{name} ({what}): {e.strerror}") from None


def _run_tool(kind, pid, maps):
    import subprocess

    tool = mapping_tool(kind)
    if tool is None:
        raise StageError(f"linux.{kind}Mappings: new{kind}map is not installed (Debian package uidmap)")
    args = [tool, str(pid)]
    for m in maps:
        args += [str(m.container_id), str(m.host_id), str(m.size)]
    try:
        p = subprocess.run(args, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise StageError(f"new{kind}map: {e}") from None
    if p.returncode != 0:
        lines = [ln for ln in (p.stderr + p.stdout).splitlines() if ln.strip()]
        why = lines[-1].strip() if lines else f"exit status {p.returncode}"
        raise StageError(f"new{kind}map {pid}: {why} (ranges must be allotted in /etc/sub{kind})")


# --- cgroups ---------------------------------------------------------------
def needed_controllers(resources):
    """[(controller, field)] the limits in ``resources`` (a
    config.model.Resources, or a LinuxResources dict) need: what runc's
    cgroup managers would write.  Device rules are not listed: an
    unprivileged user cannot set them, and runc ignores them in rootless mode."""
    from .cgroups.resources import as_record
    from .config.model import BlockIO, Cpu, Memory, Network

    r = as_record(resources)
    out = []
    mem = r.memory or Memory()
    if (
        any(v not in (None, 0) for v in (mem.limit, mem.reservation, mem.swap, mem.kernel, mem.kernelTCP))
        or mem.swappiness not in (None, -1)
        or mem.disableOOMKiller
    ):
        out.append(("memory", "memory"))
    cpu = r.cpu or Cpu()
    if any(
        v not in (None, 0)
        for v in (cpu.shares, cpu.quota, cpu.period, cpu.realtimeRuntime, cpu.realtimePeriod, cpu.burst, cpu.idle)
    ):
        out.append(("cpu", "cpu"))
    if cpu.cpus or cpu.mems:
        out.append(("cpuset", "cpuset"))
    if r.pids is not None and r.pids.limit not in (None, 0):
        out.append(("pids", "pids"))
    bio = r.blockIO or BlockIO()
    if bio.weight or bio.leafWeight or bio.weightDevice or any(getattr(bio, k) for k in BlockIO.THROTTLE_KEYS):
        out.append(("blkio", "blockIO"))
    if r.hugepageLimits:
        out.append(("hugetlb", "hugepageLimits"))
    net = r.network or Network()
    if net.classID is not None:
        out.append(("net_cls", "network.classID"))
    if net.priorities:
        out.append(("net_prio", "network.priorities"))
    if r.rdma:
        out.append(("rdma", "rdma"))
    if r.unified:
        out.append(("", "unified"))
    return out


def _joinable(d):
    return os.path.isdir(d) and os.access(os.path.join(d, "cgroup.procs"), os.W_OK)


def settle_cgroup(mgr, resources, explicit_path, wanted=None):
    """After ``mgr.create()`` in rootless mode: the manager to use.

    A cgroup the caller can write (a delegated one) is used as by root.
    Without one (or for the hierarchies without one, on cgroup v1) runc's
    rules apply: an explicit ``cgroupsPath`` is an error, a config without
    limits runs without a cgroup of its own (a ``NullManager``), and a limit
    that needs a missing controller fails with one line saying why.
    ``wanted``: ``mgr.paths()`` before create (which drops, on cgroup v1,
    the hierarchies it could not make), to name them in errors."""
    if getattr(mgr, "driver", None) == "systemd":
        return mgr  # the systemd driver asks the user's manager (cgroups/systemd.py)
    paths = mgr.paths()
    usable = {c: d for c, d in paths.items() if _joinable(d)}
    needed = needed_controllers(resources)
    missing = [(c, f) for c, f in needed if c not in usable and not (mgr.version == 2 and "" in usable)]
    if usable and not missing:
        return mgr
    wanted = wanted or paths
    where = next(iter(wanted.values()), "")
    if not usable and explicit_path:
        raise CgroupError(
            f"cannot create cgroup {where}: permission denied (rootless: "
            "linux.cgroupsPath names a cgroup this user may not create or join; "
            "delegate it or drop cgroupsPath)"
        )
    if missing:
        ctrl, field = missing[0]
        d = wanted.get(ctrl) or where
        raise CgroupError(
            f"cannot set {field} limit: rootless container could not join or "
            f"create cgroup {d} (not writable by uid {os.geteuid()}: no delegated "
            "cgroup; remove linux.resources limits or run in a delegated cgroup)"
        )
    return NullManager(mgr)


class NullManager:
    """No cgroup of the container's own (rootless without a delegated
    cgroup): the container stays in the caller's cgroup, as with runc.
    Nothing is persisted (state.cgroup is None), so later commands see a
    container without a cgroup (pause refuses, ps lists nothing)."""

    version = 0
    null = True

    def __init__(self, wanted):
        self.path = getattr(wanted, "path", "")
        self.rootless = True

    def create(self):
        pass

    def apply(self, pid):
        pass

    def set(self, resources, *, initial=False):
        if needed_controllers(resources):
            raise CgroupError("cannot set limits: the rootless container has no cgroup of its own")

    def is_frozen(self):
        return False

    def exists(self):
        return False

    def pids(self):
        return []

    def paths(self):
        return {}

    def kill_all(self, sig):
        pass

    def destroy(self):
        pass

    def to_dict(self):
        return None
