"""Run folders that never collide: the OmegaConf resolvers used by configs/hydra/default.yaml.

A new run claims its folder with ``mkdir``, which is atomic, so two runs started in the same second
get ``<name>`` and ``<name>_2`` instead of sharing one. A resumed run continues in its own folder,
where Lightning keeps tracking its best checkpoint, and its Hydra files go to a new subfolder of
``.hydra/`` so the original config and overrides are kept.

``run_name=<name>`` gives a run the fixed folder ``<runs>/<name>`` instead, so that the same command run again
(by hand, or by a requeued sbatch script) with ``resume=auto`` finds the run's last checkpoint there.

A DDP run has one folder for all its ranks. When Lightning starts the other ranks itself (``python
train.py trainer=ddp``) it passes them rank 0's ``hydra.run.dir``. When SLURM's ``srun`` starts every rank,
each resolves these resolvers itself: rank 0 claims the folder and leaves its path in a note named after
the job step, and the other ranks read it there (the output folder must be on a file system all nodes share,
as it must for checkpoints anyway).

A run folder belongs to one process at a time: the run that resolves it holds an ``flock`` on its ``.run.lock``
until the process ends (the OS releases it on a crash too), and a second run on the same folder (the same
``run_name``, or a resume of a run still training) is refused before it writes anything there. Only srun rank 0
takes it; Lightning's own DDP ranks are given rank 0's folder as a plain ``hydra.run.dir``.

Sweep jobs run by joblib or submitit in other processes get these resolvers with Hydra's singleton state and
the cached sweep folder with their config, so they land in the folder the launching process claimed.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from omegaconf import OmegaConf

from infomatch.utils.errors import ConfigError, exit_with


def claim_new_dir(path: str) -> str:
    """Create and return ``path``, or ``path_2``, ``path_3``, ... when it is taken."""
    base = Path(path)
    base.parent.mkdir(parents=True, exist_ok=True)
    candidate, number = base, 1
    while True:
        try:
            candidate.mkdir()
            return str(candidate)
        except FileExistsError:
            number += 1
            candidate = base.with_name(f"{base.name}_{number}")


# how long the other srun ranks wait for rank 0's note; srun starts all ranks together, so only a slow
# shared file system takes more than seconds
NOTE_TIMEOUT_S = 600.0


def srun_rank() -> tuple[str, int] | None:
    """(job step key, global rank) of a process that srun started as one rank of several, else None.

    The key names the job, the step and the requeue count, so a requeued job does not read the notes of its
    earlier attempt. Jobs named bash or interactive are not srun ranks to Lightning either.
    """
    if int(os.environ.get("SLURM_NTASKS", "1")) <= 1 or "SLURM_PROCID" not in os.environ:
        return None
    if os.environ.get("SLURM_JOB_NAME") in ("bash", "interactive"):
        return None
    key = "_".join(os.environ.get(name, "0") for name in ("SLURM_JOB_ID", "SLURM_STEP_ID", "SLURM_RESTART_COUNT"))
    return key, int(os.environ["SLURM_PROCID"])


def shared_new_dir(path: str, timeout_s: float | None = None) -> str:
    """:func:`claim_new_dir`, once per srun job step: rank 0 claims, the other ranks get rank 0's folder."""
    launch = srun_rank()
    if launch is None:
        return claim_new_dir(path)
    key, rank = launch
    note = Path(path).parent / ".srun" / key
    if rank == 0:
        claimed = claim_new_dir(path)
        note.parent.mkdir(exist_ok=True)
        partial = note.with_name(f".{key}.partial")
        partial.write_text(claimed)
        os.replace(partial, note)  # the other ranks never read a half-written note
        return claimed
    deadline = time.monotonic() + (NOTE_TIMEOUT_S if timeout_s is None else timeout_s)
    while not note.is_file():
        if time.monotonic() > deadline:
            raise ConfigError(f"srun rank {rank} waited in vain for rank 0 to name the run folder in {note}; the "
                              "output folder (paths.log_dir) must be on a file system that every node shares")
        time.sleep(0.2)
    return note.read_text()


def resumed_run_dir(checkpoint: str | None) -> Path | None:
    """The run folder of an existing ``<run>/checkpoints/<name>.ckpt`` (the layout train.py writes), else None."""
    if not checkpoint:
        return None
    path = Path(str(checkpoint))
    if path.is_file() and path.parent.name == "checkpoints":
        return path.parent.parent
    return None


def named_run_dir(new_dir: str, run_name: str) -> str:
    """``<runs>/<run_name>`` beside the timestamped ``new_dir``: the same folder every time, made if absent."""
    name = str(run_name)
    if not name or name in (".", "..") or any(char in name for char in "=,/\\"):
        # raised while Hydra resolves the run folder, before train.py can catch anything: exit with the message
        exit_with(f"run_name={name!r} must be a plain folder name without '=', ',', '/' or '\\' "
                  "(it is passed back in overrides such as resume=...), e.g. run_name=im_seed0")
    folder = Path(new_dir).parent / name
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder)


