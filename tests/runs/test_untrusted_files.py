"""Files are data, never code: checkpoint configs build only infomatch's own classes, CIFAR pickles rebuild only
arrays and plain containers, and names read from the command line or from files never lead out of the output
folder. Each payload is first shown to run code the way it would have (Hydra's instantiate, pickle.load), then
shown never to run here: its marker file never appears."""

from __future__ import annotations

import contextlib
import json
import pickle
import subprocess
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import (
    CONFIGS,
    ROOT,
    TINY,
    Smuggled,
    assert_one_paragraph_error,
    compose_config,
    run_train,
    subprocess_env,
    write_fake_cifar,
)
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import get_class, instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import OmegaConf

from infomatch.data import cifar
from infomatch.evaluation.checkpoints import load_model
from infomatch.runs import trusted
from infomatch.runs.folders import register_resolvers
from infomatch.runs.validation import check_resume
from infomatch.tasks.evaluate import evaluate
from infomatch.tasks.train import train
from infomatch.utils.errors import CheckpointError, ConfigError, DatasetError, UnsafeCheckpointError

DATA = ["data=synthetic", "data.num_classes=10", "data.train_size=192", "data.test_size=64", "data.val_size=64"]
QUICK = ["robustness.levels=2", "confidence.levels=2", "plots=false"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """The checkpoints folder of a real one-epoch run (best_*.ckpt and last.ckpt)."""
    run = tmp_path_factory.mktemp("trained") / "run"
    train(compose_config([*TINY, "test=false"], run))
    GlobalHydra.instance().clear()
    return run / "checkpoints"


def tampered(source: Path, path: Path, **changes) -> Path:
    """A copy of the checkpoint ``source`` at ``path`` with entries of its stored config replaced."""
    checkpoint = torch.load(source, map_location="cpu", weights_only=True)
    checkpoint["infomatch_config"].update(changes)
    torch.save(checkpoint, path)
    return path


def best(trained: Path) -> Path:
    return next(trained.glob("best*.ckpt"))


def files_under(folder: Path) -> set[Path]:
    return {path for path in folder.rglob("*") if path.is_file()}


# ---- configs stored in checkpoints -----------------------------------------------------------------

PAYLOADS = ("pathlib.Path.write_text", "builtins.open", "shutil.copyfile", "os.makedirs", "torch.save", "import",
            "nested")


@pytest.fixture(params=PAYLOADS)
def payload(request, tmp_path, monkeypatch) -> tuple[str, dict, Path]:
    """(group, stored config of that group, marker): a config that makes Hydra create the marker."""
    marker = tmp_path / "marker"
    modules = tmp_path / "modules"
    modules.mkdir()
    module = f"planted_{uuid.uuid4().hex}"  # never imported before, so an import would run it
    (modules / f"{module}.py").write_text(f"from pathlib import Path\nPath({str(marker)!r}).write_text('imported')\n")
    monkeypatch.syspath_prepend(str(modules))
    write_text = {"_target_": "pathlib.Path.write_text",
                  "_args_": [{"_target_": "pathlib.Path", "_args_": [str(marker)]}, "code ran"]}
    return {
        "pathlib.Path.write_text": ("model", write_text),
        "builtins.open": ("model", {"_target_": "builtins.open", "_args_": [str(marker), "w"]}),
        "shutil.copyfile": ("model", {"_target_": "shutil.copyfile", "_args_": [__file__, str(marker)]}),
        "os.makedirs": ("model", {"_target_": "os.makedirs", "_args_": [str(marker)]}),
        "torch.save": ("model", {"_target_": "torch.save", "_args_": [{}, str(marker)]}),
        "import": ("labels", {"_target_": f"{module}.Foo"}),
        # a trusted class around a payload: the width is what write_text returns, 8
        "nested": ("model", {"_target_": "infomatch.models.ResNet18", "num_classes": 10, "width": write_text}),
    }[request.param] + (marker,)


def test_each_payload_runs_code_when_hydra_instantiates_it(payload):
    _, config, marker = payload
    with contextlib.suppress(Exception):  # most fail once their code has run
        instantiate(config)
    assert marker.exists()


def test_evaluate_refuses_each_payload_and_runs_none(payload, trained, make_config, tmp_path):
    group, config, marker = payload
    path = tampered(best(trained), tmp_path / "crafted.ckpt", **{group: config})
    with pytest.raises(UnsafeCheckpointError) as refused:
        evaluate(make_config(*DATA, *QUICK, f"ckpt={path}", config_name="evaluate"))
    message = str(refused.value)
    assert str(path) in message and f"its stored config {group}" in message and "infomatch's own classes" in message
    assert not marker.exists()
    assert not (tmp_path / "run").exists()  # nothing written either


def test_resume_refuses_each_payload_and_runs_none(payload, trained, make_config, tmp_path):
    group, config, marker = payload
    path = tampered(trained / "last.ckpt", tmp_path / "crafted.ckpt", **{group: config})
    with pytest.raises(UnsafeCheckpointError) as refused:
        train(make_config(*TINY, "test=false", f"resume={path}"))
    assert f"resume={path}: its stored config {group}" in str(refused.value)
    assert not marker.exists()


@pytest.mark.parametrize("key", ["_args_", "_partial_", "_convert_", "_recursive_"])
def test_hydra_keys_from_a_file_are_refused_even_on_trusted_classes(trained, tmp_path, key):
    model = {"_target_": "infomatch.models.ResNet18", "num_classes": 10, "width": 8,
             key: [10] if key == "_args_" else True}
    path = tampered(best(trained), tmp_path / "crafted.ckpt", model=model)
    with pytest.raises(UnsafeCheckpointError, match=f"its stored config model holds {key}"):
        load_model(path)


def test_interpolations_in_a_stored_config_are_never_resolved(trained, tmp_path):
    register_resolvers()
    marker = tmp_path / "claimed"
    width = "${infomatch.new_dir:" + str(marker) + "}"  # the resolver makes this folder
    model = {"_target_": "infomatch.models.ResNet18", "num_classes": 10, "width": width}
    assert OmegaConf.create({"width": width}).width == str(marker)  # what resolving it would do
    assert marker.is_dir()
    marker.rmdir()
    path = tampered(best(trained), tmp_path / "crafted.ckpt", model=model)
    with pytest.raises(CheckpointError, match="cannot build the model"):
        load_model(path)
    assert not marker.exists()


def test_the_original_command_of_a_resumed_run_is_quoted_without_resolving_it(trained, make_config, tmp_path):
    register_resolvers()
    run = tmp_path / "old_run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes((trained / "last.ckpt").read_bytes())
    marker = tmp_path / "claimed"
    (run / ".hydra").mkdir()
    (run / ".hydra" / "overrides.yaml").write_text(f"- seed=0\n- '+note=${{infomatch.new_dir:{marker}}}'\n")
    with pytest.raises(ConfigError, match="different config") as raised:
        check_resume(make_config(*TINY, "test=false", "seed=5", f"resume={run / 'checkpoints' / 'last.ckpt'}"),
                     tmp_path / "run" / "checkpoints")
    assert "+note=${infomatch.new_dir:" in str(raised.value)
    assert not marker.exists()


def test_a_moved_class_is_found_through_the_table_of_old_paths(trained, make_config, tmp_path, monkeypatch):
    old = "infomatch.networks.ResNet18"
    written = torch.load(trained / "last.ckpt", map_location="cpu", weights_only=True)
    model = {**written["infomatch_config"]["model"], "_target_": old}
    path = tampered(trained / "last.ckpt", tmp_path / "last.ckpt", model=model)
    cfg = make_config(*TINY, "test=false", f"resume={path}")
    with pytest.raises(UnsafeCheckpointError, match=old):
        load_model(path)
    monkeypatch.setitem(trusted.MOVED_TARGETS, old, "infomatch.models.ResNet18")
    images = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(load_model(path).classifier(images),
                                   load_model(trained / "last.ckpt").classifier(images), rtol=0, atol=0)
    assert check_resume(cfg, tmp_path / "run" / "checkpoints") == path  # the same config as today's


def test_resume_refuses_checkpoint_callback_states_naming_files_outside_their_folder(trained, make_config, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("kept")
    checkpoint = torch.load(trained / "last.ckpt", map_location="cpu", weights_only=True)
    state = next(state for state in checkpoint["callbacks"].values() if "best_k_models" in state)
    outside = f"{state['dirpath']}/../../../{victim.relative_to(tmp_path.parent)}"
    state.update(best_k_models={outside: torch.tensor(-1.0)}, kth_best_model_path=outside, kth_value=torch.tensor(-1.0))
    # Lightning's own guard lets the path through: it would delete it when a better checkpoint replaces it
    callback = ModelCheckpoint(dirpath=state["dirpath"], monitor="val/top1", mode="max", save_top_k=1)
    callback.load_state_dict(state)
    assert callback._should_remove_checkpoint(SimpleNamespace(ckpt_path=None), callback.kth_best_model_path,
                                              f"{state['dirpath']}/best_epoch001.ckpt")
    assert Path(outside).resolve() == victim
    path = tmp_path / "crafted.ckpt"
    torch.save(checkpoint, path)
    with pytest.raises(UnsafeCheckpointError, match="not a file in the run's checkpoint folder") as refused:
        train(make_config(*TINY, "test=false", f"resume={path}"))
    assert f"resume={path}" in str(refused.value) and outside in str(refused.value)
    assert victim.read_text() == "kept"


def test_the_trusted_classes_are_exactly_the_project_configs_targets():
    for group, classes in trusted.TRUSTED_CLASSES.items():
        targets = {OmegaConf.load(file).get("_target_") for file in (CONFIGS / group).glob("*.yaml")} - {None}
        assert targets == set(classes), group
        assert all(get_class(target) is cls for target, cls in classes.items())


@pytest.mark.parametrize("program", ["evaluate", "train"])
def test_entry_points_refuse_a_crafted_checkpoint_in_one_paragraph(program, trained, tmp_path):
    marker = tmp_path / "marker"
    model = {"_target_": "pathlib.Path.write_text",
             "_args_": [{"_target_": "pathlib.Path", "_args_": [str(marker)]}, "code ran"]}
    path = tampered(trained / "last.ckpt", tmp_path / "crafted.ckpt", model=model)
    if program == "train":
        result = run_train(*TINY, "test=false", f"resume={path}", cwd=tmp_path)
    else:
        result = subprocess.run([sys.executable, str(ROOT / "evaluate.py"), *DATA, f"paths.log_dir={tmp_path}/outputs",
                                 f"ckpt={path}"], check=False, cwd=tmp_path, capture_output=True, text=True,
                                timeout=600, env=subprocess_env())
    assert_one_paragraph_error(result, str(path), "model._target_='pathlib.Path.write_text' is not one of")
    assert not marker.exists()


# ---- CIFAR-100 pickles -------------------------------------------------------------------------------

def test_a_cifar_pickle_that_would_run_code_is_refused_by_training(make_config, tmp_path):
    marker = tmp_path / "marker"
    write_fake_cifar(tmp_path / "cifar")
    train_file = tmp_path / "cifar" / cifar.CIFAR100.folder / "train"
    smuggled = pickle.dumps({"data": Smuggled(marker), "fine_labels": [0]})
    pickle.loads(smuggled)  # what plain pickle.load does with it
    assert marker.read_text() == "code ran"
    marker.unlink()
    train_file.write_bytes(smuggled)
    with pytest.raises(DatasetError, match="holds a pickled conftest.write_marker, which would run code"):
        cifar.read_split(cifar.CIFAR100, train_file.parent, "train")
    cfg = make_config("data=cifar100", f"data.root={tmp_path / 'cifar'}", "data.download=false", "data.val_size=10",
                      "model.width=8", "trainer.max_epochs=1", "trainer.accelerator=cpu", "logger=csv")
    with pytest.raises(DatasetError) as raised:
        train(cfg)
    assert str(train_file) in str(raised.value)
    result = run_train("data=cifar100", f"data.root={tmp_path / 'cifar'}", "data.download=false", "data.val_size=10",
                       "model.width=8", "trainer.max_epochs=1", "trainer.accelerator=cpu", "logger=csv", cwd=tmp_path)
    assert_one_paragraph_error(result, str(train_file), "would run code when loaded")
    assert not marker.exists()


def _replace(folder: Path, split: str, **entries) -> None:
    path = folder / split
    with open(path, "rb") as handle:
        entry = pickle.load(handle)
    entry.update(entries)
    path.write_bytes(pickle.dumps(entry))


@pytest.mark.parametrize(("split", "entries", "words"), [
    ("train", {"fine_labels": [100] + [0] * 59}, "1 fine_labels outside [0, 100), e.g. 100"),
    ("test", {"fine_labels": [-1] * 20}, "20 fine_labels outside [0, 100), e.g. -1"),
    ("train", {"fine_labels": [0.5] * 60}, "not a list of 60 integers"),
    ("train", {"fine_labels": [0] * 59}, "not a list of 60 integers"),
    ("train", {"data": np.zeros((60, 3072), dtype=np.float32)}, "float32 array of shape (60, 3072)"),
    ("train", {"data": np.zeros((60, 1024), dtype=np.uint8)}, "uint8 array of shape (60, 1024)"),
    ("train", {"data": [[0] * 3072] * 60}, "holds data as a list"),
    ("meta", {"fine_label_names": ["apple"]}, "not a list of 100 strings"),
])
def test_cifar_files_with_wrong_contents_are_named_when_read(tmp_path, split, entries, words):
    write_fake_cifar(tmp_path)
    folder = tmp_path / cifar.CIFAR100.folder
    _replace(folder, split, **entries)
    with pytest.raises(DatasetError) as raised:
        if split == "meta":
            cifar.read_class_names(cifar.CIFAR100, folder)
        else:
            cifar.read_split(cifar.CIFAR100, folder, split)
    assert str(folder / split) in str(raised.value) and words in str(raised.value)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar_copies_written_with_any_pickle_protocol_load(tmp_path, protocol):
    arrays = write_fake_cifar(tmp_path)
    folder = tmp_path / cifar.CIFAR100.folder
    data, labels = arrays["train"]
    (folder / "train").write_bytes(pickle.dumps({"data": data, "fine_labels": labels}, protocol))
    images, read_labels = cifar.read_split(cifar.CIFAR100, folder, "train")
    assert torch.equal(images, torch.from_numpy(data).reshape(-1, 3, 32, 32)) and read_labels.tolist() == labels


# ---- names that become file names ------------------------------------------------------------------

@pytest.mark.parametrize("name", ["../../x", "a/b", "..", "", "c:\\x"])
def test_model_names_that_could_leave_the_folder_are_refused_before_loading(make_config, tmp_path, trained, name):
    before = files_under(tmp_path)
    with pytest.raises(ConfigError, match="becomes part of file names") as raised:
        evaluate(make_config(*DATA, f"ckpt={best(trained)}", f"names=[{name!r}]", config_name="evaluate"))
    assert str(raised.value).startswith("names[0]=")
    assert files_under(tmp_path) == before


def test_a_stored_seed_that_is_not_an_integer_is_refused(make_config, tmp_path, trained):
    path = tampered(best(trained), tmp_path / "crafted.ckpt", seed="../..")
    before = files_under(tmp_path)
    with pytest.raises(CheckpointError, match=r"its stored seed '\.\./\.\.' is not an integer") as raised:
        evaluate(make_config(*DATA, f"ckpt={path}", config_name="evaluate"))
    assert str(path) in str(raised.value)
    assert files_under(tmp_path) == before


def test_plot_files_stay_in_the_evaluation_folder_for_unusual_names(make_config, tmp_path, trained):
    evaluate(make_config(*DATA, *QUICK[:2], f"ckpt={best(trained)}", "names=['im (ours), v2']",
                         config_name="evaluate"))
    output = tmp_path / "run"
    assert {path.parent for path in files_under(tmp_path)} == {output, output / "plots"}
    assert (output / "plots" / "reliability_im (ours), v2.png").is_file()


# ---- weights ---------------------------------------------------------------------------------------

def test_non_finite_weights_are_warned_about_and_marked_in_metrics_json(make_config, tmp_path, trained, caplog):
    checkpoint = torch.load(best(trained), map_location="cpu", weights_only=True)
    checkpoint["state_dict"]["net.fc.weight"][0, 0] = float("nan")
    checkpoint["state_dict"]["net.bn1.running_var"][0] = float("inf")
    broken = tmp_path / "broken.ckpt"
    torch.save(checkpoint, broken)
    results = evaluate(make_config(*DATA, *QUICK, f"ckpt=[{best(trained)},{broken}]", "names=[good,broken]",
                                   config_name="evaluate"))
    assert [results["models"][name]["weights_finite"] for name in ("good", "broken")] == [True, False]
    written = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert written["models"]["broken"]["weights_finite"] is False
    warnings = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert any(str(broken) in message and "2 parameters or buffers hold NaN or inf" in message
               and "net.bn1.running_var" in message for message in warnings)
    assert not any(str(best(trained)) in message and "NaN" in message for message in warnings)
