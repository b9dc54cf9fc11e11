"""Bundle-validation parity with the reference tool (issue 8 item 3).

A corpus of bundles (valid and invalid configs) is judged by two validators:

* ``rtvalidate`` (conformance/rtvalidate/main.go): opencontainers/
  runtime-tools' ``validate`` library, which is what ``oci-runtime-tool
  validate`` runs, built offline from Debian's packages;
* ``pyrunc validate`` (``pyrunc.config.validate.check_bundle``, the function
  behind the CLI verb).

Their verdicts (valid / invalid) must agree on every bundle, except for the
cases listed in :data:`KNOWN_DIFFERENCES`, each with the reason.  Two
normalisations apply to the reference tool's output first, both mirroring
how ``oci-runtime-tool validate`` itself is used:

1. Only errors at or above MUST are fatal (``--compliance-level must``, the
   tool's default); SHOULD-level findings are warnings.  Errors without an
   RFC 2119 level are fatal, as in the tool.
2. The library implements spec 1.0.2 and adds an error for every config
   whose ``ociVersion`` is not exactly its own ``1.0.2-dev`` ("validate
   currently only handles version ...").  That is a limit of the tool, not a
   verdict on the config, and is dropped.

The library's JSON-schema step is not run at all: it downloads the schema
of the config's version from GitHub (no network here, and there is no
schema it could fetch for 1.3.0).  Rules that live only in the schema are
therefore among the known differences.

Run it directly to see the table:  python3 conformance/validate_corpus.py
(builds nothing; needs build/rtvalidate/rtvalidate from ``make rtvalidate``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RTVALIDATE = REPO / "build" / "rtvalidate" / "rtvalidate"
SPEC_FIXTURES = REPO.parent / "shared" / "reference" / "runtime-spec-v1.3.0" / "schema" / "test" / "config"

# levels of runtime-tools' rfc2119.Level at or above Must, and "" (no level)
FATAL_LEVELS = {"", "MUST", "MUST NOT", "SHALL", "SHALL NOT", "REQUIRED"}
TOOL_VERSION_LIMIT = "validate currently only handles version"

CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHOWN"]


def base_config() -> dict:
    """A valid Linux config, close to ``runc spec`` (no ambient set)."""
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {k: list(CAPS) for k in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "corpus",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
            },
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": ["/proc/kcore", "/sys/firmware"],
            "readonlyPaths": ["/proc/sys"],
        },
    }


def _ns(cfg, *types):
    cfg["linux"]["namespaces"] = [{"type": t} for t in types]


def _set(path, value):
    def mutate(cfg):
        obj = cfg
        for key in path[:-1]:
            obj = obj.setdefault(key, {}) if isinstance(key, str) else obj[key]
        obj[path[-1]] = value

    return mutate


def _delete(path):
    def mutate(cfg):
        obj = cfg
        for key in path[:-1]:
            obj = obj[key]
        del obj[path[-1]]

    return mutate


def _all(*mutations):
    def mutate(cfg):
        for m in mutations:
            m(cfg)

    return mutate


MAPPINGS = [{"containerID": 0, "hostID": 100000, "size": 65536}]
USERNS = _all(
    lambda c: c["linux"]["namespaces"].append({"type": "user"}),
    _set(("linux", "uidMappings"), MAPPINGS),
    _set(("linux", "gidMappings"), MAPPINGS),
)

# name -> mutation of base_config(); a name says what the case is
MUTATIONS = {
    # valid ones
    "valid-base-1.0.2": lambda c: None,
    "valid-base-1.3.0": _set(("ociVersion",), "1.3.0"),
    "valid-user-namespace": USERNS,
    "valid-hooks": _set(
        ("hooks",),
        {
            "prestart": [{"path": "/bin/true", "env": ["A=b"]}],
            "poststop": [{"path": "/bin/true", "args": ["true"], "timeout": 3}],
        },
    ),
    "valid-net-sysctl": _set(("linux", "sysctl"), {"net.ipv4.ip_forward": "1", "kernel.shmmax": "1000"}),
    "valid-devices": _set(
        ("linux", "devices"),
        [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}, {"path": "/dev/fifo", "type": "p"}],
    ),
    "valid-resources": _set(
        ("linux", "resources"),
        {
            "memory": {"limit": 1 << 26, "swap": 1 << 27},
            "pids": {"limit": 64},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
            "blockIO": {"weight": 100, "weightDevice": [{"major": 8, "minor": 0, "weight": 200}]},
            "devices": [
                {"allow": False, "access": "rwm"},
                {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"},
            ],
        },
    ),
    "valid-annotations": _set(("annotations",), {"com.example.key": "v"}),
    "valid-seccomp": _set(
        ("linux", "seccomp"),
        {
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}],
        },
    ),
    "valid-rlimits": _set(
        ("process", "rlimits"),
        [{"type": "RLIMIT_NOFILE", "hard": 10, "soft": 5}, {"type": "RLIMIT_CORE", "hard": 0, "soft": 0}],
    ),
    "valid-root-not-named-rootfs": None,  # built specially: the rootfs directory is "fs" (a SHOULD)
    # invalid for both, each hitting one rule
    "bad-no-root": _delete(("root",)),
    "bad-root-path-missing": _set(("root", "path"), "no-such-rootfs"),
    "bad-version-not-semver": _set(("ociVersion",), "1.0"),
    "bad-cwd-relative": _set(("process", "cwd"), "srv"),
    "bad-args-empty": _set(("process", "args"), []),
    "bad-env-no-equals": _set(("process", "env"), ["PATH"]),
    "bad-rlimit-duplicate": _set(("process", "rlimits"), [{"type": "RLIMIT_NOFILE", "hard": 1, "soft": 1}] * 2),
    "bad-rlimit-soft-above-hard": _set(("process", "rlimits"), [{"type": "RLIMIT_NOFILE", "hard": 1, "soft": 2}]),
    "bad-hook-path-relative": _set(("hooks",), {"prestart": [{"path": "bin/true"}]}),
    "bad-hook-env": _set(("hooks",), {"poststart": [{"path": "/bin/true", "env": ["novalue"]}]}),
    "bad-namespace-duplicate": lambda c: c["linux"]["namespaces"].append({"type": "pid"}),
    "bad-namespace-path-relative": lambda c: c["linux"]["namespaces"].append({"type": "cgroup", "path": "ns/cg"}),
    "bad-mappings-without-userns": _set(("linux", "uidMappings"), MAPPINGS),
    "bad-net-sysctl-without-netns": _all(
        _set(("linux", "sysctl"), {"net.ipv4.ip_forward": "1"}), lambda c: _ns(c, "pid", "ipc", "uts", "mount")
    ),
    "bad-mqueue-sysctl-without-ipcns": _all(
        _set(("linux", "sysctl"), {"fs.mqueue.msg_max": "10"}), lambda c: _ns(c, "pid", "network", "uts", "mount")
    ),
    "bad-hostname-without-utsns": lambda c: _ns(c, "pid", "network", "ipc", "mount"),
    "bad-device-duplicate": _set(
        ("linux", "devices"), [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}] * 2
    ),
    "bad-device-type": _set(("linux", "devices"), [{"path": "/dev/x", "type": "x", "major": 1, "minor": 1}]),
    "bad-masked-path-relative": _set(("linux", "maskedPaths"), ["proc/kcore"]),
    "bad-readonly-path-relative": _set(("linux", "readonlyPaths"), ["proc/sys"]),
    "bad-swap-below-limit": _set(("linux", "resources", "memory"), {"limit": 1 << 27, "swap": 1 << 26}),
    "bad-device-rule-type": _set(("linux", "resources", "devices"), [{"allow": True, "type": "x", "access": "r"}]),
    "bad-device-rule-access": _set(("linux", "resources", "devices"), [{"allow": True, "access": "rwx"}]),
    "bad-weight-device-empty": _set(("linux", "resources", "blockIO"), {"weightDevice": [{"major": 8, "minor": 0}]}),
    "bad-memory-limit-string": _set(("linux", "resources", "memory"), {"limit": "1g"}),
    "bad-uid-string": _set(("process", "user", "uid"), "root"),
    # the two validators disagree (the reasons are in KNOWN_DIFFERENCES)
    "diff-no-process": _delete(("process",)),
    "diff-version-2": _set(("ociVersion",), "2.0.0"),
    "diff-mount-destination-relative": lambda c: c["mounts"].append(
        {"destination": "tmp", "type": "tmpfs", "source": "tmpfs"}
    ),
    "diff-root-path-absolute-elsewhere": _set(("root", "path"), "/"),
    "diff-ambient-not-inheritable": _set(("process", "capabilities", "ambient"), ["CAP_KILL"]),
    "diff-effective-not-permitted": _set(("process", "capabilities", "effective"), ["CAP_SYS_ADMIN"]),
    "diff-no-linux-section": _delete(("linux",)),
    "diff-fifo-with-numbers": _set(("linux", "devices"), [{"path": "/dev/f", "type": "p", "major": 1, "minor": 1}]),
    "diff-capability-unknown": lambda c: c["process"]["capabilities"]["bounding"].append("CAP_FOO"),
    "diff-annotation-reserved": _set(("annotations",), {"org.opencontainers.foo": "x"}),
    "diff-device-minor-0": _set(("linux", "devices"), [{"path": "/dev/tty0", "type": "c", "major": 4, "minor": 0}]),
    "diff-reservation-above-limit": _set(("linux", "resources", "memory"), {"limit": 1 << 26, "reservation": 1 << 27}),
    "diff-apparmor-profile": _set(("process", "apparmorProfile"), "docker-default"),
    "diff-namespace-type-unknown": lambda c: c["linux"]["namespaces"].append({"type": "foo"}),
    "diff-hook-timeout-zero": _set(("hooks",), {"prestart": [{"path": "/bin/true", "timeout": 0}]}),
    "diff-kernel-hostname-sysctl": _set(("linux", "sysctl"), {"kernel.hostname": "x"}),
    "diff-non-namespaced-sysctl": _set(("linux", "sysctl"), {"vm.swappiness": "10"}),
    "diff-errnoret-with-allow": _set(("linux", "seccomp"), {"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}),
    "diff-time-offsets-without-timens": _set(("linux", "timeOffsets"), {"monotonic": {"secs": 1}}),
    "diff-rlimit-type-unknown": _set(("process", "rlimits"), [{"type": "RLIMIT_FOO", "hard": 1, "soft": 1}]),
    "valid-rlimit-locks": _set(("process", "rlimits"), [{"type": "RLIMIT_LOCKS", "hard": 1, "soft": 1}]),
}

# Raw (not JSON-encodable-from-dict) documents.
RAW = {"bad-invalid-json": b'{"ociVersion": "1.0.2", oops}', "bad-not-utf8": b'{"ociVersion": "1.0.2\xff"}'}

NO_PROCESS = "schema-valid without process, but create needs one: pyrunc validate judges a config for create"
SCHEMA_ONLY = "a schema-only rule, and the library's schema step cannot run offline"

# case -> (pyrunc verdict, runtime-tools verdict, why they differ)
KNOWN_DIFFERENCES = {
    "diff-no-process": (
        "invalid",
        "valid",
        "process is OPTIONAL in config.md, but `create` needs it (runtime.md: create MUST "
        "fail without a process to run); pyrunc validate judges configs for create",
    ),
    "diff-mount-destination-relative": (
        "valid",
        "invalid",
        "spec 1.0.2 required absolute destinations; since 1.1 a relative "
        "destination is allowed (relative to the container's /)",
    ),
    "diff-root-path-absolute-elsewhere": (
        "valid",
        "invalid",
        "the library requires root.path to be a child of the bundle "
        "(bundle.md's 'artifacts in a single directory'); config.md allows "
        "an absolute root.path anywhere, as runc and crun do",
    ),
    "diff-ambient-not-inheritable": (
        "valid",
        "invalid",
        "not a spec rule; the kernel only keeps ambient capabilities that are "
        "permitted and inheritable, and runtimes skip the others (runc spec's "
        "own default had ambient without inheritable)",
    ),
    "diff-effective-not-permitted": (
        "valid",
        "invalid",
        "not a spec rule; such a capability is not raised (the kernel refuses effective outside permitted), as in runc",
    ),
    "diff-no-linux-section": (
        "invalid",
        "valid",
        "without a linux section the config has no namespaces, so hostname would "
        "change the host's; the library skips every Linux rule when the section is absent",
    ),
    "diff-fifo-with-numbers": (
        "valid",
        "invalid",
        "config-linux.md makes major/minor optional for type p, it does not forbid "
        "them (they are ignored); the library requires 0",
    ),
    "diff-capability-unknown": (
        "valid",
        "invalid",
        "config.md: a capability that cannot be mapped or granted MUST be logged as "
        "a warning and runtimes SHOULD NOT fail (spec 1.1+); pyrunc warns at create",
    ),
    "diff-annotation-reserved": (
        "valid",
        "invalid",
        "config.md reserves org.opencontainers.* for specifications (a MUST NOT on "
        "specifications, not on configs); runc itself writes such keys",
    ),
    "diff-device-minor-0": (
        "valid",
        "invalid",
        "the library requires major and minor > 0 for b/c/u devices; 0 is a valid minor (/dev/tty0 is c 4:0)",
    ),
    "diff-reservation-above-limit": (
        "valid",
        "invalid",
        "not a spec rule (a soft limit above the hard one is accepted by the kernel and by runc)",
    ),
    "diff-apparmor-profile": (
        "valid",
        "invalid",
        "the library looks for the profile file inside the container's rootfs "
        "(/etc/apparmor.d); profiles are loaded on the host, which pyrunc checks "
        "with --host-specific (AppArmor enabled)",
    ),
    "diff-namespace-type-unknown": ("invalid", "valid", "schema rule (enum); the library's schema step is offline"),
    "diff-hook-timeout-zero": (
        "invalid",
        "valid",
        "config.md: timeout MUST be > 0; the library has no check for it outside the schema step",
    ),
    "diff-kernel-hostname-sysctl": (
        "invalid",
        "valid",
        "a sysctl that is not namespaced would change the host (runtime.md/"
        "config-linux.md sysctl); the library checks only net.* and fs.mqueue.*",
    ),
    "diff-non-namespaced-sysctl": ("invalid", "valid", "same as diff-kernel-hostname-sysctl"),
    "diff-errnoret-with-allow": (
        "invalid",
        "valid",
        "defaultErrnoRet is spec 1.1 (config-linux.md: only "
        "with SCMP_ACT_ERRNO/SCMP_ACT_TRACE); the 1.0.2 library drops the field",
    ),
    "diff-time-offsets-without-timens": (
        "invalid",
        "valid",
        "time namespaces and timeOffsets are spec 1.1; the library's types drop the field",
    ),
    "diff-rlimit-type-unknown": (
        "invalid",
        "valid",
        "the library reports an unknown rlimit type at SHOULD level (a warning); pyrunc refuses it, as setrlimit would",
    ),
    # the official fixtures of spec 1.3.0 (schema/test/config), when ../shared is present
    "fixture-good-minimal": ("invalid", "valid", NO_PROCESS),
    "fixture-good-freebsd-minimal": ("invalid", "valid", NO_PROCESS),
    "fixture-good-zos-minimal": ("invalid", "valid", NO_PROCESS),
    "fixture-good-linux-rdma": ("invalid", "valid", NO_PROCESS),
    "fixture-good-minimal-for-start": (
        "invalid",
        "valid",
        "no linux section, so no mount namespace: create refuses it (the "
        "container's mounts would outlive it), and pyrunc validate gives "
        "create's verdict (config.convert.build)",
    ),
    "fixture-good-linux-netdevice": (
        "invalid",
        "valid",
        NO_PROCESS + "; also netDevices without a network "
        "namespace (config-linux.md), a field the 1.0.2 library does not know",
    ),
    "fixture-good-freebsd-example": (
        "invalid",
        "valid",
        "a FreeBSD config judged as a Linux one: hostname "
        "without a uts namespace (the library skips Linux rules without a "
        "linux section)",
    ),
    "fixture-good-zos-example": (
        "invalid",
        "valid",
        'ociVersion "0.5.0-dev" is not a 1.x version; and as fixture-good-freebsd-example',
    ),
    "fixture-bad-freebsd-vnet-disable": ("invalid", "valid", SCHEMA_ONLY),
    "fixture-bad-linux-hugepage": ("invalid", "valid", SCHEMA_ONLY),
    "fixture-bad-linux-netdevice": ("invalid", "valid", SCHEMA_ONLY + " (netDevices is not in the 1.0.2 types)"),
    "bad-device-duplicate": (
        "valid",
        "invalid",
        "runc 1.1.5 runs it (the first entry is made): pyrunc warns and goes on (docs/validation.md, the decisions)",
    ),
    "bad-weight-device-empty": (
        "valid",
        "invalid",
        "runc 1.1.5 runs it (the entry sets nothing): pyrunc warns and goes on",
    ),
    "fixture-good-spec-example": (
        "valid",
        "invalid",
        'pyrunc warns about ociVersion "0.5.0-dev" (runc runs it); the library '
        "refuses the AppArmor profile file missing from the rootfs and /dev/sda's "
        "minor 0",
    ),
}

# Same verdict, different reasons (kept in mind when reading the agreement count).
SAME_VERDICT_NOTES: dict[str, str] = {}


def cases() -> dict[str, bytes]:
    """case name -> config.json bytes."""
    out = {}
    for name, mutate in MUTATIONS.items():
        cfg = base_config()
        if name == "valid-root-not-named-rootfs":
            cfg["root"]["path"] = "fs"
        elif mutate is not None:
            mutate(cfg)
        out[name] = json.dumps(cfg, indent=1).encode()
    out.update(RAW)
    if SPEC_FIXTURES.is_dir():
        for kind in ("good", "bad"):
            for f in sorted((SPEC_FIXTURES / kind).glob("*.json")):
                out[f"fixture-{kind}-{f.stem}"] = f.read_bytes()
    return out


def build(root: Path) -> dict[str, Path]:
    """Write each case as a bundle under *root*: config.json, rootfs/ (or fs/)."""
    bundles = {}
    for name, data in cases().items():
        b = root / name
        (b / ("fs" if name == "valid-root-not-named-rootfs" else "rootfs")).mkdir(parents=True)
        (b / "config.json").write_bytes(data)
        bundles[name] = b
    return bundles


def reference_verdicts(bundles: dict[str, Path], tool: Path = RTVALIDATE) -> dict[str, tuple[str, list[str]]]:
    """case -> ("valid" | "invalid", fatal messages) from rtvalidate, normalised."""
    names = list(bundles)
    proc = subprocess.run(
        [str(tool), *map(str, bundles.values())], capture_output=True, text=True, timeout=60, check=True
    )
    reports = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(reports) == len(names), proc.stdout[-2000:]
    out = {}
    for name, rep in zip(names, reports):
        if rep.get("load_error"):
            out[name] = ("invalid", ["load: " + rep["load_error"]])
            continue
        fatal = [
            f"{p['check']}: {p['message']}"
            for p in rep["problems"]
            if p["level"] in FATAL_LEVELS and not p["message"].startswith(TOOL_VERSION_LIMIT)
        ]
        out[name] = ("invalid" if fatal else "valid", fatal)
    return out


def pyrunc_verdicts(bundles: dict[str, Path], pyrunc: str | None = None) -> dict[str, tuple[str, list[str]]]:
    """case -> verdict of ``pyrunc validate --bundle B`` (exit 0: valid, 1: invalid)."""
    from concurrent.futures import ThreadPoolExecutor

    pyrunc = pyrunc or str(REPO / ".venv" / "bin" / "pyrunc")

    def one(bundle):
        proc = subprocess.run([pyrunc, "validate", "--bundle", str(bundle)], capture_output=True, text=True, timeout=60)
        # warnings (one line each: what pyrunc accepts as runc does but the
        # spec or runtime-tools would not) are part of a valid verdict
        errors = [ln for ln in proc.stderr.splitlines() if "level=warning" not in ln]
        if proc.returncode not in (0, 1) or errors:
            raise RuntimeError(f"pyrunc validate {bundle}: exit {proc.returncode}: {proc.stderr[-500:]}")
        return ("valid", []) if proc.returncode == 0 else ("invalid", proc.stdout.splitlines())

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(bundles, pool.map(one, bundles.values())))


def compare(bundles):
    """[(case, pyrunc verdict, reference verdict, expected difference or None, details)]"""
    ours, theirs = pyrunc_verdicts(bundles), reference_verdicts(bundles)
    rows = []
    for name in bundles:
        expected = KNOWN_DIFFERENCES.get(name)
        rows.append((name, ours[name][0], theirs[name][0], expected, ours[name][1], theirs[name][1]))
    return rows


def markdown_differences() -> str:
    """The table of KNOWN_DIFFERENCES for conformance/README.md."""
    lines = ["| case | pyrunc | runtime-tools | why |", "| --- | --- | --- | --- |"]
    for name, (ours, theirs, why) in KNOWN_DIFFERENCES.items():
        lines.append(f"| `{name}` | {ours} | {theirs} | {why} |")
    return "\n".join(lines)


def main():
    import tempfile

    if sys.argv[1:] == ["--markdown"]:
        print(markdown_differences())
        return
    with tempfile.TemporaryDirectory() as tmp:
        rows = compare(build(Path(tmp)))
    for name, ours, theirs, expected, why_ours, why_theirs in rows:
        mark = "=" if ours == theirs else ("~" if expected else "!")
        print(f"{mark} {name:40} pyrunc={ours:8} runtime-tools={theirs:8}")
        if ours != theirs:
            for line in (why_ours or why_theirs)[:2]:
                print("      ", line[:150])


if __name__ == "__main__":
    main()
