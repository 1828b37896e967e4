"""Study results kept in git, and the README tables rebuilt from them alone.

  python -m infomatch.tasks.results collect outputs/multirun/<sweep> outputs/eval/<date> docs/results/<study>
  python -m infomatch.tasks.results tables      # rewrite each study's block in README.md and docs/results.md
  python -m infomatch.tasks.results clean docs/results/<study>   # no machine paths, run names saying what ran
  python -m infomatch.tasks.results report docs/results/<study>  # its page: report.html and report.md, figures
  python -m infomatch.tasks.results report --all                 # every study's page, then the tables

A study folder holds ``runs/<run>/{config.yaml, metrics.json}`` (each run's resolved config and training
metrics) and ``evaluations/<name>/`` (an evaluation's metrics.json, metrics.csv, summary.md, comparisons.csv
and a few plots); checkpoints stay out. Evaluations collected into one study on different days add up: their
models are merged (a model evaluated twice keeps the later evaluation, by folder name) before the means, 95%
intervals and paired differences are computed, provided they were evaluated with the same settings.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from infomatch.evaluation.tables import interval_text, markdown_table, mean_text, number_text
from infomatch.runs.portable import clean_study, portable_text, rewrite_references
from infomatch.utils.errors import UserError, exit_with

# infomatch.evaluation.compare (torch, scipy) is imported where it is used: --help answers in well under a second

EVALUATION_FILES = ("metrics.json", "metrics.csv", "summary.md", "comparisons.csv")
KEPT_PLOTS = ("clean_metrics.png", "paired_differences*.png", "corruptions_heatmap.png", "risk_coverage.png")  # globs
# (scalar_metrics key, column heading, scale): the columns of both README tables
COLUMNS = (
    ("top1", "top-1 %", 100), ("top5", "top-5 %", 100), ("nll", "NLL", 1), ("ece", "ECE", 1),
    ("brier", "Brier", 1), ("confidence_gap", "conf − acc", 1), ("temperature", "T", 1),
    ("nll (ts)", "NLL (ts)", 1), ("ece (ts)", "ECE (ts)", 1), ("robust top1", "robust top-1 %", 100),
)
RESULT_PAGES = [Path("README.md"), Path("docs/results.md")]  # the pages whose results blocks `tables` rebuilds
DIFFERENCE_COLUMNS = ("top1", "nll", "ece", "nll (ts)", "ece (ts)", "robust top1")
# (corruption_metrics key, heading, scale): the CIFAR-100-C table, where a study's evaluations include corruptions
CORRUPTION_COLUMNS = (
    ("C mean_top1_all", "C top-1 %", 100), ("C mean_top1_resemble_training", "like training %", 100),
    ("C mean_top1_other", "other %", 100), ("C mean_nll", "C NLL", 1), ("C mean_ece", "C ECE", 1),
)
CORRUPTION_SETTINGS = ("source", "names", "severities", "num_images")  # equal in every evaluation of a study
# the training settings that must agree among the runs pooled under one strategy name (not seed, precision, paths)
RECIPE_SETTINGS = ("model", "labels", "base_augment", "augment", "mix", "optimizer", "scheduler", "data.batch_size",
                   "data.train_limit", "data.val_size", "data.split_seed", "data.validate_on_test",
                   "trainer.max_epochs")


def _run_folders(runs: Path) -> list[Path]:
    """Every run under ``runs`` (a run folder or a sweep folder): folders with metrics.json and .hydra/config.yaml."""
    return sorted(path.parent for path in runs.glob("**/metrics.json")
                  if (path.parent / ".hydra/config.yaml").is_file())


HISTORY_COLUMNS = ("val/top1", "val/nll", "val/ece", "train/loss_epoch", "train/top1", "time/epoch_s")


def epoch_history(metrics_csv: Path) -> list[dict[str, str]]:
    """One row per epoch of a run's CSV log (Lightning writes step rows and epoch rows apart): the epoch-level
    numbers of ``HISTORY_COLUMNS`` merged by epoch, the step-level ones left out."""
    with open(metrics_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    epochs: dict[int, dict[str, str]] = {}
    for row in rows:
        if not row.get("epoch"):
            continue
        merged = epochs.setdefault(int(float(row["epoch"])), {"epoch": str(int(float(row["epoch"])))})
        merged.update({key: row[key] for key in HISTORY_COLUMNS if row.get(key)})
    return [row for _, row in sorted(epochs.items()) if len(row) > 1]


def _write_history(metrics_csv: Path, target: Path) -> Path:
    with open(target, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=("epoch", *HISTORY_COLUMNS))
        writer.writeheader()
        writer.writerows(epoch_history(metrics_csv))
    return target


def _copy_without_machine_paths(source: Path, target: Path, run: Path | None = None) -> Path:
    """Copy a result file with the run folder's absolute path made relative to the run (its checkpoints become
    checkpoints/<file>) and every other absolute path cut to what it names (``portable_text``): the committed
    study names no machine's folders."""
    text = source.read_text()
    for prefix in {str(run.resolve()), str(run.absolute())} if run is not None else ():
        text = text.replace(prefix + "/", "")
    target.write_text(portable_text(text))
    return target


