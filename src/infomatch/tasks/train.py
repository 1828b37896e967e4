"""train(cfg): build everything from the composed config, fit, test the best checkpoint, write metrics.json."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shlex
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from infomatch.data.datamodule import InMemoryDataModule
from infomatch.data.stage import TrainingStage, to_unit_range
from infomatch.evaluation.checkpoints import load_model
from infomatch.labels.strategies import checked_table
from infomatch.runs.checkpoint_io import AtomicCheckpointIO, atomic_write, load_plain
from infomatch.runs.failures import in_sweep
from infomatch.runs.validation import (
    check_distributed,
    check_new_output,
    check_resume,
    inline_table_file,
    validate_train_config,
)
from infomatch.training.loggers import HISTORY_LOGGERS
from infomatch.training.module import InfoMatchModule
from infomatch.utils.console import run_footer, run_header
from infomatch.utils.errors import ConfigError, RunInterrupted, UserError
from infomatch.utils.memory import keep_freed_memory
from infomatch.utils.precision import cpu_has_native_bf16, cpu_model_name

log = logging.getLogger(__name__)

# mistakes in the command or the data, and diverged training: train.py reports them in one paragraph
USER_ERRORS = (UserError, FloatingPointError)


# loggers that need a package beyond the base install: (modules that provide it, pip extra naming it)
LOGGER_PACKAGES = {
    "TensorBoardLogger": (("tensorboard", "tensorboardX"), "trackers"),
    "MLFlowLogger": (("mlflow",), "trackers"),
    "WandbLogger": (("wandb",), "trackers"),
}


def build_loggers(cfg: DictConfig, resume_step: int | None = None) -> list:
    """The chosen loggers; TensorBoard (part of the default) is skipped with a note when not installed, while
    a missing package for a logger chosen on purpose (mlflow, wandb) is a ConfigError naming the pip extra.

    ``resume_step``: the global step of the checkpoint a resumed run continues from; our CSV and TensorBoard
    loggers then keep the run's history before it (Lightning's would delete the CSV).
    """
    loggers = []
    for name, logger_cfg in (cfg.get("logger") or {}).items():
        kind = str(logger_cfg._target_).rsplit(".", 1)[-1]
        modules, extra = LOGGER_PACKAGES.get(kind, ((), ""))
        if modules and not any(importlib.util.find_spec(module) for module in modules):
            if kind == "TensorBoardLogger":
                log.info("tensorboard is not installed: logging to CSV only (pip install tensorboard to enable it)")
                continue
            raise ConfigError(f"logger {name} needs the {modules[0]} package, which is not installed: "
                              f"pip install -e '.[{extra}]' (or drop it from logger=...)")
        logger = instantiate(logger_cfg)
        if resume_step is not None and isinstance(logger, HISTORY_LOGGERS):
            logger.continue_from(resume_step)
        loggers.append(logger)
    return loggers


def build_callbacks(cfg: DictConfig) -> list:
    return [instantiate(callback_cfg) for callback_cfg in (cfg.get("callbacks") or {}).values()]


def build_datamodule(cfg: DictConfig) -> InMemoryDataModule:
    """The data module with its training stage (base augmentation, degradations and the mixing plan, run on the
    device)."""
    stage = TrainingStage(degrader=instantiate(cfg.augment), base_augment=instantiate(cfg.base_augment),
                          seed=cfg.seed, mixer=instantiate(cfg.mix) if cfg.get("mix") is not None else None)
    return instantiate(cfg.data, stage=stage)


def build_module(cfg: DictConfig, datamodule: InMemoryDataModule) -> InfoMatchModule:
    net = instantiate(cfg.model)
    if net.num_classes != datamodule.num_classes:
        raise ConfigError(f"model.num_classes={net.num_classes} but the data set has {datamodule.num_classes} classes; "
                          f"set model.num_classes={datamodule.num_classes}")
    return InfoMatchModule(
        net=net,
        label_strategy=instantiate(cfg.labels),
        optimizer=instantiate(cfg.optimizer),
        scheduler=instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
        mean=datamodule.mean,
        std=datamodule.std,
        ece_bins=cfg.ece_bins,
        channels_last=cfg.speed.channels_last,
        compile=speed_compile(cfg),
        run_config=cast(dict[str, Any], OmegaConf.to_container(cfg, resolve=True)),  # the config is a mapping
    )


def fit_label_strategy(strategy: Any, datamodule: InMemoryDataModule, images: int, seed: int) -> dict[str, Any]:
    """Run the strategy's estimation hook, if it has one: ``fit`` on a fixed sample of training images,
    ``fit_reference`` (labels=confidence) with its reference model on a fixed sample of validation images.

    The sample (the first ``images`` of a permutation seeded with ``seed``, independent of the run seed) is
    cropped, flipped and degraded on the CPU exactly as the training stage would (validation images: not
    cropped), so every run, seed and device estimates the same numbers.
    """
    if not hasattr(strategy, "fit") and not hasattr(strategy, "fit_reference"):
        return {}
    datamodule.setup("fit")
    generator = torch.Generator().manual_seed(seed)
    if hasattr(strategy, "fit"):
        train_images = cast(tuple[torch.Tensor, torch.Tensor], datamodule.train_set)[0]  # set by setup("fit")
        chosen = torch.randperm(len(train_images), generator=generator)[:images]
        clean, _ = datamodule.stage.clean_images(train_images[chosen], generator)
        estimates, sample = strategy.fit(clean, datamodule.stage.degrader, generator), "training"
    else:
        val_images, val_labels = datamodule.val_set
        if len(val_labels) == 0:
            raise ConfigError(f"labels={strategy.name} estimates on validation images, but data.val_size=0")
        chosen = torch.randperm(len(val_labels), generator=generator)[:images]
        reference = reference_classifier(strategy, datamodule.num_classes)
        estimates = strategy.fit_reference(reference, to_unit_range(val_images[chosen]), val_labels[chosen],
                                           datamodule.stage.degrader, generator)
        sample = "validation"
    if estimates:
        log.info("labels=%s estimated on %d %s images (seed %d): %s", strategy.name, len(chosen), sample, seed,
                 json.dumps(estimates))
    return estimates


def restore_label_estimates(strategy: Any, estimates: dict[str, Any], source: Path) -> dict[str, Any]:
    """A resumed run takes the estimates its checkpoint stored (epsilon, a table, E0) instead of estimating them
    again, so it goes on with the very targets it trained with, as every other strategy does."""
    for key, value in estimates.items():
        if not hasattr(strategy, key):
            raise ConfigError(f"{source} stores the label estimate {key!r}, which labels={strategy.name} does not "
                              "have: resume with the labels settings the run was trained with")
        if getattr(strategy, key) is None:
            setattr(strategy, key, checked_table(value, strategy.levels) if key == "table" else value)
    log.info("labels=%s: the estimates stored in %s, not estimated again", strategy.name, source)
    return estimates


def reference_classifier(strategy: Any, num_classes: int) -> torch.nn.Module | None:
    """The reference model labels=confidence names (read through the trusted loader, on the CPU); None when the
    strategy already holds its table."""
    if strategy.table is not None:
        return None
    path = Path(strategy.reference).expanduser()
    if not path.is_file():
        raise ConfigError(f"labels.reference={strategy.reference}: no such checkpoint file")
    model = load_model(path)
    if model.num_classes != num_classes:
        raise ConfigError(f"labels.reference={strategy.reference} has {model.num_classes} classes, the data set "
                          f"{num_classes}")
    return model.classifier.float().eval()


def resolve_precision(trainer_cfg: DictConfig) -> str:
    """``auto``: bf16 mixed precision on GPUs and on CPUs with native bf16; full fp32 on other CPUs."""
    precision = str(trainer_cfg.get("precision", "auto"))
    if precision != "auto":
        return precision
    accelerator = trainer_cfg.get("accelerator", "auto")
    uses_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    return "bf16-mixed" if uses_gpu or cpu_has_native_bf16() else "32-true"


def machine_record(trainer: L.Trainer) -> dict[str, Any]:
    """Where a run's numbers come from: CPUs differ in bf16 kernels (and so in rounding), GPUs in everything."""
    record = {"cpu": cpu_model_name(), "cpu_native_bf16": cpu_has_native_bf16(),
              "torch_threads": torch.get_num_threads(),
              "accelerator": type(trainer.accelerator).__name__, "precision": str(trainer.precision),
              "torch": torch.__version__}
    if torch.cuda.is_available() and trainer.strategy.root_device.type == "cuda":
        record["gpu"] = torch.cuda.get_device_name(trainer.strategy.root_device)
    return record


