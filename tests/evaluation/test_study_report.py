"""A study's report page: its HTML, the numbers behind its figures against hand computations, the sections and
figure sizes, --all, and (slow) a real tiny sweep's report opened in headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import ROOT

from infomatch.evaluation.clean import CALIBRATION_METRICS, CLEAN_METRICS
from infomatch.evaluation.compare import CORRUPTION_SUMMARY
from infomatch.evaluation.degraded import ROBUSTNESS_SCORES
from infomatch.evaluation.study_figures import corruption_differences, pooled_reliability
from infomatch.evaluation.study_report import markdown_to_html, write_report
from infomatch.tasks import results

EDGES = [0.0, 0.25, 0.5, 0.75, 1.0]
SETTINGS = {"data": "synthetic", "subset": None, "num_images": 100, "ece_bins": 4, "seed": 0, "device": "cpu"}


def bins(count, accuracy, confidence):
    return {"edges": EDGES, "count": count, "accuracy": accuracy, "confidence": confidence}


def model(strategy: str, seed: int, top1: float) -> dict:
    clean = {metric.key: 0.5 for metric in CLEAN_METRICS} | {"top1": top1}
    return {"strategy": strategy, "seed": seed, "clean": clean, "temperature": 1.2,
            "checkpoint": f"outputs/runs/{strategy}_seed{seed}/checkpoints/best_epoch001.ckpt",
            "calibrated": {key: 0.25 for key in CALIBRATION_METRICS},
            "robustness": {"blur": [top1, top1 / 2], "mosaic": [top1, top1 / 3]},
            "robustness_calibration": {score: {"blur": [1.0, 1.0], "mosaic": [1.0, 1.0]}
                                       for score in ROBUSTNESS_SCORES[1:]},
            "reliability": bins([10, 0, 20, 10], [0.1, 0.0, 0.5, 0.9], [0.2, 0.0, 0.6, 0.8]),
            "reliability_calibrated": bins([5, 5, 20, 10], [0.1, 0.3, 0.5, 0.9], [0.2, 0.4, 0.6, 0.8])}


def corruption_part(tops: dict[str, list[float]]) -> dict:
    return {"source": "regenerated", "label": "regenerated", "names": ["fog", "snow"], "severities": [1, 2],
            "num_images": 10,
            "models": {name: {"sets": {"fog": {"top1": values}, "snow": {"top1": [value / 2 for value in values]}},
                              "summary": {key: 0.3 for key in CORRUPTION_SUMMARY}} for name, values in tops.items()}}


def write_study(folder: Path) -> Path:
    """hard and im at seeds 0 and 1 (im also at seed 2, which hard lacks), with runs, history and corruptions."""
    tops = {"hard_seed0": 0.30, "hard_seed1": 0.32, "im_seed0": 0.36, "im_seed1": 0.35, "im_seed2": 0.40}
    models = {name: model(name.split("_")[0], int(name[-1]), top1) for name, top1 in tops.items()}
    evaluation = folder / "evaluations" / "2026-12-01"
    evaluation.mkdir(parents=True)
    (evaluation / "metrics.json").write_text(json.dumps({
        "evaluation": SETTINGS, "models": models, "robustness": {"levels": [0.0, 1.0], "metric": "top1"},
        "corruptions": corruption_part({"hard_seed0": [0.30, 0.20], "hard_seed1": [0.28, 0.22],
                                        "im_seed0": [0.34, 0.30], "im_seed1": [0.36, 0.25], "im_seed2": [0.5, 0.5]})}))
    for name, item in models.items():
        run = folder / "runs" / f"{name}"
        run.mkdir(parents=True)
        lr = 0.002 if item["strategy"] == "im" else 0.001
        (run / "config.yaml").write_text(yaml.safe_dump({"seed": item["seed"], "optimizer": {"lr": lr},
                                                         "labels": {"_target_": item["strategy"]}}))
        (run / "metrics.json").write_text(json.dumps({"fit_seconds": 600, "machine": {
            "cpu": "Test CPU", "precision": "32-true", "torch_threads": 2}}))
        (run / "history.csv").write_text("epoch,val/top1\n0,0.1\n1,0.2\n")
    return folder


def test_markdown_becomes_one_static_page_with_tables_images_and_links():
    page = markdown_to_html("# Study <b>\n\nA `cmd` and **bold** with [docs](../x.md#a) <sub>small</sub>.\n\n"
                            "| a | b |\n|---|---:|\n| 1 & 2 | 3 |\n\n![the caption](figures/f.png)", "t")
    assert "<h1>Study &lt;b&gt;</h1>" in page
    assert "<p>A <code>cmd</code> and <strong>bold</strong> with <a href=\"../x.md#a\">docs</a> <sub>small</sub>.</p>" \
        in page
    assert "<table><thead><tr><th>a</th><th>b</th></tr></thead><tbody><tr><td>1 &amp; 2</td><td>3</td></tr>" in page
    assert '<figure><img alt="the caption" src="figures/f.png"></figure>' in page
    assert "<script" not in page and "http" not in page


def test_reliability_pools_counts_and_weights_accuracy_by_them():
    first = {"reliability": bins([10, 0, 20, 10], [0.1, 0.0, 0.5, 0.9], [0.2, 0.0, 0.6, 0.8])}
    second = {"reliability": bins([30, 10, 0, 10], [0.3, 0.2, 0.0, 0.7], [0.2, 0.3, 0.0, 0.8])}
    pooled = pooled_reliability([first, second])
    assert pooled["count"].tolist() == [40, 10, 20, 20]
    # bin 0: (10 * 0.1 + 30 * 0.3) / 40; an empty bin in one model takes the other's numbers
    np.testing.assert_allclose(pooled["accuracy"], [0.25, 0.2, 0.5, 0.8])
    assert pooled_reliability([first, {"strategy": "old evaluation"}]) is None


def test_corruption_differences_average_over_the_seeds_both_strategies_have(tmp_path):
    study = write_study(tmp_path / "study")
    sets, values, pairs = corruption_differences(results.load_study(study), "hard")["im"]
    assert sets == ["fog", "snow"] and pairs == 2  # im seed 2 has no hard partner
    # fog, severity 1: ((0.34 - 0.30) + (0.36 - 0.28)) / 2 = 0.06; severity 2: ((0.30 - 0.20) + (0.25 - 0.22)) / 2
    np.testing.assert_allclose(values, [[6.0, 6.5], [3.0, 3.25]])


def test_report_shows_what_ran_the_tables_and_small_figures(tmp_path):
    study = write_study(tmp_path / "study")
    markdown, page = write_report(study, tmp_path / "report", ["hard"], "infomatch-results report study")
    text = markdown.read_text()
    for heading in ("## What was run", "## Results", "## Paired differences to hard", "## Training", "## Calibration",
                    "## Robustness"):
        assert heading in text
    # the learning rate sets the strategies apart; seeds, labels and paths do not count as differences
    assert "| hard | 0, 1 | optimizer.lr=0.001 | Test CPU, 32-true | 10.0 |" in text
    assert "| im | 0, 1, 2 | optimizer.lr=0.002 | Test CPU, 32-true | 10.0 |" in text
    figures = sorted(path.name for path in (tmp_path / "report" / "figures").iterdir())
    assert figures == ["corruptions.png", "degradation_grid.png", "paired_differences_hard.png", "reliability.png",
                       "validation_top1.png"]
    assert all(0 < (tmp_path / "report" / "figures" / name).stat().st_size <= 150_000 for name in figures)
    assert all(f"](figures/{name})" in text for name in figures)
    assert page.read_text().count("<img ") == len(figures)


def test_report_all_writes_every_study_page_and_rebuilds_the_tables(tmp_path):
    write_study(tmp_path / "results" / "demo")
    page = tmp_path / "page.md"
    page.write_text("<!-- report:demo vs=hard,im -->\n<!-- results:demo vs=hard -->\n<!-- /results:demo -->\n")
    done = subprocess.run([sys.executable, "-m", "infomatch.tasks.results", "report", "--all", "--results",
                           str(tmp_path / "results"), "--pages", str(page)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    report = tmp_path / "results" / "demo" / "report"
    assert (report / "report.html").is_file()
    # the report mark's baselines, not the table block's
    assert {path.name for path in (report / "figures").glob("paired_*")} == {"paired_differences_hard.png",
                                                                             "paired_differences_im.png"}
    assert "| im | 3 | 37.00 ±" in page.read_text()  # (0.36 + 0.35 + 0.40) / 3


def test_report_without_an_evaluation_says_to_evaluate_first(tmp_path):
    done = subprocess.run([sys.executable, "-m", "infomatch.tasks.results", "report", str(tmp_path)],
                          capture_output=True, text=True)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "a report needs one; evaluate first" in done.stderr


# ---- a real sweep's report, as a person would open it ----------------------------------------------------

TINY_SWEEP = ["debug=fast", "model.width=4", "data.train_size=128", "data.val_size=64", "data.test_size=64",
              "trainer.max_epochs=2"]
EVALUATE = ["data=synthetic", "data.num_classes=10", "data.train_size=128", "data.val_size=64", "data.test_size=64",
            "subset=32", "robustness.levels=3", "confidence.levels=2", "plots=false"]


def browser() -> str | None:
    """Chromium where the machine has it and Playwright can drive it; None says why the browser test skips."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return None
    return path