def collect(runs: Path, evaluation: Path, study: Path) -> list[Path]:
    """Copy the small result files of ``runs`` and of one ``evaluation`` folder into ``study``; returns the copies."""
    folders = _run_folders(runs)
    if not folders:
        raise UserError(f"no runs under {runs}: a run folder holds metrics.json and .hydra/config.yaml")
    return [*collect_evaluation(evaluation, study), *collect_runs(folders, study)]


def collect_runs(folders: list[Path], study: Path) -> list[Path]:
    """Copy each run folder's config, metrics and per-epoch history into ``study/runs/<run>``."""
    copied = []
    for folder in folders:
        target = study / "runs" / folder.name
        target.mkdir(parents=True, exist_ok=True)
        copied.append(_copy_without_machine_paths(folder / ".hydra/config.yaml", target / "config.yaml", folder))
        copied.append(_copy_without_machine_paths(folder / "metrics.json", target / "metrics.json", folder))
        if (folder / "csv/metrics.csv").is_file():  # validation top-1 against epoch, for the study's figures
            copied.append(_write_history(folder / "csv/metrics.csv", target / "history.csv"))
    return copied


def collect_evaluation(evaluation: Path, study: Path) -> list[Path]:
    """Copy an evaluation's metrics, tables and a few plots into ``study/evaluations/<its folder name>``."""
    if not (evaluation / "metrics.json").is_file():
        raise UserError(f"{evaluation} holds no metrics.json: pass the folder evaluate.py wrote (outputs/eval/<date>)")
    target = study / "evaluations" / evaluation.name
    (target / "plots").mkdir(parents=True, exist_ok=True)
    copied = [_copy_without_machine_paths(evaluation / name, target / name)
              for name in EVALUATION_FILES if (evaluation / name).is_file()]
    for pattern in KEPT_PLOTS:
        for plot in sorted((evaluation / "plots").glob(pattern)):
            copied.append(Path(shutil.copy2(plot, target / "plots" / plot.name)))
    return copied


def _comparable(settings: dict[str, Any]) -> dict[str, Any]:
    """The evaluation settings that must agree within a study: not the device, and of the degradation settings only
    those of the evaluated types (a setting added later for another type does not set two evaluations apart)."""
    from infomatch.augment import REGISTRY

    comparable = {key: value for key, value in settings.items() if key != "device"}
    degradation = dict(comparable.get("degradation", {}))
    used = {name for kind in degradation.get("types", []) if kind in REGISTRY for name in REGISTRY[kind].settings}
    comparable["degradation"] = {key: value for key, value in degradation.items() if key == "types" or key in used}
    return comparable


def load_study(study: Path) -> dict[str, dict[str, Any]]:
    """The study's models, merged over its evaluations in folder-name order (later ones win)."""
    files = sorted((study / "evaluations").glob("*/metrics.json"))
    if not files:
        raise UserError(f"{study} has no evaluations/<name>/metrics.json: add one with "
                        "python -m infomatch.tasks.results collect <runs> <evaluation> <study>")
    models: dict[str, dict[str, Any]] = {}
    first_settings, first_file = None, None
    first_corruptions, first_corruptions_file = None, None
    for file in files:
        results = json.loads(file.read_text())
        settings = _comparable(results["evaluation"])
        if first_settings is None:
            first_settings, first_file = settings, file
        elif settings != first_settings:
            raise UserError(f"{file} was evaluated with other settings than {first_file} ({settings} vs "
                            f"{first_settings}); evaluate every model of a study the same way")
        evaluated = {name: dict(model) for name, model in results["models"].items()}
        if "corruptions" in results:
            part = results["corruptions"]
            corruption_settings = {key: part[key] for key in CORRUPTION_SETTINGS}
            if first_corruptions is None:
                first_corruptions, first_corruptions_file = corruption_settings, file
            elif corruption_settings != first_corruptions:
                raise UserError(f"{file} scored other corruptions than {first_corruptions_file} "
                                f"({corruption_settings} vs {first_corruptions}); score every model the same way")
            for name, scores in part["models"].items():
                # the summary the tables compare, and each corrupted set's scores per severity for the figures
                evaluated[name]["corruptions"] = {**scores["summary"], "label": part["label"],
                                                  **({"sets": scores["sets"]} if "sets" in scores else {})}
        models.update(evaluated)
    check_pooled_runs(study, models)
    return models


