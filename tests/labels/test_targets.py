"""Target strategies and the soft-target cross-entropy."""

import math

import pytest
import torch
import torch.nn.functional as F
from torchmetrics.functional.image import structural_similarity_index_measure

from infomatch.augment import DEGRADATIONS, Degrader, apply_degradations, mosaic
from infomatch.data.batch import TrainingBatch
from infomatch.labels.nmi import nmi
from infomatch.labels.strategies import (
    HardLabels,
    InformationMatching,
    LabelSmoothing,
    LevelSmoothing,
    MatchedSmoothing,
    ScheduleSmoothing,
    im_epsilon,
    one_hot,
    smooth,
)
from infomatch.training.loss import soft_cross_entropy
from infomatch.utils.checks import CallOrderError, SettingError

K = 100


def record(clean, degraded, labels):
    """A TrainingBatch as the data stage hands it over (type and level do not matter to these strategies)."""
    none = torch.full(labels.shape, -1)
    return TrainingBatch(clean=clean, degraded=degraded, classes=labels, degradation=none,
                         level=torch.zeros(labels.shape))


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
        lambda: InformationMatching(measure="mse"),
        lambda: InformationMatching(measure="nmi_adjusted", chance_nmi=1.0),
        lambda: LevelSmoothing(eps_max=1.2),
        lambda: MatchedSmoothing(epsilon=1.0),
        lambda: ScheduleSmoothing(levels=1),
        lambda: ScheduleSmoothing(levels=3, table={"blur": [0.0, 0.5]}),
        lambda: ScheduleSmoothing(levels=2, table={"speckle": [0.0, 0.5]}),
    ],
)
def test_invalid_parameters_raise(factory):
    with pytest.raises(ValueError):
        factory()


def degraded_record(size=32, seed=0, types=("diffusion", "blur", "dropout", "mosaic")):
    """A batch degraded by Degrader as the stage does it, with its type and level per sample."""
    clean, labels = batch(size, seed)
    generator = torch.Generator().manual_seed(seed)
    degraded, degradation, level = Degrader(types, probability=0.75, sampling="iid")(clean, generator)
    return TrainingBatch(clean=clean, degraded=degraded, classes=labels, degradation=degradation, level=level)


def test_level_smoothing_is_eps_max_times_the_level_whatever_the_type():
    record_ = degraded_record()
    assert (record_.degradation < 0).any() and (record_.degradation >= 0).any()
    targets, epsilon = LevelSmoothing(eps_max=0.8)(record_, K)
    expected = [0.8 * level if kind >= 0 else 0.0 for kind, level in zip(record_.degradation.tolist(),
                                                                          record_.level.tolist())]
    torch.testing.assert_close(epsilon, torch.tensor(expected))
    torch.testing.assert_close(targets, smooth(record_.classes, K, torch.tensor(expected)))
    assert LevelSmoothing.name == "level"


