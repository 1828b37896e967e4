"""Selective classification, OOD detection, confidence scores and the calibration measures beyond ECE, each against
an independent oracle: scikit-learn, a plain Python loop, scipy quadrature, or a hand-made case with a known answer."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch
from scipy import integrate, stats
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from infomatch.metrics import (
    AUGRC,
    AURC,
    ClasswiseCalibrationError,
    CoverageAtRisk,
    MaxCalibrationError,
    OODDetection,
    RiskAtCoverage,
    augrc,
    aurc,
    classwise_ece,
    confidence_scores,
    coverage_at_risk,
    max_calibration_error,
    ood_detection,
    risk_at_coverage,
    risk_coverage,
    smooth_ece,
)
from infomatch.metrics.calibration import smooth_ece_at


def scored_predictions(count: int = 500, seed: int = 0, ties: bool = False):
    """Confidences that rank errors better than chance, with many ties when ``ties``."""
    generator = torch.Generator().manual_seed(seed)
    confidence = torch.rand(count, generator=generator, dtype=torch.float64)
    correct = (torch.rand(count, generator=generator, dtype=torch.float64) < confidence).double()
    if ties:
        confidence = (confidence * 5).floor() / 5
    return confidence, correct


def loop_risks(confidence, correct):
    """Selective risk at each k by a plain loop: sort the (confidence, position) pairs, count errors."""
    order = sorted(range(len(confidence)), key=lambda i: (-float(confidence[i]), i))
    risks, errors = [], 0
    for k, index in enumerate(order, start=1):
        errors += 1 - int(correct[index])
        risks.append(errors / k)
    return risks


@pytest.mark.parametrize("ties", [False, True])
def test_risk_coverage_aurc_and_augrc_match_a_loop_over_thresholds(ties):
    confidence, correct = scored_predictions(ties=ties)
    risks = loop_risks(confidence.tolist(), correct.tolist())
    coverage, risk = risk_coverage(confidence, correct)
    assert coverage.tolist() == pytest.approx([k / len(risks) for k in range(1, len(risks) + 1)])
    assert risk.tolist() == pytest.approx(risks)
    assert aurc(confidence, correct) == pytest.approx(sum(risks) / len(risks))
    generalized = [r * k / len(risks) for k, r in enumerate(risks, start=1)]  # errors accepted / n
    assert augrc(confidence, correct) == pytest.approx(sum(generalized) / len(risks))
    assert risk_at_coverage(confidence, correct, 0.8) == pytest.approx(risks[math.ceil(0.8 * len(risks)) - 1])
    below = [k for k, r in enumerate(risks, start=1) if r <= 0.3]
    assert coverage_at_risk(confidence, correct, 0.3) == pytest.approx(max(below) / len(risks))


def test_a_perfect_ranking_gives_the_optimal_aurc_and_a_reversed_one_the_worst():
    correct = torch.tensor([1.0] * 6 + [0.0] * 4)
    perfect, reversed_ = torch.linspace(1, 0, 10), torch.linspace(0, 1, 10)
    # optimal: errors come last, risk 0 for k <= 6 then (k - 6) / k
    optimal = sum(max(0, k - 6) / k for k in range(1, 11)) / 10
    worst = sum(min(k, 4) / k for k in range(1, 11)) / 10
    assert aurc(perfect, correct) == pytest.approx(optimal)
    assert aurc(reversed_, correct) == pytest.approx(worst)
    assert coverage_at_risk(perfect, correct, 0.0) == pytest.approx(0.6)
    assert coverage_at_risk(reversed_, correct, 0.0) == 0.0


def test_all_correct_and_all_wrong_give_defined_values():
    confidence = torch.rand(20, generator=torch.Generator().manual_seed(1))
    ones, zeros = torch.ones(20), torch.zeros(20)
    assert (aurc(confidence, ones), augrc(confidence, ones), risk_at_coverage(confidence, ones)) == (0.0, 0.0, 0.0)
    assert coverage_at_risk(confidence, ones) == 1.0
    assert aurc(confidence, zeros) == 1.0 and augrc(confidence, zeros) == pytest.approx(10.5 / 20)
    assert coverage_at_risk(confidence, zeros) == 0.0


def test_the_metric_classes_accumulate_batches_to_the_functions_value():
    confidence, correct = scored_predictions(300, seed=3)
    for metric, function in ((AURC(), aurc), (AUGRC(), augrc),
                             (RiskAtCoverage(0.7), partial(risk_at_coverage, coverage=0.7)),
                             (CoverageAtRisk(0.3), partial(coverage_at_risk, risk=0.3))):
        for part in zip(confidence.split(70), correct.split(70)):
            metric.update(*part)
        assert float(metric.compute()) == pytest.approx(function(confidence, correct))


@pytest.mark.parametrize("ties", [False, True])
def test_ood_detection_matches_scikit_learn(ties):
    generator = torch.Generator().manual_seed(0)
    score_in = torch.randn(400, generator=generator, dtype=torch.float64) + 1
    score_out = torch.randn(300, generator=generator, dtype=torch.float64)
    if ties:
        score_in, score_out = score_in.round(), score_out.round()
    scores = torch.cat([score_in, score_out]).numpy()
    is_in = [1] * 400 + [0] * 300
    found = ood_detection(score_in, score_out)
    assert found["auroc"] == pytest.approx(roc_auc_score(is_in, scores), abs=1e-12)
    assert found["aupr_in"] == pytest.approx(average_precision_score(is_in, scores), abs=1e-12)
    assert found["aupr_out"] == pytest.approx(average_precision_score([1 - y for y in is_in], -scores), abs=1e-12)
    fpr, tpr, _ = roc_curve(is_in, scores, drop_intermediate=False)
    assert found["fpr95"] == pytest.approx(fpr[(tpr >= 0.95).argmax()], abs=1e-12)
    metric = OODDetection()
    metric.update(torch.cat([score_in, score_out]), torch.tensor(is_in).bool())
    assert metric.compute() == pytest.approx(found)


def test_ood_detection_of_separated_and_identical_scores():
    perfect = ood_detection(torch.tensor([2.0, 3.0]), torch.tensor([0.0, 1.0]))
    assert perfect == {"auroc": 1.0, "aupr_in": 1.0, "aupr_out": 1.0, "fpr95": 0.0}
    same = ood_detection(torch.zeros(4), torch.zeros(4))
    assert same["auroc"] == 0.5 and same["fpr95"] == 1.0 and same["aupr_in"] == 0.5


def test_confidence_scores_by_hand():
    logits = torch.tensor([[2.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    scores = confidence_scores(logits, p=2, normalized_temperature=0.5)
    e = math.e ** 2
    assert scores["msp"].tolist() == pytest.approx([e / (e + 2), 1 / 3])
    assert scores["max_logit"].tolist() == pytest.approx([2.0, 1.0])
    assert scores["energy"].tolist() == pytest.approx([math.log(e + 2), 1 + math.log(3)])
    p = [e / (e + 2), 1 / (e + 2), 1 / (e + 2)]
    assert scores["neg_entropy"].tolist() == pytest.approx([sum(q * math.log(q) for q in p), math.log(1 / 3)])
    # normalised first row: [1, 0, 0] / 0.5 = [2, 0, 0]: the same MSP as the raw logits
    assert scores["msp_normalized"].tolist() == pytest.approx([e / (e + 2), 1 / 3])


def loop_binned_gap(values, outcomes, bins, weighted=True):
    """Binned |mean value - mean outcome| by a plain loop over bins [b/B, (b+1)/B), 1.0 in the last."""
    gaps = []
    for b in range(bins):
        members = [i for i, v in enumerate(values)
                   if b / bins <= v < (b + 1) / bins or (b == bins - 1 and v == 1)]
        if members:
            gap = abs(sum(values[i] for i in members) / len(members) - sum(outcomes[i] for i in members) / len(members))
            gaps.append(gap * len(members) / len(values) if weighted else gap)
    return sum(gaps) if weighted else max(gaps)


def random_probs(count=400, classes=5, seed=0):
    generator = torch.Generator().manual_seed(seed)
    probs = (2 * torch.randn(count, classes, generator=generator, dtype=torch.float64)).softmax(dim=1)
    # rows whose values lie on bin edges (0, 0.2, 0.4, 1 with 15 bins: 0.2 = 3/15) test the edges' side
    probs[:3] = torch.tensor([[1.0, 0, 0, 0, 0], [0.4, 0.2, 0.2, 0.2, 0.0], [0.6, 0.4, 0, 0, 0]], dtype=torch.float64)
    labels = torch.multinomial(probs ** 0.7, 1, generator=generator).squeeze(1)
    return probs, labels


def test_classwise_ece_and_max_calibration_error_match_a_loop_over_bins():
    probs, labels = random_probs()
    expected = sum(loop_binned_gap(probs[:, k].tolist(), (labels == k).double().tolist(), 15)
                   for k in range(probs.shape[1])) / probs.shape[1]
    assert classwise_ece(probs, labels) == pytest.approx(expected, abs=1e-12)
    confidence, prediction = probs.max(dim=1)
    correct = (prediction == labels).double().tolist()
    assert max_calibration_error(probs, labels) == pytest.approx(
        loop_binned_gap(confidence.tolist(), correct, 15, weighted=False), abs=1e-12)
    for cls, function in ((ClasswiseCalibrationError, classwise_ece), (MaxCalibrationError, max_calibration_error)):
        metric = cls()
        for part in zip(probs.split(150), labels.split(150)):
            metric.update(*part)
        assert float(metric.compute()) == pytest.approx(function(probs, labels), abs=1e-12)


def test_smooth_ece_at_a_bandwidth_matches_quadrature_of_the_reflected_kernel():
    generator = torch.Generator().manual_seed(0)
    confidence = torch.rand(40, generator=generator, dtype=torch.float64)
    outcome = (torch.rand(40, generator=generator, dtype=torch.float64) < 0.6).double()
    sigma = 0.07

    def smoothed(t):
        kernel = [sum(stats.norm.pdf(t, 2 * k + f, sigma) + stats.norm.pdf(t, 2 * k - f, sigma) for k in range(-3, 4))
                  for f in confidence.tolist()]
        return abs(sum(w * (y - f) for w, y, f in zip(kernel, outcome.tolist(), confidence.tolist())) / 40)

    expected = integrate.quad(smoothed, 0, 1, limit=200)[0]
    assert smooth_ece_at(confidence, outcome, sigma) == pytest.approx(expected, abs=1e-5)


def test_smooth_ece_known_answers():
    # every confidence 0.5 and every prediction right: the residual 0.5 everywhere, at any bandwidth
    probs = torch.tensor([[0.5, 0.5]]).repeat(100, 1)
    assert smooth_ece(probs, torch.zeros(100, dtype=torch.long)) == pytest.approx(0.5, abs=1e-6)
    # calibrated: labels drawn from the probabilities give a small smECE; shifting confidence by 0.1 gives ~0.1
    generator = torch.Generator().manual_seed(0)
    confidence = 0.5 + 0.4 * torch.rand(20_000, generator=generator, dtype=torch.float64)
    right = torch.rand(20_000, generator=generator, dtype=torch.float64) < confidence
    labels = torch.where(right, 0, 1)
    calibrated = torch.stack([confidence, 1 - confidence], dim=1)
    assert smooth_ece(calibrated, labels) < 0.02
    shifted = torch.stack([confidence + 0.09, 0.91 - confidence], dim=1)
    assert smooth_ece(shifted, labels) == pytest.approx(0.09, abs=0.02)
