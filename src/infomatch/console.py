"""Console output of the entry points: each Lightning message once, and none of its advertising tips."""

from __future__ import annotations

import logging

LIGHTNING_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric")


def _not_a_tip(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("💡 Tip")


def tidy_lightning_logging() -> None:
    """Leave Lightning's messages to the root logger's handlers (Hydra's, which also write the run's log file).

    Importing lightning adds a console handler of its own to the ``lightning`` logger while the messages
    still propagate to the root logger, so every message was printed twice.
    """
    import lightning  # noqa: F401  (adds the handlers removed below)

    if logging.getLogger().handlers:
        for name in LIGHTNING_LOGGERS:
            logger = logging.getLogger(name)
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
            logger.propagate = True
    # the tips are logged by rank_zero_info, from this logger
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_not_a_tip)
