"""Convert a validated config.json document into the internal ``Config``.

Validation (schema + semantic MUSTs) happens before this, in
``pyrunc.config.validate``; conversion raises ``ConfigError`` (or
``CgroupError`` for linux.resources) for what it alone can judge: an
unknown mount option, a seccomp profile libseccomp refuses, an invalid
resource value.  :func:`build` is the whole judgement of a bundle's config
that ``create`` (and ``restore``) pass and ``pyrunc validate`` reports:
schema, semantic rules, conversion, and the model's own rules.

Everything the stages use is converted here, once: the seccomp program is
compiled, resources are typed and checked, scheduler, personality, memory
policy, time offsets and network devices are syscall-ready records.
"""

from .. import lightos as os  # os's calls without importing os (lightos.py)

from .. import capabilities, namespaces
from ..linux import syscalls as sc
from ..errors import ConfigError
from .model import (
    Config,
    CpuAffinity,
    Device,
    Hook,
    IDMap,
    MemoryPolicy,
    Mount,
    Namespace,
    Process,
    Rlimit,
    Scheduler,
    TimeOffset,
    User,
)
from .semantic import clean_cgroup_path, clean_path
from .semantic import warnings as semantic_warnings

RLIMITS = {
    "RLIMIT_CPU": 0,
    "RLIMIT_FSIZE": 1,
    "RLIMIT_DATA": 2,
    "RLIMIT_STACK": 3,
    "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5,
    "RLIMIT_NPROC": 6,
    "RLIMIT_NOFILE": 7,
    "RLIMIT_MEMLOCK": 8,
    "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10,
    "RLIMIT_SIGPENDING": 11,
    "RLIMIT_MSGQUEUE": 12,
    "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14,
    "RLIMIT_RTTIME": 15,
}

# option -> (set flags, clear flags)
MOUNT_FLAGS = {
    "ro": (sc.MS_RDONLY, 0),
    "rw": (0, sc.MS_RDONLY),
    "nosuid": (sc.MS_NOSUID, 0),
    "suid": (0, sc.MS_NOSUID),
    "nodev": (sc.MS_NODEV, 0),
    "dev": (0, sc.MS_NODEV),
    "noexec": (sc.MS_NOEXEC, 0),
    "exec": (0, sc.MS_NOEXEC),
    "sync": (sc.MS_SYNCHRONOUS, 0),
    "async": (0, sc.MS_SYNCHRONOUS),
    "dirsync": (sc.MS_DIRSYNC, 0),
    "remount": (sc.MS_REMOUNT, 0),
    "mand": (sc.MS_MANDLOCK, 0),
    "nomand": (0, sc.MS_MANDLOCK),
    "atime": (0, sc.MS_NOATIME),
    "noatime": (sc.MS_NOATIME, 0),
    "diratime": (0, sc.MS_NODIRATIME),
    "nodiratime": (sc.MS_NODIRATIME, 0),
    "relatime": (sc.MS_RELATIME, 0),
    "norelatime": (0, sc.MS_RELATIME),
    "strictatime": (sc.MS_STRICTATIME, 0),
    "nostrictatime": (0, sc.MS_STRICTATIME),
    "lazytime": (sc.MS_LAZYTIME, 0),
    "nolazytime": (0, sc.MS_LAZYTIME),
    "symfollow": (0, sc.MS_NOSYMFOLLOW),
    "nosymfollow": (sc.MS_NOSYMFOLLOW, 0),
    "iversion": (sc.MS_I_VERSION, 0),
    "noiversion": (0, sc.MS_I_VERSION),
    "silent": (sc.MS_SILENT, 0),
    "loud": (0, sc.MS_SILENT),
    "defaults": (0, 0),
}
PROPAGATION_FLAGS = {
    "private": sc.MS_PRIVATE,
    "rprivate": sc.MS_PRIVATE | sc.MS_REC,
    "shared": sc.MS_SHARED,
    "rshared": sc.MS_SHARED | sc.MS_REC,
    "slave": sc.MS_SLAVE,
    "rslave": sc.MS_SLAVE | sc.MS_REC,
    "unbindable": sc.MS_UNBINDABLE,
    "runbindable": sc.MS_UNBINDABLE | sc.MS_REC,
}
# recursive mount attributes (mount_setattr with AT_RECURSIVE): option -> (set, clear)
RECURSIVE_ATTRS = {
    "rro": (sc.MOUNT_ATTR_RDONLY, 0),
    "rrw": (0, sc.MOUNT_ATTR_RDONLY),
    "rnosuid": (sc.MOUNT_ATTR_NOSUID, 0),
    "rsuid": (0, sc.MOUNT_ATTR_NOSUID),
    "rnodev": (sc.MOUNT_ATTR_NODEV, 0),
    "rdev": (0, sc.MOUNT_ATTR_NODEV),
    "rnoexec": (sc.MOUNT_ATTR_NOEXEC, 0),
    "rexec": (0, sc.MOUNT_ATTR_NOEXEC),
    "rnodiratime": (sc.MOUNT_ATTR_NODIRATIME, 0),
    "rdiratime": (0, sc.MOUNT_ATTR_NODIRATIME),
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
    "rnosymfollow": (sc.MOUNT_ATTR_NOSYMFOLLOW, 0),
    "rsymfollow": (0, sc.MOUNT_ATTR_NOSYMFOLLOW),
}
# options consumed by the runtime, never passed to the filesystem
RUNTIME_OPTIONS = {"bind", "rbind", "tmpcopyup", "idmap", "ridmap"}


