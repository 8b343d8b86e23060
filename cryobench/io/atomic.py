"""Atomic writes: write to a temporary sibling, then rename it into place.

A crash or an exception half-way leaves the destination untouched (or absent), never partial.
Outputs get the permissions an ordinary ``open``/``mkdir`` would give them (``0666`` / ``0777``
less the umask), not the private ``0600`` / ``0700`` of :mod:`tempfile`.

Directories (:func:`atomic_dir`) are swapped into place with one ``renameat2(RENAME_EXCHANGE)``
on Linux, so there is no moment without a complete ``dest``; elsewhere the old directory is
first moved to a uniquely named hidden sibling. Either way the old content is then deleted, a
process killed at any point leaves at most hidden ``.<name>.*`` siblings (never a name that
blocks the next write), and two writers finishing the same destination at once both succeed
(the last one to finish wins).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_text", "atomic_dir", "current_umask", "default_mode"]

_FINISH_ATTEMPTS = 100


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux ``/proc``)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # not thread-safe for a moment; only where /proc is unavailable
    os.umask(mask)
    return mask


def default_mode(directory: bool = False) -> int:
    """``0o666`` (files) or ``0o777`` (directories) less the current umask."""
    return (0o777 if directory else 0o666) & ~current_umask()


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; on success rename it to ``dest``.

    The file gets the umask's permissions before it is renamed. Example::

        with atomic_path("out.png") as tmp:
            fig.savefig(tmp)
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=suffix or dest.suffix,
                               dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        try:
            os.chmod(tmp_path, default_mode())
            os.replace(tmp_path, dest)
        except OSError as exc:  # name the destination, not the temporary file
            raise OSError(exc.errno, exc.strerror, str(dest)) from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def atomic_write_text(dest: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``dest`` atomically (UTF-8)."""
    with atomic_path(dest) as tmp:
        tmp.write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------------------------
# Directories
# --------------------------------------------------------------------------------------------

_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _load_renameat2():
    if not hasattr(os, "uname") or os.uname().sysname != "Linux":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_renameat2 = _load_renameat2()


def _rename2(src: Path, dst: Path, flags: int) -> bool:
    """``renameat2(src, dst, flags)``; False when the call is not supported here (the kernel
    or the file system), an ``OSError`` for any other failure."""
    assert _renameat2 is not None
    rc = _renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(src), None, str(dst))


def _finish_exchange(tmp: Path, dest: Path) -> bool:
    """Move ``tmp`` to ``dest`` with renameat2; the old content is deleted. False if renameat2
    does not work here."""
    for _ in range(_FINISH_ATTEMPTS):
        try:
            if not _rename2(tmp, dest, _RENAME_NOREPLACE):
                return False
            return True
        except FileExistsError:
            pass
        try:
            if not _rename2(tmp, dest, _RENAME_EXCHANGE):
                return False
        except FileNotFoundError:  # dest vanished after the first call (another writer)
            continue
        shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the previous dest
        return True
    raise OSError(errno.EBUSY, "could not move the finished directory into place "
                  f"after {_FINISH_ATTEMPTS} attempts (other writers?)", str(dest))


def _finish_rename(tmp: Path, dest: Path) -> None:
    """Portable fallback: move an existing ``dest`` aside under a unique name, then rename."""
    for _ in range(_FINISH_ATTEMPTS):
        old = dest.with_name(f".{dest.name}.old-{uuid.uuid4().hex[:12]}")
        moved = False
        try:
            os.rename(dest, old)
            moved = True
        except FileNotFoundError:
            pass
        try:
            os.rename(tmp, dest)
        except OSError as exc:
            if moved:
                try:
                    os.rename(old, dest)  # put the previous content back
                except OSError:  # another writer's complete dest is there now
                    shutil.rmtree(old, ignore_errors=True)
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                continue  # another writer put its dest there in between: try again
            raise
        if moved:
            shutil.rmtree(old, ignore_errors=True)
        return
    raise OSError(errno.EBUSY, "could not move the finished directory into place "
                  f"after {_FINISH_ATTEMPTS} attempts (other writers?)", str(dest))


@contextlib.contextmanager
def atomic_dir(dest: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary directory beside ``dest``; on success move it to ``dest``.

    An existing ``dest`` is replaced only after success (see the module docstring). The
    temporary directory has the umask's permissions (files inside should be written with
    :func:`atomic_path` or plain ``open``, which follow the umask too).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        os.chmod(tmp, default_mode(directory=True))
        yield tmp
        if _renameat2 is None or not _finish_exchange(tmp, dest):
            _finish_rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
