"""Evaluation end to end on tiny models trained on synthetic data, checked against metrics computed by hand."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT, compose_config
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from torchmetrics import MeanMetric

from infomatch.data import cifar
from infomatch.evaluation import clean, plots
from infomatch.evaluation.checkpoints import load_model
from infomatch.metrics import aurc, classwise_ece, confidence_scores, normalized_logits
from infomatch.metrics.scalers import Scaler
from infomatch.metrics.temperature import fit_temperature
from infomatch.models import ResNet18
from infomatch.tasks.evaluate import evaluate
from infomatch.tasks.train import train
from infomatch.utils.errors import CheckpointError, ConfigError, EvaluationError

# the data the tiny models are trained on (debug=fast) and evaluated with
DATA = ["data=synthetic", "data.num_classes=10", "data.train_size=512", "data.test_size=128", "data.val_size=128"]
METRICS = ("top1", "top5", "nll", "ece", "brier", "confidence_gap", "adaptive_ece")
TYPES = ("diffusion", "blur", "dropout", "mosaic")
# for tests about loading and wiring rather than the grids: fewest levels, no figures
QUICK = ["robustness.levels=2", "confidence.levels=2", "plots=false"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A sweep-like folder with three one-epoch runs: hard seed 0, im seed 0, im seed 1."""
    root = tmp_path_factory.mktemp("sweep")
    for number, (labels, seed) in enumerate((("hard", 0), ("im", 0), ("im", 1))):
        train(compose_config(["debug=fast", f"labels={labels}", f"seed={seed}"],
                             root / f"{number}_{labels}_all_seed{seed}"))
    GlobalHydra.instance().clear()
    return root


def best(sweep, run: str):
    return next((sweep / run / "checkpoints").glob("best*.ckpt"))


def run_evaluation(make_config, *overrides: str) -> dict:
    return evaluate(make_config(*DATA, *overrides, config_name="evaluate"))


def synthetic_test_set(make_config):
    datamodule = instantiate(make_config(*DATA, config_name="evaluate").data)
    datamodule.setup("test")
    images, labels = datamodule.test_set
    return images.float() / 255, labels


def hand_logits(net: torch.nn.Module, mean, std, images: torch.Tensor) -> torch.Tensor:
    mean, std = torch.tensor(mean).view(1, -1, 1, 1), torch.tensor(std).view(1, -1, 1, 1)
    with torch.no_grad():
        return net.eval()((images - mean) / std)


def checkpoint_logits(path, images: torch.Tensor) -> torch.Tensor:
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    model_config = checkpoint["infomatch_config"]["model"]
    net = ResNet18(model_config["num_classes"], model_config["width"])
    net.load_state_dict({key[4:]: value for key, value in checkpoint["state_dict"].items() if key.startswith("net.")})
    normalization = checkpoint["infomatch_normalization"]
    return hand_logits(net, normalization["mean"], normalization["std"], images)


