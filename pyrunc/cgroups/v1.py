"""cgroup v1 (and hybrid) manager: one directory per mounted controller hierarchy."""

from pyrunc import lightos as os  # os's calls without importing os (lightos.py)
import time

from pyrunc.cgroups import CGROUP_ROOT, CgroupManager, mounts_of_call
from pyrunc.cgroups import fs
from pyrunc.errors import CgroupError

F = "linux.resources"  # resources.F; that module is loaded only by the methods writing limits


def hierarchies(root: str = CGROUP_ROOT) -> list[dict]:
    """Mounted v1 hierarchies under ``root``: [{mountpoint, root, controllers}]."""
    from pyrunc.linux import procfs  # only at create (delete loads this module too)

    found = {}
    for m in mounts_of_call(root):
        if m["fstype"] != "cgroup":
            continue
        mp = m["mountpoint"]
        if not (mp == root or mp.startswith(root.rstrip("/") + "/")):
            continue
        ctrls = [o for o in procfs.cgroup_v1_hierarchy_names(m) if not o.startswith("release_agent=")]
        if not ctrls:
            continue
        found[mp] = {"mountpoint": mp, "root": m["root"], "controllers": ctrls}
    return list(found.values())


class V1Manager(CgroupManager):
    version = 1

    def __init__(self, path: str, container_id: str, dirs: dict[str, str], *, rootless: bool = False):
        super().__init__(path, container_id, rootless=rootless)
        self._paths = dirs  # controller -> absolute dir (co-mounted controllers share one)

    # -- construction --------------------------------------------------------
    @classmethod
    def resolve(cls, path: str, relative: bool, container_id: str, *, rootless=False, root=CGROUP_ROOT):
        own = fs.own_cgroups() if relative else {}
        dirs = {}
        for h in hierarchies(root):
            mp = h["mountpoint"]
            for c in h["controllers"]:
                if relative:
                    mine = own.get(c)
                    if mine is None:
                        continue
                    mroot = h["root"]
                    if mroot != "/" and (mine == mroot or mine.startswith(mroot + "/")):
                        mine = mine[len(mroot) :] or "/"
                    d = os.path.normpath(os.path.join(mp, mine.lstrip("/"), path))
                else:
                    d = os.path.normpath(mp + path)
                dirs[c] = d
        if not dirs:
            raise CgroupError(f"no cgroup v1 hierarchy is mounted under {root}")
        # A hybrid host also has the (controller-less) v2 hierarchy, which
        # systemd uses to track processes: the container gets a cgroup there
        # too, as with runc (key "").
        for m in mounts_of_call(root):
            if m["fstype"] == "cgroup2" and m["mountpoint"].startswith(root.rstrip("/") + "/"):
                mp = m["mountpoint"]
                if relative:
                    mine = own.get("", "/")
                    mroot = m["root"]
                    if mroot != "/" and (mine == mroot or mine.startswith(mroot + "/")):
                        mine = mine[len(mroot) :] or "/"
                    dirs[""] = os.path.normpath(os.path.join(mp, mine.lstrip("/"), path))
                else:
                    dirs[""] = os.path.normpath(mp + path)
                break
        return cls(path, container_id, dirs, rootless=rootless)

    @classmethod
    def from_dict(cls, saved: dict):
        return cls(
            saved.get("path", ""), saved.get("id", ""), dict(saved["paths"]), rootless=saved.get("rootless", False)
        )

    def paths(self) -> dict[str, str]:
        return dict(self._paths)

    def _dirs(self) -> list[str]:
        seen = []
        for d in self._paths.values():
            if d not in seen:
                seen.append(d)
        return seen

    def _dir(self, controller: str, field: str) -> str:
        d = self._paths.get(controller)
        if d is None:
            raise CgroupError(f"{field}: the {controller} cgroup controller is not mounted")
        return d

    # -- lifecycle -----------------------------------------------------------
    def create(self) -> None:
        for c, d in list(self._paths.items()):
            try:
                if c == "cpuset":
                    self._mkdir_cpuset(d)
                else:
                    os.makedirs(d, exist_ok=True)
            except PermissionError:
                if self.rootless:
                    del self._paths[c]  # not ours to manage; limits on it will fail clearly
                    continue
                raise CgroupError(f"cannot create cgroup {d}: permission denied") from None
            except OSError as e:
                raise CgroupError(f"cannot create cgroup {d}: {e.strerror}") from None

    @staticmethod
    def _mkdir_cpuset(d: str) -> None:
        # A cpuset cgroup with empty cpuset.cpus or cpuset.mems refuses tasks
        # (ENOSPC) and so refuses children's values too; a new one starts
        # empty.  Every level from the hierarchy's root down to ``d`` must be
        # filled before anything joins: the levels made here and the ones
        # someone else made empty (a pod cgroup made with a plain mkdir).
        # Top-down, each empty value is copied from its parent, filled by then.
        levels = []
        p = d
        while True:
            parent = os.path.dirname(p)
            if parent == p:
                break
            # the root of the hierarchy is the first existing level whose
            # parent is not a cpuset cgroup
            if os.path.isdir(p) and not os.path.exists(os.path.join(parent, "cpuset.cpus")):
                break
            levels.append(p)
            p = parent
        for level in reversed(levels):
            try:
                os.mkdir(level)
            except FileExistsError:
                pass
            parent = os.path.dirname(level)
            for f in ("cpuset.cpus", "cpuset.mems"):
                if fs.read(os.path.join(level, f)) == "":
                    fs.write(level, f, fs.read(os.path.join(parent, f)), f"cpuset {level}")

    def apply(self, pid: int) -> None:
        for d in self._dirs():
            try:
                fs.write(d, "cgroup.procs", pid, f"cgroup {d}")
            except CgroupError:
                if self.rootless:
                    continue
                raise

    def exists(self) -> bool:
        return any(os.path.isdir(d) for d in self._dirs())

    def destroy(self) -> None:
        for d in self._dirs():
            fs.rmdir_tree(d)

    # -- processes -----------------------------------------------------------
    def _any_dir(self) -> str:
        for c in ("freezer", "pids", "memory", "devices", "cpu", "name=systemd"):
            if c in self._paths:
                return self._paths[c]
        return self._dirs()[0]

    def pids(self) -> list[int]:
        return fs.procs_recursive(self._any_dir())

    def freeze(self) -> None:
        d = self._dir("freezer", "pause")
        # FREEZING -> FROZEN may take a while; rewrite periodically, as a task
        # that was forking may have escaped the first pass.
        deadline = time.monotonic() + 5
        while True:
            fs.write(d, "freezer.state", "FROZEN", "pause")
            for _ in range(10):
                if fs.read(os.path.join(d, "freezer.state")) == "FROZEN":
                    return
                time.sleep(0.01)
            if time.monotonic() > deadline:
                fs.write(d, "freezer.state", "THAWED", "pause")
                raise CgroupError(f"pause: {d} did not freeze within 5 s")

    def thaw(self) -> None:
        d = self._dir("freezer", "resume")
        fs.write(d, "freezer.state", "THAWED", "resume")

    def is_frozen(self) -> bool:
        d = self._paths.get("freezer")
        if d is None:
            return False
        try:
            return fs.read(os.path.join(d, "freezer.state")) == "FROZEN"
        except OSError:
            return False

    def kill_all(self, sig: int) -> None:
        import _signal  # not `signal`: its enum import costs ms on every command

        # Freeze so that nothing forks between listing and signalling.  A
        # cgroup that was paused stays paused, except for SIGKILL, which v1
        # only delivers once the tasks are thawed.
        was_frozen = self.is_frozen()
        froze = False
        # signal 0 delivers nothing (an existence check): no need to stop forks
        if sig and not was_frozen and "freezer" in self._paths and os.path.isdir(self._paths["freezer"]):
            try:
                self.freeze()
                froze = True
            except CgroupError:
                pass
        try:
            for pid in self.pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        finally:
            if froze or (was_frozen and sig == _signal.SIGKILL):
                self.thaw()

    def oom_kill_count(self) -> int:
        d = self._paths.get("memory")
        if d is None:
            return 0
        return fs.read_kv(os.path.join(d, "memory.oom_control")).get("oom_kill", 0)

    # -- resources -----------------------------------------------------------
    SETTERS = (
        ("unified", "_refuse_unified", "nonempty"),
        ("cpu", "_set_cpuset", "present"),
        ("devices", "_set_devices", "initial"),
        ("memory", "_set_memory", "present"),
        ("cpu", "_set_cpu", "present"),
        ("pids", "_set_pids", "present"),
        ("blockIO", "_set_blkio", "present"),
        ("hugepageLimits", "_set_hugetlb", "nonempty"),
        ("network", "_set_network", "present"),
        ("rdma", "_set_rdma", "nonempty"),
    )

    def _refuse_unified(self, unified) -> None:
        raise CgroupError(f"{F}.unified: cgroup v2 settings cannot be applied on a cgroup v1 host")

    def _set_cpuset(self, cpu) -> None:
        f = F + ".cpu"
        for key, fname, v in (("cpus", "cpuset.cpus", cpu.cpus), ("mems", "cpuset.mems", cpu.mems)):
            if v:
                fs.write(self._dir("cpuset", f"{f}.{key}"), fname, v, f"{f}.{key}")

    def _set_devices(self, rules) -> None:
        from pyrunc.cgroups import resources as R

        f = F + ".devices"
        default_allow, effective = R.effective_device_rules(rules)
        d = self._paths.get("devices")
        if d is None:
            if self.rootless:
                return
            raise CgroupError(f"{f}: the devices cgroup controller is not mounted")
        try:
            writes = [("devices.allow" if default_allow else "devices.deny", "a")]
            writes += [("devices.allow" if rule.allow else "devices.deny", rule.v1_line()) for rule in effective]
            fs.write_each(d, writes, f)
        except CgroupError:
            if self.rootless:
                return  # an unprivileged user cannot change device rules; expected
            raise

    def _set_memory(self, mem) -> None:
        f = F + ".memory"
        limit = mem.limit or 0
        swap = mem.swap or 0
        reservation = mem.reservation
        swappiness = mem.swappiness
        kernel_tcp = mem.kernelTCP
        disable_oom = mem.disableOOMKiller
        use_hierarchy = mem.useHierarchy
        check = mem.checkBeforeUpdate
        if not (
            limit
            or swap
            or reservation
            or kernel_tcp
            or disable_oom
            or swappiness is not None
            or use_hierarchy is not None
        ):
            return
        d = self._dir("memory", f)
        if check and limit > 0:
            usage = fs.read_int(os.path.join(d, "memory.usage_in_bytes"))
            if limit < usage:
                raise CgroupError(f"{f}.limit: {limit} is below the current usage {usage} (checkBeforeUpdate)")
        if limit == -1 and swap == 0:
            swap = -1  # unlimited memory without a swap setting: unlimited swap too
        has_memsw = os.path.exists(os.path.join(d, "memory.memsw.limit_in_bytes"))
        if swap and not has_memsw:
            if swap != -1:
                raise CgroupError(
                    f"{f}.swap: swap accounting is not enabled in the kernel (no memory.memsw.limit_in_bytes)"
                )
            swap = 0
        if limit and swap:
            # memsw must stay >= limit at every step: raise whichever must go first.
            current = fs.read_int(os.path.join(d, "memory.limit_in_bytes"))
            if swap == -1 or current < swap:
                fs.write(d, "memory.memsw.limit_in_bytes", swap, f + ".swap")
                fs.write(d, "memory.limit_in_bytes", limit, f + ".limit")
            else:
                fs.write(d, "memory.limit_in_bytes", limit, f + ".limit")
                fs.write(d, "memory.memsw.limit_in_bytes", swap, f + ".swap")
        elif limit:
            fs.write(d, "memory.limit_in_bytes", limit, f + ".limit")
        elif swap:
            fs.write(d, "memory.memsw.limit_in_bytes", swap, f + ".swap")
        if reservation:
            fs.write(d, "memory.soft_limit_in_bytes", reservation, f + ".reservation")
        if kernel_tcp:
            fs.write(d, "memory.kmem.tcp.limit_in_bytes", kernel_tcp, f + ".kernelTCP")
        if swappiness is not None:
            fs.write(d, "memory.swappiness", swappiness, f + ".swappiness")
        if disable_oom:
            fs.write(d, "memory.oom_control", 1, f + ".disableOOMKiller")
        if use_hierarchy is not None:
            current = fs.read_int(os.path.join(d, "memory.use_hierarchy"), 1)
            if current != int(use_hierarchy):
                fs.write(d, "memory.use_hierarchy", int(use_hierarchy), f + ".useHierarchy")

    def _set_cpu(self, cpu) -> None:
        f = F + ".cpu"
        shares, quota, period, burst = cpu.shares, cpu.quota, cpu.period, cpu.burst
        rt_runtime, rt_period, idle = cpu.realtimeRuntime, cpu.realtimePeriod, cpu.idle
        if not any(v is not None for v in (shares, quota, period, burst, rt_runtime, rt_period, idle)):
            return
        d = self._dir("cpu", f)
        if shares:
            fs.write(d, "cpu.shares", shares, f + ".shares")
            got = fs.read_int(os.path.join(d, "cpu.shares"))
            if got != shares:
                raise CgroupError(f"{f}.shares: {shares} is out of range (the kernel set {got})")
        if period:
            try:
                fs.write(d, "cpu.cfs_period_us", period, f + ".period")
            except CgroupError:
                # the old quota may not fit the new period: set quota first, then retry
                if not quota:
                    raise
                fs.write(d, "cpu.cfs_quota_us", quota, f + ".quota")
        if quota:
            fs.write(d, "cpu.cfs_quota_us", quota, f + ".quota")
            if period:
                fs.write(d, "cpu.cfs_period_us", period, f + ".period")
        if burst is not None:
            fs.write(d, "cpu.cfs_burst_us", burst, f + ".burst")
        if rt_period:
            fs.write(d, "cpu.rt_period_us", rt_period, f + ".realtimePeriod")
        if rt_runtime:
            fs.write(d, "cpu.rt_runtime_us", rt_runtime, f + ".realtimeRuntime")
        if idle is not None:
            fs.write(d, "cpu.idle", idle, f + ".idle")

    def _set_pids(self, pids) -> None:
        f = F + ".pids"
        limit = pids.limit
        if limit is None:
            return
        # 0 is a real limit (no new tasks); negative means unlimited
        fs.write(self._dir("pids", f), "pids.max", "max" if limit < 0 else limit, f + ".limit")

    def _set_blkio(self, bio) -> None:
        f = F + ".blockIO"
        weight, leaf, devs = bio.weight, bio.leafWeight, bio.weightDevice or []
        lists = {k: getattr(bio, k) or [] for k in bio.THROTTLE_KEYS}
        if not (weight or leaf or devs or any(lists.values())):
            return
        d = self._dir("blkio", f)
        bfq = not os.path.exists(os.path.join(d, "blkio.weight"))
        wfile = "blkio.bfq.weight" if bfq else "blkio.weight"
        if weight:
            fs.write(d, wfile, weight, f + ".weight")
        if leaf:
            fs.write(d, "blkio.leaf_weight", leaf, f + ".leafWeight")
        for i, wd in enumerate(devs):
            ff = f"{f}.weightDevice[{i}]"
            if wd.weight:
                fs.write(d, wfile + "_device", f"{wd.major}:{wd.minor} {wd.weight}", ff + ".weight")
            if wd.leafWeight:
                fs.write(d, "blkio.leaf_weight_device", f"{wd.major}:{wd.minor} {wd.leafWeight}", ff + ".leafWeight")
        files = {
            "throttleReadBpsDevice": "blkio.throttle.read_bps_device",
            "throttleWriteBpsDevice": "blkio.throttle.write_bps_device",
            "throttleReadIOPSDevice": "blkio.throttle.read_iops_device",
            "throttleWriteIOPSDevice": "blkio.throttle.write_iops_device",
        }
        for key, entries in lists.items():
            for i, td in enumerate(entries):
                fs.write(d, files[key], f"{td.major}:{td.minor} {td.rate}", f"{f}.{key}[{i}]")

    def _set_hugetlb(self, limits) -> None:
        f = F + ".hugepageLimits"
        d = self._dir("hugetlb", f)
        for i, h in enumerate(limits):
            ff = f"{f}[{i}]"
            fs.write(d, f"hugetlb.{h.pageSize}.limit_in_bytes", h.limit, ff)
            if os.path.exists(os.path.join(d, f"hugetlb.{h.pageSize}.rsvd.limit_in_bytes")):
                fs.write(d, f"hugetlb.{h.pageSize}.rsvd.limit_in_bytes", h.limit, ff)

    def _set_network(self, net) -> None:
        f = F + ".network"
        if net.classID is not None:
            fs.write(self._dir("net_cls", f + ".classID"), "net_cls.classid", net.classID, f + ".classID")
        for i, p in enumerate(net.priorities or ()):
            ff = f"{f}.priorities[{i}]"
            fs.write(self._dir("net_prio", ff), "net_prio.ifpriomap", f"{p.name} {p.priority}", ff)

    def _set_rdma(self, rdma) -> None:
        from pyrunc.cgroups import resources as R

        d = self._dir("rdma", F + ".rdma")
        for line, ff in R.rdma_lines(rdma):
            fs.write(d, "rdma.max", line, ff)

    # -- stats ---------------------------------------------------------------
    def stats(self) -> dict:
        from pyrunc.cgroups import stats as S

        out = S.skeleton()
        p = self._paths
        if "cpuacct" in p:
            d = p["cpuacct"]
            usage = out["cpu"]["usage"]
            usage["total"] = fs.read_int(os.path.join(d, "cpuacct.usage"))
            for key, fname in (
                ("percpu", "cpuacct.usage_percpu"),
                ("percpu_kernel", "cpuacct.usage_percpu_sys"),
                ("percpu_user", "cpuacct.usage_percpu_user"),
            ):
                try:
                    usage[key] = [int(x) for x in fs.read(os.path.join(d, fname)).split()]
                except OSError:
                    pass
            ticks = fs.read_kv(os.path.join(d, "cpuacct.stat"))
            hz = os.sysconf("SC_CLK_TCK") or 100
            usage["user"] = ticks.get("user", 0) * 1_000_000_000 // hz
            usage["kernel"] = ticks.get("system", 0) * 1_000_000_000 // hz
        if "cpu" in p:
            st = fs.read_kv(os.path.join(p["cpu"], "cpu.stat"))
            out["cpu"]["throttling"] = {
                "periods": st.get("nr_periods", 0),
                "throttledPeriods": st.get("nr_throttled", 0),
                "throttledTime": st.get("throttled_time", 0),
            }
        if "cpuset" in p:
            from pyrunc.linux import procfs

            cs = out["cpuset"]
            d = p["cpuset"]
            for key, fname in (("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")):
                try:
                    cs[key] = procfs.parse_cpu_list(fs.read(os.path.join(d, fname)))
                except OSError:
                    pass
            for key in (
                "cpu_exclusive",
                "mem_hardwall",
                "mem_exclusive",
                "memory_migrate",
                "memory_spread_page",
                "memory_spread_slab",
                "memory_pressure",
                "sched_load_balance",
                "sched_relax_domain_level",
            ):
                cs[key] = fs.read_int(os.path.join(d, "cpuset." + key))
        if "memory" in p:
            d = p["memory"]
            m = out["memory"]
            raw = fs.read_kv(os.path.join(d, "memory.stat"))
            m["raw"] = raw
            m["cache"] = raw.get("cache", 0)
            for key, prefix in (
                ("usage", "memory."),
                ("swap", "memory.memsw."),
                ("kernel", "memory.kmem."),
                ("kernelTCP", "memory.kmem.tcp."),
            ):
                m[key] = S.memory_entry(
                    limit=fs.read_int(os.path.join(d, prefix + "limit_in_bytes")),
                    usage=fs.read_int(os.path.join(d, prefix + "usage_in_bytes")),
                    max_=fs.read_int(os.path.join(d, prefix + "max_usage_in_bytes")),
                    failcnt=fs.read_int(os.path.join(d, prefix + "failcnt")),
                )
            oc = fs.read_kv(os.path.join(d, "memory.oom_control"))
            m["event_count"]["oom_kill"] = oc.get("oom_kill", 0)
        if "pids" in p:
            d = p["pids"]
            out["pids"] = {
                "current": fs.read_int(os.path.join(d, "pids.current")),
                "limit": fs.read_int(os.path.join(d, "pids.max")),
            }
        if "blkio" in p:
            d = p["blkio"]
            b = out["blkio"]
            for key, names in (
                (
                    "ioServiceBytesRecursive",
                    (
                        "blkio.io_service_bytes_recursive",
                        "blkio.throttle.io_service_bytes_recursive",
                        "blkio.throttle.io_service_bytes",
                    ),
                ),
                (
                    "ioServicedRecursive",
                    (
                        "blkio.io_serviced_recursive",
                        "blkio.throttle.io_serviced_recursive",
                        "blkio.throttle.io_serviced",
                    ),
                ),
                ("ioQueueRecursive", ("blkio.io_queued_recursive",)),
                ("ioServiceTimeRecursive", ("blkio.io_service_time_recursive",)),
                ("ioWaitTimeRecursive", ("blkio.io_wait_time_recursive",)),
                ("ioMergedRecursive", ("blkio.io_merged_recursive",)),
                ("ioTimeRecursive", ("blkio.time_recursive",)),
                ("sectorsRecursive", ("blkio.sectors_recursive",)),
            ):
                for name in names:
                    try:
                        with open(os.path.join(d, name)) as fh:
                            entries = S.blkio_entries(fh.read().splitlines())
                    except OSError:
                        continue
                    if entries:
                        b[key] = entries
                        break
        if "hugetlb" in p:
            d = p["hugetlb"]
            for name in sorted(os.listdir(d)):
                if name.startswith("hugetlb.") and name.endswith(".limit_in_bytes") and ".rsvd." not in name:
                    size = name[len("hugetlb.") : -len(".limit_in_bytes")]
                    pre = os.path.join(d, f"hugetlb.{size}.")
                    out["hugetlb"][size] = {
                        "usage": fs.read_int(pre + "usage_in_bytes"),
                        "max": fs.read_int(pre + "max_usage_in_bytes"),
                        "failcnt": fs.read_int(pre + "failcnt"),
                    }
        return S.prune(out)
