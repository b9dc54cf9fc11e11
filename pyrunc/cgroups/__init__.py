"""cgroup managers: one interface over cgroup v1 (incl. hybrid) and pure cgroup v2.

``new_manager`` resolves a container's ``cgroupsPath`` the way runc does and
returns the manager for the host's cgroup layout; ``load_manager`` rebuilds it
from what ``CgroupManager.to_dict`` returned (persisted in the state dir).

This module is imported on every runtime invocation, so it stays light: the
v1/v2 implementations, resource writers, stats, the eBPF device filter and
the systemd driver (with its D-Bus library) are imported only when a manager
of that kind is made.
"""

from pyrunc import lightos as os  # os's calls without importing os (lightos.py)
from pyrunc.errors import CgroupError

CGROUP_ROOT = "/sys/fs/cgroup"

_call_table: "tuple[int, list[dict]] | None" = None


def _under_root(point: str) -> bool:
    return point == CGROUP_ROOT or point.startswith(CGROUP_ROOT + "/")


def mounts_of_call(root: str = CGROUP_ROOT) -> list[dict]:
    """The mounts at and under ``root`` (procfs.mounts records), for the
    lookups of the cgroup hierarchies: the version, the v1 controllers'
    mount points, the warmer's own cgroup.  create makes them three to four
    times and nothing the call does changes them, so under the default root
    they come from one read of this process's mountinfo per runtime call,
    keeping records only for the mounts there (a busy host has hundreds of
    others: ~3 us each).  ``Runtime`` starts each call that looks them up
    with ``forget_mounts()``, so a long-lived library caller sees a later
    mount; a forked child (a stage, which may change its own table) reads
    again.  The list is shared: callers do not change it.  Another root is
    read afresh."""
    from pyrunc.linux import procfs  # not for state/kill/delete, which never look

    if root != CGROUP_ROOT:
        prefix = root.rstrip("/") + "/"
        return procfs.mounts(where=lambda point: point == root or point.startswith(prefix))
    global _call_table
    table = _call_table
    pid = os.getpid()
    if table is None or table[0] != pid:
        table = _call_table = (pid, procfs.mounts(where=_under_root))
    return table[1]


def forget_mounts() -> None:
    """The next ``mounts_of_call`` reads the mount table again."""
    global _call_table
    _call_table = None


def detect_version(root: str = CGROUP_ROOT, *, table: "list[dict] | None" = None) -> int:
    """2 when ``root`` itself is a cgroup2 mount (pure v2), else 1 (v1 or
    hybrid).  ``table``: a mount table read by the caller (else the call's,
    ``mounts_of_call``)."""
    fstype = None
    for m in mounts_of_call(root) if table is None else table:
        if m["mountpoint"] == root:
            fstype = m["fstype"]  # the last mount on root wins (over-mounts)
    return 2 if fstype == "cgroup2" else 1


class CgroupManager:
    """The container's cgroup(s).  Implemented by ``v1.V1Manager`` and ``v2.V2Manager``.

    ``path`` is the container's cgroup path relative to the hierarchy root as
    seen in this process's cgroup namespace (e.g. ``/pyrunc/abc``).
    """

    version: int = 0

    def __init__(self, path: str, container_id: str = "", *, rootless: bool = False):
        self.path = path
        self.container_id = container_id
        self.rootless = rootless

    # -- persistence --------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "version": self.version,
            "path": self.path,
            "id": self.container_id,
            "rootless": self.rootless,
            "paths": self.paths(),
        }

    # -- the interface (see v1.py / v2.py) -----------------------------------
    def create(self) -> None:
        raise NotImplementedError

    def apply(self, pid: int) -> None:
        raise NotImplementedError

    def open_fd(self) -> int:
        """An fd of the cgroup v2 directory a new process can be created in
        directly (clone3 with CLONE_INTO_CGROUP: cgroups/join.py,
        ``fork_into``), or -1 where only ``apply`` can put one in (cgroup
        v1, a systemd unit not started yet)."""
        return -1

    # How a manager writes a Resources record: (field, method, when), in the
    # order the files are written; ``when`` is "present" (not None),
    # "nonempty", or "initial" (present, or at create: the device rules'
    # defaults are written even when the config has none).
    SETTERS: tuple[tuple[str, str, str], ...] = ()

    def set(self, resources, *, initial: bool = False) -> None:
        """Write a ``config.model.Resources`` (validated at conversion; a
        LinuxResources dict is converted first), field by field as
        ``SETTERS`` says."""
        from pyrunc.cgroups.resources import as_record

        r = as_record(resources)
        for field, method, when in self.SETTERS:
            value = getattr(r, field)
            if value if when == "nonempty" else (value is not None or (when == "initial" and initial)):
                getattr(self, method)(value)

    def freeze(self) -> None:
        raise NotImplementedError

    def thaw(self) -> None:
        raise NotImplementedError

    def is_frozen(self) -> bool:
        raise NotImplementedError

    def pids(self) -> list[int]:
        raise NotImplementedError

    def kill_all(self, sig: int) -> None:
        raise NotImplementedError

    def destroy(self) -> None:
        raise NotImplementedError

    def exists(self) -> bool:
        raise NotImplementedError

    def stats(self) -> dict:
        raise NotImplementedError

    def paths(self) -> dict[str, str]:
        raise NotImplementedError

    def oom_kill_count(self) -> int:
        raise NotImplementedError

    def __repr__(self):
        return f"<{type(self).__name__} v{self.version} {self.path}>"