def fit_sample(size=48, seed=3):
    return torch.rand(size, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_matched_epsilon_is_the_mean_im_epsilon_of_its_estimation_sample():
    clean = fit_sample()
    degrader = Degrader(("blur", "dropout"), sampling="iid")
    strategy = MatchedSmoothing()
    estimates = strategy.fit(clean, degrader, torch.Generator().manual_seed(7))
    # the same draws, by hand: types and levels per image, then 1 - NMI per image, clamped
    generator = torch.Generator().manual_seed(7)
    types, level = degrader.sample(len(clean), "cpu", generator)
    degraded = apply_degradations(clean, types, level, generator, **degrader.settings)
    by_hand = sum(min(max(1 - float(nmi(clean[i:i + 1], degraded[i:i + 1])), 0), 0.9) for i in range(len(clean)))
    assert estimates == {"epsilon": strategy.epsilon}
    assert strategy.epsilon == pytest.approx(by_hand / len(clean), abs=1e-6)
    _, epsilon = strategy(degraded_record(), K)
    assert torch.all(epsilon == strategy.epsilon)


def test_matched_epsilon_given_skips_the_estimate():
    strategy = MatchedSmoothing(epsilon=0.3)
    assert strategy.fit(fit_sample(), Degrader(), torch.Generator()) == {"epsilon": 0.3}
    with pytest.raises(CallOrderError, match=r"call fit\(\)"):
        MatchedSmoothing()(degraded_record(), K)


def test_schedule_reproduces_its_table_at_grid_points_and_interpolates_between_them():
    clean = fit_sample(16)
    degrader = Degrader(("dropout", "mosaic"))
    strategy = ScheduleSmoothing(levels=5)
    estimates = strategy.fit(clean, degrader, torch.Generator().manual_seed(1))
    table = estimates["table"]
    assert set(table) == {"dropout", "mosaic"} and all(len(row) == 5 for row in table.values())
    # the table itself, by hand: the mean IM epsilon of the sample at each level
    generator = torch.Generator().manual_seed(1)
    for name in ("dropout", "mosaic"):
        for index, level in enumerate([0.0, 0.25, 0.5, 0.75, 1.0]):
            types = torch.full((16,), DEGRADATIONS.index(name))
            degraded = apply_degradations(clean, types, torch.full((16,), level), generator, **degrader.settings)
            assert table[name][index] == pytest.approx(float(im_epsilon(nmi(clean, degraded)).mean()), abs=1e-6)
    # grid points, midpoints, a quarter of the way, and an image that was not degraded
    kinds = ["dropout", "mosaic", "mosaic", "dropout", "mosaic", None]
    levels = [0.25, 1.0, 0.625, 0.8, 0.5, 0.0]
    dropout, mosaic_row = table["dropout"], table["mosaic"]
    expected = [dropout[1], mosaic_row[4], (mosaic_row[2] + mosaic_row[3]) / 2,
                dropout[3] + 0.2 * (dropout[4] - dropout[3]), mosaic_row[2], 0.0]
    record_ = TrainingBatch(clean=clean[:6], degraded=clean[:6], classes=torch.arange(6),
                            degradation=torch.tensor([-1 if kind is None else DEGRADATIONS.index(kind)
                                                      for kind in kinds]),
                            level=torch.tensor(levels))
    targets, epsilon = strategy(record_, K)
    torch.testing.assert_close(epsilon, torch.tensor(expected))
    torch.testing.assert_close(targets, smooth(record_.classes, K, torch.tensor(expected)))


def test_schedule_table_given_must_cover_the_run_degradations():
    strategy = ScheduleSmoothing(levels=2, table={"blur": [0.0, 0.5]})
    with pytest.raises(SettingError, match="dropout"):
        strategy.fit(fit_sample(4), Degrader(("blur", "dropout")), torch.Generator())


def test_nmi_adjusted_on_pairs_with_known_nmi():
    # identical images: NMI 1; the hand-checked pair of test_information_matching_hand_checked_epsilon: NMI known
    a = torch.zeros(2, 3, 32, 32)
    a[..., 16:] = 1
    b = a.clone()
    b[1, :, 16:, :] = 0
    h_a, h_b = math.log(2), -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    mutual = 0.5 * math.log(0.5 / (0.5 * 0.75)) + 0.25 * math.log(0.25 / (0.5 * 0.25)) \
        + 0.25 * math.log(0.25 / (0.5 * 0.75))
    known = 2 * mutual / (h_a + h_b)
    chance = 0.25
    strategy = InformationMatching(measure="nmi_adjusted", chance_nmi=chance)
    _, epsilon = strategy(record(a, b, torch.tensor([0, 1])), K)
    torch.testing.assert_close(epsilon, torch.tensor([0.0, 1 - (known - chance) / (1 - chance)]))
    # below the chance level: adjusted NMI 0, so epsilon is eps_max
    _, epsilon = InformationMatching(measure="nmi_adjusted", chance_nmi=0.9,
                                     eps_max=0.7)(record(a, b, torch.tensor([0, 1])), K)
    assert epsilon[1] == pytest.approx(0.7)


def test_nmi_adjusted_estimates_chance_as_the_mean_nmi_of_unrelated_pairs():
    clean = fit_sample(8)
    strategy = InformationMatching(measure="nmi_adjusted")
    estimates = strategy.fit(clean, Degrader(), torch.Generator())
    by_hand = sum(float(nmi(clean[i:i + 1], clean[i - 1:i] if i else clean[-1:])) for i in range(8)) / 8
    assert estimates == {"chance_nmi": pytest.approx(by_hand, abs=1e-6)}
    assert InformationMatching(measure="nmi_adjusted", chance_nmi=0.3).fit(clean, Degrader(), torch.Generator()) == \
        {"chance_nmi": 0.3}
    with pytest.raises(CallOrderError, match=r"call fit\(\)"):
        InformationMatching(measure="nmi_adjusted")(record(clean, clean, torch.zeros(8, dtype=torch.long)), K)


def test_ssim_measure_against_torchmetrics_image_by_image():
    record_ = degraded_record(8)
    _, epsilon = InformationMatching(measure="ssim", eps_max=0.9)(record_, K)
    for i in range(8):
        similarity = structural_similarity_index_measure(record_.degraded[i:i + 1], record_.clean[i:i + 1],
                                                         data_range=1.0)
        assert float(epsilon[i]) == pytest.approx(min(max(1 - float(similarity), 0), 0.9), abs=1e-5)
    assert (epsilon[record_.degradation < 0] == 0).all() and epsilon.max() > 0.3