def _recipe(config: dict[str, Any]) -> dict[str, Any]:
    """A run config's RECIPE_SETTINGS as {"augment.types": [...], ...}: one level deep, so a setting that is null in
    one run and a mapping in another (base_augment.policy) still differs."""
    flat = {}
    for setting in RECIPE_SETTINGS:
        value: Any = config
        for key in setting.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, dict):
            flat.update({f"{setting}.{key}": item for key, item in value.items()})
        elif value is not None:
            flat[setting] = value
    return flat


def check_pooled_runs(study: Path, models: dict[str, dict[str, Any]]) -> None:
    """Refuse a strategy whose runs (in ``study/runs``) were trained with different settings: a name that misses a
    setting would otherwise pool them over seeds without a word. Settings a run stored and another did not
    (added later, at their defaults) are not compared."""
    first: dict[str, tuple[str, dict[str, Any]]] = {}
    for model in models.values():
        run = _run_folder_name(model)
        file = study / "runs" / run / "config.yaml"
        if not file.is_file():
            continue
        recipe = _recipe(yaml.safe_load(file.read_text()))
        strategy = model["strategy"]
        first_run, first_recipe = first.setdefault(strategy, (run, recipe))
        differ = sorted(key for key in recipe.keys() & first_recipe.keys() if recipe[key] != first_recipe[key])
        if differ:
            shown = "; ".join(f"{key}: {first_recipe[key]!r} vs {recipe[key]!r}" for key in differ[:4])
            raise UserError(f"{study}: the {strategy} runs {first_run} and {run} were trained with different "
                            f"settings ({shown}{' ...' if len(differ) > 4 else ''}), so their seeds cannot be pooled "
                            "under one name; evaluate them apart or name the setting in "
                            "infomatch/evaluation/recipe_names.py")


def strategy_summary(models: dict[str, dict[str, Any]], metrics=None) -> dict[str, dict[str, Any]]:
    """{strategy: {"n": seeds, metric: (mean, low, high)}}, low/high None for a single run; strategies in run order.

    ``metrics``: the numbers per model (default: compare.scalar_metrics)."""
    from infomatch.evaluation.compare import mean_interval, scalar_metrics

    values: dict[str, list[dict[str, float]]] = {}
    for model in models.values():
        values.setdefault(model["strategy"], []).append((metrics or scalar_metrics)(model))
    summary: dict[str, dict[str, Any]] = {}
    for strategy, runs in values.items():
        summary[strategy] = {"n": len(runs)}
        for key in runs[0]:
            sample = [run[key] for run in runs]
            summary[strategy][key] = mean_interval(sample) if len(sample) > 1 else (sample[0], None, None)
    return summary


def _literally(text: str) -> Callable[[re.Match[str]], str]:
    """A ``re.sub`` replacement inserting ``text`` as it is (no backslash escapes, no group references)."""
    return lambda _: text


def _mean_cell(interval: tuple[float, float | None, float | None], scale: float) -> str:
    """``interval`` (mean, low, high), as strategy_summary gives it."""
    mean, low, high = interval
    return mean_text(mean, None if low is None or high is None else (high - low) / 2, scale)


def _difference_cell(row: dict[str, Any], scale: float) -> str:
    difference = number_text(row["difference"], scale, signed=True)
    if row["low"] is None:
        return difference
    cell = f"{difference} {interval_text(row['low'], row['high'], scale)}"
    return f"**{cell}**" if row["separated"] else cell


