"""Preemption and trusted loading: resume=auto, runs stopped by SIGUSR1/SIGTERM that continue to the same final
metrics, and checkpoints that would run code when loaded. Tiny models on synthetic data."""

from __future__ import annotations

import csv
import json
import os
import shlex
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import (
    EARLY_BEST,
    ROOT,
    TINY,
    Smuggled,
    assert_one_paragraph_error,
    compose_config,
    run_train,
    start_until_marker,
    subprocess_env,
    train_py,
)
from omegaconf import OmegaConf

from infomatch.evaluation.checkpoints import load_model
from infomatch.runs.validation import check_resume
from infomatch.tasks.train import train
from infomatch.utils.errors import ConfigError, RunInterrupted, UnsafeCheckpointError


def csv_rows(run: Path) -> list[dict[str, str]]:
    """metrics.csv without the wall-clock column, which no two runs share."""
    with open(run / "csv" / "metrics.csv", newline="") as file:
        return [{key: value for key, value in row.items() if key != "time/epoch_s"} for row in csv.DictReader(file)]


def tensorboard_scalars(run: Path) -> dict[str, list[tuple[int, float]]]:
    """(step, value) of each logged scalar as TensorBoard shows them, without the wall clock and the placeholder."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    return {tag: [(event.step, event.value) for event in events.Scalars(tag)] for tag in events.Tags()["scalars"]
            if tag not in ("time/epoch_s", "hp_metric")}


# ---- resume=auto --------------------------------------------------------------------------------

def test_resume_auto_starts_fresh_then_reports_a_finished_run_without_training(make_config, tmp_path):
    run = tmp_path / "run"
    assert check_resume(make_config(*TINY, "resume=auto"), run / "checkpoints") is None
    first = train(make_config(*TINY, "resume=auto"))
    assert (run / "checkpoints" / "last.ckpt").is_file() and first["epochs"] == 1
    assert check_resume(make_config(*TINY, "resume=auto"), run / "checkpoints") == run / "checkpoints" / "last.ckpt"
    written = (run / "metrics.json").stat().st_mtime_ns
    again = train(make_config(*TINY, "resume=auto"))
    assert again == json.loads(json.dumps(first))
    assert (run / "metrics.json").stat().st_mtime_ns == written
    with pytest.raises(ConfigError, match="seed: 0 in the checkpoint, 1 now"):  # not another run's results
        train(make_config(*TINY, "resume=auto", "seed=1"))


@pytest.mark.slow
def test_resumed_run_keeps_the_whole_csv_and_tensorboard_history(make_config, tmp_path):
    pytest.importorskip("tensorboard")
    overrides = [*TINY, "trainer.max_epochs=3", "logger=[csv,tensorboard]", "test=false"]
    stop = ["+callbacks.stop._target_=probes.SignalSelf", "+callbacks.stop.epoch=2",
            "+callbacks.stop.signal_name=SIGTERM"]
    with pytest.raises(RunInterrupted, match="training stopped by SIGTERM at epoch 2"):
        train(make_config(*overrides, *stop))  # epoch 2's first batch is logged, then lost with the stop
    assert any(row["epoch"] == "2" for row in csv_rows(tmp_path / "run"))
    train(make_config(*overrides, "resume=auto"))  # from the end of epoch 1
    uninterrupted = compose_config(overrides, tmp_path / "uninterrupted")
    train(uninterrupted)
    resumed_rows, uninterrupted_rows = csv_rows(tmp_path / "run"), csv_rows(tmp_path / "uninterrupted")
    assert {row["epoch"] for row in uninterrupted_rows} >= {"0", "1", "2"}
    assert resumed_rows == uninterrupted_rows
    assert tensorboard_scalars(tmp_path / "run") == tensorboard_scalars(tmp_path / "uninterrupted")


def test_run_name_gives_a_fixed_folder_and_rejects_names_that_break_overrides(tmp_path):
    result = run_train(*TINY, "run_name=fixed", "+trainer.limit_train_batches=1", "test=false", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "outputs" / "debug" / "runs" / "fixed" / "metrics.json").is_file()
    again = run_train(*TINY, "run_name=fixed", "+trainer.limit_train_batches=1", "test=false", cwd=tmp_path)
    assert_one_paragraph_error(again, "already holds an earlier run's results")
    bad = run_train(*TINY, "run_name='a,b'", cwd=tmp_path)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().startswith("error: run_name='a,b' must be a plain folder name")
    assert [path.name for path in (tmp_path / "outputs" / "debug" / "runs").iterdir()] == ["fixed"]


def folder_state(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns)
            for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.mark.slow
def test_second_run_on_a_busy_run_name_is_refused_and_changes_nothing(tmp_path):
    marker = tmp_path / "waiting"
    wait = ["+callbacks.wait._target_=probes.WaitForSignal", "+callbacks.wait.epoch=0",
            f"+callbacks.wait.marker={marker}"]
    log = tmp_path / "first_run.log"
    first = start_until_marker(train_py(*TINY, "run_name=shared", *wait), tmp_path, subprocess_env(), log, marker)
    run = tmp_path / "outputs" / "debug" / "runs" / "shared"
    try:
        before = folder_state(run)
        second = run_train(*TINY, "run_name=shared", "resume=auto", cwd=tmp_path)
        assert second.returncode == 1 and "Traceback" not in second.stderr, second.stderr[-3000:]
        assert second.stderr.strip().startswith(f"error: the run folder {run} is in use by another run "
                                                f"(pid {first.pid} on ")
        assert folder_state(run) == before  # no failed.json, log or .hydra files of the refused run
        assert first.poll() is None
    finally:
        first.kill()  # a crash: the OS releases the lock
        first.wait(timeout=60)
    take_lock = "import sys; from pathlib import Path; from infomatch.runs.folders import lock_run_dir; " \
                "lock_run_dir(Path(sys.argv[1]))"
    subprocess.run([sys.executable, "-c", take_lock, str(run)], env=subprocess_env(), check=True, timeout=120)


# ---- stopped by a signal ------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("signal_name", ["SIGUSR1", "SIGTERM", "SIGINT"])  # SIGINT: Ctrl-C
def test_signalled_run_stops_cleanly_and_resume_auto_reaches_the_same_final_metrics(tmp_path, make_config,
                                                                                   signal_name):
    # the best epoch is the first: last.ckpt must still hold the last finished one
    overrides = [*TINY, *EARLY_BEST, "labels=im", "augment=all", "trainer.max_epochs=3", "run_name=job",
                 "resume=auto"]
    # a stand-in for SLURM's scontrol: records the requeue request
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scontrol = bin_dir / "scontrol"
    scontrol.write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path / 'scontrol.log'}\n")
    scontrol.chmod(scontrol.stat().st_mode | stat.S_IEXEC)
    env = {**subprocess_env(), "SLURM_JOB_ID": "4242", "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    marker = tmp_path / "waiting"
    wait = ["+callbacks.wait._target_=probes.WaitForSignal", "+callbacks.wait.epoch=2",
            f"+callbacks.wait.marker={marker}"]
    log = tmp_path / "stopped_run.log"
    process = start_until_marker(train_py(*overrides, *wait), tmp_path, env, log, marker)
    try:
        process.send_signal(signal.Signals[signal_name])  # mid-epoch 3: one of its two batches done
        assert process.wait(timeout=120) == 1
    finally:
        process.kill()

    errors = [line for line in log.read_text().splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in log.read_text()
    run = tmp_path / "outputs" / "debug" / "runs" / "job"
    last = run / "checkpoints" / "last.ckpt"
    assert errors[0].startswith(f"error: training stopped by {signal_name} at epoch 2")
    assert f"{last} holds the run up to the end of epoch 1" in errors[0]
    command = [shlex.quote(item) for item in (*overrides, *wait) if not item.startswith("resume=")]
    assert f"To continue: python train.py {' '.join(command)} resume={last} " in errors[0]
    assert torch.load(last, map_location="cpu", weights_only=True)["epoch"] == 1
    assert (run / "checkpoints" / "best_epoch000.ckpt").is_file()
    record = json.loads((run / "failed.json").read_text())
    assert record == {"error": errors[0].removeprefix("error: "), "overrides": [*overrides, *wait],
                      "type": "StoppedByUser" if signal_name == "SIGINT" else "RunInterrupted"}
    assert not list(run.rglob("hpc_ckpt_*.ckpt")) and not (run / "metrics.json").exists()
    requeued = (tmp_path / "scontrol.log").read_text().split() if (tmp_path / "scontrol.log").exists() else []
    assert requeued == (["requeue", "4242"] if signal_name == "SIGUSR1" else [])

    resumed = subprocess.run(train_py(*overrides), cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=600)  # the requeued job: the same command
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"Restoring states from the checkpoint path at {last}" in resumed.stdout + resumed.stderr
    assert [path.name for path in (tmp_path / "outputs" / "debug" / "runs").iterdir()] == ["job"]
    assert not (run / "failed.json").exists()
    after_resume = json.loads((run / "metrics.json").read_text())
    uninterrupted = train(make_config(*overrides[:-2]))
    for key in ("val", "test", "best_val_top1", "epochs"):
        assert after_resume[key] == uninterrupted[key]


# ---- trusted loading ----------------------------------------------------------------------------

@pytest.fixture
def smuggling_checkpoint(make_config, tmp_path):
    """A training checkpoint (loops, config) that also holds an object whose unpickling writes a marker file."""
    marker = tmp_path / "marker"
    path = tmp_path / "smuggled.ckpt"
    config = OmegaConf.to_container(make_config(*TINY), resolve=True)
    torch.save({"loops": {}, "infomatch_config": config, "state_dict": {}, "extra": Smuggled(marker)}, path)
    torch.load(path, map_location="cpu", weights_only=False)  # what the file would do if loaded with code allowed
    assert marker.read_text() == "code ran"
    marker.unlink()
    return path, marker


def test_checkpoint_that_would_run_code_is_refused_by_resume_and_evaluate(smuggling_checkpoint, tmp_path):
    path, marker = smuggling_checkpoint
    expected = "this checkpoint holds objects that would run code when loaded (e.g. conftest.write_marker)"
    resumed = run_train(*TINY, f"resume={path}", cwd=tmp_path)
    assert_one_paragraph_error(resumed, str(path), expected, "Only load checkpoints you trust")
    evaluated = subprocess.run([sys.executable, str(ROOT / "evaluate.py"), "data=synthetic", "data.num_classes=10",
                                f"paths.log_dir={tmp_path}/outputs", f"ckpt={path}"],
                               cwd=tmp_path, capture_output=True, text=True, timeout=600, env=subprocess_env())
    assert_one_paragraph_error(evaluated, str(path), expected)
    with pytest.raises(UnsafeCheckpointError):
        load_model(path)
    assert not marker.exists()


def test_lightning_loads_through_the_plain_loader(smuggling_checkpoint):
    from infomatch.runs.checkpoint_io import AtomicCheckpointIO

    path, marker = smuggling_checkpoint
    with pytest.raises(UnsafeCheckpointError):
        AtomicCheckpointIO().load_checkpoint(path, weights_only=False)  # even when the caller allows code
    assert not marker.exists()


def test_written_checkpoints_are_plain(make_config, tmp_path):
    train(make_config(*TINY, "+trainer.limit_train_batches=1", "test=false"))
    for path in (tmp_path / "run" / "checkpoints").glob("*.ckpt"):
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        assert isinstance(checkpoint["infomatch_config"], dict) and "hyper_parameters" not in checkpoint


@pytest.mark.parametrize("labels", ["matched", "schedule labels.levels=3"])
def test_a_resumed_run_reuses_its_stored_label_estimates(make_config, tmp_path, monkeypatch, labels):
    from infomatch.labels import strategies

    name, *settings = labels.split()
    overrides = ["debug=fast", f"labels={name}", *settings, "estimation.images=32"]
    first = train(make_config(*overrides))
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"  # resumed at its end: estimation comes before fitting

    def estimate_again(*_):
        raise AssertionError("a resumed run estimated its labels again")

    monkeypatch.setattr(strategies, "epsilon_by_level", estimate_again)
    monkeypatch.setattr(strategies.MeasuredSmoothing, "fit", estimate_again)
    resumed = train(make_config(*overrides, f"resume={last}"))
    assert resumed["label_estimates"] == first["label_estimates"] and resumed["test"] == first["test"]
