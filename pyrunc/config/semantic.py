"""Rules of runtime-spec v1.3.0 (Linux) that a JSON schema cannot express.

The schema layer (pyrunc.config.schema) checks shapes: types, enums,
ranges, required keys.  This module checks the relations and value rules
that the spec states in prose: duplicates, absolute paths, fields that only
make sense together, namespace requirements of sysctls and mappings, and the
value ranges the kernel would refuse anyway (so that the user gets a named
field instead of an EINVAL from deep inside `create`).

Every check tolerates values of the wrong type (it skips them): the schema
has already reported those, and `check_bundle` runs both layers to list
every problem.

Each problem is one line: ``config.json: <path>: <value> <rule>``.
"""

from __future__ import annotations

from pyrunc.config.schema import problem_line, render_value
from pyrunc.errors import ConfigError

__all__ = [
    "check",
    "problems",
    "warnings",
    "parse_semver",
    "clean_path",
    "clean_cgroup_path",
    "SUPPORTED_MAJOR",
    "SPEC_VERSION",
    "ID_MAX",
]

LABEL = "config.json"
SPEC_VERSION = "1.3.0"
# SemVer: a runtime for 1.3.0 also runs configs written for any 1.x: minor
# versions only add optional fields and unknown fields MUST be ignored.
SUPPORTED_MAJOR = 1

RLIMITS = frozenset(
    (
        "RLIMIT_AS",
        "RLIMIT_CORE",
        "RLIMIT_CPU",
        "RLIMIT_DATA",
        "RLIMIT_FSIZE",
        "RLIMIT_LOCKS",
        "RLIMIT_MEMLOCK",
        "RLIMIT_MSGQUEUE",
        "RLIMIT_NICE",
        "RLIMIT_NOFILE",
        "RLIMIT_NPROC",
        "RLIMIT_RSS",
        "RLIMIT_RTPRIO",
        "RLIMIT_RTTIME",
        "RLIMIT_SIGPENDING",
        "RLIMIT_STACK",
    )
)

# sysctls that live in the IPC namespace (ipc_namespace, mq_namespace)
IPC_SYSCTLS = frozenset(
    (
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    )
)
ERRNO_ACTIONS = frozenset(("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"))
TIME_CLOCKS = ("boottime", "monotonic")
BIND_OPTIONS = frozenset(("bind", "rbind"))
IDMAP_OPTIONS = frozenset(("idmap", "ridmap"))
NO_NODE_POLICIES = frozenset(("MPOL_DEFAULT", "MPOL_LOCAL"))
NODE_POLICIES = frozenset(("MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_WEIGHTED_INTERLEAVE", "MPOL_PREFERRED_MANY"))
REALTIME_POLICIES = frozenset(("SCHED_FIFO", "SCHED_RR"))
UINT32_END = 1 << 32
# Largest uid/gid a process may be given.  The kernel's uid_t is 32 bits, but
# (uid_t)-1 = 4294967295 means "leave unchanged" to setresuid/setresgid (the
# process would keep the runtime's root), and runc refuses everything above
# INT32_MAX ("uids and gids must be in range 0-2147483647"): so does pyrunc.
ID_MAX = 2147483647
# Destinations under /proc that a mount may cover (the files lxcfs emulates).
# What may be mounted below /proc (lxcfs and friends), as runc allows: the one
# list, here so that `validate` does not import the mount code; rootfs/plan.py
# refuses the others at create with it.
PROC_MOUNT_ALLOWLIST = frozenset(
    (
        "/proc/cpuinfo",
        "/proc/diskstats",
        "/proc/meminfo",
        "/proc/stat",
        "/proc/swaps",
        "/proc/uptime",
        "/proc/loadavg",
        "/proc/slabinfo",
        "/proc/sys/kernel/ns_last_pid",
        "/proc/sys/crypto/fips_enabled",
    )
)


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def _obj(value) -> dict:
    return value if isinstance(value, dict) else {}


def _arr(value) -> list:
    return value if isinstance(value, list) else []