@pytest.mark.slow
@pytest.mark.skipif(browser() is None, reason="no Chromium (Debian package chromium) or no playwright: the page is "
                                              "checked in a browser only where both are installed")
def test_a_sweep_s_report_opens_in_a_browser_with_every_figure_and_its_numbers(tmp_path):
    from playwright.sync_api import sync_playwright

    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    swept = subprocess.run([sys.executable, str(ROOT / "train.py"), "-m", "labels=hard,im", "seed=0,1", *TINY_SWEEP],
                           cwd=tmp_path, capture_output=True, text=True, timeout=900, env=env)
    assert swept.returncode == 0, swept.stderr[-3000:]
    sweep = next((tmp_path / "outputs").glob("**/multirun/*"))  # debug runs have their own folder
    evaluated = subprocess.run([sys.executable, str(ROOT / "evaluate.py"), f"ckpt={sweep.relative_to(tmp_path)}",
                                *EVALUATE], cwd=tmp_path, capture_output=True, text=True, timeout=900, env=env)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    output = evaluated.stdout + evaluated.stderr  # the command evaluate.py ends with names the evaluation folder
    command = output[output.index("infomatch-results report "):].split("\n")[0].split()
    evaluation = tmp_path / command[-1]
    reported = subprocess.run([sys.executable, "-m", "infomatch.tasks.results", "report", command[-1]], cwd=tmp_path,
                              capture_output=True, text=True, timeout=600, env=env)
    assert reported.returncode == 0, reported.stderr[-3000:]
    page = evaluation / "report" / "report.html"

    with sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=browser(), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        view = chromium.new_page()
        errors = []
        view.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        view.on("pageerror", lambda error: errors.append(str(error)))
        view.goto(page.as_uri())
        widths = view.eval_on_selector_all("img", "images => images.map(image => [image.getAttribute('src'), "
                                                  "image.naturalWidth])")
        first_table = view.eval_on_selector_all(
            "h2:has-text('Results') ~ table:nth-of-type(2) tbody tr",
            "rows => rows.map(row => [...row.cells].map(cell => cell.textContent))")
        chromium.close()
    # the figures this evaluation allows (no corruptions, no OOD sets), every one loaded
    assert sorted(source for source, _ in widths) == [
        "figures/degradation_grid.png", "figures/paired_differences_hard.png", "figures/reliability.png",
        "figures/validation_top1.png"]
    assert all(width > 0 for _, width in widths), widths
    assert errors == []
    metrics = json.loads((evaluation / "metrics.json").read_text())["models"]
    expected = {strategy: np.mean([m["clean"]["top1"] for m in metrics.values() if m["strategy"] == strategy]) * 100
                for strategy in ("hard", "im")}
    shown = {row[0]: float(row[2].split(" ")[0]) for row in first_table}
    assert shown == pytest.approx(expected, abs=0.006)
