"""pyrunc.seccomp loads pyseccomp without the real ctypes.util (which imports
subprocess, shutil, tempfile and more on every create with a seccomp profile,
that is every create by podman and Docker), leaves no stand-in behind, and
still answers a library name it does not know through the real module."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from pyrunc import seccomp

pytestmark = pytest.mark.skipif(
    not seccomp.supported()["enabled"], reason="no libseccomp or no seccomp filter support in this kernel"
)

PROFILE = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
    "syscalls": [{"names": ["read", "write", "exit_group", "mkdir"], "action": "SCMP_ACT_ALLOW"}],
}


def _fresh_python(code, *extra_path):
    path = [*extra_path, os.path.dirname(os.path.dirname(seccomp.__file__))]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_compiling_imports_no_process_machinery_and_leaves_no_stand_in():
    result = _fresh_python(f"""
        import sys, json
        from pyrunc import seccomp
        bpf = seccomp.compile_filter({PROFILE!r}).bpf
        import ctypes
        print(json.dumps({{
            "loaded": sorted(m for m in ("subprocess", "shutil", "tempfile", "ctypes.util") if m in sys.modules),
            "ctypes_util_attr": hasattr(ctypes, "util"),
            "instructions": len(bpf) // 8,
        }}))
    """)
    assert result["loaded"] == []
    assert result["ctypes_util_attr"] is False
    assert result["instructions"] > 4
    # the same program as with the real ctypes.util loaded first
    again = _fresh_python(f"""
        import ctypes.util, json
        from pyrunc import seccomp
        print(json.dumps(len(seccomp.compile_filter({PROFILE!r}).bpf) // 8))
    """)
    assert again == result["instructions"]


def test_a_loaded_ctypes_util_is_used_and_left_as_it_was():
    result = _fresh_python("""
        import ctypes.util, json, sys
        real_module, real_find = sys.modules["ctypes.util"], ctypes.util.find_library
        from pyrunc import seccomp
        seccomp._bindings()
        print(json.dumps([sys.modules["ctypes.util"] is real_module, ctypes.util.find_library is real_find]))
    """)
    assert result == [True, True]


def test_a_name_the_stand_in_does_not_know_goes_to_the_real_ctypes_util(tmp_path):
    # a pyseccomp that looks up one more library than the real one does
    (tmp_path / "pyseccomp.py").write_text(
        textwrap.dedent("""
        import ctypes.util
        LOOKUPS = [ctypes.util.find_library(n) for n in ("c", "seccomp", "m")]
        """)
    )
    result = _fresh_python(
        """
        import json, sys, ctypes
        from pyrunc import seccomp
        mod = seccomp._bindings()
        import ctypes.util
        print(json.dumps({
            "lookups": mod.LOOKUPS,
            "real_m": ctypes.util.find_library("m"),
            "real_module": "subprocess" in vars(sys.modules["ctypes.util"]),
        }))
        """,
        str(tmp_path),
    )
    c, libseccomp, m = result["lookups"]
    assert c is None and libseccomp == "libseccomp.so.2"
    assert m == result["real_m"] and m
    assert result["real_module"]
