"""The internal form of a container's configuration.

config.json is validated and converted once, at ``create``, into these
records (``config/convert.py``); they are persisted in the state directory
and every later command uses them (the spec: edits to config.json after
create must not affect the container).  Conversion pre-computes what the
stages need (mount flags, namespace clone flags, capability numbers, rlimit
numbers, the compiled seccomp program, typed cgroup resources, scheduler,
personality and memory policy arguments) so that the stages only perform
syscalls, and nothing re-interprets the raw document.

The records are frozen: a later step that derives values (exec's process,
the LISTEN_FDS environment, a restored time namespace) makes a new record
with :meth:`Record.replace`.

These are small plain classes rather than ``dataclasses``: importing
``dataclasses`` costs ~20 ms (it pulls in ``inspect``), paid on every call
of the hot verbs that load a record.  They have no ``__slots__`` either:
slot descriptors made creating the 28 classes cost ~40% more at import
(every create, run and exec), and ``__setattr__`` keeps instances frozen all
the same.  The annotations are strings (``from __future__``), never
evaluated at import.
"""

from __future__ import annotations


class Record:
    """A frozen record with declared fields, round-tripping through plain dicts.

    ``FIELDS`` maps a field name to its default (a callable default makes a
    fresh value); ``NESTED`` names the Record type of a field (``[Type]``
    for a list of them, ``{Type}`` for a dict whose values are lists of
    them).  Fields left None are not written by :meth:`to_dict`.
    """

    __slots__ = ()
    FIELDS: dict = {}
    NESTED: dict = {}

    def __init__(self, **kw):
        init = object.__setattr__
        for name, default in self.FIELDS.items():
            value = kw.pop(name, None)
            if value is None:
                value = default() if callable(default) else default
            init(self, name, value)
        if kw:
            raise TypeError(f"{type(self).__name__}: unknown fields {sorted(kw)}")

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is frozen: make a new one with replace()")

    def __delattr__(self, name):
        raise AttributeError(f"{type(self).__name__} is frozen")

    def replace(self, **changes):
        """A copy with ``changes`` (the record itself is never changed)."""
        kw = {name: getattr(self, name) for name in self.FIELDS}
        kw.update(changes)
        return type(self)(**kw)

    def __eq__(self, other):
        return type(other) is type(self) and all(getattr(self, n) == getattr(other, n) for n in self.FIELDS)

    # no __hash__: a class that defines __eq__ alone is unhashable (__hash__ None)

    def to_dict(self):
        out = {}
        for name in self.FIELDS:
            v = getattr(self, name)
            if v is None:
                continue
            out[name] = _plain(v)
        return out

    @classmethod
    def from_dict(cls, d):
        if d is None:
            return None
        kw = {}
        for name in cls.FIELDS:
            if name not in d:
                continue
            v = d[name]
            nested = cls.NESTED.get(name)
            if nested is not None and v is not None:
                if isinstance(nested, list):
                    v = [nested[0].from_dict(x) for x in v]
                elif isinstance(nested, set):
                    (item,) = nested
                    v = {k: [item.from_dict(x) for x in xs] for k, xs in v.items()}
                elif isinstance(nested, dict):
                    (item,) = nested.values()
                    v = {k: item.from_dict(x) for k, x in v.items()}
                else:
                    v = nested.from_dict(v)
            kw[name] = v
        return cls(**kw)

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, ", ".join(f"{k}={getattr(self, k)!r}" for k in self.FIELDS))


def _plain(v):
    if isinstance(v, Record):
        return v.to_dict()
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


class Mount(Record):
    """One entry of the mount plan's input (config ``mounts[]``), parsed.

    flags: MS_* for mount(2); clear_flags: MS_* explicitly cleared (e.g.
    ``rw``); data: the filesystem-specific option string; propagation: list
    of MS_* propagation flags applied after mounting; rec_attr_set/clr:
    MOUNT_ATTR_* applied recursively with mount_setattr (``rro`` etc.);
    bind: a bind mount (``bind``/``rbind`` option or type "bind");
    destination: clean and absolute.
    """

    FIELDS = dict(
        destination="",
        type="",
        source="",
        options=list,
        flags=0,
        clear_flags=0,
        data="",
        propagation=list,
        rec_attr_set=0,
        rec_attr_clr=0,
        bind=False,
        recursive=False,
        tmpcopyup=False,
        idmap=None,
    )
    destination: str
    type: str
    source: str
    options: list[str]
    flags: int
    clear_flags: int
    data: str
    propagation: list[int]
    rec_attr_set: int
    rec_attr_clr: int
    bind: bool
    recursive: bool
    tmpcopyup: bool
    idmap: dict | None  # {"recursive": bool, "uid": [[c, h, n]], "gid": [...]}