def hand_metrics(logits: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> dict[str, float]:
    shifted = logits - logits.max(dim=1, keepdim=True).values
    log_probabilities = shifted - shifted.exp().sum(dim=1, keepdim=True).log()
    probabilities = log_probabilities.exp()
    confidence, prediction = probabilities.max(dim=1)
    correct = (prediction == labels).float()
    ece = 0.0
    for index in range(bins):
        in_bin = (confidence > index / bins) & (confidence <= (index + 1) / bins)
        if in_bin.any():
            ece += in_bin.float().mean() * (correct[in_bin].mean() - confidence[in_bin].mean()).abs()
    one_hot = torch.zeros_like(probabilities).scatter_(1, labels[:, None], 1.0)
    # equal-mass bins: the sorted samples cut into 15 runs whose sizes differ by at most one
    order = confidence.argsort()
    sizes = [len(labels) // 15 + (index < len(labels) % 15) for index in range(15)]
    starts = [sum(sizes[:index]) for index in range(15)]
    adaptive = sum(abs(float(confidence[order[start:start + size]].sum() - correct[order[start:start + size]].sum()))
                   for start, size in zip(starts, sizes)) / len(labels)
    return {
        "top1": float(correct.mean()),
        "top5": float((logits.topk(5, dim=1).indices == labels[:, None]).any(dim=1).float().mean()),
        "nll": float(-log_probabilities[torch.arange(len(labels)), labels].mean()),
        "ece": float(ece),
        "brier": float((probabilities - one_hot).pow(2).sum(dim=1).mean()),
        "confidence_gap": float(confidence.mean() - correct.mean()),
        "adaptive_ece": adaptive,
    }


def assert_matches_hand(results: dict, name: str, logits: torch.Tensor, labels: torch.Tensor) -> None:
    expected = hand_metrics(logits, labels)
    for metric in METRICS:
        assert results["models"][name]["clean"][metric] == pytest.approx(expected[metric], abs=1e-5), metric
    # level 0 of every degradation is the identity, so the grid starts at clean accuracy
    for kind in TYPES:
        assert results["models"][name]["robustness"][kind][0] == pytest.approx(expected["top1"], abs=1e-6)


def test_one_checkpoint_writes_every_output_and_matches_hand_metrics(make_config, sweep, tmp_path):
    path = best(sweep, "1_im_all_seed0")
    results = run_evaluation(make_config, f"ckpt={path}")
    output = tmp_path / "run"
    for name in ("metrics.json", "metrics.csv", "summary.md"):
        assert (output / name).is_file()
    assert json.loads((output / "metrics.json").read_text()) == json.loads(json.dumps(results))
    assert list(results["models"]) == ["im_seed0"]
    images, labels = synthetic_test_set(make_config)
    assert_matches_hand(results, "im_seed0", checkpoint_logits(path, images), labels)

    model = results["models"]["im_seed0"]
    assert set(model["robustness"]) == set(TYPES) == set(model["confidence"])
    assert results["robustness"]["levels"] == pytest.approx([0, 0.25, 0.5, 0.75, 1])
    assert all(len(values) == 5 for values in model["robustness"].values())
    assert all(len(values) == 11 and all(0 <= value <= 1 for value in values)
               for values in model["confidence"].values())
    assert results["confidence"]["num_images"] == int((labels == 0).sum())
    assert sum(model["reliability"]["count"]) == len(labels)
    plots = {path.name for path in (output / "plots").iterdir()}
    assert {"clean_metrics.png", "reliability_im_seed0.png", "robustness_model_im_seed0.png",
            "confidence_model_im_seed0.png", "confidence_heatmap_mosaic.png"} <= plots
    assert {f"{part}_{kind}.png" for part in ("robustness", "confidence") for kind in TYPES} <= plots
    rows = (output / "metrics.csv").read_text().splitlines()
    # clean metrics, T and the 5 it changes, 4 selective numbers of 5 scores, 3 calibration measures before and
    # after T, top-1 and NLL/Brier before/after on the grid, confidence
    assert len(rows) == 1 + len(METRICS) + 1 + 5 + 5 * 4 + 2 * 3 + 4 * 5 + 4 * 4 * 5 + 4 * 11

    # temperature scaling: T fitted on the validation split, applied to the test set and the robustness grid
    datamodule = instantiate(make_config(*DATA, config_name="evaluate").data)
    datamodule.setup("fit")
    val_images, val_labels = datamodule.val_set
    temperature = fit_temperature(checkpoint_logits(path, val_images.float() / 255), val_labels)
    assert model["temperature"] == pytest.approx(temperature, rel=1e-4) and model["temperature"] != 1.0
    scaled = hand_metrics(checkpoint_logits(path, images) / temperature, labels)
    for metric in ("nll", "ece", "brier", "confidence_gap", "adaptive_ece"):
        assert model["calibrated"][metric] == pytest.approx(scaled[metric], abs=1e-4), metric
    clean_nll = model["clean"]["nll"]
    for kind in TYPES:  # level 0 is the clean image
        assert model["robustness_calibration"]["nll"][kind][0] == pytest.approx(clean_nll, abs=1e-5)
        assert model["robustness_calibration"]["nll_ts"][kind][0] == pytest.approx(scaled["nll"], abs=1e-4)
        assert model["robustness_calibration"]["brier_ts"][kind][0] == pytest.approx(scaled["brier"], abs=1e-4)
    summary = (output / "summary.md").read_text()
    assert "## Temperature scaling" in summary and f"{temperature:.3f}" in summary

    # selective classification on the test logits, the normalised score's T fitted on the validation split
    logits, val_logits = checkpoint_logits(path, images), checkpoint_logits(path, val_images.float() / 255)
    uncertainty = model["uncertainty"]
    normalized_temperature = fit_temperature(normalized_logits(val_logits), val_labels)
    assert uncertainty["normalized_temperature"] == pytest.approx(normalized_temperature, rel=1e-4)
    correct = (logits.argmax(dim=1) == labels).double()
    scores = confidence_scores(logits, 2, normalized_temperature)
    for score in ("msp", "energy", "msp_normalized"):
        assert uncertainty["selective"][score]["aurc"] == pytest.approx(aurc(scores[score], correct), abs=1e-4)
    assert uncertainty["calibration"]["classwise_ece"] == pytest.approx(
        classwise_ece(logits.double().softmax(dim=1), labels), abs=1e-4)
    assert uncertainty["risk_coverage"]["msp"]["coverage"][-1] == 1.0
    assert uncertainty["risk_coverage"]["msp"]["risk"][-1] == pytest.approx(1 - model["clean"]["top1"], abs=1e-6)
    assert "risk_coverage.png" in plots and "## Selective classification" in summary


def test_calibrate_all_fits_every_scaler_on_the_validation_split(make_config, sweep, tmp_path):
    path = best(sweep, "0_hard_all_seed0")
    results = run_evaluation(make_config, f"ckpt={path}", "calibrate=all", "robustness.levels=2", "confidence.levels=2",
                             "plots=false")
    model = results["models"]["hard_seed0"]
    post_hoc = model["post_hoc"]
    assert list(post_hoc) == ["before", "temperature", "vector", "matrix", "dirichlet"]
    assert post_hoc["before"]["nll"] == pytest.approx(model["clean"]["nll"], abs=1e-5)
    assert post_hoc["temperature"]["after"]["nll"] == pytest.approx(model["calibrated"]["nll"], abs=1e-5)
    fitted = json.loads((tmp_path / "run" / "scalers.json").read_text())["hard_seed0"]
    # the stored weights give the reported numbers: vector scaling applied by hand to the test logits
    images, labels = synthetic_test_set(make_config)
    scaler = Scaler("vector", torch.tensor(fitted["vector"]["weight"]), torch.tensor(fitted["vector"]["bias"]))
    scaled_nll = torch.nn.functional.cross_entropy(scaler(checkpoint_logits(path, images)), labels)
    assert post_hoc["vector"]["after"]["nll"] == pytest.approx(float(scaled_nll), abs=1e-4)
    assert len(fitted["matrix"]["weight"]) == 10 and fitted["matrix"]["odir_strength"] in (1e2, 1e3, 1e4, 1e5)
    assert "## Post-hoc scalers" in (tmp_path / "run" / "summary.md").read_text()


def test_sweep_folder_evaluates_every_run_side_by_side(make_config, sweep, tmp_path):
    # fewer levels than the default keep this three-model test quick
    results = run_evaluation(make_config, f"ckpt={sweep}", "robustness.levels=3", "confidence.levels=3")
    assert list(results["models"]) == ["hard_seed0", "im_seed0", "im_seed1"]
    images, labels = synthetic_test_set(make_config)
    for name, run in zip(results["models"], ("0_hard_all_seed0", "1_im_all_seed0", "2_im_all_seed1")):
        assert results["models"][name]["checkpoint"] == str(best(sweep, run))
        assert_matches_hand(results, name, checkpoint_logits(best(sweep, run), images), labels)

    im = results["aggregate"]["im"]
    assert im["models"] == ["im_seed0", "im_seed1"] and results["aggregate"]["hard"]["n"] == 1
    pair = [results["models"][name]["clean"]["top1"] for name in im["models"]]
    assert im["clean"]["top1"]["mean"] == pytest.approx(sum(pair) / 2)
    assert im["clean"]["top1"]["std"] == pytest.approx(abs(pair[0] - pair[1]) / 2 ** 0.5)
    assert len(im["robustness"]["blur"]["mean"]) == 3 and len(im["confidence"]["mosaic"]["std"]) == 3
    summary = (tmp_path / "run" / "summary.md").read_text()
    assert "mean ± std over seeds" in summary and "im_seed1" in summary
    # paired comparisons to hard: one hard run, so no interval, but the difference of means is there
    comparisons = results["comparisons"]
    assert comparisons["baselines"] == ["hard"] and {row["strategy"] for row in comparisons["rows"]} == {"im"}
    top1 = next(row for row in comparisons["rows"] if row["metric"] == "top1")
    assert top1["difference"] == pytest.approx(sum(pair) / 2 - results["models"]["hard_seed0"]["clean"]["top1"])
    assert top1["method"] == "none (one run)" and "## Paired differences to hard" in summary
    assert (tmp_path / "run" / "comparisons.csv").read_text().count("\nhard,im,") == len(comparisons["rows"])
    assert (tmp_path / "run" / "plots" / "paired_differences_hard.png").stat().st_size > 0

    # the same seeded degradations whether a model is evaluated alone or next to others
    alone = run_evaluation(make_config, f"ckpt={sweep / '2_im_all_seed1'}", "names=[solo]", "plots=false",
                           "robustness.levels=3", "confidence.levels=3")
    assert alone["models"]["solo"]["robustness"] == results["models"]["im_seed1"]["robustness"]
    assert alone["models"]["solo"]["confidence"] == results["models"]["im_seed1"]["confidence"]


def test_temperature_scaling_needs_the_validation_split(make_config, sweep):
    with pytest.raises(EvaluationError, match="data.val_size=0"):
        run_evaluation(make_config, f"ckpt={best(sweep, '0_hard_all_seed0')}", "data.val_size=0", *QUICK)


def test_models_that_trained_on_the_validation_images_are_flagged(make_config, sweep):
    ckpt = f"ckpt=[{best(sweep, '0_hard_all_seed0')},{best(sweep, '1_im_all_seed0')}]"
    held_out = run_evaluation(make_config, ckpt, *QUICK)
    assert held_out["temperature_scaling"]["fitted_on_training_images"] == []
    # another split seed: the evaluation's validation images were part of both models' training sets
    other_split = run_evaluation(make_config, ckpt, "data.split_seed=1", *QUICK)
    assert other_split["temperature_scaling"]["fitted_on_training_images"] == ["hard_seed0", "im_seed0"]


def test_subset_uses_the_first_test_images(make_config, sweep):
    path = best(sweep, "0_hard_all_seed0")
    results = run_evaluation(make_config, f"ckpt=[{path}]", "subset=50", *QUICK)
    assert results["evaluation"]["num_images"] == 50
    images, labels = synthetic_test_set(make_config)
    assert_matches_hand(results, "hard_seed0", checkpoint_logits(path, images[:50]), labels[:50])


def test_reference_state_dict_loads_and_evaluates(make_config, sweep, tmp_path):
    checkpoint = torch.load(best(sweep, "0_hard_all_seed0"), map_location="cpu", weights_only=True)
    state = {key[4:]: value for key, value in checkpoint["state_dict"].items() if key.startswith("net.")}
    path = tmp_path / "reference_hard.pth"
    torch.save({"model_state_dict": state, "epoch": 99}, path)
    results = run_evaluation(make_config, f"ckpt={path}", *QUICK)
    assert results["models"]["reference_hard"]["strategy"] == "reference_hard"
    net = ResNet18(num_classes=10, width=8)
    net.load_state_dict(state)
    images, labels = synthetic_test_set(make_config)
    logits = hand_logits(net, cifar.CIFAR100.mean, cifar.CIFAR100.std, images)
    assert_matches_hand(results, "reference_hard", logits, labels)


class MeanConfidence(MeanMetric):
    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:  # type: ignore[override]
        super().update(logits.float().softmax(dim=1).max(dim=1).values)


def test_a_clean_metric_added_in_one_place_reaches_every_output(make_config, sweep, tmp_path, monkeypatch):
    added = clean.CleanMetric("confidence", "mean confidence", "Mean confidence", False, MeanConfidence)
    monkeypatch.setattr(clean, "CLEAN_METRICS", (*clean.CLEAN_METRICS, added))
    drawn = []
    draw = plots.clean_bars
    monkeypatch.setattr(plots, "clean_bars",
                        lambda series, panels, *rest: (drawn.extend(panels), draw(series, panels, *rest)))
    path = best(sweep, "0_hard_all_seed0")
    results = run_evaluation(make_config, f"ckpt={path}", "robustness.levels=2", "confidence.levels=2")
    images, _ = synthetic_test_set(make_config)
    expected = float(checkpoint_logits(path, images).softmax(dim=1).max(dim=1).values.mean())
    assert results["models"]["hard_seed0"]["clean"]["confidence"] == pytest.approx(expected, abs=1e-6)
    output = tmp_path / "run"
    assert json.loads((output / "metrics.json").read_text())["models"]["hard_seed0"]["clean"]["confidence"] == \
        results["models"]["hard_seed0"]["clean"]["confidence"]
    assert ",clean,,,confidence," in (output / "metrics.csv").read_text()
    assert "| mean confidence |" in (output / "summary.md").read_text()
    assert [key for key, _, _ in drawn] == [*METRICS, "confidence"]
    assert (output / "plots" / "clean_metrics.png").stat().st_size > 0


def test_checkpoint_in_todays_layout_loads_to_the_same_logits(sweep, tmp_path):
    """The layout train.py writes (net.* weights, the resolved config, the normalization) keeps loading to the
    same function, and new training checkpoints still have it."""
    written = torch.load(best(sweep, "1_im_all_seed0"), map_location="cpu", weights_only=True)
    assert {key.split(".")[0] for key in written["state_dict"]} == {"net"}
    assert set(written["infomatch_normalization"]) == {"mean", "std"}

    net = ResNet18(num_classes=10, width=8)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # non-trivial batch-norm statistics, so that the buffers are checked too
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5, generator=generator)
                module.running_var.uniform_(0.5, 2.0, generator=generator)
    mean, std = [0.4, 0.5, 0.6], [0.2, 0.25, 0.3]
    config = {"model": {"_target_": "infomatch.models.ResNet18", "num_classes": 10, "width": 8},
              "labels": {"_target_": "infomatch.labels.InformationMatching", "eps_max": 0.9, "bins": 64,
                         "spread": "all"},
              "seed": 3}
    path = tmp_path / "today.ckpt"
    torch.save({"epoch": 0, "global_step": 1,
                "state_dict": {f"net.{key}": value for key, value in net.state_dict().items()},
                "infomatch_config": config, "infomatch_normalization": {"mean": mean, "std": std}}, path)
    model = load_model(path)
    assert (model.name, model.strategy, model.seed) == ("im_seed3", "im", 3)
    images = torch.rand(4, 3, 32, 32, generator=generator)
    with torch.no_grad():
        torch.testing.assert_close(model.classifier(images), hand_logits(net, mean, std, images), rtol=0, atol=0)


def broken_checkpoints(sweep, folder):
    """(path, expected words in the message) for each way a checkpoint can be wrong."""
    source = best(sweep, "0_hard_all_seed0")
    truncated = folder / "truncated.ckpt"
    truncated.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    text = folder / "notes.ckpt"
    text.write_text("not a checkpoint")
    checkpoint = torch.load(source, map_location="cpu", weights_only=True)
    checkpoint["infomatch_config"]["model"]["width"] = 16
    mismatched = folder / "mismatched.ckpt"
    torch.save(checkpoint, mismatched)
    return [(folder / "missing.ckpt", "no such checkpoint"), (truncated, "not a readable"),
            (text, "not a readable"), (mismatched, "width=16"), (folder, "neither checkpoints/")]


def test_broken_checkpoints_raise_checkpoint_error_naming_the_file(make_config, sweep, tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    for path, words in broken_checkpoints(sweep, folder):
        with pytest.raises(CheckpointError) as error:
            run_evaluation(make_config, f"ckpt={path}")
        assert str(path) in str(error.value) and words in str(error.value)


@pytest.mark.parametrize(("override", "message"), [
    ("degradation.types=[blur,jpeg]",
     "degradation.types=['blur', 'jpeg'] may only list: diffusion, blur, dropout, mosaic"),
    ("degradation.blur_kernel_max=0", "degradation.blur_kernel_max=0 must be a number >= 1"),
    ("confidence.heatmap_type=blur", "confidence.heatmap_type=blur must be one of degradation.types (mosaic)"),
    ("robustness.levels=1", "robustness.levels=1 must be an integer >= 2"),
    ("subset=0", "subset=0 must be an integer >= 1"),
    ("aggregate=sometimes", "aggregate=sometimes must be one of: auto, true, false"),
    ("calibrate=platt", "calibrate=platt must be one of temperature, vector, matrix, dirichlet, a list of them"),
    ("selective.coverage=0", "selective.coverage=0 must be a number in (0, 1]"),
    ("selective.norm_p=-1", "selective.norm_p=-1 must be a number > 0"),
])
def test_bad_evaluation_settings_are_named_before_any_checkpoint_is_read(make_config, tmp_path, override, message):
    types = "degradation.types=[mosaic]" if "heatmap" in override else "seed=0"
    with pytest.raises(ConfigError, match="invalid configuration") as raised:
        run_evaluation(make_config, f"ckpt={tmp_path / 'not_read.ckpt'}", types, override)
    assert message in str(raised.value)


def test_wrong_number_of_classes_is_a_checkpoint_error(make_config, sweep):
    """The command line may name a data setting the checkpoint disagrees with: it is used, and caught."""
    with pytest.raises(CheckpointError, match="predicts 10 classes"):
        evaluate(make_config("data=synthetic", "data.num_classes=100", "data.train_size=64", "data.test_size=64",
                             "data.val_size=32", f"ckpt={best(sweep, '0_hard_all_seed0')}", config_name="evaluate"))


def run_entry_point(tmp_path, *overrides: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(ROOT / "evaluate.py"), *DATA, f"paths.log_dir={tmp_path}/outputs", *overrides]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)


def test_entry_point(sweep, tmp_path):
    run = tmp_path / "run_folder"
    shutil.copytree(sweep / "1_im_all_seed0", run)
    result = run_entry_point(tmp_path, f"ckpt={run}", "subset=32", *QUICK)
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = list((tmp_path / "outputs" / "eval").glob("*/metrics.json"))
    assert len(outputs) == 1 and "im_seed0" in json.loads(outputs[0].read_text())["models"]

    missing = tmp_path / "nowhere.ckpt"
    result = run_entry_point(tmp_path, f"ckpt={missing}")
    assert result.returncode != 0
    assert str(missing) in result.stderr and "Traceback" not in result.stderr


def test_im_with_another_measure_is_its_own_strategy(sweep, tmp_path):
    checkpoint = torch.load(best(sweep, "1_im_all_seed0"), map_location="cpu", weights_only=True)
    checkpoint["infomatch_config"]["labels"]["measure"] = "ssim"
    torch.save(checkpoint, tmp_path / "ssim.ckpt")
    assert load_model(tmp_path / "ssim.ckpt").strategy == "im_ssim"
    assert load_model(best(sweep, "1_im_all_seed0")).strategy == "im"


def test_a_policy_and_mixing_make_their_own_strategy(sweep, tmp_path):
    # so that an im + mixup run and a plain im run of one seed do not share a name in one evaluation
    checkpoint = torch.load(best(sweep, "1_im_all_seed0"), map_location="cpu", weights_only=True)
    config = checkpoint["infomatch_config"]
    config["base_augment"]["policy"] = {"_target_": "infomatch.base_augment.TrivialAugment", "bins": 31}
    config["base_augment"]["random_erasing"] = 0.25
    config["mix"] = {"_target_": "infomatch.augment.Mixer", "kind": "mixup", "alpha": 1.0}
    torch.save(checkpoint, tmp_path / "recipe.ckpt")
    model = load_model(tmp_path / "recipe.ckpt")
    assert (model.strategy, model.name) == ("im_trivialaugment_erasing_mixup", "im_trivialaugment_erasing_mixup_seed0")


def test_a_degradation_other_than_the_recipes_makes_its_own_strategy(sweep, tmp_path):
    # hard augment=mollify must not pool with the study's hard (augment=all) nor with labels=mollify
    checkpoint = torch.load(best(sweep, "0_hard_all_seed0"), map_location="cpu", weights_only=True)
    checkpoint["infomatch_config"]["augment"] = {"_target_": "infomatch.augment.Degrader", "types": ["noise", "heat"],
                                                 "probability": 2 / 3, "level_distribution": "beta"}
    torch.save(checkpoint, tmp_path / "hard_mollify.ckpt")
    assert load_model(tmp_path / "hard_mollify.ckpt").strategy == "hard_mollify"


@pytest.mark.parametrize(("labels", "augment", "base_augment", "expected"), [
    ({}, {}, {}, "hard"),  # Degrader's defaults are augment=all's settings
    ({}, {"types": []}, {}, "hard_none"),
    ({}, {"types": []}, {"soft_crop": True}, "hard_soft_crop"),  # the soft crop's recipe has no degradation
    ({}, {"types": ["blur", "mosaic"]}, {"soft_crop": True}, "hard_blur_mosaic_soft_crop"),
    ({}, {"types": "blur", "probability": 0.5}, {}, "hard_blur_p0.5"),
    ({}, {"level_distribution": "beta", "level_a": 2, "level_b": 5}, {}, "hard_diffusion_blur_dropout_mosaic_beta2-5"),
    ({"_target_": "infomatch.labels.MollifiedSmoothing"},
     {"types": ["noise", "heat"], "probability": 2 / 3, "level_distribution": "beta"}, {}, "mollify"),
    ({"_target_": "infomatch.labels.MollifiedSmoothing"}, {}, {}, "mollify_all"),
])
def test_strategy_names_show_the_degradation_when_it_is_not_the_recipes(labels, augment, base_augment, expected):
    from infomatch.evaluation.recipe_names import strategy_name
    from infomatch.runs.trusted import build

    strategy = build(labels or {"_target_": "infomatch.labels.HardLabels"}, "labels", Path("test.ckpt"))
    config = {"augment": {"_target_": "infomatch.augment.Degrader", **augment}, "base_augment": base_augment}
    assert strategy_name(config, strategy) == expected


FIXTURE = ROOT / "tests" / "fixtures" / "checkpoint_2026-12-02"


def test_a_checkpoint_written_before_the_restructure_evaluates_to_its_recorded_numbers(make_config):
    """A width-4 IM checkpoint written by main before the package moved (its config names infomatch.targets.*)
    still loads, through MOVED_TARGETS, and evaluates to the numbers recorded then.

    The tolerance covers float32 kernels of other CPUs (~1e-6 relative); a wrong class, normalization or
    degradation setting moves these numbers by far more. Top-1 may flip one near-tie of 128 images."""
    expected = json.loads((FIXTURE / "expected.json").read_text())
    stored = torch.load(FIXTURE / "im_width4.ckpt", map_location="cpu", weights_only=True)
    assert stored["infomatch_config"]["labels"]["_target_"] == "infomatch.targets.InformationMatching"
    results = evaluate(make_config("data=synthetic", "data.num_classes=10", "data.train_size=256", "data.val_size=64",
                                   "data.test_size=128", "device=cpu", "robustness.levels=3", "confidence.levels=2",
                                   "plots=false", f"ckpt={FIXTURE / 'im_width4.ckpt'}", config_name="evaluate"))
    model = results["models"]["im_seed0"]
    assert model["strategy"] == "im"
    for metric, value in expected["clean"].items():
        tolerance = {"abs": 1 / 128} if metric in ("top1", "top5") else {"rel": 1e-4}
        assert model["clean"][metric] == pytest.approx(value, **tolerance), metric
    for degradation, curve in expected["robustness"].items():
        assert model["robustness"][degradation] == pytest.approx(curve, abs=1 / 128), degradation


def test_the_data_settings_come_from_the_checkpoints(make_config, sweep, tmp_path):
    """No data= on the command line: the synthetic 10-class set the runs trained on, not the CIFAR-100 default."""
    results = evaluate(make_config(f"ckpt={sweep}", *QUICK, config_name="evaluate"))
    assert results["evaluation"]["data"] == "infomatch.data.SyntheticDataModule"
    assert results["evaluation"]["num_images"] == 128
    # a named setting wins over the stored one, the others stay as trained (synthetic-only settings need the
    # data=synthetic choice on the command line: the default choice, cifar100, has no test_size)
    subset = evaluate(make_config(f"ckpt={sweep}", "data=synthetic", "data.test_size=64", *QUICK,
                                  config_name="evaluate"))
    assert subset["evaluation"]["num_images"] == 64


def test_models_of_different_data_sets_are_refused_in_one_call(make_config, sweep, tmp_path):
    checkpoint = torch.load(best(sweep, "0_hard_all_seed0"), map_location="cpu", weights_only=True)
    checkpoint["infomatch_config"]["data"]["seed"] = 7  # other generated images
    other = tmp_path / "other_data.ckpt"
    torch.save(checkpoint, other)
    with pytest.raises(EvaluationError, match="trained on different data sets"):
        evaluate(make_config(f"ckpt=[{best(sweep, '1_im_all_seed0')},{other}]", *QUICK, config_name="evaluate"))
    with pytest.raises(EvaluationError, match="trained on infomatch.data.SyntheticDataModule but the command line"):
        evaluate(make_config(f"ckpt={sweep}", "data=cifar100", *QUICK, config_name="evaluate"))


def test_named_data_settings_are_read_from_the_overrides():
    from infomatch.evaluation.data import named_data_settings
    assert named_data_settings(["ckpt=x", "data.root=/d", "+data.extra=1", "~data.on_device", "data=synthetic",
                                "names=[a]"]) == {"root", "extra", "on_device", "data"}


def test_a_checkpoint_written_before_the_restructure_passes_the_resume_check(make_config, tmp_path):
    from infomatch.runs.validation import check_resume
    checkpoint = FIXTURE / "im_width4.ckpt"
    cfg = make_config("debug=fast", "labels=im", "augment=all", "model.width=4", "data.train_size=256",
                      "data.val_size=64", "data.test_size=128", "seed=0", f"resume={checkpoint}")
    assert check_resume(cfg, tmp_path) == checkpoint
    with pytest.raises(ConfigError, match="labels.eps_max: 0.9 in the checkpoint, 0.5 now"):
        check_resume(make_config("debug=fast", "labels=im", "labels.eps_max=0.5", "model.width=4",
                                 "data.train_size=256", "data.val_size=64", "data.test_size=128",
                                 f"resume={checkpoint}"), tmp_path)


def test_the_grid_scores_the_unchanged_level_0_once_and_every_level_as_a_direct_computation():
    """Level 0 leaves the images unchanged for every type: the clean chunks are scored once, not once per type,
    and every (type, level) still equals scoring its degraded images directly."""
    from infomatch.augment import DEGRADATIONS, apply_degradations
    from infomatch.evaluation.degraded import degradation_curves
    from infomatch.utils.seeding import mix_seed

    class Counting(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net, self.images = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 5)), 0

        def forward(self, x):
            self.images += len(x)
            return self.net(x)

    torch.manual_seed(0)
    images, labels = torch.randint(0, 256, (20, 3, 8, 8), dtype=torch.uint8), torch.randint(0, 5, (20,))
    classifier, levels = Counting().eval(), [0.0, 0.5, 1.0]
    settings = {"blur_sigma_max": 2.0, "blur_kernel_max": 5, "dropout_patch": 2}

    def score(logits, target):
        return (logits.argmax(1) == target).double()

    curves = degradation_curves([classifier], images, labels, list(TYPES), levels, score, 3, 8, settings, "test")
    assert classifier.images == 20 * (1 + len(TYPES) * (len(levels) - 1))
    for row, name in enumerate(TYPES):
        for index, level in enumerate(levels):
            generator = torch.Generator().manual_seed(mix_seed(3, DEGRADATIONS.index(name), index))
            hits = 0.0
            for chunk, chunk_labels in zip(images.split(8), labels.split(8)):
                degraded = apply_degradations(chunk.float() / 255, torch.full((len(chunk),), DEGRADATIONS.index(name)),
                                              torch.full((len(chunk),), level), generator, **settings)
                with torch.no_grad():
                    hits += float(score(classifier.net(degraded), chunk_labels).sum())
            assert curves[row, index, 0].item() == pytest.approx(hits / 20), (name, level)


def test_progress_without_a_terminal_logs_one_line_per_stage(caplog, capsys):
    from infomatch.utils.console import progress

    with caplog.at_level("INFO", logger="infomatch"):
        assert list(progress(range(3), desc="clean", unit="model")) == [0, 1, 2]
    assert [record.getMessage().rsplit(" in ", 1)[0] for record in caplog.records] == ["clean: 3 models"]
    assert "\r" not in capsys.readouterr().err  # no bar redrawn with carriage returns
