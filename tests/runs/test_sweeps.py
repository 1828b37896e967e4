"""Sweeps through the basic, joblib and submitit launchers, and failed jobs: failed.json, the sweep goes on, exit 1."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CONFIGS, ROOT, compose_config
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import get_class
from omegaconf import OmegaConf

from infomatch.evaluation.checkpoints import resolve_checkpoints
from infomatch.runs.failures import FailedJobsReport, describe, read_failure, run_recording_failures
from infomatch.utils.errors import CheckpointError, ConfigError

# tiny jobs: width-4 network, one epoch of two steps on 128 synthetic images
TINY = ["debug=fast", "model.width=4", "data.train_size=128", "data.val_size=64", "data.test_size=64", "test=false"]
# evaluation of those runs: the same synthetic data, fewest levels, no figures
EVALUATE = ["data=synthetic", "data.num_classes=10", "data.train_size=128", "data.val_size=64", "data.test_size=64",
            "subset=32", "robustness.levels=2", "confidence.levels=2", "plots=false"]
LAUNCHERS = {"slurm": "SlurmLauncher", "local": "LocalLauncher", "joblib": "JoblibLauncher"}


def run_script(script: str, *overrides: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / script), *overrides], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})})


def raise_here(message: str) -> None:
    raise RuntimeError(message)


# ---- the launcher configs ---------------------------------------------------------------------------

# train.py silences this warning: configs/hydra/launcher/joblib.yaml is complete without the schema it is matched to
@pytest.mark.filterwarnings("ignore:\\s*'hydra/launcher/joblib' is validated against ConfigStore schema")
@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_launcher_configs_compose_onto_the_plugins(launcher):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("train", overrides=[f"hydra/launcher={launcher}", "trainer.devices=2"], return_hydra_config=True)
    settings = cfg.hydra.launcher
    assert get_class(settings._target_).__name__ == LAUNCHERS[launcher]
    if launcher == "joblib":
        assert settings.n_jobs == 2 and settings.batch_size == "1"
        return
    # the fields of the plugin's own schema, with ours on top
    assert settings.gpus_per_node == 2 and settings.nodes == 1 and settings.timeout_min == 240
    assert OmegaConf.to_container(settings)["submitit_folder"] == "${hydra.sweep.dir}/.submitit/%j"
    if launcher == "slurm":
        assert settings.tasks_per_node == 2  # one process per device
        assert settings.partition is None and settings.account is None and settings.qos is None
        assert settings.array_parallelism == 9 and settings.cpus_per_task == 8 and settings.mem_gb == 32
        assert settings.max_num_timeout == 0 and "signal_delay_s" in settings  # from the plugin's schema


def test_slurm_sweep_is_one_job_array_with_the_configured_resources(tmp_path):
    # no cluster here: a stand-in sbatch keeps the script submitit hands it, then refuses the submission
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")  # submitit only checks that srun exists
    (bin_dir / "sbatch").write_text(f'#!/bin/sh\ncp "$1" {tmp_path}/script.sh\n'
                                    'echo "sbatch: not a cluster" >&2\nexit 1\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    command = [sys.executable, str(ROOT / "train.py"), "-m", "hydra/launcher=slurm", "hydra.launcher.partition=gpu",
               "hydra.launcher.account=proj", "trainer.devices=2", "labels=hard,ls,im", "seed=0,1,2",
               f"paths.log_dir={tmp_path}/outputs"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode != 0 and "sbatch: not a cluster" in result.stderr, result.stderr[-3000:]
    script = (tmp_path / "script.sh").read_text()
    sweep = next((tmp_path / "outputs" / "multirun").iterdir())
    for line in ("--array=0-8%9", "--partition=gpu", "--account=proj", "--gpus-per-node=2", "--ntasks-per-node=2",
                 "--cpus-per-task=8", "--mem=32GB", "--time=240", f"--output={sweep}/.submitit/%A_%a/"):
        assert f"#SBATCH {line}" in script, script
    assert "--qos" not in script  # left empty: not passed to sbatch


# ---- failure records ------------------------------------------------------------------------------

def test_failure_record_of_a_user_error_is_its_message_and_of_a_bug_its_traceback_end():
    user = describe(ConfigError("labels.epsilon=1.5 must be a number in [0, 1)"), (ConfigError,))
    assert user == {"error": "labels.epsilon=1.5 must be a number in [0, 1)", "type": "ConfigError"}
    try:
        raise_here("shapes do not match")
    except RuntimeError as error:
        bug = describe(error, (ConfigError,))
    assert bug["error"] == "RuntimeError: shapes do not match" and bug["type"] == "RuntimeError"
    assert bug["traceback"][-1] == "RuntimeError: shapes do not match"
    assert any("in raise_here" in line for line in bug["traceback"])


def test_single_run_user_error_exits_1_with_the_message_and_leaves_failed_json(tmp_path, capsys):
    cfg = OmegaConf.create({"paths": {"output_dir": str(tmp_path / "run")}})

    def bad(_):
        raise ConfigError("seed=-1 must be an integer in [0, 4294967295]")

    with pytest.raises(SystemExit) as stopped:
        run_recording_failures(bad, cfg, (ConfigError,))
    assert stopped.value.code == 1
    assert capsys.readouterr().err == "error: seed=-1 must be an integer in [0, 4294967295]\n"
    assert read_failure(tmp_path / "run")["error"] == "seed=-1 must be an integer in [0, 4294967295]"

    # an unexpected error keeps its traceback in a single run, and is recorded too
    with pytest.raises(RuntimeError):
        run_recording_failures(lambda _: raise_here("boom"), cfg, (ConfigError,))
    assert read_failure(tmp_path / "run")["error"] == "RuntimeError: boom"

    # a later attempt that succeeds in the same folder (a resumed run) removes the record
    assert run_recording_failures(lambda _: {"best_val_top1": 0.5}, cfg, (ConfigError,)) == {"best_val_top1": 0.5}
    assert not (tmp_path / "run" / "failed.json").exists()


def test_sweep_job_records_the_failure_and_returns(tmp_path, caplog):
    cfg = compose_config(["hydra.mode=MULTIRUN", "seed=3"], tmp_path / "job")
    with caplog.at_level(logging.ERROR):
        assert run_recording_failures(lambda _: raise_here("boom"), cfg, (ConfigError,)) is None
    record = json.loads((tmp_path / "job" / "failed.json").read_text())
    assert record["error"] == "RuntimeError: boom" and "seed=3" in record["overrides"]
    assert "this job failed, the sweep goes on" in caplog.text and "in raise_here" in caplog.text


def test_report_names_this_sweeps_failed_jobs_and_exits_1(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    (sweep / "0_old").mkdir(parents=True)
    (sweep / "0_old" / "failed.json").write_text(json.dumps({"error": "from an earlier sweep", "type": "X"}))
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}})
    report = FailedJobsReport()
    report.on_multirun_start(config)
    report.on_multirun_end(config)  # nothing failed during this sweep
    assert capsys.readouterr().err == ""

    for name in ("1_hard_all_seed0", "2_im_all_seed1", "3_im_all_seed2"):
        (sweep / name).mkdir()
    (sweep / "1_hard_all_seed0" / "metrics.json").write_text("{}")
    (sweep / "2_im_all_seed1" / "failed.json").write_text(json.dumps({"error": "out of memory", "type": "X"}))
    # refused to write over an earlier sweep's finished run: a failure of this sweep all the same
    (sweep / "3_im_all_seed2" / "metrics.json").write_text("{}")
    (sweep / "3_im_all_seed2" / "failed.json").write_text(json.dumps({"error": "holds results", "type": "X"}))
    with pytest.raises(SystemExit) as stopped:
        report.on_multirun_end(config)
    assert stopped.value.code == 1
    err = capsys.readouterr().err
    assert "2 job(s)" in err and "  2_im_all_seed1: out of memory\n  3_im_all_seed2: holds results" in err
    assert "earlier sweep" not in err and "1_hard" not in err


def test_evaluation_skips_failed_runs_of_a_sweep_with_a_note(tmp_path, caplog):
    sweep = tmp_path / "sweep"
    layout = {"0_hard_all_seed0": ["checkpoints/best_epoch000.ckpt", "metrics.json"],
              "1_hard_all_seed-1": ["failed.json"],  # failed before training
              "2_im_all_seed0": ["checkpoints/best_epoch000.ckpt", "failed.json"],  # failed after a checkpoint
              "3_im_all_seed1": ["checkpoints/best_epoch000.ckpt", "metrics.json", "failed.json"],  # finished earlier
              ".submitit": ["1234/log.out"]}
    for run, files in layout.items():
        for name in files:
            (sweep / run / name).parent.mkdir(parents=True, exist_ok=True)
            (sweep / run / name).write_text(json.dumps({"error": "why", "type": "ConfigError"}))
    with caplog.at_level(logging.WARNING):
        found = resolve_checkpoints([str(sweep)])
    assert found == [sweep / run / "checkpoints" / "best_epoch000.ckpt"
                     for run in ("0_hard_all_seed0", "3_im_all_seed1")]
    notes = [record.getMessage() for record in caplog.records]
    assert len(notes) == 2 and all(note.count("\n") == 0 for note in notes)
    assert notes[0].startswith("skipping 1_hard_all_seed-1: the run failed (ConfigError)")
    assert notes[1].startswith("skipping 2_im_all_seed0: the run failed (ConfigError)")
    # named on its own, a failed run is an error that points at its record
    with pytest.raises(CheckpointError, match="this run failed .*failed.json"):
        resolve_checkpoints([str(sweep / "2_im_all_seed0")])


# ---- sweeps end to end ---------------------------------------------------------------------------

def test_single_run_error_exits_1_in_one_paragraph_and_writes_failed_json(tmp_path):
    result = run_script("train.py", "seed=-1", *TINY, f"hydra.run.dir={tmp_path}/run", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr + result.stdout
    assert result.stderr.strip().startswith("error: invalid configuration: seed=-1 must be an integer")
    assert "seed=-1" in json.loads((tmp_path / "run" / "failed.json").read_text())["error"]


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["basic", "joblib", "local"])
def test_sweep_goes_on_past_a_failed_job_and_evaluation_skips_it(tmp_path, launcher):
    chosen = [] if launcher == "basic" else [f"hydra/launcher={launcher}"]
    # seed=-1 composes but fails train()'s checks; it runs between the other two jobs
    result = run_script("train.py", "-m", *chosen, "labels=hard", "seed=0,-1,1", *TINY,
                        f"paths.log_dir={tmp_path}/outputs", cwd=tmp_path)
    assert result.returncode == 1, result.stderr[-3000:]
    # the sweep folder is claimed once, by the launching process: every job, in whatever process, lands in it
    sweeps = list((tmp_path / "outputs" / "multirun").iterdir())
    assert len(sweeps) == 1, sweeps
    sweep = sweeps[0]
    runs = {path.name for path in sweep.iterdir() if path.is_dir() and not path.name.startswith(".")}
    assert runs == {"0_hard_all_seed0", "1_hard_all_seed-1", "2_hard_all_seed1"}
    for run in ("0_hard_all_seed0", "2_hard_all_seed1"):
        assert json.loads((sweep / run / "metrics.json").read_text())["epochs"] == 1
        assert not (sweep / run / "failed.json").exists()
    failed = json.loads((sweep / "1_hard_all_seed-1" / "failed.json").read_text())
    assert failed["type"] == "ConfigError" and "seed=-1 must be an integer" in failed["error"]
    assert not (sweep / "1_hard_all_seed-1" / "metrics.json").exists()
    summary = result.stderr[result.stderr.index("error: 1 job(s)"):]
    assert f"  1_hard_all_seed-1: {failed['error']}" in summary, result.stderr[-3000:]

    evaluated = run_script("evaluate.py", f"ckpt={sweep}", *EVALUATE, f"paths.log_dir={tmp_path}/outputs",
                           cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    notes = [line for line in (evaluated.stdout + evaluated.stderr).splitlines() if "skipping" in line]
    assert len(notes) == 1 and "1_hard_all_seed-1: the run failed (ConfigError)" in notes[0]
    outputs = list((tmp_path / "outputs" / "eval").glob("*/metrics.json"))
    assert len(outputs) == 1
    assert sorted(json.loads(outputs[0].read_text())["models"]) == ["hard_seed0", "hard_seed1"]


@pytest.mark.parametrize(("script", "overrides"), [
    ("train.py", ["seed=-1", *TINY]),
    # the data check runs before the loggers write their folders; the failed download removes the data/ it made
    ("train.py", ["model.width=4", "data.root=data/cifar100", "data.download=true"]),
    ("evaluate.py", ["data=synthetic"]),
], ids=["bad-seed", "no-data", "no-ckpt"])
def test_a_failed_check_leaves_no_folder_behind(tmp_path, script, overrides):
    """seed=-1, a data set that is not there and cannot be downloaded (train) or no ckpt (evaluate) fail before
    anything is written: the folder infomatch had claimed goes again, with the empty outputs/runs it made; one
    named on the command line (hydra.run.dir=) keeps its failed.json (the test above)."""
    env = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"}  # no download, even online
    result = run_script(script, *overrides, cwd=tmp_path, env=env)
    assert result.returncode == 1 and result.stderr.startswith("error: "), result.stderr[-2000:]
    assert sorted(tmp_path.rglob("*")) == [], sorted(tmp_path.rglob("*"))
