"""Failed writes and bad settings end in one ``error:`` paragraph: a full disk, a read-only folder, a link planted
where a checkpoint is written, and each setting that used to crash only once training had started.

The full disk and the read-only folder are real where this machine lets an unprivileged user namespace mount a
tmpfs (``unshare -rm``: the mount is private to the one command and goes with it); they are simulated (an
OSError raised where the write happens) everywhere, so the logic is tested on every machine. Running as root,
a chmod-ed folder stays writable, so no test relies on permissions.
"""

from __future__ import annotations

import errno
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import CONFIGS, ROOT, compose_config
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

import infomatch.utils.files
from infomatch.runs.checkpoint_io import AtomicCheckpointIO
from infomatch.runs.failures import FAILED_FILE, FailedJobsReport, read_failure, run_recording_failures
from infomatch.runs.folders import register_resolvers
from infomatch.runs.validation import build_group, validate_train_config
from infomatch.tasks.train import USER_ERRORS, train
from infomatch.utils.errors import ConfigError, EvaluationError, OutputError, write_error
from infomatch.utils.files import atomic_write

# one training step and one checkpoint (about 2 MB at width 8) on a few synthetic images
TINY = ["debug=fast_dev_run", "data.train_size=128", "data.val_size=64", "data.test_size=64", "estimation.images=16"]


def leftovers(folder: Path) -> list[str]:
    """Temporary files of a write that did not finish (atomic_write's and the folder check's)."""
    return sorted(path.name for path in folder.rglob(".*")
                  if path.name.endswith(".partial") or ".write_check" in path.name)


def enospc(filename: str | None = None) -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), filename)


def raise_enospc(*args) -> None:
    raise enospc()


def one_error_paragraph(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr + result.stdout, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr[-3000:]
    return errors[0]


def private_tmpfs_works(folder: Path) -> bool:
    probe = subprocess.run(["unshare", "-rm", "sh", "-c",
                            f"mount -t tmpfs -o size=64k tmpfs {shlex.quote(str(folder))}"],
                           capture_output=True)
    return probe.returncode == 0


def run_on_tmpfs(folder: Path, options: str, script: str, *overrides: str) -> subprocess.CompletedProcess:
    """``python <script> <overrides>`` with a fresh tmpfs (mount ``options``) at ``folder``; returns also what
    the tmpfs held at the end (the mount goes with the command), one path a line after a ``FILES`` line."""
    command = " ".join(shlex.quote(part) for part in [sys.executable, str(ROOT / script), *overrides])
    listing = f"echo FILES; find {shlex.quote(str(folder))} -type f; cat {shlex.quote(str(folder))}/run/{FAILED_FILE}"
    shell = (f"mount -t tmpfs -o {options} tmpfs {shlex.quote(str(folder))} && "
             f"{{ {command}; status=$?; {listing}; exit $status; }}")
    return subprocess.run(["unshare", "-rm", "sh", "-c", shell], cwd=folder.parent, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONWARNINGS": "ignore"})


@pytest.fixture
def mount_point(tmp_path):
    folder = tmp_path / "mnt"
    folder.mkdir()
    if not private_tmpfs_works(folder):
        pytest.skip("this machine lets no user namespace mount a tmpfs; the simulated tests cover the logic")
    return folder


# ---- links planted where a checkpoint is written ----------------------------------------------------

@pytest.mark.parametrize("target_exists", [True, False])
def test_checkpoint_write_never_follows_a_planted_partial_link(tmp_path, target_exists):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    target = tmp_path / "elsewhere" / "precious.txt"
    target.parent.mkdir()
    if target_exists:
        target.write_text("keep me")
    (folder / ".last.ckpt.partial").symlink_to(target)

    AtomicCheckpointIO().save_checkpoint({"step": 7, "weights": torch.ones(10)}, folder / "last.ckpt")

    assert (target.read_text() == "keep me") if target_exists else not target.exists()
    last = folder / "last.ckpt"
    assert not last.is_symlink() and AtomicCheckpointIO().load_checkpoint(last)["step"] == 7
    assert sorted(path.name for path in folder.iterdir()) == ["last.ckpt"]


# ---- a full disk ------------------------------------------------------------------------------------

class FillsUp:
    """A file handle on a disk with ``room`` bytes left: the write after that raises ENOSPC, as the kernel does."""

    def __init__(self, handle, room: int) -> None:
        self.handle, self.room = handle, room

    def write(self, data) -> int:
        if len(data) > self.room:
            raise enospc()
        self.room -= len(data)
        return self.handle.write(data)

    def __getattr__(self, name):
        return getattr(self.handle, name)


def test_write_on_a_full_disk_keeps_the_old_file_removes_the_partial_and_names_the_file(tmp_path):
    path = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"step": 1}, path)
    # torch.save wraps the failed write in a RuntimeError ("unexpected pos ..."): the root cause is still found
    with pytest.raises(OutputError) as raised:
        atomic_write(path, lambda handle: torch.save({"weights": torch.ones(10_000)}, FillsUp(handle, 1000)))
    message = str(raised.value)
    assert message.startswith(f"cannot write {path}: No space left on device (ENOSPC). Free space on that disk")
    assert "paths.log_dir=<folder>" in message
    assert sorted(item.name for item in tmp_path.iterdir()) == ["last.ckpt"]
    assert AtomicCheckpointIO().load_checkpoint(path)["step"] == 1