def _difference_table(models: dict[str, dict[str, Any]], strategies: list[str], baseline: str, columns,
                      metrics) -> list[str]:
    """Paired differences to ``baseline`` in ``columns`` (key, heading, scale) of the numbers ``metrics`` gives."""
    from infomatch.evaluation.compare import compare

    rows = {(row["strategy"], row["metric"]): row for row in compare(models, baseline, metrics)}
    pairing = {row["method"] for row in rows.values()}
    how = "seed-paired t" if pairing == {"paired t"} else "seed-paired t, or Welch where fewer than two seeds pair"
    runs = Counter(model["strategy"] for model in models.values())
    partly = sorted({row["strategy"] for row in rows.values()
                     if row["method"] == "paired t" and row["n"] < max(runs[row["strategy"]], runs[baseline])})
    if partly:
        how += f"; {', '.join(partly)} paired on the seeds both have"
    lines = [f"Difference to {baseline} (strategy − {baseline}) with its 95% interval ({how}); **bold**: the "
             "interval excludes 0 (separated from seed noise)."
             if pairing != {"none (one run)"} else
             f"Difference to {baseline} (strategy − {baseline}): one seed each, so no interval yet.", ""]
    return lines + markdown_table(["strategy", *(heading for _, heading, _ in columns)],
                          [[strategy, *(_difference_cell(rows[strategy, key], scale) for key, _, scale in columns)]
                           for strategy in strategies if strategy != baseline])


def _corruption_section(models: dict[str, dict[str, Any]], baselines: Sequence[str]) -> list[str]:
    """The CIFAR-100-C table of the models whose evaluation scored corruptions, and its paired differences."""
    from infomatch.evaluation.compare import corruption_metrics

    scored = {name: model for name, model in models.items() if "corruptions" in model}
    if not scored:
        return []
    label = next(iter(scored.values()))["corruptions"]["label"]
    lines = [f"CIFAR-100-C ({label}; {len(scored)} models, those evaluated without corruptions left out): mean "
             "over the corrupted sets; like training: the noise, blur and pixelate corruptions; other: the rest.", ""]
    return lines + _strategy_tables(scored, baselines, CORRUPTION_COLUMNS, CORRUPTION_COLUMNS, corruption_metrics)


def _uncertainty_section(models: dict[str, dict[str, Any]], baselines: Sequence[str]) -> list[str]:
    """Selective classification and the calibration measures beyond ECE, for the models evaluated with them."""
    from infomatch.evaluation.uncertainty import UNCERTAINTY_COLUMNS, uncertainty_scalars

    scored = {name: model for name, model in models.items() if "uncertainty" in model}
    if not scored:
        return []
    lines = [f"Selective classification and calibration ({len(scored)} models; definitions in "
             "[evaluation.md](evaluation.md#selective-classification-and-calibration-beyond-ece)): AURC, AUGRC with "
             "the max softmax probability, (norm) with the p-normalised logits; risk at 80% coverage, coverage at "
             "5% risk; classwise ECE, maximum calibration error, smooth ECE.", ""]
    return lines + _strategy_tables(scored, baselines, UNCERTAINTY_COLUMNS, UNCERTAINTY_COLUMNS, uncertainty_scalars)


def _ood_section(models: dict[str, dict[str, Any]], baselines: Sequence[str]) -> list[str]:
    """OOD detection per set for the models evaluated with ``ood=``: AUROC with MSP, max logit and energy, FPR95
    with MSP and energy."""
    from infomatch.evaluation.uncertainty import ood_scalars

    scored = {name: model for name, model in models.items() if model.get("ood")}
    if not scored:
        return []
    sets = list(next(iter(scored.values()))["ood"])
    columns = [(f"ood {name} {measure} {score}", f"{name} {label}", 1) for name in sets
               for measure, score, label in (("auroc", "msp", "AUROC MSP"), ("auroc", "max_logit", "AUROC max logit"),
                                             ("auroc", "energy", "AUROC energy"), ("fpr95", "msp", "FPR95 MSP"),
                                             ("fpr95", "energy", "FPR95 energy"))]
    lines = [f"OOD detection ({len(scored)} models; in-distribution: the test images; sets: {', '.join(sets)}; "
             "[evaluation.md](evaluation.md#out-of-distribution-detection-ood)).", ""]
    return lines + _strategy_tables(scored, baselines, columns, columns, ood_scalars)


def _strategy_tables(models: dict[str, dict[str, Any]], baselines: Sequence[str], columns, difference_columns,
                     metrics) -> list[str]:
    """Per-strategy mean ± 95% CI half-width in ``columns``, then the paired differences to each of ``baselines``
    that the models have, in ``difference_columns``."""
    summary = strategy_summary(models, metrics)
    lines = markdown_table(["strategy", "seeds", *(heading for _, heading, _ in columns)],
                           [[strategy, str(group["n"]), *(_mean_cell(group[key], scale) for key, _, scale in columns)]
                            for strategy, group in summary.items()])
    if len(summary) > 1:
        for baseline in (baseline for baseline in baselines if baseline in summary):
            lines += _difference_table(models, list(summary), baseline, difference_columns, metrics)
    return lines


