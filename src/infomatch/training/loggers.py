"""Lightning's loggers, except that a resumed run keeps the run's whole history and its tracker run.

MLflow and W&B: the tracker's run id is kept in a file of the run folder (``id_file``), and a resumed run passes it
back, so the tracker continues the same run instead of starting another.

Lightning's CSVLogger deletes the folder's ``metrics.csv`` when a run starts, so a resumed run kept only the
epochs after its checkpoint. Here train.py calls ``continue_from(step)`` with the resumed checkpoint's global
step before anything is logged: the rows logged before that step are kept, once, and the rows at or after it
(the interrupted epoch, which the resumed run trains and logs again) are dropped, so the file ends up as an
uninterrupted run's. Epoch-end rows are logged at the epoch's last step, before the next epoch's first.
"""

from __future__ import annotations

import csv
import io
import uuid
from pathlib import Path
from typing import Any, cast

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch import loggers
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.utilities import rank_zero_only

from infomatch.runs.checkpoint_io import atomic_write
from infomatch.utils.checks import CallOrderError


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
            raise CallOrderError("continue_from()", "the logger writes anything")
        self._resume_step = step

    @property
    @rank_zero_experiment
    def experiment(self) -> _ContinuedWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ContinuedWriter(self.log_dir, self._resume_step)
        return cast(_ContinuedWriter, self._experiment)  # only this property sets it, always to ours


class TensorBoardLogger(loggers.TensorBoardLogger):
    """Lightning's TensorBoardLogger; after :meth:`continue_from` TensorBoard hides the earlier events at or after
    that step (SummaryWriter's ``purge_step``), which the resumed run logs again. The event files are all kept."""

    def continue_from(self, step: int) -> None:
        if self._experiment is not None:
            raise CallOrderError("continue_from()", "the logger writes anything")
        self._kwargs["purge_step"] = step


def _stored_id(id_file: str | None) -> str | None:
    return Path(id_file).read_text().strip() or None if id_file and Path(id_file).is_file() else None


@rank_zero_only
def _store_id(id_file: str | None, run_id: str | None) -> None:
    if id_file and run_id and not Path(id_file).is_file():
        Path(id_file).parent.mkdir(parents=True, exist_ok=True)
        Path(id_file).write_text(run_id + "\n")


class MLFlowLogger(loggers.MLFlowLogger):
    """Lightning's MLFlowLogger, continuing the MLflow run whose id ``id_file`` holds (written at the first start)."""

    def __init__(self, *args: Any, id_file: str | None = None, **kwargs: Any) -> None:
        self._continued = _stored_id(id_file) is not None
        # mypy: positional args could reach run_id; the configs pass keywords only, as Python checks at the call
        super().__init__(*args, run_id=_stored_id(id_file), **kwargs)  # type: ignore[misc]
        self._id_file = id_file

    def log_hyperparams(self, params: Any) -> None:
        # MLflow refuses to change a logged param, and a resumed run's config differs only by resume=
        if not self._continued:
            super().log_hyperparams(params)

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        experiment = super().experiment
        _store_id(self._id_file, self._run_id)  # run_id would ask for experiment again
        return experiment


class WandbLogger(loggers.WandbLogger):
    """Lightning's WandbLogger with a run id kept in ``id_file``: a resumed run continues the same W&B run."""

    def __init__(self, *args: Any, id_file: str | None = None, **kwargs: Any) -> None:
        run_id = _stored_id(id_file) or uuid.uuid4().hex[:8]
        # mypy: positional args could reach id; the configs pass keywords only, as Python checks at the call
        super().__init__(*args, id=run_id, resume="allow", **kwargs)  # type: ignore[misc]
        _store_id(id_file, run_id)


# the loggers whose continue_from train.py calls when resuming
HISTORY_LOGGERS = (CSVLogger, TensorBoardLogger)
