"""Batched NMI against scikit-learn's normalized_mutual_info_score on the binned pixels."""

import numpy as np
import pytest
import torch
from sklearn.metrics import normalized_mutual_info_score

from infomatch.augment import blur, diffusion, dropout, mosaic
from infomatch.labels.nmi import nmi, quantize


def sklearn_nmi(a, b, bins):
    """Per image: mean over channels of sklearn's NMI of the floor(x * (bins - 1)) labels."""
    def labels(channel):
        return np.clip(np.floor(channel.numpy() * (bins - 1)), 0, bins - 1).astype(np.int64).ravel()

    return torch.tensor([
        np.mean([normalized_mutual_info_score(labels(ca), labels(cb), average_method="arithmetic")
                 for ca, cb in zip(image_a, image_b)])
        for image_a, image_b in zip(a, b)
    ], dtype=torch.float32)


def rand(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def test_quantize_bins():
    x = torch.tensor([0.0, 0.5, 1 / 63 - 1e-6, 1 / 63 + 1e-6, 0.999, 1.0, 1.5, -0.2])
    assert quantize(x, 64).tolist() == [0, 31, 0, 1, 62, 63, 63, 0]
    assert quantize(x, 64).dtype == torch.float32  # whole numbers, cast to int64 once in nmi()


@pytest.mark.parametrize("bins", [16, 64])
@pytest.mark.parametrize("size", [(32, 32), (40, 24)])
def test_nmi_matches_sklearn_on_random_and_degraded_images(bins, size):
    clean = rand(20, 3, *size)
    level = rand(20, seed=1)
    generator = torch.Generator().manual_seed(2)
    degraded = torch.cat([
        rand(4, 3, *size, seed=3),  # unrelated images
        diffusion(clean[4:8], level[4:8], generator),
        blur(clean[8:12], level[8:12], 10.0, 11),
        dropout(clean[12:16], level[12:16], 8, generator),
        mosaic(clean[16:20], level[16:20]),
    ])
    torch.testing.assert_close(nmi(clean, degraded, bins), sklearn_nmi(clean, degraded, bins), atol=1e-5, rtol=0)


def test_nmi_of_identical_images_is_one():
    x = rand(6, 3, 32, 32)
    torch.testing.assert_close(nmi(x, x), torch.ones(6), atol=1e-6, rtol=0)


@pytest.mark.parametrize("size", [(32, 32), (40, 24), (7, 11)])  # pixel counts that are not powers of two too
def test_nmi_constant_channels_follow_sklearn(size):
    a, b = rand(4, 3, *size, seed=0), rand(4, 3, *size, seed=1)
    a[0], b[0] = 0.3, 0.3  # both constant: identical information -> 1
    a[1], b[1] = 0.3, 0.8  # both constant, different values -> still 1
    a[2] = 0.5  # only one constant: no shared information -> 0
    b[3] = 0.5
    expected = sklearn_nmi(a, b, 64)
    assert expected[:2].tolist() == [1.0, 1.0] and expected[2:].tolist() == [0.0, 0.0]
    torch.testing.assert_close(nmi(a, b), expected, atol=1e-6, rtol=0)


def test_nmi_is_batch_independent_and_symmetric():
    a, b = rand(8, 3, 32, 32, seed=0), mosaic(rand(8, 3, 32, 32, seed=0), rand(8, seed=4))
    batched = nmi(a, b)
    one_by_one = torch.cat([nmi(a[i:i + 1], b[i:i + 1]) for i in range(8)])
    torch.testing.assert_close(batched, one_by_one, atol=1e-7, rtol=0)
    torch.testing.assert_close(nmi(b, a), batched, atol=1e-6, rtol=0)
    assert batched.dtype == torch.float32 and batched.shape == (8,)


def test_nmi_on_large_images_matches_sklearn():
    # over 2**15 pixels per channel: the counts no longer fit int16 and take the int32 path
    a = rand(2, 3, 200, 180, seed=0)
    b = blur(a, torch.tensor([0.05, 0.5]), 10.0, 11)
    torch.testing.assert_close(nmi(a, b), sklearn_nmi(a, b, 64), atol=1e-5, rtol=0)


@pytest.mark.parametrize("bins", [1, 4097])
def test_bins_outside_the_exact_range_are_refused(bins):
    with pytest.raises(ValueError, match=rf"bins={bins} must be an integer in \[2, 4096\]"):
        nmi(rand(1, 3, 8, 8), rand(1, 3, 8, 8, seed=1), bins)
