"""linux.netDevices: named host interfaces moved into the container's network namespace.

Life of a device (what runc >= 1.4 does, see docs/netdev.md):

create  ``convert`` (at conversion) checks the names, ``check`` the host,
        before anything is touched; ``move_in``
        sets each link down, saves its addresses, moves *and* renames it in one
        RTM_NEWLINK (so a temporary name can never clash on either side),
        re-adds the permanent global-scope addresses (the kernel drops every
        address when a link changes namespace) and sets the link up.
        All or nothing: a failure moves back what was moved.
delete  the kernel, not the runtime, takes devices out of a dying namespace:
        virtual links (veth, dummy, macvlan, ...) are destroyed, physical ones
        are pushed to the initial namespace under their container-side name,
        without addresses.  ``move_out`` restores such a returned physical
        device to its original name, addresses and link state, and only moves
        a device out explicitly when handed a still-live namespace.

Netlink goes through pyroute2, imported inside the functions: it costs ~0.2 s
and most runtime invocations never need it.  Sockets inside the container's
namespace are created by pyroute2 in a forked child that setns()s, so the
runtime process never leaves its own namespaces.
"""

import errno
from . import lightos as os  # os's calls without importing os (lightos.py)

from .errors import ConfigError, PyruncError

IFNAMSIZ = 16  # kernel buffer size, including the terminating NUL
IFF_UP = 0x1
IFA_F_PERMANENT = 0x80
RT_SCOPE_UNIVERSE = 0
RT_SCOPE_LINK = 253

KIND_PHYSICAL = "physical"
KIND_VIRTUAL = "virtual"

# How long move_out waits for the kernel's asynchronous namespace teardown to
# hand a physical device back to the initial namespace.
RETURN_TIMEOUT = 2.0

_FIELD = "config.json: linux.netDevices"


def _field(host_name):
    return f'{_FIELD}["{host_name}"]'


# --- validation --------------------------------------------------------------


def name_problem(name):
    """Why ``name`` is not a valid interface name (the kernel's dev_valid_name), or None."""
    if not isinstance(name, str):
        return "must be a string"
    if not name:
        return "must not be empty"
    if len(name.encode()) >= IFNAMSIZ:
        return f"{name!r} is longer than {IFNAMSIZ - 1} bytes"
    if name in (".", ".."):
        return f"{name!r} is not allowed"
    for ch in name:
        if ch in "/:" or ch.isspace():
            return f"{name!r} must not contain {ch!r}"
    return None


def target_name(host_name, options):
    """The name the device gets inside the container."""
    name = (options or {}).get("name")
    return name if name else host_name


def _is_template(name):
    # A trailing "%d" asks the kernel to pick a free name (spec, config-linux).
    return "%d" in name


def convert(net_devices):
    """linux.netDevices -> [config.model.NetDevice] (host name, container
    name), the names checked; raise ConfigError.  Config only: the host is
    judged by :func:`check`."""
    from .config.model import NetDevice

    if net_devices is None:
        return []
    if not isinstance(net_devices, dict):
        raise ConfigError(f"{_FIELD}: must be an object mapping host interface names to objects")
    out = []
    targets: dict[str, str] = {}  # container name -> host name
    for host_name, options in net_devices.items():
        problem = name_problem(host_name)
        if problem:
            raise ConfigError(f"{_field(host_name)}: host interface name {problem}")
        if options is None:
            options = {}
        if not isinstance(options, dict):
            raise ConfigError(f"{_field(host_name)}: must be an object")
        if "name" in options:
            problem = name_problem(options["name"])
            if problem:
                raise ConfigError(f"{_field(host_name)}.name: {problem}")
        name = target_name(host_name, options)
        if not _is_template(name):
            if name in targets:
                raise ConfigError(
                    f'{_field(host_name)}: name "{name}" is also the container name '
                    f'of linux.netDevices["{targets[name]}"]'
                )
            if name == "lo":
                raise ConfigError(f'{_field(host_name)}: name "lo" already exists in every network namespace')
            targets[name] = host_name
        out.append(NetDevice(host_name=host_name, name=name))
    return out


def _devices(net_devices):
    """A list of NetDevice records as it is; a linux.netDevices object converted."""
    from .config.model import NetDevice

    if isinstance(net_devices, list) and all(isinstance(d, NetDevice) for d in net_devices):
        return net_devices
    return convert(net_devices)


