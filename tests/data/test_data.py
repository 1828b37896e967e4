from pathlib import Path

import pytest
import torch
from conftest import write_fake_cifar

from infomatch.data import CIFAR100DataModule, SyntheticDataModule, cifar
from infomatch.data.cifar import CIFAR100, read_split
from infomatch.data.datamodule import split_train_val
from infomatch.utils.errors import DatasetError


def test_read_split_matches_official_layout(tmp_path):
    arrays = write_fake_cifar(tmp_path)
    images, labels = read_split(CIFAR100, tmp_path / "cifar-100-python", "train")
    data, expected_labels = arrays["train"]
    assert images.dtype == torch.uint8 and images.shape == (60, 3, 32, 32)
    # plane layout: first 1024 bytes are red, row-major
    assert images[5, 0, 1, 2].item() == data[5, 32 + 2]
    assert images[5, 2, 31, 31].item() == data[5, 3071]
    assert labels.tolist() == expected_labels


def test_datamodule_holds_uint8_and_splits_validation(tmp_path):
    write_fake_cifar(tmp_path)
    datamodule = CIFAR100DataModule(root=str(tmp_path), download=False, val_size=10, batch_size=16)
    datamodule.setup("fit")
    images, labels = next(iter(datamodule.train_dataloader()))
    assert images.dtype == torch.uint8 and images.shape == (16, 3, 32, 32) and labels.shape == (16,)
    assert len(datamodule.train_set[1]) == 50 and len(datamodule.val_set[1]) == 10


def test_validation_split_is_fixed_and_independent_of_run_seed():
    train_a, val_a = split_train_val(100, 10, split_seed=0)
    train_b, val_b = split_train_val(100, 10, split_seed=0)
    assert torch.equal(val_a, val_b)
    assert set(train_a.tolist()).isdisjoint(val_a.tolist()) and len(train_a) + len(val_a) == 100
    first = SyntheticDataModule(train_size=64, test_size=8, val_size=8, shuffle_seed=0)
    second = SyntheticDataModule(train_size=64, test_size=8, val_size=8, shuffle_seed=5)
    first.setup(), second.setup()
    assert torch.equal(first.val_set[0], second.val_set[0])


def test_shuffle_depends_on_seed_and_epoch_only():
    datamodule = SyntheticDataModule(train_size=64, test_size=8, val_size=8, batch_size=8, shuffle_seed=3)
    datamodule.setup()
    loader = datamodule.train_dataloader()
    epoch0 = [labels for _, labels in loader]
    loader.sampler.set_epoch(1)
    epoch1 = [labels for _, labels in loader]
    loader.sampler.set_epoch(0)
    again = [labels for _, labels in loader]
    assert all(torch.equal(a, b) for a, b in zip(epoch0, again))
    assert not all(torch.equal(a, b) for a, b in zip(epoch0, epoch1))
    assert sum(len(labels) for labels in epoch0) == 56


def test_missing_data_says_where_it_looked(tmp_path):
    datamodule = CIFAR100DataModule(root=str(tmp_path / "nowhere"), download=False)
    with pytest.raises(DatasetError, match="nowhere"):
        datamodule.setup()


def test_truncated_file_is_named(tmp_path):
    write_fake_cifar(tmp_path)
    path = tmp_path / "cifar-100-python" / "train"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DatasetError, match="corrupt or truncated"):
        read_split(CIFAR100, tmp_path / "cifar-100-python", "train")


def test_synthetic_data_is_learnable_signal():
    datamodule = SyntheticDataModule(num_classes=10, train_size=200, test_size=50, val_size=20)
    datamodule.setup()
    images, labels = datamodule.train_set
    # nearest class mean classifies well above chance: the classes carry signal
    means = torch.stack([images[labels == c].float().mean(0) for c in range(10)])
    distances = ((images.float()[:, None] - means[None]) ** 2).flatten(2).sum(-1)
    assert (distances.argmin(1) == labels).float().mean() > 0.5


def test_train_limit_takes_a_fixed_subset_and_keeps_validation():
    full = SyntheticDataModule(train_size=64, test_size=8, val_size=8)
    limited = SyntheticDataModule(train_size=64, test_size=8, val_size=8, train_limit=20)
    full.setup(), limited.setup()
    assert len(limited.train_set[1]) == 20
    assert torch.equal(limited.train_set[0], full.train_set[0][:20])
    assert torch.equal(limited.val_set[0], full.val_set[0])


def test_a_failed_download_leaves_no_data_folder_behind(tmp_path, monkeypatch):
    import torchvision.datasets.utils

    def no_network(url, download_root, md5):
        (Path(download_root) / "cifar-100-python.tar.gz.part").parent.mkdir(parents=True, exist_ok=True)
        (Path(download_root) / "cifar-100-python.tar.gz.part").write_bytes(b"0")
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.datasets.utils, "download_and_extract_archive", no_network)
    with pytest.raises(DatasetError, match="download failed: Temporary failure"):
        cifar.ensure_downloaded(cifar.CIFAR100, tmp_path / "data" / "cifar100", download=True)
    assert not (tmp_path / "data").exists()
    kept = tmp_path / "mine"
    kept.mkdir()  # a folder the user made stays
    with pytest.raises(DatasetError):
        cifar.ensure_downloaded(cifar.CIFAR100, kept, download=True)
    assert kept.is_dir()
