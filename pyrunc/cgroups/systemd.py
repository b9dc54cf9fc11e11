"""The systemd cgroup driver (``--systemd-cgroup``, crun's ``--cgroup-manager systemd``).

On a systemd host the container's cgroup belongs to a transient unit that
systemd owns: ``linux.cgroupsPath`` ``slice:prefix:name`` names a scope
``prefix-name.scope`` in ``slice`` (or a slice unit when ``name`` ends in
``.slice``).  The unit is created over D-Bus (StartTransientUnit, with
``Delegate=yes`` so the runtime may write the cgroup files below it); the
limits systemd knows become unit properties, so that systemd itself keeps
them (a ``systemctl daemon-reload`` re-applies unit properties and would
undo limits written only to files); then everything is written to the files
by the cgroupfs manager of the host's layout (v2, or v1 on hybrid hosts),
which also does freeze, kill, pids and stats on the unit's cgroup.

Rootless (the caller is not root, or is root of a user namespace that maps
only some ids, as under rootless podman): the unit is made by the user's
own systemd instance on the user bus, the default slice is ``user.slice``
and the unit's cgroup lies below the user manager's own cgroup
(``/user.slice/user-UID.slice/user@UID.service``), delegated to the user.

Semantics follow runc's systemd cgroup driver (docs/cgroups.md,
"The systemd driver").  D-Bus is spoken with jeepney, imported only here
and only when a unit is started, changed or stopped, so the cgroupfs path
pays nothing for it.
"""

import os

from pyrunc.cgroups import CGROUP_ROOT, CgroupManager
from pyrunc.cgroups import resources as R
from pyrunc.errors import CgroupError

F = R.F
DEFAULT_SLICE = "system.slice"
USER_DEFAULT_SLICE = "user.slice"  # rootless: in the user's manager
# The unit prefix without a cgroupsPath (runc uses "runc"): our own, so a
# container of the same id started by runc on the same host does not clash.
DEFAULT_PREFIX = "pyrunc"
# How long a unit job (start or stop) may take before the command fails
# (runc waits 30 s too).
JOB_TIMEOUT = 30.0
CALL_TIMEOUT = 25.0
INFINITY = 2**64 - 1  # systemd's "infinity" for uint64 limits

_MGR_PATH = "/org/freedesktop/systemd1"
_MGR_IFACE = "org.freedesktop.systemd1.Manager"
_UNIT_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:-_.\\")
_ANNOTATION_PREFIX = "org.systemd.property."


def systemd_running() -> bool:
    """The host was booted with systemd (sd_booted(3): /run/systemd/system is a directory)."""
    return os.path.isdir("/run/systemd/system") and not os.path.islink("/run/systemd/system")


# --- names and paths ---------------------------------------------------------


def expand_slice(slice_name: str, field: str = "linux.cgroupsPath") -> str:
    """The cgroup path of a slice unit: ``a-b-c.slice`` -> ``/a.slice/a-b.slice/a-b-c.slice``.

    systemd nests slices by the dashes in their names; ``-.slice`` is the root.
    """
    suffix = ".slice"
    if (
        (len(slice_name) <= len(suffix) and slice_name != "-.slice")
        or not slice_name.endswith(suffix)
        or "/" in slice_name
    ):
        raise CgroupError(
            f"{field}: invalid slice name {slice_name!r} "
            "(a systemd slice like system.slice or kubepods-besteffort.slice)"
        )
    stem = slice_name[: -len(suffix)]
    if stem == "-":
        return "/"
    path, prefix = "", ""
    for part in stem.split("-"):
        if not part:  # "a--b.slice" and "-a.slice" name no slice
            raise CgroupError(f"{field}: invalid slice name {slice_name!r} (empty component)")
        path += f"/{prefix}{part}{suffix}"
        prefix += part + "-"
    return path


