"""Console output of the entry points: each Lightning message once, and none of its advertising tips."""

from __future__ import annotations

import logging

LIGHTNING_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric")


def _not_a_tip(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("💡 Tip")


def tidy_lightning_logging() -> None:
    """Leave Lightning's messages to the root logger's handlers (Hydra's, which also write the run's log file).

    Importing lightning adds a console handler of its own to the ``lightning`` logger while the messages
    still propagate to the root logger, so every message was printed twice.
    """
    import lightning  # noqa: F401  (adds the handlers removed below)

    if logging.getLogger().handlers:
        for name in LIGHTNING_LOGGERS:
            logger = logging.getLogger(name)
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
            logger.propagate = True
    # the tips are logged by rank_zero_info, from this logger
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_not_a_tip)
    quiet_known_noise()


# Lightning and PyTorch messages that say nothing about the user's run, matched by message (never by category,
# so a new warning still shows): the pytree deprecation inside Lightning, the model summary's bf16 note (the
# summary is replaced by run_header), and the logging-interval note of runs shorter than one logging interval
KNOWN_NOISE = (
    r".*isinstance\(treespec, LeafSpec\)",
    r"Precision .* is not supported by the model summary",
    r"The number of training batches \(\d+\) is smaller than the logging interval",
)


def quiet_known_noise() -> None:
    import warnings

    for message in KNOWN_NOISE:
        warnings.filterwarnings("ignore", message=message)


def duration_text(seconds: float) -> str:
    """A duration as a person reads it: 42 s, 12.5 min, 3.4 h, 2.9 days."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def parameter_text(count: int) -> str:
    return f"{count / 1e6:.2f} M" if count >= 1e6 else f"{count / 1e3:.0f} K"


def run_header(choices: dict[str, str], settings: dict[str, object], parameters: int, output_dir: str) -> str:
    """The block a run prints at start: its config group choices, the key settings, the model size, the run folder."""
    groups = " ".join(f"{group}={option}" for group, option in choices.items())
    values = ", ".join(f"{key} {value}" for key, value in settings.items())
    return f"{groups}\n  {values}, {parameter_text(parameters)} parameters\n  run folder: {output_dir}"


def run_footer(results: dict, output_dir: str) -> str:
    """The closing block: test (else validation) top-1, NLL and ECE in 4 significant digits, and what to run next."""
    split = "test" if results.get("test") else "val"
    metrics = results.get(split) or {}
    shown = ", ".join(f"{label} {metrics[f'{split}/{key}'] * scale:.4g}{unit}"
                      for key, label, scale, unit in (("top1", "top-1", 100, "%"), ("nll", "NLL", 1, ""),
                                                      ("ece", "ECE", 1, ""))
                      if f"{split}/{key}" in metrics)
    epochs = results.get("epochs", "?")
    return (f"finished {epochs} epoch{'' if epochs == 1 else 's'} in {duration_text(results.get('fit_seconds', 0))}; "
            f"{split} ({'best checkpoint' if split == 'test' else 'last epoch'}): {shown}\n"
            f"  run folder: {output_dir}\n"
            f"  next: python evaluate.py ckpt={output_dir}")


def sweep_summary(sweep_dir) -> str:
    """The table a sweep ends with: each job folder's status, best validation top-1 and name, then what to run next."""
    import json
    from pathlib import Path

    if not Path(sweep_dir).is_dir():
        return f"sweep {sweep_dir}: no job folders"
    rows = []
    for folder in sorted((path for path in Path(sweep_dir).iterdir() if path.is_dir()),
                         key=lambda path: (int(path.name.split("_", 1)[0]) if path.name.split("_", 1)[0].isdigit()
                                           else -1, path.name)):
        metrics, failed = folder / "metrics.json", folder / "failed.json"
        if failed.is_file():
            status, top1 = "failed", "–"
        elif metrics.is_file():
            best = json.loads(metrics.read_text()).get("best_val_top1")
            status, top1 = "finished", "–" if best is None else f"{100 * best:.2f}"
        else:
            status, top1 = "unfinished", "–"
        rows.append((status, top1, folder.name))
    if not rows:
        return f"sweep {sweep_dir}: no job folders"
    width = max(len(name) for _, _, name in rows)
    lines = [f"sweep {sweep_dir}: {sum(status == 'finished' for status, _, _ in rows)} of {len(rows)} jobs finished",
             f"  {'status':<10}  {'val top-1 %':>11}  {'job':<{width}}"]
    lines += [f"  {status:<10}  {top1:>11}  {name:<{width}}" for status, top1, name in rows]
    lines.append(f"  next: python evaluate.py ckpt={sweep_dir}   "
                 "(it ends with the command that writes the sweep's report)")
    return "\n".join(lines)


def progress(items, desc: str, unit: str, **options):
    """``items`` with a tqdm bar on a terminal; where stderr is a file (nohup, SLURM, CI) no bar, whose carriage
    returns would fill the log, but one line when the stage is done, with its count and time."""
    import sys
    import time

    from tqdm.auto import tqdm

    if sys.stderr.isatty():
        yield from tqdm(items, desc=desc, unit=unit, **options)
        return
    started, count = time.perf_counter(), 0
    for item in items:
        count += 1
        yield item
    logging.getLogger("infomatch").info("%s: %d %s%s in %.0f s", desc, count, unit, "" if count == 1 else "s",
                                        time.perf_counter() - started)
