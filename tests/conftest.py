"""Shared fixtures and helpers: the real Hydra configs composed with tiny settings as the entry points would,
train.py subprocesses, a fake CIFAR-100 folder and a pickle that would run code if loaded."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
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


# ---- helpers shared by test modules ------------------------------------------------------------

# 2 training batches per epoch, deterministic algorithms, the width-8 ResNet of debug=fast
TINY = ["debug=fast", "data.train_size=192", "data.val_size=64", "data.test_size=64",
        "trainer.deterministic=true", "trainer.benchmark=false"]

# the best checkpoint is epoch 0's; last.ckpt must still follow every epoch
EARLY_BEST = ["+callbacks.early_best._target_=probes.EarlyBest",
              "callbacks.model_checkpoint.monitor=val/early_best"]


def train_py(*overrides: str) -> list[str]:
    return [sys.executable, str(ROOT / "train.py"), *overrides]


def subprocess_env() -> dict[str, str]:
    # same thread count as this process, so float reductions match the in-process reference runs
    return {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": str(torch.get_num_threads()),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "tests"), os.environ.get("PYTHONPATH")]))}


def run_train(*overrides: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(train_py(*overrides), cwd=cwd, capture_output=True, text=True, timeout=600,
                          env=subprocess_env())


def assert_one_paragraph_error(result: subprocess.CompletedProcess, *expected: str) -> None:
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr[-3000:]
    for text in expected:
        assert text in errors[0]


def write_fake_cifar(root, num_train=60, num_test=20):
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    arrays = {}
    for split, count in (("train", num_train), ("test", num_test)):
        data = rng.integers(0, 256, (count, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 100, count)]
        # official layout (python-version pickles), without 'filenames' like the offline copy
        with open(folder / split, "wb") as handle:
            pickle.dump({"data": data, "fine_labels": labels, "coarse_labels": [label // 5 for label in labels],
                         "batch_label": split}, handle, 2)
        arrays[split] = (data, labels)
    with open(folder / "meta", "wb") as handle:
        pickle.dump({"fine_label_names": [f"c{i}" for i in range(100)],
                     "coarse_label_names": [f"super{i}" for i in range(20)]}, handle, 2)
    return arrays


def write_marker(path: str) -> str:
    """What the smuggled object runs if a checkpoint is ever unpickled with code allowed."""
    Path(path).write_text("code ran")
    return path


class Smuggled:
    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return write_marker, (self.marker,)
