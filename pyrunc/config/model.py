"""The internal form of a container's configuration.

config.json is validated and converted once, at ``create``, into these
records; they are persisted in the state directory and every later command
uses them (the spec: edits to config.json after create must not affect the
container).  Conversion pre-computes what the init needs (mount flags,
namespace clone flags, capability numbers, rlimit numbers) so that the init
itself only performs syscalls.

These are small slotted classes rather than ``dataclasses``: importing
``dataclasses`` costs ~20 ms (it pulls in ``inspect``), paid on every call.
"""


class Record:
    """A record with declared fields, round-tripping through plain dicts.

    ``FIELDS`` maps a field name to its default; a default that is a Record
    subclass or ``[RecordSubclass]`` names the nested type.
    """

    __slots__ = ()
    FIELDS: dict = {}
    NESTED: dict = {}  # field -> Record subclass (or [subclass] for lists)

    def __init__(self, **kw):
        for name, default in self.FIELDS.items():
            value = kw.pop(name, None)
            if value is None:
                value = default() if callable(default) else default
            setattr(self, name, value)
        if kw:
            raise TypeError(f"{type(self).__name__}: unknown fields {sorted(kw)}")

    def to_dict(self):
        out = {}
        for name in self.FIELDS:
            v = getattr(self, name)
            if isinstance(v, Record):
                v = v.to_dict()
            elif isinstance(v, list) and v and isinstance(v[0], Record):
                v = [x.to_dict() for x in v]
            out[name] = v
        return out

    @classmethod
    def from_dict(cls, d):
        if d is None:
            return None
        kw = {}
        for name in cls.FIELDS:
            if name not in d:
                continue
            v = d[name]
            nested = cls.NESTED.get(name)
            if nested is not None and v is not None:
                if isinstance(nested, list):
                    v = [nested[0].from_dict(x) for x in v]
                else:
                    v = nested.from_dict(v)
            kw[name] = v
        return cls(**kw)

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__,
                           ", ".join(f"{k}={getattr(self, k)!r}" for k in self.FIELDS))


class Mount(Record):
    """One entry of the mount plan's input (config ``mounts[]``), parsed.

    flags: MS_* for mount(2); clear_flags: MS_* explicitly cleared (e.g.
    ``rw``); data: the filesystem-specific option string; propagation: list
    of MS_* propagation flags applied after mounting; rec_attr_set/clr:
    MOUNT_ATTR_* applied recursively with mount_setattr (``rro`` etc.);
    bind: a bind mount (``bind``/``rbind`` option or type "bind").
    """

    FIELDS = dict(destination="", type="", source="", options=list, flags=0,
                  clear_flags=0, data="", propagation=list, rec_attr_set=0, rec_attr_clr=0,
                  bind=False, recursive=False, tmpcopyup=False, idmap=None)
    __slots__ = tuple(FIELDS)


class Hook(Record):
    FIELDS = dict(path="", args=list, env=list, timeout=None)
    __slots__ = tuple(FIELDS)


class User(Record):
    FIELDS = dict(uid=0, gid=0, umask=None, additional_gids=list)
    __slots__ = tuple(FIELDS)


class Rlimit(Record):
    FIELDS = dict(type="", resource=0, soft=0, hard=0)
    __slots__ = tuple(FIELDS)


class Process(Record):
    """The container process.  ``caps`` maps set name (bounding, effective,
    inheritable, permitted, ambient) to a list of capability numbers known to
    this kernel; unknown names were dropped with a warning at conversion."""

    FIELDS = dict(terminal=False, console_size=None, cwd="/", env=list, args=list,
                  command_line=None, user=User, rlimits=list, caps=None,
                  no_new_privileges=False, apparmor_profile="", selinux_label="",
                  oom_score_adj=None, scheduler=None, io_priority=None,
                  exec_cpu_affinity=None)
    NESTED = dict(user=User, rlimits=[Rlimit])
    __slots__ = tuple(FIELDS)


class Namespace(Record):
    FIELDS = dict(type="", path="", flag=0)
    __slots__ = tuple(FIELDS)


class IDMap(Record):
    FIELDS = dict(container_id=0, host_id=0, size=0)
    __slots__ = tuple(FIELDS)


class Device(Record):
    FIELDS = dict(path="", type="", major=0, minor=0, file_mode=None, uid=None, gid=None)
    __slots__ = tuple(FIELDS)


class Config(Record):
    """Everything the runtime keeps of config.json (see module doc)."""

    FIELDS = dict(
        oci_version="", root_path="", root_readonly=False, mounts=list, process=None,
        hostname=None, domainname=None, hooks=dict, annotations=dict,
        namespaces=list, uid_mappings=list, gid_mappings=list, time_offsets=None,
        devices=list, cgroups_path=None, resources=None, rootfs_propagation="",
        masked_paths=list, readonly_paths=list, sysctl=dict, seccomp=None,
        personality=None, mount_label="", net_devices=None, intel_rdt=None,
        memory_policy=None,
    )
    NESTED = dict(mounts=[Mount], process=Process, namespaces=[Namespace],
                  uid_mappings=[IDMap], gid_mappings=[IDMap], devices=[Device])
    __slots__ = tuple(FIELDS)

    # hooks are stored as {name: [Hook dict]}: converted on access
    def hook_list(self, name):
        return [Hook.from_dict(h) for h in self.hooks.get(name, ())]

    def namespace(self, ns_type):
        for ns in self.namespaces:
            if ns.type == ns_type:
                return ns
        return None

    def has_new_namespace(self, ns_type):
        ns = self.namespace(ns_type)
        return ns is not None and not ns.path