def speed_compile(cfg: DictConfig) -> bool | str:
    """speed.compile, or the deprecated trainer.compile where a command still sets it."""
    if cfg.trainer.get("compile") is None:
        return cfg.speed.compile
    log.warning("trainer.compile is deprecated: use speed.compile=%s (the same setting, grouped with the other "
                "settings of how the network runs)", cfg.trainer.compile)
    return cfg.trainer.compile


def lightning_trainer_config(trainer_cfg: DictConfig) -> dict[str, Any]:
    """The trainer group as Lightning's Trainer takes it: precision resolved, the deprecated ``compile`` alias of
    speed.compile removed."""
    settings = cast(dict[str, Any], OmegaConf.to_container(trainer_cfg, resolve=True))  # a DictConfig's: a dict
    settings.pop("compile", None)
    settings["precision"] = resolve_precision(trainer_cfg)
    return settings


def _plain(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {name: float(value) for name, value in metrics.items()}


def _checkpoint_value(path: Path, key: str) -> int:
    """``epoch`` (the one it was written at the end of) or ``global_step`` of a training checkpoint.

    Memory-mapped: the weights are not read.
    """
    return int(load_plain(path, mmap=True)[key])


def _resume_command(last: Path) -> str:
    """This run's command line with ``resume=<last>`` in place of any resume it had."""
    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    kept = [shlex.quote(item) for item in overrides if not item.startswith("resume=")]
    return " ".join(["python train.py", *kept, shlex.quote(f"resume={last}")])


def _stopped_message(what: str, last: Path) -> str:
    if not last.is_file():
        return f"{what}, before its first epoch ended; there is no checkpoint to continue from, so start it again."
    epoch = _checkpoint_value(last, "epoch")
    return (f"{what}; {last} holds the run up to the end of epoch {epoch}, where a continued run starts. To "
            f"continue: {_resume_command(last)} (or the same command with resume=auto if it names this folder: "
            "run_name=..., or a requeued sweep job).")


def _kept_checkpoint_note(last: Path) -> str:
    if not last.is_file():
        return "No checkpoint had been written yet."
    return f"The last good checkpoint is kept: {last} (end of epoch {_checkpoint_value(last, 'epoch')})."


def _choices() -> dict[str, str]:
    """The config group options this run was composed from (labels, augment, data, experiment...)."""
    if not HydraConfig.initialized():
        return {}
    choices = HydraConfig.get().runtime.choices
    return {group: str(choices[group]) for group in ("labels", "augment", "mix", "data", "experiment", "debug")
            if choices.get(group) not in (None, "null")}


def _key_settings(cfg: DictConfig, trainer: L.Trainer) -> dict[str, Any]:
    device = trainer.strategy.root_device
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model_name()
    return {"width": cfg.model.get("width"), "epochs": cfg.trainer.max_epochs, "batch": cfg.data.batch_size,
            "device": f"{device.type} ({where}), {trainer.world_size} process(es)",
            "precision": trainer.precision, "seed": cfg.seed}


def _local_rank() -> int:
    """This process's rank on its node, as Lightning's and SLURM's launchers set it (0 when not distributed)."""
    return int(os.environ.get("LOCAL_RANK", os.environ.get("SLURM_LOCALID", "0")))


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit one model and return its final metrics (also written to ``<output_dir>/metrics.json``).

    The config is checked before anything is loaded or written; ``resume`` must point at a checkpoint of a
    run with the same config, and a folder holding an earlier run's results is only written to when resuming it.
    Under DDP every rank runs this; Lightning's checkpoint callback and loggers write from rank 0 only, and so
    does this function.
    """
    validate_train_config(cfg)
    inline_table_file(cfg)
    output_dir = Path(cfg.paths.output_dir)
    checkpoint_dir = OmegaConf.select(cfg, "callbacks.last_checkpoint.dirpath", default=None)
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else output_dir / "checkpoints"
    resume = check_resume(cfg, checkpoint_dir)  # also: the config is the one the folder's run was trained with
    if str(cfg.get("resume")) == "auto" and (output_dir / "metrics.json").is_file():
        # a requeued or rerun job whose run had already finished: nothing to do, report its results again
        log.info("resume=auto: %s already finished (metrics.json is there); not training it again", output_dir)
        return json.loads((output_dir / "metrics.json").read_text())
    check_new_output(checkpoint_dir, output_dir, resume)

    L.seed_everything(cfg.seed, workers=True)
    torch.set_float32_matmul_precision("high")
    keep_freed_memory()
    datamodule = build_datamodule(cfg)
    if _local_rank() == 0:  # the data check (and download) before any logger writes: a missing data set leaves no run
        datamodule.prepare_data()
    module = build_module(cfg, datamodule)
    resume_step = _checkpoint_value(resume, "global_step") if resume is not None else None
    trainer: L.Trainer = instantiate(lightning_trainer_config(cfg.trainer),
                                     callbacks=build_callbacks(cfg), logger=build_loggers(cfg, resume_step),
                                     plugins=[AtomicCheckpointIO()])
    # a sweep job whose ranks Lightning starts by re-running the command would re-run the sweep; under SLURM (or
    # torchrun) the cluster starts the ranks, there is no launcher and each sweep job is one DDP run
    relaunches_command = getattr(trainer.strategy, "launcher", None) is not None
    check_distributed(cfg, trainer.world_size, in_sweep() and relaunches_command)
    if trainer.is_global_zero:
        log.info(run_header(_choices(), _key_settings(cfg, trainer), sum(p.numel() for p in module.net.parameters()),
                            str(output_dir)))
    for logger in trainer.loggers:  # the resolved config, once per logger (rank 0 only: Lightning's loggers)
        logger.log_hyperparams(cast(dict[str, Any], module.run_config))  # build_module sets it

    stored = load_plain(resume, mmap=True).get("infomatch_label_estimates") if resume is not None else None
    if stored and resume is not None:  # stored only comes from a resumed checkpoint
        estimates = restore_label_estimates(module.label_strategy, stored, resume)
    else:
        estimates = fit_label_strategy(module.label_strategy, datamodule, cfg.estimation.images, cfg.estimation.seed)
    module.label_estimates = estimates
    fit_start = time.perf_counter()
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume, weights_only=True)
    except FloatingPointError as error:  # the module never lets a non-finite step's weights into a checkpoint
        raise FloatingPointError(f"{error} {_kept_checkpoint_note(checkpoint_dir / 'last.ckpt')}") from error
    except (RunInterrupted, SIGTERMException) as stop:  # Lightning's own: SIGTERM during validation
        what = (str(stop) if isinstance(stop, RunInterrupted) else
                f"training stopped by SIGTERM at epoch {trainer.current_epoch} (global step {trainer.global_step})")
        stopped = type(stop) if isinstance(stop, RunInterrupted) else RunInterrupted
        raise stopped(_stopped_message(what, checkpoint_dir / "last.ckpt")) from None
    results: dict[str, Any] = {"val": _plain(trainer.callback_metrics), "epochs": trainer.current_epoch,
                               "fit_seconds": time.perf_counter() - fit_start, "machine": machine_record(trainer)}
    results["val"] = {name: value for name, value in results["val"].items() if name.startswith("val/")}
    if estimates:
        results["label_estimates"] = estimates

    # the first ModelCheckpoint (Lightning types it as the base Checkpoint): the configs' checkpoints are all one
    checkpoint = cast(ModelCheckpoint | None, trainer.checkpoint_callback)
    best_path = checkpoint.best_model_path if checkpoint is not None else ""
    results["best_checkpoint"] = best_path
    last = checkpoint_dir / "last.ckpt"
    results["last_checkpoint"] = str(last) if last.is_file() else ""
    if checkpoint is not None and checkpoint.best_model_score is not None:
        results["best_val_top1"] = float(checkpoint.best_model_score)
    if cfg.get("test"):
        tested = trainer.test(module, datamodule=datamodule, ckpt_path=best_path or None, verbose=False,
                              weights_only=True)
        results["test"] = _plain(tested[0]) if tested else {}

    if trainer.is_global_zero:  # the metrics are synced over the ranks; rank 0 writes them
        output_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(output_dir / "metrics.json", lambda handle: handle.write(json.dumps(results, indent=2).encode()))
        log.info(run_footer(results, str(output_dir)))
    return results