def parse_cgroups_path(
    cgroups_path: str | None, container_id: str, default_slice: str = DEFAULT_SLICE
) -> tuple[str, str]:
    """(slice, unit) for ``linux.cgroupsPath`` under the systemd driver.

    ``slice:prefix:name``; an empty slice is ``default_slice`` (system.slice;
    user.slice for the user's manager), an empty name the
    container id, an empty prefix gives ``name.scope``; no cgroupsPath at all
    is ``:pyrunc:<id>``.  A ``name`` ending in ``.slice`` is a slice unit.
    """
    field = "linux.cgroupsPath"
    if not cgroups_path:
        slice_name, prefix, name = "", DEFAULT_PREFIX, container_id
    else:
        parts = cgroups_path.split(":")
        if len(parts) != 3:
            raise CgroupError(
                f"{field}: {cgroups_path!r} is not of the form slice:prefix:name "
                "(the systemd cgroup driver's syntax, e.g. "
                "system.slice:docker:ID)"
            )
        slice_name, prefix, name = parts
        name = name or container_id
    slice_name = slice_name or default_slice
    if slice_name == "-":
        slice_name = "-.slice"
    if name.endswith(".slice"):
        unit = name
    else:
        unit = f"{prefix}-{name}.scope" if prefix else f"{name}.scope"
    if len(unit) > 255 or not set(unit) <= _UNIT_CHARS:
        raise CgroupError(
            f"{field}: {unit!r} is not a valid systemd unit name "
            '(letters, digits and ":-_.\\" only, at most 255 characters)'
        )
    expand_slice(slice_name)  # refuse a malformed slice before anything exists
    return slice_name, unit


def unit_cgroup(slice_name: str, unit: str) -> str:
    """Where systemd puts ``unit``: a scope under its slice; a slice where its name says."""
    if unit.endswith(".slice"):
        return expand_slice(unit)
    return expand_slice(slice_name).rstrip("/") + "/" + unit


# --- org.systemd.property.* annotations ----------------------------------------

_TYPE_WORDS = {
    "boolean": "b",
    "byte": "y",
    "int16": "n",
    "uint16": "q",
    "int32": "i",
    "uint32": "u",
    "int64": "x",
    "uint64": "t",
    "double": "d",
    "string": "s",
}
_INT_RANGES = {
    "y": (0, 255),
    "n": (-(2**15), 2**15 - 1),
    "q": (0, 2**16 - 1),
    "i": (-(2**31), 2**31 - 1),
    "u": (0, 2**32 - 1),
    "x": (-(2**63), 2**63 - 1),
    "t": (0, 2**64 - 1),
}


def parse_gvariant(text: str):
    """A GVariant text value as (signature, value), for the simple types:
    booleans, numbers (bare, ``uint64 5`` or ``@t 5``), quoted strings and
    arrays of them.  A bare integer is int32 and a bare float a double, as
    in GVariant; ValueError for anything else."""
    s = text.strip()
    sig = None
    word, _, rest = s.partition(" ")
    if word in _TYPE_WORDS:
        sig, s = _TYPE_WORDS[word], rest.strip()
    elif word.startswith("@") and rest:
        sig, s = word[1:], rest.strip()
    if s.startswith("[") and s.endswith("]"):
        inner = s[1:-1].strip()
        items = _split_items(inner) if inner else []
        values = [parse_gvariant(i) for i in items]
        elem = sig[1:] if sig and sig.startswith("a") else None
        kinds = {v[0] for v in values}
        if elem is None:
            if len(kinds) > 1:
                raise ValueError("array items of different types")
            elem = kinds.pop() if kinds else None
        if elem is None or len(elem) != 1:
            raise ValueError("array type unknown (write e.g. @as [])")
        return "a" + elem, [_coerce(elem, v) for v in values]
    value = _scalar(s)
    if sig is None:
        sig = value[0]
    return sig, _coerce(sig, value)


def _split_items(s: str) -> list[str]:
    items, cur, quote = [], "", None
    i = 0
    while i < len(s):
        ch = s[i]
        if quote:
            cur += ch
            if ch == "\\" and i + 1 < len(s):
                cur += s[i + 1]
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
            cur += ch
        elif ch == ",":
            items.append(cur.strip())
            cur = ""
        else:
            cur += ch
        i += 1
    if quote:
        raise ValueError("unterminated string")
    items.append(cur.strip())
    return items


def _scalar(s: str):
    if s in ("true", "false"):
        return "b", s == "true"
    if len(s) >= 2 and s[0] in "'\"" and s[-1] == s[0]:
        out, i, body = [], 0, s[1:-1]
        while i < len(body):
            if body[i] == "\\" and i + 1 < len(body):
                i += 1
            elif body[i] == s[0]:
                raise ValueError("unescaped quote in string")
            out.append(body[i])
            i += 1
        return "s", "".join(out)
    try:
        return "i", int(s, 0)
    except ValueError:
        pass
    try:
        return "d", float(s)
    except ValueError:
        raise ValueError(f"{s!r} is not a boolean, number or quoted string") from None


