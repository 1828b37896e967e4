"""One page per study: what was run, the tables with 95% intervals and the figures, rebuilt from the study's files.

``write_report`` writes ``report.md`` (the figures beside it in ``figures/``, so it renders on a code host) and
``report.html``, the same content as a static page that reads the same figures: no script, nothing fetched.
"""

from __future__ import annotations

import html
import json
import os
import re
from pathlib import Path
from typing import Any

import yaml

from infomatch.evaluation import study_figures
from infomatch.evaluation.tables import markdown_table
from infomatch.utils.errors import UserError
from infomatch.utils.overrides import flatten_config

# settings that differ between runs without making them different experiments, and the label strategy's own
# (the strategy column names it)
NOT_RECIPE = re.compile(r"^(labels|seed|run_name|paths|hydra|task_name|resume|data\.root|data\.download|logger|"
                        r"callbacks|trainer\.(devices|accelerator|precision|num_nodes|strategy)|speed)(\.|$)")
STYLE = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;"
         "line-height:1.45}table{border-collapse:collapse;margin:.6em 0;font-size:.85em}"
         "th,td{border:1px solid #ccc;padding:.2em .5em;text-align:right}"
         "th:first-child,td:first-child{text-align:left}th{background:#f3f3f3}img{max-width:100%}"
         "figure{margin:1.2em 0}code{background:#f4f4f4;padding:0 .2em}")
LINK = re.compile(r"(?<!!)\[([^\]]+)\]\(([^)\s]+)\)")  # [text](target), not an image


def what_was_run(study: Path, models: dict[str, dict[str, Any]]) -> list[str]:
    """Markdown: per strategy its seeds, the settings that set its runs apart from the others', where they ran."""
    from infomatch.tasks.results import _run_folder_name, machine_label

    names_by_strategy: dict[str, list[str]] = {}
    configs, machines = {}, {}
    for name, model in models.items():
        names_by_strategy.setdefault(model["strategy"], []).append(name)
        folder = study / "runs" / _run_folder_name(model)
        if (folder / "config.yaml").is_file():
            configs[name] = flatten_config(yaml.safe_load((folder / "config.yaml").read_text()) or {})
        if (folder / "metrics.json").is_file():
            machines[name] = json.loads((folder / "metrics.json").read_text())
    keys = sorted({key for config in configs.values() for key in config if not NOT_RECIPE.match(key)})
    differing = [key for key in keys if len({json.dumps(config.get(key), sort_keys=True)
                                             for config in configs.values()}) > 1]
    rows = []
    for strategy, names in names_by_strategy.items():
        seeds = ", ".join(str(models[name]["seed"]) for name in names)
        settings = "; ".join(
            f"{key}={'/'.join(sorted({str(configs[name].get(key)) for name in names if name in configs}))}"
            for key in differing if any(name in configs for name in names))
        where = sorted({machine_label(run["machine"]) for name in names
                        if (run := machines.get(name)) and "machine" in run})
        fit = [machines[name]["fit_seconds"] / 60 for name in names if "fit_seconds" in machines.get(name, {})]
        rows.append([strategy, seeds, settings or "(shared)", "; ".join(where) or "not recorded",
                     f"{sum(fit) / len(fit):.1f}" if fit else ""])
    lines = ["Each strategy's seeds, the training settings that differ between the study's runs (all others are "
             "shared), and where they ran. Fit: mean minutes of training per run.", ""]
    lines += markdown_table(["strategy", "seeds", "differing settings", "machine, precision", "fit min"], rows)
    return lines