def mount_options_supported():
    """Every mount option pyrunc understands (for ``features``)."""
    return sorted(set(MOUNT_FLAGS) | set(PROPAGATION_FLAGS) | set(RECURSIVE_ATTRS) | RUNTIME_OPTIONS)


def convert_mount(m, index):
    """One ``mounts[]`` entry -> ``Mount``.  Options are split into mount(2)
    flags, propagation changes, recursive attributes (mount_setattr) and
    runtime-only options; whatever is left is the filesystem's data string.
    ``idmap`` becomes None or {"recursive": bool, "uid": [[c, h, n]],
    "gid": [...]} (empty lists: use the container's user namespace maps).
    The destination is made clean and absolute."""
    where = f"mounts[{index}]"
    if not m["destination"]:
        raise ConfigError(f"config.json: {where}.destination: must not be empty")
    mtype = m.get("type") or ""
    options = list(m.get("options") or ())
    flags = clear_flags = rec_set = rec_clr = 0
    propagation, data = [], []
    bind = mtype == "bind"
    recursive = tmpcopyup = False
    idmap_kind = None
    for opt in options:
        if opt in MOUNT_FLAGS:
            setf, clrf = MOUNT_FLAGS[opt]
            flags = (flags | setf) & ~clrf
            clear_flags = (clear_flags | clrf) & ~setf
        elif opt in PROPAGATION_FLAGS:
            propagation.append(PROPAGATION_FLAGS[opt])
        elif opt in RECURSIVE_ATTRS:
            s, c = RECURSIVE_ATTRS[opt]
            # a later option wins over an earlier one on the same attribute
            rec_set = (rec_set & ~c & ~s) | s
            rec_clr = (rec_clr & ~s) | c
        elif opt in ("bind", "rbind"):
            bind = True
            recursive = recursive or opt == "rbind"
        elif opt == "tmpcopyup":
            tmpcopyup = True
        elif opt in ("idmap", "ridmap"):
            idmap_kind = opt
        else:
            data.append(opt)
    idmap = None
    uid_maps, gid_maps = m.get("uidMappings") or (), m.get("gidMappings") or ()
    if uid_maps or gid_maps:
        idmap_kind = idmap_kind or "idmap"
    if idmap_kind:
        idmap = {
            "recursive": idmap_kind == "ridmap",
            "uid": [[x["containerID"], x["hostID"], x["size"]] for x in uid_maps],
            "gid": [[x["containerID"], x["hostID"], x["size"]] for x in gid_maps],
        }
        if not bind:
            raise ConfigError(f"config.json: {where}.options: {idmap_kind} is only supported on bind mounts")
    # tmpcopyup elsewhere than on a tmpfs: runc ignores it too; semantic.py warned
    dest = m["destination"]
    return Mount(
        destination=clean_path(dest if dest.startswith("/") else "/" + dest),
        type=mtype,
        source=m.get("source") or "",
        options=options,
        flags=flags,
        clear_flags=clear_flags,
        data=",".join(data),
        propagation=propagation,
        rec_attr_set=rec_set,
        rec_attr_clr=rec_clr,
        bind=bind,
        recursive=recursive,
        tmpcopyup=tmpcopyup and mtype == "tmpfs",
        idmap=idmap,
    )


