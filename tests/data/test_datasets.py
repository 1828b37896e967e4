"""The CIFAR-10 and CIFAR-100-coarse readers on files in the official layout, and class subsets (data.classes)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from conftest import compose_config, write_fake_cifar
from hydra.utils import instantiate
from sklearn.metrics import roc_auc_score

from infomatch.data import CIFAR10DataModule, CIFAR100CoarseDataModule, SyntheticDataModule, cifar
from infomatch.data.classes import keep_classes
from infomatch.evaluation.checkpoints import load_model
from infomatch.tasks.evaluate import evaluate
from infomatch.tasks.train import train
from infomatch.utils.checks import SettingError
from infomatch.utils.errors import ConfigError, DatasetError, EvaluationError


def write_cifar10(root, per_batch=8, num_test=12):
    """cifar-10-batches-py/ as the official archive extracts it: five training batches, a test batch, the names."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    written = {}
    for name, count in [*((f"data_batch_{k}", per_batch) for k in range(1, 6)), ("test_batch", num_test)]:
        data = rng.integers(0, 256, (count, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, count)]
        with open(folder / name, "wb") as handle:
            pickle.dump({"batch_label": name, "labels": labels, "data": data, "filenames": ["x.png"] * count},
                        handle, 2)
        written[name] = (data, labels)
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump({"label_names": [f"n{k}" for k in range(10)], "num_cases_per_batch": per_batch}, handle, 2)
    return written


def test_cifar10_concatenates_the_five_training_batches_in_order(tmp_path):
    written = write_cifar10(tmp_path)
    images, labels = cifar.read_split(cifar.CIFAR10, tmp_path / "cifar-10-batches-py", "train")
    assert images.shape == (40, 3, 32, 32) and images.dtype == torch.uint8
    expected = np.concatenate([written[f"data_batch_{k}"][0] for k in range(1, 6)])
    # channel planes R, G, B of 1,024 bytes each, row-major: image 17 is batch 3's second image
    assert images[17, 1, 2, 3].item() == expected[17, 1024 + 2 * 32 + 3]
    assert labels.tolist() == sum((written[f"data_batch_{k}"][1] for k in range(1, 6)), [])
    test_images, test_labels = cifar.read_split(cifar.CIFAR10, tmp_path / "cifar-10-batches-py", "test")
    assert len(test_images) == 12 and test_labels.tolist() == written["test_batch"][1]
    assert cifar.read_class_names(cifar.CIFAR10, tmp_path / "cifar-10-batches-py")[3] == "n3"


