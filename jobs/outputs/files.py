"""Writing files so that a reader never sees half of one: the one place the job does it.

    write_atomically   text files, each written to a hidden sibling, synced, then renamed over
                       its target (the renames follow the writes, so a failure while writing
                       leaves every target as it was)
    replacing          a hidden sibling path for a writer that is not Python (DuckDB's COPY),
                       renamed over the target when the block ends well
    new_folder         a hidden empty folder to fill, which then takes the target folder's
                       place whole (Linux: one `renameat2` exchange)

Every temporary name starts with `.<target name>.` and ends in `.tmp`, so the leftovers of a
writer killed half-way are recognisable and removed by the next writer of the same target.
"""

from __future__ import annotations

import ctypes
import errno
import os
import secrets
import shutil
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


def write_atomically(targets: Sequence[tuple[Path, str]]) -> None:
    """Write each (path, text) as UTF-8, all temporaries first, then rename each into place.

    Raises OSError whose `filename` is the target that could not be written."""
    temporaries: list[Path] = []
    try:
        for path, text in targets:
            _remove_leftovers(path)
            temporaries.append(_temporary(path))
            _write_synced(temporaries[-1], text)
        for (path, _), temporary in zip(targets, temporaries, strict=True):
            os.replace(temporary, path)
    except OSError as error:  # named by the file meant, not its temporary
        raise OSError(error.errno, error.strerror or str(error), str(path)) from error
    finally:
        for temporary in temporaries:
            temporary.unlink(missing_ok=True)


@contextmanager
def replacing(target: Path) -> Iterator[Path]:
    """A hidden sibling of `target` to write; renamed over `target` when the block ends well,
    deleted when it fails. Leftovers of a killed writer are deleted first."""
    _remove_leftovers(target)
    temporary = _temporary(target)
    try:
        yield temporary
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


@contextmanager
def new_folder(target: Path) -> Iterator[Path]:
    """A hidden empty sibling folder to fill; when the block ends well it takes `target`'s
    place whole (`replace_folder`), when it fails it is deleted and `target` stays as it was."""
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(target)
    temp = _temporary(target)
    temp.mkdir()
    try:
        yield temp
        replace_folder(temp, target, _temporary(target))
    finally:
        shutil.rmtree(temp, ignore_errors=True)  # gone already unless something failed


def replace_folder(temp: Path, target: Path, old: Path) -> None:
    """Put `temp` in `target`'s place; a reader sees the old folder or the new, never a part.

    On Linux the two folders are swapped in one system call (`renameat2` with
    RENAME_EXCHANGE), so at every instant `target` is one whole folder, even if the process
    is killed; the old one, now at `temp`, is then deleted. Where the exchange is not
    supported (another OS, a filesystem without it) the old folder is renamed to `old` and
    the new one in: a kill between those two renames leaves no folder at `target` until the
    next writer writes it again.
    """
    if not target.exists():
        os.rename(temp, target)
        return
    if _exchange(temp, target):
        shutil.rmtree(temp, ignore_errors=True)  # the previous folder
        return
    os.rename(target, old)
    try:
        os.rename(temp, target)
    except OSError:
        os.rename(old, target)  # put the previous folder back
        raise
    shutil.rmtree(old, ignore_errors=True)


_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths atomically (Linux `renameat2`); False where the system cannot."""
    if sys.platform != "linux":
        return False
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:  # a C library older than glibc 2.28
        return False
    if renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # the kernel or filesystem cannot
        return False
    raise OSError(code, os.strerror(code), str(second))


def _temporary(target: Path) -> Path:
    return target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")


def _remove_leftovers(target: Path) -> None:
    for leftover in target.parent.glob(f".{target.name}.*.tmp"):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


def _write_synced(path: Path, text: str) -> None:
    """A new file readable as the umask allows (not mkstemp's 0600), its bytes on disk."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
        stream.write(text)
        stream.flush()
        os.fsync(stream.fileno())