def _coerce(sig: str, value):
    kind, v = value
    if sig == "b" and kind == "b":
        return v
    if sig in _INT_RANGES and kind == "i":
        lo, hi = _INT_RANGES[sig]
        if not lo <= v <= hi:
            raise ValueError(f"{v} is out of range for type {sig}")
        return v
    if sig == "d" and kind in ("i", "d"):
        return float(v)
    if sig == "s" and kind == "s":
        return v
    raise ValueError(f"a {kind} value where type {sig} was given")


def annotation_properties(annotations: dict | None) -> list:
    """Unit properties from ``org.systemd.property.NAME`` annotations, as runc
    takes them: NAME is letters only (at least 3), the value GVariant text;
    ``...Sec`` names are the ``...USec`` properties, converted to microseconds."""
    props = []
    for key, text in (annotations or {}).items():
        if not key.startswith(_ANNOTATION_PREFIX):
            continue
        name = key[len(_ANNOTATION_PREFIX) :]
        where = f"annotations[{key!r}]"
        if len(name) < 3 or not name.isascii() or not name.isalpha():
            raise CgroupError(f"{where}: {name!r} is not a systemd property name (at least 3 latin letters)")
        try:
            sig, value = parse_gvariant(text)
        except ValueError as e:
            raise CgroupError(f"{where}: {text!r} is not a GVariant value this runtime understands: {e}") from None
        if len(name) > 3 and name.endswith("Sec") and name[-4].islower():
            # documented as TimeoutStopSec, set over D-Bus as TimeoutStopUSec
            if sig not in _INT_RANGES and sig != "d":
                raise CgroupError(f"{where}: a number of seconds is needed")
            if value < 0:
                raise CgroupError(f"{where}: {value} is negative")
            name, sig, value = name[:-3] + "USec", "t", int(value * 1_000_000)
        props.append((name, (sig, value)))
    return props


# --- OCI resources -> unit properties -----------------------------------------


