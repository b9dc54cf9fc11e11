"""linux.netDevices (pyrunc.netdev) against the real kernel.

Every network object here is made by the test and lives only in namespaces
the test creates: veth pairs / dummies with unique names, a "container"
network namespace and a "peer" one, each held by an ``unshare --net sleep``
child.  Fixtures remove links and kill the holders even when a test fails.

No physical NIC may be touched (and this VM's only one is its uplink), so the
physical-device paths are driven with a dummy whose record says "physical":
the netlink work (move back, rename, addresses, state) is the real one; only
the classification is forced.  The classifier itself is tested on virtual
links and on the host's real NIC (read-only).
"""

import json
import os
import shutil
import subprocess
import time
import uuid

import pytest

from pyrunc import netdev
from pyrunc.errors import ConfigError, PyruncError

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces")


# --- pure logic ----------------------------------------------------------------


@pytest.mark.parametrize(
    "name, ok",
    [
        ("eth0", True),
        ("a" * 15, True),
        ("ctr%d", True),
        ("x.y-z_1", True),
        ("a" * 16, False),
        ("", False),
        (".", False),
        ("..", False),
        ("a/b", False),
        ("a:b", False),
        ("a b", False),
        ("a\tb", False),
        (None, False),
    ],
)
def test_name_rules(name, ok):
    assert (netdev.name_problem(name) is None) == ok


def test_target_name_defaults_to_host_name():
    assert netdev.target_name("eth0", {}) == "eth0"
    assert netdev.target_name("eth0", None) == "eth0"
    assert netdev.target_name("eth0", {"name": ""}) == "eth0"
    assert netdev.target_name("eth0", {"name": "c0"}) == "c0"


def test_check_accepts_nothing_to_do():
    netdev.check(None, new_netns=False)
    netdev.check({}, new_netns=False)


def test_check_missing_device():
    with pytest.raises(ConfigError) as e:
        netdev.check({"nd-absent9": {}}, new_netns=True)
    assert str(e.value) == 'config.json: linux.netDevices["nd-absent9"]: no such network interface on the host'


def test_check_needs_new_netns():
    with pytest.raises(ConfigError, match=r"linux\.netDevices: .*new network namespace"):
        netdev.check({"lo": {}}, new_netns=False)


def test_check_rejects_the_runtime_netns_as_path():
    with pytest.raises(ConfigError, match="other than the runtime's"):
        netdev.check({"lo": {}}, new_netns=True, netns_path="/proc/self/ns/net")


def test_check_target_clash():
    # both exist on every host ("lo"), so only the clash can fail
    with pytest.raises(ConfigError) as e:
        netdev.check({"lo": {"name": "c0"}, "lo2": {"name": "c0"}}, new_netns=True)
    assert 'linux.netDevices["lo2"]: name "c0" is also the container name of linux.netDevices["lo"]' in str(e.value)


def test_check_clash_with_renamed_default():
    with pytest.raises(ConfigError, match=r'\["x0"\]: name "lo"'):
        netdev.check({"lo": {"name": "y"}, "x0": {"name": "lo"}}, new_netns=True)


def test_check_lo_exists_in_every_netns():
    with pytest.raises(ConfigError, match='name "lo" already exists'):
        netdev.check({"lo": {}}, new_netns=True)


@pytest.mark.parametrize(
    "devices, field",
    [
        ({"a/b": {}}, r'\["a/b"\]: host interface name'),
        ({"lo": {"name": "x" * 16}}, r'\["lo"\]\.name: .*longer than 15 bytes'),
        ({"lo": {"name": ".."}}, r'\["lo"\]\.name: \'\.\.\' is not allowed'),
        ({"lo": {"name": "a b"}}, r'\["lo"\]\.name: .*must not contain'),
        ({"lo": {"name": 3}}, r'\["lo"\]\.name: must be a string'),
        ({"lo": "eth0"}, r'\["lo"\]: must be an object'),
    ],
)
def test_check_bad_names(devices, field):
    with pytest.raises(ConfigError, match=field):
        netdev.check(devices, new_netns=True)