def _core_hours(seconds: float, threads: int) -> float:
    return seconds * threads / 3600


def machine_label(machine: dict[str, Any]) -> str:
    """Where a run trained, as its metrics.json records it: ``AMD EPYC, bf16-mixed`` (the GPU's name on a GPU)."""
    return f"{machine.get('gpu') or machine['cpu']}, {machine['precision']}"


def cost_text(study: Path, models: dict[str, dict[str, Any]] | None = None) -> str | None:
    """The study's compute from its files: training core-hours (fit seconds x torch threads) per CPU and precision,
    and the evaluations' that recorded their cost; None when no run is in the study.

    ``models``: count only these models' runs (their checkpoints' run folders) and the evaluations that scored them.
    """
    files = sorted((study / "runs").glob("*/metrics.json"))
    evaluation_files = sorted((study / "evaluations").glob("*/metrics.json"))
    evaluations = [json.loads(path.read_text()) for path in evaluation_files]
    if models is not None:
        shown = {_run_folder_name(model) for model in models.values()}
        files = [path for path in files if path.parent.name in shown]
        evaluations = [evaluation for evaluation in evaluations
                       if shown & {_run_folder_name(model) for model in evaluation["models"].values()}]
    runs = [json.loads(path.read_text()) for path in files]
    runs = [run for run in runs if "fit_seconds" in run and "machine" in run]
    if not runs:
        return None
    groups: dict[str, list[float]] = {}
    for run in runs:
        groups.setdefault(machine_label(run["machine"]), []).append(
            _core_hours(run["fit_seconds"], run["machine"]["torch_threads"]))
    total = sum(sum(hours) for hours in groups.values())
    parts = "; ".join(f"{where}: {len(hours)} run{'s' * (len(hours) > 1)}, {sum(hours):.1f} h"
                      for where, hours in groups.items())
    text = f"Cost: {len(runs)} training run{'s' * (len(runs) > 1)}, {total:.1f} core-hours of fit ({parts})"
    costs = [evaluation["cost"] for evaluation in evaluations if "cost" in evaluation]
    if costs:
        hours = sum(_core_hours(cost["seconds"], cost["torch_threads"]) for cost in costs)
        text += f"; {len(costs)} of {len(evaluations)} evaluations record theirs: {hours:.1f} core-hours"
    return text + " (core-hours: seconds x torch threads)."


def _run_folder_name(model: dict[str, Any]) -> str:
    """The run folder of an evaluated model: its checkpoint is <run>/checkpoints/<file>."""
    return Path(model["checkpoint"]).parent.parent.name


def select_strategies(models: dict[str, dict[str, Any]], strategies: list[str]) -> dict[str, dict[str, Any]]:
    """The models of ``strategies``, in that order; a strategy the study does not have is an error (a typo would
    otherwise drop its rows without a word)."""
    present = list(dict.fromkeys(model["strategy"] for model in models.values()))
    missing = [strategy for strategy in strategies if strategy not in present]
    if missing:
        raise UserError(f"the study has no models of {', '.join(missing)}; its strategies: {', '.join(present)}")
    return {name: model for strategy in strategies for name, model in models.items() if model["strategy"] == strategy}


def headline_markdown(study: Path, baseline: str, shown_as: str, strategies: list[str] | None) -> str:
    """A few-column table for a README: per strategy the seeds, mean top-1 and the paired differences to
    ``baseline`` in ``HEADLINE_COLUMNS`` (95% interval; bold where it excludes 0)."""
    from infomatch.evaluation.compare import compare, scalar_metrics

    models = load_study(study)
    if strategies:
        models = select_strategies(models, strategies)
    summary = strategy_summary(models, scalar_metrics)
    if baseline not in summary:
        raise UserError(f"a headline block compares to {baseline}, which the study lacks")
    rows = {(row["strategy"], row["metric"]): row for row in compare(models, baseline)}
    header = ["strategy", "seeds", "top-1 %", *(f"{heading} − {baseline}" for _, heading, _ in HEADLINE_COLUMNS)]
    table = markdown_table(header, [
        [strategy, str(group["n"]), _mean_cell(group["top1"], 100),
         *("–" if strategy == baseline else _difference_cell(rows[strategy, key], scale)
           for key, _, scale in HEADLINE_COLUMNS)] for strategy, group in summary.items()])
    note = (f"<sub>Rebuilt by `python -m infomatch.tasks.results tables` from `{shown_as}/`: mean ± 95% interval "
            f"half-width over seeds, differences seed-paired with their 95% interval, **bold**: excludes 0; (ts): "
            "after temperature scaling; robust: mean over the degradation grid.</sub>")
    return "\n".join([note, "", *table]).rstrip("\n")


