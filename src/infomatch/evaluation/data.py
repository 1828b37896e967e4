"""The evaluation data: the data settings each model was trained with, read from its checkpoint.

The command line changes only the data settings it names (typically ``data.root``, where this machine keeps the
data set); models trained on different data sets are refused, since their metrics would not be comparable.
"""

from __future__ import annotations

from typing import Any, cast

from omegaconf import DictConfig, OmegaConf

from infomatch.evaluation.checkpoints import LoadedModel
from infomatch.utils.errors import EvaluationError
from infomatch.utils.overrides import override_keys

# settings of how a run trained or where a machine keeps the data, not of which images a data set holds
NOT_THE_DATA_SET = ("root", "download", "on_device", "batch_size", "eval_batch_size", "shuffle_seed", "train_limit",
                    "validate_on_test", "val_size", "split_seed")


def named_data_settings(overrides: list[str]) -> set[str]:
    """The data settings a command line names: ``data`` for the group itself (data=synthetic), else the keys
    after ``data.`` (data.root=..., +data.x=..., ~data.x)."""
    named = set()
    for key in override_keys(overrides):
        if key == "data":
            named.add("data")
        elif key.startswith("data."):
            named.add(key.removeprefix("data.").split(".", 1)[0])
    return named


def _data_set(settings: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in settings.items() if key not in NOT_THE_DATA_SET}


def _check_one_data_set(models: list[LoadedModel]) -> None:
    trained = [(model, _data_set(model.data)) for model in models if model.data is not None]
    first = trained[0][1]
    others = [(model, data) for model, data in trained[1:] if data != first]
    if others:
        described = "; ".join(f"{model.name} ({model.path}): {data}" for model, data in [trained[0], *others])
        raise EvaluationError(f"these models were trained on different data sets, so one evaluation cannot compare "
                              f"them: {described}. Evaluate each data set's models in a call of its own.")


def evaluation_data_config(data_cfg: DictConfig, models: list[LoadedModel], named: set[str] | None) -> dict[str, Any]:
    """The data settings to evaluate ``models`` with: those stored in their checkpoints, with the settings the
    command line names (``named``) taken from ``data_cfg``. With no stored settings (reference state dicts) or no
    command line to read (``named`` None: called from Python), ``data_cfg`` as it is."""
    given = cast(dict[str, Any], OmegaConf.to_container(data_cfg, resolve=True))  # the data group is a mapping
    if named is None or all(model.data is None for model in models):
        return given
    _check_one_data_set(models)
    stored = next(model.data for model in models if model.data is not None)
    if "data" in named and given["_target_"] != stored["_target_"]:
        raise EvaluationError(f"the models were trained on {stored['_target_']} but the command line asks for "
                              f"{given['_target_']}; leave out the data= choice (the checkpoints say which data set) "
                              "or evaluate models trained on that data set")
    chosen = {**stored, **{key: given[key] for key in named if key in given}}
    chosen["eval_batch_size"] = given.get("eval_batch_size", chosen.get("eval_batch_size"))  # this machine's memory
    return chosen

