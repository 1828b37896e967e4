"""The registry of base-augmentation ops and their batched application with one op and magnitude per image.

Names follow torchvision's op names (``ShearX`` -> ``shear_x``). The geometric ops come first, so that after
sorting a batch by op they form one block, resampled by a single grid_sample.
"""

from __future__ import annotations

import torch
from torch import Tensor

from infomatch.base_augment import colour, geometric

GEOMETRIC = {
    "shear_x": geometric.shear_x_matrix,
    "shear_y": geometric.shear_y_matrix,
    "translate_x": geometric.translate_x_matrix,
    "translate_y": geometric.translate_y_matrix,
    "rotate": geometric.rotate_matrix,
}
PIXEL = {
    "identity": colour.identity,
    "brightness": colour.brightness,
    "color": colour.color,
    "contrast": colour.contrast,
    "sharpness": colour.sharpness,
    "posterize": colour.posterize,
    "solarize": colour.solarize,
    "autocontrast": colour.autocontrast,
    "equalize": colour.equalize,
    "invert": colour.invert,
}
OPS = (*GEOMETRIC, *PIXEL)
IDENTITY = OPS.index("identity")
INTERPOLATIONS = ("nearest", "bilinear")


def apply_ops(images: Tensor, op: Tensor, magnitude: Tensor, interpolation: str = "nearest") -> Tensor:
    """Image i through OPS[op[i]] at magnitude[i]: uint8 (B, C, H, W) in and out.

    The batch is grouped by op (one host sync for the group sizes); every group runs its op once, batched.
    """
    order = op.argsort(stable=True)
    sizes = torch.bincount(op, minlength=len(OPS)).tolist()
    image_groups = images.index_select(0, order).split(sizes)
    magnitude_groups = magnitude.index_select(0, order).split(sizes)
    height, width = images.shape[-2:]
    pieces = []
    geometric_count = sum(sizes[: len(GEOMETRIC)])
    if geometric_count:
        matrices = torch.cat([matrix(m, height, width) for matrix, m in zip(GEOMETRIC.values(), magnitude_groups)])
        pieces.append(geometric.resample(torch.cat(image_groups[: len(GEOMETRIC)]), matrices, interpolation))
    for function, group, m in zip(PIXEL.values(), image_groups[len(GEOMETRIC):], magnitude_groups[len(GEOMETRIC):]):
        if group.shape[0]:
            pieces.append(function(group, m))
    return torch.empty_like(images).index_copy_(0, order, torch.cat(pieces))