def study_markdown(study: Path, baselines: Sequence[str] = ("hard",), shown_as: str | None = None,
                   strategies: list[str] | None = None) -> str:
    """The README block of one study: per-strategy mean ± 95% CI half-width, then paired differences to each of
    ``baselines`` that the study has.

    ``shown_as``: the study's path as the block names it (default: as given). ``strategies``: show only these, in
    this order (the cost line then counts only their runs).
    """
    from infomatch.evaluation.compare import scalar_metrics

    models = load_study(study)
    if strategies:
        models = select_strategies(models, strategies)
    lines = [f"<sub>Rebuilt by `python -m infomatch.tasks.results tables` from `{shown_as or study.as_posix()}/` "
             f"({len(models)} models{' of ' + ', '.join(strategies) if strategies else ''}).</sub>", ""]
    cost = cost_text(study, models if strategies else None)
    if cost:
        lines += [cost, ""]
    lines += ["Mean over seeds ± half-width of the 95% t-interval of the mean; (ts): after temperature scaling; "
              "robust: mean over the degradation grid.", ""]
    difference_columns = [column for column in COLUMNS if column[0] in DIFFERENCE_COLUMNS]
    lines += _strategy_tables(models, baselines, COLUMNS, difference_columns, scalar_metrics)
    lines += _corruption_section(models, baselines)
    lines += _uncertainty_section(models, baselines)
    lines += _ood_section(models, baselines)
    return "\n".join(lines).rstrip("\n")


# <!-- results:<study> -->, <!-- results:<study> vs=hard,matched --> (the baselines of its difference tables),
# <!-- results:<study> vs=hard strategies=hard,im,ls --> (only these strategies, in this order)
BLOCK_START = re.compile(r"<!-- results:([\w.-]+)(?: vs=([\w.,-]+))?(?: strategies=([\w.,-]+))?( headline)? -->")
# a headline block: one small table, each strategy's top-1 and its paired differences to the first baseline
HEADLINE_COLUMNS = (("top1", "top-1", 100), ("nll (ts)", "NLL (ts)", 1), ("robust top1", "robust top-1", 100))


# <!-- gap:cpu_study,cpu_long contrasts=im:hard,mollify:hard_mollify --> ... <!-- /gap:cpu_study,cpu_long -->: each
# contrast a − b in each study and its change from the first study to the last (training length, say)
GAP_START = re.compile(r"<!-- gap:([\w.,-]+) contrasts=([\w.,:-]+) -->")
GAP_METRICS = (("top1", "Top-1 %", 100), ("nll", "NLL", 1), ("ece", "ECE", 1), ("robust top1", "Robust top-1 %", 100))


def gap_block(results_root: Path, studies: list[str], contrasts: list[tuple[str, str]]) -> str:
    from infomatch.evaluation.training_length import gap_markdown

    loaded = {}
    for name in studies:
        if not (results_root / name).is_dir():
            raise UserError(f"a gap block names the study {name!r} but {results_root / name} does not exist")
        loaded[name] = load_study(results_root / name)
    lines = [f"<sub>Rebuilt by `python -m infomatch.tasks.results tables` from "
             f"{', '.join(f'`{name}/`' for name in studies)} under docs/results.</sub>", ""]
    return "\n".join(lines + gap_markdown(loaded, contrasts, list(GAP_METRICS))).rstrip("\n")


def _rebuild_gap_blocks(text: str, page: Path, results_root: Path) -> str:
    for match in GAP_START.finditer(text):
        start, names = match.group(0), match.group(1)
        contrasts = [tuple(pair.split(":")) for pair in match.group(2).split(",")]
        if any(len(pair) != 2 for pair in contrasts):
            raise UserError(f"{page}, block {start}: contrasts are a:b pairs separated by commas")
        try:
            block = f"{start}\n{gap_block(results_root, names.split(','), contrasts)}\n<!-- /gap:{names} -->"
        except UserError as error:
            raise UserError(f"{page}, block {start}: {error}") from error
        pattern = re.compile(rf"{re.escape(start)}.*?<!-- /gap:{re.escape(names)} -->", re.S)
        if not pattern.search(text):
            raise UserError(f"{page}: the gap block {names!r} has no closing <!-- /gap:{names} --> line")
        text = pattern.sub(_literally(block), text)
    return text


