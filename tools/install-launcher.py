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

usage: install-launcher.py VENV SRC
"""
import os
import sys
import sysconfig

venv, src = (os.path.abspath(p) for p in sys.argv[1:3])
purelib = sysconfig.get_path("purelib", vars={"base": venv, "platbase": venv})
python = os.path.join(venv, "bin", "python3")
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
