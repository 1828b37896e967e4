"""train(cfg): build everything from the composed config, fit, test the best checkpoint, write metrics.json."""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from infomatch.module import InfoMatchModule

log = logging.getLogger(__name__)


def _tensorboard_available() -> bool:
    return any(importlib.util.find_spec(name) for name in ("tensorboard", "tensorboardX"))


def build_loggers(cfg: DictConfig) -> list:
    loggers = []
    for name, logger_cfg in (cfg.get("logger") or {}).items():
        if "TensorBoardLogger" in logger_cfg._target_ and not _tensorboard_available():
            log.info("tensorboard is not installed: logging to CSV only (pip install tensorboard to enable it)")
            continue
        loggers.append(instantiate(logger_cfg))
    return loggers


def build_callbacks(cfg: DictConfig) -> list:
    return [instantiate(callback_cfg) for callback_cfg in (cfg.get("callbacks") or {}).values()]


def build_module(cfg: DictConfig, datamodule: L.LightningDataModule) -> InfoMatchModule:
    net = instantiate(cfg.model)
    if net.num_classes != datamodule.num_classes:
        raise ValueError(f"model.num_classes={net.num_classes} but the data set has {datamodule.num_classes} classes")
    return InfoMatchModule(
        net=net,
        labels=instantiate(cfg.labels),
        degrader=instantiate(cfg.augment),
        optimizer=instantiate(cfg.optimizer),
        scheduler=instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
        mean=datamodule.mean,
        std=datamodule.std,
        crop_flip=cfg.base_augment.crop_flip,
        crop_padding=cfg.base_augment.padding,
        ece_bins=cfg.ece_bins,
        seed=cfg.seed,
        run_config=OmegaConf.to_container(cfg, resolve=True),
    )


def resolve_precision(trainer_cfg: DictConfig) -> str:
    """``auto``: bf16 mixed precision on a GPU; full fp32 on CPUs, where bf16 is emulated and slower."""
    precision = str(trainer_cfg.get("precision", "auto"))
    if precision != "auto":
        return precision
    uses_gpu = trainer_cfg.get("accelerator", "auto") in ("gpu", "cuda") or (
        trainer_cfg.get("accelerator", "auto") == "auto" and torch.cuda.is_available())
    return "bf16-mixed" if uses_gpu else "32-true"


def _plain(metrics: dict[str, Any]) -> dict[str, float]:
    return {name: float(value) for name, value in metrics.items()}


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit one model and return its final metrics (also written to ``<output_dir>/metrics.json``)."""
    L.seed_everything(cfg.seed, workers=True)
    torch.set_float32_matmul_precision("high")
    datamodule = instantiate(cfg.data)
    module = build_module(cfg, datamodule)
    trainer: L.Trainer = instantiate(cfg.trainer, precision=resolve_precision(cfg.trainer),
                                     callbacks=build_callbacks(cfg), logger=build_loggers(cfg))

    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("resume"))
    results: dict[str, Any] = {"val": _plain(trainer.callback_metrics), "epochs": trainer.current_epoch}
    results["val"] = {name: value for name, value in results["val"].items() if name.startswith("val/")}

    checkpoint = trainer.checkpoint_callback
    best_path = checkpoint.best_model_path if checkpoint is not None else ""
    results["best_checkpoint"] = best_path
    results["last_checkpoint"] = checkpoint.last_model_path if checkpoint is not None else ""
    if checkpoint is not None and checkpoint.best_model_score is not None:
        results["best_val_top1"] = float(checkpoint.best_model_score)
    if cfg.get("test"):
        tested = trainer.test(module, datamodule=datamodule, ckpt_path=best_path or None, verbose=False)
        results["test"] = _plain(tested[0]) if tested else {}

    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "metrics.json").write_text(json.dumps(results, indent=2))
    log.info("final metrics: %s", json.dumps(results))
    return results
