"""Pure cgroup v2 manager: one directory in the unified hierarchy."""

from pyrunc import lightos as os  # os's calls without importing os (lightos.py)
import time

from pyrunc.cgroups import CGROUP_ROOT, CgroupManager
from pyrunc.cgroups import fs
from pyrunc.errors import CgroupError

F = "linux.resources"  # resources.F; that module is loaded only by the methods writing limits


class V2Manager(CgroupManager):
    version = 2

    def __init__(self, path: str, container_id: str, directory: str, *, rootless=False, root: str = CGROUP_ROOT):
        super().__init__(path, container_id, rootless=rootless)
        self.dir = directory
        self.root = root

    @classmethod
    def resolve(cls, path, relative, container_id, *, rootless=False, root=CGROUP_ROOT):
        if relative:
            own = fs.own_cgroups().get("", "/")
            # runc uses the parent of its own cgroup: the own one usually holds
            # processes (the caller's shell/scope), so controllers could not be
            # enabled for a child of it (no internal processes rule).
            base = os.path.dirname(own.rstrip("/")) or "/"
            d = os.path.normpath(os.path.join(root, base.lstrip("/"), path))
        else:
            d = os.path.normpath(root + path)
        return cls(path, container_id, d, rootless=rootless, root=root)

    @classmethod
    def from_dict(cls, saved):
        return cls(
            saved.get("path", ""),
            saved.get("id", ""),
            saved["paths"][""],
            rootless=saved.get("rootless", False),
            root=saved.get("root", CGROUP_ROOT),
        )

    def to_dict(self):
        d = super().to_dict()
        d["root"] = self.root
        return d

    def paths(self):
        return {"": self.dir}

    def _file(self, name):
        return os.path.join(self.dir, name)

    # -- lifecycle -----------------------------------------------------------
    def create(self) -> None:
        rel = os.path.relpath(self.dir, self.root)
        if rel.startswith(".."):
            raise CgroupError(f"cgroup {self.dir} is outside {self.root}")
        levels = [] if rel == "." else rel.split("/")
        cur = self.root
        for name in levels:
            self._enable_controllers(cur)
            cur = os.path.join(cur, name)
            try:
                os.mkdir(cur)
            except FileExistsError:
                pass
            except PermissionError:
                if self.rootless:
                    return
                raise CgroupError(f"cannot create cgroup {cur}: permission denied") from None
            except OSError as e:
                raise CgroupError(f"cannot create cgroup {cur}: {e.strerror}") from None

    @staticmethod
    def _enable_controllers(parent: str) -> None:
        """Make every controller available in ``parent`` available to its children.

        Best effort: a parent holding processes refuses (EBUSY) and a delegated
        one may refuse some; the limits that need a missing controller then
        fail in ``set`` with the field named.
        """
        try:
            available = fs.read(os.path.join(parent, "cgroup.controllers")).split()
            enabled = fs.read(os.path.join(parent, "cgroup.subtree_control")).split()
        except OSError:
            return
        missing = [c for c in available if c not in enabled]
        if not missing:
            return
        path = os.path.join(parent, "cgroup.subtree_control")
        try:
            with open(path, "w") as f:
                f.write(" ".join("+" + c for c in missing))
        except OSError:
            for c in missing:  # one by one: keep those that work
                try:
                    with open(path, "w") as f:
                        f.write("+" + c)
                except OSError:
                    pass

    def apply(self, pid: int) -> None:
        try:
            fs.write(self.dir, "cgroup.procs", pid, f"cgroup {self.dir}")
        except CgroupError:
            if self.rootless and not os.access(self._file("cgroup.procs"), os.W_OK):
                return
            raise

    def open_fd(self) -> int:
        try:
            return os.open(self.dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return -1

    def exists(self) -> bool:
        return os.path.isdir(self.dir)

    def destroy(self) -> None:
        fs.rmdir_tree(self.dir)

    # -- processes -----------------------------------------------------------
    def pids(self) -> list[int]:
        return fs.procs_recursive(self.dir)

    def freeze(self) -> None:
        fs.write(self.dir, "cgroup.freeze", 1, "pause")
        deadline = time.monotonic() + 5
        while not self._events_flag("frozen"):
            if time.monotonic() > deadline:
                fs.write(self.dir, "cgroup.freeze", 0, "pause")
                raise CgroupError(f"pause: {self.dir} did not freeze within 5 s")
            time.sleep(0.005)

    def thaw(self) -> None:
        fs.write(self.dir, "cgroup.freeze", 0, "resume")
        deadline = time.monotonic() + 5
        while self._events_flag("frozen") and time.monotonic() < deadline:
            time.sleep(0.005)

    def is_frozen(self) -> bool:
        try:
            return fs.read(self._file("cgroup.freeze")) == "1"
        except OSError:
            return False

    def _events_flag(self, key: str) -> bool:
        return fs.read_kv(self._file("cgroup.events")).get(key, 0) == 1

    def kill_all(self, sig: int) -> None:
        import _signal  # not `signal`: its enum import costs ms on every command

        if sig == _signal.SIGKILL and os.path.exists(self._file("cgroup.kill")):
            fs.write(self.dir, "cgroup.kill", 1, "kill")
            # cgroup.kill is asynchronous: wait (briefly) until the cgroup is empty
            deadline = time.monotonic() + 2
            while self._events_flag("populated") and time.monotonic() < deadline:
                time.sleep(0.005)
            return
        was_frozen = self.is_frozen()
        try:
            if not was_frozen:
                self.freeze()
        except CgroupError:
            was_frozen = True  # could not freeze; signal anyway, don't thaw
        try:
            for pid in self.pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        finally:
            if not was_frozen:
                self.thaw()

    def oom_kill_count(self) -> int:
        return fs.read_kv(self._file("memory.events")).get("oom_kill", 0)

    # -- resources -----------------------------------------------------------
    SETTERS = (
        ("cpu", "_set_cpu", "present"),
        ("devices", "_set_devices", "initial"),
        ("memory", "_set_memory", "present"),
        ("pids", "_set_pids", "present"),
        ("blockIO", "_set_io", "present"),
        ("hugepageLimits", "_set_hugetlb", "nonempty"),
        ("network", "_refuse_network", "present"),
        ("rdma", "_set_rdma", "nonempty"),
        ("unified", "_set_unified", "present"),
    )

    def _refuse_network(self, network) -> None:
        if network.classID is not None or network.priorities:
            raise CgroupError(f"{F}.network: net_cls/net_prio (classID, priorities) do not exist on cgroup v2")

    def _set_rdma(self, rdma) -> None:
        from pyrunc.cgroups import resources as R

        for line, ff in R.rdma_lines(rdma):
            fs.write(self.dir, "rdma.max", line, ff)

    def _set_devices(self, rules) -> None:
        from pyrunc.cgroups import resources as R
        from pyrunc.cgroups import ebpf

        default_allow, effective = R.effective_device_rules(rules)
        try:
            ebpf.install(self.dir, default_allow, effective)
        except CgroupError:
            if self.rootless:
                return  # unprivileged users cannot attach BPF programs; expected
            raise

    def _set_memory(self, mem) -> None:
        from pyrunc.cgroups import resources as R

        f = F + ".memory"
        # swappiness has no v2 knob (like runc, ignored); kernel memory is
        # gone; v2 is always hierarchical
        limit = mem.limit or 0
        swap = mem.swap or 0
        reservation = mem.reservation
        swap_max = R.swap_to_v2(swap, limit)
        if mem.checkBeforeUpdate and limit > 0:
            usage = fs.read_int(self._file("memory.current"))
            if limit < usage:
                raise CgroupError(f"{f}.limit: {limit} is below the current usage {usage} (checkBeforeUpdate)")
        if swap_max is not None:
            if not os.path.exists(self._file("memory.swap.max")):
                if swap_max not in (-1, 0):
                    raise CgroupError(f"{f}.swap: swap accounting is not available (no memory.swap.max)")
            else:
                fs.write(self.dir, "memory.swap.max", R.v2_limit(swap_max), f + ".swap")
        if limit:
            fs.write(self.dir, "memory.max", R.v2_limit(limit), f + ".limit")
        if reservation:
            fs.write(self.dir, "memory.low", R.v2_limit(reservation), f + ".reservation")

    def _set_cpu(self, cpu) -> None:
        from pyrunc.cgroups import resources as R

        f = F + ".cpu"
        shares, quota, period, burst, idle = cpu.shares, cpu.quota, cpu.period, cpu.burst, cpu.idle
        if cpu.realtimeRuntime or cpu.realtimePeriod:
            raise CgroupError(f"{f}.realtimeRuntime: realtime scheduling limits do not exist on cgroup v2")
        if shares:
            fs.write(self.dir, "cpu.weight", R.cpu_shares_to_weight(shares), f + ".shares")
        if quota or period:
            value = str(quota) if quota and quota > 0 else "max"
            if period:
                value += f" {period}"
            fs.write(self.dir, "cpu.max", value, f + ".quota")
        if burst is not None:
            fs.write(self.dir, "cpu.max.burst", burst, f + ".burst")
        if idle is not None:
            fs.write(self.dir, "cpu.idle", idle, f + ".idle")
        if cpu.cpus:
            fs.write(self.dir, "cpuset.cpus", cpu.cpus, f + ".cpus")
        if cpu.mems:
            fs.write(self.dir, "cpuset.mems", cpu.mems, f + ".mems")

    def _set_pids(self, pids) -> None:
        f = F + ".pids"
        if pids.limit is None:
            return
        fs.write(self.dir, "pids.max", "max" if pids.limit < 0 else pids.limit, f + ".limit")

    def _set_io(self, bio) -> None:
        from pyrunc.cgroups import resources as R

        f = F + ".blockIO"
        if bio.leafWeight:
            raise CgroupError(f"{f}.leafWeight: does not exist on cgroup v2")
        # BFQ's io.bfq.weight takes blkio's own range; io.weight the converted one
        bfq = not os.path.exists(self._file("io.weight"))
        wfile = "io.bfq.weight" if bfq else "io.weight"
        conv = (lambda w: w) if bfq else R.blkio_weight_to_io_weight
        if bio.weight:
            fs.write(self.dir, wfile, f"default {conv(bio.weight)}" if not bfq else conv(bio.weight), f + ".weight")
        for i, wd in enumerate(bio.weightDevice or ()):
            ff = f"{f}.weightDevice[{i}]"
            if wd.leafWeight:
                raise CgroupError(f"{ff}.leafWeight: does not exist on cgroup v2")
            if wd.weight:
                fs.write(self.dir, wfile, f"{wd.major}:{wd.minor} {conv(wd.weight)}", ff + ".weight")
        keys = {
            "throttleReadBpsDevice": "rbps",
            "throttleWriteBpsDevice": "wbps",
            "throttleReadIOPSDevice": "riops",
            "throttleWriteIOPSDevice": "wiops",
        }
        for key, io_key in keys.items():
            for i, td in enumerate(getattr(bio, key) or ()):
                # 0 means "no limit" in the OCI lists (as in blkio v1)
                fs.write(self.dir, "io.max", f"{td.major}:{td.minor} {io_key}={td.rate or 'max'}", f"{f}.{key}[{i}]")

    def _set_hugetlb(self, limits) -> None:
        f = F + ".hugepageLimits"
        for i, h in enumerate(limits):
            ff = f"{f}[{i}]"
            fs.write(self.dir, f"hugetlb.{h.pageSize}.max", h.limit, ff)
            if os.path.exists(self._file(f"hugetlb.{h.pageSize}.rsvd.max")):
                fs.write(self.dir, f"hugetlb.{h.pageSize}.rsvd.max", h.limit, ff)

    def _set_unified(self, unified: dict) -> None:
        for key, value in unified.items():
            ff = f"{F}.unified.{key}"
            path = self._file(key)
            if not os.path.exists(path):
                controller = key.split(".", 1)[0]
                try:
                    enabled = fs.read(self._file("cgroup.controllers")).split()
                except OSError:
                    enabled = []
                if controller not in enabled and not key.startswith("cgroup."):
                    raise CgroupError(f"{ff}: the {controller} controller is not available in this cgroup")
                raise CgroupError(f"{ff}: {path} does not exist")
            fs.write(self.dir, key, value, ff)

    # -- stats ---------------------------------------------------------------
    def stats(self) -> dict:
        from pyrunc.cgroups import stats as S
        from pyrunc.linux import procfs

        out = S.skeleton()
        cpu = fs.read_kv(self._file("cpu.stat"))
        usage = out["cpu"]["usage"]
        usage["total"] = cpu.get("usage_usec", 0) * 1000
        usage["user"] = cpu.get("user_usec", 0) * 1000
        usage["kernel"] = cpu.get("system_usec", 0) * 1000
        out["cpu"]["throttling"] = {
            "periods": cpu.get("nr_periods", 0),
            "throttledPeriods": cpu.get("nr_throttled", 0),
            "throttledTime": cpu.get("throttled_usec", 0) * 1000,
        }
        psi = S.parse_psi(self._file("cpu.pressure"))
        if psi:
            out["cpu"]["psi"] = psi
        for key, fname in (("cpus", "cpuset.cpus.effective"), ("mems", "cpuset.mems.effective")):
            try:
                out["cpuset"][key] = procfs.parse_cpu_list(fs.read(self._file(fname)))
            except OSError:
                pass
        m = out["memory"]
        raw = fs.read_kv(self._file("memory.stat"))
        m["raw"] = raw
        m["cache"] = raw.get("file", 0)
        events = fs.read_kv(self._file("memory.events"))
        m["usage"] = S.memory_entry(
            limit=_limit(self._file("memory.max")),
            usage=fs.read_int(self._file("memory.current")),
            max_=fs.read_int(self._file("memory.peak")),
            failcnt=events.get("max", 0),
        )
        m["swap"] = S.memory_entry(
            limit=_limit(self._file("memory.swap.max")),
            usage=fs.read_int(self._file("memory.swap.current")),
            max_=fs.read_int(self._file("memory.swap.peak")),
        )
        m["event_count"] = {k: events.get(k, 0) for k in ("low", "high", "max", "oom", "oom_kill")}
        psi = S.parse_psi(self._file("memory.pressure"))
        if psi:
            m["psi"] = psi
        out["pids"] = {"current": fs.read_int(self._file("pids.current")), "limit": fs.read_int(self._file("pids.max"))}
        b = out["blkio"]
        rbytes: list[dict] = []
        wbytes: list[dict] = []
        rios: list[dict] = []
        wios: list[dict] = []
        try:
            with open(self._file("io.stat")) as fh:
                for line in fh:
                    dev, *kvs = line.split()
                    major, _, minor = dev.partition(":")
                    vals = dict(kv.split("=", 1) for kv in kvs if "=" in kv)
                    for lst, k, op in (
                        (rbytes, "rbytes", "Read"),
                        (wbytes, "wbytes", "Write"),
                        (rios, "rios", "Read"),
                        (wios, "wios", "Write"),
                    ):
                        lst.append({"major": int(major), "minor": int(minor), "op": op, "value": int(vals.get(k, 0))})
        except OSError:
            pass
        if rbytes:
            b["ioServiceBytesRecursive"] = rbytes + wbytes
            b["ioServicedRecursive"] = rios + wios
        psi = S.parse_psi(self._file("io.pressure"))
        if psi:
            b["psi"] = psi
        try:
            names = os.listdir(self.dir)
        except OSError:
            names = []
        for name in sorted(names):
            if name.startswith("hugetlb.") and name.endswith(".max") and ".rsvd." not in name:
                size = name[len("hugetlb.") : -len(".max")]
                pre = self._file(f"hugetlb.{size}.")
                out["hugetlb"][size] = {
                    "usage": fs.read_int(pre + "current"),
                    "failcnt": fs.read_kv(pre + "events").get("max", 0),
                }
        return S.prune(out)


def _limit(path: str) -> int:
    """A v2 limit file as runc reports it: "max" is the largest uint64."""
    try:
        s = fs.read(path)
    except OSError:
        return 0
    return 2**64 - 1 if s == "max" else int(s)
