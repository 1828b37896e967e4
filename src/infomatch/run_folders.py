"""Run folders that never collide: the OmegaConf resolvers used by configs/hydra/default.yaml.

A new run claims its folder with ``mkdir``, which is atomic, so two runs started in the same second
get ``<name>`` and ``<name>_2`` instead of sharing one. A resumed run continues in its own folder,
where Lightning keeps tracking its best checkpoint, and its Hydra files go to a new subfolder of
``.hydra/`` so the original config and overrides are kept.

Sweep jobs run by joblib or submitit in other processes get these resolvers with Hydra's singleton state and
the cached sweep folder with their config, so they land in the folder the launching process claimed.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from omegaconf import OmegaConf


def claim_new_dir(path: str) -> str:
    """Create and return ``path``, or ``path_2``, ``path_3``, ... when it is taken."""
    base = Path(path)
    base.parent.mkdir(parents=True, exist_ok=True)
    candidate, number = base, 1
    while True:
        try:
            candidate.mkdir()
            return str(candidate)
        except FileExistsError:
            number += 1
            candidate = base.with_name(f"{base.name}_{number}")


def resumed_run_dir(checkpoint: str | None) -> Path | None:
    """The run folder of an existing ``<run>/checkpoints/<name>.ckpt`` (the layout train.py writes), else None."""
    if not checkpoint:
        return None
    path = Path(str(checkpoint))
    if path.is_file() and path.parent.name == "checkpoints":
        return path.parent.parent
    return None


def run_dir(resume: str | None, new_dir: str) -> str:
    """The resumed run's own folder, or a newly claimed ``new_dir``."""
    resumed = resumed_run_dir(resume)
    return str(resumed) if resumed is not None else claim_new_dir(new_dir)


def hydra_subdir(output_dir: str) -> str:
    """``.hydra`` in a new folder; ``.hydra/<now>`` in one that already has it, so nothing there is overwritten."""
    if not (Path(output_dir) / ".hydra").exists():
        return ".hydra"
    claimed = claim_new_dir(str(Path(output_dir) / ".hydra" / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")))
    return str(Path(".hydra") / Path(claimed).name)


def register_resolvers() -> None:
    # cached, as Hydra's own ${now:}: every later lookup (and every job of a sweep) sees the same folder
    OmegaConf.register_new_resolver("infomatch.new_dir", claim_new_dir, use_cache=True, replace=True)
    OmegaConf.register_new_resolver("infomatch.run_dir", run_dir, use_cache=True, replace=True)
    OmegaConf.register_new_resolver("infomatch.hydra_subdir", hydra_subdir, use_cache=True, replace=True)
