"""Evaluate checkpoints: python evaluate.py ckpt=path/to/checkpoint.ckpt  (or a run / sweep folder, or ckpt=[a,b])"""

import hydra
from omegaconf import DictConfig

from infomatch.runs.folders import register_resolvers

register_resolvers()


@hydra.main(version_base="1.3", config_path="configs", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    # imported once Hydra has parsed the command line, so mistakes in it are reported without waiting for torch
    from infomatch.runs.failures import run_recording_failures
    from infomatch.tasks.evaluate import evaluate
    from infomatch.utils.console import tidy_lightning_logging
    from infomatch.utils.errors import UserError

    tidy_lightning_logging()
    # a failure writes failed.json in the output folder; a user error (a setting, a file, a full or read-only
    # disk) exits 1 with its one paragraph
    run_recording_failures(evaluate, cfg, (UserError,))


if __name__ == "__main__":
    main()
