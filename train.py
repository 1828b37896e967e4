"""Train one model: python train.py labels=im augment=all  (sweep: python train.py -m labels=hard,ls,im seed=0,1,2)

Resume an interrupted run with the same command plus resume=<run>/checkpoints/last.ckpt.
"""

import sys

import hydra
from omegaconf import DictConfig

from infomatch.run_folders import register_resolvers

register_resolvers()


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> float | None:
    # imported once Hydra has parsed the command line, so mistakes in it are reported without waiting for torch
    from infomatch.console import tidy_lightning_logging
    from infomatch.tasks.train import USER_ERRORS, train

    tidy_lightning_logging()
    try:
        metrics = train(cfg)
    except USER_ERRORS as error:
        # the message names the setting or file and the fix; a traceback would only bury it
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    return metrics.get("best_val_top1")


if __name__ == "__main__":
    main()