def figure_blocks(study: Path, models: dict[str, dict[str, Any]], baselines: list[str],
                  folder: Path) -> list[tuple[str, str, str]]:
    """(heading, file name in ``folder``, caption) of every figure the study's files allow, each drawn."""
    from infomatch.evaluation import plots
    from infomatch.evaluation.compare import compare
    from infomatch.evaluation.training_length import histories_by_strategy, history_figure

    drawn = []
    strategies = {model["strategy"] for model in models.values()}
    for baseline in baselines:
        if baseline in strategies and len(strategies) > 1:
            name = f"paired_differences_{baseline}.png"
            plots.forest(compare(models, baseline), folder / name,
                         f"difference to {baseline}, 95% seed-paired interval (filled: excludes 0)", dpi=70)
            drawn.append((f"Paired differences to {baseline}", name,
                          f"Each strategy minus {baseline} on the same seeds: the dot is the mean difference, the "
                          "bar its 95% t-interval (none with one seed); a filled dot's interval excludes 0."))
    curves = histories_by_strategy(study, models)
    if curves:
        history_figure(curves, folder / "validation_top1.png", "Validation top-1 against epoch")
        drawn.append(("Training", "validation_top1.png",
                      "Validation top-1 after each epoch from the runs' logs: mean over seeds, band from the lowest "
                      "to the highest seed."))
    study_figures.reliability_figure(models, folder / "reliability.png")
    drawn.append(("Calibration", "reliability.png",
                  "Accuracy per confidence bin, pooled over seeds, before (bars) and after (orange) temperature "
                  "scaling where the evaluation stored it; below, the images per bin on a log scale."))
    levels = _robustness_levels(study)
    study_figures.degradation_figure(models, levels, folder / "degradation_grid.png")
    drawn.append(("Robustness", "degradation_grid.png",
                  "Top-1 on the test set degraded at each level of each training degradation type."))
    if study_figures.corruption_figure(models, baselines[0], folder / "corruptions.png"):
        drawn.append(("Robustness", "corruptions.png",
                      f"Top-1 on each corrupted test set and severity minus {baselines[0]}'s on the same seed; "
                      "purple: better than the baseline, orange: worse."))
    if study_figures.ood_figure(models, folder / "ood_histograms.png"):
        drawn.append(("Out-of-distribution inputs", "ood_histograms.png",
                      "Max-softmax confidence of test images and of out-of-distribution images: the less they "
                      "overlap, the better the score separates them."))
    return drawn


def _robustness_levels(study: Path) -> list[float]:
    first = sorted((study / "evaluations").glob("*/metrics.json"))[0]
    return json.loads(first.read_text())["robustness"]["levels"]


def write_report(study: Path, out: Path, baselines: list[str], command: str) -> tuple[Path, Path]:
    """Write ``out/report.md`` (figures in ``out/figures``) and ``out/report.html``; returns both paths."""
    from infomatch.tasks.results import load_study, study_markdown

    models = load_study(study)
    baselines = [baseline for baseline in baselines if any(m["strategy"] == baseline for m in models.values())] \
        or [next(iter(models.values()))["strategy"]]
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    lines = [f"# {study.name}", "",
             f"<sub>Rebuilt by `{command}` from the files of `{study.name}` ({len(models)} models).</sub>", "",
             "## What was run", "", *what_was_run(study, models), "",
             "## Results", "", _without_rebuilt_line(study_markdown(study, baselines, shown_as=study.name)), ""]
    heading = None
    for section, name, caption in figure_blocks(study, models, baselines, figures):
        if section != heading:
            lines += [f"## {section}", ""]
            heading = section
        lines += [f"![{caption}](figures/{name})", "", f"*{caption}*", ""]
    markdown = _links_from(out, "\n".join(lines))
    (out / "report.md").write_text(markdown)
    (out / "report.html").write_text(markdown_to_html(markdown, study.name))
    return out / "report.md", out / "report.html"


def _links_from(out: Path, markdown: str) -> str:
    """The tables' links to docs pages (``evaluation.md#...``, relative to docs/) made relative to ``out`` where
    ``out`` lies inside a docs folder, else left as plain text: a report written elsewhere has no docs beside it."""
    docs = next((folder for folder in out.resolve().parents if folder.name == "docs"), None)

    def relink(match: re.Match) -> str:
        text, target = match.group(1), match.group(2)
        if re.match(r"\w+://", target) or target.startswith(("figures/", "#")):
            return match.group(0)
        if docs is not None and (docs / target.split("#")[0]).is_file():
            return f"[{text}]({os.path.relpath(docs / target, out.resolve())})"
        return text

    return LINK.sub(relink, markdown)


