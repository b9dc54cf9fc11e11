"""Differential fixtures: the same case, on the same bundle, against pyrunc
and Debian's runc in one test run (tests/integration/compat/, tests/integration/adversarial/).

``any_rt`` is a :class:`helpers.Runtime` parametrized over the runtimes
present on this machine: ``pyrunc`` (the checkout's launcher, or
``$RUNTIME``) and ``runc`` (``/usr/sbin/runc``; the parameter is skipped
when it is missing).  Each test asserts the behaviour both must share; where
pyrunc deliberately differs, the test branches on ``any_rt.name`` and says
why.  Teardown is the same as the ``rt`` fixture's: every container the
test created is ``delete --force``d and the state root must be empty.
"""

from __future__ import annotations

import os

import pytest

import helpers
from helpers import Runtime

RUNC = "/usr/sbin/runc"
PYRUNC = helpers.RUNTIME if helpers.runtime_is_pyrunc else os.path.join(helpers.REPO, ".venv", "bin", "pyrunc")
RUNTIMES = {"pyrunc": PYRUNC, "runc": RUNC}


def _runtime_fixture(request, root):
    name = request.param
    path = RUNTIMES[name]
    if not os.access(path, os.X_OK):
        pytest.skip(f"{name} is not installed at {path}")
    runtime = Runtime(root, path=path)
    runtime.name = name
    yield runtime
    problems = runtime.cleanup()
    left = os.listdir(root) if os.path.isdir(root) else []
    if left:
        problems.append(f"state directories left in --root after delete --force: {left}")
    assert not problems, "cleanup failed:\n  " + "\n  ".join(problems)


any_rt = pytest.fixture(params=sorted(RUNTIMES))(_runtime_fixture)
