"""docs/results studies: collecting the small files, merging evaluations, and the README tables built from them."""

import csv
import json
import math
import re
import shutil
import statistics
from pathlib import Path

import pytest

from infomatch.evaluation.clean import CALIBRATION_METRICS, CLEAN_METRICS
from infomatch.evaluation.degraded import ROBUSTNESS_SCORES
from infomatch.tasks import results
from infomatch.utils.errors import UserError

ROOT = Path(__file__).resolve().parents[2]

T_975 = {1: 12.706204736174704, 2: 4.302652729915332}  # Student t 97.5% quantiles (tables: 12.706, 4.303)
SETTINGS = {"data": "synthetic", "subset": None, "num_images": 100, "ece_bins": 15, "seed": 0, "device": "cpu"}


def model(strategy: str, seed: int, top1: float, ece: float) -> dict:
    """An evaluated model whose every number is known: top1 and ece as given, the rest fixed."""
    clean = {metric.key: 0.5 for metric in CLEAN_METRICS} | {"top1": top1, "ece": ece}
    return {"strategy": strategy, "seed": seed, "checkpoint": f"/somewhere/{strategy}{seed}.ckpt", "clean": clean,
            "calibrated": {key: 0.25 for key in CALIBRATION_METRICS}, "temperature": 1.5,
            "robustness": {"blur": [top1, top1 / 2]},
            "robustness_calibration": {score: {"blur": [1.0, 1.0]} for score in ROBUSTNESS_SCORES[1:]}}


def write_evaluation(study: Path, name: str, models: dict, settings: dict = SETTINGS) -> None:
    folder = study / "evaluations" / name
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({"evaluation": settings, "models": models}))


@pytest.fixture
def study(tmp_path) -> Path:
    """hard and im over seeds 0-2, evaluated on two days; day 2 re-evaluates hard seed 0 with another number."""
    folder = tmp_path / "docs" / "results" / "demo"
    write_evaluation(folder, "2026-11-01", {"hard_seed0": model("hard", 0, 0.10, 0.05),
                                            "hard_seed1": model("hard", 1, 0.20, 0.04),
                                            "im_seed0": model("im", 0, 0.30, 0.10),
                                            "im_seed1": model("im", 1, 0.32, 0.12)})
    write_evaluation(folder, "2026-11-02", {"hard_seed0": model("hard", 0, 0.12, 0.05),
                                            "hard_seed2": model("hard", 2, 0.15, 0.06),
                                            "im_seed2": model("im", 2, 0.40, 0.02)},
                     settings=SETTINGS | {"device": "cuda"})  # the device may differ between days
    return folder


def test_evaluations_merge_with_later_ones_winning(study):
    models = results.load_study(study)
    assert sorted(models) == ["hard_seed0", "hard_seed1", "hard_seed2", "im_seed0", "im_seed1", "im_seed2"]
    assert models["hard_seed0"]["clean"]["top1"] == 0.12


def test_evaluations_with_other_settings_are_refused(study):
    write_evaluation(study, "2026-11-03", {"im_seed3": model("im", 3, 0.3, 0.1)}, settings=SETTINGS | {"subset": 50})
    with pytest.raises(UserError, match="other settings"):
        results.load_study(study)


def test_degradation_settings_of_types_not_evaluated_do_not_set_evaluations_apart(tmp_path):
    study = tmp_path / "graded"
    grid = {"types": ["blur"], "blur_sigma_max": 10.0}
    for day, extra in (("2026-11-03", {}), ("2026-11-04", {"heat_scale_max": 32.0})):
        write_evaluation(study, day, {"im_seed3": model("im", 3, 0.3, 0.1)},
                         settings=SETTINGS | {"degradation": grid | extra})
    write_evaluation(study, "2026-11-05", {"im_seed4": model("im", 4, 0.3, 0.1)},
                     settings=SETTINGS | {"degradation": grid | {"blur_sigma_max": 5.0}})
    with pytest.raises(UserError, match="2026-11-05.*other settings"):
        results.load_study(study)
    (study / "evaluations" / "2026-11-05" / "metrics.json").unlink()
    assert sorted(results.load_study(study)) == ["im_seed3"]