def convert_process(p, warn):
    user = p.get("user") or {}
    rlimits = []
    for i, r in enumerate(p.get("rlimits") or ()):
        if r["type"] not in RLIMITS:
            raise ConfigError(f'config.json: process.rlimits[{i}].type: "{r["type"]}" is not a known rlimit')
        rlimits.append(Rlimit(type=r["type"], resource=RLIMITS[r["type"]], soft=r["soft"], hard=r["hard"]))
    size = p.get("consoleSize")
    return Process(
        terminal=bool(p.get("terminal", False)),
        console_size=[size.get("height", 0), size.get("width", 0)] if size else None,
        cwd=p.get("cwd") or "/",
        env=list(p.get("env") or ()),
        args=list(p.get("args") or ()),
        command_line=p.get("commandLine"),
        user=User(
            uid=user.get("uid", 0),
            gid=user.get("gid", 0),
            umask=user.get("umask"),
            additional_gids=list(user.get("additionalGids") or ()),
        ),
        rlimits=rlimits,
        caps=capabilities.from_spec(p.get("capabilities"), warn),
        no_new_privileges=bool(p.get("noNewPrivileges", False)),
        apparmor_profile=p.get("apparmorProfile") or "",
        selinux_label=p.get("selinuxLabel") or "",
        oom_score_adj=p.get("oomScoreAdj"),
        scheduler=_scheduler(p.get("scheduler")),
        io_priority=_io_priority(p.get("ioPriority")),
        exec_cpu_affinity=_cpu_affinity(p.get("execCPUAffinity")),
    )


def _scheduler(s):
    from ..process import SCHED_FLAGS, SCHED_POLICIES

    if not s:
        return None
    flags = 0
    for f in s.get("flags") or ():
        flags |= SCHED_FLAGS[f]
    return Scheduler(
        policy=SCHED_POLICIES[s["policy"]],
        flags=flags,
        nice=s.get("nice", 0),
        priority=s.get("priority", 0),
        runtime=s.get("runtime", 0),
        deadline=s.get("deadline", 0),
        period=s.get("period", 0),
    )


def _io_priority(io):
    from ..process import IOPRIO_CLASS_SHIFT, IOPRIO_CLASSES

    if not io:
        return None
    return (IOPRIO_CLASSES[io["class"]] << IOPRIO_CLASS_SHIFT) | io.get("priority", 0)


def _cpu_list(text, field):
    from ..process import parse_cpu_list

    return sorted(parse_cpu_list(text, field)) if text else None


def _cpu_affinity(aff):
    if not aff:
        return None
    return CpuAffinity(
        initial=_cpu_list(aff.get("initial"), "process.execCPUAffinity.initial"),
        final=_cpu_list(aff.get("final"), "process.execCPUAffinity.final"),
    )


def _personality(personality):
    """The persona number; flags (none defined by the spec) were warned about
    and are ignored."""
    from ..process import PERSONALITY_DOMAINS

    if not personality:
        return None
    return PERSONALITY_DOMAINS[personality.get("domain", "LINUX")]


