"""Crash-safe file writes: a checkpoint or result file is either the old complete one or the new complete one.

Lightning's own local save writes to a temporary file in the system temp folder and moves it into
place; when that folder is on another file system (tmpfs, cluster scratch) the move is a copy into the
target, so a kill during it leaves a truncated last.ckpt. Here the temporary file lives next to the
target, is flushed to disk, and replaces it with one atomic rename.

Free of torch, so failed.json (infomatch.runs.failures) is written the same way at no import cost.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from infomatch.utils.errors import write_error

# O_EXCL: fail rather than open a file or link that is already there; O_NOFOLLOW says the same for links
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write`` on a temporary file beside ``path``, sync it to disk, then rename it over ``path``.

    The temporary file is always created new, so a link planted at its name is replaced, never written
    through. If anything fails (a full disk, a read-only folder, an interrupt) it is removed and ``path`` is
    left as it was; a failed write (disk full, read-only, no permission) is raised as the OutputError naming
    ``path``.
    """
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial")  # hidden and not *.ckpt: never taken for a checkpoint
    try:
        partial.unlink(missing_ok=True)  # a killed write's leftover, or a planted link (unlink removes the link)
        with os.fdopen(os.open(partial, _NEW_FILE, 0o666), "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    except BaseException as error:
        partial.unlink(missing_ok=True)
        failed = write_error(error, path)
        if failed is not None:
            raise failed from error
        raise
    if os.name == "posix":  # make the rename itself durable
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