def test_strategy_means_and_intervals_match_a_hand_computation(study):
    summary = results.strategy_summary(results.load_study(study))
    hard = [0.12, 0.20, 0.15]
    mean = sum(hard) / 3
    half = T_975[2] * math.sqrt(sum((x - mean) ** 2 for x in hard) / 2) / math.sqrt(3)
    assert summary["hard"]["n"] == 3
    assert summary["hard"]["top1"] == pytest.approx((mean, mean - half, mean + half))
    assert summary["hard"]["robust top1"][0] == pytest.approx(sum(x * 0.75 for x in hard) / 3)


def test_readme_block_is_rebuilt_from_the_study_alone(study):
    readme = study.parent.parent.parent / "README.md"
    readme.write_text("# Title\n\nbefore\n<!-- results:demo -->\nstale table\n<!-- /results:demo -->\nafter\n")
    assert results.rebuild_readme(readme, study.parent) == ["demo"]
    text = readme.read_text()
    assert "stale table" not in text and text.startswith("# Title\n\nbefore\n") and text.endswith("after\n")
    hard_mean, im_mean = (0.12 + 0.20 + 0.15) / 3, (0.30 + 0.32 + 0.40) / 3
    hard_row = next(line for line in text.splitlines() if line.startswith("| hard | 3 |"))
    assert hard_row.split(" | ")[2].startswith(f"{100 * hard_mean:.2f} ± ")
    # im - hard per seed: 0.18, 0.12, 0.25; the interval excludes 0, so the cell is bold
    differences = [0.18, 0.12, 0.25]
    mean = sum(differences) / 3
    half = T_975[2] * math.sqrt(sum((x - mean) ** 2 for x in differences) / 2) / math.sqrt(3)
    im_row = [line for line in text.splitlines() if line.startswith("| im |")][-1]
    assert im_row.split(" | ")[1] == f"**{100 * mean:+.2f} [{100 * (mean - half):+.2f}, {100 * (mean + half):+.2f}]**"
    assert f"{100 * im_mean:.2f} ± " in text
    # ECE differences (+0.05, +0.08, -0.04), mean +0.03, straddle 0: not bold
    assert "| +0.0300 [-" in im_row
    results.rebuild_readme(readme, study.parent)  # idempotent
    assert readme.read_text() == text


def test_a_block_names_its_baselines(study):
    readme = study.parent.parent.parent / "README.md"
    readme.write_text("<!-- results:demo vs=im,hard,ls -->\n<!-- /results:demo -->\n")
    results.rebuild_readme(readme, study.parent)
    text = readme.read_text()
    assert text.startswith("<!-- results:demo vs=im,hard,ls -->\n")
    # ls has no runs: no table for it; im first, as the block asks
    assert text.count("Difference to ") == 2 and text.index("Difference to im") < text.index("Difference to hard")
    hard_to_im = [line for line in text.splitlines() if line.startswith("| hard |")][-1]
    differences = [0.18, 0.12, 0.25]  # im - hard per seed
    assert hard_to_im.split(" | ")[1].startswith(f"**{-100 * sum(differences) / 3:+.2f} [")


