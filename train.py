"""Train one model: python train.py labels=im augment=all  (sweep: python train.py -m labels=hard,ls,im seed=0,1,2)"""

import hydra
from omegaconf import DictConfig

from infomatch.tasks.train import train


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> float | None:
    metrics = train(cfg)
    return metrics.get("best_val_top1")


if __name__ == "__main__":
    main()
