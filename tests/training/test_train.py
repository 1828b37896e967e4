"""End-to-end training on synthetic data: every label strategy, degradations on and off, a real sweep."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, compose_config

from infomatch.tasks.train import train


@pytest.mark.parametrize("labels", ["hard", "ls", "im"])
def test_fast_dev_run_each_label_strategy(make_config, labels):
    metrics = train(make_config("debug=fast_dev_run", f"labels={labels}", "augment=all"))
    assert metrics["epochs"] == 1


@pytest.mark.parametrize("augment", ["all", "none"])
def test_fast_dev_run_with_and_without_degradations(tmp_path, augment):
    im, hard = (train(compose_config(["debug=fast_dev_run", f"labels={labels}", f"augment={augment}"],
                                     tmp_path / labels))
                for labels in ("im", "hard"))
    if augment == "none":
        # every degraded image is the clean one: NMI 1, epsilon 0, so IM takes exactly the steps hard labels take
        assert im["val"] == hard["val"]
    else:
        assert im["val"]["val/nll"] != hard["val"]["val/nll"]


@pytest.mark.parametrize("labels", ["matched", "level", "schedule", "im labels.measure=nmi_adjusted",
                                    "im labels.measure=ssim"])
def test_fast_dev_run_each_control_and_measure(make_config, labels):
    metrics = train(make_config("debug=fast_dev_run", *f"labels={labels}".split(), "augment=all",
                                "estimation.images=32", *(["labels.levels=3"] if labels == "schedule" else [])))
    assert metrics["epochs"] == 1


def test_estimates_are_written_to_metrics_json_and_the_checkpoints(make_config, tmp_path):
    import torch
    from hydra.utils import instantiate

    from infomatch.labels.strategies import MatchedSmoothing
    from infomatch.tasks.train import build_datamodule, fit_label_strategy

    overrides = ["debug=fast", "labels=matched", "labels.measure=nmi_adjusted", "estimation.images=64",
                 "data.train_size=192", "data.val_size=64", "test=false"]
    metrics = train(make_config(*overrides))
    estimates = metrics["label_estimates"]
    assert 0 < estimates["chance_nmi"] < 1 and 0 < estimates["epsilon"] < 0.9
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["label_estimates"] == estimates
    checkpoint = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert checkpoint["infomatch_label_estimates"] == estimates
    # the same sample and draws give the same estimate: every seed of a sweep is matched to the same IM epsilon
    cfg = compose_config([*overrides, "seed=1"], tmp_path / "seed1")
    assert fit_label_strategy(instantiate(cfg.labels), build_datamodule(cfg), 64, cfg.estimation.seed) == estimates
    # and labels.epsilon overrides it
    given = MatchedSmoothing(epsilon=0.25)
    assert given.fit(torch.rand(2, 3, 32, 32), None, torch.Generator())["epsilon"] == 0.25


def test_console_prints_each_lightning_message_once_and_no_tips(tmp_path):
    command = [sys.executable, str(ROOT / "train.py"), "debug=fast_dev_run", "data.train_size=128", "data.val_size=64",
               "data.test_size=64", f"hydra.run.dir={tmp_path}/run"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert result.returncode == 0, result.stderr[-3000:]
    console = result.stdout + result.stderr
    assert console.count("Seed set to 0") == 1 and console.count("GPU available:") == 1, console[-3000:]
    assert "Tip:" not in console and "litlogger" not in console and "litmodels" not in console


def test_one_epoch_writes_checkpoints_and_metrics(make_config, tmp_path):
    cfg = make_config("debug=fast", "labels=im", "trainer.max_epochs=2")
    metrics = train(cfg)
    run_dir = tmp_path / "run"
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    for name in ("top1", "top5", "nll", "ece"):
        assert 0 <= saved["test"][f"test/{name}"] and f"val/{name}" in saved["val"]
    checkpoints = sorted(path.name for path in (run_dir / "checkpoints").iterdir())
    assert "last.ckpt" in checkpoints
    best = [name for name in checkpoints if name.startswith("best_epoch")]
    assert len(best) == 1 and "=" not in best[0] and "," not in best[0]
    assert (run_dir / "csv" / "metrics.csv").is_file()


def test_epoch_means_of_training_accuracy_and_epsilon_are_logged(make_config, tmp_path):
    train(make_config("debug=fast", "labels=ls", "labels.epsilon=0.1", "trainer.max_epochs=2"))
    with open(tmp_path / "run" / "csv" / "metrics.csv", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row.get("train/epsilon")]
    assert [int(row["epoch"]) for row in rows] == [0, 1]
    for row in rows:
        assert float(row["train/epsilon"]) == pytest.approx(0.1)  # every sample got the fixed epsilon
        assert 0 <= float(row["train/top1"]) <= 1


def test_learns_synthetic_classes(make_config):
    metrics = train(make_config("debug=fast", "labels=hard", "augment=none", "trainer.max_epochs=3",
                                "data.train_size=1024"))
    assert metrics["test"]["test/top1"] > 0.5  # 10 classes: chance is 0.1


@pytest.mark.slow
def test_multirun_sweep_makes_one_folder_per_strategy_and_seed(tmp_path):
    command = [sys.executable, str(ROOT / "train.py"), "-m", "labels=hard,ls,im", "seed=0,1", "debug=fast",
               "data.train_size=128", "data.val_size=64", "data.test_size=64", f"hydra.sweep.dir={tmp_path}/sweep"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = sorted(path.name for path in (tmp_path / "sweep").iterdir() if path.is_dir())
    expected = {f"{labels}_all_seed{seed}" for labels in ("hard", "ls", "im") for seed in (0, 1)}
    assert {name.split("_", 1)[1] for name in runs} == expected
    for name in runs:
        run = tmp_path / "sweep" / name
        assert (run / ".hydra" / "config.yaml").is_file()
        assert (run / "checkpoints" / "last.ckpt").is_file()
        assert "test" in json.loads((run / "metrics.json").read_text())


# Final metrics of a 2-epoch synthetic run, recorded before the device stage moved from the LightningModule
# into the data module: the move, and any later refactor, must not change a run's numbers for its seed.
# Re-pinned once, when channels_last became the layout on CPUs too (the contiguous layout still gave the
# numbers first pinned: im 2.128710 / 2.045673, ls 2.142138 / 2.033662). Pinned on an Intel Xeon with AMX;
# debug=fast trains in fp32 (32-true) on every CPU, so machines differ only in their kernels' summation order,
# which these 16 steps amplify. Measured on an AMD EPYC (AVX2), relative to its own run with 2 threads:
#   1 thread                       ls +1.0e-3 / +6.5e-4   im -3.0e-3 / -6.3e-3   (test/nll / val/nll)
#   ATEN_CPU_CAPABILITY=default    ls -5.0e-4 / -2.5e-4   im -3.7e-4 / -5.4e-4
#   ONEDNN_MAX_CPU_ISA=SSE41       ls -4.1e-4 / -1.0e-3   im +8.2e-4 / +1.1e-3
#   the Intel pins below           ls -1.1e-4 / +1.0e-4   im +1.0e-3 / +1.4e-3
#   (an AMD EPYC with AVX-512 BF16: ls val/nll 2.03621, -1.3e-3 from the pin)
#   seed=1 instead of 0            ls +5.0e-2 / +1.0e-1   im +5.5e-2 / +9.5e-2
# so rel=1.5e-2 covers the largest kernel spread (6.3e-3) more than twice over and stays over 3 times below what
# another random stream moves. top1 is not pinned: the kernel spread flips up to 3 of its 128 images (0.023),
# near what seed=1 moves im's (0.039). A run that does not repeat itself exactly on one machine (a stray random
# draw, a nondeterministic kernel) is caught by the next test, bit for bit.
PINNED = {
    "im": {"test/nll": 2.135003089904785, "val/nll": 2.0571842193603516},
    "ls": {"test/nll": 2.1435530185699463, "val/nll": 2.0388011932373047},
}
PINNED_RELATIVE_TOLERANCE = 1.5e-2
PINNED_RUN = ["debug=fast", "trainer.max_epochs=2", "augment.sampling=iid"]


@pytest.mark.parametrize("labels", sorted(PINNED))
def test_short_run_reproduces_pinned_metrics(make_config, labels):
    metrics = train(make_config(*PINNED_RUN, f"labels={labels}"))
    measured = {**metrics["test"], **metrics["val"]}
    for name, value in PINNED[labels].items():
        assert measured[name] == pytest.approx(value, rel=PINNED_RELATIVE_TOLERANCE), name


def test_the_same_run_twice_gives_bit_identical_metrics(tmp_path):
    # im: the strategy that draws the most (estimation sample, degradations, NMI); one epoch is enough to see a
    # stray random draw or a nondeterministic kernel
    runs = [train(compose_config([*PINNED_RUN, "labels=im", "trainer.max_epochs=1"], tmp_path / f"run{attempt}"))
            for attempt in (0, 1)]
    assert runs[0]["test"] == runs[1]["test"] and runs[0]["val"] == runs[1]["val"]


def test_sets_on_the_device_train_exactly_like_the_data_loader(make_config, tmp_path):
    results = []
    for on_device in ("false", "true"):  # true on a CPU: the sets live in CPU memory, batches are gathered there
        cfg = make_config("debug=fast", "labels=im", "trainer.max_epochs=2", f"data.on_device={on_device}")
        cfg.paths.output_dir = str(tmp_path / f"on_device_{on_device}")
        results.append(train(cfg))
    assert results[0]["test"] == results[1]["test"] and results[0]["val"] == results[1]["val"]


def test_compiled_network_trains_to_the_eager_loss(make_config, tmp_path, monkeypatch):
    """speed.compile=true compiles the network in place and trains to eager's numbers.

    The graph is captured by Dynamo and differentiated by AOT autograd as with the default backend, but run
    by the ``aot_eager`` backend: Inductor's C++ code generation takes over 10 min on a 2-core CPU and is
    PyTorch's to test. On a GPU, test_cuda covers the default backend."""
    compiled = []
    plain_compile = torch.nn.Module.compile

    def compile_without_codegen(module, *args, **kwargs):
        compiled.append(kwargs)
        return plain_compile(module, *args, **{**kwargs, "backend": "aot_eager"})

    monkeypatch.setattr(torch.nn.Module, "compile", compile_without_codegen)
    losses = {}
    for compile in ("false", "true"):
        cfg = make_config("debug=fast", "labels=ls", "model.width=4", "data.train_size=256", "data.batch_size=128",
                          f"speed.compile={compile}", "test=false")
        cfg.paths.output_dir = str(tmp_path / f"compile_{compile}")
        losses[compile] = train(cfg)["val"]["val/nll"]
    assert compiled == [{"mode": None}]
    # summation order may differ in the captured graph: float rounding, amplified by two training steps
    assert losses["true"] == pytest.approx(losses["false"], rel=2e-3)


