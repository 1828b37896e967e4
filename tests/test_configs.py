"""Every option of every config group composes and instantiates into the object it names."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from conftest import CONFIGS, ROOT, compose_config
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import get_class, instantiate
from omegaconf import OmegaConf, open_dict

import infomatch.tasks.train
from infomatch.augment import REFERENCE_DEGRADATIONS, Degrader
from infomatch.base_augment import POLICIES, BaseAugment
from infomatch.data import InMemoryDataModule
from infomatch.runs.validation import validate_train_config
from infomatch.tasks.train import (
    LOGGER_PACKAGES,
    build_callbacks,
    build_loggers,
    lightning_trainer_config,
    resolve_precision,
)
from infomatch.utils.precision import cpu_has_native_bf16, cpu_model_name


def options(group: str) -> list[str]:
    """The group's choices: every file in its folder (settings that choices share live in configs/shared/)."""
    return sorted(path.stem for path in (CONFIGS / group).glob("*.yaml"))


def test_hydra_lists_only_real_choices_when_an_option_is_wrong(make_config):
    # a shared base in a group's folder would be offered as a choice in Hydra's "Available options"
    with pytest.raises(Exception, match="Could not find 'labels/nope'") as raised:
        make_config("labels=nope")
    listed = [line.strip() for line in str(raised.value).split("Available options in 'labels':")[1].splitlines()
              if line.startswith("\t") and "=" not in line]
    assert listed == options("labels") and not any(name.startswith("_") for name in listed)


@pytest.mark.parametrize("option", options("labels"))
def test_labels_options(make_config, option):
    # confidence has no default reference model: the user names one
    needed = {"confidence": ["labels.reference=reference.ckpt"]}.get(option, [])
    strategy = instantiate(make_config(f"labels={option}", *needed).labels)
    assert strategy.name == option


@pytest.mark.parametrize("option", options("augment"))
def test_augment_options(make_config, option):
    degrader = instantiate(make_config(f"augment={option}").augment)
    assert isinstance(degrader, Degrader)
    # all: the reference's four; none: no degradation; mollify: its noise and heat blur; any other option: the one
    # it is named after
    expected = {"all": list(REFERENCE_DEGRADATIONS), "none": [], "mollify": ["noise", "heat"]}.get(option, [option])
    assert list(degrader.types) == expected


@pytest.mark.parametrize("option", options("base_augment"))
def test_base_augment_options(make_config, option):
    base_augment = instantiate(make_config(f"base_augment={option}").base_augment)
    assert isinstance(base_augment, BaseAugment)
    assert base_augment.crop_flip is (option not in ("none", "soft_crop"))
    assert base_augment.soft_crop is (option == "soft_crop")
    # crop_flip, none, soft_crop: no policy; any other option: the policy it is named after
    expected = POLICIES.get(option)
    assert (type(base_augment.policy) if expected else base_augment.policy) is expected


@pytest.mark.parametrize("option", options("data"))
def test_data_options(make_config, option):
    cfg = make_config(f"data={option}")
    datamodule = instantiate(cfg.data)
    assert isinstance(datamodule, InMemoryDataModule)
    assert datamodule.num_classes == OmegaConf.load(CONFIGS / "data" / f"{option}.yaml").num_classes
    assert len(datamodule.mean) == len(datamodule.std) == 3
    # the model follows the data set's classes
    assert instantiate(cfg.model, width=4).fc.out_features == datamodule.num_classes


@pytest.mark.parametrize("option", options("model"))
def test_model_options(make_config, option):
    cfg = make_config(f"model={option}", "model.width=4")
    model = instantiate(cfg.model)
    assert isinstance(model, get_class(cfg.model._target_)) and isinstance(model, torch.nn.Module)
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 100)


@pytest.mark.parametrize("option", options("trainer"))
def test_trainer_options(make_config, option):
    if option == "gpu" and not torch.cuda.is_available():
        pytest.skip("needs a GPU")
    trainer_cfg = make_config(f"trainer={option}").trainer
    trainer = instantiate(lightning_trainer_config(trainer_cfg), logger=False, enable_checkpointing=False)
    assert isinstance(trainer, L.Trainer)
    assert trainer.precision == resolve_precision(trainer_cfg)


@pytest.mark.parametrize("native_bf16", [True, False])
def test_auto_precision_is_bf16_on_gpus_and_on_cpus_with_native_bf16(make_config, monkeypatch, native_bf16):
    monkeypatch.setattr(infomatch.tasks.train, "cpu_has_native_bf16", lambda: native_bf16)
    assert resolve_precision(make_config("trainer=gpu").trainer) == "bf16-mixed"
    assert resolve_precision(make_config("trainer=cpu").trainer) == ("bf16-mixed" if native_bf16 else "32-true")
    assert resolve_precision(make_config("trainer=cpu", "trainer.precision=32-true").trainer) == "32-true"
    assert resolve_precision(make_config("trainer=cpu", "trainer.precision=bf16-mixed").trainer) == "bf16-mixed"


