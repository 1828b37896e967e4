"""Reliability: clear errors for bad input, resuming a hard-killed run, crash-safe checkpoints, runs that
never overwrite each other, and determinism. Tiny models on synthetic data; subprocesses run train.py itself."""

from __future__ import annotations

import json
import os
import pickle
import signal
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import (
    CONFIGS,
    EARLY_BEST,
    TINY,
    assert_one_paragraph_error,
    compose_config,
    run_train,
    start_until_marker,
    subprocess_env,
    train_py,
)
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

import infomatch.training.module
from infomatch.runs.checkpoint_io import AtomicCheckpointIO, atomic_write
from infomatch.runs.folders import claim_new_dir, hydra_subdir, register_resolvers, run_dir
from infomatch.runs.validation import check_resume, validate_train_config
from infomatch.tasks.train import train
from infomatch.utils.errors import ConfigError, DatasetError
from infomatch.utils.seeding import mix_seed

# ---- bad input ------------------------------------------------------------------------------------

@pytest.mark.parametrize("override", ["labels=foo", "augment=bar"])
def test_unknown_group_option_names_the_valid_choices(tmp_path, override):
    result = run_train(override, cwd=tmp_path)
    group = override.split("=")[0]
    choices = sorted(path.stem for path in (CONFIGS / group).glob("*.yaml"))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert f"Could not find '{group}/" in result.stderr and f"Available options in '{group}'" in result.stderr
    listed = result.stderr.split(f"Available options in '{group}':")[1].split()
    assert listed[:len(choices)] == choices


@pytest.mark.parametrize(("overrides", "message"), [
    (["labels=ls", "labels.epsilon=1.0"], "labels.epsilon=1.0 must be a number in [0, 1)"),
    (["labels=ls", "labels.epsilon=-0.1"], "labels.epsilon=-0.1 must be a number in [0, 1)"),
    (["labels=im", "labels.eps_max=1.5"], "labels.eps_max=1.5 must be a number in [0, 1]"),
    (["labels=im", "labels.bins=1"], "labels.bins=1 must be an integer in [2, 4096]"),
    (["labels=im", "labels.bins=5000"], "labels.bins=5000 must be an integer in [2, 4096]"),
    (["model.width=0"], "model.width=0 must be an integer >= 1"),
    (["data.batch_size=0"], "data.batch_size=0 must be an integer >= 1"),
    (["trainer.max_epochs=-1"], "trainer.max_epochs=-1 must be an integer >= 1"),
    (["seed=null"], "seed=None must be an integer"),
    (["augment.types=[blur,jpeg]"], "augment.types=['blur', 'jpeg'] may only list: diffusion, blur, dropout, mosaic"),
    (["augment.dropout_patch=0"], "augment.dropout_patch=0 must be a number >= 1"),
    (["data=synthetic", "data.val_size=2048"], "data.val_size=2048 must be smaller than train_size=2048"),
    (["labels=ls", "+labels.epsilonn=0.2"], "labels cannot be built from"),
])
def test_out_of_range_setting_is_named_with_its_valid_range(make_config, overrides, message):
    with pytest.raises(ConfigError, match="invalid configuration") as raised:
        validate_train_config(make_config(*overrides))
    assert message in str(raised.value)


def test_boundary_values_are_accepted(make_config):
    validate_train_config(make_config("labels=ls", "labels.epsilon=0.0"))
    validate_train_config(make_config("labels=im", "labels.eps_max=1.0", "labels.bins=2", "seed=0"))


@pytest.mark.slow
def test_bad_value_exits_with_one_paragraph_before_loading_data(tmp_path):
    # the data is missing too: the config error must come first, before any attempt to load it
    result = run_train("data=cifar100", f"data.root={tmp_path / 'nowhere'}", "data.download=false",
                       "labels=ls", "labels.epsilon=1.5", cwd=tmp_path)
    assert_one_paragraph_error(result, "labels.epsilon=1.5 must be a number in [0, 1)")
    assert "CIFAR" not in result.stderr


@pytest.mark.slow
def test_missing_cifar_says_where_it_looked_and_how_to_provide_it(tmp_path):
    root = tmp_path / "nowhere"
    result = run_train("data=cifar100", f"data.root={root}", "data.download=false",
                       "trainer.max_epochs=1", cwd=tmp_path)
    assert_one_paragraph_error(result, f"CIFAR-100 not found at data.root={root}", "data.root=", "data.download=true")


