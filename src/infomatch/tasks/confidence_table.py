"""labels=confidence's table from a reference model, once, as a small JSON file that later runs read with
``labels.table=<file>`` instead of the checkpoint (which need not be kept).

    python -m infomatch.tasks.confidence_table <reference.ckpt> <table.json> [train overrides ...]
    python -m infomatch.tasks.confidence_table outputs/runs/cpu_study_hard_seed3/checkpoints/best_epoch007.ckpt \\
        docs/results/cpu_study/confidence_table.json experiment=cpu_study data.root=<cifar> data.download=false

The overrides are those of the runs that will use the table (data set, degradations, ``estimation.*``,
``labels.levels``): the estimate is the one train.py makes before training with ``labels.reference=<ckpt>``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from infomatch.utils.errors import UserError, exit_with


def estimate(checkpoint: Path, overrides: list[str]) -> dict:
    """The table train.py would estimate for ``labels=confidence labels.reference=<checkpoint>`` and ``overrides``,
    with what it was made from."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.utils import instantiate

    from infomatch.runs.validation import validate_train_config
    from infomatch.tasks.train import build_datamodule, fit_label_strategy

    asked = [*overrides, "labels=confidence", f"labels.reference={checkpoint}", "labels.table=null"]
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="infomatch.configs", version_base="1.3"):
        cfg = compose("train", overrides=asked)
    validate_train_config(cfg)
    datamodule = build_datamodule(cfg)
    datamodule.prepare_data()
    estimates = fit_label_strategy(instantiate(cfg.labels), datamodule, cfg.estimation.images, cfg.estimation.seed)
    return {**estimates, "reference": str(checkpoint), "overrides": list(overrides),
            "estimation": {"images": cfg.estimation.images, "seed": cfg.estimation.seed}}


def command_line() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m infomatch.tasks.confidence_table",
                                     description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("checkpoint", type=Path, help="the reference model: a training checkpoint of this project")
    parser.add_argument("out", type=Path, help="the JSON file to write (labels.table=<it> reads it)")
    parser.add_argument("overrides", nargs="*", help="train.py overrides of the runs that will use the table")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = command_line().parse_args(argv)
    from hydra.errors import HydraException

    try:
        table = estimate(args.checkpoint, args.overrides)
    except (UserError, HydraException) as error:  # a bad override or setting, a missing file: the message only
        exit_with(error)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(table, indent=2) + "\n")
    print(f"wrote {args.out}: labels=confidence labels.table={args.out}")


if __name__ == "__main__":
    main()
