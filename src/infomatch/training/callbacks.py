"""Training callbacks of our own (the others come straight from Lightning)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from types import FrameType
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar

from infomatch.utils.console import duration_text
from infomatch.utils.errors import RunInterrupted, StoppedByUser

log = logging.getLogger(__name__)


class EpochTimer(L.Callback):
    """Logs ``time/epoch_s``: wall-clock seconds of each epoch, its validation included (what a run's length is made
    of)."""

    def __init__(self) -> None:
        self._start: float | None = None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._start is not None:
            pl_module.log("time/epoch_s", time.perf_counter() - self._start)


class ProgressBar(TQDMProgressBar):
    """Lightning's tqdm bars on a terminal; where stdout is a file (nohup, SLURM, CI) one log line per epoch
    instead: a bar redrawn every step fills such a log with megabytes of carriage returns and cursor moves.
    ``terminal``: None detects it."""

    def __init__(self, refresh_rate: int = 1, terminal: bool | None = None) -> None:
        super().__init__(refresh_rate=refresh_rate)
        self.terminal = terminal
        self._log_epochs = False
        self._fit_start: tuple[float, int] | None = None  # (time, epoch) this process started training at

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        self._log_epochs = not (sys.stdout.isatty() if self.terminal is None else self.terminal)  # the bars' stream
        if self._log_epochs:
            self.disable()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        self._fit_start = time.perf_counter(), trainer.current_epoch  # a resumed run starts past epoch 0

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._log_epochs and trainer.is_global_zero and self._fit_start is not None:
            done = trainer.current_epoch + 1
            elapsed = time.perf_counter() - self._fit_start[0]
            metrics = ", ".join(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}"
                                for key, value in self.get_metrics(trainer, pl_module).items()
                                if key != "v_num" and not key.endswith("_step"))  # the epoch's mean is there
            epochs = trainer.max_epochs
            per_epoch = elapsed / (done - self._fit_start[1])
            left = f"; about {duration_text(per_epoch * (epochs - done))} left" if epochs and epochs > done else ""
            log.info("epoch %d/%s done after %s: %s%s", done, epochs or "?", duration_text(elapsed), metrics, left)


class StopOnSignal(L.Callback):
    """Stops training before the next batch once the process gets one of ``signals`` (preemption, time limit, Ctrl-C).

    The run continues exactly from its last end-of-epoch ``last.ckpt`` (written atomically), so nothing is saved
    here: a mid-epoch checkpoint could not be resumed exactly (the epoch's batch order and running means are not
    in it). On ``requeue_signal`` inside a SLURM job, rank 0 also requeues the job (``scontrol requeue``), which
    reruns the same command; with ``resume=auto`` it continues from ``last.ckpt``. Installing our handler
    before Lightning's keeps Lightning's SLURM handler (a mid-epoch ``hpc_ckpt_N.ckpt``) from being installed.
    A second Ctrl-C (SIGINT) stops at once, as Python's own handler does.
    """

    def __init__(self, signals: tuple[str, ...] = ("SIGTERM", "SIGUSR1", "SIGINT"),
                 requeue_signal: str | None = "SIGUSR1") -> None:
        self.signals = [signal.Signals[name] for name in signals]
        self.requeue_signal = signal.Signals[requeue_signal] if requeue_signal else None
        self.received: signal.Signals | None = None
        self._previous: dict[signal.Signals, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        repeated = self.received is not None
        self.received = signal.Signals(signum)
        previous = self._previous.get(self.received)
        if previous is signal.default_int_handler:  # Ctrl-C: Python's handler raises KeyboardInterrupt
            if repeated:
                previous(signum, frame)
            log.warning("received SIGINT: stopping before the next training batch (Ctrl-C again stops at once)")
            return
        log.info("received %s: stopping before the next training batch", self.received.name)
        if callable(previous):  # e.g. submitit's, which logs and leaves the requeue to its own signal (SIGUSR2)
            previous(signum, frame)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit":
            self.received = None
            self._previous = {number: signal.signal(number, self._handle) for number in self.signals}

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous = {}

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        if self.received is None:
            return
        if self.received == self.requeue_signal and trainer.is_global_zero:
            requeue_slurm_job()
        stopped = StoppedByUser if self.received == signal.SIGINT else RunInterrupted
        raise stopped(f"training stopped by {self.received.name} at epoch {trainer.current_epoch} "
                      f"(global step {trainer.global_step})")


def requeue_slurm_job() -> None:
    """``scontrol requeue`` this SLURM job (array task), when there is one; a failure is logged, not raised."""
    array_job, array_task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    job = f"{array_job}_{array_task}" if array_job and array_task else os.environ.get("SLURM_JOB_ID")
    if not job:
        return
    try:
        result = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        log.warning("could not requeue SLURM job %s: %s", job, error)
        return
    if result.returncode == 0:
        log.info("requeued SLURM job %s", job)
    else:
        log.warning("could not requeue SLURM job %s: %s", job, result.stderr.strip())


def run_time_estimate(seconds_per_step: float, steps_per_epoch: int, epochs_left: int, on_cpu: bool) -> str:
    """The line RunTimeEstimate logs: training time per epoch and for the rest of the run, with a hint when a
    CPU would need more than a working day."""
    epoch = seconds_per_step * steps_per_epoch
    total = epoch * epochs_left
    line = (f"expected training time: {duration_text(epoch)} per epoch x {epochs_left} epochs = {duration_text(total)} "
            f"(validation not included; {seconds_per_step:.2f} s per step)")
    if on_cpu and total > 8 * 3600:
        line += (". That is long for a CPU: experiment=cpu_study (width 16, 8 epochs) gives a real result in "
                 "minutes to hours, and the full protocol wants a GPU")
    return line


class RunTimeEstimate(L.Callback):
    """Logs the expected training time once ``measure_steps`` steps after the first ``warmup_steps`` have run
    (the first steps pay for allocation and warm-up), so a run that would take days says so in its first minute."""

    def __init__(self, warmup_steps: int = 3, measure_steps: int = 10) -> None:
        self.warmup_steps, self.measure_steps = warmup_steps, measure_steps
        self._steps = 0
        self._start: float | None = None
        self._done = False

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._steps, self._start, self._done = 0, None, False

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if self._done:
            return
        self._steps += 1
        if self._steps == self.warmup_steps:
            self._start = time.perf_counter()
        elif self._start is not None and self._steps == self.warmup_steps + self.measure_steps:
            self._done = True
            seconds_per_step = (time.perf_counter() - self._start) / self.measure_steps
            steps = trainer.num_training_batches
            if trainer.is_global_zero and isinstance(steps, int) and trainer.max_epochs:
                epochs_left = trainer.max_epochs - trainer.current_epoch
                on_cpu = trainer.strategy.root_device.type == "cpu"
                log.info(run_time_estimate(seconds_per_step, steps, epochs_left, on_cpu))