def test_cifar10_names_a_missing_batch_and_a_label_outside_its_ten_classes(tmp_path):
    write_cifar10(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    (folder / "data_batch_4").unlink()
    module = CIFAR10DataModule(root=str(tmp_path), download=False, val_size=4)
    with pytest.raises(DatasetError, match="CIFAR-10 not found .*data_batch_4"):
        module.setup()
    with open(folder / "data_batch_4", "wb") as handle:
        pickle.dump({"data": np.zeros((2, 3072), np.uint8), "labels": [3, 10]}, handle, 2)
    with pytest.raises(DatasetError, match=r"data_batch_4 holds 1 labels outside \[0, 10\)"):
        module.setup()


def test_coarse_labels_come_from_the_same_files_with_twenty_classes(tmp_path):
    written = write_fake_cifar(tmp_path)  # coarse label = fine label // 5
    module = CIFAR100CoarseDataModule(root=str(tmp_path), download=False, val_size=0)
    module.setup()
    assert module.num_classes == 20
    coarse = {split: [label // 5 for label in written[split][1]] for split in ("train", "test")}
    assert sorted(module.train_set[1].tolist()) == sorted(coarse["train"])  # the split permutes the images
    assert module.test_set[1].tolist() == coarse["test"]
    assert torch.equal(module.test_set[0].flatten(1), torch.from_numpy(written["test"][0]))
    assert module.class_names()[:2] == ["super0", "super1"]
    with pytest.raises(SettingError, match="num_classes=100 must be 20"):
        CIFAR100CoarseDataModule(root=str(tmp_path), num_classes=100)


def test_keep_classes_matches_a_per_image_loop():
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (200, 3, 4, 4), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 10, (200,), generator=generator)
    for classes in (3, [7, 2, 5]):
        order = list(range(classes)) if isinstance(classes, int) else classes
        expected = [(image, order.index(int(label))) for image, label in zip(images, labels) if int(label) in order]
        kept_images, kept_labels = keep_classes(images, labels, classes, 10)
        assert kept_labels.tolist() == [label for _, label in expected]
        assert torch.equal(kept_images, torch.stack([image for image, _ in expected]))


@pytest.mark.parametrize(("classes", "words"), [
    (0, r"data.classes=0 must be a count in \[1, 10\]"), (11, "must be a count in"),
    ([3, 3], "lists a label twice"), ([1, 10], "10 is not one"), ([], "at least one"), ("abc", "must be a count"),
])
def test_invalid_class_subsets_name_the_setting(classes, words):
    with pytest.raises(ConfigError, match=words):
        SyntheticDataModule(num_classes=10, train_size=64, test_size=8, val_size=8, classes=classes)


def test_model_num_classes_follows_the_class_subset(tmp_path):
    cases = ((["data=cifar100"], 100), (["data=cifar100_coarse"], 20), (["data=cifar10"], 10),
             (["data=cifar100", "data.classes=50"], 50), (["data=cifar10", "data.classes=[4,1]"], 2))
    for overrides, expected in cases:
        assert compose_config(overrides, tmp_path / "run").model.num_classes == expected


def test_a_class_subset_trains_and_evaluates_on_its_own_classes(make_config, tmp_path):
    data = ["data.classes=[9,2,5]"]
    train(make_config("debug=fast", *data, "labels=im"))
    [checkpoint] = (tmp_path / "run" / "checkpoints").glob("best*.ckpt")
    model = load_model(checkpoint)
    assert model.num_classes == 3 and model.data["classes"] == [9, 2, 5]
    results = evaluate(make_config(f"ckpt={checkpoint}", "robustness.levels=2", "confidence.levels=2", "plots=false",
                                   "corruptions=none", config_name="evaluate"))
    # the evaluation reads the subset from the checkpoint: its test set holds only those classes' images
    full = SyntheticDataModule(num_classes=10, train_size=512, test_size=128, val_size=128)
    full.setup()
    subset = instantiate(compose_config(["debug=fast", *data], tmp_path / "other").data)
    subset.setup()
    assert len(subset.test_set[1]) == int(torch.isin(full.test_set[1], torch.tensor([9, 2, 5])).sum())
    assert results["models"][model.name]["clean"]["top1"] >= 0


def test_held_out_classes_are_scored_as_out_of_distribution(make_config, tmp_path):
    train(make_config("debug=fast", "data.classes=4", "labels=hard"))
    [checkpoint] = (tmp_path / "run" / "checkpoints").glob("best*.ckpt")
    results = evaluate(make_config(f"ckpt={checkpoint}", "robustness.levels=2", "confidence.levels=2",
                                   "ood=[held_out_classes,uniform_noise]", "calibrate=all", "corruptions=none",
                                   config_name="evaluate"))
    [(name, model)] = results["models"].items()
    # the near-OOD protocol's whole evaluation: selective classification, the scalers, OOD per set and score
    assert list(model["post_hoc"]) == ["before", "temperature", "vector", "matrix", "dirichlet"]
    assert model["uncertainty"]["selective"]["msp_normalized"]["aurc"] >= 0
    classifier = load_model(checkpoint).classifier.eval()
    full = SyntheticDataModule(num_classes=10, train_size=512, test_size=128, val_size=128)
    full.setup()
    images, labels = full.test_set
    with torch.inference_mode():
        logits = classifier(images.float() / 255)
    msp = logits.softmax(dim=1).max(dim=1).values
    known = labels < 4  # data.classes=4 keeps labels 0..3: the rest are the held-out classes
    # the oracle: scikit-learn on the max softmax probabilities of the full test set split by class
    assert model["ood"]["held_out_classes"]["msp"]["auroc"] == pytest.approx(
        roc_auc_score(known.int().numpy(), msp.numpy()), abs=1e-4)
    assert results["ood"]["held_out_classes"]["num_images"] == int((~known).sum())
    assert results["ood"]["uniform_noise"]["num_images"] == 2000
    assert set(model["ood"]["uniform_noise"]) == {"msp", "max_logit", "energy", "neg_entropy", "msp_normalized"}
    output = tmp_path / "run"
    assert "## Out-of-distribution detection" in (output / "summary.md").read_text()
    assert (output / "plots" / f"ood_held_out_classes_{name}.png").is_file()


def test_held_out_classes_needs_a_class_subset(make_config, tmp_path):
    train(make_config("debug=fast", "labels=hard"))
    [checkpoint] = (tmp_path / "run" / "checkpoints").glob("best*.ckpt")
    with pytest.raises(EvaluationError, match="trained on all 10; train with a subset"):
        evaluate(make_config(f"ckpt={checkpoint}", "ood=held_out_classes", config_name="evaluate"))


def test_cifar10_trains_and_evaluates_from_the_official_layout(make_config, tmp_path):
    write_cifar10(tmp_path / "cifar10", per_batch=40, num_test=40)
    data = ["data=cifar10", f"data.root={tmp_path / 'cifar10'}", "data.download=false", "data.val_size=40"]
    train(make_config(*data, "model.width=8", "data.batch_size=32", "estimation.images=64", "trainer.max_epochs=1",
                      "trainer.precision=32-true", "trainer.accelerator=cpu", "logger=csv"))
    [checkpoint] = (tmp_path / "run" / "checkpoints").glob("best*.ckpt")
    results = evaluate(make_config(f"ckpt={checkpoint}", f"data.root={tmp_path / 'cifar10'}", "robustness.levels=2",
                                   "confidence.levels=2", "plots=false", "corruptions=none", config_name="evaluate"))
    [summary] = results["models"].values()
    assert 0 <= summary["clean"]["top1"] <= 1


@pytest.mark.parametrize("model", ["preact_resnet18 model.width=4",
                                   "wrn28_4 model.depth=10 model.widen_factor=1 model.width=4"])
def test_every_network_trains_and_evaluates_through_the_trusted_loader(make_config, tmp_path, model):
    name, *settings = model.split()
    train(make_config("debug=fast", f"model={name}", *settings, "labels=im"))
    [checkpoint] = (tmp_path / "run" / "checkpoints").glob("best*.ckpt")
    loaded = load_model(checkpoint)
    assert type(loaded.classifier.net).__name__ == {"preact_resnet18": "PreActResNet18", "wrn28_4": "WideResNet"}[name]
    results = evaluate(make_config(f"ckpt={checkpoint}", "robustness.levels=2", "confidence.levels=2", "plots=false",
                                   config_name="evaluate"))
    assert 0 <= next(iter(results["models"].values()))["clean"]["top1"] <= 1
