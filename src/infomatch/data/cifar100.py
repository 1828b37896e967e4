"""CIFAR-100 read straight from the official pickles into uint8 tensors.

torchvision is used only to download and verify the official archive; the extracted files are read
here so that copies without the ``filenames`` key (whose md5 differs) load too. The pickles are read as data:
the unpickler rebuilds only builtin containers, strings, bytes, numbers and numpy arrays, so a file holding any
other object is refused instead of running it; shapes, dtypes and labels are checked before training starts.
"""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from infomatch.utils.errors import DatasetError

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

    missing = [folder for folder in (root, *root.parents) if not folder.exists()]
    try:
        download_and_extract_archive(URL, download_root=str(root), md5=ARCHIVE_MD5)
    except Exception as error:  # network errors come in many types; all mean the same to the user
        if missing:  # a failed download leaves no data folder behind, nor the empty parents it made (data/)
            shutil.rmtree(missing[-1], ignore_errors=True)
        raise DatasetError(_missing_message(root, f"download failed: {error}")) from error
    return folder


# the globals numpy arrays pickle to (numpy 1 and 2 module names, protocol 5's buffers) and Python 3's
# protocol-2 bytes; the official files reference only the first, ndarray and dtype
ARRAY_GLOBALS = frozenset({
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
})


class _RefusedGlobal(pickle.UnpicklingError):
    pass


class ArrayUnpickler(pickle.Unpickler):
    """Rebuilds builtin containers, strings, bytes, numbers and numpy arrays, and nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ARRAY_GLOBALS:
            raise _RefusedGlobal(f"{module}.{name}")
        return super().find_class(module, name)


def _invalid(path: Path, problem: str) -> DatasetError:
    return DatasetError(f"CIFAR-100 file {path} {problem}; delete it and download or copy it again")


def _unpickle(path: Path, keys: tuple[str, ...]) -> dict[str, Any]:
    """The dict pickled in ``path``, which must hold ``keys``; DatasetError naming the file for anything else."""
    try:
        with open(path, "rb") as handle:
            entry = ArrayUnpickler(handle, encoding="latin1").load()
    except FileNotFoundError as error:
        raise DatasetError(f"CIFAR-100 file missing: {path}") from error
    except _RefusedGlobal as refused:
        raise _invalid(path, f"holds a pickled {refused}, which would run code when loaded, so it is not loaded "
                             "(the official files hold only arrays, lists, numbers and strings)") from None
    except Exception as error:
        raise _invalid(path, f"is corrupt or truncated ({type(error).__name__}: {error})") from error
    if not isinstance(entry, dict) or not set(keys) <= entry.keys():
        found = sorted(map(str, entry))[:10] if isinstance(entry, dict) else type(entry).__name__
        raise _invalid(path, f"is not in the official layout (expected a dict with {', '.join(keys)}; found {found})")
    return entry


def read_split(folder: str | Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Read ``train`` or ``test`` as (N, 3, 32, 32) uint8 images and (N,) int64 fine labels in [0, NUM_CLASSES)."""
    path = Path(folder) / split
    entry = _unpickle(path, ("data", "fine_labels"))
    data, labels = entry["data"], entry["fine_labels"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        described = f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise _invalid(path, f"holds data as a {described}, not the official uint8 array of shape (N, 3072)")
    if not isinstance(labels, list) or not all(type(label) is int for label in labels) or len(labels) != len(data):
        raise _invalid(path, f"holds fine_labels that are not a list of {len(data)} integers, one per image")
    outside = [label for label in labels if not 0 <= label < NUM_CLASSES]
    if outside:
        raise _invalid(path, f"holds {len(outside)} fine_labels outside [0, {NUM_CLASSES}), e.g. {outside[0]}")
    images = torch.from_numpy(data.reshape(-1, 3, 32, 32).copy())
    return images, torch.tensor(labels, dtype=torch.int64)


def read_class_names(folder: str | Path) -> list[str]:
    path = Path(folder) / "meta"
    names = _unpickle(path, ("fine_label_names",))["fine_label_names"]
    if not isinstance(names, list) or len(names) != NUM_CLASSES or not all(isinstance(name, str) for name in names):
        raise _invalid(path, f"holds fine_label_names that are not a list of {NUM_CLASSES} strings")
    return names
