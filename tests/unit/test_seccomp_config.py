"""pyrunc.seccomp: validation of the linux.seccomp object (one clear error
line naming the field), what importing the module costs, and that compiling
spawns no process and loading imports nothing."""

import json
import os
import subprocess
import sys

import pytest

from pyrunc import seccomp
from pyrunc.errors import ConfigError

pytestmark = pytest.mark.skipif(
    not seccomp.supported()["enabled"], reason="no libseccomp or no seccomp filter support in this kernel"
)

OK_RULE = {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}


def cfg(**kw):
    return {"defaultAction": "SCMP_ACT_ALLOW", **kw}


@pytest.mark.parametrize(
    "config, message",
    [
        ([], "config.json: linux.seccomp: must be an object"),
        ({}, "config.json: linux.seccomp.defaultAction: is required"),
        (
            {"defaultAction": "SCMP_ACT_FOO"},
            'config.json: linux.seccomp.defaultAction: "SCMP_ACT_FOO" is not a known action (one of '
            "SCMP_ACT_KILL, SCMP_ACT_KILL_THREAD, SCMP_ACT_KILL_PROCESS, SCMP_ACT_TRAP, SCMP_ACT_ERRNO, "
            "SCMP_ACT_TRACE, SCMP_ACT_ALLOW, SCMP_ACT_LOG, SCMP_ACT_NOTIFY)",
        ),
        (
            cfg(defaultErrnoRet=1),
            "config.json: linux.seccomp.defaultErrnoRet: SCMP_ACT_ALLOW does not take an errno "
            "(only SCMP_ACT_ERRNO and SCMP_ACT_TRACE do)",
        ),
        (
            {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": -1},
            "config.json: linux.seccomp.defaultErrnoRet: -1 is not an integer between 0 and 65535",
        ),
        (
            {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": "EPERM"},
            "config.json: linux.seccomp.defaultErrnoRet: 'EPERM' is not an integer between 0 and 65535",
        ),
        (
            {"defaultAction": "SCMP_ACT_NOTIFY"},
            "config.json: linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action",
        ),
        (
            cfg(architectures=["SCMP_ARCH_Z80"]),
            'config.json: linux.seccomp.architectures[0]: "SCMP_ARCH_Z80" is not a known architecture',
        ),
        (cfg(architectures="SCMP_ARCH_X86"), "config.json: linux.seccomp.architectures: must be an array of strings"),
        (
            cfg(flags=["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_BOGUS"]),
            'config.json: linux.seccomp.flags[1]: "SECCOMP_FILTER_FLAG_BOGUS" is not a known flag',
        ),
        (
            cfg(listenerMetadata="m"),
            "config.json: linux.seccomp.listenerMetadata: must not be set without linux.seccomp.listenerPath",
        ),
        (cfg(syscalls=[OK_RULE, "mkdir"]), "config.json: linux.seccomp.syscalls[1]: must be an object"),
        (
            cfg(syscalls=[OK_RULE, {"names": [], "action": "SCMP_ACT_ERRNO"}]),
            "config.json: linux.seccomp.syscalls[1].names: must be a non-empty array of syscall names",
        ),
        (cfg(syscalls=[OK_RULE, {"names": ["mkdir"]}]), "config.json: linux.seccomp.syscalls[1].action: is required"),
        (
            cfg(syscalls=[OK_RULE, OK_RULE, OK_RULE, {"names": ["mkdir"], "action": "SCMP_ACT_FOO"}]),
            'config.json: linux.seccomp.syscalls[3].action: "SCMP_ACT_FOO" is not a known action',
        ),
        (
            cfg(syscalls=[{"names": ["mkdir"], "action": "SCMP_ACT_KILL", "errnoRet": 1}]),
            "config.json: linux.seccomp.syscalls[0].errnoRet: SCMP_ACT_KILL does not take an errno",
        ),
        (
            cfg(syscalls=[{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}]),
            "config.json: linux.seccomp.syscalls[0].errnoRet: 70000 is not an integer between 0 and 65535",
        ),
        (
            cfg(
                syscalls=[
                    {
                        "names": ["mkdir"],
                        "action": "SCMP_ACT_ERRNO",
                        "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}],
                    }
                ]
            ),
            "config.json: linux.seccomp.syscalls[0].args[0].index: 6 is not a syscall argument index",
        ),
        (
            cfg(
                syscalls=[
                    {
                        "names": ["mkdir"],
                        "action": "SCMP_ACT_ERRNO",
                        "args": [
                            {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                            {"index": 1, "value": 1, "op": "SCMP_CMP_ALMOST"},
                        ],
                    }
                ]
            ),
            'config.json: linux.seccomp.syscalls[0].args[1].op: "SCMP_CMP_ALMOST" is not a known operator',
        ),
        (
            cfg(
                syscalls=[{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "op": "SCMP_CMP_EQ"}]}]
            ),
            "config.json: linux.seccomp.syscalls[0].args[0].value: is required",
        ),
        (
            cfg(
                syscalls=[
                    {
                        "names": ["mkdir"],
                        "action": "SCMP_ACT_ERRNO",
                        "args": [{"index": 0, "value": 1 << 64, "op": "SCMP_CMP_EQ"}],
                    }
                ]
            ),
            "config.json: linux.seccomp.syscalls[0].args[0].value: 18446744073709551616 is not an "
            "unsigned 64-bit integer",
        ),
        (
            cfg(
                syscalls=[
                    {
                        "names": ["mkdir"],
                        "action": "SCMP_ACT_ERRNO",
                        "args": [{"index": 0, "value": 1, "valueTwo": -2, "op": "SCMP_CMP_MASKED_EQ"}],
                    }
                ]
            ),
            "config.json: linux.seccomp.syscalls[0].args[0].valueTwo: -2 is not an unsigned 64-bit integer",
        ),
        (
            cfg(
                syscalls=[
                    {
                        "names": ["mkdir"],
                        "action": "SCMP_ACT_ERRNO",
                        "args": [
                            {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                            {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"},
                            {"index": 1, "value": 3, "op": "SCMP_CMP_EQ"},
                        ],
                    }
                ]
            ),
            "config.json: linux.seccomp.syscalls[0].args: several conditions on one argument are only "
            "allowed when every condition is on that argument",
        ),
        (
            cfg(
                listenerPath="/run/agent.sock", syscalls=[{"names": ["mkdir", "sendmsg"], "action": "SCMP_ACT_NOTIFY"}]
            ),
            "config.json: linux.seccomp.syscalls[0].action: SCMP_ACT_NOTIFY cannot be used for sendmsg",
        ),
    ],
)
def test_bad_input_is_one_line_naming_the_field(config, message):
    with pytest.raises(ConfigError) as info:
        seccomp.prepare(config)
    text = str(info.value)
    assert text.startswith(message), text
    assert "\n" not in text


def test_errors_use_the_callers_field_path():
    with pytest.raises(ConfigError, match=r"^config.json: process.seccomp.defaultAction: "):
        seccomp.prepare({"defaultAction": "nope"}, field="process.seccomp")


def test_architecture_of_the_other_byte_order_is_refused_clearly():
    if os.uname().machine not in ("x86_64", "aarch64"):
        pytest.skip("needs a little-endian host")
    with pytest.raises(
        ConfigError,
        match=r"^config.json: linux.seccomp.architectures\[1\]: "
        r"libseccomp refused SCMP_ARCH_S390X: it cannot share "
        r"a filter with .* \(different byte order\)$",
    ):
        seccomp.prepare(cfg(architectures=["SCMP_ARCH_X86", "SCMP_ARCH_S390X"]))


def test_every_listed_action_operator_arch_and_flag_is_accepted():
    info = seccomp.supported()
    for action in info["actions"]:
        extra = {"errnoRet": 3} if action in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE") else {}
        default = "SCMP_ACT_ALLOW" if action != "SCMP_ACT_ALLOW" else "SCMP_ACT_LOG"
        seccomp.prepare({"defaultAction": default, "syscalls": [{"names": ["mkdir"], "action": action, **extra}]})
    for op in info["operators"]:
        seccomp.prepare(
            cfg(
                syscalls=[
                    {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 7, "op": op}]}
                ]
            )
        )
    for arch in info["archs"]:  # recognized; the other byte order cannot be mixed in
        try:
            seccomp.prepare(cfg(architectures=[arch], syscalls=[OK_RULE]))
        except ConfigError as e:
            assert "different byte order" in str(e)
    seccomp.prepare(cfg(flags=info["supportedFlags"], syscalls=[OK_RULE]))


def test_features_object_shape():
    info = seccomp.supported()
    assert info["enabled"] is True
    assert set(info) == {"enabled", "actions", "operators", "archs", "knownFlags", "supportedFlags"}
    assert set(info["actions"]) == set(seccomp.ACTIONS)
    assert set(info["operators"]) == set(seccomp.OPERATORS)
    if os.uname().machine == "x86_64":
        assert {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"} <= set(info["archs"])
    assert set(info["archs"]) <= set(seccomp.ARCHES)
    json.dumps(info)


def test_features_lists_exactly_the_spec_names_when_the_spec_is_present():
    ref = "/work/shared/reference/runtime-spec-v1.3.0/config-linux.md"
    if not os.path.exists(ref):
        pytest.skip("runtime-spec reference text not present")
    text = open(ref).read()
    for name in [*seccomp.ACTIONS, *seccomp.OPERATORS, *seccomp.ARCHES, *seccomp.FLAGS]:
        assert f"`{name}`" in text, name


def test_libseccomp_version_matches_the_library():
    version = seccomp.libseccomp_version()
    assert version and version.count(".") == 2 and all(p.isdigit() for p in version.split("."))
    try:
        pkg = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", "libseccomp2"], capture_output=True, text=True
        ).stdout
    except FileNotFoundError:
        pkg = ""
    if pkg:
        assert pkg.startswith(version)


def _fresh_python(code):
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(seccomp.__file__)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_importing_the_module_loads_nothing_heavy():
    loaded = _fresh_python(
        "import sys, json; before = set(sys.modules); import pyrunc.seccomp; "
        "print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    heavy = {"seccomp", "pyseccomp", "ctypes", "socket", "json", "logging", "subprocess"}
    assert not heavy & set(loaded), loaded


def test_compiling_and_probing_spawn_no_process():
    """pyseccomp looks its libraries up with ctypes.util.find_library, which
    runs ldconfig; the runtime must never spawn a process (cves.md)."""
    events = _fresh_python(
        textwrap_dedent("""
        import sys, json
        events = []
        sys.addaudithook(lambda ev, args: events.append(ev) if ev in (
            "subprocess.Popen", "os.posix_spawn", "os.exec", "os.fork", "os.system",
            "os.forkpty") else None)
        from pyrunc import seccomp
        seccomp.supported()
        seccomp.prepare({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"],
                         "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]})
        seccomp.libseccomp_version()
        print(json.dumps(events))
    """)
    )
    assert events == []


def test_load_imports_nothing():
    """The init calls load() inside the container's rootfs: not a single
    import may happen, not even a cached one."""
    result = _fresh_python(
        textwrap_dedent("""
        import os, sys, json
        from pyrunc import seccomp
        from pyrunc.linux import syscalls
        p = seccomp.prepare({"defaultAction": "SCMP_ACT_ALLOW",
                             "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]})
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            imports = []
            sys.addaudithook(lambda ev, args: imports.append(args[0]) if ev == "import" else None)
            syscalls.prctl(syscalls.PR_SET_NO_NEW_PRIVS, 1)
            p.load()
            os.write(w, repr(imports).encode())
            os._exit(0)
        os.close(w)
        data = os.read(r, 65536).decode()
        os.waitpid(pid, 0)
        print(json.dumps(data))
    """)
    )
    assert result == "[]"


def textwrap_dedent(s):
    import textwrap

    return textwrap.dedent(s)
