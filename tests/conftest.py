"""Compose the real Hydra configs with tiny settings, as the entry points would."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

import infomatch.data  # noqa: F401  (registers the resolver model.num_classes follows)

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"

torch.set_num_threads(min(2, os.cpu_count() or 1))


def compose_config(overrides: list[str], output_dir: Path, config_name: str = "train") -> DictConfig:
    """Compose like @hydra.main does (hydra resolvers available), writing into output_dir."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        del cfg["hydra"]  # @hydra.main hands tasks the config without it; resolvers still see HydraConfig
    return cfg


@pytest.fixture
def make_config(tmp_path):
    def factory(*overrides: str, config_name: str = "train") -> DictConfig:
        return compose_config(list(overrides), tmp_path / "run", config_name)

    yield factory
    GlobalHydra.instance().clear()


def start_until_marker(command: list[str], cwd: Path, env: dict, log: Path, marker: Path) -> subprocess.Popen:
    """Start ``command`` with its output in ``log`` and return it once it has written ``marker`` (a test callback).

    The output goes to a file, not a pipe: a full pipe would stall the run. The caller kills the process.
    """
    with open(log, "w") as output:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 600
    while not marker.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"the run never reached its marker {marker.name}:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    return process