def test_a_block_can_show_some_strategies_in_its_order(study):
    ls = model("ls", 0, 0.5, 0.01) | {"checkpoint": "outputs/runs/ls_run/checkpoints/best.ckpt"}
    im = model("im", 3, 0.3, 0.1) | {"checkpoint": "outputs/runs/im_run/checkpoints/best.ckpt"}
    write_evaluation(study, "2026-11-03", {"ls_seed0": ls})
    write_evaluation(study, "2026-11-04", {"im_seed3": im})
    for run, seconds in (("ls_run", 3600), ("im_run", 1800)):
        (study / "runs" / run).mkdir(parents=True)
        (study / "runs" / run / "metrics.json").write_text(json.dumps(
            {"fit_seconds": seconds, "machine": {"cpu": "AMD EPYC", "torch_threads": 1, "precision": "32-true"}}))
    readme = study.parent.parent.parent / "README.md"
    readme.write_text("<!-- results:demo vs=hard strategies=im,hard -->\n<!-- /results:demo -->\n")
    results.rebuild_readme(readme, study.parent)
    text = readme.read_text()
    rows = [line.split(" | ")[0] for line in text.splitlines() if line.startswith("| ") and " | " in line]
    assert "| ls" not in rows and rows.index("| im") < rows.index("| hard")
    assert "(7 models of im, hard)" in text
    # only im_run's fit counts: ls is not shown, and the other models' checkpoints name no run in runs/
    assert "Cost: 1 training run, 0.5 core-hours of fit (AMD EPYC, 32-true: 1 run, 0.5 h)" in text

    readme.write_text("<!-- results:demo vs=hard strategies=hard,imm -->\n<!-- /results:demo -->\n")
    with pytest.raises(UserError, match="no models of imm; its strategies: hard, im, ls"):
        results.rebuild_readme(readme, study.parent)


def test_a_strategy_with_a_seed_fewer_pairs_on_the_seeds_both_have(study):
    write_evaluation(study, "2026-11-03", {"hard_seed3": model("hard", 3, 0.30, 0.05)})
    text = results.study_markdown(study, ["hard"])
    assert "(seed-paired t; im paired on the seeds both have)" in text
    im = next(line for line in text.splitlines() if line.startswith("| im |") and "[" in line)
    differences = [0.18, 0.12, 0.25]  # im - hard on seeds 0-2; hard's seed 3 has no im to pair with
    half = T_975[2] * statistics.stdev(differences) / math.sqrt(3)
    mean = sum(differences) / 3
    assert im.split(" | ")[1] == f"**{100 * mean:+.2f} [{100 * (mean - half):+.2f}, {100 * (mean + half):+.2f}]**"


def corrupted(models: dict, top1: dict[str, float], settings: dict | None = None) -> dict:
    """The corruptions part of metrics.json: each model's summary has mean_top1_all as given, the rest fixed."""
    summary = {"mean_top1_resemble_training": 0.2, "mean_top1_other": 0.3, "mean_nll": 4.0, "mean_ece": 0.1}
    return {"source": "regenerated", "label": "regenerated, not the official files", "names": ["fog"],
            "severities": [1, 2, 3, 4, 5], "num_images": 2000, **(settings or {}),
            "models": {name: {"summary": summary | {"mean_top1_all": top1[name]}} for name in models}}


def test_corruption_table_pairs_the_models_with_corruption_scores(study):
    # day 3 re-evaluates seeds 1 and 2 with corruptions; seed 0 has none, so the corruption table pairs two seeds
    models = {"hard_seed1": model("hard", 1, 0.20, 0.04), "hard_seed2": model("hard", 2, 0.15, 0.06),
              "im_seed1": model("im", 1, 0.32, 0.12), "im_seed2": model("im", 2, 0.40, 0.02)}
    top1 = {"hard_seed1": 0.10, "hard_seed2": 0.14, "im_seed1": 0.13, "im_seed2": 0.18}
    folder = study / "evaluations" / "2026-11-03"
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({"evaluation": SETTINGS, "models": models,
                                                     "corruptions": corrupted(models, top1)}))
    text = results.study_markdown(study)
    section = text[text.index("CIFAR-100-C (regenerated"):]
    assert "4 models" in section
    assert [line for line in section.splitlines() if line.startswith("| hard |")][0].startswith("| hard | 2 | 12.00 ± ")
    # im - hard per seed: +0.03, +0.04; paired t with 1 degree of freedom: the interval straddles 0, not bold
    half = T_975[1] * math.sqrt(((0.03 - 0.035) ** 2 + (0.04 - 0.035) ** 2) / 1) / math.sqrt(2)
    im_row = [line for line in section.splitlines() if line.startswith("| im |")][-1]
    assert im_row.split(" | ")[1] == f"+3.50 [{100 * (0.035 - half):+.2f}, {100 * (0.035 + half):+.2f}]"
    assert "seed-paired t)" in section  # every corruption comparison is paired, so the caption says only that

    other = folder.parent / "2026-11-04"
    other.mkdir()
    (other / "metrics.json").write_text(json.dumps({"evaluation": SETTINGS, "models": {"im_seed1": models["im_seed1"]},
                                                    "corruptions": corrupted({"im_seed1": 0}, {"im_seed1": 0.1},
                                                                             {"num_images": 500})}))
    with pytest.raises(UserError, match="other corruptions"):
        results.load_study(study)


