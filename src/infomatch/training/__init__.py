"""Training: the LightningModule, callbacks and loggers (framework), and the soft-target loss (library)."""

from infomatch.training.loss import soft_cross_entropy

__all__ = ["soft_cross_entropy"]
