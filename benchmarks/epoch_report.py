"""Seconds per epoch of a train.py run folder, and the GPU's utilisation while it trained.

    python benchmarks/epoch_report.py <run folder> [<nvidia-smi utilisation samples>] [--name label] [--json out.json]

Epoch seconds come from the run's ``time/epoch_s`` (validation included); the steady figure is the median
of the epochs after the first (which includes cuDNN autotuning). The utilisation samples are the output of
``nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits -lms 100`` during the run; their mean
is taken from the first to the last busy sample, so the idle start-up does not dilute it.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from pathlib import Path


def epoch_seconds(run: Path) -> list[float]:
    with open(run / "csv" / "metrics.csv", newline="") as handle:
        return [float(row["time/epoch_s"]) for row in csv.DictReader(handle) if row.get("time/epoch_s")]


def busy_percent(samples: Path) -> float | None:
    """Mean utilisation from the first to the last sample above 0 (idle start-up and exit left out)."""
    values = [float(line) for line in samples.read_text().split() if line.strip().isdigit()]
    active = [index for index, value in enumerate(values) if value > 0]
    return statistics.mean(values[active[0]:active[-1] + 1]) if active else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("samples", type=Path, nargs="?")
    parser.add_argument("--name", default="")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    seconds = epoch_seconds(args.run)
    steady = statistics.median(seconds[1:]) if len(seconds) > 1 else seconds[0]
    busy = busy_percent(args.samples) if args.samples else None
    report = {"name": args.name, "epoch_seconds": seconds, "steady_epoch_seconds": steady,
              "projected_100_epochs_min": 100 * steady / 60, "gpu_busy_percent": busy}
    print(f"{args.name}: seconds per epoch {', '.join(f'{s:.2f}' for s in seconds)}; steady {steady:.2f} s "
          f"-> 100 epochs {100 * steady / 60:.1f} min; GPU busy while training: "
          f"{'n/a' if busy is None else f'{busy:.0f}%'}")
    if args.json:
        args.json.write_text(json.dumps(report))


if __name__ == "__main__":
    main()