def features() -> dict:
    """The ``linux.cgroup`` object of ``pyrunc features`` (what this code supports)."""
    return {"v1": True, "v2": True, "systemd": True, "systemdUser": False, "rdma": True}


def resolve_path(cgroups_path: str | None, container_id: str) -> tuple[str, bool]:
    """Return (path, relative): ``path`` is clean; ``relative`` means "under the
    runtime's own cgroup" (the manager resolves it per hierarchy)."""
    if cgroups_path is None or cgroups_path == "":
        # runc's default without a cgroupsPath: the container id, relative to
        # the runtime's own cgroup.
        return container_id, True
    if ":" in cgroups_path and not cgroups_path.startswith("/"):
        # "slice:prefix:name" is the systemd driver's syntax (new_manager(systemd=True))
        raise CgroupError(
            f"linux.cgroupsPath: {cgroups_path!r} is systemd syntax "
            "(slice:prefix:name): use --systemd-cgroup, or a path for the "
            "cgroupfs driver"
        )
    relative = not cgroups_path.startswith("/")
    parts = [p for p in cgroups_path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise CgroupError(f"linux.cgroupsPath: {cgroups_path!r} must not contain '..'")
    clean = "/".join(parts)
    return (clean if relative else "/" + clean), relative


def new_manager(
    cgroups_path: str | None,
    container_id: str,
    *,
    rootless: bool = False,
    root: str = CGROUP_ROOT,
    systemd: bool = False,
    annotations: dict | None = None,
) -> CgroupManager:
    """The manager for a container whose spec says ``linux.cgroupsPath = cgroups_path``.

    Absolute paths are taken under the hierarchy root(s) (of this process's
    cgroup namespace); relative ones under the runtime's own cgroup (on v2 its
    parent, as runc does, since the own cgroup usually holds processes and
    could not enable controllers for a child); ``None`` means the container id,
    relative.

    ``systemd`` (``--systemd-cgroup``): the cgroup is a systemd transient
    unit named by ``slice:prefix:name`` (systemd.py); ``annotations`` may
    carry ``org.systemd.property.*`` unit properties for it.
    """
    if systemd:
        from pyrunc.cgroups.systemd import SystemdManager

        return SystemdManager.new(cgroups_path, container_id, annotations=annotations, rootless=rootless, root=root)
    path, relative = resolve_path(cgroups_path, container_id)
    if detect_version(root) == 2:
        from pyrunc.cgroups.v2 import V2Manager

        return V2Manager.resolve(path, relative, container_id, rootless=rootless, root=root)
    from pyrunc.cgroups.v1 import V1Manager

    return V1Manager.resolve(path, relative, container_id, rootless=rootless, root=root)


def load_manager(saved: dict) -> CgroupManager:
    """Rebuild a manager from ``CgroupManager.to_dict()``."""
    try:
        version = saved["version"]
    except (KeyError, TypeError):
        raise CgroupError("saved cgroup state: missing 'version'") from None
    if saved.get("driver") == "systemd":
        from pyrunc.cgroups.systemd import SystemdManager

        return SystemdManager.from_dict(saved)
    if version == 2:
        from pyrunc.cgroups.v2 import V2Manager

        return V2Manager.from_dict(saved)
    if version == 1:
        from pyrunc.cgroups.v1 import V1Manager

        return V1Manager.from_dict(saved)
    raise CgroupError(f"saved cgroup state: unknown version {version!r}")
