"""Mistakes a user can make (a setting, a path, a file): each entry point reports them as one paragraph.

The message of every error here names the setting or file and says what to do, so the entry points
print it without a traceback.
"""

from __future__ import annotations

import errno
import sys
from pathlib import Path
from typing import NoReturn, cast


class UserError(Exception):
    """The user's mistake; the message says what to fix."""


class ConfigError(UserError):
    """A setting is invalid or inconsistent."""


class DatasetError(UserError):
    """The data set is missing or unreadable."""


class EvaluationError(UserError):
    """A problem with the evaluation's inputs."""


class CheckpointError(EvaluationError):
    """A checkpoint is missing, unreadable or inconsistent; the message names the file."""


class UnsafeCheckpointError(UserError):
    """A checkpoint holds pickled objects, or a stored config naming code, that would run when loaded; it is never
    loaded."""


class RunInterrupted(UserError):
    """Training was stopped by a signal (preemption, time limit); the message says how to continue."""


class StoppedByUser(RunInterrupted):
    """Training was stopped by Ctrl-C: recorded like any stop, and it ends a sweep too."""


class OutputError(UserError):
    """A file cannot be written (disk full, read-only folder, no permission); the message names the file."""


# what to do about each way a write fails, by errno
WRITE_FIXES = {
    errno.ENOSPC: "Free space on that disk",
    errno.EDQUOT: "Free space within your disk quota",
    errno.EROFS: "Remount that file system writable",
    errno.EACCES: "Give yourself write permission there",
    errno.EPERM: "Give yourself write permission there",
}


def write_error(error: BaseException, path: str | Path | None = None) -> OutputError | None:
    """The OutputError for the first failed write (an OSError of WRITE_FIXES) in ``error``'s chain, else None.

    The chain is followed through causes and contexts to its root, the write that failed first: torch wraps
    a failed write in a RuntimeError, and Lightning's clean-up after it often fails on the same disk again.
    An OutputError already in the chain is taken as it is (it names the file); else ``path`` names the file
    when the OSError does not (a write to an open handle).
    """
    named: OutputError | None = None
    failed: OSError | None = None
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        if isinstance(link, OutputError):
            named = link
        elif isinstance(link, OSError) and link.errno in WRITE_FIXES:
            failed = link
        link = link.__cause__ or link.__context__
    if named is not None or failed is None:
        return named
    target = path or failed.filename or "a file of the run"
    code = cast(int, failed.errno)  # one of WRITE_FIXES (checked in the loop), so never None
    return OutputError(f"cannot write {target}: {failed.strerror} ({errno.errorcode[code]}). "
                       f"{WRITE_FIXES[code]} and run the command again, or write elsewhere: "
                       "paths.log_dir=<folder> (hydra.run.dir=<folder> for one run, hydra.sweep.dir=<folder> for "
                       "a sweep).")


def exit_with(error: BaseException | str) -> NoReturn:
    """How every entry point ends on a user error: ``error: <its paragraph>`` on stderr, exit status 1, no traceback."""
    print(f"error: {error}", file=sys.stderr)
    sys.exit(1)
