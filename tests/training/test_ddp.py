"""DDP: each rank's share of the data, one run folder for all ranks, the settings DDP cannot use.

The end-to-end runs start two CPU processes (gloo) from ``python train.py trainer=ddp``, once launched by
Lightning and once as srun would start them, and read which images each rank saw from tests/probes.py.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import ROOT

from infomatch.data import SyntheticDataModule
from infomatch.data.batching import DeviceBatches, IndexBatches
from infomatch.runs.folders import hydra_subdir, log_name, shared_new_dir
from infomatch.runs.validation import check_distributed
from infomatch.utils.errors import ConfigError

SIZES = (1, 7, 8, 9, 63, 64, 65, 100)


def rank_lists(size: int, batch_size: int, world_size: int, epoch: int = 0) -> list[list[torch.Tensor]]:
    samplers = [IndexBatches(size, batch_size, shuffle=True, seed=3, rank=rank, world_size=world_size)
                for rank in range(world_size)]
    for sampler in samplers:
        sampler.set_epoch(epoch)
    return [list(sampler) for sampler in samplers]


@pytest.mark.parametrize("world_size", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("batch_size", [8, 12])
def test_every_rank_gets_a_disjoint_share_of_every_step_and_all_ranks_cover_the_epoch(world_size, batch_size):
    for size in SIZES:
        if size < world_size:
            continue
        ranks = rank_lists(size, batch_size, world_size)
        # every rank takes the same number of steps, the number the sampler announces, none of them empty
        assert {len(batches) for batches in ranks} == {len(IndexBatches(size, batch_size, True, 3, 0, world_size))}
        assert all(len(batch) > 0 for batches in ranks for batch in batches)
        seen = torch.cat([batch for batches in ranks for batch in batches]).tolist()
        assert sorted(seen) == list(range(size)), (size, world_size)  # each image exactly once
        for step in zip(*ranks):
            shares = [len(batch) for batch in step]
            assert max(shares) - min(shares) <= 1
            # a step is a global batch of batch_size, or a short last one, or that plus a remainder < ranks
            assert sum(shares) <= batch_size + world_size - 1


def test_with_a_divisible_global_batch_each_step_trains_the_one_device_images():
    one_device = rank_lists(100, 12, 1)[0]
    for world_size in (2, 3, 4):
        ranks = rank_lists(100, 12, world_size)
        for step, batches in enumerate(zip(*ranks)):
            assert sorted(torch.cat(batches).tolist()) == sorted(one_device[step].tolist())


def test_one_device_batches_are_the_plain_split_of_the_epoch_order():
    batches = rank_lists(100, 12, 1)[0]
    assert [len(batch) for batch in batches] == [12] * 8 + [4]


def test_the_order_changes_every_epoch_and_replays_for_the_same_epoch():
    for world_size in (1, 2, 4):
        first, second = rank_lists(64, 16, world_size, epoch=0), rank_lists(64, 16, world_size, epoch=1)
        again = rank_lists(64, 16, world_size, epoch=0)
        for rank in range(world_size):
            assert not torch.equal(torch.cat(first[rank]), torch.cat(second[rank]))
            assert torch.equal(torch.cat(first[rank]), torch.cat(again[rank]))


def test_device_batches_take_the_same_share_as_the_sampler():
    images = torch.arange(70).view(70, 1, 1, 1).to(torch.uint8)
    labels = torch.arange(70)
    for world_size in (1, 3):
        for rank in range(world_size):
            gathered = DeviceBatches(images, labels, 16, True, 3, torch.device("cpu"), lambda: 2, rank, world_size)
            sampler = IndexBatches(70, 16, True, 3, rank, world_size)
            sampler.set_epoch(2)
            assert len(gathered) == len(sampler)
            assert [batch[1].tolist() for batch in gathered] == [index.tolist() for index in sampler]


def fake_trainer(rank: int, world_size: int) -> SimpleNamespace:
    return SimpleNamespace(global_rank=rank, world_size=world_size, current_epoch=0, training=False,
                           strategy=SimpleNamespace(root_device=torch.device("cpu")))


def test_validation_and_test_sets_are_split_over_the_ranks_without_repeats():
    datamodule = SyntheticDataModule(num_classes=4, train_size=80, test_size=37, val_size=21, eval_batch_size=4,
                                     on_device=False)
    datamodule.setup()
    for split, loader in (("val", "val_dataloader"), ("test", "test_dataloader")):
        labels = getattr(datamodule, f"{split}_set")[1]
        shares, sizes = [], []
        for rank in range(3):
            datamodule.trainer = fake_trainer(rank, 3)
            batches = list(getattr(datamodule, loader)())
            sizes += [len(batch[1]) for batch in batches]
            shares.append(torch.cat([batch[1] for batch in batches]))
        # eval_batch_size is per device (37 = 3 x 12 + 1: the last image joins the step before, 5 + 4 + 4)
        assert max(sizes) == (5 if split == "test" else 4)
        # in order, rank by rank within each step: together exactly the split's labels, each once
        assert sum(len(share) for share in shares) == len(labels)
        assert sorted(torch.cat(shares).tolist()) == sorted(labels.tolist())


def test_a_split_smaller_than_the_ranks_is_refused():
    datamodule = SyntheticDataModule(num_classes=4, train_size=40, test_size=3, val_size=8, on_device=False)
    datamodule.setup()
    datamodule.trainer = fake_trainer(0, 4)
    with pytest.raises(ConfigError, match="3 images, fewer than the 4 ranks"):
        datamodule.test_dataloader()


def test_ddp_settings_are_checked(make_config):
    cfg = make_config("trainer=ddp", "data.batch_size=100")
    check_distributed(cfg, 1, multirun=True)  # one process: nothing to check
    check_distributed(cfg, 4, multirun=False)
    with pytest.raises(ConfigError, match=r"data.batch_size=100 .* divisible by 3, e.g. data.batch_size=99"):
        check_distributed(cfg, 3, multirun=False)
    with pytest.raises(ConfigError, match="a -m sweep cannot run on 2 ranks"):
        check_distributed(cfg, 2, multirun=True)
    with pytest.raises(ConfigError, match="use_distributed_sampler=true"):
        check_distributed(make_config("trainer=ddp", "trainer.use_distributed_sampler=true"), 2, multirun=False)


def srun_env(monkeypatch, rank: int, restart: int = 0) -> None:
    for name, value in {"SLURM_NTASKS": "2", "SLURM_PROCID": str(rank), "SLURM_JOB_ID": "77", "SLURM_STEP_ID": "0",
                        "SLURM_RESTART_COUNT": str(restart), "SLURM_JOB_NAME": "train"}.items():
        monkeypatch.setenv(name, value)


def test_srun_ranks_share_the_folder_rank_zero_claims(tmp_path, monkeypatch):
    (tmp_path / "runs" / "run").mkdir(parents=True)  # taken: rank 0 gets run_2, which rank 1 cannot guess
    srun_env(monkeypatch, 0)
    claimed = shared_new_dir(str(tmp_path / "runs" / "run"))
    assert claimed == str(tmp_path / "runs" / "run_2")
    assert hydra_subdir(claimed) == ".hydra" and log_name("train") == "train"
    srun_env(monkeypatch, 1)
    assert shared_new_dir(str(tmp_path / "runs" / "run")) == claimed
    assert hydra_subdir(claimed) is None and log_name("train") == "train_rank1"
    assert sorted(path.name for path in (tmp_path / "runs").iterdir()) == [".srun", "run", "run_2"]
    # a requeued job (same job id) does not take its earlier attempt's folder
    srun_env(monkeypatch, 1, restart=1)
    with pytest.raises(ConfigError, match="waited in vain for rank 0"):
        shared_new_dir(str(tmp_path / "runs" / "run"), timeout_s=0.3)


def test_without_srun_every_run_claims_its_own_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_NTASKS", raising=False)
    first, second = shared_new_dir(str(tmp_path / "run")), shared_new_dir(str(tmp_path / "run"))
    assert (first, second) == (str(tmp_path / "run"), str(tmp_path / "run_2"))


# ---- two real processes ---------------------------------------------------------------------------------------
# 129 training images: global batches 64 and 65 (a last image joins the step before it, 33 + 32);
# val 40 and test 51 in per-device batches of 16
DDP_ARGS = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "debug=fast", "data.train_size=169",
            "data.val_size=40", "data.test_size=51", "data.eval_batch_size=16", "model.width=4", "augment=none",
            "base_augment.crop_flip=false", "trainer.max_epochs=2", "+callbacks.probe._target_=probes.RecordSamples"]


def run_env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests")])
    return {**os.environ, "PYTHONPATH": path, "PYTHONWARNINGS": "ignore", **extra}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def only_run_folder(cwd: Path) -> Path:
    (run,) = (cwd / "outputs" / "debug" / "runs").glob("20*")
    assert not (cwd / "outputs" / "debug" / "multirun").exists()
    assert [path.name for path in cwd.rglob("metrics.json")] == ["metrics.json"]
    return run


def read_probe(folder: Path) -> list[dict[str, list[list[int]]]]:
    return [json.loads((folder / f"rank{rank}.json").read_text()) for rank in (0, 1)]


@pytest.fixture(scope="module")
def lightning_launched(tmp_path_factory):
    """``python train.py trainer=ddp ...``: Lightning starts rank 1 by running the command again."""
    cwd = tmp_path_factory.mktemp("lightning")
    command = [sys.executable, str(ROOT / "train.py"), *DDP_ARGS, f"+callbacks.probe.folder={cwd / 'probe'}"]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300, env=run_env())
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd


@pytest.mark.slow
def test_ddp_run_trains_every_image_once_per_epoch_in_a_new_order(lightning_launched):
    run = only_run_folder(lightning_launched)
    assert (run / ".hydra" / "config.yaml").is_file() and (run / "checkpoints" / "last.ckpt").is_file()
    assert (run / "train.log").is_file() and (run / "train_ddp_process_1.log").is_file()
    ranks = read_probe(lightning_launched / "probe")
    for epoch in (0, 1):
        steps = [record[f"train_epoch{epoch}"] for record in ranks]
        assert [[len(batch) for batch in rank] for rank in steps] == [[32, 33], [32, 32]]
        seen = [index for rank in steps for batch in rank for index in batch]
        assert sorted(seen) == list(range(129))
        val = [index for record in ranks for batch in record[f"val_epoch{epoch}"] for index in batch]
        assert sorted(val) == list(range(40))
    order = [[index for batch in record[f"train_epoch{epoch}"] for index in batch] for epoch in (0, 1)
             for record in ranks]
    assert order[0] != order[2] and order[1] != order[3]  # each rank's sequence changed between epochs
    tested = [index for record in ranks for batch in record["test"] for index in batch]
    assert sorted(tested) == list(range(51))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and 0 <= metrics["test"]["test/top1"] <= 1


@pytest.mark.slow
def test_srun_started_ranks_share_one_folder_and_train_as_lightning_launched_ones(lightning_launched, tmp_path):
    port = str(free_port())
    processes = []
    for rank in (0, 1):
        env = run_env(SLURM_NTASKS="2", SLURM_NTASKS_PER_NODE="2", SLURM_NNODES="1", SLURM_PROCID=str(rank),
                      SLURM_LOCALID=str(rank), SLURM_NODEID="0", SLURM_JOB_ID="4242", SLURM_STEP_ID="0",
                      SLURM_JOB_NAME="train", SLURM_NODELIST="127.0.0.1", MASTER_PORT=port)
        command = [sys.executable, str(ROOT / "train.py"), *DDP_ARGS, f"+callbacks.probe.folder={tmp_path / 'probe'}"]
        processes.append(subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, text=True))
    outputs = [process.communicate(timeout=300)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    run = only_run_folder(tmp_path)
    assert (run / "train.log").is_file() and (run / "train_rank1.log").is_file()
    assert [path.name for path in (run / ".hydra").iterdir()] and not list((run / ".hydra").glob("20*"))
    # the same ranks, seeds and shares: the same images per step and the same numbers
    assert read_probe(tmp_path / "probe") == read_probe(lightning_launched / "probe")
    ours, theirs = (json.loads((folder / "metrics.json").read_text())
                    for folder in (run, only_run_folder(lightning_launched)))
    assert ours["val"] == pytest.approx(theirs["val"]) and ours["test"] == pytest.approx(theirs["test"])


@pytest.mark.slow
def test_a_sweep_on_several_ranks_is_refused_before_training(tmp_path):
    command = [sys.executable, str(ROOT / "train.py"), "-m", "trainer=ddp", "trainer.accelerator=cpu",
               "trainer.devices=2", "debug=fast", "seed=0,1"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=run_env())
    assert result.returncode == 1
    assert "a -m sweep cannot run on 2 ranks" in result.stderr and "Traceback" not in result.stderr
    assert not list(tmp_path.rglob("*.ckpt"))
