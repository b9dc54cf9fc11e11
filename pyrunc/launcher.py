"""The ``pyrunc`` command's launcher: pip installs a slow one, whose first
call writes the fast one in its place.

pip generates ``<venv>/bin/pyrunc`` from ``[project.scripts]``: a script run
by ``<venv>/bin/python3`` with ``site`` (about 30 ms more per call: .pth
files, the user site, sysconfig) that calls :func:`main`.  A wheel has no
install hook, so the first call run that way installs, inside the venv:

- ``<venv>/sealed/python3``, the installation's own copy of the
  interpreter.  The first ``create``/``run``/``exec`` after boot binds it
  read-only onto itself (``exeseal.persist_readonly_view``): from then on
  those commands start from a read-only view of their interpreter
  (CVE-2019-5736) with one interpreter start.  A copy, not a link: the bind
  covers this file only, and a package upgrade of the system's Python never
  meets a mount point.  The copy finds the standard library through the
  venv's pyvenv.cfg (its parent directory);
- ``<venv>/sealed/modules.cache``, the compiled code of the modules the
  engines' commands import, in one file (pyrunc/modcache.py): an import
  from it costs about a third of an ordinary one, and an entry whose source
  changed is never used;
- the fast launcher, over pip's script (atomically, same path): it names
  the copy by absolute path (no PATH lookup, no /usr/bin/env) and runs it
  isolated and without ``site`` (``-IS``: no user site, no PYTHON* variables,
  no .pth files); puts the venv's site-packages last on ``sys.path`` (the
  standard library is found without first searching it) and, for an
  editable install, the source tree first (the .pth that pip wrote for it
  is not read without ``site``); keeps the garbage collector off while the
  modules load (``cli.main`` freezes them); leaves through ``exit_now``.

That first call then carries on as the command it was.  When the venv is
not writable by the caller (or is no venv), nothing is written and every
call keeps pip's script: correct, only slower (and create/run/exec re-exec
themselves from a detached read-only view of the interpreter).

``python -m pyrunc.launcher`` installs the same explicitly (and refreshes
the copy after an upgrade of the system's Python); ``python -m
pyrunc.launcher --remove`` undoes it before ``pip uninstall`` (which knows
nothing of the copy): it unmounts the copy's read-only view, deletes
``<venv>/sealed`` and puts a script like pip's back (docs/install.md).
"""

import os
import sys

from .exeseal import SEALED_COPY_DIR  # the only directory the seal binds in

# pip's generated script imports this module's main(); the fast launcher
# starts with FAST_MARK on its second line.
FAST_MARK = "# pyrunc fast launcher"
# The kernel reads at most 255 bytes of a #! line (BINPRM_BUF_SIZE) and
# splits it at the first blank: longer or blank-holding paths cannot work.
_SHEBANG_MAX = 250


def main():
    """Entry point of pip's generated script: install the fast launcher
    when this runs from a venv the caller may write, then run the command.
    Installing never changes what the command does or prints."""
    prefix = sys.prefix
    if prefix != sys.base_prefix and sys.argv and os.access(prefix, os.W_OK):
        try:
            script = os.path.realpath(sys.argv[0])
            if os.path.dirname(script) == os.path.realpath(_scripts_dir(prefix)):
                install(prefix, script)
        except Exception:  # noqa: BLE001 - the command must run all the same
            pass
    from .cli import exit_now
    from .cli import main as cli_main

    exit_now(cli_main())


def _scripts_dir(prefix):
    import sysconfig

    return sysconfig.get_path("scripts", vars={"base": prefix, "platbase": prefix})


def _purelib(prefix):
    import sysconfig

    return sysconfig.get_path("purelib", vars={"base": prefix, "platbase": prefix})


def sealed_copy_path(prefix):
    return os.path.join(prefix, SEALED_COPY_DIR, "python3")


def unmount_view(copy):
    """Undo every read-only bind of the copy stacked in this mount namespace
    (persist_readonly_view makes one; concurrent first calls may make more).
    Returns False when one stays (no right to unmount)."""
    from .linux.syscalls import UMOUNT_NOFOLLOW, umount2

    while os.path.exists(copy) and os.statvfs(copy).f_flag & os.ST_RDONLY:
        try:
            umount2(copy, UMOUNT_NOFOLLOW)
        except OSError:
            return False
    return True


def _same_file_content(a, b):
    """The copy was made by copy2 (size and mtime kept): equal stat means
    the same interpreter build."""
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return False
    return (sa.st_size, sa.st_mtime_ns) == (sb.st_size, sb.st_mtime_ns)


def _write_atomically(path, data, mode):
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w") as f:
            f.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def _copy_interpreter(real, copy):
    """Put a copy of ``real`` at ``copy`` unless an identical one is there
    (possibly bound read-only: then it stays as it is)."""
    import shutil

    if _same_file_content(real, copy):
        return
    # an older interpreter build (the system's Python was upgraded): its
    # read-only view must go before the file can be replaced
    if not unmount_view(copy):
        raise OSError(f"{copy}: outdated and still mounted read-only")
    os.makedirs(os.path.dirname(copy), exist_ok=True)
    tmp = f"{copy}.{os.getpid()}.tmp"
    try:
        shutil.copy2(real, tmp)
        os.chmod(tmp, 0o755)
        os.replace(tmp, copy)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def _path_lines(purelib, source_root):
    """sys.path as the fast launcher sets it (the module cache is built
    with the same, so that it resolves every name to the same file)."""
    lines = ["import sys"]
    if source_root:
        lines.append(f"sys.path.insert(0, {source_root!r})  # an editable install")
    lines.append(f"sys.path.append({purelib!r})")
    return lines


