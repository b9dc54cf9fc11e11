"""Exception hierarchy of the core library.

Messages match runc's wording where callers match substrings of them
(containerd: "does not exist", "container not running").
Every error is reported by the CLI as exactly one line.
"""


class PyruncError(Exception):
    """Base of every error the runtime reports to its caller."""


class ConfigError(PyruncError):
    """config.json (or another input document) is invalid.

    The message names the field and the rule, e.g.
    ``config.json: linux.namespaces[2].type: "foo" is not one of pid, ...``.
    """


class ContainerNotExist(PyruncError):
    def __init__(self, container_id: str = "") -> None:
        super().__init__("container does not exist")
        self.container_id = container_id


class ContainerExists(PyruncError):
    def __init__(self, container_id: str) -> None:
        super().__init__(f"container with id exists: {container_id}")


class ContainerNotRunning(PyruncError):
    def __init__(self, msg: str = "container not running") -> None:
        super().__init__(msg)


class InvalidState(PyruncError):
    """An operation is not allowed in the container's current status."""


class InvalidID(PyruncError):
    pass


class StageError(PyruncError):
    """A setup stage of the container (in a child process) failed.

    The message is the root cause as reported by the stage, so that the
    caller sees it in the one error line.
    """


class HookError(PyruncError):
    pass


class CgroupError(PyruncError):
    pass


class UsageError(PyruncError):
    """Bad command-line usage (unknown flag, missing argument)."""
