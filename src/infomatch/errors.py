"""Mistakes a user can make (a setting, a path, a file): each entry point reports them as one paragraph.

The message of every error here names the setting or file and says what to do, so the entry points
print it without a traceback.
"""

from __future__ import annotations


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
    """A checkpoint holds pickled objects, or a stored config naming code, that would run when loaded; it is never loaded."""


class RunInterrupted(UserError):
    """Training was stopped by a signal (preemption, time limit); the message says how to continue."""


class StoppedByUser(RunInterrupted):
    """Training was stopped by Ctrl-C: recorded like any stop, and it ends a sweep too."""
