"""Experiment trackers: MLflow (a local file store) and Weights & Biases (offline) receive the run's resolved
config once and its metrics. Tiny models on synthetic data."""

from __future__ import annotations

import pytest
from hydra.utils import get_class

from infomatch.tasks import train as train_task
from infomatch.tasks.train import build_loggers, train
from infomatch.utils.errors import ConfigError

TINY = ["debug=fast", "data.train_size=192", "data.val_size=64", "data.test_size=64", "test=false"]


def test_logger_choices_combine(make_config):
    cfg = make_config("logger=[csv,mlflow,wandb]")
    assert [get_class(node._target_).__name__ for node in cfg.logger.values()] == \
        ["CSVLogger", "MLFlowLogger", "WandbLogger"]
    assert list(make_config("logger=default").logger) == ["csv", "tensorboard"]
    assert cfg.logger.wandb.offline is True


def test_mlflow_run_holds_the_config_and_validation_metrics(make_config, tmp_path):
    from mlflow.tracking import MlflowClient

    metrics = train(make_config(*TINY, "logger=[csv,mlflow]", f"paths.log_dir={tmp_path}", "labels=ls",
                                "seed=3"))
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns.db'}")
    [run] = client.search_runs([client.get_experiment_by_name("infomatch").experiment_id])
    assert run.data.tags["mlflow.runName"] == "ls_all_seed3"
    assert run.data.tags["run_dir"] == str(tmp_path / "run")
    params = run.data.params
    assert params["seed"] == "3" and params["labels/_target_"] == "infomatch.labels.LabelSmoothing"
    assert params["optimizer/lr"] == str(make_config(*TINY).optimizer.lr)
    assert run.data.metrics["val/top1"] == pytest.approx(metrics["val"]["val/top1"])
    history = client.get_metric_history(run.info.run_id, "val/top1")
    assert len(history) == 1  # one epoch, logged once
    assert run.info.status == "FINISHED"


def test_wandb_offline_run_is_written_to_the_run_folder(make_config, tmp_path, monkeypatch):
    import wandb

    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    metrics = train(make_config(*TINY, "logger=[csv,wandb]", "seed=2"))
    run = wandb.run
    try:
        assert run.offline and run.name == "im_all_seed2"
        assert run.config["seed"] == 2 and run.config["labels"]["_target_"] == "infomatch.labels.InformationMatching"
        assert run.summary["val/top1"] == pytest.approx(metrics["val"]["val/top1"])
    finally:
        wandb.finish()
    [offline_run] = (tmp_path / "run" / "wandb").glob("offline-run-*")
    assert list(offline_run.glob("run-*.wandb"))


def test_missing_tracker_package_names_the_pip_extra(make_config, monkeypatch):
    real = train_task.importlib.util.find_spec
    monkeypatch.setattr(train_task.importlib.util, "find_spec",
                        lambda name, *args: None if name == "mlflow" else real(name, *args))
    with pytest.raises(ConfigError, match=r"logger mlflow needs the mlflow package.*pip install -e '\.\[trackers\]'"):
        build_loggers(make_config("logger=[csv,mlflow]"))


def test_a_resumed_run_continues_its_mlflow_run(make_config, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # an earlier test's run exports its store's address

    overrides = [*TINY, "logger=[csv,mlflow]", f"paths.log_dir={tmp_path}"]
    train(make_config(*overrides))
    stored = (tmp_path / "run" / "mlflow_run_id").read_text().strip()
    train(make_config(*overrides, f"resume={tmp_path / 'run' / 'checkpoints' / 'last.ckpt'}"))
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns.db'}")
    runs = client.search_runs([client.get_experiment_by_name("infomatch").experiment_id])
    assert [run.info.run_id for run in runs] == [stored]  # one run, continued, not a second one


def test_a_resumed_run_continues_its_wandb_run(make_config, tmp_path, monkeypatch):
    import wandb

    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    overrides = [*TINY, "logger=[csv,wandb]"]
    ids = []
    for extra in ([], [f"resume={tmp_path / 'run' / 'checkpoints' / 'last.ckpt'}"]):
        train(make_config(*overrides, *extra))
        ids.append(wandb.run.id)
        wandb.finish()
    assert ids[0] == ids[1] == (tmp_path / "run" / "wandb_run_id").read_text().strip()
