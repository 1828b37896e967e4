"""Evaluate checkpoints: python evaluate.py ckpt=path/to/checkpoint.ckpt  (or a run / sweep folder, or ckpt=[a,b])"""

import sys

import hydra
from omegaconf import DictConfig

from infomatch.run_folders import register_resolvers

register_resolvers()


@hydra.main(version_base="1.3", config_path="configs", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    # imported once Hydra has parsed the command line, so mistakes in it are reported without waiting for torch
    from infomatch.console import tidy_lightning_logging
    from infomatch.errors import UserError
    from infomatch.tasks.evaluate import evaluate

    tidy_lightning_logging()
    try:
        evaluate(cfg)
    except UserError as error:
        # the message names the file or setting and the fix; a traceback would only bury it
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