def test_run_time_estimate_reads_as_a_person_would_say_it():
    from infomatch.training.callbacks import run_time_estimate
    from infomatch.utils.console import duration_text
    assert ([duration_text(s) for s in (42, 750, 3 * 3600 + 1800, 3 * 86400)]
            == ["42 s", "12.5 min", "3.5 h", "3.0 days"])
    # 352 steps of 7.7 s: 45 min an epoch, 100 epochs = 3.1 days; on a CPU that earns the hint
    line = run_time_estimate(7.7, 352, 100, on_cpu=True)
    assert line.startswith("expected training time: 45.2 min per epoch x 100 epochs = 3.1 days")
    assert "experiment=cpu_study" in line
    assert "cpu_study" not in run_time_estimate(7.7, 352, 100, on_cpu=False)
    assert "cpu_study" not in run_time_estimate(0.5, 352, 8, on_cpu=True)


def test_run_header_and_footer_say_what_ran_and_what_comes_next():
    from infomatch.utils.console import run_footer, run_header
    header = run_header({"labels": "im", "augment": "all"}, {"epochs": 8, "batch": 128}, 176_123, "outputs/runs/x")
    assert header.splitlines() == ["labels=im augment=all", "  epochs 8, batch 128, 176 K parameters",
                                   "  run folder: outputs/runs/x"]
    results = {"epochs": 8, "fit_seconds": 600.0,
               "test": {"test/top1": 0.123456, "test/nll": 3.987654, "test/ece": 0.0123456}}
    footer = run_footer(results, "outputs/runs/x").splitlines()
    assert footer[0] == "finished 8 epochs in 10.0 min; test (best checkpoint): top-1 12.35%, NLL 3.988, ECE 0.01235"
    assert footer[2] == "  next: python evaluate.py ckpt=outputs/runs/x"