def test_write_error_is_found_at_the_root_of_the_chain_and_only_for_failed_writes():
    def chained(*errors: BaseException) -> BaseException:
        for inner, outer in zip(errors, errors[1:]):
            outer.__context__ = inner
        return errors[-1]

    read_only = OSError(errno.EROFS, os.strerror(errno.EROFS), "/data/run/metrics.csv")
    later = enospc("/data/run/train.log")
    found = write_error(chained(read_only, RuntimeError("writer failed"), later))
    assert str(found).startswith("cannot write /data/run/metrics.csv: Read-only file system (EROFS). Remount")
    assert write_error(chained(FileNotFoundError(errno.ENOENT, "No such file", "/x"), RuntimeError("y"))) is None
    named = OutputError("cannot write last.ckpt")
    assert write_error(chained(later, named, RuntimeError("teardown"))) is named


def test_full_disk_during_training_ends_in_one_paragraph_with_failed_json_and_no_partial(make_config, tmp_path,
                                                                                        monkeypatch, capsys):
    real_save = torch.save
    monkeypatch.setattr(torch, "save", lambda obj, handle: real_save(obj, FillsUp(handle, 4096)))
    # debug=fast, not fast_dev_run: Lightning writes no checkpoint under fast_dev_run
    cfg = make_config("debug=fast", *TINY[1:], "test=false")
    with pytest.raises(SystemExit) as stopped:
        run_recording_failures(train, cfg, USER_ERRORS)
    assert stopped.value.code == 1
    checkpoint = tmp_path / "run" / "checkpoints" / "best_epoch000.ckpt"  # the first checkpoint an epoch writes
    expected = f"cannot write {checkpoint}: No space left on device (ENOSPC)"
    err = capsys.readouterr().err
    assert err.startswith(f"error: {expected}") and err.count("\n") == 1, err
    assert read_failure(tmp_path / "run")["error"].startswith(expected)
    assert leftovers(tmp_path / "run") == [] and not list((tmp_path / "run").rglob("*.ckpt"))


def test_failure_on_a_disk_where_even_failed_json_cannot_be_written_is_still_one_paragraph(tmp_path, monkeypatch,
                                                                                          capsys):
    metrics = tmp_path / "run" / "csv" / "metrics.csv"

    def task(_):
        raise enospc(str(metrics))

    monkeypatch.setattr("infomatch.runs.failures.UNRECORDED", {})
    monkeypatch.setattr(infomatch.utils.files.os, "fsync", raise_enospc)  # failed.json's write fails on the same disk
    with pytest.raises(SystemExit) as stopped:
        run_recording_failures(task, compose_config([], tmp_path / "run"), USER_ERRORS)
    assert stopped.value.code == 1
    assert capsys.readouterr().err.startswith(f"error: cannot write {metrics}: No space left on device (ENOSPC)")
    assert sorted(path.name for path in (tmp_path / "run").iterdir()) == []  # no failed.json, no partial of it


def test_sweep_reports_a_job_whose_failure_could_not_be_recorded(tmp_path, monkeypatch, capsys):
    sweep = tmp_path / "sweep"
    sweep_config = OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}})
    monkeypatch.setattr("infomatch.runs.failures.UNRECORDED", {})
    report = FailedJobsReport()
    report.on_multirun_start(sweep_config)
    job = compose_config(["hydra.mode=MULTIRUN"], sweep / "0_ls_all_seed0")
    monkeypatch.setattr(infomatch.utils.files.os, "fsync", raise_enospc)
    assert run_recording_failures(lambda _: raise_enospc(), job, USER_ERRORS) is None
    assert not (sweep / "0_ls_all_seed0" / FAILED_FILE).exists()
    with pytest.raises(SystemExit):
        report.on_multirun_end(sweep_config)
    err = capsys.readouterr().err
    assert "1 job(s)" in err and "  0_ls_all_seed0: cannot write a file of the run: No space left" in err


@pytest.mark.slow
def test_train_py_on_a_real_full_disk(mount_point):
    # debug=fast, not fast_dev_run: Lightning writes no checkpoint under fast_dev_run
    result = run_on_tmpfs(mount_point, "size=256k", "train.py", "debug=fast", *TINY[1:], "test=false",
                          f"hydra.run.dir={mount_point / 'run'}")
    error = one_error_paragraph(result)
    assert (error.startswith(f"error: cannot write {mount_point / 'run'}/")
            and ": No space left on device (ENOSPC)" in error)
    files = result.stdout.split("FILES\n", 1)[1]
    assert f"{mount_point / 'run' / FAILED_FILE}\n" in files and ".partial" not in files and ".write_check" not in files
    assert '"type": "OutputError"' in files  # failed.json's content, printed after the listing


