"""Replace pip's console script with a fast, isolated launcher.

Engines call the runtime with an almost empty environment and several times
per container, so the launcher
- names the interpreter by absolute path (no PATH lookup, no /usr/bin/env),
- runs it isolated and without `site` (-I -S: no user site, no PYTHON* env,
  no .pth processing, which costs milliseconds on every call),
- puts the project source first on sys.path and the venv's site-packages
  last (where `site` would put it): the standard library is found without
  first looking through site-packages on every import (only the optional
  pyseccomp/pyroute2 live there),
- keeps the garbage collector off while the modules load (main() then
  freezes them: a later collection, in the runtime or in the forked
  container init, never walks or touches them),
- leaves through ``exit_now``: os._exit after flushing stdio, skipping the
  interpreter's teardown (milliseconds of module and object destruction).

- runs the installation's own copy of the interpreter, VENV/sealed/python3:
  the first create/run/exec after boot binds it read-only onto itself
  (pyrunc/exeseal.py, persist_readonly_view), and from then on those
  commands start from a read-only view of their interpreter
  (CVE-2019-5736) without re-executing themselves.

usage: install-launcher.py VENV SRC
       install-launcher.py --remove VENV   (unmount the read-only view: before deleting VENV)
"""
import os
import shutil
import subprocess
import sys
import sysconfig


def unmount_view(copy):
    """Undo every read-only bind of the copy (one per mount namespace that
    made it; here: the caller's)."""
    while os.path.exists(copy) and os.statvfs(copy).f_flag & os.ST_RDONLY:
        if subprocess.run(["umount", copy]).returncode != 0:
            break


if sys.argv[1] == "--remove":
    unmount_view(os.path.join(os.path.abspath(sys.argv[2]), "sealed", "python3"))
    sys.exit(0)

venv, src = (os.path.abspath(p) for p in sys.argv[1:3])
purelib = sysconfig.get_path("purelib", vars={"base": venv, "platbase": venv})
# A copy, not a link: the read-only bind covers this file only, and a package
# upgrade of the system's Python never meets a mount point.  Its pyvenv.cfg
# (VENV/pyvenv.cfg, the parent directory) still finds the standard library.
real = os.path.realpath(os.path.join(venv, "bin", "python3"))
python = os.path.join(venv, "sealed", "python3")
os.makedirs(os.path.dirname(python), exist_ok=True)
unmount_view(python)
tmp = python + ".tmp"
shutil.copy2(real, tmp)
os.chmod(tmp, 0o755)
os.replace(tmp, python)
launcher = os.path.join(venv, "bin", "pyrunc")
text = f"""#!{python} -IS
import gc
gc.disable()  # no collections while importing; main() freezes the loaded objects and re-enables
import sys
sys.path.insert(0, {src!r})
sys.path.append({purelib!r})
from pyrunc.cli import main, exit_now
exit_now(main())
"""
tmp = launcher + ".tmp"
with open(tmp, "w") as f:
    f.write(text)
os.chmod(tmp, 0o755)
os.replace(tmp, launcher)
print(f"installed {launcher}")
