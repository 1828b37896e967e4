"""Errors a library user sees: this package's own types, naming the argument and its value; no bare builtins."""

from __future__ import annotations

import ast

import pytest
import torch
from conftest import ROOT

from infomatch.augment import apply_degradations
from infomatch.data.batch import TrainingBatch
from infomatch.labels import ConfidenceSmoothing, ScheduleSmoothing
from infomatch.metrics import aurc, risk_at_coverage
from infomatch.metrics.ood import auroc
from infomatch.metrics.scalers import fit_scaler
from infomatch.models import ResNet18
from infomatch.training.loggers import CSVLogger, TensorBoardLogger
from infomatch.training.module import InfoMatchModule
from infomatch.utils.checks import CallOrderError, SettingError

BUILTINS = {"ValueError", "RuntimeError", "TypeError", "KeyError", "IndexError", "Exception", "AssertionError"}


def raised_names(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(exc, ast.Name):
                found.append((node.lineno, exc.id))
        elif isinstance(node, ast.Assert):
            found.append((node.lineno, "assert"))
    return found


def test_the_scan_sees_builtin_raises_and_asserts():
    tree = ast.parse("def f(x):\n    assert x\n    raise ValueError('x')\n    raise SettingError('x', x, 'no')\n")
    assert raised_names(tree) == [(2, "assert"), (3, "ValueError"), (4, "SettingError")]


def test_the_package_raises_its_own_exception_types_and_never_asserts_on_arguments():
    offenders = [f"{path.relative_to(ROOT)}:{line} {name}"
                 for path in sorted((ROOT / "src" / "infomatch").rglob("*.py"))
                 for line, name in raised_names(ast.parse(path.read_text()))
                 if name in BUILTINS or name == "assert"]
    assert offenders == []


def batch(classes: int = 4) -> TrainingBatch:
    images = torch.rand(classes, 3, 8, 8)
    return TrainingBatch(clean=images, degraded=images, classes=torch.arange(classes),
                         degradation=torch.zeros(classes, dtype=torch.long), level=torch.zeros(classes))


@pytest.mark.parametrize(("call", "message"), [
    (lambda: fit_scaler("platt", torch.zeros(4, 3), torch.zeros(4, dtype=torch.long)),
     "kind=platt must be one of: vector, matrix, dirichlet"),
    (lambda: auroc(torch.zeros(3, 2), torch.zeros(3)), "(score_in.shape, score_out.shape)=((3, 2), (3,))"),
    (lambda: aurc(torch.zeros(3), torch.zeros(4)), "(confidence.shape, correct.shape)=((3,), (4,))"),
    (lambda: risk_at_coverage(torch.zeros(3), torch.ones(3), coverage=0), "coverage=0 must be a number in (0, 1]"),
    (lambda: apply_degradations(torch.zeros(2, 3, 8, 8), torch.zeros(2, dtype=torch.long), torch.zeros(2),
                                torch.Generator(), blur_radius=3), "settings=['blur_radius'] are unknown"),
    (lambda: InfoMatchModule(ResNet18(num_classes=4, width=4), None, torch.optim.SGD, compile="fast"),
     "speed.compile=fast must be one of"),
])
def test_wrong_arguments_raise_a_setting_error_naming_the_argument_and_value(call, message):
    with pytest.raises(SettingError) as raised:
        call()
    assert message in str(raised.value)


@pytest.mark.parametrize(("strategy", "needed"), [(ScheduleSmoothing(), "fit()"),
                                                  (ConfidenceSmoothing(reference="reference.ckpt"), "fit_reference()")])
def test_strategies_used_before_their_estimate_say_which_call_comes_first(strategy, needed):
    with pytest.raises(CallOrderError, match=r"call .* before training") as raised:
        strategy(batch(), 4)
    assert raised.value.needed.startswith(needed)


@pytest.mark.parametrize("logger_class", [CSVLogger, TensorBoardLogger])
def test_loggers_refuse_continue_from_after_writing(logger_class, tmp_path):
    logger = logger_class(save_dir=str(tmp_path))
    logger.continue_from(3)  # allowed before anything is written
    logger.log_metrics({"loss": 1.0}, step=3)
    with pytest.raises(CallOrderError, match=r"call continue_from\(\) before the logger writes anything"):
        logger.continue_from(5)
