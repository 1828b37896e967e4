"""Up-front checks of a composed train.py or evaluate.py config, before any data is loaded or any file is written.

Each check names the setting, its value and what is allowed, so a mistyped override costs seconds,
not a crash an hour into a run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from infomatch.runs.checkpoint_io import load_plain
from infomatch.runs.folders import resumed_run_dir
from infomatch.runs.trusted import check_checkpoint_files, trusted_run_config
from infomatch.training.module import COMPILE_MODES
from infomatch.utils.checks import SettingError, check_choice, check_integer, check_number, require
from infomatch.utils.errors import ConfigError, UnsafeCheckpointError, UserError
from infomatch.utils.overrides import flatten_config

# settings that may differ between an interrupted run and its resumption: where files go and what is logged
NOT_COMPARED_ON_RESUME = ("resume", "run_name", "paths", "logger", "callbacks", "test", "trainer.default_root_dir",
                          "data.root", "data.download", "speed", "trainer.compile", "tags")

# settings added after runs were stored, with the value in effect before each existed: a stored run lacking one
# resumes as if it had that value (before the mix group runs did not mix; before the base_augment group they had
# crop/flip with no policy and no erasing; before level_distribution, uniform levels)
ADDED_SETTINGS: dict[str, Any] = {
    "mix._target_": "infomatch.augment.Mixer", "mix.kind": "none", "mix.alpha": 1.0,
    "base_augment._target_": "infomatch.base_augment.BaseAugment", "base_augment.policy": None,
    "base_augment.random_erasing": 0.0, "base_augment.soft_crop": False, "base_augment.soft_crop_sigma": 12.0,
    "base_augment.fill": [129, 124, 112],
    "augment.level_distribution": "uniform", "augment.level_a": 1.0, "augment.level_b": 2.0,
    "augment.heat_scale_min": 0.3, "augment.heat_scale_max": 32.0,
}

log = logging.getLogger(__name__)

Rule = Callable[[str, Any], None]  # (setting, value) -> None, or SettingError


def _optional_positive(name: str, value: Any) -> None:
    if value is not None:
        check_integer(name, value, 1)


def _compile_mode(name: str, value: Any) -> None:
    modes = ", ".join(str(mode).lower() for mode in COMPILE_MODES)
    require(name, value, value in COMPILE_MODES, f"must be one of: {modes}")


def _optional_compile_mode(name: str, value: Any) -> None:
    if value is not None:
        _compile_mode(name, value)


# settings that no constructor sees; each group's own settings are checked by the object it builds
TRAIN_RULES: dict[str, Rule] = {
    "seed": lambda name, value: check_integer(name, value, 0, 2**32 - 1),
    "trainer.max_epochs": lambda name, value: check_integer(name, value, 1),
    "optimizer.lr": lambda name, value: check_number(name, value, 0, low_open=True),
    "optimizer.weight_decay": lambda name, value: check_number(name, value, 0),
    "optimizer.momentum": lambda name, value: check_number(name, value, 0, 1, high_open=True),
    "speed.compile": _compile_mode,
    "trainer.compile": _optional_compile_mode,
    "speed.channels_last": lambda name, value: require(name, value, value in (True, False, "auto"),
                                                       "must be true, false or auto"),
    "ece_bins": lambda name, value: check_integer(name, value, 1),
    "estimation.images": lambda name, value: check_integer(name, value, 1),
    "estimation.seed": lambda name, value: check_integer(name, value, 0, 2**63 - 1),
}
EVALUATE_RULES: dict[str, Rule] = {
    "seed": TRAIN_RULES["seed"],
    "ece_bins": TRAIN_RULES["ece_bins"],
    "subset": _optional_positive,
    "robustness.levels": lambda name, value: check_integer(name, value, 2),
    "confidence.levels": lambda name, value: check_integer(name, value, 2),
    "aggregate": lambda name, value: check_choice(name, str(value).lower(), ("auto", "true", "false")),
    "selective.coverage": lambda name, value: check_number(name, value, 0, 1, low_open=True),
    "selective.risk": lambda name, value: check_number(name, value, 0, 1),
    "selective.norm_p": lambda name, value: check_number(name, value, 0, low_open=True),
}

_ABSENT = object()


def _rule_problems(cfg: DictConfig, rules: dict[str, Rule]) -> list[str]:
    problems = []
    for key, rule in rules.items():
        value = OmegaConf.select(cfg, key, default=_ABSENT)
        if value is _ABSENT:  # a setting of a config group that this run does not use
            continue
        try:
            rule(key, value)
        except SettingError as error:
            problems.append(str(error))
    return problems


def _construction_problem(group: str, node: DictConfig, error: Exception) -> str:
    """One line on why ``node`` (the settings of ``group``) cannot be built."""
    cause = error.__cause__ if isinstance(error, InstantiationException) else error
    if isinstance(cause, SettingError):
        return f"{group}.{cause}"
    if isinstance(cause, UserError):  # its message already names the setting and the fix
        return str(cause)
    reason = " ".join(str(cause or error).split())  # e.g. a misspelt setting: the constructor's own words
    return f"{group} cannot be built from {OmegaConf.to_container(node)} ({reason})"


def _build_problems(cfg: DictConfig, groups: tuple[str, ...]) -> list[str]:
    """Build each group's object (cheap: no data is read) and collect its constructor's complaints."""
    problems = []
    for group in groups:
        if cfg.get(group) is None:
            continue
        try:
            instantiate(cfg[group])
        except InstantiationException as error:
            problems.append(_construction_problem(group, cfg[group], error))
    return problems


def build_group(cfg: DictConfig, group: str) -> Any:
    """``instantiate(cfg[group])``, with a constructor's complaint raised as a user error, not inside Hydra's
    InstantiationException: its own UserError as itself, any other as the ConfigError naming the setting."""
    try:
        return instantiate(cfg[group])
    except InstantiationException as error:
        if isinstance(error.__cause__, UserError):
            raise error.__cause__ from None
        _raise_if([_construction_problem(group, cfg[group], error)])


def _optimizer_problems(cfg: DictConfig, problems: list[str]) -> list[str]:
    """torch's own checks of the optimizer's settings (betas, eps, nesterov with momentum 0, ...), on a stand-in
    parameter: the optimizer is otherwise first built when training starts. Skipped when the rules already
    found its settings wrong, so a setting is not reported twice."""
    if cfg.get("optimizer") is None or any(problem.startswith("optimizer.") for problem in problems):
        return []
    try:
        instantiate(cfg.optimizer)([torch.nn.Parameter(torch.zeros(1))])
    except Exception as error:
        return [_construction_problem("optimizer", cfg.optimizer, error)]
    return []


def _raise_if(problems: list[str]) -> None:
    if problems:
        raise ConfigError(f"invalid configuration: {'; '.join(problems)}. Fix the override(s) and run again.")


def validate_train_config(cfg: DictConfig) -> None:
    """Raise ConfigError listing every setting of ``cfg`` that is out of range, before any data is read."""
    problems = _rule_problems(cfg, TRAIN_RULES)
    _raise_if(problems + _optimizer_problems(cfg, problems)
              + _build_problems(cfg, ("labels", "augment", "base_augment", "mix", "model", "data")))


def inline_table_file(cfg: DictConfig) -> None:
    """A ``labels.table`` given as a JSON file becomes the table the file holds, in ``cfg`` itself: the run's
    stored config (checkpoints, metrics.json, the resume check, evaluation) then carries the numbers, not a path
    that need not exist where the checkpoint is read later."""
    table = OmegaConf.select(cfg, "labels.table", default=None)
    if isinstance(table, str):
        with open_dict(cfg):
            cfg.labels.table = build_group(cfg, "labels").table
        log.info("labels.table: read from %s", table)


def validate_evaluate_config(cfg: DictConfig) -> None:
    """The same for evaluate.py's settings, its degradation grid and its data module."""
    problems = _rule_problems(cfg, EVALUATE_RULES) + _build_problems(cfg, ("degradation", "data"))
    from infomatch.evaluation.uncertainty import POST_HOC

    calibrate = cfg.get("calibrate")
    names = [calibrate] if isinstance(calibrate, str) else list(calibrate or [])
    unknown = [name for name in names if name not in (*POST_HOC, "all") or (name == "all" and len(names) > 1)]
    if unknown:
        problems.append(f"calibrate={calibrate} must be one of {', '.join(POST_HOC)}, a list of them, or all")
    heatmap = cfg.confidence.heatmap_type
    if heatmap not in cfg.degradation.types:
        problems.append(f"confidence.heatmap_type={heatmap} must be one of degradation.types "
                        f"({', '.join(cfg.degradation.types)})")
    _raise_if(problems)


