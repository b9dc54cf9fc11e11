"""The declarative mount plan: config -> ordered ``Op`` list (pure; printed
with --debug), and its execution (``execute``, then ``finish`` after the
last mount)."""

from .. import lightos as os  # os's calls without importing os (lightos.py)
from ..config.semantic import PROC_MOUNT_ALLOWLIST, clean_path  # one rule each for validation and mounts
from ..errors import ConfigError
from ..linux import syscalls as sc
from .devices import CreateDevices, DEFAULT_DEVICES, SetupDev
from .ops import BindMount, CgroupMount, DevReadonly, FsMount, MaskPaths, Op, PrepareRoot, ReadonlyPaths, Remount


# --- planning --------------------------------------------------------------
ROOTFS_PROPAGATION = {
    "": sc.MS_SLAVE | sc.MS_REC,
    "slave": sc.MS_SLAVE,
    "rslave": sc.MS_SLAVE | sc.MS_REC,
    "private": sc.MS_PRIVATE,
    "rprivate": sc.MS_PRIVATE | sc.MS_REC,
    "shared": sc.MS_SHARED,
    "rshared": sc.MS_SHARED | sc.MS_REC,
    "unbindable": sc.MS_UNBINDABLE,
    "runbindable": sc.MS_UNBINDABLE | sc.MS_REC,
}


# Mount points that must be real directories of the image: a symlink there
# would make later steps (masking, device nodes, procfs writes) act on
# whatever it points to (CVE-2019-19921, CVE-2023-27561, CVE-2026-41579).
NO_SYMLINK_DESTINATIONS = frozenset(("/proc", "/sys", "/dev"))


def check_plan(cfg):
    """The config's rules the mount plan enforces (ConfigError), without
    anything of the host: what create refuses, for ``pyrunc validate``."""
    plan(cfg, in_userns=cfg.namespace("user") is not None)


def plan(cfg, *, in_userns, host_devices=None):
    """The ordered mount plan for ``cfg`` (a config.model.Config).

    ``host_devices``: bind device nodes from the host instead of mknod
    (default: ``in_userns``; also true when the runtime itself is in a user
    namespace, where mknod is refused)."""
    if host_devices is None:
        host_devices = in_userns
    ops: list[Op] = []
    try:
        prop = ROOTFS_PROPAGATION[cfg.rootfs_propagation]
    except KeyError:
        raise ConfigError(
            f"config.json: linux.rootfsPropagation: {cfg.rootfs_propagation!r} is not a propagation mode"
        ) from None
    # Applied to "/" of the new mount namespace, as runc does (default rslave:
    # host mounts still propagate in, nothing propagates back out).
    ops.append(PrepareRoot(prop))
    bind_dev = dev_ro = False
    # With a user namespace the bind sources are cloned by host root
    # (SourceOpener); not when joining a mount namespace, where the sources
    # are that namespace's paths and stay the init's to resolve.
    # Not for an unprivileged runtime: the helper's setns into the container's
    # mount namespace needs CAP_SYS_CHROOT where it runs, and with the
    # caller's uid it could open nothing the container's root cannot.
    early_binds = in_userns and os.geteuid() == 0 and not any(ns.type == "mount" and ns.path for ns in cfg.namespaces)
    for i, m in enumerate(cfg.mounts):
        # conversion made it clean and absolute; a Mount made elsewhere gets
        # a clean copy (records are frozen)
        dest = clean_path(m.destination if m.destination.startswith("/") else "/" + m.destination)
        if dest != m.destination:
            m = m.replace(destination=dest)
        if dest == "/proc" and m.type != "proc" and not m.bind:
            raise ConfigError(f"config.json: mounts[{i}]: /proc cannot be mounted because it is not of type proc")
        if dest.startswith("/proc/") and dest not in PROC_MOUNT_ALLOWLIST:
            raise ConfigError(f"config.json: mounts[{i}]: {dest} cannot be mounted because it is inside /proc")
        if m.flags & sc.MS_REMOUNT:
            ops.append(Remount(m))
        elif m.bind:
            idmap = None
            if m.idmap:
                uid, gid = m.idmap["uid"], m.idmap["gid"]
                if not uid and not gid:
                    if not (in_userns and cfg.uid_mappings and cfg.gid_mappings):
                        raise ConfigError(
                            f"config.json: mounts[{i}].options: idmap needs uidMappings "
                            "and gidMappings or the container's user namespace"
                        )
                    uid = [(x.container_id, x.host_id, x.size) for x in cfg.uid_mappings]
                    gid = [(x.container_id, x.host_id, x.size) for x in cfg.gid_mappings]
                idmap = (m.idmap["recursive"], uid, gid)
            ops.append(BindMount(m, idmap, early=early_binds))
            if dest == "/dev":
                bind_dev = True
        elif m.type == "cgroup":
            ops.append(CgroupMount(m))
        else:
            defer_ro = dest == "/dev" and bool(m.flags & sc.MS_RDONLY)
            op = FsMount(m, no_symlinks=dest in NO_SYMLINK_DESTINATIONS, defer_ro=defer_ro)
            op.sysfs_fallback = m.type == "sysfs" and host_devices and bool(m.flags & sc.MS_RDONLY)
            ops.append(op)
            if defer_ro:
                dev_ro = True
    listed = {clean_path(d.path) for d in cfg.devices or ()}
    if not bind_dev:
        ops.append(
            SetupDev(bind_from_host=host_devices, skip=[n for n, _, _ in DEFAULT_DEVICES if "/dev/" + n in listed])
        )
    if cfg.devices:
        ops.append(CreateDevices(cfg.devices, bind_from_host=host_devices, skip_ptmx=not bind_dev))
    if cfg.masked_paths:
        ops.append(MaskPaths(cfg.masked_paths))
    if cfg.readonly_paths:
        ops.append(ReadonlyPaths(cfg.readonly_paths))
    if dev_ro:
        ops.append(DevReadonly())
    return ops


def execute(ops, ctx, debug=None):
    """Run the plan, except the ``late`` steps (see ``finish``)."""
    for op in ops:
        if getattr(op, "late", False):
            continue
        if debug:
            debug(op.describe())
        op.run(ctx)


def finish(ops, ctx, debug=None):
    """The ``late`` steps: what must wait until the init set up the console
    (a read-only /dev still gets its /dev/console)."""
    for op in ops:
        if getattr(op, "late", False):
            if debug:
                debug(op.describe())
            op.run(ctx)