def _int(value):
    """The value if it is a JSON integer, else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _is_abs(value) -> bool:
    return isinstance(value, str) and value.startswith("/")


def _has_dotdot(path: str) -> bool:
    return ".." in path.split("/")


def clean_path(path: str) -> str:
    """An in-container path as the mount code resolves it: absolute, without
    ".", ".." (which stops at "/") or repeated slashes.  pyrunc.rootfs
    uses this one too."""
    parts: list[str] = []
    for p in path.split("/"):
        if p in ("", "."):
            continue
        if p == "..":
            if parts:
                parts.pop()
            continue
        parts.append(p)
    return "/" + "/".join(parts)


def clean_cgroup_path(path: str) -> str:
    """cgroupsPath with ".", ".." and repeated slashes resolved as runc does
    (as if absolute, so ".." stops at the root); a relative path stays
    relative."""
    clean = clean_path(path)
    return clean if path.startswith("/") else clean[1:]


def parse_semver(text: str):
    """(major, minor, patch, prerelease) of a SemVer 2.0.0 string, or None."""
    if not isinstance(text, str) or not text.isascii():
        return None
    core, _, build = text.partition("+")
    if "+" in text and (not build or not _idents_ok(build, numeric_rule=False)):
        return None
    core, dash, pre = core.partition("-")
    if dash and (not pre or not _idents_ok(pre, numeric_rule=True)):
        return None
    parts = core.split(".")
    if len(parts) != 3:
        return None
    nums = []
    for p in parts:
        if not p.isdigit() or (len(p) > 1 and p[0] == "0"):
            return None
        nums.append(int(p))
    return nums[0], nums[1], nums[2], pre


def _idents_ok(text: str, numeric_rule: bool) -> bool:
    for ident in text.split("."):
        if not ident or not all(c.isalnum() or c == "-" for c in ident):
            return False
        if numeric_rule and ident.isdigit() and len(ident) > 1 and ident[0] == "0":
            return False
    return True


def _cpu_list_ok(text: str) -> bool:
    """'0-3,7' style lists (as in cpuset.cpus); empty is allowed."""
    text = text.strip()
    if not text:
        return True
    for item in text.split(","):
        item = item.strip()
        low, dash, high = item.partition("-")
        low, high = low.strip(), high.strip()
        if not low.isdigit() or (dash and not high.isdigit()):
            return False
        if dash and int(high) < int(low):
            return False
    return True


def _ifname_ok(name: str) -> bool:
    return 0 < len(name) < 16 and name not in (".", "..") and not any(c in "/:" or c.isspace() for c in name)


def _env_problem(entry) -> str | None:
    if not isinstance(entry, str):
        return None
    name, eq, _ = entry.partition("=")
    if not eq:
        return "%s is not of the form NAME=VALUE" % render_value(entry)
    if not name:
        return "%s has an empty variable name" % render_value(entry)
    if "\0" in entry:
        return "%s contains a NUL byte" % render_value(entry)
    return None


# What load_config removed from a document: id(doc) -> (doc, null members,
# values cut for depth).  The document is kept referenced so that its id
# cannot be reused.
_DROPPED: dict[int, tuple[dict, list[tuple], list[tuple]]] = {}


def note_dropped(doc: dict, *, nulls=(), cut=()) -> None:
    """Record that *nulls* were null members of *doc* and *cut* values
    nested too deeply (both removed): every later check of this document
    warns about them."""
    _DROPPED[id(doc)] = (doc, list(nulls), list(cut))


# --------------------------------------------------------------------------
# the checker
# --------------------------------------------------------------------------


class _Checker:
    def __init__(self, doc: dict, require_process: bool):
        self.doc = doc
        self.require_process = require_process
        self.found: list[tuple[tuple, str]] = []
        # what pyrunc accepts because runc does, but tells the user about
        # (docs/validation.md, "Refuse, warn or accept: the decisions")
        self.warned: list[tuple[tuple, str]] = []
        linux = _obj(doc.get("linux"))
        self.linux = linux
        # namespace type -> entry (first one wins; duplicates are reported)
        self.namespaces: dict[str, dict] = {}
        for ns in _arr(linux.get("namespaces")):
            if isinstance(ns, dict) and isinstance(ns.get("type"), str):
                self.namespaces.setdefault(ns["type"], ns)

    def add(self, path: tuple, message: str) -> None:
        self.found.append((path, message))

    def warn(self, path: tuple, message: str) -> None:
        self.warned.append((path, message))

    def no_nul(self, value, path: tuple) -> None:
        """Strings handed to system calls as C strings: a NUL would cut them
        (or make the call fail deep inside create)."""
        if isinstance(value, str) and "\0" in value:
            self.add(path, "%s contains a NUL byte" % render_value(value))

    def has_ns(self, kind: str) -> bool:
        return kind in self.namespaces

    def new_ns(self, kind: str) -> bool:
        ns = self.namespaces.get(kind)
        return ns is not None and not ns.get("path")

    def run(self) -> None:
        doc = self.doc
        noted = _DROPPED.get(id(doc))
        if noted is not None and noted[0] is doc:
            cut = set(noted[2])
            for path in noted[2]:
                self.warn(path, "nested deeper than %d levels: ignored (no config field nests that deep)" % len(path))
            for path in noted[1]:
                if path not in cut:
                    self.warn(path, "null is taken as absent")
        self.version()
        self.root()
        self.annotations()
        self.process()
        self.mounts()
        self.hooks()
        self.uts()
        if isinstance(doc.get("linux"), dict):
            self.namespaces_rules()
            self.id_mappings()
            self.time_offsets()
            self.devices()
            self.net_devices()
            self.sysctls()
            self.resources()
            self.cgroups_path()
            self.seccomp()
            self.linux_paths()
            self.intel_rdt()
            self.memory_policy()
            self.personality()

    # -- common --------------------------------------------------------

    def version(self):
        # runc runs a config whatever its ociVersion says.  pyrunc refuses
        # what is not SemVer (a spec MUST the conformance suite pins) and
        # runs a missing or non-1.x version as 1.3.0, with a warning.
        if "ociVersion" not in self.doc:
            self.warn(("ociVersion",), "is missing; judged as runtime-spec %s" % SPEC_VERSION)
            return
        v = self.doc.get("ociVersion")
        if not isinstance(v, str):
            return
        parsed = parse_semver(v)
        if parsed is None:
            self.add(("ociVersion",), "%s is not a SemVer 2.0.0 version" % render_value(v))
        elif parsed[0] != SUPPORTED_MAJOR:
            self.warn(
                ("ociVersion",), "%s is not a 1.x version; judged as runtime-spec %s" % (render_value(v), SPEC_VERSION)
            )

    def root(self):
        doc = self.doc
        if "root" not in doc:
            self.add(("root",), "required property is missing (it is required on Linux)")
            return
        path = _obj(doc["root"]).get("path")
        if path == "":
            self.add(("root", "path"), '"" must name the root filesystem directory')
        elif isinstance(path, str) and "\0" in path:
            self.add(("root", "path"), "%s contains a NUL byte" % render_value(path))

    def annotations(self):
        ann = self.doc.get("annotations")
        if isinstance(ann, dict) and "" in ann:
            # spec MUST (pinned by the conformance suite); runc keeps it
            self.add(("annotations", ""), "annotation keys must not be empty")

    def uts(self):
        for field in ("hostname", "domainname"):
            value = self.doc.get(field)
            if isinstance(value, str) and len(value.encode("utf-8", "surrogatepass")) > 64:
                # sethostname/setdomainname refuse more than 64 bytes (EINVAL)
                self.add((field,), "%s is longer than 64 bytes" % render_value(value))
            # A joined uts namespace (path) is accepted, as runc does: pods
            # share one and each container may set the name.
            if isinstance(value, str) and value and not self.has_ns("uts"):
                self.add(
                    (field,),
                    "%s needs a uts namespace (without one it would change the host's %s)"
                    % (render_value(value), field),
                )

    # -- process -------------------------------------------------------

    def process(self):
        doc = self.doc
        if "process" not in doc:
            if self.require_process:
                self.add(("process",), "required property is missing (needed to create a container)")
            return
        if not isinstance(doc["process"], dict):
            return  # the schema reports its type
        proc = doc["process"]
        at = ("process",)
        cwd = proc.get("cwd")
        if isinstance(cwd, str) and not cwd.startswith("/"):
            self.add(at + ("cwd",), "%s is not an absolute path" % render_value(cwd))
        args = proc.get("args")
        if "args" not in proc:
            self.add(at + ("args",), "required property is missing (at least one entry is required on Linux)")
        elif isinstance(args, list) and not args:
            self.add(at + ("args",), "[] must have at least one entry (the program to run)")
        elif isinstance(args, list) and isinstance(args[0], str) and not args[0]:
            self.add(at + ("args", 0), '"" must name the program to run')
        for i, arg in enumerate(_arr(args)):
            self.no_nul(arg, at + ("args", i))
        self.no_nul(cwd, at + ("cwd",))
        for i, entry in enumerate(_arr(proc.get("env"))):
            msg = _env_problem(entry)
            if msg:
                self.add(at + ("env", i), msg)
        self.rlimits(proc, at)
        size = proc.get("consoleSize")
        if isinstance(size, dict):
            for field in ("height", "width"):
                if field not in size:
                    self.warn(at + ("consoleSize", field), "is missing; 0 is used")
        user = proc.get("user")
        if isinstance(user, dict):
            self.user(user, at + ("user",))
        oom = _int(proc.get("oomScoreAdj"))
        if oom is not None and not -1000 <= oom <= 1000:
            self.add(at + ("oomScoreAdj",), "%d is outside the range -1000..1000" % oom)
        io = _obj(proc.get("ioPriority"))
        prio = _int(io.get("priority"))
        if prio is not None and not 0 <= prio <= 7:
            self.add(at + ("ioPriority", "priority"), "%d is outside the range 0..7" % prio)
        self.scheduler(_obj(proc.get("scheduler")), at + ("scheduler",))
        affinity = _obj(proc.get("execCPUAffinity"))
        for field in ("initial", "final"):
            value = affinity.get(field)
            if isinstance(value, str) and not _cpu_list_ok(value):
                self.add(at + ("execCPUAffinity", field), "%s is not a CPU list like 0-3,7" % render_value(value))

    def user(self, user, at):
        for field in ("uid", "gid"):
            if field not in user:
                # runc runs the process as 0 then (Go's zero value), as when
                # process.user is absent altogether
                self.warn(at + (field,), "is missing; the process runs with %s 0" % field)
            value = _int(user.get(field))
            if value is not None and not 0 <= value <= ID_MAX:
                self.add(at + (field,), "%d is out of range 0..%d" % (value, ID_MAX))
        for i, gid in enumerate(_arr(user.get("additionalGids"))):
            value = _int(gid)
            if value is not None and not 0 <= value <= ID_MAX:
                self.add(at + ("additionalGids", i), "%d is out of range 0..%d" % (value, ID_MAX))

    def rlimits(self, proc, at):
        seen: dict[str, int] = {}
        for i, rl in enumerate(_arr(proc.get("rlimits"))):
            if not isinstance(rl, dict):
                continue
            here = at + ("rlimits", i)
            kind = rl.get("type")
            if isinstance(kind, str):
                if kind in seen:
                    self.add(here + ("type",), "%s duplicates rlimits[%d]" % (render_value(kind), seen[kind]))
                else:
                    seen[kind] = i
                if kind not in RLIMITS:
                    self.add(here + ("type",), "%s is not a Linux resource limit" % render_value(kind))
            soft, hard = _int(rl.get("soft")), _int(rl.get("hard"))
            if soft is not None and hard is not None and soft > hard:
                self.add(here + ("soft",), "%d is greater than hard limit %d" % (soft, hard))

    def scheduler(self, sched, at):
        if not sched:
            return
        policy = sched.get("policy")
        nice = _int(sched.get("nice"))
        if nice is not None and not -20 <= nice <= 19:
            self.add(at + ("nice",), "%d is outside the range -20..19" % nice)
        prio = _int(sched.get("priority"))
        if prio is not None and isinstance(policy, str):
            if policy in REALTIME_POLICIES:
                if not 1 <= prio <= 99:
                    self.add(at + ("priority",), "%d is outside the range 1..99 of %s" % (prio, policy))
            elif prio != 0:
                self.add(
                    at + ("priority",), "%d must be 0 for %s (only SCHED_FIFO and SCHED_RR use it)" % (prio, policy)
                )
        if policy == "SCHED_DEADLINE":
            runtime = _int(sched.get("runtime")) or 0
            deadline = _int(sched.get("deadline")) or 0
            period = _int(sched.get("period")) or 0
            if runtime > deadline:
                self.add(at + ("runtime",), "%d is greater than deadline %d" % (runtime, deadline))
            elif period and deadline > period:
                self.add(at + ("deadline",), "%d is greater than period %d" % (deadline, period))

    # -- mounts and hooks ------------------------------------------------

    def mounts(self):
        userns = self.has_ns("user")
        for i, m in enumerate(_arr(self.doc.get("mounts"))):
            if not isinstance(m, dict):
                continue
            at = ("mounts", i)
            dest = m.get("destination")
            if dest == "":
                self.add(at + ("destination",), '"" must be a path inside the container')
            self.no_nul(dest, at + ("destination",))
            self.no_nul(m.get("source"), at + ("source",))
            opts = {o for o in _arr(m.get("options")) if isinstance(o, str)}
            if isinstance(dest, str) and dest and "\0" not in dest:
                self.proc_mount(m, clean_path(dest), opts, at)
            if not m.get("type") and not (opts & BIND_OPTIONS) and "remount" not in opts:
                # mount(2) needs a filesystem type unless it binds or
                # remounts: create would fail with ENODEV (runc too)
                self.add(at + ("type",), "is needed for a mount that is not a bind mount")
            if "tmpcopyup" in opts and m.get("type") != "tmpfs":
                self.warn(at + ("options",), "tmpcopyup applies only to tmpfs mounts; ignored")
            has_uid, has_gid = "uidMappings" in m, "gidMappings" in m
            if has_uid != has_gid:
                present, missing = ("uidMappings", "gidMappings") if has_uid else ("gidMappings", "uidMappings")
                self.add(at + (missing,), "required property is missing (%s is set)" % present)
            bind = bool(opts & BIND_OPTIONS)
            idmap = bool(opts & IDMAP_OPTIONS)
            if (has_uid or has_gid) and not (bind or idmap):
                self.add(
                    at + ("uidMappings" if has_uid else "gidMappings",),
                    "id mappings apply only to bind mounts or mounts with the idmap/ridmap option",
                )
            if idmap and not (has_uid or has_gid) and not userns:
                self.add(at + ("options",), "idmap/ridmap needs uidMappings and gidMappings or a user namespace")
            for field in ("uidMappings", "gidMappings"):
                self.mapping_ranges(m.get(field), at + (field,))
            if bind and not m.get("source"):
                self.add(at + ("source",), "a bind mount needs a source")

    def proc_mount(self, m, dest, opts, at):
        """Mounts on /proc and inside it, as pyrunc.rootfs judges them at
        create.  runc 1.1.5 also lets any non-bind filesystem cover a path
        in /proc: pyrunc does not, because a mount over /proc/<pid> or
        /proc/self/attr can feed the runtime (LSM labels, the init's own
        /proc entries) something other than the kernel's answers
        (CVE-2019-16884); only the lxcfs files are allowed."""
        bind = bool(opts & BIND_OPTIONS) or m.get("type") == "bind"
        if dest == "/proc":
            if m.get("type") != "proc" and not bind:
                self.add(
                    at + ("destination",),
                    '"/proc" can only be a proc mount (type %s)' % render_value(m.get("type", "")),
                )
        elif dest.startswith("/proc/") and dest not in PROC_MOUNT_ALLOWLIST:
            self.add(
                at + ("destination",),
                "%s is inside /proc; only %s may be mounted there"
                % (render_value(m.get("destination")), ", ".join(sorted(PROC_MOUNT_ALLOWLIST))),
            )

    def hooks(self):
        hooks = _obj(self.doc.get("hooks"))
        for stage, entries in hooks.items():
            for i, hook in enumerate(_arr(entries)):
                if not isinstance(hook, dict):
                    continue
                at = ("hooks", stage, i)
                path = hook.get("path")
                if isinstance(path, str) and not path.startswith("/"):
                    self.add(at + ("path",), "%s is not an absolute path" % render_value(path))
                self.no_nul(path, at + ("path",))
                for j, arg in enumerate(_arr(hook.get("args"))):
                    self.no_nul(arg, at + ("args", j))
                timeout = _int(hook.get("timeout"))
                if timeout is not None and timeout <= 0:
                    self.add(at + ("timeout",), "%d must be greater than zero" % timeout)
                for j, entry in enumerate(_arr(hook.get("env"))):
                    msg = _env_problem(entry)
                    if msg:
                        self.add(at + ("env", j), msg)

    # -- namespaces and id mappings ------------------------------------

    def namespaces_rules(self):
        seen: dict[str, int] = {}
        for i, ns in enumerate(_arr(self.linux.get("namespaces"))):
            if not isinstance(ns, dict):
                continue
            at = ("linux", "namespaces", i)
            kind = ns.get("type")
            if isinstance(kind, str):
                if kind in seen:
                    self.add(at + ("type",), "%s duplicates namespaces[%d]" % (render_value(kind), seen[kind]))
                else:
                    seen[kind] = i
            path = ns.get("path")
            if isinstance(path, str) and path and not path.startswith("/"):
                self.add(at + ("path",), "%s is not an absolute path" % render_value(path))
            self.no_nul(path, at + ("path",))
        if "mount" not in seen:
            # create refuses it (config/convert.py check_model): runc would make
            # the container's mounts in its own mount namespace and leave them
            self.add(
                ("linux", "namespaces"),
                "no mount namespace: the container's mounts would be "
                "made in the runtime's own mount namespace and outlive the container; add "
                '{"type": "mount"}',
            )

    def id_mappings(self):
        linux = self.linux
        uid, gid = _arr(linux.get("uidMappings")), _arr(linux.get("gidMappings"))
        for field in ("uidMappings", "gidMappings"):
            self.mapping_ranges(linux.get(field), ("linux", field))
        if not self.has_ns("user"):
            if uid or gid:
                field = "uidMappings" if uid else "gidMappings"
                self.add(("linux", field), "mappings need a user namespace in linux.namespaces")
            return
        if self.new_ns("user"):
            if not uid:
                self.add(("linux", "uidMappings"), "a new user namespace needs uid mappings")
            if not gid:
                self.add(("linux", "gidMappings"), "a new user namespace needs gid mappings")

    def mapping_ranges(self, mappings, at):
        ranges = []
        for i, mp in enumerate(_arr(mappings)):
            if not isinstance(mp, dict):
                continue
            cid, hid, size = _int(mp.get("containerID")), _int(mp.get("hostID")), _int(mp.get("size"))
            if size is None or cid is None or hid is None:
                continue
            if size == 0:
                self.add(at + (i, "size"), "0 must be greater than zero")
                continue
            if cid + size > UINT32_END or hid + size > UINT32_END:
                self.add(at + (i, "size"), "%d makes the range pass 4294967295" % size)
                continue
            ranges.append((cid, cid + size, i))
        ranges.sort()
        for (_s1, e1, i1), (s2, _e2, i2) in zip(ranges, ranges[1:]):
            if s2 < e1:
                self.add(at + (i2, "containerID"), "%d overlaps the range of entry %d" % (s2, i1))

    def time_offsets(self):
        offsets = self.linux.get("timeOffsets")
        if not isinstance(offsets, dict) or not offsets:
            return
        at = ("linux", "timeOffsets")
        if not self.has_ns("time"):
            self.add(at, "needs a time namespace in linux.namespaces")
        elif not self.new_ns("time"):
            self.add(at, "can only be set for a new time namespace, not one joined by path")
        for clock, value in offsets.items():
            if clock not in TIME_CLOCKS:
                self.add(at + (clock,), "%s is not a clock with offsets (boottime, monotonic)" % render_value(clock))
            nanos = _int(_obj(value).get("nanosecs"))
            if nanos is not None and nanos >= 1_000_000_000:
                self.add(at + (clock, "nanosecs"), "%d must be less than 1000000000" % nanos)

    # -- devices ----------------------------------------------------------

    def devices(self):
        # runc 1.1.5 takes relative paths (relative to "/"), resolves ".."
        # inside the container's root, keeps the first of two entries for one
        # path and makes a 0:0 node when major/minor are missing: pyrunc
        # does the same (convert.py) and warns.  The path is always resolved
        # inside the root, so none of these can reach the host.
        seen: dict[str, int] = {}
        for i, dev in enumerate(_arr(self.linux.get("devices"))):
            if not isinstance(dev, dict):
                continue
            at = ("linux", "devices", i)
            path = dev.get("path")
            if isinstance(path, str):
                self.no_nul(path, at + ("path",))
                clean = clean_path(path)
                if clean == "/":
                    self.add(at + ("path",), "%s does not name a file" % render_value(path))
                elif not path.startswith("/"):
                    self.warn(
                        at + ("path",),
                        "%s is not an absolute path; taken as %s" % (render_value(path), render_value(clean)),
                    )
                elif _has_dotdot(path):
                    self.warn(
                        at + ("path",), '%s contains ".."; taken as %s' % (render_value(path), render_value(clean))
                    )
                if clean in seen:
                    self.warn(
                        at + ("path",),
                        "%s duplicates devices[%d]; ignored (the first one is made)"
                        % (render_value(path), seen[clean]),
                    )
                seen.setdefault(clean, i)
            kind = dev.get("type")
            if isinstance(kind, str) and kind != "p":
                for field in ("major", "minor"):
                    if field not in dev:
                        self.warn(at + (field,), "is missing (type %s); 0 is used" % render_value(kind))
            for field in ("major", "minor"):
                num = _int(dev.get(field))
                if num is not None and num < 0:
                    self.add(at + (field,), "%d must not be negative" % num)
            mode = _int(dev.get("fileMode"))
            if mode is not None and mode > 0o777:
                self.warn(
                    at + ("fileMode",),
                    "%d (0o%o) has bits beyond the permissions 0o777; only 0o%o is used" % (mode, mode, mode & 0o777),
                )

    def net_devices(self):
        devs = self.linux.get("netDevices")
        if not isinstance(devs, dict) or not devs:
            return
        at = ("linux", "netDevices")
        if not self.has_ns("network"):
            self.add(at, "moving network devices needs a network namespace in linux.namespaces")
        targets: dict[str, str] = {}
        for name, spec in devs.items():
            if not _ifname_ok(name):
                self.add(at + (name,), "%s is not a valid interface name" % render_value(name))
            target = _obj(spec).get("name")
            if isinstance(target, str) and target:
                if not _ifname_ok(target):
                    self.add(at + (name, "name"), "%s is not a valid interface name" % render_value(target))
            else:
                target = name
            if target in targets:
                self.add(
                    at + (name,),
                    "would be named %s inside the container, like %s"
                    % (render_value(target), render_value(targets[target])),
                )
            targets.setdefault(target, name)

    # -- sysctls ---------------------------------------------------------

    def sysctls(self):
        for key in _obj(self.linux.get("sysctl")):
            at = ("linux", "sysctl", key)
            if "\0" in key:
                self.add(at, "contains a NUL byte")
                continue
            name = key.replace("/", ".")
            if name.startswith("net."):
                if not self.has_ns("network"):
                    self.add(at, "needs a network namespace (it would change the host's network settings)")
            elif name in IPC_SYSCTLS or name.startswith("fs.mqueue."):
                if not self.has_ns("ipc"):
                    self.add(at, "needs an ipc namespace (it would change the host's IPC settings)")
            elif name == "kernel.domainname":
                if not self.has_ns("uts"):
                    self.add(at, "needs a uts namespace (it would change the host's domain name)")
            elif name == "kernel.hostname":
                self.add(at, "is not allowed: set the hostname field instead")
            else:
                self.add(at, "is not namespaced: setting it would change the host")

    # -- cgroups -----------------------------------------------------------

    def cgroups_path(self):
        path = self.linux.get("cgroupsPath")
        if not isinstance(path, str):
            return
        at = ("linux", "cgroupsPath")
        if "\0" in path:
            self.add(at, "%s contains a NUL byte" % render_value(path))
        elif ":" in path and not path.startswith("/") and path.count(":") != 2:
            # A relative path with ":" is the systemd driver's
            # slice:prefix:name to the cgroup code: with any other number of
            # colons both drivers refuse it at create.  (slice:prefix:name
            # itself depends on --systemd-cgroup, which only create knows.)
            self.add(at, "%s is neither a path nor of the systemd form slice:prefix:name" % render_value(path))
        elif _has_dotdot(path):
            # runc cleans the path as if it were absolute, so ".." never
            # leaves the cgroup root: convert.py does the same
            self.warn(at, '%s contains ".."; taken as %s' % (render_value(path), render_value(clean_cgroup_path(path))))

    def resources(self):
        res = _obj(self.linux.get("resources"))
        at = ("linux", "resources")
        for i, rule in enumerate(_arr(res.get("devices"))):
            if not isinstance(rule, dict):
                continue
            if "allow" not in rule:
                # Go's zero value: runc denies
                self.warn(at + ("devices", i, "allow"), "is missing; the rule denies (allow false)")
            kind = rule.get("type")
            if isinstance(kind, str) and kind not in ("a", "b", "c"):
                self.add(at + ("devices", i, "type"), "%s is not one of a, b, c" % render_value(kind))
            access = rule.get("access")
            if isinstance(access, str) and (not access or set(access) - set("rwm")):
                self.add(at + ("devices", i, "access"), "%s is not a combination of r, w, m" % render_value(access))
            for field in ("major", "minor"):
                num = _int(rule.get(field))
                if num is not None and num < -1:
                    self.add(at + ("devices", i, field), "%d must be -1 (any) or a device number" % num)
        pids = res.get("pids")
        if isinstance(pids, dict) and "limit" not in pids:
            # runc writes no limit for Go's zero value
            self.warn(at + ("pids", "limit"), "is missing; no pids limit is set")
        mem = _obj(res.get("memory"))
        swappiness = _int(mem.get("swappiness"))
        if swappiness is not None and swappiness > 100:
            self.add(at + ("memory", "swappiness"), "%d is outside the range 0..100" % swappiness)
        limit, swap = _int(mem.get("limit")), _int(mem.get("swap"))
        if limit is not None and swap is not None and limit > 0 and swap > 0 and swap < limit:
            self.add(
                at + ("memory", "swap"),
                "%d is less than memory.limit %d (swap counts memory plus swap)" % (swap, limit),
            )
        cpu = _obj(res.get("cpu"))
        quota, burst = _int(cpu.get("quota")), _int(cpu.get("burst"))
        if quota is not None and burst is not None and quota > 0 and burst > quota:
            self.add(at + ("cpu", "burst"), "%d is greater than cpu.quota %d" % (burst, quota))
        for field in ("cpus", "mems"):
            value = cpu.get(field)
            if isinstance(value, str) and not _cpu_list_ok(value):
                self.add(at + ("cpu", field), "%s is not a list like 0-3,7" % render_value(value))
        blkio = _obj(res.get("blockIO"))
        for i, entry in enumerate(_arr(blkio.get("weightDevice"))):
            if isinstance(entry, dict) and "weight" not in entry and "leafWeight" not in entry:
                # runc writes nothing for it
                self.warn(at + ("blockIO", "weightDevice", i), "has neither weight nor leafWeight; ignored")
        for field in (
            "throttleReadBpsDevice",
            "throttleWriteBpsDevice",
            "throttleReadIOPSDevice",
            "throttleWriteIOPSDevice",
        ):
            for i, entry in enumerate(_arr(blkio.get(field))):
                if isinstance(entry, dict) and "rate" not in entry:
                    self.add(at + ("blockIO", field, i, "rate"), "required property is missing")
        for name, entry in _obj(res.get("rdma")).items():
            if isinstance(entry, dict) and "hcaHandles" not in entry and "hcaObjects" not in entry:
                self.add(at + ("rdma", name), "needs hcaHandles or hcaObjects")
        for key in _obj(res.get("unified")):
            if "/" in key or key.startswith(".") or "\0" in key:
                self.add(at + ("unified", key), "is not a cgroup file name")

    # -- seccomp -----------------------------------------------------------

    def seccomp(self):
        sc = self.linux.get("seccomp")
        if not isinstance(sc, dict):
            return
        at = ("linux", "seccomp")
        default = sc.get("defaultAction")
        # runc 1.1.5 ignores both, but the spec says "the runtime MUST print
        # an error and fail" for an errno the action does not take, and
        # listenerMetadata "MUST NOT be set" without listenerPath.
        if "defaultErrnoRet" in sc and isinstance(default, str) and default not in ERRNO_ACTIONS:
            self.add(
                at + ("defaultErrnoRet",),
                "is only allowed with defaultAction SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not %s" % default,
            )
        if "listenerMetadata" in sc and not sc.get("listenerPath"):
            self.add(at + ("listenerMetadata",), "is only allowed together with listenerPath")
        uses_notify = default == "SCMP_ACT_NOTIFY"
        for i, rule in enumerate(_arr(sc.get("syscalls"))):
            if not isinstance(rule, dict):
                continue
            here = at + ("syscalls", i)
            action = rule.get("action")
            uses_notify = uses_notify or action == "SCMP_ACT_NOTIFY"
            if "errnoRet" in rule and isinstance(action, str) and action not in ERRNO_ACTIONS:
                self.add(
                    here + ("errnoRet",),
                    "is only allowed with action SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not %s" % action,
                )
            for j, name in enumerate(_arr(rule.get("names"))):
                if name == "":
                    self.add(here + ("names", j), '"" is not a system call name')
            for j, arg in enumerate(_arr(rule.get("args"))):
                if isinstance(arg, dict) and "value" not in arg:
                    # Go's zero value, as runc compares with it
                    self.warn(here + ("args", j, "value"), "is missing; 0 is compared")
                index = _int(_obj(arg).get("index"))
                if index is not None and index > 5:
                    self.add(here + ("args", j, "index"), "%d is beyond the 6 system call arguments (0..5)" % index)
        if uses_notify and not sc.get("listenerPath"):
            self.add(at + ("listenerPath",), "required property is missing (SCMP_ACT_NOTIFY is used)")

    # -- paths, intelRdt, memoryPolicy -------------------------------------

    def linux_paths(self):
        for field in ("maskedPaths", "readonlyPaths"):
            for i, path in enumerate(_arr(self.linux.get(field))):
                if isinstance(path, str) and "\0" in path:
                    self.add(("linux", field, i), "%s contains a NUL byte" % render_value(path))
                elif isinstance(path, str) and not path.startswith("/"):
                    # runc joins it to the root, but the spec's MUST (pinned
                    # by the conformance suite) is kept
                    self.add(("linux", field, i), "%s is not an absolute path" % render_value(path))

    def intel_rdt(self):
        rdt = self.linux.get("intelRdt")
        if not isinstance(rdt, dict):
            return
        at = ("linux", "intelRdt")
        clos = rdt.get("closID")
        if isinstance(clos, str) and clos != "/" and (not clos or "/" in clos or clos in (".", "..") or "\n" in clos):
            self.add(at + ("closID",), '%s is not a resctrl group name (or "/" for the default)' % render_value(clos))
        l3 = rdt.get("l3CacheSchema")
        if isinstance(l3, str) and "\n" in l3:
            self.add(at + ("l3CacheSchema",), "%s must not contain newlines" % render_value(l3))
        for i, line in enumerate(_arr(rdt.get("schemata"))):
            if isinstance(line, str) and "\n" in line:
                self.add(at + ("schemata", i), "%s must not contain newlines" % render_value(line))

    def personality(self):
        flags = _obj(self.linux.get("personality")).get("flags")
        if isinstance(flags, list) and flags:
            # The spec names no flag; runc 1.1.5 ignores the whole field.
            self.warn(
                ("linux", "personality", "flags"), "%s: no personality flag is supported; ignored" % render_value(flags)
            )

    def memory_policy(self):
        mp = self.linux.get("memoryPolicy")
        if not isinstance(mp, dict):
            return
        at = ("linux", "memoryPolicy")
        mode = mp.get("mode")
        if "mode" not in mp:
            self.add(at + ("mode",), "required property is missing")
        nodes = mp.get("nodes")
        if isinstance(nodes, str):
            if not _cpu_list_ok(nodes):
                self.add(at + ("nodes",), "%s is not a node list like 0-3,7" % render_value(nodes))
            elif isinstance(mode, str) and mode in NO_NODE_POLICIES and nodes.strip():
                self.add(at + ("nodes",), "%s must be empty for %s" % (render_value(nodes), mode))
        if isinstance(mode, str) and mode in NODE_POLICIES and not (isinstance(nodes, str) and nodes.strip()):
            self.add(at + ("nodes",), "%s needs at least one node" % mode)
        flags = set(f for f in _arr(mp.get("flags")) if isinstance(f, str))
        if {"MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"} <= flags:
            self.add(at + ("flags",), "MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other")


# --------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------


def _checked(doc, require_process: bool):
    if not isinstance(doc, dict):
        return None  # the schema reports the wrong document type
    checker = _Checker(doc, require_process)
    checker.run()
    return checker


def _findings(doc, require_process: bool) -> list[tuple[tuple, str]]:
    checker = _checked(doc, require_process)
    return checker.found if checker is not None else []


def problems(doc: dict, *, require_process: bool = True, label: str = LABEL) -> list[str]:
    """Every semantic problem of a config document, one line each."""
    return [problem_line(label, path, msg) for path, msg in _findings(doc, require_process)]


def warnings(doc: dict, *, label: str = LABEL) -> list[str]:
    """What pyrunc accepts but warns about (runc accepts it), one line each."""
    checker = _checked(doc, False)
    if checker is None:
        return []
    return [problem_line(label, path, msg) for path, msg in checker.warned]


def check(doc: dict, *, require_process: bool = True, label: str = LABEL, warn=None) -> None:
    """Raise ConfigError naming the first semantic problem of *doc*.

    *require_process*: `create` needs ``process``; documents that only
    describe a container's environment (spec "process is REQUIRED when
    start is called") can pass False.  *warn*, when given, is called with
    each warning line (only when there is no problem).
    """
    checker = _checked(doc, require_process)
    if checker is None:
        return
    if checker.found:
        path, msg = checker.found[0]
        raise ConfigError(problem_line(label, path, msg))
    if warn is not None:
        for path, msg in checker.warned:
            warn(problem_line(label, path, msg))
