"""Result files that name no machine's folders, run folders named by what ran, and the committed studies kept so."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

from infomatch.runs.portable import TEXT_SUFFIXES, clean_study, portable_text, shown_path
from infomatch.tasks import results
from infomatch.utils.errors import OutputError


@pytest.mark.parametrize(("text", "expected"), [
    ("  root: /home/someone/data/cifar100\n", "  root: cifar100\n"),
    ('"checkpoint": "/work/study/outputs/runs/cpu_im_seed0/checkpoints/best.ckpt"',
     '"checkpoint": "outputs/runs/cpu_im_seed0/checkpoints/best.ckpt"'),
    ('["data.root=/data/sets/cifar100", "seed=0"]', '["data.root=cifar100", "seed=0"]'),
    ("| `/scratch/u/outputs/eval/x/metrics.json` |", "| `outputs/eval/x/metrics.json` |"),
    ("/srv/outputs/runs/a\n", "outputs/runs/a\n"),
])
def test_absolute_paths_are_cut_to_what_they_name(text, expected):
    assert portable_text(text) == expected


@pytest.mark.parametrize("text", ["val/top1 and test/nll", "https://github.com/owner/name/blob/main/x.py",
                                  "outputs/runs/im_seed0/checkpoints/best.ckpt", "a / b", "ratio 1/2"])
def test_relative_paths_metric_names_and_addresses_stay(text):
    assert portable_text(text) == text


def write_run(study: Path, name: str, strategy: str) -> None:
    folder = study / "runs" / name
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump({"run_name": name, "labels": {"_target_": strategy},
                                                        "data": {"root": "/home/someone/cifar100"}}))
    (folder / "metrics.json").write_text(json.dumps({"best_checkpoint": "checkpoints/best_epoch007.ckpt"}))


def test_clean_study_renames_session_runs_and_every_reference_to_them(tmp_path):
    study = tmp_path / "study"
    write_run(study, "cpu_im_seed1_session1", "im")
    write_run(study, "cpu_im_seed1_session11x", "im")  # not a session suffix: kept
    write_run(study, "cpu_hard_seed1_session11", "hard")
    evaluation = study / "evaluations" / "2026-12-03"
    evaluation.mkdir(parents=True)
    checkpoint = "/work/study/outputs/runs/{}/checkpoints/best_epoch007.ckpt"
    (evaluation / "metrics.json").write_text(json.dumps({"models": {
        "im_seed1": {"checkpoint": checkpoint.format("cpu_im_seed1_session1")},
        "hard_seed1": {"checkpoint": checkpoint.format("cpu_hard_seed1_session11")}}}))
    (evaluation / "summary.md").write_text(f"| im_seed1 | `{checkpoint.format('cpu_im_seed1_session1')}` |\n")

    rewritten, renames = clean_study(study)
    assert renames == {"cpu_hard_seed1_session11": "cpu_hard_seed1", "cpu_im_seed1_session1": "cpu_im_seed1"}
    assert sorted(path.name for path in (study / "runs").iterdir()) == [
        "cpu_hard_seed1", "cpu_im_seed1", "cpu_im_seed1_session11x"]
    models = json.loads((evaluation / "metrics.json").read_text())["models"]
    assert models["im_seed1"]["checkpoint"] == "outputs/runs/cpu_im_seed1/checkpoints/best_epoch007.ckpt"
    assert models["hard_seed1"]["checkpoint"] == "outputs/runs/cpu_hard_seed1/checkpoints/best_epoch007.ckpt"
    assert (evaluation / "summary.md").read_text() == \
        "| im_seed1 | `outputs/runs/cpu_im_seed1/checkpoints/best_epoch007.ckpt` |\n"
    config = yaml.safe_load((study / "runs" / "cpu_im_seed1" / "config.yaml").read_text())
    assert config["run_name"] == "cpu_im_seed1" and config["data"]["root"] == "cifar100"
    assert len(rewritten) == 5  # the 3 configs (their data root) and the 2 evaluation files
    assert clean_study(study) == ([], {})  # once is enough


def test_clean_study_refuses_renames_that_would_merge_two_runs(tmp_path):
    study = tmp_path / "study"
    write_run(study, "im_seed0_session3", "im")
    write_run(study, "im_seed0_session4", "im")
    with pytest.raises(OutputError, match="would merge run folders into im_seed0"):
        clean_study(study)
    assert sorted(path.name for path in (study / "runs").iterdir()) == ["im_seed0_session3", "im_seed0_session4"]


def test_collect_cuts_absolute_paths_in_the_evaluation_files_too(tmp_path):
    run = tmp_path / "sweep" / "im_seed0"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text("seed: 0\n")
    (run / "metrics.json").write_text("{}")
    evaluation = tmp_path / "eval"
    evaluation.mkdir()
    (evaluation / "metrics.json").write_text(json.dumps({"models": {"im_seed0": {
        "checkpoint": f"{run}/checkpoints/best.ckpt".replace("/sweep/", "/outputs/runs/")}}}))
    results.collect(tmp_path / "sweep", evaluation, tmp_path / "study")
    kept = json.loads((tmp_path / "study" / "evaluations" / "eval" / "metrics.json").read_text())
    assert kept["models"]["im_seed0"]["checkpoint"] == "outputs/runs/im_seed0/checkpoints/best.ckpt"


def test_the_clean_command_reports_what_it_did(tmp_path):
    study = tmp_path / "study"
    write_run(study, "im_seed0_session3", "im")
    page = tmp_path / "page.md"
    page.write_text("see runs/im_seed0_session3 and data.root=/path/to/cifar100\n")
    done = subprocess.run([sys.executable, "-m", "infomatch.tasks.results", "clean", str(study), "--pages", str(page)],
                          capture_output=True, text=True, check=True)
    assert "rewrote 1 files, renamed 1 run folders, updated" in done.stdout
    assert page.read_text() == "see runs/im_seed0 and data.root=/path/to/cifar100\n"  # a page keeps its examples


def test_committed_results_name_no_machine_folder_and_no_session():
    files = [path for path in sorted((ROOT / "docs" / "results").rglob("*")) if path.suffix in TEXT_SUFFIXES]
    assert len(files) > 100
    offenders = [path.relative_to(ROOT).as_posix() for path in files if portable_text(path.read_text()) !=
                 path.read_text() or "_session" in path.read_text() or "_session" in path.as_posix()]
    assert offenders == []


def test_paths_inside_the_working_directory_are_shown_relative_to_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert shown_path(tmp_path / "outputs" / "runs" / "a" / "best.ckpt") == "outputs/runs/a/best.ckpt"
    assert shown_path(Path("outputs/runs/a/best.ckpt")) == "outputs/runs/a/best.ckpt"
    assert shown_path(Path("/elsewhere/a/best.ckpt")) == "/elsewhere/a/best.ckpt"  # outside: as given
