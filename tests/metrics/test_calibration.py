"""Temperature scaling, the signed and adaptive calibration metrics, and the paired confidence intervals."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from infomatch.evaluation import compare
from infomatch.metrics.classification import AdaptiveCalibrationError, ConfidenceGap
from infomatch.metrics.scalers import Scaler, fit_scaler, fit_scaler_selected
from infomatch.metrics.temperature import TEMPERATURE_BOUNDS, at_bound, fit_temperature


def logits_and_labels(temperature: float, count: int = 50_000, classes: int = 10, seed: int = 0):
    """Logits z and labels drawn from softmax(z / temperature): the NLL-optimal temperature is ``temperature``."""
    generator = torch.Generator().manual_seed(seed)
    logits = 3 * torch.randn(count, classes, generator=generator, dtype=torch.float64)
    labels = torch.multinomial((logits / temperature).softmax(dim=1), 1, generator=generator).squeeze(1)
    return logits, labels


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.5])
def test_temperature_scaling_recovers_the_temperature_the_labels_were_drawn_with(temperature):
    logits, labels = logits_and_labels(temperature)
    assert fit_temperature(logits, labels) == pytest.approx(temperature, abs=1e-2)


@pytest.mark.parametrize("seed", range(4))
def test_temperature_scaling_never_raises_validation_nll(seed):
    # small, noisy validation sets: the fitted T must still not be worse than T = 1 on them
    generator = torch.Generator().manual_seed(seed)
    logits = 5 * torch.randn(40, 100, generator=generator)
    labels = torch.randint(100, (40,), generator=generator)
    labels[:20] = logits[:20].argmax(dim=1)  # half right, confidently: an over-confident model
    temperature = fit_temperature(logits, labels)
    assert F.cross_entropy(logits.double() / temperature, labels) <= F.cross_entropy(logits.double(), labels) + 1e-12
    # and it finds the minimum: no temperature on a fine grid does better
    grid = torch.logspace(-2, 2, 2001, dtype=torch.float64)
    scaled = logits.double()[None] / grid[:, None, None]
    best = F.cross_entropy(scaled.flatten(0, 1), labels.repeat(len(grid)),
                           reduction="none").view(len(grid), -1).mean(1).min()
    assert F.cross_entropy(logits.double() / temperature, labels).item() <= float(best) + 1e-6


def test_confidence_gap_is_signed_mean_confidence_minus_accuracy():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0], [0.0, 0.5]])
    labels = torch.tensor([0, 0, 1, 1])
    confidence = torch.tensor([1 / (1 + math.exp(-2)), 1 / (1 + math.exp(-1)), 1 / (1 + math.exp(-3)),
                               1 / (1 + math.exp(-0.5))])
    metric = ConfidenceGap()
    metric.update(logits, labels)
    assert float(metric.compute()) == pytest.approx(float(confidence.mean()) - 0.5, abs=1e-6)
    # under-confident predictions give a negative gap
    metric = ConfidenceGap()
    metric.update(torch.zeros(4, 2) + torch.tensor([0.1, 0.0]), torch.zeros(4, dtype=torch.long))
    assert float(metric.compute()) < 0


def test_adaptive_ece_uses_equal_mass_bins():
    # 6 samples, 3 bins of 2 sorted by confidence: |sum conf - sum correct| per bin, over N
    confidence = torch.tensor([0.55, 0.6, 0.7, 0.8, 0.9, 0.95])
    correct = torch.tensor([0.0, 1.0, 1.0, 1.0, 0.0, 1.0])
    logits = torch.stack([torch.log(confidence), torch.log(1 - confidence)], dim=1)
    labels = (1 - correct).long()
    metric = AdaptiveCalibrationError(bins=3)
    metric.update(logits[[3, 0, 5, 1, 4, 2]], labels[[3, 0, 5, 1, 4, 2]])
    expected = (abs(0.55 + 0.6 - 1) + abs(0.7 + 0.8 - 2) + abs(0.9 + 0.95 - 1)) / 6
    assert float(metric.compute()) == pytest.approx(expected, abs=1e-6)


def test_paired_interval_matches_the_t_table():
    differences = [0.012, 0.020, 0.004]
    mean = sum(differences) / 3
    sd = math.sqrt(sum((d - mean) ** 2 for d in differences) / 2)
    t_975_2 = 4.302652729915332  # Student t, 2 degrees of freedom, 97.5% quantile (printed tables: 4.303)
    result = compare.mean_interval(differences)
    assert result == pytest.approx((mean, mean - t_975_2 * sd / math.sqrt(3), mean + t_975_2 * sd / math.sqrt(3)))


def test_welch_interval_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    a, b = [0.61, 0.64, 0.60, 0.66], [0.55, 0.58, 0.52]
    ma, mb = sum(a) / 4, sum(b) / 3
    va = sum((x - ma) ** 2 for x in a) / 3 / 4
    vb = sum((x - mb) ** 2 for x in b) / 2 / 3
    freedom = (va + vb) ** 2 / (va**2 / 3 + vb**2 / 2)
    half = stats.t.ppf(0.975, freedom) * math.sqrt(va + vb)
    assert compare.welch_interval(a, b) == pytest.approx((ma - mb, ma - mb - half, ma - mb + half))
    # scipy's own Welch test gives the same interval
    interval = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert compare.welch_interval(a, b)[1:] == pytest.approx((interval.low, interval.high))


def model_result(strategy, seed, top1):
    """The per-model result fields compare.scalar_metrics reads, all derived from one number."""
    clean = {key: top1 for key in ("top1", "top5", "nll", "ece", "brier", "confidence_gap", "adaptive_ece")}
    return {"strategy": strategy, "seed": seed, "clean": clean, "calibrated": clean, "temperature": 1.0,
            "robustness": {"blur": [top1]},
            "robustness_calibration": {score: {"blur": [top1]} for score in ("nll", "brier", "nll_ts", "brier_ts")}}


def test_compare_pairs_by_seed_and_says_which_differences_are_separated():
    models = {f"{strategy}_{seed}": model_result(strategy, seed, value)
              for strategy, values in (("hard", [0.50, 0.52, 0.51]), ("im", [0.60, 0.63, 0.61]),
                                       ("ls", [0.49, 0.55, 0.50]))
              for seed, value in enumerate(values)}
    models["level_0"] = model_result("level", 0, 0.7)  # one run: no interval
    rows = {(row["strategy"], row["metric"]): row for row in compare.compare(models, "hard")}
    im = rows[("im", "top1")]
    assert im["method"] == "paired t" and im["separated"]
    assert (im["difference"], im["low"], im["high"]) == pytest.approx(compare.mean_interval([0.10, 0.11, 0.10]))
    ls = rows[("ls", "top1")]
    assert ls["method"] == "paired t" and not ls["separated"] and ls["low"] < 0 < ls["high"]
    level = rows[("level", "top1")]
    assert level["low"] is None and not level["separated"] and level["difference"] == pytest.approx(0.7 - 0.51)
    assert not any(row["strategy"] == "hard" for row in rows.values())
    # a seed the baseline lacks: paired on the seeds both have (0 and 1)
    models["ls_2"]["seed"] = 7
    ls = next(row for row in compare.compare(models, "hard") if (row["strategy"], row["metric"]) == ("ls", "top1"))
    assert ls["method"] == "paired t" and ls["n"] == 2
    assert (ls["difference"], ls["low"], ls["high"]) == pytest.approx(compare.mean_interval([-0.01, 0.03]))
    # fewer than two seeds in common: Welch on the two groups
    models["ls_1"]["seed"] = 8
    ls = next(row for row in compare.compare(models, "hard") if (row["strategy"], row["metric"]) == ("ls", "top1"))
    assert ls["method"] == "Welch" and (ls["n"], ls["n_baseline"]) == (3, 3)
    assert (ls["difference"], ls["low"], ls["high"]) == pytest.approx(
        compare.welch_interval([0.49, 0.55, 0.50], [0.50, 0.52, 0.51]))


def test_compare_each_takes_every_baseline_in_turn():
    models = {f"{strategy}_{seed}": model_result(strategy, seed, value)
              for strategy, values in (("hard", [0.50, 0.52, 0.51]), ("matched", [0.55, 0.50, 0.53]),
                                       ("im", [0.60, 0.63, 0.61]))
              for seed, value in enumerate(values)}
    rows = compare.compare_each(models, ["hard", "matched"])
    by_key = {(row["baseline"], row["strategy"], row["metric"]): row for row in rows}
    assert {(baseline, strategy) for baseline, strategy, _ in by_key} == {
        ("hard", "matched"), ("hard", "im"), ("matched", "hard"), ("matched", "im")}
    # im - matched per seed: 0.05, 0.13, 0.08
    assert by_key[("matched", "im", "top1")]["difference"] == pytest.approx(
        compare.mean_interval([0.05, 0.13, 0.08])[0])
    # the reverse comparison is the negated difference with the mirrored interval
    forward, backward = by_key[("hard", "matched", "top1")], by_key[("matched", "hard", "top1")]
    assert backward["difference"] == pytest.approx(-forward["difference"])
    assert (backward["low"], backward["high"]) == pytest.approx((-forward["high"], -forward["low"]))


def test_summary_writes_accuracy_differences_in_points_and_skips_tables_without_intervals():
    from infomatch.evaluation import report
    models = {f"{strategy}_{seed}": model_result(strategy, seed, value)
              for strategy, values in (("hard", [0.50, 0.52, 0.51]), ("im", [0.60, 0.63, 0.61]))
              for seed, value in enumerate(values)}
    models["ls_0"] = model_result("ls", 0, 0.55)
    comparisons = {"baselines": ["hard", "ls"], "level": 0.95, "rows": compare.compare_each(models, ["hard", "ls"])}
    lines = report._comparison_section(comparisons)
    top1 = next(line for line in lines if line.startswith("| im | top1"))
    low, high = compare.mean_interval([0.10, 0.11, 0.10])[1:]
    assert top1.startswith(f"| im | top1 (points) | +10.33 | [{100 * low:+.2f}, {100 * high:+.2f}] | paired t")
    assert next(line for line in lines if line.startswith("| im | nll |")).split(" | ")[2] == "+0.1033"
    # ls has one run: its section says so in one line instead of rows of empty intervals
    ls_section = lines[lines.index("## Paired differences to ls (strategy − ls)"):]
    assert not any(line.startswith("| ") for line in ls_section) and "no intervals" in ls_section[2]


def drawn_with_class_bias(count: int, seed: int):
    """Logits z with labels drawn from softmax(w * z + b) for known per-class w and b."""
    generator = torch.Generator().manual_seed(seed)
    logits = 2 * torch.randn(count, 5, generator=generator, dtype=torch.float64)
    weight = torch.tensor([0.5, 1.0, 1.5, 0.8, 1.2], dtype=torch.float64)
    bias = torch.tensor([0.3, -0.2, 0.0, 0.5, -0.6], dtype=torch.float64)
    labels = torch.multinomial((weight * logits + bias).softmax(dim=1), 1, generator=generator).squeeze(1)
    return logits, labels, weight, bias


def test_vector_scaling_recovers_the_per_class_weights_and_biases():
    logits, labels, weight, bias = drawn_with_class_bias(60_000, seed=0)
    scaler = fit_scaler("vector", logits, labels)
    assert scaler.weight.tolist() == pytest.approx(weight.tolist(), abs=0.05)
    # softmax is unchanged by a constant added to every class: compare biases up to their mean
    assert (scaler.bias - scaler.bias.mean()).tolist() == pytest.approx((bias - bias.mean()).tolist(), abs=0.05)


@pytest.mark.parametrize("kind", ["matrix", "dirichlet"])
def test_matrix_and_dirichlet_scaling_fit_held_out_nll_at_least_as_well_as_temperature(kind):
    logits, labels, _, _ = drawn_with_class_bias(8_000, seed=1)
    fit, held_out = slice(0, 4000), slice(4000, None)
    scaler, strength = fit_scaler_selected(kind, logits[fit], labels[fit])
    temperature = fit_temperature(logits[fit], labels[fit])
    # the data were drawn with per-class weights and biases: a scaler that has them beats one temperature
    assert F.cross_entropy(scaler(logits[held_out]), labels[held_out]) < \
        F.cross_entropy(logits[held_out].double() / temperature, labels[held_out])
    assert strength in (1e2, 1e3, 1e4, 1e5)


def test_scalers_start_from_the_identity_and_odir_keeps_matrix_scaling_near_diagonal():
    logits, labels, _, _ = drawn_with_class_bias(2_000, seed=2)
    loose = fit_scaler("matrix", logits, labels, off_diagonal=0.0, intercept=0.0)
    tight = fit_scaler("matrix", logits, labels, off_diagonal=1e6, intercept=1e6)
    off = lambda weight: (weight - torch.diag(weight.diagonal())).abs().sum()  # noqa: E731
    assert off(tight.weight) < 0.1 * off(loose.weight)
    assert tight.bias.abs().max() < 0.01
    # the Dirichlet map works on log-probabilities: its identity gives back the model's own probabilities
    identity = Scaler("dirichlet", torch.eye(5, dtype=torch.float64), torch.zeros(5, dtype=torch.float64))
    assert torch.allclose(identity(logits).softmax(dim=1), logits.softmax(dim=1))


def test_a_near_chance_model_gets_the_bound_not_an_unbounded_temperature():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(500, 10, generator=generator)
    # always the least likely class: every finite T has NLL above log K, reached only as T grows without end
    labels = logits.argmin(dim=1)
    temperature = fit_temperature(logits, labels)
    assert temperature == TEMPERATURE_BOUNDS[1] and at_bound(temperature)
