"""The command-line entry points: ``python train.py`` / ``infomatch-train``, ``python evaluate.py`` /
``infomatch-evaluate`` and ``infomatch-results``.

The configs are read as the package ``infomatch.configs`` (the repository's ``configs/`` folder, mapped into the
package by pyproject.toml), so the installed commands find them from any folder.
"""

from __future__ import annotations

import functools
import sys
import warnings

import hydra
from omegaconf import DictConfig

from infomatch.runs.folders import register_resolvers

CONFIGS = "pkg://infomatch.configs"

register_resolvers()
# configs/hydra/launcher/joblib.yaml has the name of the joblib plugin's schema, so Hydra checks it against that
# schema and warns that this matching is deprecated; the file is complete on its own, so there is nothing to fix
warnings.filterwarnings("ignore", message=r"\s*'hydra/launcher/joblib' is validated against ConfigStore schema")


def answers_version(main):
    """``--version`` prints the package version and exits before Hydra reads the command line."""
    @functools.wraps(main)
    def wrapped(*args, **kwargs):
        if "--version" in sys.argv[1:]:
            from infomatch import __version__

            print(f"infomatch {__version__}")
            return None
        return main(*args, **kwargs)

    return wrapped


@answers_version
@hydra.main(version_base="1.3", config_path=CONFIGS, config_name="train")
def train(cfg: DictConfig) -> float | None:
    """Train one model (a sweep with -m)."""
    # imported once Hydra has parsed the command line, so mistakes in it are reported without waiting for torch
    from infomatch.runs.failures import run_recording_failures
    from infomatch.tasks.train import USER_ERRORS
    from infomatch.tasks.train import train as train_task
    from infomatch.utils.console import tidy_lightning_logging

    tidy_lightning_logging()
    # a failure writes failed.json in the run folder; a single run then exits 1, and a sweep job returns None
    # (no objective: the Optuna sweeper records a failed trial) so that its siblings go on
    metrics = run_recording_failures(train_task, cfg, USER_ERRORS)
    return None if metrics is None else metrics.get("best_val_top1")


@answers_version
@hydra.main(version_base="1.3", config_path=CONFIGS, config_name="evaluate")
def evaluate(cfg: DictConfig) -> None:
    """Evaluate checkpoints, run folders or sweep folders side by side."""
    from infomatch.runs.failures import run_recording_failures
    from infomatch.tasks.evaluate import evaluate as evaluate_task
    from infomatch.utils.console import tidy_lightning_logging
    from infomatch.utils.errors import UserError

    tidy_lightning_logging()
    # a failure writes failed.json in the output folder; a user error (a setting, a file, a full or read-only
    # disk) exits 1 with its one paragraph
    run_recording_failures(evaluate_task, cfg, (UserError,))


def results() -> None:
    """``infomatch-results collect|tables``."""
    from infomatch.tasks.results import main

    main()
