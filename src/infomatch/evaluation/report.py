"""Write the results: metrics.json (everything), metrics.csv (one row per number), summary.md (tables), plots/."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from infomatch.augment import describe
from infomatch.evaluation import aggregate, clean, plots
from infomatch.evaluation.cifar100c import report as corruption_report
from infomatch.evaluation.tables import interval_text, markdown_table, number_text, stats_text
from infomatch.evaluation.uncertainty import OOD_SCORES, UNCERTAINTY_COLUMNS, uncertainty_scalars
from infomatch.utils.files import atomic_write


def _clean_columns() -> list[tuple[str, str, int]]:
    """(key, summary.md heading, scale) of each clean metric."""
    return [(metric.key, metric.heading, 100 if metric.percent else 1) for metric in clean.CLEAN_METRICS]


def write_csv(results: dict[str, Any], path: Path) -> None:
    """Long format: model, strategy, seed, analysis, degradation, level, metric, value."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["model", "strategy", "seed", "analysis", "degradation", "level", "metric", "value"])
        for name, model in results["models"].items():
            prefix = [name, model["strategy"], "" if model["seed"] is None else model["seed"]]
            for metric, value in model["clean"].items():
                writer.writerow([*prefix, "clean", "", "", metric, value])
            writer.writerow([*prefix, "temperature_scaling", "", "", "temperature", model["temperature"]])
            for metric, value in model["calibrated"].items():
                writer.writerow([*prefix, "temperature_scaling", "", "", metric, value])
            if "uncertainty" in model:
                for score, values in model["uncertainty"]["selective"].items():
                    writer.writerows([*prefix, "selective", score, "", metric, value]
                                     for metric, value in values.items())
                for analysis in ("calibration", "calibration_ts"):
                    writer.writerows([*prefix, analysis, "", "", metric, value]
                                     for metric, value in model["uncertainty"][analysis].items())
            for metric, curves in model["robustness_calibration"].items():
                for degradation, values in curves.items():
                    for level, value in zip(results["robustness"]["levels"], values):
                        writer.writerow([*prefix, "robustness", degradation, level, metric, value])
            for analysis, metric in (("robustness", "top1"), ("confidence", "true_class_probability")):
                for degradation, values in model[analysis].items():
                    for level, value in zip(results[analysis]["levels"], values):
                        writer.writerow([*prefix, analysis, degradation, level, metric, value])
        if "corruptions" in results:
            writer.writerows(corruption_report.csv_rows(results))


COMPARISON_COLUMNS = ("baseline", "strategy", "metric", "difference", "low", "high", "method", "n", "n_baseline",
                      "separated")


