"""Find and load the checkpoints to evaluate: training checkpoints, run folders, sweep folders, reference state dicts.

Every problem a user can cause (wrong path, truncated file, weights that do not fit the saved config)
raises ``CheckpointError`` naming the file and what is wrong. A checkpoint's stored config is data: the model
and the labels strategy are rebuilt only from infomatch's own classes (:mod:`infomatch.runs.trusted`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor, nn

from infomatch.data import cifar
from infomatch.evaluation.recipe_names import strategy_name
from infomatch.models import NormalizedClassifier, ResNet18
from infomatch.runs.checkpoint_io import load_plain
from infomatch.runs.failures import FAILED_FILE, read_failure
from infomatch.runs.trusted import build, trusted_run_config
from infomatch.utils.checks import is_integer
from infomatch.utils.errors import CheckpointError, ConfigError, UnsafeCheckpointError

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    name: str
    strategy: str  # labels strategy (hard, ls, im, im_ssim, ...); models are aggregated over seeds per strategy
    seed: int | None
    path: Path
    classifier: NormalizedClassifier
    data: dict[str, Any] | None = None  # the training run's data settings; None for reference state dicts
    weights_finite: bool = True  # False: a parameter or buffer holds NaN or inf

    @property
    def num_classes(self) -> int:
        return cast(int, self.classifier.net.num_classes)  # every network here keeps its class count (ResNet18)


def _job_number(folder: Path) -> tuple[int, str]:
    match = re.match(r"(\d+)_", folder.name)
    return (int(match.group(1)) if match else -1, folder.name)


def best_checkpoint(run_dir: Path) -> Path:
    """The run's best checkpoint (best_epochNNN.ckpt; the highest epoch if a resumed run left several)."""
    best = sorted((run_dir / "checkpoints").glob("best*.ckpt"))
    if not best:
        raise CheckpointError(f"{run_dir}: run folder without a best checkpoint in checkpoints/ "
                              "(did training finish at least one validation?); pass a .ckpt file instead")
    return best[-1]


def _check_not_failed(run_dir: Path) -> None:
    failure = read_failure(run_dir)
    if failure is not None:
        raise CheckpointError(f"{run_dir}: this run failed ({failure['error']}), see {run_dir / FAILED_FILE}; to "
                              "evaluate a checkpoint it wrote before failing, pass that .ckpt file")


def _finished_runs(sweep_dir: Path) -> list[Path]:
    """The sweep's run folders in job order, leaving out failed runs with a one-line note each."""
    runs = []
    for run in sorted((run for run in sweep_dir.iterdir() if run.is_dir()), key=_job_number):
        failure = read_failure(run)
        if failure is not None:
            log.warning("skipping %s: the run failed (%s); see %s", run.name, failure["type"], run / FAILED_FILE)
        elif (run / "checkpoints").is_dir():
            runs.append(run)
    if not runs:
        raise CheckpointError(f"{sweep_dir}: folder holds neither checkpoints/ (a run) nor finished run folders "
                              "(a sweep)")
    return runs


def resolve_checkpoints(paths: list[str]) -> list[Path]:
    """Expand each path: a checkpoint file, a run folder (its best checkpoint) or a sweep folder (each run's best)."""
    resolved = []
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            resolved.append(path)
        elif (path / FAILED_FILE).is_file() or (path / "checkpoints").is_dir():
            _check_not_failed(path)
            resolved.append(best_checkpoint(path))
        elif path.is_dir():
            resolved.extend(best_checkpoint(run) for run in _finished_runs(path))
        else:
            raise CheckpointError(f"{path}: no such checkpoint file or folder")
    return resolved


def _read(path: Path) -> dict[str, Any]:
    try:
        checkpoint = load_plain(path)
    except UnsafeCheckpointError:
        raise
    except Exception as error:  # truncated zip, pickle garbage, text files: all "not a checkpoint" to the user
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint (truncated or not a checkpoint file): "
                              f"{type(error).__name__}: {error}") from error
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{path}: expected a checkpoint dict, found {type(checkpoint).__name__}")
    return checkpoint


def _load_weights(path: Path, net: nn.Module, state: dict[str, Tensor], described: str) -> None:
    """Load strictly, or explain the mismatch in a few lines instead of torch's parameter-by-parameter dump."""
    expected = net.state_dict()
    missing = sorted(expected.keys() - state.keys())
    unexpected = sorted(state.keys() - expected.keys())
    mismatched = [f"{key} {tuple(state[key].shape)} vs {tuple(expected[key].shape)}"
                  for key in expected.keys() & state.keys() if state[key].shape != expected[key].shape]
    problems = [f"{label}: {', '.join(items[:3])}{' ...' if len(items) > 3 else ''}"
                for label, items in (("missing", missing), ("unexpected", unexpected),
                                     ("shape (checkpoint vs architecture)", sorted(mismatched))) if items]
    if problems:
        raise CheckpointError(f"{path}: weights do not match the architecture {described}; " + "; ".join(problems))
    net.load_state_dict(state)


