"""The container's filesystem: a declarative mount plan, then its execution.

``plan(config, ...)`` turns the config into an ordered list of operations
(``Op`` subclasses) without touching the system: it is pure, unit-tested
and printed with ``--debug``.  ``execute(ops, ctx)`` runs them in the init,
in the container's new mount namespace, before ``pivot_root``.

Safety, by construction rather than by special cases (docs/security.md):
- every path inside the rootfs is resolved once, from an fd of the rootfs,
  with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), and missing
  components are created fd-relative (mkdirat/mknodat), so symlinks in the
  image can never point a mount, mkdir or mknod at the host;
- mounts target that fd (``/proc/self/fd/N`` or move_mount on the fd), never
  a path string that could be swapped between check and use;
- bind mounts are built detached (open_tree), given their flags with
  mount_setattr, then attached with move_mount;
- /proc and /sys must be real directories; nothing but proc may be mounted
  on /proc and only the lxcfs-style allow-list below it;
- the null device used for masking is verified to be char 1:3 by fstat.

The package: ``plan`` (the plan and its execution), ``ops`` (the mount
operations), ``devices`` (device nodes), ``resolve`` (paths inside the
rootfs, bind sources outside it), ``pivot`` (pivot_root)."""

from ..config.semantic import clean_path
from .ops import BindMount, CgroupMount, Op, ReadonlyRoot
from .plan import PROC_MOUNT_ALLOWLIST, ROOTFS_PROPAGATION, check_plan, execute, finish, plan
from .pivot import pivot
from .resolve import PlanContext, collect_sources, idmap_userns, prepare_in_host

__all__ = [
    "PROC_MOUNT_ALLOWLIST",
    "ROOTFS_PROPAGATION",
    "BindMount",
    "CgroupMount",
    "Op",
    "PlanContext",
    "ReadonlyRoot",
    "check_plan",
    "clean_path",
    "collect_sources",
    "execute",
    "finish",
    "idmap_userns",
    "pivot",
    "plan",
    "prepare_in_host",
]
