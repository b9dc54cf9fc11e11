"""The switch into the rootfs: pivot_root (or chroot with --no-pivot) and
the detachment of the host's mounts from the container's view."""

from .. import lightos as os  # os's calls without importing os (lightos.py)
from ..linux import procfs
from ..linux import syscalls as sc
from .plan import ROOTFS_PROPAGATION


def pivot(rootfs, no_pivot=False, propagation=""):
    """Enter the rootfs: pivot_root (the old root is detached), or for roots
    on ramfs (--no-pivot) MS_MOVE + chroot, after detaching every mount
    that is not the rootfs, below it or above it (so the host's tree is not
    reachable by escaping the chroot).  Then a shared, slave or unbindable
    ``propagation`` (linux.rootfsPropagation) is applied to the new root
    (it could not be before: the rootfs' parent had to be private)."""
    os.chdir(rootfs)
    if no_pivot:
        _detach_outside(rootfs)
        sc.mount(rootfs, "/", None, sc.MS_MOVE, None)
        os.chroot(".")
    else:
        old_root = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
        try:
            sc.pivot_root(".", ".")
            # The old root is now stacked on top of the new one.  Work on it
            # through its own fd (the cwd is still the new root: a recursive
            # change on "." would strip the container's own mounts of their
            # propagation): make it slave so the detach cannot propagate to
            # the host, then detach it.
            os.fchdir(old_root)
            sc.mount(None, ".", None, sc.MS_SLAVE | sc.MS_REC, None)
            sc.umount2(".", sc.MNT_DETACH)
        finally:
            os.close(old_root)
    os.chdir("/")
    flag = ROOTFS_PROPAGATION.get(propagation or "", 0)
    if propagation and not flag & sc.MS_PRIVATE:
        # Only the new "/" itself: PrepareRoot applied the recursive part of
        # an r-form before the mounts, and a mount's own propagation option
        # (rshared on a volume under rootfsPropagation rslave) must not be
        # overridden now (runc never re-applies it).  runbindable had no
        # earlier step (it would forbid the rootfs bind).
        sc.mount(None, "/", None, flag if flag & sc.MS_UNBINDABLE else flag & ~sc.MS_REC, None)


def _detach_outside(rootfs):
    """--no-pivot: lazily unmount every mount point outside ``rootfs``
    except its ancestors (which MS_MOVE needs), deepest first."""
    rootfs = os.path.realpath(rootfs).rstrip("/") or "/"
    points = {m["mountpoint"] for m in procfs.mounts()}
    for point in sorted(points, key=len, reverse=True):
        inside = point == rootfs or point.startswith(rootfs + "/")
        ancestor = point == "/" or rootfs.startswith(point.rstrip("/") + "/")
        if inside or ancestor:
            continue
        try:
            sc.mount(None, point, None, sc.MS_SLAVE | sc.MS_REC, None)
            sc.umount2(point, sc.MNT_DETACH)
        except OSError:
            pass  # already gone with a parent, or locked: stays hidden under the chroot
