"""hparams_search presets: Optuna tunes one strategy's knobs on the validation split, never on the test set."""

from __future__ import annotations

import json

import pytest
from conftest import CONFIGS, run_train
from omegaconf import OmegaConf

TINY = ["debug=fast", "data.train_size=192", "data.val_size=64", "data.test_size=64"]


@pytest.mark.parametrize("preset, knob", [("im_optuna", "labels.eps_max"), ("ls_optuna", "labels.epsilon")])
def test_presets_tune_their_strategy_without_the_test_set(make_config, preset, knob):
    cfg = make_config(f"hparams_search={preset}")
    assert cfg.test is False and cfg.labels._target_.endswith("InformationMatching" if "im" in preset
                                                              else "LabelSmoothing")
    params = OmegaConf.load(CONFIGS / "hparams_search" / f"{preset}.yaml").hydra.sweeper.params
    assert set(params) == {"optimizer.lr", knob}
    OmegaConf.select(cfg, knob, throw_on_missing=True)  # the tuned settings exist in the composed config


@pytest.mark.slow
def test_two_trial_search_writes_each_trial_and_the_best_validation_result(tmp_path):
    result = run_train("-m", "hparams_search=im_optuna", "hydra.sweeper.n_trials=2", *TINY, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    [sweep] = (tmp_path / "outputs" / "debug" / "multirun").iterdir()
    trials = sorted(path for path in sweep.iterdir() if path.is_dir())
    assert [path.name for path in trials] == ["0_im_all_seed0", "1_im_all_seed0"]
    values, settings = [], []
    for trial in trials:
        metrics = json.loads((trial / "metrics.json").read_text())
        assert "test" not in metrics  # the objective could not have seen the test set
        values.append(metrics["best_val_top1"])
        overrides = dict(item.split("=", 1) for item in OmegaConf.load(trial / ".hydra" / "overrides.yaml"))
        assert 1e-4 <= float(overrides["optimizer.lr"]) <= 1e-2 and 0.1 <= float(overrides["labels.eps_max"]) <= 0.9
        settings.append({key: float(overrides[key]) for key in ("optimizer.lr", "labels.eps_max")})
    assert settings[0] != settings[1]
    results = OmegaConf.to_container(OmegaConf.load(sweep / "optimization_results.yaml"))
    assert results["best_value"] == max(values)
    assert results["best_params"] in [setting for setting, value in zip(settings, values) if value == max(values)]