def check_distributed(cfg: DictConfig, world_size: int, multirun: bool) -> None:
    """Raise ConfigError for settings that a run over ``world_size`` processes (DDP ranks) cannot use."""
    if world_size == 1:
        return
    problems = []
    batch_size = cfg.data.batch_size
    if batch_size % world_size:
        fitting = max(world_size, batch_size - batch_size % world_size)
        problems.append(f"data.batch_size={batch_size} is the global batch of all {world_size} ranks "
                        f"(trainer.devices x trainer.num_nodes) and must be divisible by {world_size}, "
                        f"e.g. data.batch_size={fitting}")
    if cfg.trainer.get("use_distributed_sampler"):
        problems.append("trainer.use_distributed_sampler=true would reshard batches the data module already shards "
                        "over the ranks (with repeated images); leave it false")
    if multirun:
        problems.append(f"a -m sweep cannot run on {world_size} ranks started by Lightning: it starts the other ranks "
                        "by running the command again, which would start the whole sweep again in each of them; run "
                        "each configuration as its own train.py command, or sweep with hydra/launcher=slurm, where "
                        "SLURM starts the ranks of each job")
    _raise_if(problems)


def _compared(flat: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in flat.items()
            if not any(key == skip or key.startswith(f"{skip}.") for skip in NOT_COMPARED_ON_RESUME)}