def launcher_text(copy, purelib, source_root=None):
    modcache_py = os.path.join(source_root or purelib, "pyrunc", "modcache.py")
    lines = [
        f"#!{copy} -IS",
        FAST_MARK + ", written by its first call (pyrunc/launcher.py, docs/install.md)",
        "import gc",
        "gc.disable()  # no collections while importing; main() freezes the loaded objects and re-enables",
        *_path_lines(purelib, source_root),
        # The cache's own module by its file (its .pyc checked as an
        # ordinary import checks it), without the path finder: that would
        # list the sys.path directories first, ~0.3 ms of every command.
        "try:",
        "    from _frozen_importlib import _load",
        "    from _frozen_importlib_external import spec_from_file_location",
        f"    use = _load(spec_from_file_location('pyrunc.modcache', {modcache_py!r})).use",
        "except Exception:  # another interpreter's import internals: the ordinary way",
        "    from pyrunc.modcache import use",
        f"use({module_cache_path_of(copy)!r})  # pyrunc/modcache.py",
        "from pyrunc.cli import main, exit_now",
        "exit_now(main())",
    ]
    return "\n".join(lines) + "\n"


def module_cache_path_of(copy):
    from .modcache import CACHE_NAME

    return os.path.join(os.path.dirname(copy), CACHE_NAME)


def build_module_cache(copy, purelib, source_root=None):
    """(Re)build the module cache next to the copy, from a run of the copy
    with the launcher's own sys.path.  Raises OSError when it fails."""
    import subprocess

    code = "\n".join(
        [
            *_path_lines(purelib, source_root),
            "from pyrunc.modcache import build",
            f"build({module_cache_path_of(copy)!r})",
        ]
    )
    p = subprocess.run([copy, "-IS", "-c", code], capture_output=True, text=True, check=False)
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or ["exit status %d" % p.returncode])[-1]
        raise OSError(f"{module_cache_path_of(copy)}: not built: {last}")


def _source_root(purelib):
    """The directory holding the imported pyrunc package when it is not the
    venv's site-packages (an editable install), else None."""
    here = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    return None if here == os.path.realpath(purelib) else here


def install(prefix, script):
    """Write the interpreter copy and the fast launcher at ``script``.
    Raises OSError when either cannot be written."""
    copy = sealed_copy_path(prefix)
    if len(copy) > _SHEBANG_MAX or any(c.isspace() for c in copy):
        raise OSError(f"{copy}: cannot be named on a #! line")
    purelib = _purelib(prefix)
    source_root = _source_root(purelib)
    _copy_interpreter(os.path.realpath(sys.executable), copy)
    try:
        build_module_cache(copy, purelib, source_root)
    except OSError:
        pass  # the launcher works without it (every import the ordinary way)
    _write_atomically(script, launcher_text(copy, purelib, source_root), 0o755)


def slow_script_text(python):
    """What pip generates from [project.scripts] (the same behaviour)."""
    return (
        f"#!{python}\nimport sys\nfrom pyrunc.launcher import main\nif __name__ == '__main__':\n    sys.exit(main())\n"
    )


def remove(prefix, script):
    """Undo :func:`install`: unmount the copy's read-only view (in this mount
    namespace), delete ``<venv>/sealed``, put pip's kind of script back, and
    delete the host's cache of compiled seccomp filters."""
    import shutil

    copy = sealed_copy_path(prefix)
    if not unmount_view(copy):
        raise OSError(f"{copy}: its read-only view cannot be unmounted (not root?)")
    if os.path.isfile(script):
        with open(script) as f:
            head = f.read(200)
        if FAST_MARK in head:
            _write_atomically(script, slow_script_text(os.path.join(_scripts_dir(prefix), "python3")), 0o755)
    if os.path.isdir(os.path.dirname(copy)):
        shutil.rmtree(os.path.dirname(copy))
    from pyrunc.seccomp import CACHE_DIR

    if os.geteuid() == 0 and os.path.isdir(CACHE_DIR):
        shutil.rmtree(CACHE_DIR)  # the compiled filters creates kept (docs/install.md)


def _command(argv):
    usage = "usage: python -m pyrunc.launcher [--remove]"
    if argv not in ([], ["--remove"]):
        print(usage, file=sys.stderr)
        return 2
    prefix = sys.prefix
    if prefix == sys.base_prefix:
        print("pyrunc.launcher: not a venv (sys.prefix is the system's): nothing to do", file=sys.stderr)
        return 1
    script = os.path.join(_scripts_dir(prefix), "pyrunc")
    try:
        if argv:
            remove(prefix, script)
            print(f"removed {sealed_copy_path(prefix)}, the fast launcher {script} and the seccomp filter cache")
        else:
            install(prefix, script)
            print(f"installed {script}")
    except OSError as e:
        print(f"pyrunc.launcher: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_command(sys.argv[1:]))
