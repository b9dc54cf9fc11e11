"""Convert a validated config.json document into the internal ``Config``.

Validation (schema + semantic MUSTs) happens before this, in
``pyrunc.config.validate``; conversion only raises ``ConfigError`` for what
it alone can judge (e.g. an unknown mount option).
"""

import os

from .. import capabilities, namespaces
from ..linux import syscalls as sc
from ..errors import ConfigError
from .model import Config, Device, IDMap, Mount, Namespace, Process, Rlimit, User
from .semantic import clean_cgroup_path, clean_path
from .semantic import warnings as semantic_warnings

RLIMITS = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3,
    "RLIMIT_CORE": 4, "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7,
    "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9, "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11,
    "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13, "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}

# option -> (set flags, clear flags)
MOUNT_FLAGS = {
    "ro": (sc.MS_RDONLY, 0), "rw": (0, sc.MS_RDONLY),
    "nosuid": (sc.MS_NOSUID, 0), "suid": (0, sc.MS_NOSUID),
    "nodev": (sc.MS_NODEV, 0), "dev": (0, sc.MS_NODEV),
    "noexec": (sc.MS_NOEXEC, 0), "exec": (0, sc.MS_NOEXEC),
    "sync": (sc.MS_SYNCHRONOUS, 0), "async": (0, sc.MS_SYNCHRONOUS),
    "dirsync": (sc.MS_DIRSYNC, 0), "remount": (sc.MS_REMOUNT, 0),
    "mand": (sc.MS_MANDLOCK, 0), "nomand": (0, sc.MS_MANDLOCK),
    "atime": (0, sc.MS_NOATIME), "noatime": (sc.MS_NOATIME, 0),
    "diratime": (0, sc.MS_NODIRATIME), "nodiratime": (sc.MS_NODIRATIME, 0),
    "relatime": (sc.MS_RELATIME, 0), "norelatime": (0, sc.MS_RELATIME),
    "strictatime": (sc.MS_STRICTATIME, 0), "nostrictatime": (0, sc.MS_STRICTATIME),
    "lazytime": (sc.MS_LAZYTIME, 0), "nolazytime": (0, sc.MS_LAZYTIME),
    "symfollow": (0, sc.MS_NOSYMFOLLOW), "nosymfollow": (sc.MS_NOSYMFOLLOW, 0),
    "iversion": (sc.MS_I_VERSION, 0), "noiversion": (0, sc.MS_I_VERSION),
    "silent": (sc.MS_SILENT, 0), "loud": (0, sc.MS_SILENT),
    "defaults": (0, 0),
}
PROPAGATION_FLAGS = {
    "private": sc.MS_PRIVATE, "rprivate": sc.MS_PRIVATE | sc.MS_REC,
    "shared": sc.MS_SHARED, "rshared": sc.MS_SHARED | sc.MS_REC,
    "slave": sc.MS_SLAVE, "rslave": sc.MS_SLAVE | sc.MS_REC,
    "unbindable": sc.MS_UNBINDABLE, "runbindable": sc.MS_UNBINDABLE | sc.MS_REC,
}
# recursive mount attributes (mount_setattr with AT_RECURSIVE): option -> (set, clear)
RECURSIVE_ATTRS = {
    "rro": (sc.MOUNT_ATTR_RDONLY, 0), "rrw": (0, sc.MOUNT_ATTR_RDONLY),
    "rnosuid": (sc.MOUNT_ATTR_NOSUID, 0), "rsuid": (0, sc.MOUNT_ATTR_NOSUID),
    "rnodev": (sc.MOUNT_ATTR_NODEV, 0), "rdev": (0, sc.MOUNT_ATTR_NODEV),
    "rnoexec": (sc.MOUNT_ATTR_NOEXEC, 0), "rexec": (0, sc.MOUNT_ATTR_NOEXEC),
    "rnodiratime": (sc.MOUNT_ATTR_NODIRATIME, 0), "rdiratime": (0, sc.MOUNT_ATTR_NODIRATIME),
    # The atime mode is one value of the MOUNT_ATTR__ATIME field: the kernel
    # only accepts a change that clears the whole field and sets one mode.
    # "Not noatime" / "not strictatime" mean the kernel default, relatime;
    # "not relatime" keeps the mount's mode (as norelatime does for mount(2)).
    "rrelatime": (sc.MOUNT_ATTR_RELATIME, sc.MOUNT_ATTR__ATIME),
    "rnorelatime": (0, 0),
    "rnoatime": (sc.MOUNT_ATTR_NOATIME, sc.MOUNT_ATTR__ATIME),
    "ratime": (sc.MOUNT_ATTR_RELATIME, sc.MOUNT_ATTR__ATIME),
    "rstrictatime": (sc.MOUNT_ATTR_STRICTATIME, sc.MOUNT_ATTR__ATIME),
    "rnostrictatime": (sc.MOUNT_ATTR_RELATIME, sc.MOUNT_ATTR__ATIME),
    "rnosymfollow": (sc.MOUNT_ATTR_NOSYMFOLLOW, 0), "rsymfollow": (0, sc.MOUNT_ATTR_NOSYMFOLLOW),
}
# options consumed by the runtime, never passed to the filesystem
RUNTIME_OPTIONS = {"bind", "rbind", "tmpcopyup", "idmap", "ridmap"}


