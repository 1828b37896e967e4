"""Target strategies and the soft-target cross-entropy."""

import math

import pytest
import torch
import torch.nn.functional as F

from infomatch.augment import mosaic
from infomatch.batch import TrainingBatch
from infomatch.losses import soft_cross_entropy
from infomatch.nmi import nmi
from infomatch.targets import (
    HardLabels,
    InformationMatching,
    LabelSmoothing,
    im_epsilon,
    one_hot,
    smooth,
)

K = 100


def record(clean, degraded, labels):
    """A TrainingBatch as the data stage hands it over (type and level do not matter to these strategies)."""
    none = torch.full(labels.shape, -1)
    return TrainingBatch(clean=clean, degraded=degraded, labels=labels, degradation=none, level=torch.zeros(labels.shape))


def batch(size=16, seed=0):
    generator = torch.Generator().manual_seed(seed)
    clean = torch.rand(size, 3, 32, 32, generator=generator)
    labels = torch.randint(K, (size,), generator=generator)
    return clean, labels


def test_one_hot():
    targets = one_hot(torch.tensor([2, 0]), 4)
    assert targets.dtype == torch.float32
    assert targets.tolist() == [[0, 0, 1, 0], [1, 0, 0, 0]]


@pytest.mark.parametrize("spread", ["all", "others"])
def test_smooth_rows_sum_to_one_and_argmax_is_the_label(spread):
    labels = torch.randint(K, (64,), generator=torch.Generator().manual_seed(0))
    epsilon = torch.linspace(0, 0.9, 64)
    targets = smooth(labels, K, epsilon, spread)
    torch.testing.assert_close(targets.sum(1), torch.ones(64))
    assert torch.equal(targets.argmax(1), labels)


def test_smooth_formulas():
    labels = torch.tensor([1, 3])
    epsilon = torch.tensor([0.2, 0.5])
    expected_all = torch.tensor([[0.05, 0.85, 0.05, 0.05], [0.125, 0.125, 0.125, 0.625]])
    expected_others = torch.tensor([[0.2 / 3, 0.8, 0.2 / 3, 0.2 / 3], [0.5 / 3, 0.5 / 3, 0.5 / 3, 0.5]])
    torch.testing.assert_close(smooth(labels, 4, epsilon, "all"), expected_all)
    torch.testing.assert_close(smooth(labels, 4, epsilon, "others"), expected_others)
    torch.testing.assert_close(smooth(labels, 4, 0.2, "all")[0], expected_all[0])
    with pytest.raises(ValueError, match="spread"):
        smooth(labels, 4, 0.1, "some")


def test_im_epsilon_clamps_one_minus_nmi():
    values = torch.tensor([1.0, 0.75, 0.3, 0.05, 0.0, 1.2])
    torch.testing.assert_close(im_epsilon(values, 0.9), torch.tensor([0.0, 0.25, 0.7, 0.9, 0.9, 0.0]))
    torch.testing.assert_close(im_epsilon(values, 0.5), torch.tensor([0.0, 0.25, 0.5, 0.5, 0.5, 0.0]))


def test_hard_labels_and_plain_cross_entropy():
    clean, labels = batch()
    strategy = HardLabels()
    targets, epsilon = strategy(record(clean, clean, labels), K)
    assert strategy.name == "hard"
    assert torch.equal(targets, F.one_hot(labels, K).float()) and torch.all(epsilon == 0)
    logits = torch.randn(16, K, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(soft_cross_entropy(logits, targets), F.cross_entropy(logits, labels))


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
def test_label_smoothing_loss_equals_torch_label_smoothing(eps):
    clean, labels = batch()
    strategy = LabelSmoothing(epsilon=eps)
    targets, epsilon = strategy(record(clean, clean, labels), K)
    assert strategy.name == "ls"
    torch.testing.assert_close(epsilon, torch.full((16,), eps))
    logits = torch.randn(16, K, generator=torch.Generator().manual_seed(1)) * 3
    expected = F.cross_entropy(logits, labels, label_smoothing=eps)
    torch.testing.assert_close(soft_cross_entropy(logits, targets), expected)


def test_soft_cross_entropy_bf16_logits_computed_in_float32():
    clean, labels = batch()
    targets, _ = LabelSmoothing(0.1)(record(clean, clean, labels), K)
    logits = torch.randn(16, K, generator=torch.Generator().manual_seed(1)).bfloat16()
    loss = soft_cross_entropy(logits, targets)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, F.cross_entropy(logits.float(), labels, label_smoothing=0.1))


@pytest.mark.parametrize("spread", ["all", "others"])
def test_information_matching_epsilon_and_targets(spread):
    clean, labels = batch()
    degraded = mosaic(clean, torch.linspace(0, 1, 16))
    degraded[-1] = clean[-1]  # identical image: NMI 1 -> epsilon 0
    strategy = InformationMatching(eps_max=0.9, bins=64, spread=spread)
    targets, epsilon = strategy(record(clean, degraded, labels), K)
    assert strategy.name == "im"
    expected_eps = (1 - nmi(clean, degraded, 64)).clamp(0, 0.9)
    torch.testing.assert_close(epsilon, expected_eps)
    assert epsilon[-1] == 0 and epsilon[0] < 0.05 and epsilon.max() > 0.5  # level 0 is (nearly) intact
    torch.testing.assert_close(targets, smooth(labels, K, expected_eps, spread))
    rows = torch.arange(16)
    torch.testing.assert_close(targets[rows, labels], 1 - epsilon + (epsilon / K if spread == "all" else 0))


def test_information_matching_hand_checked_epsilon():
    # a: left half 0, right half 1; b: a with the bottom half zeroed.
    # p(a, b) = {(0, 0): 1/2, (1, 1): 1/4, (1, 0): 1/4}; p(a) = (1/2, 1/2); p(b) = (3/4, 1/4)
    a = torch.zeros(1, 3, 32, 32)
    a[..., 16:] = 1
    b = a.clone()
    b[..., 16:, :] = 0
    h_a = math.log(2)
    h_b = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    mutual = 0.5 * math.log(0.5 / (0.5 * 0.75)) + 0.25 * math.log(0.25 / (0.5 * 0.25)) \
        + 0.25 * math.log(0.25 / (0.5 * 0.75))
    expected = 1 - 2 * mutual / (h_a + h_b)
    _, epsilon = InformationMatching()(record(a, b, torch.tensor([3])), K)
    torch.testing.assert_close(epsilon, torch.tensor([expected]))


@pytest.mark.parametrize(
    "factory",
    [
        lambda: LabelSmoothing(epsilon=1.0),
        lambda: LabelSmoothing(epsilon=-0.1),
        lambda: LabelSmoothing(spread="some"),
        lambda: InformationMatching(eps_max=1.5),
        lambda: InformationMatching(bins=1),
        lambda: InformationMatching(spread="none"),
    ],
)
def test_invalid_parameters_raise(factory):
    with pytest.raises(ValueError):
        factory()