@pytest.mark.parametrize(("flags", "native"), [("fpu avx2 avx512f amx_bf16 amx_tile", True),
                                               ("fpu avx2 avx512f avx512_bf16", True),
                                               ("fpu avx2 avx512f avx512_vnni", False)])
def test_native_bf16_is_read_from_the_cpu_flags(flags, native):
    assert cpu_has_native_bf16(f"processor : 0\nflags\t\t: {flags}\n") is native


def test_cpu_model_name_is_read_from_cpuinfo():
    cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9R14 96-Core Processor\nflags\t: fpu\n"
    assert cpu_model_name(cpuinfo) == "AMD EPYC 9R14 96-Core Processor"


def settings(node) -> dict:
    return {key: value for key, value in node.items() if not key.startswith("_")}


@pytest.mark.parametrize("option", options("optimizer"))
def test_optimizer_options_build_the_optimizer_they_name(make_config, option):
    cfg = make_config(f"optimizer={option}")
    optimizer = instantiate(cfg.optimizer)(params=[torch.nn.Parameter(torch.zeros(2))])
    assert type(optimizer) is get_class(cfg.optimizer._target_)
    for key, value in settings(cfg.optimizer).items():
        assert optimizer.defaults[key] == value, key


@pytest.mark.parametrize("option", options("scheduler"))
def test_scheduler_options_build_the_scheduler_they_name(make_config, option):
    cfg = make_config(f"scheduler={option}", "trainer.max_epochs=7")
    if not cfg.get("scheduler"):  # scheduler=none: a constant learning rate, no scheduler object
        assert option == "none"
        return
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1)
    scheduler = instantiate(cfg.scheduler)(optimizer=optimizer)
    assert type(scheduler) is get_class(cfg.scheduler._target_)
    for key, value in settings(cfg.scheduler).items():
        assert getattr(scheduler, key) == value, key
    if option == "cosine":
        assert scheduler.T_max == 7  # follows trainer.max_epochs


@pytest.mark.parametrize("group", ["callbacks", "logger"])
def test_callback_and_logger_options_build_what_they_name(make_config, group):
    build = build_callbacks if group == "callbacks" else build_loggers
    for option in options(group):
        cfg = make_config(f"{group}={option}")
        expected = [get_class(node._target_) for node in cfg[group].values()]
        if not any(importlib.util.find_spec(name) for name in LOGGER_PACKAGES["TensorBoardLogger"][0]):
            expected = [cls for cls in expected if cls.__name__ != "TensorBoardLogger"]  # skipped with a note
        assert [type(item) for item in build(cfg)] == expected


def leaves(node: dict) -> dict[tuple[str, ...], object]:
    """{(key, subkey, ...): value} for every non-dict value of a nested dict."""
    return {(name, *path): value for name, child in node.items()
            for path, value in (leaves(child) if isinstance(child, dict) else {(): child}).items()}


@pytest.mark.parametrize("option", options("experiment"))
def test_experiment_options_compose(make_config, option):
    cfg = make_config(f"experiment={option}")
    validate_train_config(cfg)  # a preset whose values are out of range fails here
    stated = leaves(OmegaConf.to_container(OmegaConf.load(CONFIGS / "experiment" / f"{option}.yaml")))
    composed = OmegaConf.to_container(cfg, resolve=True)
    for key, value in stated.items():
        if isinstance(value, str) and "${" in value:  # per-strategy recipes: test_reference_experiment_...
            continue
        if key[0] in ("hydra", "defaults"):  # the sweep of experiment=ablation; a preset built on another
            continue
        found = composed
        for part in key:
            found = found[part]
        assert found == value, key


def test_cpu_long_is_cpu_study_with_four_times_the_epochs(make_config):
    study, long = make_config("experiment=cpu_study"), make_config("experiment=cpu_long")
    assert long.trainer.max_epochs == 4 * study.trainer.max_epochs == 32
    with open_dict(long), open_dict(study):
        long.trainer.max_epochs = study.trainer.max_epochs
    assert OmegaConf.to_container(long, resolve=True) == OmegaConf.to_container(study, resolve=True)


@pytest.mark.parametrize("option", options("debug"))
def test_debug_options_compose(make_config, option):
    cfg = make_config(f"debug={option}")
    assert cfg.data._target_.endswith("SyntheticDataModule")


@pytest.mark.parametrize(("labels", "lr", "crop_flip"), [("hard", 1e-3, True), ("ls", 1e-3, True), ("im", 5e-4, False)])
def test_reference_experiment_reproduces_per_strategy_recipe(make_config, labels, lr, crop_flip):
    cfg = make_config("experiment=reference", f"labels={labels}")
    assert cfg.optimizer.lr == lr
    assert cfg.base_augment.crop_flip is crop_flip
    assert cfg.data.validate_on_test is True