def _with_added_settings(stored: dict[str, Any]) -> dict[str, Any]:
    """A flattened stored config with the ADDED_SETTINGS it lacks."""
    return {**{key: value for key, value in ADDED_SETTINGS.items() if key not in stored}, **stored}


def _original_command(checkpoint: Path) -> str:
    run = resumed_run_dir(str(checkpoint))
    overrides_file = run / ".hydra" / "overrides.yaml" if run is not None else None
    if overrides_file is None or not overrides_file.is_file():
        return ""
    # as written: the file's interpolations are not resolved (resolvers create folders)
    written = cast(list[str], OmegaConf.to_container(OmegaConf.load(overrides_file), resolve=False))  # a list
    overrides = [item for item in written if not str(item).startswith("resume=")]
    return f" The run was started with: python train.py {' '.join(overrides)}".rstrip() + "."


def check_resume(cfg: DictConfig, checkpoint_dir: Path) -> Path | None:
    """The checkpoint to resume from, after checking it is readable and was trained with this same config.

    ``resume=auto`` resumes from ``checkpoint_dir/last.ckpt`` when the run folder has one and starts fresh
    otherwise, so a requeued job reruns its command unchanged.
    """
    resume = cfg.get("resume")
    if resume is None:
        return None
    if str(resume) == "auto":
        last = checkpoint_dir / "last.ckpt"
        if not last.is_file():
            log.info("resume=auto: no %s yet, starting a fresh run", last)
            return None
        log.info("resume=auto: continuing from %s", last)
        resume = last
    path = Path(str(resume))
    if not path.is_file():
        raise ConfigError(f"resume={resume}: no such checkpoint file. Pass the interrupted run's last checkpoint, "
                          "e.g. resume=outputs/runs/<run>/checkpoints/last.ckpt, or resume=auto with run_name=<name>.")
    try:
        # memory-mapped: reads the small metadata, not the weights
        checkpoint = load_plain(path, mmap=True)
    except UnsafeCheckpointError:
        raise
    except Exception as error:
        reason = " ".join(str(error).split())  # torch's messages span lines; the report is one paragraph
        raise ConfigError(f"resume={resume}: cannot read this checkpoint ({type(error).__name__}: {reason}); "
                          "the file is truncated, corrupt or not a checkpoint. Resume from another checkpoint "
                          "of the run, or start a new run.") from error
    stored = checkpoint.get("infomatch_config") if isinstance(checkpoint, dict) else None
    if not isinstance(stored, dict) or "loops" not in checkpoint:
        raise ConfigError(f"resume={resume}: not a training checkpoint written by train.py (no training state or "
                          "run config in it); it cannot be resumed.")
    check_checkpoint_files(checkpoint, f"resume={resume}")
    before = _compared(_with_added_settings(flatten_config(trusted_run_config(stored, f"resume={resume}"))))
    now = _compared(flatten_config(OmegaConf.to_container(cfg, resolve=True)))
    differences = [f"{key}: {before.get(key, '(absent)')} in the checkpoint, {now.get(key, '(absent)')} now"
                   for key in sorted(before.keys() | now.keys()) if before.get(key) != now.get(key)]
    if differences:
        shown = "; ".join(differences[:6]) + (f"; and {len(differences) - 6} more" if len(differences) > 6 else "")
        raise ConfigError(f"resume={resume}: the run was trained with a different config ({shown}). Resume with the "
                          f"same overrides as the original command plus resume=...{_original_command(path)}")
    return path


def check_new_output(checkpoint_dir: Path, output_dir: Path, resume: Path | None) -> None:
    """Refuse to write into folders that hold an earlier run's results, unless resuming from one of its checkpoints."""
    checkpoints = sorted(checkpoint_dir.glob("*.ckpt"))
    earlier = checkpoints + sorted(output_dir.glob("metrics.json"))
    if not earlier:
        return
    if resume is not None and resume.resolve().parent == checkpoint_dir.resolve():
        return
    names = ", ".join(path.name for path in earlier)
    last = checkpoint_dir / "last.ckpt"
    # without a last.ckpt, the checkpoint of the latest epoch: best_epochNNN names sort by epoch
    resumable = last if last.is_file() else (checkpoints[-1] if checkpoints else None)
    advice = f"To continue that run use resume={resumable}; for" if resumable else "For"
    raise ConfigError(f"{output_dir} already holds an earlier run's results ({names}); a new run never writes over "
                      f"them. {advice} a new run leave hydra.run.dir unset (every run then gets its own folder) or "
                      "choose an empty one.")