def test_truncated_cifar_file_is_named(make_config, tmp_path):
    folder = tmp_path / "cifar" / "cifar-100-python"
    folder.mkdir(parents=True)
    complete = pickle.dumps({"data": np.zeros((10, 3072), dtype=np.uint8), "fine_labels": [0] * 10})
    (folder / "train").write_bytes(complete[: len(complete) // 2])
    (folder / "test").write_bytes(complete)
    cfg = make_config("data=cifar100", f"data.root={tmp_path / 'cifar'}", "data.download=false",
                      "trainer.max_epochs=1", "logger=csv")
    with pytest.raises(DatasetError, match="corrupt or truncated") as raised:
        train(cfg)
    assert str(folder / "train") in str(raised.value)


# ---- faults ---------------------------------------------------------------------------------------

@pytest.mark.slow
def test_hard_killed_run_resumes_to_the_same_final_metrics(tmp_path, make_config):
    overrides = [*TINY, "labels=im", "augment=all", "trainer.max_epochs=3"]
    marker = tmp_path / "paused"
    pause = ["+callbacks.pause._target_=probes.PauseMidEpoch", "+callbacks.pause.epoch=1",
             f"+callbacks.pause.marker={marker}"]
    log = tmp_path / "killed_run.log"
    process = start_until_marker(train_py(*overrides, *pause), tmp_path, subprocess_env(), log, marker)
    try:
        process.send_signal(signal.SIGKILL)  # mid-epoch 2: one of its two batches done
        process.wait(timeout=60)
    finally:
        process.kill()

    [run] = (tmp_path / "outputs" / "debug" / "runs").iterdir()
    last = run / "checkpoints" / "last.ckpt"
    assert torch.load(last, map_location="cpu", weights_only=False)["epoch"] == 0
    resumed = run_train(*overrides, f"resume={last}", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"Restoring states from the checkpoint path at {last}" in resumed.stdout + resumed.stderr
    # continued in place
    assert [path.name for path in (tmp_path / "outputs" / "debug" / "runs").iterdir()] == [run.name]
    assert not any("resume=" in item for item in OmegaConf.load(run / ".hydra" / "overrides.yaml"))
    after_resume = json.loads((run / "metrics.json").read_text())
    uninterrupted = train(make_config(*overrides))
    for key in ("val", "test", "best_val_top1", "epochs"):
        assert after_resume[key] == uninterrupted[key]


def test_resume_refuses_missing_unreadable_and_mismatched_checkpoints(make_config, tmp_path):
    def resume_error(path: Path, *overrides: str) -> str:
        with pytest.raises(ConfigError) as raised:
            check_resume(make_config(*overrides, f"resume={path}"), tmp_path / "run" / "checkpoints")
        return str(raised.value)

    assert "no such checkpoint file" in resume_error(tmp_path / "missing.ckpt")
    truncated = tmp_path / "truncated.ckpt"
    torch.save({"weights": torch.ones(1000)}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:2000])
    assert "truncated, corrupt or not a checkpoint" in resume_error(truncated)
    weights_only = tmp_path / "weights.ckpt"
    torch.save({"state_dict": {}}, weights_only)
    assert "not a training checkpoint" in resume_error(weights_only)

    trained = tmp_path / "trained.ckpt"
    torch.save({"loops": {}, "infomatch_config": OmegaConf.to_container(make_config("seed=1"), resolve=True)}, trained)
    assert check_resume(make_config("seed=1", f"resume={trained}"), tmp_path / "run" / "checkpoints") == trained
    assert "seed: 1 in the checkpoint, 0 now" in resume_error(trained, "seed=0")


def test_interrupted_checkpoint_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "last.ckpt"
    checkpoint_io = AtomicCheckpointIO()
    checkpoint_io.save_checkpoint({"step": 1, "weights": torch.ones(1000)}, path)

    def crash_halfway(handle):
        handle.write(b"half a checkpoint")
        raise KeyboardInterrupt  # stands in for the process dying mid-write

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, crash_halfway)
    monkeypatch.setattr(os, "replace", lambda *args: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):  # fully written but killed before the rename
        checkpoint_io.save_checkpoint({"step": 2, "weights": torch.zeros(1000)}, path)
    assert checkpoint_io.load_checkpoint(path)["step"] == 1
    monkeypatch.undo()

    checkpoint_io.save_checkpoint({"step": 3, "weights": torch.zeros(1000)}, path)
    assert checkpoint_io.load_checkpoint(path)["step"] == 3
    assert [item.name for item in path.parent.glob("*.ckpt")] == ["last.ckpt"]


def test_non_finite_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(make_config, tmp_path, monkeypatch):
    real_loss = infomatch.training.module.soft_cross_entropy
    calls = []

    def loss_diverging_at_step_3(logits, targets):
        calls.append(None)
        loss = real_loss(logits, targets)
        return loss * float("nan") if len(calls) == 3 else loss

    monkeypatch.setattr(infomatch.training.module, "soft_cross_entropy", loss_diverging_at_step_3)
    with pytest.raises(FloatingPointError,
                       match=r"non-finite training loss \(nan\) at epoch 1, global step 2") as raised:
        train(make_config(*TINY, "trainer.max_epochs=3"))
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert f"The last good checkpoint is kept: {last}" in str(raised.value)
    checkpoint = torch.load(last, map_location="cpu", weights_only=False)
    assert (checkpoint["epoch"], checkpoint["global_step"]) == (0, 2)
    assert all(torch.isfinite(tensor).all() for tensor in checkpoint["state_dict"].values())
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_last_checkpoint_is_written_every_epoch_when_the_best_epoch_is_earlier(make_config, tmp_path):
    results = train(make_config(*TINY, *EARLY_BEST, "trainer.max_epochs=3", "test=false"))
    checkpoints = tmp_path / "run" / "checkpoints"
    last = checkpoints / "last.ckpt"
    assert sorted(path.name for path in checkpoints.iterdir()) == ["best_epoch000.ckpt", "last.ckpt"]
    assert results["best_checkpoint"] == str(checkpoints / "best_epoch000.ckpt")
    assert results["last_checkpoint"] == str(last)
    saved = torch.load(last, map_location="cpu", weights_only=True)
    assert (saved["epoch"], saved["global_step"]) == (2, 6)  # 3 epochs of 2 batches
    assert check_resume(make_config(*TINY, *EARLY_BEST, "trainer.max_epochs=3", "resume=auto"), checkpoints) == last


def test_diverged_batchnorm_statistics_are_never_checkpointed(make_config, tmp_path):
    plant = ["+callbacks.plant._target_=probes.PlantInfInRunningVar", "+callbacks.plant.epoch=1"]
    with pytest.raises(FloatingPointError, match=r"non-finite parameters or buffers \(inf or nan in "
                                                 r"net\.[\w.]*running_var\) at epoch 1, global step 4") as raised:
        train(make_config(*TINY, *plant, "trainer.max_epochs=3"))
    checkpoints = tmp_path / "run" / "checkpoints"
    last = checkpoints / "last.ckpt"
    assert f"The last good checkpoint is kept: {last} (end of epoch 0)" in str(raised.value)
    assert sorted(path.name for path in checkpoints.iterdir()) == ["best_epoch000.ckpt", "last.ckpt"]
    for path in checkpoints.iterdir():
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        assert checkpoint["epoch"] == 0
        assert all(torch.isfinite(tensor).all() for tensor in checkpoint["state_dict"].values()
                   if tensor.is_floating_point())
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_new_run_refuses_a_folder_holding_an_earlier_runs_checkpoints(make_config, tmp_path):
    earlier = tmp_path / "run" / "checkpoints" / "last.ckpt"
    earlier.parent.mkdir(parents=True)
    earlier.write_bytes(b"an earlier run's checkpoint")
    with pytest.raises(ConfigError, match="already holds an earlier run's results") as raised:
        train(make_config(*TINY))
    assert f"resume={earlier}" in str(raised.value)
    assert earlier.read_bytes() == b"an earlier run's checkpoint"
    assert sorted(path.name for path in (tmp_path / "run").iterdir()) == ["checkpoints"]
    earlier.rename(earlier.with_name("best_epoch004.ckpt"))  # no last.ckpt: the advice names what is there
    with pytest.raises(ConfigError, match="already holds an earlier run's results") as raised:
        train(make_config(*TINY))
    assert (f"resume={earlier.with_name('best_epoch004.ckpt')};" in str(raised.value)
            and "last.ckpt" not in str(raised.value))


class FrozenClock(datetime):
    @classmethod
    def now(cls, tz=None) -> datetime:
        return cls(2026, 1, 1)


def test_runs_started_in_the_same_second_get_separate_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("hydra.core.utils.datetime", FrozenClock)  # Hydra's ${now:} reads this clock
    register_resolvers()
    folders = []
    for _ in range(2):  # as two train.py processes would, each composing and resolving its own config
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
            cfg = compose("train", return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        folders.append(OmegaConf.select(cfg, "hydra.run.dir"))
    GlobalHydra.instance().clear()
    assert folders == ["outputs/runs/2026-01-01_00-00-00_im_all_seed0",
                       "outputs/runs/2026-01-01_00-00-00_im_all_seed0_2"]
    assert all((tmp_path / folder).is_dir() for folder in folders)


def test_run_folder_helpers_never_reuse_a_folder(tmp_path):
    base = str(tmp_path / "outputs" / "runs" / "2026-01-01_00-00-00_im_all_seed0")
    assert claim_new_dir(base) == base
    assert claim_new_dir(base) == f"{base}_2"
    last = Path(base) / "checkpoints" / "last.ckpt"
    last.parent.mkdir()
    last.touch()
    assert run_dir(str(last), str(tmp_path / "elsewhere")) == base  # resuming continues in the run's folder
    assert hydra_subdir(base) == ".hydra"
    (Path(base) / ".hydra").mkdir()
    first, second = hydra_subdir(base), hydra_subdir(base)
    assert first.startswith(".hydra/") and second.startswith(".hydra/") and first != second


# ---- determinism ----------------------------------------------------------------------------------

@pytest.mark.slow
def test_sweep_repeats_a_seed_exactly_and_other_seeds_differ(tmp_path):
    result = run_train("-m", "seed=0,0,1", *TINY, "trainer.max_epochs=2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    [sweep] = (tmp_path / "outputs" / "debug" / "multirun").iterdir()
    runs = sorted((folder for folder in sweep.iterdir() if folder.is_dir()), key=lambda folder: folder.name)
    assert [folder.name for folder in runs] == ["0_im_all_seed0", "1_im_all_seed0", "2_im_all_seed1"]
    first, repeat, other = (json.loads((folder / "metrics.json").read_text()) for folder in runs)
    assert first["val"] == repeat["val"] and first["test"] == repeat["test"]
    assert first["val"] != other["val"]


def test_degradations_use_per_run_generators_not_global_random_state(tmp_path):
    overrides = [*TINY, "labels=im", "augment=all", "trainer.max_epochs=2"]
    plain = train(compose_config(overrides, tmp_path / "plain"))
    scrambled = train(compose_config([*overrides,
                                      "+callbacks.scramble._target_=probes.ScrambleGlobalRandomness"],
                                     tmp_path / "scrambled"))
    GlobalHydra.instance().clear()
    assert plain["val"] == scrambled["val"] and plain["test"] == scrambled["test"]
    # each rank of a multi-GPU run draws its own degradations
    assert mix_seed(0, 1, 0) != mix_seed(0, 1, 1) and mix_seed(0, 1, 0) != mix_seed(0, 2, 0)


def test_run_names_show_what_is_not_the_default_and_debug_runs_have_their_own_folder(make_config):
    from infomatch.runs.folders import run_label
    assert run_label("im", "all", 0) == "im_all_seed0"
    assert run_label("im", "all", 0, None, "cifar100") == "im_all_seed0"
    assert run_label("ls", "blur", 2, "cpu_study", "synthetic", None, ["v2"]) == "cpu_study_synthetic_ls_blur_seed2_v2"
    assert run_label("hard", "all", 1, None, "synthetic", "fast") == "hard_all_seed1"  # implied by outputs/debug
    assert run_label("im", "all", 0, base_augment="crop_flip") == "im_all_seed0"
    assert run_label("im", "all", 0, base_augment="trivialaugment") == "im_all_trivialaugment_seed0"
    with pytest.raises(SystemExit):
        run_label("im", "all", 0, tags=["a=b"])
    assert make_config("debug=fast").paths.log_dir == "outputs/debug"
    assert make_config("debug=fast_dev_run").paths.log_dir == "outputs/debug"
    assert make_config().paths.log_dir == "outputs"
