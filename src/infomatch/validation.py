"""Up-front checks of a composed training config, before any data is loaded or any file is written.

Each check names the setting, its value and what is allowed, so a mistyped override costs seconds,
not a crash an hour into a run.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

import torch
from omegaconf import DictConfig, OmegaConf

from infomatch.augment import DEGRADATIONS
from infomatch.errors import ConfigError
from infomatch.nmi import MAX_BINS
from infomatch.run_folders import resumed_run_dir
from infomatch.targets import SPREADS

# settings that may differ between an interrupted run and its resumption: where files go and what is logged
NOT_COMPARED_ON_RESUME = ("resume", "paths", "logger", "callbacks", "test", "trainer.default_root_dir",
                          "data.root", "data.download")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _integer_at_least(minimum: int) -> tuple[Callable[[Any], bool], str]:
    return (lambda value: _is_int(value) and value >= minimum), f"must be an integer >= {minimum}"


# (setting, test, requirement); settings absent from the chosen config groups are skipped
RULES: list[tuple[str, Callable[[Any], bool], str]] = [
    ("seed", lambda value: _is_int(value) and 0 <= value < 2**32, "must be an integer in [0, 2**32)"),
    ("labels.epsilon", lambda value: _is_number(value) and 0 <= value < 1, "must be a number in [0, 1)"),
    ("labels.eps_max", lambda value: _is_number(value) and 0 <= value <= 1, "must be a number in [0, 1]"),
    ("labels.bins", lambda value: _is_int(value) and 2 <= value <= MAX_BINS, f"must be an integer in [2, {MAX_BINS}]"),
    ("labels.spread", lambda value: value in SPREADS, f"must be one of: {', '.join(SPREADS)}"),
    ("augment.types", lambda value: all(name in DEGRADATIONS for name in value),
     f"may only list: {', '.join(DEGRADATIONS)}"),
    ("augment.probability", lambda value: _is_number(value) and 0 <= value <= 1, "must be a number in [0, 1]"),
    ("model.width", *_integer_at_least(1)),
    ("model.num_classes", *_integer_at_least(2)),
    ("data.batch_size", *_integer_at_least(1)),
    ("data.eval_batch_size", *_integer_at_least(1)),
    ("data.val_size", *_integer_at_least(0)),
    ("trainer.max_epochs", *_integer_at_least(1)),
    ("optimizer.lr", lambda value: _is_number(value) and value > 0, "must be a number > 0"),
    ("ece_bins", *_integer_at_least(1)),
]


_ABSENT = object()


def validate_train_config(cfg: DictConfig) -> None:
    """Raise ConfigError listing every setting of ``cfg`` that is out of range."""
    problems = []
    for key, is_valid, requirement in RULES:
        value = OmegaConf.select(cfg, key, default=_ABSENT)
        if value is not _ABSENT and (value is None or not is_valid(value)):
            problems.append(f"{key}={value} {requirement}")
    train_size = OmegaConf.select(cfg, "data.train_size", default=None)
    val_size = OmegaConf.select(cfg, "data.val_size", default=None)
    if _is_int(train_size) and _is_int(val_size) and val_size >= train_size:
        problems.append(f"data.val_size={val_size} must be smaller than data.train_size={train_size}")
    if problems:
        raise ConfigError(f"invalid configuration: {'; '.join(problems)}. Fix the override(s) and run again.")


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(node, dict):
        return {prefix: node}
    flat: dict[str, Any] = {}
    for key, value in node.items():
        flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def _compared(flat: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in flat.items()
            if not any(key == skip or key.startswith(f"{skip}.") for skip in NOT_COMPARED_ON_RESUME)}


def _original_command(checkpoint: Path) -> str:
    run = resumed_run_dir(str(checkpoint))
    overrides_file = run / ".hydra" / "overrides.yaml" if run is not None else None
    if overrides_file is None or not overrides_file.is_file():
        return ""
    overrides = [item for item in OmegaConf.load(overrides_file) if not str(item).startswith("resume=")]
    return f" The run was started with: python train.py {' '.join(overrides)}".rstrip() + "."


def check_resume(cfg: DictConfig) -> Path | None:
    """The checkpoint to resume from, after checking it is readable and was trained with this same config."""
    resume = cfg.get("resume")
    if resume is None:
        return None
    path = Path(str(resume))
    if not path.is_file():
        raise ConfigError(f"resume={resume}: no such checkpoint file. Pass the interrupted run's last checkpoint, "
                          "e.g. resume=outputs/runs/<run>/checkpoints/last.ckpt.")
    try:
        # memory-mapped: reads the small metadata, not the weights
        checkpoint = torch.load(path, map_location="cpu", mmap=True, weights_only=False)
    except Exception as error:
        reason = " ".join(str(error).split())  # torch's messages span lines; the report is one paragraph
        raise ConfigError(f"resume={resume}: cannot read this checkpoint ({type(error).__name__}: {reason}); the file is "
                          "truncated, corrupt or not a checkpoint. Resume from another checkpoint of the run, "
                          "or start a new run.") from error
    stored = checkpoint.get("infomatch_config") if isinstance(checkpoint, dict) else None
    if stored is None or "loops" not in checkpoint:
        raise ConfigError(f"resume={resume}: not a training checkpoint written by train.py (no training state or "
                          "run config in it); it cannot be resumed.")
    before = _compared(_flatten(stored))
    now = _compared(_flatten(OmegaConf.to_container(cfg, resolve=True)))
    differences = [f"{key}: {before.get(key, '(absent)')} in the checkpoint, {now.get(key, '(absent)')} now"
                   for key in sorted(before.keys() | now.keys()) if before.get(key) != now.get(key)]
    if differences:
        shown = "; ".join(differences[:6]) + (f"; and {len(differences) - 6} more" if len(differences) > 6 else "")
        raise ConfigError(f"resume={resume}: the run was trained with a different config ({shown}). Resume with the "
                          f"same overrides as the original command plus resume=...{_original_command(path)}")
    return path


def check_new_output(checkpoint_dir: Path, output_dir: Path, resume: Path | None) -> None:
    """Refuse to write into folders that hold an earlier run's results, unless resuming from one of its checkpoints."""
    earlier = sorted(checkpoint_dir.glob("*.ckpt")) + sorted(output_dir.glob("metrics.json"))
    if not earlier:
        return
    if resume is not None and resume.resolve().parent == checkpoint_dir.resolve():
        return
    names = ", ".join(path.name for path in earlier)
    raise ConfigError(f"{output_dir} already holds an earlier run's results ({names}); a new run never writes over "
                      f"them. To continue that run use resume={checkpoint_dir / 'last.ckpt'}; for a new run leave "
                      "hydra.run.dir unset (every run then gets its own folder) or choose an empty one.")
