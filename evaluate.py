"""Evaluate checkpoints: python evaluate.py ckpt=path/to/checkpoint.ckpt  (or a run / sweep folder, or ckpt=[a,b])

Installed, the same command is ``infomatch-evaluate``.
"""

from infomatch.tasks.cli import evaluate

if __name__ == "__main__":
    evaluate()