def test_the_cost_line_adds_core_hours_per_cpu_and_precision(study):
    def run(name: str, seconds: float, threads: int, precision: str, cpu: str = "AMD EPYC") -> None:
        folder = study / "runs" / name
        folder.mkdir(parents=True)
        machine = {"cpu": cpu, "torch_threads": threads, "precision": precision}
        (folder / "metrics.json").write_text(json.dumps({"fit_seconds": seconds, "machine": machine}))

    assert results.cost_text(study) is None  # no runs: no line
    run("a", 3600, 1, "32-true")
    run("b", 1800, 2, "32-true")
    run("c", 900, 1, "bf16-mixed")
    evaluation = study / "evaluations" / "2026-11-01" / "metrics.json"
    evaluation.write_text(json.dumps(json.loads(evaluation.read_text()) | {"cost": {"seconds": 720,
                                                                                    "torch_threads": 2}}))
    assert results.cost_text(study) == (
        "Cost: 3 training runs, 2.2 core-hours of fit (AMD EPYC, 32-true: 2 runs, 2.0 h; AMD EPYC, bf16-mixed: "
        "1 run, 0.2 h); 1 of 2 evaluations record theirs: 0.4 core-hours (core-hours: seconds x torch threads).")
    assert results.cost_text(study) in results.study_markdown(study)


