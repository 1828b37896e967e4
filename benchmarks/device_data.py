"""Move CIFAR-100 to a machine that cannot download it, in transfers of limited size.

    python benchmarks/device_data.py pack <data.root> <out folder> [--parts 2]
    python benchmarks/device_data.py unpack <part folder> [<part folder> ...] <data.root>

``pack`` stores the images as lossless WebP mosaics (56% of the raw bytes: two parts of ~52 MB
instead of 184 MB) plus the labels and the ``meta`` file; ``unpack`` rebuilds the official
``cifar-100-python/{train,test,meta}`` pickles, checks them against the packed SHA-256 sums and
prints them, so a run on the other machine reads the same bytes with ``data.root=<data.root>``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

FOLDER = "cifar-100-python"
TILE_ROWS, TILE_COLS = 50, 100  # 5,000 images per WebP file: 1600 x 3200 pixels, under WebP's 16,383 limit


def _digest(images: np.ndarray) -> str:
    return hashlib.sha256(images.tobytes()).hexdigest()


def _to_mosaic(images: np.ndarray) -> np.ndarray:
    """(5000, 3072) CIFAR rows (R, G, B planes) -> (1600, 3200, 3) HWC mosaic."""
    hwc = images.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return (hwc.reshape(TILE_ROWS, TILE_COLS, 32, 32, 3).transpose(0, 2, 1, 3, 4)
            .reshape(TILE_ROWS * 32, TILE_COLS * 32, 3))


def _from_mosaic(mosaic: np.ndarray) -> np.ndarray:
    hwc = mosaic.reshape(TILE_ROWS, 32, TILE_COLS, 32, 3).transpose(0, 2, 1, 3, 4).reshape(-1, 32, 32, 3)
    return np.ascontiguousarray(hwc.transpose(0, 3, 1, 2)).reshape(-1, 3072)


def pack(root: Path, out: Path, parts: int) -> None:
    tiles, manifest = [], {"splits": {}}
    for split in ("train", "test"):
        with open(root / FOLDER / split, "rb") as handle:
            entry = pickle.load(handle, encoding="latin1")
        data = np.asarray(entry["data"], dtype=np.uint8)
        per_tile = TILE_ROWS * TILE_COLS
        if len(data) % per_tile:
            raise SystemExit(f"{split}: {len(data)} images is not a multiple of {per_tile}")
        names = [f"{split}_{index:02d}.webp" for index in range(len(data) // per_tile)]
        tiles += [(name, data[i * per_tile:(i + 1) * per_tile]) for i, name in enumerate(names)]
        manifest["splits"][split] = {"tiles": names, "sha256": _digest(data), "fine_labels": list(entry["fine_labels"]),
                                     "coarse_labels": list(entry["coarse_labels"])}
    folders = [out / f"part{index}" for index in range(parts)]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    for index, (name, data) in enumerate(tiles):
        target = folders[index * parts // len(tiles)] / name
        Image.fromarray(_to_mosaic(data)).save(target, format="WEBP", lossless=True, quality=100, method=4)
        print(f"{target} {target.stat().st_size / 1e6:.1f} MB")
    (folders[-1] / "manifest.json").write_text(json.dumps(manifest))
    shutil.copy(root / FOLDER / "meta", folders[-1] / "meta")


def _read_mosaic(path: Path) -> np.ndarray:
    try:
        return np.asarray(Image.open(path).convert("RGB"))
    except OSError:  # a Pillow built without WebP: OpenCV reads it too
        import cv2

        return cv2.imread(str(path), cv2.IMREAD_COLOR)[:, :, ::-1]


def unpack(part_folders: list[Path], root: Path) -> None:
    files = {path.name: path for folder in part_folders for path in folder.iterdir()}
    manifest = json.loads(files["manifest.json"].read_text())
    target = root / FOLDER
    target.mkdir(parents=True, exist_ok=True)
    for split, info in manifest["splits"].items():
        data = np.concatenate([_from_mosaic(_read_mosaic(files[name])) for name in info["tiles"]])
        if _digest(data) != info["sha256"]:
            raise SystemExit(f"{split}: decoded images differ from the packed ones")
        entry = {"data": data, "fine_labels": info["fine_labels"], "coarse_labels": info["coarse_labels"],
                 "batch_label": f"{split} (unpacked)"}
        with open(target / split, "wb") as handle:
            pickle.dump(entry, handle, protocol=4)
        print(f"{target / split}: {len(data)} images, sha256 {info['sha256'][:16]} verified")
    shutil.copy(files["meta"], target / "meta")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    packing = commands.add_parser("pack")
    packing.add_argument("root", type=Path)
    packing.add_argument("out", type=Path)
    packing.add_argument("--parts", type=int, default=2)
    unpacking = commands.add_parser("unpack")
    unpacking.add_argument("folders", type=Path, nargs="+", help="part folders, then the data.root to create")
    args = parser.parse_args()
    if args.command == "pack":
        pack(args.root, args.out, args.parts)
    else:
        unpack(args.folders[:-1], args.folders[-1])


if __name__ == "__main__":
    main()