def test_check_not_an_object():
    with pytest.raises(ConfigError, match=r"linux\.netDevices: must be an object"):
        netdev.check(["eth0"], new_netns=True)


def test_supported():
    assert netdev.supported() is True


def test_import_is_cheap():
    out = subprocess.run(
        [os.sys.executable, "-c", "import sys, pyrunc.netdev; print('pyroute2' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
    )
    assert out.stdout.strip() == "False"


# --- kernel fixtures -------------------------------------------------------------


def _uid():
    return uuid.uuid4().hex[:6]


def ip(*args, ns=None, check=True):
    cmd = ["ip", *args]
    if ns is not None:
        cmd = ["nsenter", f"--net=/proc/{ns}/ns/net", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, check=check)


def ip_json(*args, ns=None):
    out = ip("-j", *args, ns=ns, check=False)
    return json.loads(out.stdout) if out.returncode == 0 and out.stdout.strip() else []


def link_info(name, ns=None):
    """{"flags", "addrs": {"a/p": scope}, "brd": {"a/p": broadcast}, "mtu", "mac"} or None if absent."""
    data = ip_json("addr", "show", "dev", name, ns=ns)
    if not data:
        return None
    d = data[0]
    addrs = [a for a in d.get("addr_info", []) if not a["local"].startswith("fe80:")]
    return {
        "flags": d["flags"],
        "mtu": d["mtu"],
        "mac": d.get("address"),
        "addrs": {f"{a['local']}/{a['prefixlen']}": a["scope"] for a in addrs},
        "brd": {f"{a['local']}/{a['prefixlen']}": a.get("broadcast") for a in addrs},
    }


@pytest.fixture
def netns():
    """Factory: a new network namespace held by a child; returns its pid."""
    holders = []

    def make():
        me = os.readlink("/proc/self/ns/net")
        p = subprocess.Popen(["unshare", "--net", "sleep", "600"])
        holders.append(p)
        deadline = time.monotonic() + 5
        while os.readlink(f"/proc/{p.pid}/ns/net") == me:
            assert time.monotonic() < deadline, "unshare did not enter a new netns"
            time.sleep(0.01)
        return p.pid

    make.holders = holders
    yield make
    for p in holders:
        if p.poll() is None:
            p.kill()
        p.wait()


@pytest.fixture
def host_links():
    """Names of links the test created on the host; deleted afterwards if still there."""
    names = []
    yield names
    for n in names:
        ip("link", "del", n, check=False)


@pytest.fixture
def nsfd():
    """Factory: an open fd to pid's network namespace (the lifecycle's handle on it)."""
    fds = {}

    def open_ns(pid):
        fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        fds.setdefault(pid, []).append(fd)
        return fd

    open_ns.fds = fds
    yield open_ns
    for pid_fds in fds.values():
        for fd in pid_fds:
            os.close(fd)


def kill_holder(netns_factory, nsfd_factory, pid):
    """End pid's namespace: close our fds to it (they keep it alive) and kill its holder."""
    for fd in nsfd_factory.fds.pop(pid, []):
        os.close(fd)
    for p in netns_factory.holders:
        if p.pid == pid:
            p.kill()
            p.wait()


def wait_gone(name, ns=None, timeout=5):
    deadline = time.monotonic() + timeout
    while link_info(name, ns) is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def veth_to_peer(host_links, peer_pid, host_addr, peer_addr):
    """A veth pair: host end (with host_addr, up) and the other end, up with peer_addr, in peer_pid's netns."""
    u = _uid()
    a, b = f"nda{u}", f"ndb{u}"
    host_links.extend([a, b])
    ip("link", "add", a, "type", "veth", "peer", "name", b)
    ip("link", "set", b, "netns", str(peer_pid))
    ip("addr", "add", peer_addr, "dev", b, ns=peer_pid)
    ip("link", "set", b, "up", ns=peer_pid)
    ip("addr", "add", host_addr, "dev", a)
    ip("link", "set", a, "up")
    return a


_STANDALONE_KIND = []


def standalone_kind():
    """A link type with no peer: "dummy" (what runc's tests use) or, on kernels without it, "ifb"."""
    if not _STANDALONE_KIND:
        for kind in ("dummy", "ifb"):
            probe = f"ndp{_uid()}"
            if ip("link", "add", probe, "type", kind, check=False).returncode == 0:
                ip("link", "del", probe, check=False)
                _STANDALONE_KIND.append(kind)
                break
        else:
            pytest.skip("kernel has neither dummy nor ifb links")
    return _STANDALONE_KIND[0]


def dummy(host_links, *addrs, up=True, mtu=None, mac=None):
    """A standalone virtual link on the host (see standalone_kind)."""
    kind = standalone_kind()
    name = f"ndd{_uid()}"
    host_links.append(name)
    ip("link", "add", name, "type", kind)
    if mtu:
        ip("link", "set", name, "mtu", str(mtu))
    if mac and kind == "dummy":  # ifb links cannot change their MAC
        ip("link", "set", name, "address", mac)
    for a in addrs:
        ip("addr", "add", *a.split(), "dev", name)
    if up:
        ip("link", "set", name, "up")
    return name


# --- move_in ---------------------------------------------------------------------


@needs_root
def test_move_in_renames_keeps_address_brings_up_and_traffic_flows(netns, nsfd, host_links):
    peer, ctr = netns(), netns()
    host = veth_to_peer(host_links, peer, "10.231.7.1/24", "10.231.7.2/24")
    devices = {host: {"name": "ctr0"}}
    netdev.check(devices, new_netns=True)

    records = netdev.move_in(devices, nsfd(ctr))

    assert link_info(host) is None  # gone from the host
    inside = link_info("ctr0", ns=ctr)
    assert inside is not None and "UP" in inside["flags"]
    assert inside["addrs"] == {"10.231.7.1/24": "global"}
    assert records == [
        {
            "host_name": host,
            "name": "ctr0",
            "kind": "virtual",
            "ifindex": records[0]["ifindex"],
            "mac": inside["mac"],
            "was_up": True,
            "addresses": [{"family": 2, "address": "10.231.7.1", "prefixlen": 24, "scope": 0, "broadcast": None}],
        }
    ]
    json.dumps(records)  # persisted in the state dir

    ping = subprocess.run(
        ["nsenter", f"--net=/proc/{ctr}/ns/net", "busybox", "ping", "-c1", "-W2", "10.231.7.2"],
        capture_output=True,
        text=True,
    )
    assert ping.returncode == 0, ping.stdout + ping.stderr


def in_netns(pid, fn):
    """Run fn() in a forked child that setns()s into pid's network namespace; return its bytes."""
    from pyrunc.linux import syscalls

    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        code = 0
        try:
            os.close(r)
            fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
            syscalls.setns(fd, syscalls.CLONE_NEWNET)
            os.write(w, fn())
        except BaseException as e:  # report, never return into pytest
            os.write(w, f"ERROR {e!r}".encode())
            code = 1
        os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        out = f.read()
    os.waitpid(child, 0)
    return out


@needs_root
def test_move_in_tcp_between_container_and_peer(netns, nsfd, host_links):
    import socket
    import threading

    peer, ctr = netns(), netns()
    host = veth_to_peer(host_links, peer, "10.231.8.1/24", "10.231.8.2/24")
    netdev.move_in({host: {"name": "eth0"}}, nsfd(ctr))
    received = []

    def serve():
        def accept_one():
            with socket.socket() as srv:
                srv.bind(("10.231.8.2", 7077))
                srv.listen(1)
                srv.settimeout(10)
                conn, addr = srv.accept()
                with conn:
                    return conn.recv(100) + b" from " + addr[0].encode()

        received.append(in_netns(peer, accept_one))

    t = threading.Thread(target=serve)
    t.start()

    def send():
        for _ in range(100):
            try:
                with socket.create_connection(("10.231.8.2", 7077), timeout=2) as c:
                    c.sendall(b"hello-from-container")
                    return b"sent"
            except ConnectionRefusedError:  # the server is not listening yet
                time.sleep(0.05)
        return b"never connected"

    assert in_netns(ctr, send) == b"sent"
    t.join(15)
    assert received == [b"hello-from-container from 10.231.8.1"]


@needs_root
def test_move_in_transfers_only_permanent_global_addresses(netns, nsfd, host_links):
    ctr = netns()
    dev = dummy(
        host_links,
        "10.231.9.1/24",
        "10.231.9.2/32 scope host",
        "fd00:231:9::1/64 nodad",
        "10.231.9.3/24 valid_lft 100 preferred_lft 100",
        mtu=1789,
        mac="02:00:00:23:19:01",
    )
    mac = link_info(dev)["mac"]
    records = netdev.move_in({dev: {}}, nsfd(ctr))
    inside = link_info(dev, ns=ctr)
    assert inside["addrs"] == {"10.231.9.1/24": "global", "fd00:231:9::1/64": "global"}
    assert inside["mtu"] == 1789 and inside["mac"] == mac
    assert "UP" in inside["flags"]
    saved = {(a["address"], a["scope"]) for a in records[0]["addresses"]}
    assert saved == {("10.231.9.1", 0), ("10.231.9.2", 254), ("fd00:231:9::1", 0)}


@needs_root
def test_move_in_gives_ipv4_the_subnet_broadcast_like_runc(netns, nsfd, host_links):
    """runc's netlink library adds a broadcast to re-added IPv4 addresses wider than /31."""
    ctr = netns()
    dev = dummy(host_links, "10.231.21.1/24", "10.231.22.1/31", "10.231.23.1/16 brd 10.231.23.9")
    netdev.move_in({dev: {"name": "c2"}}, nsfd(ctr))
    got = {
        (a["local"], a.get("broadcast"))
        for a in ip_json("addr", "show", "dev", "c2", ns=ctr)[0]["addr_info"]
        if a["family"] == "inet"
    }
    assert got == {("10.231.21.1", "10.231.21.255"), ("10.231.22.1", None), ("10.231.23.1", "10.231.255.255")}


@needs_root
def test_move_in_brings_up_a_device_that_was_down(netns, nsfd, host_links):
    ctr = netns()
    dev = dummy(host_links, "10.231.10.1/24", up=False)
    records = netdev.move_in({dev: {"name": "c1"}}, nsfd(ctr))
    assert records[0]["was_up"] is False
    assert "UP" in link_info("c1", ns=ctr)["flags"]


@needs_root
def test_move_in_name_template(netns, nsfd, host_links):
    ctr = netns()
    dev = dummy(host_links)
    records = netdev.move_in({dev: {"name": "tpl%d"}}, nsfd(ctr))
    assert records[0]["name"] == "tpl0"
    assert link_info("tpl0", ns=ctr) is not None


@needs_root
def test_move_in_clash_rolls_back_everything(netns, nsfd, host_links):
    ctr = netns()
    ip("link", "add", "taken0", "type", standalone_kind(), ns=ctr)  # a pre-made namespace's own device
    first = dummy(host_links, "10.231.11.1/24", "10.231.11.9/32 scope host")
    second = dummy(host_links, "10.231.12.1/24")
    before = {first: link_info(first), second: link_info(second)}

    with pytest.raises(ConfigError) as e:
        netdev.move_in({first: {"name": "c0"}, second: {"name": "taken0"}}, nsfd(ctr))

    assert str(e.value) == (
        f'config.json: linux.netDevices["{second}"]: name "taken0" already exists in the container network namespace'
    )
    assert {first: link_info(first), second: link_info(second)} == before
    assert link_info("c0", ns=ctr) is None


@needs_root
def test_move_in_missing_device_moves_nothing(netns, nsfd, host_links):
    ctr = netns()
    first = dummy(host_links, "10.231.13.1/24")
    before = link_info(first)
    with pytest.raises(ConfigError, match=r'\["nd-absent7"\]: no such network interface on the host'):
        netdev.move_in({first: {}, "nd-absent7": {}}, nsfd(ctr))
    assert link_info(first) == before


@needs_root
def test_move_in_unmovable_device_is_one_error(netns, nsfd, host_links):
    ctr = netns()
    bridge = f"ndr{_uid()}"  # bridges are local to their namespace
    host_links.append(bridge)
    ip("link", "add", bridge, "type", "bridge")
    ip("addr", "add", "10.231.20.1/24", "dev", bridge)
    ip("link", "set", bridge, "up")
    before = link_info(bridge)
    with pytest.raises(
        PyruncError,
        match=rf'linux\.netDevices\["{bridge}"\]: moving into the '
        r"container network namespace: Invalid argument$",
    ):
        netdev.move_in({bridge: {"name": "c9"}}, nsfd(ctr))
    after = link_info(bridge)
    assert after["addrs"] == before["addrs"] and "UP" in after["flags"]
    assert link_info("lo", ns=ctr) is not None and link_info("c9", ns=ctr) is None


# --- classification ----------------------------------------------------------------


@needs_root
def test_classification_of_virtual_links(netns, nsfd, host_links):
    ctr = netns()
    peer = netns()
    veth = veth_to_peer(host_links, peer, "10.231.14.1/24", "10.231.14.2/24")
    dev = dummy(host_links)
    kinds = {r["host_name"]: r["kind"] for r in netdev.move_in({veth: {}, dev: {}}, nsfd(ctr))}
    assert kinds == {veth: "virtual", dev: "virtual"}


def test_classification_of_a_real_nic():
    """Read-only: a NIC without a netlink link kind (virtio, e1000, ...) is physical."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        nics = [
            link for link in ipr.get_links() if os.path.exists(f"/sys/class/net/{link.get_attr('IFLA_IFNAME')}/device")
        ]
        if not nics:
            pytest.skip("no hardware-backed NIC on this machine")
        assert {netdev._link_kind(link) for link in nics} == {"physical"}


# --- move_out ----------------------------------------------------------------------


@needs_root
def test_virtual_devices_vanish_with_the_namespace(netns, nsfd, host_links):
    peer, ctr = netns(), netns()
    host = veth_to_peer(host_links, peer, "10.231.15.1/24", "10.231.15.2/24")
    peer_end = host_links[-1]
    records = netdev.move_in({host: {"name": "eth0"}}, nsfd(ctr))
    kill_holder(netns, nsfd, ctr)
    t = time.monotonic()
    netdev.move_out(records)  # nothing to do for a veth
    assert time.monotonic() - t < 1
    assert wait_gone(peer_end, ns=peer)  # the pair died with the namespace
    assert link_info(host) is None


@needs_root
def test_physical_device_pulled_out_of_a_live_namespace(netns, nsfd, host_links):
    ctr = netns()
    dev = dummy(
        host_links,
        "10.231.16.1/24",
        "fd00:231:16::1/64 nodad",
        "10.231.16.7/32 scope host",
        "10.231.24.1/16 brd 10.231.24.9",
    )
    before = link_info(dev)
    fd = nsfd(ctr)
    records = netdev.move_in({dev: {"name": "phys0"}}, fd)
    records[0]["kind"] = "physical"  # see module docstring

    netdev.move_out(records, fd)
    assert link_info("phys0", ns=ctr) is None
    assert link_info(dev) == before
    netdev.move_out(records, fd)  # idempotent
    assert link_info(dev) == before


@needs_root
def test_physical_device_returned_by_the_kernel_gets_its_name_and_addresses(netns, nsfd, host_links):
    ctr = netns()
    dev = dummy(host_links, "10.231.17.1/24", up=True)
    before = link_info(dev)
    records = netdev.move_in({dev: {"name": "phys1"}}, nsfd(ctr))
    records[0]["kind"] = "physical"
    # What the kernel does to a physical device of a dying namespace: back to
    # the initial namespace, container-side name, no addresses, down.
    ip("link", "set", "phys1", "down", ns=ctr)
    ip("link", "set", "phys1", "netns", str(os.getpid()), ns=ctr)
    host_links.append("phys1")
    kill_holder(netns, nsfd, ctr)
    assert "10.231.17.1" not in json.dumps(link_info("phys1"))

    netdev.move_out(records)  # the namespace is gone: no fd
    assert link_info("phys1") is None
    assert link_info(dev) == before
    netdev.move_out(records)
    assert link_info(dev) == before


@needs_root
def test_move_out_tolerates_a_stale_namespace_fd(netns, nsfd, host_links):
    ctr = netns()
    dev = dummy(host_links, "10.231.25.1/24")
    records = netdev.move_in({dev: {"name": "c3"}}, nsfd(ctr))
    records[0]["kind"] = "physical"
    stale = os.open("/dev/null", os.O_RDONLY)
    os.close(stale)  # a closed fd number
    netdev.move_out(records, stale, timeout=0.2)
    assert link_info("c3", ns=ctr) is not None  # untouched, nothing raised


@needs_root
def test_move_in_unreachable_namespace_is_one_error(host_links):
    dev = dummy(host_links, "10.231.26.1/24")
    before = link_info(dev)
    stale = os.open("/dev/null", os.O_RDONLY)
    os.close(stale)
    with pytest.raises(PyruncError, match=r"^config\.json: linux\.netDevices: cannot reach the container"):
        netdev.move_in({dev: {}}, stale)
    assert link_info(dev) == before


def test_computed_broadcast():
    assert netdev._computed_broadcast("10.1.2.3", 24) == "10.1.2.255"
    assert netdev._computed_broadcast("10.1.2.3", 30) == "10.1.2.3"
    assert netdev._computed_broadcast("10.1.2.3", 31) is None
    assert netdev._computed_broadcast("fd00::1", 64) is None


@needs_root
def test_move_out_tolerates_a_device_that_never_comes_back(netns, nsfd, host_links):
    ctr = netns()
    dev = dummy(host_links)
    records = netdev.move_in({dev: {}}, nsfd(ctr))
    records[0]["kind"] = "physical"
    kill_holder(netns, nsfd, ctr)  # a dummy is destroyed, not returned
    netdev.move_out(records, timeout=0.2)  # logs, does not raise
    assert link_info(dev) is None


# --- differential: what a container sees -----------------------------------------

RUNC = "/usr/sbin/runc"
MKBUNDLE = "/work/shared/tools/mkbundle.sh"


def _runc_has_netdevices():
    try:
        out = subprocess.run([RUNC, "features"], capture_output=True, text=True, timeout=10)
        return json.loads(out.stdout).get("linux", {}).get("netDevices", {}).get("enabled") is True
    except (OSError, ValueError, subprocess.SubprocessError):
        return False


def _bundle(path, netns_path=None, net_devices=None):
    subprocess.run([MKBUNDLE, str(path), "sh", "-c", "ip -o link; ip -o addr"], check=True, capture_output=True)
    cfg_path = path / "config.json"
    cfg = json.loads(cfg_path.read_text())
    for ns in cfg["linux"]["namespaces"]:
        if ns["type"] == "network" and netns_path:
            ns["path"] = netns_path
    if net_devices is not None:
        cfg["linux"]["netDevices"] = net_devices
    cfg["linux"]["cgroupsPath"] = f"/pyrunc-netdev-{path.name}"
    cfg_path.write_text(json.dumps(cfg))


def _run_runc(bundle, tmp_path, cid):
    root = tmp_path / "runc-root"
    root.mkdir(exist_ok=True)
    try:
        out = subprocess.run(
            [RUNC, "--root", str(root), "run", "--bundle", str(bundle), cid], capture_output=True, text=True, timeout=60
        )
    finally:
        subprocess.run([RUNC, "--root", str(root), "delete", "--force", cid], capture_output=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


def _container_view(ip_output, name):
    """What a container sees of one device in `ip -o link; ip -o addr`, ifindexes dropped:
    (name, flags, mtu, mac, sorted addresses), or None when the device is absent."""
    link, addrs = None, []
    for line in ip_output.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[1].split("@")[0].rstrip(":") != name:
            continue
        if fields[2].startswith("<"):
            link = (
                fields[2],
                fields[fields.index("mtu") + 1],
                fields[fields.index("link/ether") + 1] if "link/ether" in fields else None,
            )
        elif fields[2] in ("inet", "inet6") and not fields[3].startswith("fe80:"):
            addrs.append(" ".join(fields[2 : fields.index("scope") + 2]))
    return None if link is None else (name, *link, sorted(addrs))


needs_runc = pytest.mark.skipif(
    not (os.path.exists(RUNC) and os.path.exists(MKBUNDLE)), reason="runc or mkbundle.sh not present"
)


@needs_root
@needs_runc
def test_differential_container_view_against_runc(netns, nsfd, host_links, tmp_path):
    """The container sees the same device after move_in as after runc's own move.

    runc >= 1.4 moves the device itself; an older runc (this VM has 1.1.5)
    ignores netDevices, so its procedure is replayed with iproute2 exactly as
    runc performs it (down, move+rename in one request, re-add permanent
    global addresses, up) into a pre-made namespace that the runc container
    then joins.  The pyrunc side is move_in into another namespace, viewed
    through the same runc container.
    """
    spec = dict(mtu=1789, mac="02:00:00:23:18:01")
    addrs = ("10.231.18.1/24", "fd00:231:18::1/64 nodad", "10.231.18.5/32 scope host")
    ours, theirs = netns(), netns()
    dev_ours = dummy(host_links, *addrs, **spec)
    dev_theirs = dummy(host_links, *addrs, **spec)
    dev_mac_ours, dev_mac_theirs = link_info(dev_ours)["mac"], link_info(dev_theirs)["mac"]

    netdev.move_in({dev_ours: {"name": "ctr_dev"}}, nsfd(ours))

    if _runc_has_netdevices():
        b = tmp_path / "theirs"
        _bundle(b, f"/proc/{theirs}/ns/net", {dev_theirs: {"name": "ctr_dev"}})
        view_theirs = _run_runc(b, tmp_path, f"nd-theirs-{_uid()}")
    else:
        ip("link", "set", dev_theirs, "down")
        ip("link", "set", dev_theirs, "netns", str(theirs), "name", "ctr_dev")
        for a in addrs:
            if "scope host" not in a:  # runc's library: IPv4 gets its subnet broadcast
                brd = ["brd", "+"] if ":" not in a else []
                ip("addr", "add", *a.split(), *brd, "dev", "ctr_dev", ns=theirs)
        ip("link", "set", "ctr_dev", "up", ns=theirs)
        b = tmp_path / "theirs"
        _bundle(b, f"/proc/{theirs}/ns/net")
        view_theirs = _run_runc(b, tmp_path, f"nd-theirs-{_uid()}")

    b = tmp_path / "ours"
    _bundle(b, f"/proc/{ours}/ns/net")
    view_ours = _run_runc(b, tmp_path, f"nd-ours-{_uid()}")

    mine, reference = _container_view(view_ours, "ctr_dev"), _container_view(view_theirs, "ctr_dev")
    assert mine is not None, view_ours
    name, flags, mtu, mac, addresses = mine
    if mac != reference[3]:  # ifb cannot take the common MAC: compare each to its source
        assert (mac, reference[3]) == (dev_mac_ours, dev_mac_theirs)
        mine, reference = mine[:3] + mine[4:], reference[:3] + reference[4:]
    assert mine == reference
    assert ",UP" in flags and mtu == "1789"
    assert addresses == ["inet 10.231.18.1/24 brd 10.231.18.255 scope global", "inet6 fd00:231:18::1/64 scope global"]


@needs_root
@needs_runc
@pytest.mark.skipif(not _runc_has_netdevices(), reason="installed runc predates linux.netDevices (1.4)")
def test_differential_runc_leaves_devices_to_the_kernel(netns, host_links, tmp_path):
    """runc itself (>= 1.4) with a runc-created namespace: after delete a dummy is gone."""
    dev = dummy(host_links, "10.231.19.1/24")
    b = tmp_path / "b"
    _bundle(b, None, {dev: {"name": "ctr_dev"}})
    out = _run_runc(b, tmp_path, f"nd-runc-{_uid()}")
    assert "ctr_dev" in out and "10.231.19.1/24" in out
    assert wait_gone(dev) and wait_gone("ctr_dev")


def test_busybox_present():
    assert shutil.which("busybox") or os.path.exists("/bin/busybox")
