"""CIFAR-10 and CIFAR-100 (fine or coarse labels) read straight from the official pickles into uint8 tensors.

torchvision is used only to download and verify the official archive; the extracted files are read
here so that copies without the ``filenames`` key (whose md5 differs) load too. The pickles are read as data:
the unpickler rebuilds only builtin containers, strings, bytes, numbers and numpy arrays, so a file holding any
other object is refused instead of running it; shapes, dtypes and labels are checked before training starts.
"""

from __future__ import annotations

import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from infomatch.utils.errors import DatasetError


@dataclass(frozen=True)
class CifarLayout:
    """One data set in the official "python version" layout: where its files are and which keys hold what."""

    title: str
    url: str
    archive_md5: str
    folder: str
    split_files: dict[str, tuple[str, ...]]  # split -> the pickles that hold it, concatenated in this order
    label_key: str
    names_file: str
    names_key: str
    num_classes: int
    mean: tuple[float, float, float]  # per-channel statistics of the [0, 1] training images
    std: tuple[float, float, float]


CIFAR100 = CifarLayout(
    "CIFAR-100", "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85",
    "cifar-100-python", {"train": ("train",), "test": ("test",)}, "fine_labels", "meta", "fine_label_names", 100,
    (0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761))
# the same files and images, labelled by the 20 superclasses
CIFAR100_COARSE = CifarLayout(
    "CIFAR-100 (coarse labels)", CIFAR100.url, CIFAR100.archive_md5, CIFAR100.folder, CIFAR100.split_files,
    "coarse_labels", "meta", "coarse_label_names", 20, CIFAR100.mean, CIFAR100.std)
CIFAR10 = CifarLayout(
    "CIFAR-10", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a",
    "cifar-10-batches-py", {"train": tuple(f"data_batch_{k}" for k in range(1, 6)), "test": ("test_batch",)},
    "labels", "batches.meta", "label_names", 10, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))


def _missing_message(layout: CifarLayout, root: Path, reason: str) -> str:
    expected = ",".join((layout.names_file, *layout.split_files["train"], *layout.split_files["test"]))
    return (
        f"{layout.title} not found at data.root={root} ({reason}). Expected {root / layout.folder}/{{{expected}}} "
        "in the official 'python version' layout. Point data.root at the folder that contains "
        f"'{layout.folder}/' (e.g. data.root=/path/to/your/data), or allow downloading with data.download=true "
        "on a machine with internet access."
    )


def ensure_downloaded(layout: CifarLayout, root: str | Path, download: bool) -> Path:
    """Return the extracted folder, downloading and verifying the official archive if allowed."""
    root = Path(root)
    folder = root / layout.folder
    if all((folder / name).is_file() for names in layout.split_files.values() for name in names):
        return folder
    if not download:
        raise DatasetError(_missing_message(layout, root, "download disabled"))
    from torchvision.datasets.utils import download_and_extract_archive

    missing = [folder for folder in (root, *root.parents) if not folder.exists()]
    try:
        download_and_extract_archive(layout.url, download_root=str(root), md5=layout.archive_md5)
    except Exception as error:  # network errors come in many types; all mean the same to the user
        if missing:  # a failed download leaves no data folder behind, nor the empty parents it made (data/)
            shutil.rmtree(missing[-1], ignore_errors=True)
        raise DatasetError(_missing_message(layout, root, f"download failed: {error}")) from error
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


def _invalid(layout: CifarLayout, path: Path, problem: str) -> DatasetError:
    return DatasetError(f"{layout.title} file {path} {problem}; delete it and download or copy it again")


def _unpickle(layout: CifarLayout, path: Path, keys: tuple[str, ...]) -> dict[str, Any]:
    """The dict pickled in ``path``, which must hold ``keys``; DatasetError naming the file for anything else."""
    try:
        with open(path, "rb") as handle:
            entry = ArrayUnpickler(handle, encoding="latin1").load()
    except FileNotFoundError as error:
        raise DatasetError(f"{layout.title} file missing: {path}") from error
    except _RefusedGlobal as refused:
        raise _invalid(layout, path, f"holds a pickled {refused}, which would run code when loaded, so it is not "
                       "loaded (the official files hold only arrays, lists, numbers and strings)") from None
    except Exception as error:
        raise _invalid(layout, path, f"is corrupt or truncated ({type(error).__name__}: {error})") from error
    if not isinstance(entry, dict) or not set(keys) <= entry.keys():
        found = sorted(map(str, entry))[:10] if isinstance(entry, dict) else type(entry).__name__
        raise _invalid(layout, path,
                       f"is not in the official layout (expected a dict with {', '.join(keys)}; found {found})")
    return entry


def _read_file(layout: CifarLayout, path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    entry = _unpickle(layout, path, ("data", layout.label_key))
    data, labels = entry["data"], entry[layout.label_key]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        described = f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise _invalid(layout, path, f"holds data as a {described}, not the official uint8 array of shape (N, 3072)")
    if not isinstance(labels, list) or not all(type(label) is int for label in labels) or len(labels) != len(data):
        raise _invalid(layout, path,
                       f"holds {layout.label_key} that are not a list of {len(data)} integers, one per image")
    outside = [label for label in labels if not 0 <= label < layout.num_classes]
    if outside:
        raise _invalid(layout, path, f"holds {len(outside)} {layout.label_key} outside [0, {layout.num_classes}), "
                                     f"e.g. {outside[0]}")
    images = torch.from_numpy(data.reshape(-1, 3, 32, 32).copy())
    return images, torch.tensor(labels, dtype=torch.int64)


def read_split(layout: CifarLayout, folder: str | Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Read ``train`` or ``test`` as (N, 3, 32, 32) uint8 images and (N,) int64 labels in [0, num_classes)."""
    parts = [_read_file(layout, Path(folder) / name) for name in layout.split_files[split]]
    return torch.cat([images for images, _ in parts]), torch.cat([labels for _, labels in parts])


def read_class_names(layout: CifarLayout, folder: str | Path) -> list[str]:
    path = Path(folder) / layout.names_file
    names = _unpickle(layout, path, (layout.names_key,))[layout.names_key]
    if (not isinstance(names, list) or len(names) != layout.num_classes
            or not all(isinstance(name, str) for name in names)):
        raise _invalid(layout, path, f"holds {layout.names_key} that are not a list of {layout.num_classes} strings")
    return names