def _without_rebuilt_line(markdown: str) -> str:
    """The tables without their own provenance line (it names the ``tables`` command; the page names its own)."""
    return "\n".join(line for line in markdown.splitlines() if not line.startswith("<sub>Rebuilt by")).strip()


def _inline(text: str) -> str:
    text = html.escape(text, quote=False)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    text = LINK.sub(r'<a href="\2">\1</a>', text)
    text = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)
    text = re.sub(r"(?<![\w*])\*([^*]+)\*(?![\w*])", r"<em>\1</em>", text)
    return re.sub(r"&lt;(/?)sub&gt;", r"<\1sub>", text)


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def markdown_to_html(markdown: str, title: str) -> str:
    """The report's markdown (headings, paragraphs, pipe tables, images) as one static HTML page; images keep their
    relative paths, so the page reads the figures beside it, offline."""
    body: list[str] = []
    blocks = re.split(r"\n\s*\n", markdown.strip())
    for block in blocks:
        lines = block.splitlines()
        if block.startswith("#"):
            level = len(block) - len(block.lstrip("#"))
            body.append(f"<h{level}>{_inline(block.lstrip('#').strip())}</h{level}>")
        elif (image := re.fullmatch(r"!\[(.*)\]\((.+)\)", block.strip())) is not None:
            body.append(f'<figure><img alt="{html.escape(image.group(1))}" src="{html.escape(image.group(2))}">'
                        "</figure>")
        elif all(line.startswith("|") for line in lines) and len(lines) >= 2:
            head, *rows = [_cells(line) for line in lines[:1] + lines[2:]]
            body.append("<table><thead><tr>" + "".join(f"<th>{_inline(cell)}</th>" for cell in head) +
                        "</tr></thead><tbody>" + "".join("<tr>" + "".join(f"<td>{_inline(cell)}</td>" for cell in row)
                                                         + "</tr>" for row in rows) + "</tbody></table>")
        else:
            body.append(f"<p>{_inline(' '.join(lines))}</p>")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{STYLE}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n")


def _is_evaluation(folder: Path) -> bool:
    file = folder / "metrics.json"
    return file.is_file() and "models" in json.loads(file.read_text())


def stage_study(paths: list[Path], study: Path) -> Path:
    """Gather run, sweep and evaluation folders into ``study``, laid out like docs/results/<study> (collect's
    copies); without run folders, the evaluated checkpoints' run folders where they still are."""
    from infomatch.tasks.results import _run_folders, collect_evaluation, collect_runs

    evaluations = [path for path in paths if _is_evaluation(path)]
    if not evaluations:
        raise UserError(f"no evaluation among {', '.join(map(str, paths))}: a report needs one; evaluate first "
                        "(python evaluate.py ckpt=<run or sweep folder>) and pass its folder (outputs/eval/<date>) "
                        "with the runs")
    runs = [folder for path in paths if path not in evaluations for folder in _run_folders(path)]
    if not runs:
        checkpoints = [Path(model["checkpoint"]) for evaluation in evaluations
                       for model in json.loads((evaluation / "metrics.json").read_text())["models"].values()]
        runs = sorted({path.parent.parent for path in checkpoints
                       if (path.parent.parent / ".hydra" / "config.yaml").is_file()})
    for evaluation in evaluations:
        collect_evaluation(evaluation, study)
    collect_runs(runs, study)
    return study


def report(paths: list[Path], out: Path | None, baselines: list[str], command: str) -> tuple[Path, Path]:
    """The report of one study folder, or of run, sweep and evaluation folders gathered into ``out``."""
    if len(paths) == 1 and (paths[0] / "evaluations").is_dir():
        return write_report(paths[0], out or paths[0] / "report", baselines, command)
    missing = [path for path in paths if not path.is_dir()]
    if missing or not paths:
        raise UserError(f"no such folder: {', '.join(map(str, missing))}" if missing else
                        "name a study folder (docs/results/<study>) or run, sweep and evaluation folders")
    evaluation = next((path for path in paths if _is_evaluation(path)), paths[0])
    out = out or evaluation / "report"
    return write_report(stage_study(paths, out / evaluation.name), out, baselines, command)
