"""Train one model: python train.py labels=im augment=all  (sweep: python train.py -m labels=hard,ls,im seed=0,1,2)

Resume an interrupted run with the same command plus resume=<run>/checkpoints/last.ckpt.
"""

import warnings

import hydra
from omegaconf import DictConfig

from infomatch.runs.folders import register_resolvers

register_resolvers()
# configs/hydra/launcher/joblib.yaml has the name of the joblib plugin's schema, so Hydra checks it against that
# schema and warns that this matching is deprecated; the file is complete on its own, so there is nothing to fix
warnings.filterwarnings("ignore", message=r"\s*'hydra/launcher/joblib' is validated against ConfigStore schema")


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> float | None:
    # imported once Hydra has parsed the command line, so mistakes in it are reported without waiting for torch
    from infomatch.runs.failures import run_recording_failures
    from infomatch.tasks.train import USER_ERRORS, train
    from infomatch.utils.console import tidy_lightning_logging

    tidy_lightning_logging()
    # a failure writes failed.json in the run folder; a single run then exits 1, and a sweep job returns None
    # (no objective: the Optuna sweeper records a failed trial) so that its siblings go on
    metrics = run_recording_failures(train, cfg, USER_ERRORS)
    return None if metrics is None else metrics.get("best_val_top1")


if __name__ == "__main__":
    main()