def mount_options_supported():
    """Every mount option pyrunc understands (for ``features``)."""
    return sorted(set(MOUNT_FLAGS) | set(PROPAGATION_FLAGS) | set(RECURSIVE_ATTRS)
                  | RUNTIME_OPTIONS)


def convert_mount(m, index):
    """One ``mounts[]`` entry -> ``Mount``.  Options are split into mount(2)
    flags, propagation changes, recursive attributes (mount_setattr) and
    runtime-only options; whatever is left is the filesystem's data string.
    ``idmap`` becomes None or {"recursive": bool, "uid": [(c, h, n)],
    "gid": [...]} (empty lists: use the container's user namespace maps)."""
    where = f"mounts[{index}]"
    mount = Mount(destination=m["destination"], type=m.get("type") or "",
                  source=m.get("source") or "", options=list(m.get("options") or ()))
    data = []
    idmap_kind = None
    for opt in mount.options:
        if opt in MOUNT_FLAGS:
            setf, clrf = MOUNT_FLAGS[opt]
            mount.flags = (mount.flags | setf) & ~clrf
            mount.clear_flags = (mount.clear_flags | clrf) & ~setf
        elif opt in PROPAGATION_FLAGS:
            mount.propagation.append(PROPAGATION_FLAGS[opt])
        elif opt in RECURSIVE_ATTRS:
            s, c = RECURSIVE_ATTRS[opt]
            # a later option wins over an earlier one on the same attribute
            mount.rec_attr_set = (mount.rec_attr_set & ~c & ~s) | s
            mount.rec_attr_clr = (mount.rec_attr_clr & ~s) | c
        elif opt in ("bind", "rbind"):
            mount.bind = True
            mount.recursive = mount.recursive or opt == "rbind"
        elif opt == "tmpcopyup":
            mount.tmpcopyup = True
        elif opt in ("idmap", "ridmap"):
            idmap_kind = opt
        else:
            data.append(opt)
    if mount.type == "bind":
        mount.bind = True
    mount.data = ",".join(data)
    uid_maps, gid_maps = m.get("uidMappings") or (), m.get("gidMappings") or ()
    if uid_maps or gid_maps:
        idmap_kind = idmap_kind or "idmap"
    if idmap_kind:
        mount.idmap = {
            "recursive": idmap_kind == "ridmap",
            "uid": [(x["containerID"], x["hostID"], x["size"]) for x in uid_maps],
            "gid": [(x["containerID"], x["hostID"], x["size"]) for x in gid_maps],
        }
        if not mount.bind:
            raise ConfigError(f"config.json: {where}.options: {idmap_kind} is only supported on bind mounts")
    if mount.tmpcopyup and mount.type != "tmpfs":
        # runc ignores it there too; semantic.py warned
        mount.tmpcopyup = False
    if not mount.destination:
        raise ConfigError(f"config.json: {where}.destination: must not be empty")
    return mount


def convert_process(p, warn):
    user = p.get("user") or {}
    rlimits = []
    for i, r in enumerate(p.get("rlimits") or ()):
        if r["type"] not in RLIMITS:
            raise ConfigError(f'config.json: process.rlimits[{i}].type: "{r["type"]}" is not a known rlimit')
        rlimits.append(Rlimit(type=r["type"], resource=RLIMITS[r["type"]],
                              soft=r["soft"], hard=r["hard"]))
    size = p.get("consoleSize")
    return Process(
        terminal=bool(p.get("terminal", False)),
        console_size=[size.get("height", 0), size.get("width", 0)] if size else None,
        cwd=p.get("cwd") or "/", env=list(p.get("env") or ()), args=list(p.get("args") or ()),
        command_line=p.get("commandLine"),
        user=User(uid=user.get("uid", 0), gid=user.get("gid", 0), umask=user.get("umask"),
                  additional_gids=list(user.get("additionalGids") or ())),
        rlimits=rlimits, caps=capabilities.from_spec(p.get("capabilities"), warn),
        no_new_privileges=bool(p.get("noNewPrivileges", False)),
        apparmor_profile=p.get("apparmorProfile") or "",
        selinux_label=p.get("selinuxLabel") or "",
        oom_score_adj=p.get("oomScoreAdj"), scheduler=p.get("scheduler"),
        io_priority=p.get("ioPriority"), exec_cpu_affinity=p.get("execCPUAffinity"),
    )


