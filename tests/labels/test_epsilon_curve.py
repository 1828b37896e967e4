import argparse
import importlib
import subprocess
import sys

import pytest
import torch

from infomatch.augment import DEGRADATIONS
from infomatch.labels.epsilon_curve import epsilon_curves, plot_epsilon_curves
from infomatch.labels.measures import MEASURES, adjusted_nmi, ssim
from infomatch.labels.nmi import chance_nmi, nmi
from infomatch.labels.strategies import MeasuredSmoothing


def test_every_measure_is_zero_at_level_zero_and_grows_with_level(tmp_path):
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(8, 3, 4, 4, generator=generator).repeat_interleave(8, 2).repeat_interleave(8, 3)
    levels = torch.tensor([0.0, 0.5, 1.0])
    curves = epsilon_curves(images, levels)
    assert set(curves) == set(MEASURES)
    for measure, by_type in curves.items():
        assert set(by_type) == set(DEGRADATIONS)
        for name, epsilon in by_type.items():
            assert epsilon.shape == (3, 8)
            # blur at d=0 still has sigma 0.01 (no visible change); heat keeps Mollification's smallest scale,
            # 0.3 px, which damps the finest detail; every other type is exactly the identity
            if name == "heat":  # and may already saturate there
                assert epsilon[2].mean() >= epsilon[0].mean(), (measure, name)
            else:
                assert epsilon[0].max() < 1e-4, (measure, name)
                assert epsilon[2].mean() > epsilon[0].mean(), (measure, name)
            assert epsilon.max() <= 0.9 + 1e-6
    # the measures differ from each other on the same degraded images; at the identity they agree (0)
    assert not torch.allclose(curves["nmi"]["dropout"][1:], curves["ssim"]["dropout"][1:])
    assert torch.all(curves["nmi_adjusted"]["dropout"] >= curves["nmi"]["dropout"] - 1e-6)  # E0 > 0 lowers similarity
    plot_epsilon_curves(levels, curves, float(chance_nmi(images).mean()), 0.9, tmp_path / "curve.png")
    assert (tmp_path / "curve.png").stat().st_size > 0


def test_measured_epsilon_is_one_minus_each_similarity_clamped():
    generator = torch.Generator().manual_seed(2)
    clean = torch.rand(6, 3, 32, 32, generator=generator)
    degraded = (clean + 0.3 * torch.rand(6, 3, 32, 32, generator=generator)).clamp(0, 1)
    expected = {"nmi": 1 - nmi(clean, degraded), "nmi_adjusted": 1 - adjusted_nmi(nmi(clean, degraded), 0.2),
                "ssim": 1 - ssim(clean, degraded)}
    for measure in MEASURES:
        epsilon = MeasuredSmoothing(measure=measure, chance_nmi=0.2).measured_epsilon(clean, degraded)
        torch.testing.assert_close(epsilon, expected[measure].clamp(0, 0.9))


def test_unrelated_images_score_far_below_identical_ones():
    images = torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    identical = nmi(images, images)
    unrelated = chance_nmi(images)
    torch.testing.assert_close(identical, torch.ones(16))
    assert unrelated.shape == (16,) and torch.all(unrelated < identical - 0.5)


@pytest.mark.parametrize("module", ["infomatch.tasks.epsilon_curve", "infomatch.tasks.results",
                                    "infomatch.tasks.confidence_table"])
def test_help_documents_every_option_without_loading_torch(module):
    """--help answers at once: torch (seconds to import) is loaded only once the command runs."""
    probe = (f"import sys, contextlib, io; from {module} import main\n"
             "out = io.StringIO()\n"
             "with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit): main(['--help'])\n"
             "print(out.getvalue()); print('torch loaded:', 'torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.stdout.rstrip().endswith("torch loaded: False"), result.stdout + result.stderr
    parsers = [importlib.import_module(module).command_line()]
    for parser in parsers:  # with each subcommand's own parser
        parsers += [sub for action in parser._actions if isinstance(action, argparse._SubParsersAction)
                    for sub in action.choices.values()]
        undocumented = [action.dest for action in parser._actions if not action.help]
        assert not undocumented, f"{parser.prog}: {undocumented}"