def check(net_devices, *, new_netns, netns_path=None):
    """Whether the devices (config.model.NetDevice list, or the
    linux.netDevices object) can be moved here, before anything is
    touched; raise ConfigError.

    ``new_netns``: the container gets a network namespace of its own (a
    ``network`` entry in linux.namespaces).  ``netns_path``: that entry's
    path, when it joins an existing namespace; it must not be the runtime's.
    """
    if not net_devices:
        return
    if not new_netns:
        raise ConfigError(
            f"{_FIELD}: moving network devices needs a new network namespace "
            f'(add {{"type": "network"}} to linux.namespaces)'
        )
    if netns_path and _same_netns(netns_path, "/proc/self/ns/net"):
        raise ConfigError(
            f"{_FIELD}: moving network devices needs a network namespace other "
            f"than the runtime's, but linux.namespaces network path {netns_path} is it"
        )
    devices = _devices(net_devices)
    from socket import if_nametoindex

    for dev in devices:
        try:
            if_nametoindex(dev.host_name)
        except OSError:
            raise ConfigError(f"{_field(dev.host_name)}: no such network interface on the host") from None


def _same_netns(a, b):
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def supported():
    """netDevices can be honoured here: pyroute2 is installed and the kernel has network namespaces."""
    import importlib.util

    return importlib.util.find_spec("pyroute2") is not None and os.path.exists("/proc/self/ns/net")


# --- netlink helpers (pyroute2 objects are passed in, never imported here) ----


def _netlink_error():
    from pyroute2 import NetlinkError

    return NetlinkError


def _link(ipr, index):
    links = ipr.get_links(index)
    return links[0] if links else None


def _link_kind(link):
    """ "virtual" when the link has rtnl_link_ops (a netlink-visible kind), else "physical".

    This is the kernel's own test when a namespace dies: devices with link ops
    are destroyed with it, the others go back to the initial namespace.  A
    physical device enslaved to a bond reports only a slave kind, so only
    IFLA_INFO_KIND counts.
    """
    info = link.get_attr("IFLA_LINKINFO")
    if info is not None and info.get_attr("IFLA_INFO_KIND"):
        return KIND_VIRTUAL
    return KIND_PHYSICAL


def _saved_addresses(ipr, index):
    """The link's permanent addresses: those a user configured, not autoconfigured ones."""
    import socket

    saved = []
    for msg in ipr.get_addr(index=index):
        flags = msg.get_attr("IFA_FLAGS")
        if flags is None:
            flags = msg["flags"]
        if not flags & IFA_F_PERMANENT:
            continue
        if msg["family"] == socket.AF_INET6 and msg["scope"] == RT_SCOPE_LINK:
            continue  # the kernel makes fe80:: itself whenever the link comes up
        address = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
        saved.append(
            {
                "family": msg["family"],
                "address": address,
                "prefixlen": msg["prefixlen"],
                "scope": msg["scope"],
                "broadcast": msg.get_attr("IFA_BROADCAST"),
            }
        )
    return saved


def _computed_broadcast(address, prefixlen):
    """runc's netlink library gives a re-added IPv4 address its subnet's broadcast (RFC 3021: not /31, /32)."""
    import ipaddress

    if prefixlen >= 31 or ":" in address:
        return None
    return str(ipaddress.ip_network(f"{address}/{prefixlen}", strict=False).broadcast_address)


def _add_addresses(ipr, index, addresses, *, in_container):
    """Re-add saved addresses: in the container the global ones the way runc does, on the host all as they were."""
    NetlinkError = _netlink_error()
    for a in addresses:
        if in_container:
            if a["scope"] != RT_SCOPE_UNIVERSE:
                continue
            broadcast = _computed_broadcast(a["address"], a["prefixlen"])
        else:
            broadcast = a.get("broadcast")
        extra = {"broadcast": broadcast} if broadcast else {}
        try:
            ipr.addr(
                "add",
                index=index,
                address=a["address"],
                prefixlen=a["prefixlen"],
                family=a["family"],
                scope=a["scope"],
                **extra,
            )
        except NetlinkError as e:
            if e.code != errno.EEXIST:
                raise


def _find_link(ipr, *, index=None, mac=None, names=()):
    """A link in ``ipr``'s namespace: by index when its MAC still matches, else by MAC and name."""
    if index is not None:
        link = None
        try:
            link = _link(ipr, index)
        except _netlink_error():
            pass
        if link is not None and (mac is None or link.get_attr("IFLA_ADDRESS") == mac):
            return link
    if mac is None and not names:
        return None
    for link in ipr.get_links():
        if mac is not None and link.get_attr("IFLA_ADDRESS") != mac:
            continue
        if names and not _name_matches(link, names):
            continue
        return link
    return None


