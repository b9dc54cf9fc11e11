"""The records the library API returns (pyrunc/runtime.py): small frozen
classes with runc's field names.

A module of their own so that the verbs that return none of them (start,
kill, delete, pause, resume, update) do not load them: creating a class
costs tens of thousands of instructions at every import, and those verbs
run on every container.  ``pyrunc.runtime`` re-exports them.

They are small classes with ``__slots__`` rather than dataclasses: the
dataclasses module pulls in inspect, re and more, milliseconds on every
command.
"""

from . import state as st

TYPE_CHECKING = False  # typing is for the checker only: not imported at run time
if TYPE_CHECKING:
    from typing import Any


class _Record:
    """A small frozen record: keyword construction, read-only fields,
    equality by value, ``to_dict()``."""

    __slots__: tuple[str, ...] = ()

    def __init__(self, **fields: "Any") -> None:
        for name in self.__slots__:
            object.__setattr__(self, name, fields.pop(name, None))
        if fields:
            raise TypeError(f"{type(self).__name__}: unknown fields {sorted(fields)}")

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and all(getattr(self, n) == getattr(other, n) for n in self.__slots__)

    def __hash__(self) -> int:
        return hash(tuple(repr(getattr(self, n)) for n in self.__slots__))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__) + ")"


class ContainerState(_Record):
    """A container's state: the fields of runc's ``state`` JSON.

    ``status`` is one of creating, created, running, paused, stopped;
    ``pid`` is the init's host pid, 0 once stopped; ``owner`` is "" from
    ``state`` (as runc) and the owner's user name from ``list``."""

    __slots__ = ("oci_version", "id", "pid", "status", "bundle", "rootfs", "created", "owner", "annotations")
    oci_version: str
    id: str
    pid: int
    status: str
    bundle: str
    rootfs: str
    created: str
    owner: str
    annotations: dict[str, str]

    def to_dict(self) -> "dict[str, Any]":
        """runc's JSON object (its key names and order; annotations only
        when there are any)."""
        out = {
            "ociVersion": self.oci_version,
            "id": self.id,
            "pid": self.pid,
            "status": self.status,
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": self.owner,
        }
        if self.annotations:
            out["annotations"] = self.annotations
        return out


class Process(_Record):
    """A process started by ``run``, ``exec`` or ``restore``.

    ``id``: the container's id; ``pid``: the host pid of the process when
    it was started detached (None in the foreground: the process is gone
    when the call returns); ``exit_status``: its exit status in the
    foreground (128+n when killed by signal n, 255 when it could not be
    waited for), None when detached."""

    __slots__ = ("id", "pid", "exit_status")
    id: str
    pid: int | None
    exit_status: int | None


class Stats(_Record):
    """``events --stats``: ``data`` is runc's stats object (cpu, memory,
    pids, blkio, hugetlb, ... as the cgroup reports them); the properties
    read its most used fields (None when the controller is missing)."""

    __slots__ = ("id", "data")
    id: str
    data: "dict[str, Any]"

    def _get(self, *keys: str) -> "Any":
        v: "Any" = self.data
        for k in keys:
            if not isinstance(v, dict):
                return None
            v = v.get(k)
        return v

    @property
    def memory_usage(self) -> int | None:
        return self._get("memory", "usage", "usage")

    @property
    def memory_limit(self) -> int | None:
        return self._get("memory", "usage", "limit")

    @property
    def pids_current(self) -> int | None:
        return self._get("pids", "current")

    @property
    def cpu_usage_total(self) -> int | None:
        """CPU time used, in nanoseconds."""
        return self._get("cpu", "usage", "total")

    def to_dict(self) -> "dict[str, Any]":
        return {"type": "stats", "id": self.id, "data": self.data}


class Event(_Record):
    """One event of ``events``: ``type`` "stats" (``data``: as in
    ``Stats``) or "oom" (``data`` None: the kernel's OOM killer killed a
    process of the container since the last event)."""

    __slots__ = ("type", "id", "data")
    type: str
    id: str
    data: "dict[str, Any] | None"

    def to_dict(self) -> "dict[str, Any]":
        out: "dict[str, Any]" = {"type": self.type, "id": self.id}
        if self.data is not None:
            out["data"] = self.data
        return out


def oci_state(record: st.ContainerState, status: str, owner: str = "") -> ContainerState:
    return ContainerState(
        oci_version=record.oci_version,
        id=record.id,
        pid=record.init_pid if status not in ("stopped", "creating") else 0,
        status=status,
        bundle=record.bundle,
        rootfs=record.rootfs,
        created=record.created,
        owner=owner,
        annotations=dict(record.annotations or {}),
    )