class Hook(Record):
    FIELDS = dict(path="", args=list, env=list, timeout=None)
    path: str
    args: list[str]
    env: list[str]
    timeout: int | None


class User(Record):
    FIELDS = dict(uid=0, gid=0, umask=None, additional_gids=list)
    uid: int
    gid: int
    umask: int | None
    additional_gids: list[int]


class Rlimit(Record):
    FIELDS = dict(type="", resource=0, soft=0, hard=0)
    type: str
    resource: int
    soft: int
    hard: int


class Scheduler(Record):
    """process.scheduler as sched_setattr(2) takes it: policy and flags are
    the kernel's numbers."""

    FIELDS = dict(policy=0, flags=0, nice=0, priority=0, runtime=0, deadline=0, period=0)
    policy: int
    flags: int
    nice: int
    priority: int
    runtime: int
    deadline: int
    period: int


class CpuAffinity(Record):
    """process.execCPUAffinity: sorted CPU numbers (None: not set)."""

    FIELDS = dict(initial=None, final=None)
    initial: list[int] | None
    final: list[int] | None


class Process(Record):
    """The container process.  ``caps`` maps set name (bounding, effective,
    inheritable, permitted, ambient) to a list of capability numbers known to
    this kernel; unknown names were dropped with a warning at conversion.
    ``io_priority`` is the ioprio_set(2) value."""

    FIELDS = dict(
        terminal=False,
        console_size=None,
        cwd="/",
        env=list,
        args=list,
        command_line=None,
        user=User,
        rlimits=list,
        caps=None,
        no_new_privileges=False,
        apparmor_profile="",
        selinux_label="",
        oom_score_adj=None,
        scheduler=None,
        io_priority=None,
        exec_cpu_affinity=None,
    )
    NESTED = dict(user=User, rlimits=[Rlimit], scheduler=Scheduler, exec_cpu_affinity=CpuAffinity)
    terminal: bool
    console_size: list[int] | None  # [height, width]
    cwd: str
    env: list[str]
    args: list[str]
    command_line: str | None
    user: User
    rlimits: list[Rlimit]
    caps: dict[str, list[int]] | None
    no_new_privileges: bool
    apparmor_profile: str
    selinux_label: str
    oom_score_adj: int | None
    scheduler: Scheduler | None
    io_priority: int | None
    exec_cpu_affinity: CpuAffinity | None


class Namespace(Record):
    FIELDS = dict(type="", path="", flag=0)
    type: str
    path: str
    flag: int


class IDMap(Record):
    FIELDS = dict(container_id=0, host_id=0, size=0)
    container_id: int
    host_id: int
    size: int


class Device(Record):
    FIELDS = dict(path="", type="", major=0, minor=0, file_mode=None, uid=None, gid=None)
    path: str
    type: str
    major: int
    minor: int
    file_mode: int | None
    uid: int | None
    gid: int | None


class TimeOffset(Record):
    """One line of /proc/self/timens_offsets (clock: monotonic, boottime)."""

    FIELDS = dict(clock="", secs=0, nanosecs=0)
    clock: str
    secs: int
    nanosecs: int


class MemoryPolicy(Record):
    """linux.memoryPolicy as set_mempolicy(2) takes it: mode with its flags,
    the node mask as 64-bit words, maxnode."""

    FIELDS = dict(mode=0, nodemask=list, maxnode=0)
    mode: int
    nodemask: list[int]
    maxnode: int


class NetDevice(Record):
    """One linux.netDevices entry: the host interface and its name in the container."""

    FIELDS = dict(host_name="", name="")
    host_name: str
    name: str