def test_known_lightning_noise_is_filtered_by_message_only():
    import warnings

    from infomatch.utils.console import quiet_known_noise
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_known_noise()
        warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated, use ...", DeprecationWarning, stacklevel=2)
        warnings.warn("The number of training batches (6) is smaller than the logging interval Trainer(...)",
                      stacklevel=2)
        warnings.warn("something new about the run", stacklevel=2)
    assert [str(warning.message) for warning in caught] == ["something new about the run"]


def test_a_sweep_ends_with_a_table_of_its_jobs(tmp_path):
    import json

    from infomatch.utils.console import sweep_summary
    for name, files in (("0_hard_all_seed0", {"metrics.json": {"best_val_top1": 0.2134}}),
                        ("1_im_all_seed0", {"failed.json": {"error": "boom"}}), ("10_ls_all_seed0", {})):
        (tmp_path / name).mkdir()
        for file, content in files.items():
            (tmp_path / name / file).write_text(json.dumps(content))
    lines = sweep_summary(tmp_path).splitlines()
    assert lines[0] == f"sweep {tmp_path}: 1 of 3 jobs finished"
    assert [line.split() for line in lines[2:5]] == [["finished", "21.34", "0_hard_all_seed0"],
                                                     ["failed", "–", "1_im_all_seed0"],
                                                     ["unfinished", "–", "10_ls_all_seed0"]]
    assert lines[-1] == (f"  next: python evaluate.py ckpt={tmp_path}   "
                         "(it ends with the command that writes the sweep's report)")


@pytest.mark.parametrize("terminal", [False, True])
def test_without_a_terminal_training_logs_a_line_per_epoch_instead_of_bars(make_config, caplog, capfd, terminal):
    with caplog.at_level("INFO", logger="infomatch.training.callbacks"):
        metrics = train(make_config("debug=fast", "trainer.max_epochs=2",
                                    f"callbacks.progress_bar.terminal={terminal}"))
    lines = [record.getMessage() for record in caplog.records if record.getMessage().startswith("epoch ")]
    output = capfd.readouterr()
    bars = (output.out + output.err).count("it/s")
    if terminal:
        assert lines == [] and bars > 0
    else:
        assert bars == 0 and len(lines) == 2
        assert lines[0].startswith("epoch 1/2 done after") and lines[0].endswith(" left")
        assert lines[1].startswith("epoch 2/2 done after") and "left" not in lines[1]
        # the last line's numbers are the last epoch's validation, as metrics.json records it
        assert f"val/top1 {metrics['val']['val/top1']:.4g}" in lines[1] and "train/loss_epoch " in lines[1]