def _memory_policy(policy):
    from ..process import MPOL_FLAGS, MPOL_MODES, parse_cpu_list

    if not policy:
        return None
    mode = MPOL_MODES[policy["mode"]]
    for f in policy.get("flags") or ():
        mode |= MPOL_FLAGS[f]
    nodes = parse_cpu_list(policy.get("nodes") or "", "linux.memoryPolicy.nodes")
    words = [0] * ((max(nodes) // 64 + 1) if nodes else 0)
    for n in nodes:
        words[n // 64] |= 1 << (n % 64)
    # maxnode counts bits plus one (the kernel drops the last one)
    return MemoryPolicy(mode=mode, nodemask=words, maxnode=len(words) * 64 + 1 if words else 0)


def _time_offsets(offsets):
    """linux.timeOffsets as the lines of /proc/self/timens_offsets."""
    out = []
    for clock in ("monotonic", "boottime"):
        off = (offsets or {}).get(clock)
        if off:
            out.append(TimeOffset(clock=clock, secs=off.get("secs", 0), nanosecs=off.get("nanosecs", 0)))
    return out


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
        out.append(
            Device(
                path=path,
                type=d["type"],
                major=d.get("major", 0),
                minor=d.get("minor", 0),
                file_mode=None if mode is None else mode & 0o777,
                uid=d.get("uid"),
                gid=d.get("gid"),
            )
        )
    return out


def _seccomp(profile):
    """linux.seccomp compiled (seccomp.compile_filter), with arguments'
    missing values as 0 (runc compares Go's zero value; semantic.py warned)."""
    if profile is None:
        return None
    rules = profile.get("syscalls") if isinstance(profile, dict) else None
    if rules and not all("value" in a for r in rules for a in r.get("args") or ()):
        profile = dict(
            profile,
            syscalls=[
                dict(r, args=[a if "value" in a else dict(a, value=0) for a in r["args"]])
                if any("value" not in a for a in r.get("args") or ())
                else r
                for r in rules
            ],
        )
    from ..seccomp import compile_cached

    return compile_cached(profile)


def _resources(res):
    """linux.resources typed and checked (cgroups/resources.py), taken as
    runc takes them: blockIO.weightDevice entries that set no weight
    dropped, device rules without "allow" deny, pids without a limit
    dropped (semantic.py warned)."""
    from ..cgroups.resources import parse_resources

    return parse_resources(_resources_as_runc(res))


def _resources_as_runc(res):
    if not res or not isinstance(res, dict):
        return res
    out = res
    blkio = res.get("blockIO") or {}
    entries = blkio.get("weightDevice") if isinstance(blkio, dict) else None
    if entries and not all(not isinstance(e, dict) or "weight" in e or "leafWeight" in e for e in entries):
        blkio = dict(
            blkio, weightDevice=[e for e in entries if not isinstance(e, dict) or "weight" in e or "leafWeight" in e]
        )
        out = dict(out, blockIO=blkio)
    rules = res.get("devices")
    if isinstance(rules, list) and not all(not isinstance(r, dict) or "allow" in r for r in rules):
        out = dict(out, devices=[r if not isinstance(r, dict) or "allow" in r else dict(r, allow=False) for r in rules])
    if isinstance(res.get("pids"), dict) and "limit" not in res["pids"]:
        out = {k: v for k, v in out.items() if k != "pids"}
    return out


def merge_resources(current, update):
    """``update``: the LinuxResources of an ``update`` call; ``current``:
    the container's ``Resources`` (or None).  Returns (the update as a
    Resources record, to write to the cgroup; the merged Resources, to
    persist): objects are merged member by member, everything else
    replaced.  Both pass the converter's checks."""
    from ..cgroups.resources import parse_resources

    delta = parse_resources(_resources_as_runc(update) or {})
    merged = dict(current.to_dict()) if current is not None else {}
    for k, v in (update or {}).items():
        if isinstance(v, dict) and isinstance(merged.get(k), dict):
            merged[k] = {**merged[k], **v}
        else:
            merged[k] = v
    return delta, parse_resources(_resources_as_runc(merged))


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
    net_devices = linux.get("netDevices")
    if net_devices is not None:  # the module only when the field is there (start-up cost)
        from ..netdev import convert as convert_net_devices

        net_devices = convert_net_devices(net_devices)
    return Config(
        format=Config.FORMAT,
        oci_version=doc.get("ociVersion", ""),
        root_path=os.path.normpath(root_path) if root_path else "",
        root_readonly=bool(root.get("readonly", False)),
        mounts=[convert_mount(m, i) for i, m in enumerate(doc.get("mounts") or ())],
        process=convert_process(doc["process"], warn) if doc.get("process") else None,
        hostname=doc.get("hostname"),
        domainname=doc.get("domainname"),
        hooks={
            k: [
                Hook(
                    path=h["path"], args=h.get("args") or [h["path"]], env=h.get("env") or [], timeout=h.get("timeout")
                )
                for h in v
            ]
            for k, v in (doc.get("hooks") or {}).items()
            if v
        },
        annotations=dict(doc.get("annotations") or {}),
        namespaces=[
            Namespace(type=ns["type"], path=ns.get("path") or "", flag=namespaces.FLAGS[ns["type"]])
            for ns in linux.get("namespaces") or ()
        ],
        uid_mappings=[
            IDMap(container_id=m["containerID"], host_id=m["hostID"], size=m["size"])
            for m in linux.get("uidMappings") or ()
        ],
        gid_mappings=[
            IDMap(container_id=m["containerID"], host_id=m["hostID"], size=m["size"])
            for m in linux.get("gidMappings") or ()
        ],
        time_offsets=_time_offsets(linux.get("timeOffsets")),
        devices=_devices(linux),
        cgroups_path=_cgroups_path(linux.get("cgroupsPath")),
        resources=_resources(linux.get("resources")),
        rootfs_propagation=linux.get("rootfsPropagation") or "",
        masked_paths=list(linux.get("maskedPaths") or ()),
        readonly_paths=list(linux.get("readonlyPaths") or ()),
        sysctl=dict(linux.get("sysctl") or {}),
        seccomp=_seccomp(linux.get("seccomp")),
        personality=_personality(linux.get("personality")),
        mount_label=linux.get("mountLabel") or "",
        net_devices=net_devices or [],
        intel_rdt=linux.get("intelRdt"),
        memory_policy=_memory_policy(linux.get("memoryPolicy")),
    )


# --- the whole judgement of a config ----------------------------------------------


def build(doc, bundle, *, warn=lambda msg: None, systemd_cgroup=False):
    """The ``Config`` of the decoded config.json ``doc`` of ``bundle`` (an
    absolute directory), or the first problem as an exception: schema,
    semantic rules, conversion, then :func:`check_model`.  ``create`` and
    ``restore`` run exactly this, and ``pyrunc validate`` reports its
    verdict: the two cannot disagree about a config.

    ``systemd_cgroup``: linux.cgroupsPath is systemd's slice:prefix:name,
    which the systemd manager checks itself (the validator knows only
    cgroupfs paths)."""
    from .validate import validate_config

    validate_config(_without_cgroups_path(doc) if systemd_cgroup else doc)
    cfg = convert(doc, bundle, warn=warn)
    check_model(cfg, bundle)
    return cfg


def _without_cgroups_path(doc):
    """``doc`` without linux.cgroupsPath (a shallow copy; doc is unchanged)."""
    linux = doc.get("linux") if isinstance(doc, dict) else None
    if not isinstance(linux, dict) or "cgroupsPath" not in linux:
        return doc
    return dict(doc, linux={k: v for k, v in linux.items() if k != "cgroupsPath"})


def check_model(cfg, bundle):
    """The rules of a converted config that no schema states: the rootfs,
    the process, namespaces the runtime needs, the mount plan, user ids a
    user namespace must map.  Raise ConfigError."""
    if cfg.process is None:
        raise ConfigError("config.json: process: required to create a container")
    if not cfg.process.args:
        raise ConfigError("config.json: process.args: must not be empty")
    if not cfg.root_path or not os.path.isdir(cfg.root_path):
        raise ConfigError(f"config.json: root.path: rootfs ({cfg.root_path}) does not exist")
    _check_root_not_symlink(cfg.root_path, bundle)
    if cfg.namespace("mount") is None:
        # runc runs such a config with its mounts (rootfs bind, /proc, /dev)
        # made in its own mount namespace, where they stay after delete: a
        # container that leaves mounts on the host is refused instead.
        raise ConfigError(
            "config.json: linux.namespaces: no mount namespace: the container's mounts "
            "would be made in the runtime's own mount namespace and outlive the "
            'container; add {"type": "mount"}'
        )
    if cfg.uid_mappings and cfg.namespace("user") is None:
        raise ConfigError("config.json: linux.uidMappings: requires a user namespace")
    userns = cfg.namespace("user")
    if userns is not None and not userns.path:
        # the kernel's answer would be a bare EINVAL from setresuid at start
        u = cfg.process.user
        for kind, cid, maps in (("uid", u.uid, cfg.uid_mappings), ("gid", u.gid, cfg.gid_mappings)):
            if maps and not any(m.container_id <= cid < m.container_id + m.size for m in maps):
                raise ConfigError(
                    f"cannot set {kind} to unmapped user in user namespace: "
                    f"process.user.{kind} {cid} is not in linux.{kind}Mappings"
                )
    from ..rootfs import check_plan

    check_plan(cfg)


def _check_root_not_symlink(root_path, bundle):
    """root.path may not be or go through a symlink (below the bundle when
    it is relative), as runc refuses: the runtime would build the container
    on whatever the link names, possibly the host's / itself."""
    if os.path.isabs(os.path.relpath(root_path, bundle)) or os.path.relpath(root_path, bundle).startswith(".."):
        expected = root_path  # absolute root.path outside the bundle: all of it
    else:
        expected = os.path.join(os.path.realpath(bundle), os.path.relpath(root_path, bundle))
    if os.path.realpath(root_path) != os.path.normpath(expected):
        raise ConfigError(
            f"config.json: root.path: {root_path} is a symlink or goes through one "
            f"(to {os.path.realpath(root_path)}); give the real path"
        )