class Seccomp(Record):
    """linux.seccomp compiled once, at create, by libseccomp: the BPF
    program (hex of its bytes, 8 per instruction), the SECCOMP_FILTER_FLAG_*
    bits of the config, whether a rule notifies, the agent's socket and
    metadata, the syscall names libseccomp did not know (left out), and
    which of the runtime's own calls after the load the program allows
    (``seccomp.after_load_allowed``; None: not known, computed when loaded).
    exec loads this program again; nothing compiles it a second time."""

    FIELDS = dict(
        bpf_hex="",
        flags=0,
        uses_notify=False,
        listener_path=None,
        listener_metadata="",
        skipped_syscalls=list,
        allows=None,
    )
    bpf_hex: str
    flags: int
    uses_notify: bool
    listener_path: str | None
    listener_metadata: str
    skipped_syscalls: list[str]
    allows: list[str] | None

    @property
    def bpf(self):
        return bytes.fromhex(self.bpf_hex)


# --- linux.resources ----------------------------------------------------------
# Field names are the spec's (LinuxResources), so that to_dict() is the
# LinuxResources object itself: `update` merges in that form and converts
# the result again (config/convert.py merge_resources).  Values are
# validated once, by cgroups/resources.py parse_resources; None: not set.


class Memory(Record):
    FIELDS = dict(
        limit=None,
        reservation=None,
        swap=None,
        kernel=None,
        kernelTCP=None,
        swappiness=None,
        disableOOMKiller=None,
        useHierarchy=None,
        checkBeforeUpdate=None,
    )
    limit: int | None
    reservation: int | None
    swap: int | None
    kernel: int | None
    kernelTCP: int | None
    swappiness: int | None
    disableOOMKiller: bool | None
    useHierarchy: bool | None
    checkBeforeUpdate: bool | None


class Cpu(Record):
    FIELDS = dict(
        shares=None,
        quota=None,
        burst=None,
        period=None,
        realtimeRuntime=None,
        realtimePeriod=None,
        cpus=None,
        mems=None,
        idle=None,
    )
    shares: int | None
    quota: int | None
    burst: int | None
    period: int | None
    realtimeRuntime: int | None
    realtimePeriod: int | None
    cpus: str | None
    mems: str | None
    idle: int | None


class Pids(Record):
    FIELDS = dict(limit=None)
    limit: int | None


class WeightDevice(Record):
    FIELDS = dict(major=0, minor=0, weight=None, leafWeight=None)
    major: int
    minor: int
    weight: int | None
    leafWeight: int | None


class ThrottleDevice(Record):
    FIELDS = dict(major=0, minor=0, rate=0)
    major: int
    minor: int
    rate: int


class BlockIO(Record):
    FIELDS = dict(
        weight=None,
        leafWeight=None,
        weightDevice=None,
        throttleReadBpsDevice=None,
        throttleWriteBpsDevice=None,
        throttleReadIOPSDevice=None,
        throttleWriteIOPSDevice=None,
    )
    NESTED = dict(
        weightDevice=[WeightDevice],
        throttleReadBpsDevice=[ThrottleDevice],
        throttleWriteBpsDevice=[ThrottleDevice],
        throttleReadIOPSDevice=[ThrottleDevice],
        throttleWriteIOPSDevice=[ThrottleDevice],
    )
    weight: int | None
    leafWeight: int | None
    weightDevice: list[WeightDevice] | None
    throttleReadBpsDevice: list[ThrottleDevice] | None
    throttleWriteBpsDevice: list[ThrottleDevice] | None
    throttleReadIOPSDevice: list[ThrottleDevice] | None
    throttleWriteIOPSDevice: list[ThrottleDevice] | None

    THROTTLE_KEYS = (
        "throttleReadBpsDevice",
        "throttleWriteBpsDevice",
        "throttleReadIOPSDevice",
        "throttleWriteIOPSDevice",
    )


class HugepageLimit(Record):
    FIELDS = dict(pageSize="", limit=0)
    pageSize: str
    limit: int


class NetPriority(Record):
    FIELDS = dict(name="", priority=0)
    name: str
    priority: int


class Network(Record):
    FIELDS = dict(classID=None, priorities=None)
    NESTED = dict(priorities=[NetPriority])
    classID: int | None
    priorities: list[NetPriority] | None


