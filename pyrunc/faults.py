"""Test-only fault injection: ``PYRUNC_TEST_FAULT=<point>`` makes the
process that reaches ``point(<point>)`` kill itself with SIGKILL there, as
an engine's timeout or PDEATHSIG would.  Reliability tests use it to prove
that ``delete --force`` cleans up after a runtime killed at any stage.

Points (runtime process unless noted):
  create:state-dir      the state directory exists, nothing else
  create:cgroup         the cgroup exists; the stages run already when they
                        were forked before it (creation._fork_before_cgroup)
  create:forked         the intermediate stage was forked (or the init, then
                        recorded in state.json)
  create:direct-forked  the CLI forked the init itself, its pid is not yet
                        recorded: it must go at its channel's EOF
  create:init-pid       the init exists (its pid is known)
  create:runtime-setup  hooks/net devices done, init still setting up
  create:ready          the init is ready, state and pid file not yet written
  start:connected       start is connected to the init, exec not yet confirmed
  exec:forked           the exec setup process was forked
  delete:killed         the container's processes were killed, nothing removed
  delete:cgroup-gone    the cgroup is removed, the state dir is not

Points in the container's setup stages (forks of the runtime: they inherit
its environment; the runtime survives them and must undo the create):
  intermediate:joined   namespaces given by path were joined
  intermediate:unshared the new namespaces exist, the init is not forked
  init:forked           the init was forked (pid 1 of a new pid namespace)
  init:mounted          the mount plan ran, before pivot_root
  init:pivoted          after pivot_root, before READY

tests/integration/test_faults.py kills at every point listed here.

``PYRUNC_TEST_HOLD=<point>`` instead stops the process there (SIGSTOP to
itself) until the test has looked at it from the host and sent SIGCONT
(tests/integration/adversarial/test_fds.py reads the fds a stage holds at that point).
pid 1 of a pid namespace cannot stop itself: it waits for SIGCONT,
named ``pyrunc-held``.
  exec:joined           the exec setup process joined the container's namespaces

``PYRUNC_TEST_FAIL=<point>`` makes ``fail(<point>)`` raise ENOMEM there,
for the paths that must survive a failing call:
  init:waiter-exec      the init's execveat of the waiter (waiter.py): the
                        Python init waits instead
  create:pidns-back     create's setns back to its own pid namespace after
                        forking the init (creation._fork_stages): the init
                        is killed, create fails
"""

from . import lightos as os  # os's calls without importing os (lightos.py)


def point(name):
    if os.environ.get("PYRUNC_TEST_HOLD") == name:
        if os.getpid() == 1:
            _hold_as_pid_1()
        else:
            os.kill(os.getpid(), 19)  # SIGSTOP
    if os.environ.get("PYRUNC_TEST_FAULT") == name:
        if os.getpid() == 1:
            # pid 1 of a pid namespace is immune to signals sent from inside
            # it, SIGKILL included; exit as abruptly (no cleanup, 128+9)
            os._exit(137)
        os.kill(os.getpid(), 9)


def _hold_as_pid_1():
    """pid 1 of a pid namespace cannot stop itself (a signal it has no
    handler for is dropped): it waits for SIGCONT instead, named
    ``pyrunc-held`` so that a test can find it."""
    import _signal  # loaded already (stages/init.py)

    with open("/proc/self/comm", "w") as f:
        f.write("pyrunc-held")
    _signal.pthread_sigmask(_signal.SIG_BLOCK, {18})
    _signal.sigwait({18})  # SIGCONT
    _signal.pthread_sigmask(_signal.SIG_UNBLOCK, {18})


def fail(name):
    if os.environ.get("PYRUNC_TEST_FAIL") == name:
        raise OSError(12, "Cannot allocate memory (PYRUNC_TEST_FAIL)")