def write_history_figures(results_root: Path) -> list[Path]:
    """``<study>/validation_top1.png`` for every study whose runs kept their per-epoch history."""
    from infomatch.evaluation.training_length import histories_by_strategy, history_figure

    written = []
    for study in sorted(path.parent.parent.parent for path in results_root.glob("*/runs/*/history.csv")):
        if study in written or not (study / "evaluations").is_dir():
            continue
        curves = histories_by_strategy(study, load_study(study))
        if curves:
            history_figure(curves, study / "validation_top1.png",
                           f"{study.name}: validation top-1 against epoch\nmean over seeds, band: lowest to highest")
            written.append(study)
    return [study / "validation_top1.png" for study in written]


STUDY_FOREST_KEYS = ("top1", "robust top1", "nll", "ece", "nll (ts)", "aurc", "aurc (norm)")


def write_forest_figures(results_root: Path, baseline: str = "hard") -> list[Path]:
    """``<study>/paired_differences_<baseline>.png``: every strategy's seed-paired difference to ``baseline`` with
    its 95% interval, for each study that has the baseline and another strategy."""
    from infomatch.evaluation import plots
    from infomatch.evaluation.compare import compare

    written = []
    for study in sorted(path.parent for path in results_root.glob("*/evaluations")):
        models = load_study(study)
        strategies = {model["strategy"] for model in models.values()}
        if baseline not in strategies or len(strategies) < 2:
            continue
        path = study / f"paired_differences_{baseline}.png"
        plots.forest(compare(models, baseline), path,
                     f"{study.name}: difference to {baseline}, 95% seed-paired interval (filled: excludes 0)",
                     STUDY_FOREST_KEYS, dpi=80)
        written.append(path)
    return written


def rebuild_readme(readme: Path, results_root: Path, baseline: str = "hard") -> list[str]:
    """Replace each results block of ``readme`` (``BLOCK_START`` ... ``<!-- /results:NAME -->``); returns the names.

    ``baseline`` serves the blocks that name no ``vs=`` baselines.
    """
    text = readme.read_text()
    rebuilt = []
    for match in BLOCK_START.finditer(readme.read_text()):
        name, start = match.group(1), match.group(0)
        baselines = match.group(2).split(",") if match.group(2) else [baseline]
        strategies = match.group(3).split(",") if match.group(3) else None
        study = results_root / name
        if not study.is_dir():
            raise UserError(f"{readme} has a results block for {name!r} but {study} does not exist")
        # named relative to the README, so the block reads the same whichever folder the command ran from
        shown_as = Path(os.path.relpath(study.resolve(), readme.resolve().parent)).as_posix()
        try:
            markdown = (headline_markdown(study, baselines[0], shown_as, strategies) if match.group(4)
                        else study_markdown(study, baselines, shown_as, strategies))
        except UserError as error:
            raise UserError(f"{readme}, block {start}: {error}") from error
        block = f"{start}\n{markdown}\n<!-- /results:{name} -->"
        pattern = re.compile(rf"{re.escape(start)}.*?<!-- /results:{re.escape(name)} -->", re.S)
        if not pattern.search(text):
            raise UserError(f"{readme}: the results block {name!r} has no closing <!-- /results:{name} --> line")
        text = pattern.sub(_literally(block), text)
        rebuilt.append(name)
    readme.write_text(_rebuild_gap_blocks(text, readme, results_root))
    return rebuilt