def _devices(linux):
    """linux.devices as runc makes them (semantic.py warned about each
    change): paths resolved against "/", the first entry of a path wins,
    missing major/minor are 0, only the permission bits of fileMode."""
    out, seen = [], set()
    for d in linux.get("devices") or ():
        path = clean_path(d["path"])
        if path in seen:
            continue
        seen.add(path)
        mode = d.get("fileMode")
        out.append(Device(path=path, type=d["type"], major=d.get("major", 0), minor=d.get("minor", 0),
                          file_mode=None if mode is None else mode & 0o777,
                          uid=d.get("uid"), gid=d.get("gid")))
    return out


def _seccomp(sc):
    """linux.seccomp with arguments' missing values as 0 (runc compares
    Go's zero value; semantic.py warned)."""
    rules = (sc or {}).get("syscalls")
    if not rules or all("value" in a for r in rules for a in r.get("args") or ()):
        return sc
    return dict(sc, syscalls=[dict(r, args=[a if "value" in a else dict(a, value=0) for a in r["args"]])
                              if any("value" not in a for a in r.get("args") or ()) else r
                              for r in rules])


def _resources(res):
    """linux.resources as runc takes them: blockIO.weightDevice entries
    that set no weight dropped, device rules without "allow" deny, pids
    without a limit dropped (semantic.py warned)."""
    if not res:
        return res
    out = res
    blkio = res.get("blockIO") or {}
    entries = blkio.get("weightDevice")
    if entries and not all("weight" in e or "leafWeight" in e for e in entries):
        blkio = dict(blkio, weightDevice=[e for e in entries if "weight" in e or "leafWeight" in e])
        out = dict(out, blockIO=blkio)
    rules = res.get("devices")
    if rules and not all("allow" in r for r in rules):
        out = dict(out, devices=[r if "allow" in r else dict(r, allow=False) for r in rules])
    if isinstance(res.get("pids"), dict) and "limit" not in res["pids"]:
        out = {k: v for k, v in out.items() if k != "pids"}
    return out


def _cgroups_path(path):
    if path and ".." in path.split("/"):
        return clean_cgroup_path(path)
    return path


def convert(doc, bundle, warn=lambda msg: None):
    """``doc``: the validated config.json; ``bundle``: absolute bundle dir.

    The warnings of the semantic layer (what pyrunc accepts because runc
    does, docs/validation.md) go to *warn*, and the values they name are
    taken as runc takes them."""
    for line in semantic_warnings(doc):
        warn(line)
    linux = doc.get("linux") or {}
    root = doc.get("root") or {}
    root_path = root.get("path", "")
    if root_path and not os.path.isabs(root_path):
        root_path = os.path.join(bundle, root_path)
    personality = linux.get("personality")
    if personality and personality.get("flags"):
        # no flag is defined by the spec: ignored (warned above)
        personality = {k: v for k, v in personality.items() if k != "flags"}
    cfg = Config(
        oci_version=doc.get("ociVersion", ""),
        root_path=os.path.normpath(root_path) if root_path else "",
        root_readonly=bool(root.get("readonly", False)),
        mounts=[convert_mount(m, i) for i, m in enumerate(doc.get("mounts") or ())],
        process=convert_process(doc["process"], warn) if doc.get("process") else None,
        hostname=doc.get("hostname"), domainname=doc.get("domainname"),
        hooks={k: [dict(path=h["path"], args=h.get("args") or [h["path"]],
                        env=h.get("env") or [], timeout=h.get("timeout"))
                   for h in v] for k, v in (doc.get("hooks") or {}).items() if v},
        annotations=dict(doc.get("annotations") or {}),
        namespaces=[Namespace(type=ns["type"], path=ns.get("path") or "",
                              flag=namespaces.FLAGS[ns["type"]])
                    for ns in linux.get("namespaces") or ()],
        uid_mappings=[IDMap(container_id=m["containerID"], host_id=m["hostID"], size=m["size"])
                      for m in linux.get("uidMappings") or ()],
        gid_mappings=[IDMap(container_id=m["containerID"], host_id=m["hostID"], size=m["size"])
                      for m in linux.get("gidMappings") or ()],
        time_offsets=linux.get("timeOffsets"),
        devices=_devices(linux),
        cgroups_path=_cgroups_path(linux.get("cgroupsPath")), resources=_resources(linux.get("resources")),
        rootfs_propagation=linux.get("rootfsPropagation") or "",
        masked_paths=list(linux.get("maskedPaths") or ()),
        readonly_paths=list(linux.get("readonlyPaths") or ()),
        sysctl=dict(linux.get("sysctl") or {}), seccomp=_seccomp(linux.get("seccomp")),
        personality=personality, mount_label=linux.get("mountLabel") or "",
        net_devices=linux.get("netDevices"), intel_rdt=linux.get("intelRdt"),
        memory_policy=linux.get("memoryPolicy"),
    )
    return cfg
