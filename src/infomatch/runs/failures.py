"""Failed runs: each leaves ``failed.json`` in its folder, and a sweep goes on past them.

A single run stops as before: exit 1 with the one-paragraph message for a user error, the traceback otherwise.
A write that fails (disk full, read-only folder, no permission) is a user error too: the message names the file.
A job of a sweep (any launcher: basic, joblib, submitit) records its failure and returns, so its siblings
run; ``FailedJobsReport``, a Hydra callback, names the failed jobs once the sweep ends and exits 1, and checks
before any job that the output folder can be written.
Kept free of torch so the callback costs nothing when Hydra instantiates it at startup.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from infomatch.utils.console import sweep_summary
from infomatch.utils.errors import (
    ConfigError,
    DatasetError,
    EvaluationError,
    OutputError,
    StoppedByUser,
    UnsafeCheckpointError,
    exit_with,
    write_error,
)
from infomatch.utils.files import atomic_write
from infomatch.utils.overrides import override_keys

log = logging.getLogger(__name__)

FAILED_FILE = "failed.json"
TRACEBACK_LINES = 12  # enough for the raising frame and its caller; the full traceback is in the job's log
# failures of this process's sweep jobs whose failed.json could not be written (a full or read-only disk):
# FailedJobsReport names them too (jobs run by joblib or submitit in other processes are not seen)
UNRECORDED: dict[str, str] = {}


def describe(error: BaseException, user_errors: tuple[type[BaseException], ...]) -> dict[str, Any]:
    """The record of a failure: a user error's message as train.py prints it; else type, message and traceback end."""
    if isinstance(error, user_errors):
        return {"error": str(error), "type": type(error).__name__}
    lines = "".join(traceback.format_exception(type(error), error, error.__traceback__)).splitlines()
    return {"error": f"{type(error).__name__}: {error}", "type": type(error).__name__,
            "traceback": lines[-TRACEBACK_LINES:]}


def write_failure(run_dir: Path, record: dict[str, Any]) -> Path:
    """Write ``failed.json`` whole or not at all (a reader never sees half a file)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / FAILED_FILE
    atomic_write(path, lambda handle: handle.write(json.dumps(record, indent=2).encode()))
    return path


def read_failure(run_dir: Path) -> dict[str, Any] | None:
    """The failure record of a run that did not finish; None for a finished run or one with no record.

    A folder with ``metrics.json`` finished: a later attempt that failed there (e.g. a sweep rerun into the same
    hydra.sweep.dir, refused because the folder holds results) does not undo those results.
    """
    path = run_dir / FAILED_FILE
    if (run_dir / "metrics.json").is_file() or not path.is_file():
        return None
    return _load(path)


def _load(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        return {"error": f"unreadable {FAILED_FILE}: {error}", "type": type(error).__name__}


def in_sweep() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def run_recording_failures(task: Callable[[DictConfig], Any], cfg: DictConfig,
                           user_errors: tuple[type[BaseException], ...]) -> Any:
    """``task(cfg)``; if it raises, write ``failed.json`` in the run folder, then stop a single run or return None
    from a sweep job. A run that succeeds removes the record an earlier attempt in its folder left."""
    run_dir = Path(cfg.paths.output_dir)
    try:
        result = task(cfg)
    except Exception as raised:  # KeyboardInterrupt and SystemExit are not failures of this job: they stop the sweep
        error = write_error(raised) or raised
        if (not in_sweep() and isinstance(error, CHECK_ERRORS) and isinstance(error, user_errors)
                and _nothing_of_the_run(run_dir) and _folder_chosen_by_infomatch(run_dir)):
            shutil.rmtree(run_dir, ignore_errors=True)  # a failed check leaves no folder behind
            remove_empty_parents(run_dir.parent)
            exit_with(error)
        record = describe(error, user_errors)
        if HydraConfig.initialized():
            record["overrides"] = list(HydraConfig.get().overrides.task)
        try:
            path: Path | str = write_failure(run_dir, record)
        except (OSError, OutputError):  # the same full or read-only disk: only the message is left
            path = f"{FAILED_FILE} could not be written either"
            UNRECORDED[str(run_dir)] = record["error"]
        if not in_sweep() or isinstance(error, StoppedByUser):  # Ctrl-C stops a sweep, not just its job
            if isinstance(error, user_errors):
                # the message names the setting or file and the fix; a traceback would only bury it
                exit_with(error)
            raise
        if isinstance(error, user_errors):
            log.error("this job failed, the sweep goes on (%s): %s", path, error)
        else:  # unexpected: the whole traceback goes to the job's log, its last lines to failed.json
            log.error("this job failed, the sweep goes on (%s)", path, exc_info=error)
        return None
    (run_dir / FAILED_FILE).unlink(missing_ok=True)
    return result


# a setting, a data set or a checkpoint that failed its check: the run never started
CHECK_ERRORS = (ConfigError, DatasetError, EvaluationError, UnsafeCheckpointError)
BOOKKEEPING = (".hydra", ".run.lock", FAILED_FILE)  # and the job's *.log: what exists before a run writes anything


def remove_empty_parents(folder: Path) -> None:
    """Remove ``folder`` and its ancestors while they are empty, up to the working directory, which stays: the
    outputs/runs or outputs/debug/runs that were made for the run alone."""
    cwd, folder = Path.cwd().resolve(), folder.resolve()
    while folder != cwd and folder.is_relative_to(cwd) and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def _nothing_of_the_run(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds only Hydra's and infomatch's bookkeeping: the run stopped before writing."""
    return run_dir.is_dir() and all(path.name in BOOKKEEPING or path.suffix == ".log" for path in run_dir.iterdir())