def test_default_protocol_is_identical_across_strategies(make_config):
    def without_labels(cfg):
        cfg = dict(cfg)
        cfg.pop("labels")
        return cfg

    from omegaconf import OmegaConf

    configs = [OmegaConf.to_container(make_config(f"labels={name}"), resolve=False) for name in ("hard", "ls", "im")]
    assert without_labels(configs[0]) == without_labels(configs[1]) == without_labels(configs[2])


def test_ablation_preset_sweeps_six_strategies_times_the_seeds_with_everything_else_identical(tmp_path):
    # what `python train.py -m experiment=ablation seed=0,1,2` expands to: the preset's sweeper params
    # plus the command line, split by Hydra's own sweeper
    command = ["experiment=ablation", "seed=0,1,2"]
    compose_config(["experiment=ablation"], tmp_path, "train")  # sets HydraConfig, which holds the sweeper
    params = [f"{key}={value}" for key, value in HydraConfig.get().sweeper.params.items()]
    jobs = [job for batch in BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(params + command),
                                                           None) for job in batch]
    assert len(jobs) == 18
    configs = {}
    for job in jobs:
        cfg = compose_config(job, tmp_path, "train")
        configs[(instantiate(cfg.labels).name, cfg.seed)] = OmegaConf.to_container(cfg, resolve=False)
    strategies = ("hard", "ls", "matched", "level", "schedule", "im")
    assert set(configs) == {(name, seed) for name in strategies for seed in (0, 1, 2)}
    reference = {key: value for key, value in configs[("hard", 0)].items() if key not in ("labels", "seed")}
    for config in configs.values():
        assert {key: value for key, value in config.items() if key not in ("labels", "seed")} == reference


def test_the_deprecated_trainer_compile_still_sets_speed_compile(make_config, caplog):
    from infomatch.tasks.train import lightning_trainer_config, speed_compile
    assert speed_compile(make_config("speed.compile=true")) is True
    with caplog.at_level("WARNING"):
        assert speed_compile(make_config("trainer.compile=reduce-overhead")) == "reduce-overhead"
    assert "speed.compile=reduce-overhead" in caplog.text
    assert "compile" not in lightning_trainer_config(make_config("trainer.compile=true").trainer)


@pytest.mark.parametrize(("command", "expected"), [("train", "infomatch.labels.LabelSmoothing"),
                                                   ("evaluate", "compare_to")])
def test_entry_points_find_the_configs_from_any_folder(tmp_path, command, expected):
    """The installed commands read the configs as the package infomatch.configs, not from ./configs."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts[f"infomatch-{command}"] == f"infomatch.tasks.cli:{command}"
    probe = [sys.executable, "-c", f"from infomatch.tasks.cli import {command}; {command}()", "--cfg", "job",
             "labels=ls" if command == "train" else "ckpt=x"]
    result = subprocess.run(probe, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and expected in result.stdout, result.stderr[-2000:]
    installed = Path(sys.executable).parent / f"infomatch-{command}"
    if installed.exists():  # a pip install of this checkout (CI's) made the console script
        result = subprocess.run([str(installed), "--cfg", "job"], cwd=tmp_path, capture_output=True, text=True,
                                timeout=300)
        assert result.returncode == 0 and "_target_" in result.stdout, result.stderr[-2000:]


def help_text(program: str, tmp_path: Path) -> str:
    result = subprocess.run([sys.executable, str(ROOT / f"{program}.py"), "--help"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.parametrize(("program", "groups", "not_listed"), [
    ("train", ["labels", "base_augment", "augment", "mix", "data", "model", "optimizer", "scheduler", "trainer",
               "speed", "callbacks", "logger", "experiment", "debug", "hparams_search", "hydra/launcher"],
     ["corruptions", "ckpt="]),
    ("evaluate", ["corruptions", "augment@degradation"],
     ["labels", "base_augment", "mix", "optimizer", "hparams_search"]),
])
def test_help_lists_this_programs_groups_with_every_option(tmp_path, program, groups, not_listed):
    text = help_text(program, tmp_path)
    lines: dict[str, str] = {}  # first word -> the line and its indented continuation lines
    for line in text.splitlines():
        if line.startswith("  ") and not line.startswith("        "):
            key = line.split()[0]
            lines[key] = line
        elif line.startswith("        ") and lines:
            lines[key] += line
    for group in groups:
        assert group in lines, f"{program} --help does not list {group}"
        folder = "augment" if group == "augment@degradation" else group
        missing = [option for option in options(folder) if option not in lines[group]]
        assert not missing, f"{program} --help's {group} line lacks {missing}"
    for name in not_listed:
        assert not any(line.startswith(name) for line in lines), f"{program} --help lists {name}"