class RdmaLimit(Record):
    FIELDS = dict(hcaHandles=None, hcaObjects=None)
    hcaHandles: int | None
    hcaObjects: int | None


class DeviceRule(Record):
    """One linux.resources.devices entry (access, major, minor as given;
    cgroups/resources.py normalizes the list for the managers)."""

    FIELDS = dict(allow=False, type=None, major=None, minor=None, access=None)
    allow: bool
    type: str | None
    major: int | None
    minor: int | None
    access: str | None


class Resources(Record):
    """linux.resources, typed and validated.  ``devices`` None (absent) is
    not [] (an empty list): only a given list replaces the device rules on
    update."""

    FIELDS = dict(
        devices=None,
        memory=None,
        cpu=None,
        pids=None,
        blockIO=None,
        hugepageLimits=None,
        network=None,
        rdma=None,
        unified=None,
    )
    NESTED = dict(
        devices=[DeviceRule],
        memory=Memory,
        cpu=Cpu,
        pids=Pids,
        blockIO=BlockIO,
        hugepageLimits=[HugepageLimit],
        network=Network,
        rdma={"": RdmaLimit},
    )
    devices: list[DeviceRule] | None
    memory: Memory | None
    cpu: Cpu | None
    pids: Pids | None
    blockIO: BlockIO | None
    hugepageLimits: list[HugepageLimit] | None
    network: Network | None
    rdma: dict[str, RdmaLimit] | None
    unified: dict[str, str] | None


class Config(Record):
    """Everything the runtime keeps of config.json (see module doc).

    ``personality``: the persona number for personality(2), or None;
    ``hooks``: {hook name: [Hook]}."""

    # The persisted form's version: a state directory written by another
    # form is refused with one line rather than misread.
    FORMAT = 2

    FIELDS = dict(
        format=0,
        oci_version="",
        root_path="",
        root_readonly=False,
        mounts=list,
        process=None,
        hostname=None,
        domainname=None,
        hooks=dict,
        annotations=dict,
        namespaces=list,
        uid_mappings=list,
        gid_mappings=list,
        time_offsets=list,
        devices=list,
        cgroups_path=None,
        resources=None,
        rootfs_propagation="",
        masked_paths=list,
        readonly_paths=list,
        sysctl=dict,
        seccomp=None,
        personality=None,
        mount_label="",
        net_devices=list,
        intel_rdt=None,
        memory_policy=None,
    )
    NESTED = dict(
        mounts=[Mount],
        process=Process,
        namespaces=[Namespace],
        uid_mappings=[IDMap],
        gid_mappings=[IDMap],
        devices=[Device],
        hooks={Hook},
        time_offsets=[TimeOffset],
        resources=Resources,
        seccomp=Seccomp,
        memory_policy=MemoryPolicy,
        net_devices=[NetDevice],
    )
    format: int
    oci_version: str
    root_path: str
    root_readonly: bool
    mounts: list[Mount]
    process: Process | None
    hostname: str | None
    domainname: str | None
    hooks: dict[str, list[Hook]]
    annotations: dict[str, str]
    namespaces: list[Namespace]
    uid_mappings: list[IDMap]
    gid_mappings: list[IDMap]
    time_offsets: list[TimeOffset]
    devices: list[Device]
    cgroups_path: str | None
    resources: Resources | None
    rootfs_propagation: str
    masked_paths: list[str]
    readonly_paths: list[str]
    sysctl: dict[str, str]
    seccomp: Seccomp | None
    personality: int | None
    mount_label: str
    net_devices: list[NetDevice]
    intel_rdt: dict | None
    memory_policy: MemoryPolicy | None

    @classmethod
    def from_dict(cls, d):
        if d is not None and d.get("format") != cls.FORMAT:
            from ..errors import PyruncError

            raise PyruncError(
                "the container's state was written by another version of pyrunc "
                f"(config format {d.get('format', 1)}, this one reads {cls.FORMAT}); "
                "delete it and create it again"
            )
        return super().from_dict(d)

    def hook_list(self, name):
        return self.hooks.get(name, [])

    def namespace(self, ns_type):
        for ns in self.namespaces:
            if ns.type == ns_type:
                return ns
        return None

    def has_new_namespace(self, ns_type):
        ns = self.namespace(ns_type)
        return ns is not None and not ns.path
