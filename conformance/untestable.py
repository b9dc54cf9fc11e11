"""Clauses the suite does not test, each with the reason.

Categories:
  not-linux   applies to another platform (Windows, Solaris, Hyper-V)
  author      an obligation on whoever writes config.json or on future spec
              versions, not an observable runtime behaviour
  unobservable an implementation technique with no externally visible effect
  hardware    needs hardware/kernel features this machine lacks
  cgroup-v2   needs a pure cgroup v2 host (this one is v1 hybrid; see v2vm)
  todo        testable here, test not yet written
"""

from __future__ import annotations

# (category, reason, file, heading or None, substring of the sentence or None, context or None)
RULES = [
    ("not-linux", "Windows/Solaris/Hyper-V only", None, None, "Windows", None),
    ("not-linux", "Windows/Solaris/Hyper-V only", None, None, "Solaris", None),
    ("not-linux", "Windows/Solaris/Hyper-V only", None, None, "Hyper-V", None),
    ("not-linux", "Windows only", "config.md", "Mounts", "One mount destination MUST NOT be nested", None),
    ("not-linux", "non-Linux platforms only", "config.md", "Mounts", "For all other platforms", None),
    ("not-linux", "Windows only", "config.md", "Platform-specific configuration", None, None),
    ("author", "naming advice for bundle authors", "config.md", "Root", "SHOULD be the conventional `rootfs`", None),
    (
        "author",
        "advice to bundle authors; the relative form is tested",
        "config.md",
        "Mounts",
        "Linux: This value SHOULD be an absolute path",
        None,
    ),
    (
        "author",
        "table header; each option row is tested",
        "config.md",
        "Linux mount options",
        "Runtimes MUST/SHOULD/MAY implement",
        None,
    ),
    (
        "author",
        "table note; each option row is tested",
        "config.md",
        "Linux mount options",
        'The "MUST" options correspond to',
        None,
    ),
    (
        "unobservable",
        "implementation technique; only the resulting mapping is observable",
        None,
        None,
        "SHOULD be implemented using `mount_setattr",
        None,
    ),
    ("author", "JSON object keys are always strings", "config.md", "Annotations", "Keys MUST be strings.", None),
    ("author", "naming advice for annotation authors", "config.md", "Annotations", "reverse domain notation", None),
    (
        "author",
        "constrains image-spec values the runtime cannot judge",
        "config.md",
        "Annotations",
        "The annotation value MUST have a valid value",
        None,
    ),
    (
        "author",
        "advice on image-spec conversion",
        "config.md",
        "Annotations",
        "This annotation SHOULD only be used in accordance",
        None,
    ),
    (
        "author",
        "reserves names for future specifications",
        "config.md",
        "Annotations",
        "reserved and MUST NOT be used by subsequent",
        None,
    ),
    (
        "author",
        "reserves the org.opencontainers key namespace",
        "config.md",
        "Annotations",
        "namespace for keys is reserved",
        None,
    ),
    (
        "author",
        "the spec's kill operation always names the signal; no spec operation sends a default stop signal",
        "config.md",
        "Annotations",
        "stopSignal",
        None,
    ),
    (
        "author",
        "tautology: every path is absolute or relative",
        "config-linux.md",
        "Cgroups Path",
        "MUST be either an absolute path or a relative path",
        None,
    ),
    (
        "author",
        "which values are invalid is runtime-defined",
        "config-linux.md",
        "Cgroups Path",
        "Runtimes MAY consider certain",
        None,
    ),
    (
        "author",
        "the fitness check itself is optional and runtime-defined",
        "config-linux.md",
        "Control groups",
        None,
        None,
    ),
    (
        "author",
        "advice to bundle authors",
        "config-linux.md",
        "Devices",
        "SHOULD NOT be used for multiple devices",
        None,
    ),
    ("author", "constraint on config values; the runtime MAY reject", "config-linux.md", "CPU", None, None),
    ("author", "constraint on config values", "config-linux.md", "Block IO", None, None),
    ("author", "constraint on config values; rdma controller absent here", "config-linux.md", "RDMA", None, None),
    (
        "cgroup-v2",
        "checkBeforeUpdate concerns the non-spec `update` operation on cgroup v2",
        "config-linux.md",
        "Memory",
        None,
        None,
    ),
    (
        "cgroup-v2",
        "cgroup v2 delegation; this host is cgroup v1 hybrid (run the suite under v2vm)",
        "config-linux.md",
        "Cgroup ownership",
        None,
        None,
    ),
    ("cgroup-v2", "cgroup v2 only; this host is cgroup v1 hybrid", "config-linux.md", "Unified", None, None),
    ("cgroup-v2", "v1-to-v2 conversion only happens on a cgroup v2 host", "config-linux.md", "Example", None, None),
    (
        "hardware",
        "no resctrl filesystem (Intel RDT / AMD PQoS) on this machine",
        "config-linux.md",
        "IntelRdt",
        None,
        None,
    ),
    (
        "todo",
        "needs a throwaway network device moved from a private runtime netns",
        "config-linux.md",
        "Network Devices",
        None,
        None,
    ),
    (
        "todo",
        "needs a throwaway network device moved from a private runtime netns",
        "config-linux.md",
        "Namespace Lifecycle and Container Termination",
        None,
        None,
    ),
    (
        "todo",
        "mount(8) custom-option behaviour",
        "config.md",
        "Linux mount options",
        "custom option string is already recognized",
        None,
    ),
    (
        "todo",
        "filesystem-specific data options are exercised (mode=, size=) but not asserted separately",
        "config.md",
        "Linux mount options",
        "treat unknown options as",
        None,
    ),
    (
        "todo",
        "idmapped mount taking the container's user-namespace mapping",
        "config.md",
        "Linux mount options",
        "If they are not specified, the runtime MAY use",
        None,
    ),
]


def disposition(clause: dict) -> tuple[str, str] | None:
    """(category, reason) if the clause is deliberately untested, else None.
    Only consulted for clauses no test cites: a test always takes precedence
    over a broad rule (e.g. the one tested IntelRdt clause)."""
    for cat, reason, file, heading, sub, ctx in RULES:
        if file and clause["file"] != file:
            continue
        if heading and clause["heading"] != heading:
            continue
        if sub and sub not in clause["sentence"]:
            continue
        if ctx and clause["context"] != ctx:
            continue
        return cat, reason
    return None