def command_line() -> argparse.ArgumentParser:
    from infomatch import __version__

    parser = argparse.ArgumentParser(prog="python -m infomatch.tasks.results", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"infomatch {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, help="what to do")
    gather = commands.add_parser("collect", help="copy a sweep's and an evaluation's small result files into a study")
    gather.add_argument("runs", type=Path, help="a sweep folder (outputs/multirun/<date>) or one run folder")
    gather.add_argument("evaluation", type=Path, help="the folder evaluate.py wrote for those runs")
    gather.add_argument("study", type=Path, help="docs/results/<study>")
    clean = commands.add_parser("clean", help="rewrite collected studies in place: no absolute paths, run folders "
                                               "named by what ran (no _session<k> suffix), references renamed")
    clean.add_argument("studies", type=Path, nargs="+", help="docs/results/<study> folders")
    clean.add_argument("--pages", type=Path, nargs="*", default=[*RESULT_PAGES],
                       help="markdown files whose references to renamed runs follow")
    page = commands.add_parser("report", help="write a study's page: report.html, report.md and their figures")
    page.add_argument("paths", type=Path, nargs="*",
                      help="a study folder (docs/results/<study>), or run, sweep and evaluation folders together; "
                           "out=<folder> (or --out) says where the page goes")
    page.add_argument("--out", type=Path, default=None,
                      help="default: <study>/report, or <evaluation folder>/report")
    page.add_argument("--all", action="store_true",
                      help="every study under --results into <study>/report, then the tables of --pages")
    page.add_argument("--results", type=Path, default=Path("docs/results"), help="the studies, for --all")
    page.add_argument("--pages", type=Path, nargs="+", default=RESULT_PAGES, help="markdown files, for --all")
    page.add_argument("--baseline", nargs="+", default=["hard"],
                      help="the strategies differences are taken to (--all: each study's results block's vs=)")
    tables = commands.add_parser("tables", help="rebuild the results blocks of README.md and docs/results.md")
    tables.add_argument("--pages", type=Path, nargs="+", default=RESULT_PAGES, help="markdown files to rebuild")
    tables.add_argument("--results", type=Path, default=Path("docs/results"),
                        help="the folder holding one subfolder per study")
    tables.add_argument("--baseline", default="hard",
                        help="the strategy the paired differences are taken to, in blocks that name no vs=...")
    return parser


def rebuild_tables(pages: list[Path], results_root: Path, baseline: str) -> None:
    """The ``tables`` command: every results block of ``pages`` and each study's figures."""
    for page in pages:
        names = rebuild_readme(page, results_root, baseline)
        print(f"rebuilt {len(names)} results blocks in {page}: {', '.join(names) or 'none'}")
    for figure in [*write_history_figures(results_root), *write_forest_figures(results_root, baseline)]:
        print(f"wrote {figure}")


# <!-- report:<study> vs=hard,matched -->: the baselines of the study's report page (report --all)
REPORT_MARK = re.compile(r"<!-- report:([\w.-]+) vs=([\w.,-]+) -->")


def block_baselines(pages: list[Path], study: str) -> list[str] | None:
    """The baselines of ``study``'s report: its ``REPORT_MARK`` in ``pages``, else the ``vs=`` of its first results
    block; None when neither names them."""
    texts = [page.read_text() for page in pages if page.is_file()]
    for pattern in (REPORT_MARK, BLOCK_START):  # both: group 1 the study, group 2 its baselines
        for text in texts:
            for match in pattern.finditer(text):
                if match.group(1) == study and match.group(2):
                    return match.group(2).split(",")
    return None


def reports(args: argparse.Namespace) -> list[Path]:
    """The ``report`` command: one study's page, or with ``--all`` every study's page and then the tables."""
    from infomatch.evaluation.study_report import report

    paths = [path for path in args.paths if not str(path).startswith("out=")]
    out = next((Path(str(path)[4:]) for path in args.paths if str(path).startswith("out=")), args.out)
    if not args.all:
        return list(report(paths, out, args.baseline, "infomatch-results report " + " ".join(map(str, args.paths))))
    written: list[Path] = []
    for study in sorted(path.parent for path in args.results.glob("*/evaluations")):
        baselines = block_baselines(args.pages, study.name) or args.baseline
        written += report([study], study / "report", baselines, "infomatch-results report --all")
    rebuild_tables(args.pages, args.results, args.baseline[0])
    return written


def main(argv: list[str] | None = None) -> None:
    args = command_line().parse_args(argv)
    try:
        if args.command == "collect":
            copied = collect(args.runs, args.evaluation, args.study)
            print(f"copied {len(copied)} files into {args.study}")
        elif args.command == "clean":
            for study in args.studies:
                rewritten, renames = clean_study(study)
                pages = [page for page in args.pages
                         if page.is_file() and rewrite_references(page, renames, portable=False)]
                print(f"{study}: rewrote {len(rewritten)} files, renamed {len(renames)} run folders"
                      f"{', updated ' + ', '.join(map(str, pages)) if pages else ''}")
        elif args.command == "report":
            for written in reports(args):
                print(f"wrote {written}")
        else:
            rebuild_tables(args.pages, args.results, args.baseline)
    except UserError as error:
        exit_with(error)


if __name__ == "__main__":
    main()
