"""Train one model: python train.py labels=im augment=all  (sweep: python train.py -m labels=hard,ls,im seed=0,1,2)

Resume an interrupted run with the same command plus resume=<run>/checkpoints/last.ckpt. Installed, the same
command is ``infomatch-train``.
"""

from infomatch.tasks.cli import train

if __name__ == "__main__":
    train()