# ---- a read-only folder -----------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["hydra.run.dir", "paths.log_dir"])
def test_read_only_output_folder_is_one_paragraph_before_anything_runs(tmp_path, monkeypatch, capsys, key):
    """Simulated: creating the folder raises EROFS, as on a read-only mount. ``paths.log_dir`` goes through the
    run folder resolver, which creates the folder while Hydra resolves its name."""
    register_resolvers()
    read_only = tmp_path / "ro"
    real_mkdir = Path.mkdir

    def read_only_mkdir(self, *args, **kwargs):
        if self.is_relative_to(read_only):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
        return real_mkdir(self, *args, **kwargs)

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        config = compose("train", overrides=[f"{key}={read_only / 'out'}"], return_hydra_config=True)
    monkeypatch.setattr(Path, "mkdir", read_only_mkdir)
    with pytest.raises(SystemExit) as stopped:
        FailedJobsReport().on_run_start(config)
    assert stopped.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot write {read_only / 'out'}") and "Read-only file system (EROFS)" in err
    assert err.count("\n") == 1


@pytest.mark.slow
@pytest.mark.parametrize("script, overrides", [("train.py", TINY), ("evaluate.py", ["ckpt=missing.ckpt"])])
@pytest.mark.parametrize("key", ["hydra.run.dir", "paths.log_dir"])
def test_scripts_on_a_real_read_only_mount(mount_point, script, overrides, key):
    result = run_on_tmpfs(mount_point, "size=64k,ro", script, *overrides, f"{key}={mount_point / 'out'}")
    error = one_error_paragraph(result)
    assert error.startswith(f"error: cannot write {mount_point / 'out'}: Read-only file system (EROFS)"), error


# ---- settings that used to crash once training had started ------------------------------------------

@pytest.mark.parametrize(("overrides", "message"), [
    (["optimizer.weight_decay=-5"], "optimizer.weight_decay=-5 must be a number >= 0"),
    (["optimizer=sgd", "optimizer.momentum=-1"], "optimizer.momentum=-1 must be a number in [0, 1)"),
    (["optimizer=sgd", "optimizer.momentum=1"], "optimizer.momentum=1 must be a number in [0, 1)"),
    (["base_augment.padding=-4"], "base_augment.padding=-4 must be an integer >= 0"),
    (["base_augment.crop_flip=maybe"], "base_augment.crop_flip=maybe must be true or false"),
    (["speed.compile=bogus"], "speed.compile=bogus must be one of: false, true, default, reduce-overhead"),
    (["data=synthetic", "data.image_size=0"], "data.image_size=0 must be an integer >= 1"),
    # torch's own checks of the optimizer, run up front on a stand-in parameter
    (["optimizer=sgd", "optimizer.momentum=0"], "Nesterov momentum requires a momentum and zero dampening"),
    (["+optimizer.betas=[1.5,0.9]"], "Invalid beta parameter at index 0: 1.5"),
])
def test_setting_that_crashed_after_training_started_is_a_config_error(make_config, overrides, message):
    with pytest.raises(ConfigError, match="invalid configuration") as raised:
        validate_train_config(make_config(*overrides))
    assert message in str(raised.value)


def test_a_wrong_optimizer_setting_is_reported_once(make_config):
    with pytest.raises(ConfigError) as raised:
        validate_train_config(make_config("optimizer.weight_decay=-5"))
    assert "Invalid weight_decay" not in str(raised.value)  # the rule's words, not torch's as well


def test_boundary_values_of_those_settings_are_accepted(make_config):
    validate_train_config(make_config("optimizer.weight_decay=0", "base_augment.padding=0",
                                      "base_augment.crop_flip=false", "speed.compile=max-autotune"))
    validate_train_config(make_config("optimizer=sgd", "optimizer.momentum=0", "optimizer.nesterov=false",
                                      "data=synthetic", "data.image_size=1"))


@pytest.mark.parametrize(("overrides", "error", "message"), [
    (["corruptions=regenerated", "corruptions.severities=[0,6]"], EvaluationError,
     "corruptions.severities=[0, 6] must be a non-empty list of severities among 1..5"),
    (["corruptions=regenerated", "corruptions.names=[fogg]"], EvaluationError, "corruptions.names=['fogg']: unknown"),
    (["corruptions=cifar100c", "corruptions.root=/nowhere"], EvaluationError,
     "corruptions.root=/nowhere: no such folder"),
    (["corruptions=regenerated", "+corruptions.level=3"], ConfigError, "corruptions cannot be built from"),
])
def test_corruption_settings_raise_their_own_error_not_hydras(tmp_path, overrides, error, message):
    cfg = compose_config(overrides, tmp_path / "eval", config_name="evaluate")
    with pytest.raises(error) as raised:
        build_group(cfg, "corruptions")
    assert message in str(raised.value) and "Error in call to target" not in str(raised.value)