def _name_matches(link, names):
    name = link.get_attr("IFLA_IFNAME")
    # "devN" is the kernel's fallback name for a device it returns from a dying
    # namespace when its own name is taken in the initial one.
    return name in names or (name.startswith("dev") and name[3:].isdigit())


def _open_runtime_netns():
    return os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)


# --- create ------------------------------------------------------------------


def move_in(net_devices, netns_fd):
    """Move each host interface into the namespace of ``netns_fd``; return records to persist.

    A record (JSON-serialisable) is
    ``{"host_name", "name", "kind", "ifindex", "mac", "was_up", "addresses"}``:
    the original and container-side names, "physical" or "virtual", the
    link's index and MAC inside the container (to find it again), whether it
    was up on the host, and its saved permanent addresses (each ``family``,
    ``address``, ``prefixlen``, ``scope``, ``broadcast``; only the
    global-scope ones are re-added in the container, all of them when it
    returns to the host).
    """
    net_devices = _devices(net_devices)
    if not net_devices:
        return []
    from pyroute2 import IPRoute

    NetlinkError = _netlink_error()

    try:
        inner = IPRoute(netns=netns_fd)
    except Exception as e:
        raise PyruncError(f"{_FIELD}: cannot reach the container network namespace: {e}") from e
    records = []
    with IPRoute() as host, inner:
        for dev in net_devices:
            host_name, name = dev.host_name, dev.name
            downed = None
            try:
                indexes = host.link_lookup(ifname=host_name)
                if not indexes:
                    raise ConfigError(f"{_field(host_name)}: no such network interface on the host")
                link = _link(host, indexes[0])
                record = {
                    "host_name": host_name,
                    "name": name,
                    "kind": _link_kind(link),
                    "ifindex": link["index"],
                    "mac": link.get_attr("IFLA_ADDRESS"),
                    "was_up": bool(link["flags"] & IFF_UP),
                    "addresses": _saved_addresses(host, link["index"]),
                }
                # Down first, as runc does: host services watching the link
                # see it go away cleanly rather than mid-rename.
                host.link("set", index=link["index"], state="down")
                downed = record
                # Move and rename in one request, as runc does.  The kernel
                # is not atomic about it: when the host name is free in the
                # container it moves the device first and only then renames
                # it, so a failed rename leaves the device inside (handled
                # in the except clause).
                host.link("set", index=link["index"], net_ns_fd=netns_fd, ifname=name)
                downed = None
                records.append(record)
                moved = _find_link(
                    inner, index=record["ifindex"], mac=record["mac"], names=() if _is_template(name) else (name,)
                )
                if moved is None:
                    raise PyruncError(
                        f"{_field(host_name)}: moved into the container network namespace but not found there"
                    )
                record["ifindex"] = moved["index"]
                record["name"] = moved.get_attr("IFLA_IFNAME")
                _add_addresses(inner, moved["index"], record["addresses"], in_container=True)
                # The spec (and runc) bring the device up whatever its host state.
                inner.link("set", index=moved["index"], state="up")
            except Exception as e:
                cause = _describe(e, host_name, name)
                if downed is not None and _find_link(host, index=downed["ifindex"], mac=downed["mac"]) is None:
                    # Gone from the host although the request failed: moved
                    # but not renamed.
                    stranded = _find_link(inner, mac=downed["mac"], names=(host_name, name))
                    if stranded is not None:
                        downed["ifindex"] = stranded["index"]
                        records.append(downed)
                        downed = None
                problems = _roll_back(host, inner, records, downed)
                if problems:
                    cause += "; rollback incomplete: " + "; ".join(problems)
                if isinstance(e, ConfigError) or (isinstance(e, NetlinkError) and e.code == errno.EEXIST):
                    raise ConfigError(cause) from e
                raise PyruncError(cause) from e
    return records


def _describe(e, host_name, name):
    if isinstance(e, PyruncError):
        return str(e)
    code = getattr(e, "code", None) or getattr(e, "errno", None)
    if code == errno.EEXIST:
        return f'{_field(host_name)}: name "{name}" already exists in the container network namespace'
    reason = os.strerror(code) if isinstance(code, int) and code > 0 else str(e)
    return f"{_field(host_name)}: moving into the container network namespace: {reason}"