def _from_training(path: Path, checkpoint: dict[str, Any]) -> LoadedModel:
    config = checkpoint.get("infomatch_config")
    normalization = checkpoint.get("infomatch_normalization")
    complete = isinstance(config, dict) and {"model", "labels", "seed"} <= config.keys()
    if not isinstance(config, dict) or not complete or not isinstance(normalization, dict):
        raise CheckpointError(f"{path}: Lightning checkpoint without the infomatch training config and "
                              "normalization (written by an older or another training script)")
    config = trusted_run_config(config, path)
    seed = config["seed"]
    if not is_integer(seed):  # it becomes part of the model's name, and so of file names
        raise CheckpointError(f"{path}: its stored seed {seed!r} is not an integer (train.py stores the run's seed); "
                              "the file was changed after training")
    built = {}
    for group in ("model", "labels"):
        try:
            built[group] = build(config[group], group, path)
        except UnsafeCheckpointError:
            raise
        except Exception as error:  # settings this version's constructor does not accept
            raise CheckpointError(f"{path}: cannot build the {group} its config describes ({config[group]}): "
                                  f"{error}") from error
    net, labels = built["model"], built["labels"]
    state = {key.removeprefix("net."): value for key, value in checkpoint["state_dict"].items()
             if key.startswith("net.")}
    settings = ", ".join(f"{key}={value}" for key, value in config["model"].items() if key != "_target_")
    _load_weights(path, net, state, f"in its config ({settings})")
    strategy = strategy_name(config, labels)
    return LoadedModel(f"{strategy}_seed{seed}", strategy, seed, path,
                       NormalizedClassifier(net, normalization["mean"], normalization["std"]), config.get("data"))


def _from_reference(path: Path, state: dict[str, Tensor]) -> LoadedModel:
    """Plain torchvision-style ResNet-18 state dict: size from the weights, CIFAR-100 normalization."""
    if "fc.weight" not in state or "conv1.weight" not in state:
        raise CheckpointError(f"{path}: model_state_dict has no fc.weight / conv1.weight, not a ResNet-18 state dict")
    num_classes, width = state["fc.weight"].shape[0], state["conv1.weight"].shape[0]
    net = ResNet18(num_classes=num_classes, width=width)
    _load_weights(path, net, state, f"inferred from its weights (ResNet18 num_classes={num_classes}, width={width})")
    classifier = NormalizedClassifier(net, list(cifar.CIFAR100.mean), list(cifar.CIFAR100.std))
    return LoadedModel(path.stem, path.stem, None, path, classifier)


def _non_finite(module: nn.Module) -> list[str]:
    """The parameters and buffers of ``module`` holding NaN or inf."""
    return [name for name, value in module.state_dict().items()
            if value.is_floating_point() and not bool(torch.isfinite(value).all())]


def load_model(path: Path) -> LoadedModel:
    checkpoint = _read(path)
    if "state_dict" in checkpoint:
        model = _from_training(path, checkpoint)
    elif "model_state_dict" in checkpoint:
        model = _from_reference(path, checkpoint["model_state_dict"])
    else:
        raise CheckpointError(f"{path}: neither a training checkpoint (state_dict) nor a reference state dict "
                              f"(model_state_dict); top-level keys: {sorted(checkpoint)[:10]}")
    model.classifier.eval()
    non_finite = _non_finite(model.classifier)
    if non_finite:
        model.weights_finite = False
        log.warning("%s: %d parameters or buffers hold NaN or inf (%s%s); its results are not meaningful and "
                    "metrics.json marks it with weights_finite: false", path, len(non_finite),
                    ", ".join(non_finite[:3]), " ..." if len(non_finite) > 3 else "")
    return model


def _check_name(name: str, setting: str) -> None:
    """Model names become parts of file names (plots/reliability_<name>.png): none may lead out of its folder."""
    if not name.strip() or name in (".", "..") or any(char in name for char in "/\\\0"):
        raise ConfigError(f"{setting}={name!r}: a model name becomes part of file names, so it may not be empty, "
                          "'.' or '..', nor hold '/', '\\' or a NUL character; e.g. names=[baseline,ours]")


def load_models(paths: list[str], names: list[str] | None = None) -> list[LoadedModel]:
    """Load every checkpoint; names override the automatic ones, duplicates get a numeric suffix."""
    names = [str(name) for name in names or []]
    for index, name in enumerate(names):
        _check_name(name, f"names[{index}]")
    models = [load_model(path) for path in resolve_checkpoints(paths)]
    if names:
        if len(names) != len(models):
            raise CheckpointError(f"names has {len(names)} entries but {len(models)} checkpoints were found: "
                                  + ", ".join(str(model.path) for model in models))
        for model, name in zip(models, names):
            model.name = name
    seen: dict[str, int] = {}
    for model in models:
        seen[model.name] = seen.get(model.name, 0) + 1
        if seen[model.name] > 1:
            model.name = f"{model.name}_{seen[model.name]}"
    return models
