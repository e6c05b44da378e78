"""Atomic file output: a file is either complete or absent."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` and move the result to ``path`` only if it succeeded.

    The temporary file lives in the destination folder so the final rename is atomic.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp_name)
    try:
        write(tmp_path)
        # mkstemp creates the file private (0600); give it the permissions a plain open() would.
        os.chmod(tmp_path, 0o666 & ~_current_umask())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return path


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_together(outputs: list[tuple[str | Path, Callable[[Path], None]]]) -> list[Path]:
    """Write several files so that they appear together or not at all.

    Each ``write(tmp_path)`` writes into a temporary file beside its destination; only when every one has
    succeeded are they renamed into place. If anything fails (an exception, or a signal turned into one), the
    temporary files are removed and so are the destinations renamed so far.
    """
    staged: list[tuple[Path, Path]] = []
    placed: list[Path] = []
    try:
        for destination, write in outputs:
            destination = Path(destination)
            destination.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".tmp", dir=destination.parent)
            os.close(fd)
            staged.append((Path(tmp_name), destination))
            write(Path(tmp_name))
            os.chmod(tmp_name, 0o666 & ~_current_umask())
        for tmp_path, destination in staged:
            os.replace(tmp_path, destination)
            placed.append(destination)
    except BaseException:
        for tmp_path, _ in staged:
            tmp_path.unlink(missing_ok=True)
        for destination in placed:
            destination.unlink(missing_ok=True)
        raise
    return placed