def test_a_block_naming_a_missing_study_is_an_error(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("<!-- results:nowhere -->\n<!-- /results:nowhere -->\n")
    with pytest.raises(UserError, match="does not exist"):
        results.rebuild_readme(readme, tmp_path)


def test_collect_copies_configs_metrics_and_a_few_plots_but_no_checkpoints(tmp_path):
    sweep = tmp_path / "sweep"
    for run in ("0_hard_all_seed0", "1_im_all_seed0"):
        (sweep / run / ".hydra").mkdir(parents=True)
        (sweep / run / ".hydra" / "config.yaml").write_text(f"labels: {run}\n")
        (sweep / run / "metrics.json").write_text("{}")
        (sweep / run / "checkpoints").mkdir()
        (sweep / run / "checkpoints" / "last.ckpt").write_bytes(b"weights")
    evaluation = tmp_path / "eval" / "2026-11-26"
    (evaluation / "plots").mkdir(parents=True)
    for name in ("metrics.json", "metrics.csv", "summary.md", "evaluate.log"):
        (evaluation / name).write_text("x")
    for name in ("clean_metrics.png", "reliability_hard_seed0.png"):
        (evaluation / "plots" / name).write_bytes(b"png")
    study = tmp_path / "docs" / "results" / "demo"
    results.collect(sweep, evaluation, study)
    kept = sorted(path.relative_to(study).as_posix() for path in study.rglob("*") if path.is_file())
    assert kept == ["evaluations/2026-11-26/metrics.csv", "evaluations/2026-11-26/metrics.json",
                    "evaluations/2026-11-26/plots/clean_metrics.png", "evaluations/2026-11-26/summary.md",
                    "runs/0_hard_all_seed0/config.yaml", "runs/0_hard_all_seed0/metrics.json",
                    "runs/1_im_all_seed0/config.yaml", "runs/1_im_all_seed0/metrics.json"]
    assert (study / "runs/1_im_all_seed0/config.yaml").read_text() == "labels: 1_im_all_seed0\n"


def test_collect_keeps_one_row_per_epoch_of_the_csv_log(tmp_path):
    # Lightning's CSV log: a learning-rate row, step rows, then each epoch's train and validation rows apart
    log = tmp_path / "sweep" / "run" / "csv" / "metrics.csv"
    log.parent.mkdir(parents=True)
    (tmp_path / "sweep" / "run" / ".hydra").mkdir()
    (tmp_path / "sweep" / "run" / ".hydra" / "config.yaml").write_text("labels: im\n")
    (tmp_path / "sweep" / "run" / "metrics.json").write_text("{}")
    log.write_text("epoch,lr-AdamW,step,train/loss_step,train/loss_epoch,val/top1\n"
                   ",0.001,0,,,\n0,,19,4.5,,\n0,,39,,4.3,\n0,,39,,,0.09\n1,,59,4.1,,\n1,,79,,4.0,\n1,,79,,,0.12\n")
    evaluation = tmp_path / "eval"
    evaluation.mkdir()
    (evaluation / "metrics.json").write_text("{}")
    results.collect(tmp_path / "sweep", evaluation, tmp_path / "study")
    with open(tmp_path / "study/runs/run/history.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["epoch"], row["train/loss_epoch"], row["val/top1"]) for row in rows] == [
        ("0", "4.3", "0.09"), ("1", "4.0", "0.12")]
    assert rows[0]["val/nll"] == ""  # a column the log lacks stays empty


def test_collect_names_a_folder_without_runs(tmp_path):
    with pytest.raises(UserError, match="no runs under"):
        results.collect(tmp_path, tmp_path, tmp_path / "study")


@pytest.mark.parametrize("page", results.RESULT_PAGES, ids=str)
def test_the_result_pages_are_what_docs_results_rebuild(tmp_path, page):
    repo = Path(__file__).resolve().parents[2]
    copy = tmp_path / page
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_text((repo / page).read_text())
    shutil.copytree(repo / "docs" / "results", tmp_path / "docs" / "results")
    results.rebuild_readme(copy, tmp_path / "docs" / "results")
    assert copy.read_text() == (repo / page).read_text(), \
        f"{page}'s results blocks differ from docs/results: run python -m infomatch.tasks.results tables"


NUMBER = r"[+-]?\d+\.\d+"
INTERVAL = re.compile(rf"({NUMBER}) \[({NUMBER}), ({NUMBER})\]")
BLOCK = re.compile(r"<!-- (?:results|gap):.*?<!-- /(?:results|gap):[\w.,-]+ -->", re.S)  # tables and gap tables


def _decimals(number: str) -> int:
    return len(number.split(".")[1])


@pytest.mark.parametrize("page", results.RESULT_PAGES, ids=str)
def test_every_interval_quoted_in_a_pages_text_is_one_of_the_tables(page):
    """The reading beside a table quotes its differences by hand, rounded: each quoted 'd [low, high]' must be a
    rebuilt table's interval (a results block's or a study page's) at the quoted precision, so a table rebuilt with
    more seeds cannot leave its reading behind."""
    repo = Path(__file__).resolve().parents[2]
    texts = {other: (repo / other).read_text().replace("−", "-") for other in results.RESULT_PAGES}
    tabled = [tuple(map(float, found)) for text in texts.values() for block in BLOCK.findall(text)
              for found in INTERVAL.findall(block)]
    # the study pages (report --all) hold the full tables, generated like the blocks
    tabled += [tuple(map(float, found)) for report in sorted((repo / "docs" / "results").glob("*/report/report.md"))
               for found in INTERVAL.findall(report.read_text().replace("−", "-"))]
    stale = []
    for quoted in INTERVAL.findall(BLOCK.sub("", texts[page])):
        places = _decimals(quoted[0])
        if tuple(map(float, quoted)) not in {tuple(round(value, places) for value in row) for row in tabled}:
            stale.append("{} [{}, {}]".format(*quoted))
    assert stale == [], f"{page} quotes intervals no results table holds: {stale}"


def test_runs_trained_differently_under_one_name_are_refused(study):
    # the model fixture's checkpoints are /somewhere/<strategy><seed>.ckpt, so their run folder is "somewhere"
    # for all; give hard's seeds their own run folders with stored configs
    for seed, types in ((0, ["blur"]), (1, ["blur"]), (2, ["mosaic"])):
        run = study / "runs" / f"hard_seed{seed}"
        run.mkdir(parents=True)
        (run / "config.yaml").write_text(f"seed: {seed}\ntrainer:\n  precision: {'32-true' if seed else 'auto'}\n"
                                         f"augment:\n  types: {types}\n")
    for name in ("2026-11-01", "2026-11-02"):
        file = study / "evaluations" / name / "metrics.json"
        evaluation = json.loads(file.read_text())
        for model_name, evaluated in evaluation["models"].items():
            if evaluated["strategy"] == "hard":
                evaluated["checkpoint"] = f"/elsewhere/{model_name}/checkpoints/best.ckpt"
        file.write_text(json.dumps(evaluation))
    with pytest.raises(UserError, match=r"hard runs hard_seed0 and hard_seed2 .*augment.types: \['blur'\] vs "
                                        r"\['mosaic'\]"):
        results.load_study(study)
    # seed and precision may differ, and a setting one run did not store yet is not compared
    (study / "runs" / "hard_seed2" / "config.yaml").write_text("seed: 2\naugment:\n  types: [blur]\n  probability: 1\n")
    assert len(results.load_study(study)) == 6


def test_stored_strategy_names_are_what_the_naming_gives_their_runs():
    """Renaming a recipe would split a study's seeds between the stored name and the new one."""
    import yaml

    from infomatch.evaluation.recipe_names import strategy_name
    from infomatch.runs.trusted import build

    checked = 0
    for file in sorted((ROOT / "docs" / "results").glob("*/evaluations/*/metrics.json")):
        study = file.parents[2]
        for evaluated in json.loads(file.read_text())["models"].values():
            config_file = study / "runs" / results._run_folder_name(evaluated) / "config.yaml"
            config = yaml.safe_load(config_file.read_text())
            labels = build(config["labels"], "labels", config_file)
            assert strategy_name(config, labels) == evaluated["strategy"], config_file
            checked += 1
    assert checked >= 70


def test_a_gap_block_pairs_each_contrast_per_study_and_its_change_by_seed(tmp_path):
    root = tmp_path / "docs" / "results"
    # short: im − hard = +0.10, +0.12 (seeds 0, 1; seed 3 is not in the long study); long: +0.05, +0.09, +0.20
    def top1s(values: dict[str, dict[int, float]]) -> dict:
        return {f"{strategy}_seed{seed}": model(strategy, seed, top1, 0.05)
                for strategy, seeds in values.items() for seed, top1 in seeds.items()}

    short = {"hard": {0: 0.20, 1: 0.22, 3: 0.20}, "im": {0: 0.30, 1: 0.34, 3: 0.90}}
    write_evaluation(root / "short", "day", top1s(short))
    long = {"hard": {0: 0.50, 1: 0.51, 2: 0.40}, "im": {0: 0.55, 1: 0.60, 2: 0.60}}
    write_evaluation(root / "long", "day", top1s(long))
    page = tmp_path / "page.md"
    page.write_text("<!-- gap:short,long contrasts=im:hard -->\nold\n<!-- /gap:short,long -->\n")
    results.rebuild_readme(page, root)
    text = page.read_text()
    [row] = [line for line in text.splitlines() if line.startswith("| im − hard") and "%" not in line][:1]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    half_short = T_975[1] * statistics.stdev([10, 12]) / math.sqrt(2)
    assert cells[1] == f"+11.00 [{11 - half_short:+.2f}, {11 + half_short:+.2f}], seeds 0,1"
    assert cells[2].startswith("+11.33 [") and cells[2].endswith(", seeds 0,1,2")
    # the change pairs seeds 0 and 1 only: (5 − 10, 9 − 12) = (−5, −3)
    half_change = T_975[1] * statistics.stdev([-5, -3]) / math.sqrt(2)
    assert cells[3] == f"-4.00 [{-4 - half_change:+.2f}, {-4 + half_change:+.2f}]"


def test_history_figures_are_drawn_for_studies_that_kept_per_epoch_numbers(tmp_path):
    root = tmp_path / "results"
    models = {f"{strategy}_seed{seed}": model(strategy, seed, 0.3, 0.05) | {
        "checkpoint": f"outputs/runs/{strategy}{seed}/checkpoints/best.ckpt"} for strategy in ("hard", "im")
        for seed in (0, 1)}
    write_evaluation(root / "long", "day", models)
    for name in models:
        run = root / "long" / "runs" / name.replace("_seed", "")
        run.mkdir(parents=True)
        (run / "history.csv").write_text("epoch,val/top1\n0,0.1\n1,0.2\n2,0.25\n")
    written = results.write_history_figures(root)
    assert written == [root / "long" / "validation_top1.png"] and written[0].stat().st_size > 1000


def test_forest_figures_are_drawn_for_studies_with_the_baseline(study, tmp_path):
    write_evaluation(tmp_path / "docs" / "results" / "no_baseline", "day", {"im_seed0": model("im", 0, 0.3, 0.1)})
    written = results.write_forest_figures(tmp_path / "docs" / "results")
    assert written == [study / "paired_differences_hard.png"] and written[0].stat().st_size > 1000


def test_a_headline_block_is_one_small_table_of_differences_to_its_baseline(study):
    page = study.parent.parent.parent / "page.md"
    page.write_text("<!-- results:demo vs=hard headline -->\n<!-- /results:demo -->\n")
    results.rebuild_readme(page, study.parent)
    lines = [line for line in page.read_text().splitlines() if line.startswith("| ")]
    assert lines[0] == "| strategy | seeds | top-1 % | top-1 − hard | NLL (ts) − hard | robust top-1 − hard |"
    hard, im = (line.split(" | ") for line in lines[1:])
    assert hard[3:] == ["–", "–", "– |"]
    # im − hard top-1 paired on seeds 0-2: (0.30 − 0.12, 0.32 − 0.20, 0.40 − 0.15) = (18, 12, 25) points
    mean, half = statistics.mean([18, 12, 25]), T_975[2] * statistics.stdev([18, 12, 25]) / math.sqrt(3)
    assert im[3] == f"**{mean:+.2f} [{mean - half:+.2f}, {mean + half:+.2f}]**"


def test_a_study_with_ood_scores_gets_their_table(study):
    scored = {name: model(strategy, seed, 0.3, 0.1) | {"ood": {"held_out_classes": {
        score: {"auroc": auroc, "fpr95": 0.5, "aupr_in": 0.5, "aupr_out": 0.5}
        for score in ("msp", "max_logit", "energy", "neg_entropy", "msp_normalized")}}}
        for name, strategy, seed, auroc in (("hard_seed5", "hard", 5, 0.60), ("hard_seed6", "hard", 6, 0.62),
                                            ("im_seed5", "im", 5, 0.70), ("im_seed6", "im", 6, 0.71))}
    write_evaluation(study, "2026-11-09", scored)
    text = results.study_markdown(study, ["hard"])
    assert "OOD detection (4 models" in text and "held_out_classes AUROC MSP" in text
    # im − hard on seeds 5, 6: (0.10, 0.09)
    assert "+0.0950 [" in text


def test_collect_leaves_no_machine_paths_in_a_run_s_files(tmp_path):
    run = tmp_path / "sweep" / "cpu_long_im_seed0"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text("data:\n  root: /home/someone/data/cifar100\n  download: false\n")
    (run / "metrics.json").write_text(json.dumps({"best_checkpoint": f"{run}/checkpoints/best_epoch031.ckpt"}))
    evaluation = tmp_path / "eval"
    evaluation.mkdir()
    (evaluation / "metrics.json").write_text("{}")
    results.collect(tmp_path / "sweep", evaluation, tmp_path / "study")
    kept = tmp_path / "study" / "runs" / "cpu_long_im_seed0"
    assert json.loads((kept / "metrics.json").read_text()) == {"best_checkpoint": "checkpoints/best_epoch031.ckpt"}
    assert (kept / "config.yaml").read_text() == "data:\n  root: cifar100\n  download: false\n"