def _cpu_mask(text: str, field: str) -> bytes:
    """ "0-3,8" -> the byte mask systemd takes for AllowedCPUs (bit n of byte n//8)."""
    bits = 0
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        try:
            a, b = int(lo), int(hi or lo)
        except ValueError:
            raise CgroupError(f"{field}: {text!r} is not a list like 0-3,8") from None
        if a < 0 or b < a or b > 8191:
            raise CgroupError(f"{field}: {text!r} is not a list like 0-3,8")
        for n in range(a, b + 1):
            bits |= 1 << n
    return bits.to_bytes((bits.bit_length() + 7) // 8 or 1, "little")


def _device_names(kind: str) -> dict[int, str]:
    """major -> driver name from /proc/devices, for systemd's char-NAME/block-NAME."""
    out: dict[int, str] = {}
    section = None
    try:
        with open("/proc/devices") as f:
            for line in f:
                line = line.strip()
                if line.startswith("Character"):
                    section = "c"
                elif line.startswith("Block"):
                    section = "b"
                elif line and section == kind:
                    num, _, name = line.partition(" ")
                    if num.isdigit():
                        out.setdefault(int(num), name.strip())
    except OSError:
        pass
    return out


def device_properties(rules) -> list:
    """DevicePolicy/DeviceAllow for the container's device rules.

    systemd's list can only allow, so it gets every allow rule (a superset of
    what the rules allow); the runtime's own eBPF program, attached to the
    same cgroup, enforces the exact list, denials included.  Both must
    allow a device, so the result is the exact list, and after a
    daemon-reload systemd still restricts devices.  A rule systemd cannot
    express leaves systemd's policy open (auto, no list)."""
    default_allow, effective = R.effective_device_rules(rules)
    reset: tuple[str, tuple[str, object]] = ("DeviceAllow", ("a(ss)", []))  # an empty list clears the unit's list
    if default_allow:
        return [("DevicePolicy", ("s", "auto")), reset]
    entries, names = [], {}
    for r in effective:
        if not r.allow:
            continue
        kind = "char" if r.type == "c" else "block"
        if r.major == R.WILDCARD:
            node = f"{kind}-*"
        elif r.minor == R.WILDCARD:
            if r.type not in names:
                names[r.type] = _device_names(r.type)
            name = names[r.type].get(r.major)
            if name is None:
                return [("DevicePolicy", ("s", "auto")), reset]
            node = f"{kind}-{name}"
        else:
            node = f"/dev/{kind}/{r.major}:{r.minor}"
        entries.append((node, r.access))
    return [("DevicePolicy", ("s", "strict")), reset, ("DeviceAllow", ("a(ss)", entries))]


def resource_properties(resources, version: int, *, initial: bool = False) -> list:
    """The unit properties for the OCI LinuxResources systemd knows (runc's
    table, docs/cgroups.md); the rest goes only to the files.  ``resources``:
    a ``config.model.Resources`` (a dict is converted first)."""
    from pyrunc.config.model import BlockIO, Cpu, Memory

    r = R.as_record(resources)
    props = []

    def t(name, value):
        props.append((name, ("t", value)))

    mem = r.memory or Memory()
    limit = mem.limit or 0
    if limit:
        t("MemoryMax" if version == 2 else "MemoryLimit", INFINITY if limit == -1 else limit)
    if version == 2:
        reservation = mem.reservation or 0
        if reservation:
            t("MemoryLow", INFINITY if reservation == -1 else reservation)
        swap_max = R.swap_to_v2(mem.swap or 0, limit)
        if swap_max is not None:
            t("MemorySwapMax", INFINITY if swap_max == -1 else swap_max)

    cpu = r.cpu or Cpu()
    if cpu.shares:
        if version == 2:
            t("CPUWeight", R.cpu_shares_to_weight(cpu.shares))
        else:
            t("CPUShares", cpu.shares)
    quota = cpu.quota or 0
    period = cpu.period or 0
    if period:
        t("CPUQuotaPeriodUSec", period)
    if quota or period:
        per_sec = INFINITY
        if quota > 0:
            # systemd keeps the quota per second, in steps of 10 ms: round up
            per_sec = quota * 1_000_000 // (period or 100_000)
            if per_sec % 10_000:
                per_sec = (per_sec // 10_000 + 1) * 10_000
        t("CPUQuotaPerSecUSec", per_sec)
    for key, prop, text in (("cpus", "AllowedCPUs", cpu.cpus), ("mems", "AllowedMemoryNodes", cpu.mems)):
        if text:
            props.append((prop, ("ay", _cpu_mask(text, f"{F}.cpu.{key}"))))

    plimit = tasks_max(r)
    if plimit is not None:
        t("TasksMax", INFINITY if plimit < 0 else plimit)

    weight = (r.blockIO or BlockIO()).weight
    if weight:
        if version == 2:
            t("IOWeight", R.blkio_weight_to_io_weight(weight))
        else:
            t("BlockIOWeight", weight)

    if version == 2:
        unified = r.unified or {}
        for key, prop in (
            ("memory.max", "MemoryMax"),
            ("memory.high", "MemoryHigh"),
            ("memory.low", "MemoryLow"),
            ("memory.min", "MemoryMin"),
            ("memory.swap.max", "MemorySwapMax"),
            ("pids.max", "TasksMax"),
            ("cpu.weight", "CPUWeight"),
        ):
            value = unified.get(key)
            if isinstance(value, str):
                value = value.strip()
                if value == "max":
                    t(prop, INFINITY)
                elif value.isdigit():
                    t(prop, int(value))
    # v1 too: systemd rewrites a v1 devices list from the unit's properties
    # whenever it applies them (a daemon-reload, a property change); with no
    # properties that is "allow all" (runc sends them on v1 as well)
    if r.devices is not None or initial:
        props.extend(device_properties(r.devices))
    return props


def tasks_max(r) -> int | None:
    """The unit's TasksMax for the pids limit.  runtime-spec 1.3: 0 is a valid
    limit ("SHOULD be treated as such").  systemd refuses TasksMax=0 ("out of
    range", its minimum is 1); for a cgroup that holds the container's init,
    1 is the same limit (no fork succeeds), so the unit gets 1, as with runc
    >= 1.4, and keeps a limit across a daemon-reload (which then writes 1 to
    pids.max).  The file itself gets 0, the spec's value."""
    from pyrunc.config.model import Pids

    limit = (r.pids or Pids()).limit
    return 1 if limit == 0 else limit


# --- D-Bus ---------------------------------------------------------------------


def user_bus_address(environ=os.environ) -> str:
    """The user's bus, where the user's systemd instance listens: the session
    bus address, else ``$XDG_RUNTIME_DIR/bus`` (as runc and sd_bus_open_user)."""
    addr = environ.get("DBUS_SESSION_BUS_ADDRESS")
    if addr:
        return addr
    runtime_dir = environ.get("XDG_RUNTIME_DIR")
    if runtime_dir and os.path.exists(os.path.join(runtime_dir, "bus")):
        return "unix:path=" + os.path.join(runtime_dir, "bus")
    raise CgroupError(
        "rootless --systemd-cgroup needs the user's systemd instance: "
        "DBUS_SESSION_BUS_ADDRESS is unset and "
        + (f"{runtime_dir}/bus does not exist" if runtime_dir else "XDG_RUNTIME_DIR is unset")
        + " (a systemd user session: loginctl enable-linger USER)"
    )


def host_uid(uid: int, uid_map: str = "/proc/self/uid_map") -> int:
    """``uid`` as the bus daemon sees it: through this user namespace's map
    (rootless podman runs the runtime as root of a namespace that maps the
    user's own uid to 0).  Unmapped or unreadable: ``uid`` itself."""
    try:
        with open(uid_map) as f:
            for line in f:
                inside, outside, count = (int(x) for x in line.split())
                if inside <= uid < inside + count:
                    return outside + uid - inside
    except (OSError, ValueError):
        pass
    return uid


def _open_user_connection(address: str, timeout: float = 5.0):
    """A jeepney connection to the user's bus, authenticated (SASL EXTERNAL)
    as the uid the bus daemon sees in the socket's credentials: jeepney's
    own authenticator names this namespace's euid, which in a user
    namespace is not the daemon's view of us and is rejected."""
    import socket
    from binascii import hexlify
    from jeepney.auth import BEGIN, Authenticator
    from jeepney.bus import get_bus
    from jeepney.io.blocking import DBusConnection

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.settimeout(timeout)
        sock.connect(get_bus(address))
        auth = Authenticator(inc_null_byte=False)
        auth.data_to_send()  # its AUTH line names our namespace's uid: sent below instead
        uid = str(host_uid(os.geteuid())).encode()
        sock.sendall(b"\0AUTH EXTERNAL " + hexlify(uid) + b"\r\n")
        while not auth.authenticated:
            data = sock.recv(1024)
            if not data:
                raise ConnectionError("the bus closed the connection during authentication")
            auth.feed(data)
        sock.sendall(BEGIN)
        sock.settimeout(None)
        return DBusConnection(sock)
    except BaseException:
        sock.close()
        raise


class Systemd:
    """A connection to systemd's manager object: the system instance on the
    system bus, or (``user``) the user's instance on the user bus."""

    def __init__(self, *, user: bool = False, address: str | None = None):
        try:
            from jeepney.io.blocking import open_dbus_connection
        except ImportError:
            raise CgroupError("the systemd cgroup driver needs the jeepney package (pip install jeepney)") from None
        bus = "user" if user else "system"
        self.address: str | None = None
        try:
            if user:
                self.address = address or user_bus_address()
                self.conn = _open_user_connection(self.address)
            else:
                self.conn = open_dbus_connection(bus="SYSTEM", auth_timeout=5.0)
        except CgroupError:
            raise
        except (OSError, ValueError, KeyError) as e:
            why = getattr(e, "strerror", None) or str(e) or type(e).__name__
            raise CgroupError(f"systemd cgroup driver: cannot connect to the D-Bus {bus} bus: {why}") from None
        except Exception as e:  # noqa: BLE001 - jeepney's auth errors have no common base
            raise CgroupError(f"systemd cgroup driver: D-Bus {bus} bus: {type(e).__name__}: {e}") from None
        from jeepney import DBusAddress

        self.manager = DBusAddress(_MGR_PATH, bus_name="org.freedesktop.systemd1", interface=_MGR_IFACE)
        self._subscribed = False

    def close(self) -> None:
        self.conn.close()

    def manager_property(self, name: str):
        """A property of the manager object (e.g. ControlGroup: where the
        user's instance keeps its units)."""
        from jeepney import DBusAddress, new_method_call
        from jeepney.low_level import HeaderFields, MessageType

        props = DBusAddress(_MGR_PATH, bus_name="org.freedesktop.systemd1", interface="org.freedesktop.DBus.Properties")
        reply = self.conn.send_and_get_reply(
            new_method_call(props, "Get", "ss", (_MGR_IFACE, name)), timeout=CALL_TIMEOUT
        )
        if reply.header.message_type == MessageType.error:
            why = reply.body[0] if reply.body else reply.header.fields.get(HeaderFields.error_name)
            raise CgroupError(f"systemd: manager property {name}: {why}")
        return reply.body[0][1]  # the variant's value

    def call(self, method: str, signature: str, args: tuple, *, timeout=CALL_TIMEOUT):
        """Call a manager method; raise DBusError (a CgroupError) on an error reply."""
        from jeepney import new_method_call
        from jeepney.low_level import MessageType, HeaderFields

        msg = new_method_call(self.manager, method, signature, args)
        try:
            reply = self.conn.send_and_get_reply(msg, timeout=timeout)
        except TimeoutError:
            raise CgroupError(f"systemd: {method}: no reply within {timeout:.0f} s") from None
        except OSError as e:
            raise CgroupError(f"systemd: {method}: {e.strerror or e}") from None
        if reply.header.message_type == MessageType.error:
            name = reply.header.fields.get(HeaderFields.error_name, "")
            text = reply.body[0] if reply.body and isinstance(reply.body[0], str) else name
            raise DBusError(name, f"systemd: {method}: {text}")
        return reply.body

    def run_job(self, method: str, signature: str, args: tuple, *, timeout=JOB_TIMEOUT) -> str:
        """Call a method that queues a job and wait for the job's end; return its
        result ("done", "failed", "timeout", "canceled", "dependency", "skipped")."""
        import time
        from jeepney import MatchRule, message_bus

        rule = MatchRule(type="signal", interface=_MGR_IFACE, member="JobRemoved", path=_MGR_PATH)
        if not self._subscribed:
            # systemd emits job signals only while a client is subscribed; the
            # match must be in place before the job can end
            self.conn.send_and_get_reply(message_bus.AddMatch(rule), timeout=CALL_TIMEOUT)
            try:
                self.call("Subscribe", "", ())
            except DBusError:
                pass  # already subscribed: fine
            self._subscribed = True
        with self.conn.filter(rule, bufsize=256) as queue:
            job = self.call(method, signature, args)[0]
            deadline = time.monotonic() + timeout
            while True:
                left = deadline - time.monotonic()
                try:
                    if left <= 0:
                        raise TimeoutError
                    msg = self.conn.recv_until_filtered(queue, timeout=left)
                except TimeoutError:
                    raise CgroupError(
                        f"systemd: {method} {args[0]}: the job did not finish within {timeout:.0f} s"
                    ) from None
                body = msg.body
                if len(body) == 4 and body[1] == job:
                    return body[3]


class DBusError(CgroupError):
    def __init__(self, name: str, text: str):
        super().__init__(text)
        self.name = name


# --- the manager ----------------------------------------------------------------


class SystemdManager(CgroupManager):
    """A container cgroup owned by a systemd transient unit; the files are
    written by ``inner``, the cgroupfs manager of the unit's cgroup.
    Rootless: the unit belongs to the user's systemd instance, reached at
    ``bus_address`` (kept in the record, so later commands need no
    environment to find it)."""

    driver = "systemd"

    def __init__(
        self,
        container_id: str,
        slice_name: str,
        unit: str,
        inner: CgroupManager,
        *,
        properties=(),
        rootless: bool = False,
        started: bool = False,
        bus_address: str | None = None,
    ):
        super().__init__(inner.path, container_id, rootless=rootless)
        self.slice = slice_name
        self.unit = unit
        self.inner = inner
        self.version = inner.version
        self.bus_address = bus_address
        self.properties = list(properties)  # from annotations, for the start only
        # False until this process started the unit: before that the cgroup
        # is not ours to join (paths() is empty, so create joins by apply)
        self._started = started
        self._bus: Systemd | None = None

    @classmethod
    def new(cls, cgroups_path, container_id, *, annotations=None, rootless=False, root=CGROUP_ROOT):
        slice_name, unit = parse_cgroups_path(
            cgroups_path, container_id, USER_DEFAULT_SLICE if rootless else DEFAULT_SLICE
        )
        props = annotation_properties(annotations)
        if not systemd_running():
            raise CgroupError(
                "--systemd-cgroup: systemd is not running on this host "
                "(PID 1 is not systemd: no /run/systemd/system); "
                "use the cgroupfs driver"
            )
        from pyrunc.cgroups import detect_version

        version = detect_version(root)
        base, address = "", None
        if rootless:
            if version != 2:
                # as runc: only v2 delegates a subtree to an unprivileged user
                raise CgroupError(
                    "rootless --systemd-cgroup needs cgroup v2 (this host "
                    "has cgroup v1 hierarchies, which systemd does not "
                    "delegate to a user)"
                )
            # the user's instance keeps its units below its own cgroup; asked
            # now (and disconnected) so the stages never hold the socket
            bus = Systemd(user=True)
            try:
                base = str(bus.manager_property("ControlGroup")).rstrip("/")
                address = bus.address
            finally:
                bus.close()
        path = base + unit_cgroup(slice_name, unit)
        if version == 2:
            from pyrunc.cgroups.v2 import V2Manager

            inner = V2Manager.resolve(path, False, container_id, rootless=rootless, root=root)
        else:
            from pyrunc.cgroups.v1 import V1Manager

            inner = V1Manager.resolve(path, False, container_id, root=root)
        return cls(container_id, slice_name, unit, inner, properties=props, rootless=rootless, bus_address=address)

    @classmethod
    def from_dict(cls, saved: dict):
        from pyrunc.cgroups import load_manager

        try:
            inner = load_manager(saved["inner"])
            return cls(
                saved.get("id", ""),
                saved["slice"],
                saved["unit"],
                inner,
                rootless=saved.get("rootless", False),
                started=True,
                bus_address=saved.get("bus"),
            )
        except (KeyError, TypeError):
            raise CgroupError("saved cgroup state: incomplete systemd unit record") from None

    def to_dict(self) -> dict:
        return {
            "driver": self.driver,
            "version": self.version,
            "path": self.path,
            "id": self.container_id,
            "rootless": self.rootless,
            "slice": self.slice,
            "unit": self.unit,
            "paths": self.inner.paths(),
            "inner": self.inner.to_dict(),
            **({"bus": self.bus_address} if self.bus_address else {}),
        }

    def __repr__(self):
        return f"<SystemdManager {self.unit} in {self.slice} v{self.version} {self.path}>"

    def _systemd(self) -> Systemd:
        if self._bus is None:
            self._bus = Systemd(user=self.rootless, address=self.bus_address)
        return self._bus

    # -- lifecycle -------------------------------------------------------------
    def create(self) -> None:
        """Only check: the unit is started by ``apply`` (a scope needs a
        process).  The D-Bus connection is made there too, after the fork,
        so the container's stages never hold a socket to the system bus."""
        if not systemd_running():
            raise CgroupError(
                "--systemd-cgroup: systemd is not running on this host (PID 1 is not systemd: no /run/systemd/system)"
            )

    def apply(self, pid: int) -> None:
        if self._started:
            try:
                self.inner.apply(pid)
            except CgroupError:
                if not self.rootless:
                    raise
                self._attach(pid)
            return
        self._start_unit(pid)
        self._started = True
        # as runc: make sure the path exists and the controllers are enabled
        # on the way down, then the pid is in it (a slice unit gets it here)
        self.inner.create()
        self.inner.apply(pid)

    def open_fd(self) -> int:
        # once the unit exists (exec), its cgroup is the inner manager's
        return self.inner.open_fd() if self._started else -1

    def _attach(self, pid: int) -> None:
        """Rootless: have systemd move ``pid`` into the unit.  The kernel lets
        a process move between cgroups only through a common ancestor the
        mover may write, and from a login session's scope (root's) into the
        user manager's tree there is none for the user; the user's manager
        asks PID 1 to move processes it cannot move itself (AttachProcessesToUnit,
        systemd >= 238).  runc 1.1 leaves such an exec'd process outside."""
        try:
            self._systemd().call("AttachProcessesToUnit", "ssau", (self.unit, "", [pid]))
        except DBusError as e:
            raise CgroupError(f"cannot join systemd unit {self.unit}: {str(e).split(': ', 2)[-1]}") from None

    def _start_unit(self, pid: int) -> None:
        is_slice = self.unit.endswith(".slice")
        props: list[tuple[str, tuple[str, object]]] = [("Description", ("s", f"pyrunc container {self.container_id}"))]
        if is_slice:
            # a slice's parent follows from its name; Wants= keeps the parent up
            props.append(("Wants", ("as", [self.slice])))
        else:
            props += [("Slice", ("s", self.slice)), ("Delegate", ("b", True)), ("PIDs", ("au", [pid]))]
        props.append(("DefaultDependencies", ("b", False)))
        props += [
            ("MemoryAccounting", ("b", True)),
            ("CPUAccounting", ("b", True)),
            ("TasksAccounting", ("b", True)),
            ("IOAccounting" if self.version == 2 else "BlockIOAccounting", ("b", True)),
        ]
        props += self.properties  # annotations last: they may override ours
        bus = self._systemd()
        for attempt in (1, 2):
            try:
                result = bus.run_job("StartTransientUnit", "ssa(sv)a(sa(sv))", (self.unit, "replace", props, []))
                break
            except DBusError as e:
                why = str(e).split(": ", 2)[-1]
                if e.name == "org.freedesktop.systemd1.UnitExists" and attempt == 2:
                    # as runc >= 1.2: never join another container's unit
                    raise CgroupError(
                        f"cannot start systemd unit {self.unit}: the unit already exists ({why})"
                    ) from None
                if e.name != "org.freedesktop.systemd1.UnitExists":
                    raise CgroupError(f"cannot start systemd unit {self.unit}: {why}") from None
                # a failed unit of that name lingers until reset: reset, retry once
                self._reset_failed()
        if result != "done":
            self._reset_failed()
            raise CgroupError(f"cannot start systemd unit {self.unit}: job {result}")

    def set(self, resources, *, initial: bool = False) -> None:
        """Unit properties first (systemd keeps them across daemon-reload), then
        every limit in the files (what systemd cannot express, and what it did
        at once)."""
        resources = R.as_record(resources)
        props = resource_properties(resources, self.version, initial=initial)
        if self.rootless:
            # the user's instance may not attach device programs, and device
            # rules are not an unprivileged user's to set (runc ignores them)
            props = [p for p in props if p[0] not in ("DevicePolicy", "DeviceAllow")]
        # v1: systemd applies a device list by denying everything, then
        # allowing its entries one by one (and so does the v1 manager after
        # it); the container would see EPERM on /dev/null in between: a
        # running one, and at create the init, which mounts its rootfs
        # meanwhile ("rootfs: Operation not permitted" in the v1 box).  It is
        # frozen meanwhile (runc freezes around systemd's rewrite too).
        freeze = (
            self.version == 1
            and (initial or resources.devices is not None)
            and "freezer" in self.inner.paths()
            and not self.inner.is_frozen()
        )
        if freeze:
            self.inner.freeze()
        try:
            if props:
                bus = self._systemd()
                try:
                    bus.call("SetUnitProperties", "sba(sv)", (self.unit, True, props))
                    # systemd writes the new properties to the cgroup after its
                    # reply, from a queue it empties before it reads the next
                    # message: one more call returns once it has.  Without it its
                    # v1 device rewrite ("deny all" first) raced with our files
                    # and with the container's setup ("rootfs: Operation not
                    # permitted" on a later create in the v1 box).
                    bus.call("GetUnit", "s", (self.unit,))
                except DBusError as e:
                    raise CgroupError(
                        f"{F}: setting properties of systemd unit {self.unit}: {str(e).split(': ', 2)[-1]}"
                    ) from None
            self.inner.set(resources, initial=initial)
        finally:
            if freeze:
                self.inner.thaw()

    def destroy(self) -> None:
        """Stop the unit and reset it if it failed, so no unit is left; then
        remove whatever of the cgroup is left (systemd removes a scope's).

        A create that failed before it started the unit has nothing to undo:
        a unit of that name is someone else's (a live container's)."""
        if not self._started:
            return
        if systemd_running():
            bus = self._systemd()
            try:
                bus.run_job("StopUnit", "ss", (self.unit, "replace"))
            except DBusError as e:
                if e.name not in ("org.freedesktop.systemd1.NoSuchUnit", "org.freedesktop.systemd1.LoadFailed"):
                    raise
            self._reset_failed()
        self.inner.destroy()

    def _reset_failed(self) -> None:
        try:
            self._systemd().call("ResetFailedUnit", "s", (self.unit,))
        except DBusError:
            pass  # not failed or already gone: nothing to reset

    # -- the rest is the cgroup files --------------------------------------------
    def exists(self) -> bool:
        return self.inner.exists()

    def paths(self) -> dict[str, str]:
        return self.inner.paths() if self._started else {}

    def freeze(self) -> None:
        self.inner.freeze()

    def thaw(self) -> None:
        self.inner.thaw()

    def is_frozen(self) -> bool:
        return self.inner.is_frozen()

    def pids(self) -> list[int]:
        return self.inner.pids()

    def kill_all(self, sig: int) -> None:
        # not started by us (a failed create): the cgroup, if any, is not ours
        if not (self._started and self.inner.exists()):
            return
        try:
            self.inner.kill_all(sig)
        except CgroupError:
            # systemd removes a scope's cgroup once its last process exited:
            # nothing left to signal is not an error
            if self.inner.exists():
                raise

    def stats(self) -> dict:
        return self.inner.stats()

    def oom_kill_count(self) -> int:
        return self.inner.oom_kill_count()