def _folder_chosen_by_infomatch(run_dir: Path) -> bool:
    """``run_dir`` is the timestamped run folder Hydra's job claimed through infomatch, not one the command named
    (hydra.run.dir=, run_name=, resume=)."""
    if not HydraConfig.initialized():
        return False
    hydra = cast(DictConfig, HydraConfig.get())  # typed as its HydraConf schema, a DictConfig at run time
    output_dir = OmegaConf.select(hydra, "runtime.output_dir", default=None, throw_on_missing=False)
    if output_dir is None or Path(output_dir).resolve() != run_dir.resolve():
        return False
    named = override_keys([*hydra.overrides.task, *hydra.overrides.hydra])
    return "hydra.run.dir" not in named and "run_name" not in named and "resume" not in named


def check_writable(config: DictConfig, key: str) -> None:
    """Create the folder ``key`` names (hydra.run.dir, hydra.sweep.dir) and write a byte there; exit with one
    paragraph if that fails. Hydra creates it after the callbacks' start hooks, with a long traceback on failure."""
    probe = None
    try:
        folder = Path(str(OmegaConf.select(config, key)))  # resolving it runs infomatch.new_dir, which creates it
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write_check_{os.getpid()}"
        probe.write_bytes(b"0")
    except Exception as error:
        failed = write_error(error)
        if failed is None:
            raise
        exit_with(failed)
    finally:
        if probe is not None:
            probe.unlink(missing_ok=True)


class FailedJobsReport(Callback):
    """At the end of a sweep, name the jobs that wrote ``failed.json`` during it and exit 1.

    The folders are read rather than the jobs' return values, which Hydra does not hand to callbacks, and which
    stay in the worker processes under joblib and submitit. Records already there when the sweep started (a sweep
    rerun into the same folder) are not this sweep's, so are left out. Before a run or a sweep starts, the folder
    it writes to is checked (:func:`check_writable`).
    """

    def __init__(self) -> None:
        self.before: dict[str, int] = {}

    @staticmethod
    def _records(sweep_dir: Path) -> dict[str, int]:
        return {str(path): path.stat().st_mtime_ns for path in sorted(sweep_dir.glob(f"*/{FAILED_FILE}"))}

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        HydraConfig.instance().set_config(config)  # the run folder's name reads ${hydra:...}; run_job sets it again
        check_writable(config, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        check_writable(config, "hydra.sweep.dir")
        self.before = self._records(Path(OmegaConf.select(config, "hydra.sweep.dir")))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(OmegaConf.select(config, "hydra.sweep.dir"))
        failed = {Path(record).parent.name: _load(Path(record))["error"]
                  for record, stamp in self._records(sweep_dir).items() if self.before.get(record) != stamp}
        failed.update({Path(run_dir).name: error for run_dir, error in UNRECORDED.items()
                       if Path(run_dir).parent == sweep_dir})  # this sweep's jobs only
        print(sweep_summary(sweep_dir))
        if not failed:
            return
        lines = [f"error: {len(failed)} job(s) of the sweep in {sweep_dir} failed; the other jobs ran to the end. "
                 f"Each failed job's error is in its folder's {FAILED_FILE}, unless its disk was full or read-only "
                 "(the evaluation skips these runs):"]
        lines += [f"  {name}: {error}" for name, error in failed.items()]
        print("\n".join(lines), file=sys.stderr)
        sys.exit(1)
