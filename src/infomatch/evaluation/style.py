"""One look for every figure: readable ticks, a colour-blind-safe palette, one colour per strategy everywhere.

The palette is Okabe & Ito's (https://jfly.uni-koeln.de/color/), extended with three more distinguishable
colours; the label strategies this project ships keep a fixed colour, so ``im`` is the same vermillion in an
evaluation's plots, a study's report and the README figure.
"""

from __future__ import annotations

import itertools
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

PALETTE = ("#000000", "#D55E00", "#56B4E9", "#009E73", "#0072B2", "#CC79A7", "#E69F00", "#999999", "#B8A200",
           "#8C564B", "#7F3C8D", "#11A579")
# the shipped strategies (configs/labels) and the recipe-named variants the studies report, in PALETTE order
STRATEGY_ORDER = ("hard", "im", "ls", "matched", "schedule", "level", "mollify", "hard_mollify", "visibility",
                  "confidence", "im_mollify", "hard_soft_crop")
SEED_SUFFIX = re.compile(r"_seed\d+$")
RC_PARAMS = {"font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "xtick.labelsize": 9, "ytick.labelsize": 9,
             "legend.fontsize": 8, "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False,
             "axes.spines.right": False, "savefig.dpi": 100, "figure.dpi": 100}

plt.style.use(RC_PARAMS)


def strategy_of(name: str) -> str:
    """A model's strategy from its display name: ``im_seed2`` -> ``im``."""
    return SEED_SUFFIX.sub("", name)


def colors(names: list[str]) -> dict[str, str]:
    """A colour per name: a shipped strategy's own, others the free palette colours in order; names of one strategy
    (its seeds) share their strategy's colour only when no two names would otherwise look alike."""
    strategies = [strategy_of(name) for name in names]
    if len(set(strategies)) < len(strategies):  # several seeds of a strategy side by side: tell them apart
        return {name: PALETTE[index % len(PALETTE)] for index, name in enumerate(names)}
    fixed = {strategy: PALETTE[STRATEGY_ORDER.index(strategy)] for strategy in strategies if strategy in STRATEGY_ORDER}
    free = itertools.cycle([colour for colour in PALETTE if colour not in fixed.values()] or PALETTE)
    return {name: fixed[strategy] if strategy in fixed else next(free) for name, strategy in zip(names, strategies)}