def _roll_back(host, inner, records, downed):
    """Undo move_in: devices moved so far go home; return what could not be undone."""
    problems = []
    runtime_fd = _open_runtime_netns()
    try:
        if downed is not None and downed["was_up"]:
            try:
                host.link("set", index=downed["ifindex"], state="up")
            except Exception as e:
                problems.append(f"{downed['host_name']}: {e}")
        for record in reversed(records):
            try:
                _bring_home(host, inner, record, runtime_fd)
            except Exception as e:
                problems.append(f"{record['host_name']}: {e}")
    finally:
        os.close(runtime_fd)
    return problems


def _bring_home(host, inner, record, runtime_fd):
    """Move a device from the container namespace back to the runtime's, as it was before."""
    link = _find_link(inner, index=record["ifindex"], mac=record["mac"])
    if link is not None:
        inner.link("set", index=link["index"], state="down")
        inner.link("set", index=link["index"], net_ns_fd=runtime_fd, ifname=record["host_name"])
    _restore_on_host(host, record)


def _restore_on_host(host, record):
    """Give a device that is back in the runtime's namespace its name, addresses and state."""
    link = _find_link(host, mac=record["mac"], names=(record["host_name"], record["name"]))
    if link is None:
        return False
    index = link["index"]
    current = link.get_attr("IFLA_IFNAME")
    if current != record["host_name"]:
        host.link("set", index=index, state="down")
        try:
            host.link("set", index=index, ifname=record["host_name"])
        except _netlink_error() as e:
            if e.code != errno.EEXIST:
                raise
            _log().warning(
                'linux.netDevices["%s"]: the name is taken on the host; the device stays "%s"',
                record["host_name"],
                current,
            )
            return True
    _add_addresses(host, index, record["addresses"], in_container=False)
    if record["was_up"]:
        host.link("set", index=index, state="up")
    return True


# --- delete ------------------------------------------------------------------


def move_out(records, netns_fd=None, *, timeout=RETURN_TIMEOUT):
    """Put physical devices back on the host as they were; leave virtual ones to their namespace.

    ``netns_fd``: the container's network namespace when it is still alive
    and owned by the runtime; physical devices still in it are moved back
    explicitly.  Without it (the usual case at delete: the container's
    processes are gone and so is the namespace), the kernel has returned
    physical devices to the initial namespace under their container-side
    name; they are renamed back, get their addresses again and are set up if
    they were up.  Virtual devices are destroyed with the namespace.

    Idempotent; a device that cannot be found (its namespace is held by
    someone else, or the runtime is not in the initial namespace) is logged
    and skipped.
    """
    physical = [r for r in records or () if r.get("kind") == KIND_PHYSICAL]
    if not physical:
        return
    import time
    from pyroute2 import IPRoute

    with IPRoute() as host:
        if netns_fd is not None:
            _pull_out(host, physical, netns_fd)
        deadline = time.monotonic() + timeout
        pending = list(physical)
        while True:
            pending = [r for r in pending if not _restore_on_host(host, r)]
            if not pending or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        for record in pending:
            _log().warning(
                'linux.netDevices["%s"]: device "%s" did not come back to the host network namespace; left where it is',
                record["host_name"],
                record["name"],
            )


def _log():
    import logging

    return logging.getLogger(__name__)


def _pull_out(host, records, netns_fd):
    from pyroute2 import IPRoute

    try:
        inner = IPRoute(netns=netns_fd)
    except Exception as e:  # the namespace is gone or the fd is stale
        _log().debug("container network namespace not reachable: %s", e)
        return
    runtime_fd = _open_runtime_netns()
    try:
        with inner:
            for record in records:
                link = _find_link(inner, index=record["ifindex"], mac=record["mac"])
                if link is None:
                    continue
                inner.link("set", index=link["index"], state="down")
                try:
                    inner.link("set", index=link["index"], net_ns_fd=runtime_fd, ifname=record["host_name"])
                except _netlink_error() as e:
                    if e.code != errno.EEXIST:
                        raise
                    # The original name is taken on the host.  If the device
                    # came out under its container name, _restore_on_host
                    # reports it; if that name is taken too, it is still
                    # inside: bring it out as devN, as the kernel would.
                    if _find_link(inner, index=link["index"], mac=record["mac"]) is not None:
                        inner.link("set", index=link["index"], net_ns_fd=runtime_fd, ifname="dev%d")
    finally:
        os.close(runtime_fd)
