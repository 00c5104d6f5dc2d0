"""Atomic file writes: write to a temporary file beside the target, then rename.

A reader never sees a half-written file, and a failure (full disk, permission denied, crash)
leaves the previous version untouched and no temporary file behind.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from cardioplan.errors import OutputError

__all__ = ["atomic_path", "atomic_open", "write_json_atomic", "read_json", "explain_os_error",
           "default_mode"]


def explain_os_error(exc: OSError, path: Path | str) -> str:
    """Return a user-facing sentence for an OS error while writing ``path``."""
    if exc.errno == errno.ENOSPC:
        return f"no space left on the device while writing {path}: free some space and retry"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write {path}: permission denied; choose a writable output folder"
    if exc.errno == errno.ENOENT:
        return f"cannot write {path}: its folder does not exist"
    return f"cannot write {path}: {exc.strerror or exc}"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    Use it with writers that take a file name (SimpleITK, VTK, trimesh)::

        with atomic_path(case.image_path) as tmp:
            sitk.WriteImage(image, str(tmp))

    The temporary name keeps the target's suffix (``.nii.gz``, ``.vtp``...) so that writers that
    choose the format from the extension still work.
    """
    target = Path(path)
    if suffix is None:
        suffix = "".join(target.suffixes)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".tmp" + suffix,
                                        dir=target.parent)
        os.close(fd)
    except OSError as exc:
        raise OutputError(explain_os_error(exc, target)) from exc
    tmp = Path(tmp_name)
    try:
        yield tmp
        _fsync_file(tmp)
        os.chmod(tmp, default_mode())  # mkstemp makes 0600; give the usual umask mode
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(explain_os_error(exc, target)) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file for writing and rename it onto ``path`` when the block succeeds."""
    if "r" in mode or "a" in mode or "+" in mode:
        raise ValueError(f"atomic_open is for writing only, got mode={mode!r}")
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as fh:
        yield fh


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> None:
    """Write ``data`` as indented UTF-8 JSON, atomically."""
    text = json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False) + "\n"
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def read_json(path: str | os.PathLike[str], *, what: str = "JSON file") -> Any:
    """Read a JSON file, turning parse errors into a message that names the file."""
    from cardioplan.errors import CaseError

    p = Path(path)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CaseError(f"{what} not found: {p}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CaseError(f"{what} {p} is corrupt ({exc}); restore it from a backup or recreate it") \
            from exc


def default_mode(*, folder: bool = False) -> int:
    """The mode ``open()`` (or ``mkdir``) would give: 0o666 (0o777) less the process umask."""
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if folder else 0o666) & ~umask


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())

