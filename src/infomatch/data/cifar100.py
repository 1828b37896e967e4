"""CIFAR-100 read straight from the official pickles into uint8 tensors.

torchvision is used only to download and verify the official archive; the extracted files are read
here so that copies without the ``filenames`` key (whose md5 differs) load too.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from infomatch.errors import DatasetError

URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
ARCHIVE_MD5 = "eb9058c3a382ffc7106e4002c42a8d85"
FOLDER = "cifar-100-python"
MEAN = (0.5071, 0.4867, 0.4408)
STD = (0.2675, 0.2565, 0.2761)
NUM_CLASSES = 100


def _missing_message(root: Path, reason: str) -> str:
    return (
        f"CIFAR-100 not found at data.root={root} ({reason}). Expected {root / FOLDER}/{{meta,train,test}} "
        "in the official 'python version' layout. Point data.root at the folder that contains "
        f"'{FOLDER}/' (e.g. data.root=/path/to/your/cifar100), or allow downloading with data.download=true "
        "on a machine with internet access."
    )


def ensure_downloaded(root: str | Path, download: bool) -> Path:
    """Return the extracted folder, downloading and verifying the official archive if allowed."""
    root = Path(root)
    folder = root / FOLDER
    if (folder / "train").is_file() and (folder / "test").is_file():
        return folder
    if not download:
        raise DatasetError(_missing_message(root, "download disabled"))
    from torchvision.datasets.utils import download_and_extract_archive

    try:
        download_and_extract_archive(URL, download_root=str(root), md5=ARCHIVE_MD5)
    except Exception as error:  # network errors come in many types; all mean the same to the user
        raise DatasetError(_missing_message(root, f"download failed: {error}")) from error
    return folder


def read_split(folder: str | Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Read ``train`` or ``test`` as (N, 3, 32, 32) uint8 images and (N,) int64 fine labels."""
    path = Path(folder) / split
    try:
        with open(path, "rb") as handle:
            entry = pickle.load(handle, encoding="latin1")
        data = np.asarray(entry["data"], dtype=np.uint8)
        labels = np.asarray(entry["fine_labels"], dtype=np.int64)
    except FileNotFoundError as error:
        raise DatasetError(f"CIFAR-100 file missing: {path}") from error
    except Exception as error:
        raise DatasetError(f"CIFAR-100 file {path} is corrupt or truncated ({type(error).__name__}: {error}); "
                           "delete it and download or copy it again") from error
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
        raise DatasetError(f"CIFAR-100 file {path} has unexpected shape {data.shape} for {len(labels)} labels")
    images = torch.from_numpy(data.reshape(-1, 3, 32, 32).copy())
    return images, torch.from_numpy(labels)


def read_class_names(folder: str | Path) -> list[str]:
    with open(Path(folder) / "meta", "rb") as handle:
        return list(pickle.load(handle, encoding="latin1")["fine_label_names"])
