"""Configs read from files are data: the run config stored in a checkpoint builds only infomatch's own classes.

Configs composed on the command line from the project's YAML are trusted and go to Hydra's ``instantiate``. A
config read from a file never does: Hydra would call any importable function its ``_target_`` names
(``pathlib.Path.write_text``, ``builtins.open``, ...), import any module and resolve interpolations. Here each
``_target_`` of the groups below must be one of that group's classes (an old path is first translated by
``MOVED_TARGETS``), Hydra's own keys (``_args_``, ``_partial_``, ``_convert_``, ...) are refused, and objects
are built by calling the class with the plain values, so nothing else is imported or run. Likewise the file
names in a checkpoint's callback state must be files of its own checkpoint folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from infomatch.augment import Degrader, Mixer
from infomatch.data import CIFAR10DataModule, CIFAR100CoarseDataModule, CIFAR100DataModule, SyntheticDataModule
from infomatch.labels import (
    ConfidenceSmoothing,
    HardLabels,
    InformationMatching,
    LabelSmoothing,
    LevelSmoothing,
    MatchedSmoothing,
    MollifiedSmoothing,
    ScheduleSmoothing,
    VisibilitySmoothing,
)
from infomatch.models import PreActResNet18, ResNet18, WideResNet
from infomatch.utils.errors import UnsafeCheckpointError

# the strategies that existed when they lived in infomatch.targets, then the peers' rules
MOVED_STRATEGIES = (HardLabels, LabelSmoothing, LevelSmoothing, InformationMatching, MatchedSmoothing,
                    ScheduleSmoothing)
LABEL_STRATEGIES = (*MOVED_STRATEGIES, MollifiedSmoothing, VisibilitySmoothing, ConfidenceSmoothing)

# config group -> {the `_target_` the project's configs name: its class}
TRUSTED_CLASSES: dict[str, dict[str, type]] = {
    "model": {"infomatch.models.ResNet18": ResNet18, "infomatch.models.PreActResNet18": PreActResNet18,
              "infomatch.models.WideResNet": WideResNet},
    "labels": {f"infomatch.labels.{cls.__name__}": cls for cls in LABEL_STRATEGIES},
    "augment": {"infomatch.augment.Degrader": Degrader},
    "mix": {"infomatch.augment.Mixer": Mixer},
    "data": {f"infomatch.data.{cls.__name__}": cls for cls in (CIFAR100DataModule, CIFAR100CoarseDataModule,
                                                               CIFAR10DataModule, SyntheticDataModule)},
}

# old `_target_` -> its current one: the single place where a moved or renamed class's old path is listed, so
# checkpoints written before the move keep loading and resuming
MOVED_TARGETS: dict[str, str] = {
    # 2026-12: the label strategies moved from the flat module infomatch.targets to the package infomatch.labels
    **{f"infomatch.targets.{cls.__name__}": f"infomatch.labels.{cls.__name__}" for cls in MOVED_STRATEGIES},
}


def _refuse(source: str | Path, where: str, problem: str) -> UnsafeCheckpointError:
    return UnsafeCheckpointError(
        f"{source}: its stored config {where} {problem}, so nothing is built from it: a config read from a file "
        "may only name infomatch's own classes, with plain settings. Only load checkpoints you trust; train.py "
        "stores the run config as it composed it.")


def _checked(node: Any, group: str, where: str, source: str | Path) -> Any:
    """A copy of ``node`` with current `_target_`s; UnsafeCheckpointError for anything beyond plain settings."""
    if isinstance(node, list):
        return [_checked(item, group, f"{where}[{index}]", source) for index, item in enumerate(node)]
    if not isinstance(node, dict):
        return node
    target = None
    if "_target_" in node:
        target = MOVED_TARGETS.get(str(node["_target_"]), str(node["_target_"]))
        if target not in TRUSTED_CLASSES[group]:
            raise _refuse(source, f"{where}._target_={node['_target_']!r}",
                          f"is not one of infomatch's {group} classes ({', '.join(TRUSTED_CLASSES[group])})")
    special = sorted(str(key) for key in node if str(key).startswith("_") and key != "_target_")
    if special:
        raise _refuse(source, where, f"holds {', '.join(special)} (instructions to Hydra, not settings)")
    checked = {key: _checked(value, group, f"{where}.{key}", source) for key, value in node.items()}
    if target is not None:
        checked["_target_"] = target
    return checked


def trusted_run_config(config: dict[str, Any], source: str | Path) -> dict[str, Any]:
    """``config`` (a run config read from ``source``) with the project groups checked and their targets current."""
    return {key: _checked(value, key, key, source) if key in TRUSTED_CLASSES and value is not None else value
            for key, value in config.items()}


def _construct(node: Any, group: str) -> Any:
    if isinstance(node, list):
        return [_construct(item, group) for item in node]
    if not isinstance(node, dict):
        return node
    values = {key: _construct(value, group) for key, value in node.items() if key != "_target_"}
    return TRUSTED_CLASSES[group][node["_target_"]](**values) if "_target_" in node else values


def build(config: Any, group: str, source: str | Path) -> Any:
    """The object that ``config``, the ``group`` part of a run config read from ``source``, describes."""
    if not isinstance(config, dict) or "_target_" not in config:
        raise _refuse(source, group, "names no class (_target_)")
    return _construct(_checked(config, group, group, source), group)


# the entries of a ModelCheckpoint state naming files: Lightning deletes or reads them once a run resumes
_CHECKPOINT_FILE_KEYS = ("best_model_path", "kth_best_model_path", "last_model_path")


def check_checkpoint_files(checkpoint: dict[str, Any], source: str | Path) -> None:
    """Refuse callback states that name files outside their own checkpoint folder (``<folder>/../x`` passes
    Lightning's own check, and it would delete that file when a better checkpoint replaces it)."""
    for state in (checkpoint.get("callbacks") or {}).values():
        if not isinstance(state, dict) or "dirpath" not in state:
            continue
        folder = Path(str(state["dirpath"]))
        named = [state.get(key) for key in _CHECKPOINT_FILE_KEYS] + list(state.get("best_k_models") or {})
        for name in filter(None, named):
            file = Path(str(name))
            if ".." in folder.parts or file.parent != folder or file.name in ("", ".."):
                raise UnsafeCheckpointError(
                    f"{source}: its checkpoint callback state names {str(name)!r} as a checkpoint of the run, which "
                    f"is not a file in the run's checkpoint folder {str(folder)!r}; resuming would let Lightning "
                    "delete or read that file, so the checkpoint is not used. Only resume checkpoints you trust.")
