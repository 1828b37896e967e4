import torch

from infomatch.epsilon_curve import epsilon_curves, plot_epsilon_curves, unrelated_pairs_nmi
from infomatch.nmi import nmi


def test_epsilon_is_zero_at_level_zero_and_grows_with_level(tmp_path):
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(8, 3, 4, 4, generator=generator).repeat_interleave(8, 2).repeat_interleave(8, 3)
    levels = torch.tensor([0.0, 0.5, 1.0])
    curves = epsilon_curves(images, levels)
    for name, epsilon in curves.items():
        assert epsilon.shape == (3, 8)
        # blur at d=0 still has sigma 0.01 (no visible change); every other type is exactly the identity
        assert epsilon[0].max() < 1e-6, name
        assert epsilon[2].mean() > epsilon[0].mean(), name
        assert epsilon.max() <= 0.9 + 1e-6
    plot_epsilon_curves(levels, curves, float(unrelated_pairs_nmi(images).mean()), 0.9, tmp_path / "curve.png")
    assert (tmp_path / "curve.png").stat().st_size > 0


def test_unrelated_images_score_far_below_identical_ones():
    images = torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    identical = nmi(images, images)
    unrelated = unrelated_pairs_nmi(images)
    torch.testing.assert_close(identical, torch.ones(16))
    assert unrelated.shape == (16,) and torch.all(unrelated < identical - 0.5)
