"""Test-only fault injection: ``PYRUNC_TEST_FAULT=<point>`` makes the
process that reaches ``point(<point>)`` kill itself with SIGKILL there, as
an engine's timeout or PDEATHSIG would.  Reliability tests use it to prove
that ``delete --force`` cleans up after a runtime killed at any stage.

Points (runtime process unless noted):
  create:state-dir      the state directory exists, nothing else
  create:cgroup         the cgroup exists, no process yet
  create:forked         the intermediate stage was forked
  create:init-pid       the init exists (its pid is known)
  create:runtime-setup  hooks/net devices done, init still setting up
  create:ready          the init is ready, state and pid file not yet written
  start:connected       start is connected to the init, exec not yet confirmed
  exec:forked           the exec setup process was forked
  delete:killed         the container's processes were killed, nothing removed
  delete:cgroup-gone    the cgroup is removed, the state dir is not
"""

import os


def point(name):
    if os.environ.get("PYRUNC_TEST_FAULT") == name:
        os.kill(os.getpid(), 9)