LOCK_FILE = ".run.lock"
# open for the life of the process: closing a file would release its lock
_held_locks: dict[Path, TextIO] = {}


def lock_run_dir(folder: Path) -> None:
    """Hold ``folder``'s lock until this process ends; ConfigError naming the holder if another process has it."""
    folder = Path(folder).resolve()
    if folder in _held_locks:
        return
    # kept open (no with-block) while the process lives; "a+", not "w", which would erase the holder's pid
    handle = open(folder / LOCK_FILE, "a+")  # noqa: SIM115
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown pid"
        handle.close()
        raise ConfigError(f"the run folder {folder} is in use by another run ({holder}); two runs never share a "
                          "folder. Let that run end first (then resume=auto continues or reports it), or give this "
                          "run another run_name=...") from None
    handle.truncate(0)
    handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
    handle.flush()
    _held_locks[folder] = handle


def run_dir(resume: str | None, new_dir: str, run_name: str | None = None) -> str:
    """The resumed checkpoint's run folder; else the fixed folder of ``run_name``; else a newly claimed ``new_dir``.

    Locked for this process (srun rank 0 for all its ranks).
    """
    resumed = resumed_run_dir(resume)
    if resumed is not None:
        folder = str(resumed)
    else:
        folder = named_run_dir(new_dir, run_name) if run_name is not None else shared_new_dir(new_dir)
    launch = srun_rank()
    if launch is None or launch[1] == 0:
        try:
            lock_run_dir(Path(folder))
        except ConfigError as error:  # as in named_run_dir: Hydra is resolving the folder, exit with the message
            exit_with(error)
    return folder


def hydra_subdir(output_dir: str) -> str | None:
    """``.hydra`` in a new folder; ``.hydra/<now>`` in one that already has it, so nothing there is overwritten.

    None (no Hydra files) for srun ranks other than 0: rank 0 writes the run's.
    """
    launch = srun_rank()
    if launch is not None and launch[1] > 0:
        return None
    if not (Path(output_dir) / ".hydra").exists():
        return ".hydra"
    claimed = claim_new_dir(str(Path(output_dir) / ".hydra" / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")))
    return str(Path(".hydra") / Path(claimed).name)


def run_label(labels: str, augment: str, seed: int, experiment: str | None = None, data: str | None = None,
              debug: str | None = None, tags: Any = (), base_augment: str | None = None,
              mix: str | None = None) -> str:
    """A run folder's name: ``[<experiment>_][<data>_]<labels>_<augment>[_<base_augment>][_<mix>]_seed<k>[_<tag>...]``.

    The experiment, the data set, the base augmentation and the mixing appear when they are not the defaults
    (none; cifar100, where a debug preset's generated data is implied by its own folder, outputs/debug;
    crop_flip; none). No '=' or ',': paths pass back as overrides."""
    parts = [experiment] if experiment else []
    if data and data != "cifar100" and not debug:
        parts.append(data)
    parts += [labels, augment, *([base_augment] if base_augment and base_augment != "crop_flip" else []),
              *([mix] if mix and mix != "none" else []), f"seed{seed}", *(str(tag) for tag in (tags or ()))]
    label = "_".join(str(part) for part in parts)
    if any(char in label for char in "=,/\\"):
        exit_with(f"tags={list(tags or ())} must be plain words without '=', ',', '/' or '\\': they become part of "
                  "the run folder's name, e.g. tags=[baseline,v2]")
    return label


def log_name(job_name: str) -> str:
    """The run's log file name: ``<job>`` for rank 0, ``<job>_rank<r>`` for the other srun ranks."""
    launch = srun_rank()
    return f"{job_name}_rank{launch[1]}" if launch is not None and launch[1] > 0 else job_name


def register_resolvers() -> None:
    import infomatch.data.classes  # noqa: F401  (registers infomatch.kept_classes, which model.num_classes uses)

    # cached, as Hydra's own ${now:}: every later lookup (and every job of a sweep) sees the same folder
    OmegaConf.register_new_resolver("infomatch.new_dir", shared_new_dir, use_cache=True, replace=True)
    OmegaConf.register_new_resolver("infomatch.run_dir", run_dir, use_cache=True, replace=True)
    OmegaConf.register_new_resolver("infomatch.hydra_subdir", hydra_subdir, use_cache=True, replace=True)
    OmegaConf.register_new_resolver("infomatch.log_name", log_name, use_cache=True, replace=True)
    OmegaConf.register_new_resolver("infomatch.run_label", run_label, use_cache=True, replace=True)