def write_comparisons_csv(rows: list[dict], path: Path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COMPARISON_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def verdict(row: dict) -> str:
    if row["low"] is None:
        return "no interval (one run)"
    return "separated" if row["separated"] else "not separated"


def summary_markdown(results: dict[str, Any], aggregated: bool) -> str:
    models, info = results["models"], results["evaluation"]
    lines = ["# Evaluation summary", "",
             f"- data: `{info['data']}`, {info['num_images']} test images"
             f"{' (first ' + str(info['subset']) + ')' if info['subset'] else ''}; ECE with {info['ece_bins']} bins",
             f"- degradation seed {info['seed']}; robustness levels {results['robustness']['levels']}",
             f"- confidence analysis: class {results['confidence']['class_index']} "
             f"({results['confidence']['class_name']}), {results['confidence']['num_images']} test images", "",
             "## Clean test set", ""]
    columns = _clean_columns()
    lines += markdown_table(["model", "strategy", "seed", *(label for _, label, _ in columns), "checkpoint"],
                    [[name, model["strategy"], "–" if model["seed"] is None else model["seed"],
                      *(number_text(model["clean"][key], scale) for key, _, scale in columns),
                      f"`{model['checkpoint']}`"] for name, model in models.items()])
    if aggregated:
        lines += ["## Per strategy, mean ± std over seeds", ""]
        lines += markdown_table(["strategy", "models", *(label for _, label, _ in columns)],
                        [[strategy, group["n"], *(stats_text(group["clean"][key], scale) for key, _, scale in columns)]
                         for strategy, group in results["aggregate"].items()])
    lines += _temperature_section(results)
    lines += _uncertainty_section(results)
    lines += _ood_section(results)
    lines += _post_hoc_section(results)
    if "comparisons" in results:
        lines += _comparison_section(results["comparisons"])
    types = list(next(iter(models.values()))["robustness"])
    levels = results["robustness"]["levels"]
    lines += ["## Robustness: top-1 % under degradation", "",
              "Mean over the levels " + ", ".join(map(str, levels)) + ":", ""]
    lines += markdown_table(["model", *types, "all types"],
                    [[name, *(f"{100 * np.mean(model['robustness'][degradation]):.2f}" for degradation in types),
                      f"{100 * np.mean(list(model['robustness'].values())):.2f}"] for name, model in models.items()])
    if aggregated:
        lines += ["Per strategy, mean ± std over seeds of the same level averages:", ""]
        level_averages = {
            strategy: aggregate.mean_std([{degradation: float(np.mean(models[name]["robustness"][degradation]))
                                           for degradation in types} for name in group["models"]])
            for strategy, group in results["aggregate"].items()}
        lines += markdown_table(["strategy", *types],
                        [[strategy, *(stats_text(averages[degradation], 100) for degradation in types)]
                         for strategy, averages in level_averages.items()])
    for degradation in types:
        lines += [f"### {describe(degradation, info['degradation'])}", ""]
        lines += markdown_table(["model", *(f"d = {level:g}" for level in levels)],
                        [[name, *(f"{100 * value:.2f}" for value in model["robustness"][degradation])]
                         for name, model in models.items()])
    lines += ["## Confidence: mean softmax probability of the true class, averaged over levels", ""]
    lines += markdown_table(["model", *types],
                    [[name, *(f"{np.mean(model['confidence'][degradation]):.3f}" for degradation in types)]
                     for name, model in models.items()])
    return "\n".join(lines)


def _before_after(before: float, after: float) -> str:
    return f"{before:.4f} → {after:.4f}"


def _temperature_section(results: dict[str, Any]) -> list[str]:
    scaling = results["temperature_scaling"]
    lines = ["## Temperature scaling", "",
             f"One temperature T per model minimises the NLL on the {scaling['num_images']} validation images "
             "(logits / T; T > 1 softens over-confident models, T < 1 sharpens under-confident ones). Before → after "
             "on the clean test set and averaged over the robustness grid; conf − acc > 0 is over-confidence.", ""]
    bounded = [name for name, model in results["models"].items() if model.get("temperature_at_bound")]
    if bounded:
        lines += [f"**Note**: the NLL of {', '.join(bounded)} kept falling beyond the temperature bound "
                  "(0.01 or 100; a near-chance model tends to the uniform prediction): their T is the bound.", ""]
    if scaling.get("fitted_on_training_images"):
        lines += [f"**Caution**: {', '.join(scaling['fitted_on_training_images'])} trained on these validation images "
                  "(data.validate_on_test=true, or another val_size/split_seed), so their T was fitted on training "
                  "images and their after-scaling numbers are optimistic.", ""]
    rows = []
    for name, model in results["models"].items():
        clean_before, clean_after = model["clean"], model["calibrated"]
        grid = {score: float(np.mean(list(curves.values())))
                for score, curves in model["robustness_calibration"].items()}
        rows.append([name, f"{model['temperature']:.3f}",
                     *(_before_after(clean_before[key], clean_after[key])
                       for key in ("nll", "ece", "brier", "confidence_gap", "adaptive_ece")),
                     _before_after(grid["nll"], grid["nll_ts"]), _before_after(grid["brier"], grid["brier_ts"])])
    lines += markdown_table(["model", "T", "NLL", "ECE", "Brier", "conf − acc", "adaptive ECE", "robust NLL",
                             "robust Brier"], rows)
    return lines


PERCENT_METRICS = ("top1", "top5", "robust top1")  # differences in percentage points, as the tables show them


def _uncertainty_section(results: dict[str, Any]) -> list[str]:
    models = results["models"]
    if "selective" not in results:
        return []
    settings = results["selective"]
    lines = ["## Selective classification and calibration beyond ECE", "",
             f"AURC / AUGRC: areas under the (generalized) risk-coverage curve with the max softmax probability, "
             f"(norm): of the logits divided by their {settings['norm_p']:g}-norm with their own temperature fitted "
             f"on the validation split (Xia et al., ICLR 2025); risk@cov: selective risk at "
             f"{settings['coverage']:.0%} coverage; cov@risk: the largest coverage at selective risk <= "
             f"{settings['risk']:.0%}; cw-ECE: classwise ECE, MCE: maximum calibration error, smECE: smooth ECE; "
             "(ts): after temperature scaling. Lower is better except cov@risk.", ""]
    lines += markdown_table(["model", *(heading for _, heading, _ in UNCERTAINTY_COLUMNS)],
                    [[name, *(number_text(uncertainty_scalars(model)[key], scale) for key, _, scale in
                              UNCERTAINTY_COLUMNS)] for name, model in models.items()])
    return lines


def _post_hoc_section(results: dict[str, Any]) -> list[str]:
    models = {name: model for name, model in results["models"].items() if "post_hoc" in model}
    if not models:
        return []
    lines = ["## Post-hoc scalers", "",
             "Each fitted on the validation split (matrix and Dirichlet with their ODIR strength chosen on its "
             "halves), "
             "scored on the test set: NLL, ECE, classwise ECE and AURC (MSP), before → after.", ""]
    methods = [method for method in next(iter(models.values()))["post_hoc"] if method != "before"]
    rows = []
    for name, model in models.items():
        before = model["post_hoc"]["before"]
        rows += [[name, method, *(_before_after(before[key], model["post_hoc"][method]["after"][key])
                                  for key in ("nll", "ece", "classwise_ece", "aurc"))] for method in methods]
    return lines + markdown_table(["model", "scaler", "NLL", "ECE", "classwise ECE", "AURC"], rows)


def _ood_section(results: dict[str, Any]) -> list[str]:
    if "ood" not in results:
        return []
    lines = ["## Out-of-distribution detection", "",
             "In-distribution: the evaluated test images; AUROC and FPR95 (share of OOD inputs accepted at the "
             "threshold keeping 95% of the in-distribution ones) with the max softmax probability (MSP), the max "
             "logit and the energy (logsumexp); every score and AUPR-in/out in metrics.json.", ""]
    headings = [f"{measure} {score}" for measure in ("AUROC", "FPR95") for score in ("MSP", "max logit", "energy")]
    for name, info in results["ood"].items():
        lines += [f"### {name}: {info['label']} ({info['num_images']} images)", ""]
        lines += markdown_table(["model", *headings],
                        [[model_name, *(number_text(model["ood"][name][score][measure])
                                        for measure in ("auroc", "fpr95") for score in OOD_SCORES)]
                         for model_name, model in results["models"].items()])
    return lines


def _difference_cells(row: dict) -> list[str]:
    scale = 100 if row["metric"] in PERCENT_METRICS else 1
    interval = "–" if row["low"] is None else interval_text(row["low"], row["high"], scale)
    return [row["strategy"], f"{row['metric']}{' (points)' if scale == 100 else ''}",
            number_text(row["difference"], scale, signed=True), interval]


def _comparison_section(comparisons: dict[str, Any]) -> list[str]:
    lines = []
    for baseline in comparisons["baselines"]:
        rows = [row for row in comparisons["rows"] if row["baseline"] == baseline]
        lines += [f"## Paired differences to {baseline} (strategy − {baseline})", ""]
        if all(row["low"] is None for row in rows):  # one run per strategy: differences of single numbers
            lines += [f"One run per strategy, so no intervals: see the tables above for the differences of single "
                      f"models; evaluate several seeds per strategy for {comparisons['level']:.0%} intervals.", ""]
            continue
        lines += [f"{comparisons['level']:.0%} confidence intervals: a t-interval on the differences paired on the "
                  "seeds both strategies have (n: pairs), Welch's interval when fewer pair. An interval that contains "
                  "0 is not separated from seed noise. Accuracies in percentage points; (ts): after temperature "
                  "scaling; robust: mean over the robustness grid.", ""]
        lines += markdown_table(["strategy", "metric", "difference", "95% CI", "method", "n", "verdict"],
                        [[*_difference_cells(row), row["method"], row["n"], verdict(row)] for row in rows])
    return lines


def _series(results: dict[str, Any], part: str, aggregated: bool) -> dict[str, dict]:
    """{series label: {type: {"mean", "std"}}} per strategy (aggregated) or per model (std None)."""
    if aggregated:
        return {f"{strategy}, n={group['n']}": group[part] for strategy, group in results["aggregate"].items()}
    return {name: {degradation: {"mean": values, "std": None} for degradation, values in model[part].items()}
            for name, model in results["models"].items()}


def write_plots(results: dict[str, Any], folder: Path, aggregated: bool) -> None:
    models, settings = results["models"], results["evaluation"]["degradation"]
    names = list(models)
    for name, model in models.items():
        plots.reliability_diagram(name, model["reliability"], model["clean"]["ece"], folder / f"reliability_{name}.png")

    title = f"Clean test set ({results['evaluation']['num_images']} images)"
    keys = [metric.key for metric in clean.CLEAN_METRICS]
    if aggregated:
        bars = {strategy: {key: {**group["clean"][key],
                                 "points": [models[name]["clean"][key] for name in group["models"]]}
                           for key in keys} for strategy, group in results["aggregate"].items()}
        title += "\nbars: mean ± std over seeds, dots: single models"
    else:
        bars = {name: {key: {"mean": model["clean"][key], "std": None, "points": []} for key in keys}
                for name, model in models.items()}
    panels = [(metric.key, metric.label, metric.percent) for metric in clean.CLEAN_METRICS]
    plots.clean_bars(bars, panels, folder / "clean_metrics.png", title)

    confidence = results["confidence"]
    class_note = f"class '{confidence['class_name']}' ({confidence['num_images']} test images)"
    curve_panels = (("robustness", "Top-1 accuracy (%)", True, "Top-1 accuracy under degradation",
                     f"{results['evaluation']['num_images']} test images"),
                    ("confidence", "Mean softmax probability of true class", False,
                     "True-class confidence under degradation", class_note))
    for part, ylabel, percent, heading, note in curve_panels:
        levels = results[part]["levels"]
        series = _series(results, part, aggregated)
        palette = plots.colors(list(series))
        for degradation in next(iter(models.values()))[part]:
            plots.curves(levels, {label: values[degradation] for label, values in series.items()},
                         folder / f"{part}_{degradation}.png", f"{describe(degradation, settings)}\n{note}", ylabel,
                         percent, palette)
        for name, model in models.items():
            per_type = {degradation: {"mean": values, "std": None} for degradation, values in model[part].items()}
            plots.curves(levels, per_type, folder / f"{part}_model_{name}.png", f"{heading}: {name}\n{note}", ylabel,
                         percent)

    if "selective" in results:
        curves = {name: model["uncertainty"]["risk_coverage"] for name, model in models.items()}
        plots.risk_coverage(curves, folder / "risk_coverage.png",
                            f"Selective risk against coverage ({results['evaluation']['num_images']} test images)")
    for name in results.get("ood", {}):
        for model_name, model in models.items():
            plots.score_histograms(model["ood_histograms"][name], folder / f"ood_{name}_{model_name}.png",
                                   f"{model_name}: test images vs {name}", "Max softmax probability")
    if "comparisons" in results:
        comparisons = results["comparisons"]
        for baseline in comparisons["baselines"]:
            plots.forest([row for row in comparisons["rows"] if row["baseline"] == baseline],
                         folder / f"paired_differences_{baseline}.png",
                         f"Difference to {baseline}, {comparisons['level']:.0%} CI (filled: separated from 0)")

    degradation = confidence["heatmap_type"]
    values = np.array([models[name]["confidence"][degradation] for name in names]).T
    plots.heatmap(confidence["levels"], names, values, folder / f"confidence_heatmap_{degradation}.png",
                  f"{describe(degradation, settings)}\n{class_note}", "Mean softmax probability of true class")


def write_all(results: dict[str, Any], folder: Path, aggregated: bool, make_plots: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / "metrics.json", lambda handle: handle.write(json.dumps(results, indent=2).encode()))
    write_csv(results, folder / "metrics.csv")
    if "comparisons" in results:
        write_comparisons_csv(results["comparisons"]["rows"], folder / "comparisons.csv")
    summary = summary_markdown(results, aggregated)
    if "corruptions" in results:
        summary += "\n" + corruption_report.markdown(results, aggregated)
    (folder / "summary.md").write_text(summary)
    if make_plots:
        write_plots(results, folder / "plots", aggregated)
        if "corruptions" in results:
            corruption_report.write_plots(results, folder / "plots", aggregated)
