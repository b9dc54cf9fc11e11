"""``pyrunc features``: the runtime-spec features document (features.md),
honest about what this build implements on this machine."""

from . import SPEC_VERSION


def features():
    from .capabilities import CAP_NUMBERS, known_cap_count
    from .config.convert import mount_options_supported
    from .lsm import features as lsm_features

    n = known_cap_count()
    caps = sorted((name for name, num in CAP_NUMBERS.items() if num < n), key=CAP_NUMBERS.__getitem__)
    doc = {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": SPEC_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": mount_options_supported(),
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps,
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False, "rdma": True},
            # what this host can apply (lsm.py refuses the fields otherwise)
            **lsm_features(),
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": True}},
            "netDevices": {"enabled": _netdev_supported()},
        },
        "annotations": {
            "org.opencontainers.runc.checkpoint.enabled": "false",
            "io.github.pyrunc.version": __import__("pyrunc").__version__,
        },
        "potentiallyUnsafeConfigAnnotations": [],
    }
    try:
        from .seccomp import supported

        doc["linux"]["seccomp"] = supported()
    except Exception:  # noqa: BLE001 - report seccomp as unavailable
        doc["linux"]["seccomp"] = {"enabled": False}
    return doc


def _netdev_supported():
    try:
        from .netdev import supported

        return bool(supported())
    except Exception:  # noqa: BLE001
        return False
