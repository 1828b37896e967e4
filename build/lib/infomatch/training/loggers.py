"""Lightning's CSV and TensorBoard loggers, except that a resumed run keeps the run's whole history.

Lightning's CSVLogger deletes the folder's ``metrics.csv`` when a run starts, so a resumed run kept only the
epochs after its checkpoint. Here train.py calls ``continue_from(step)`` with the resumed checkpoint's global
step before anything is logged: the rows logged before that step are kept, once, and the rows at or after it
(the interrupted epoch, which the resumed run trains and logs again) are dropped, so the file ends up as an
uninterrupted run's. Epoch-end rows are logged at the epoch's last step, before the next epoch's first.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch import loggers
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from infomatch.runs.checkpoint_io import atomic_write


class _ContinuedWriter(ExperimentWriter):
    """The CSV writer; with ``keep_before_step`` it keeps the earlier rows of that file instead of deleting it."""

    def __init__(self, log_dir: str, keep_before_step: int | None) -> None:
        self.keep_before_step = keep_before_step
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:  # called by Lightning's __init__ on an existing folder
        if self.keep_before_step is None:  # a new run: Lightning's own (it deletes an earlier file)
            super()._check_log_dir_exists()
            return
        if not self._fs.isfile(self.metrics_file_path):
            return
        with self._fs.open(self.metrics_file_path, "r", newline="") as file:
            reader = csv.DictReader(file)
            rows = [row for row in reader if int(row["step"]) < self.keep_before_step]
            self.metrics_keys = list(reader.fieldnames or [])
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=self.metrics_keys)
        writer.writeheader()
        writer.writerows(rows)
        atomic_write(self.metrics_file_path, lambda handle: handle.write(text.getvalue().encode()))


class CSVLogger(loggers.CSVLogger):
    """Lightning's CSVLogger; after :meth:`continue_from` it continues the run's ``metrics.csv``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._resume_step: int | None = None

    def continue_from(self, step: int) -> None:
        """Keep the rows logged before global step ``step`` (the resumed checkpoint's); call before logging."""
        if self._experiment is not None:
            raise RuntimeError("continue_from must be called before the logger writes anything")
        self._resume_step = step

    @property
    @rank_zero_experiment
    def experiment(self) -> _ContinuedWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ContinuedWriter(self.log_dir, self._resume_step)
        return self._experiment


class TensorBoardLogger(loggers.TensorBoardLogger):
    """Lightning's TensorBoardLogger; after :meth:`continue_from` TensorBoard hides the earlier events at or after
    that step (SummaryWriter's ``purge_step``), which the resumed run logs again. The event files are all kept."""

    def continue_from(self, step: int) -> None:
        if self._experiment is not None:
            raise RuntimeError("continue_from must be called before the logger writes anything")
        self._kwargs["purge_step"] = step


# the loggers whose continue_from train.py calls when resuming
HISTORY_LOGGERS = (CSVLogger, TensorBoardLogger)
