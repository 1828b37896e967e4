"""The record a training step receives from the data stage, and the one every label strategy reads."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from infomatch.augment.mix import MixPlan


@dataclass
class TrainingBatch:
    """One batch after the device-side data stage, all tensors on the training device.

    clean:       (B, C, H, W) in [0, 1], after crop/flip: the image the degradation started from
    degraded:    (B, C, H, W) in [0, 1]: what the network sees
    classes:     (B,) int64 true class of each image (the hard label)
    degradation: (B,) int64 index into ``infomatch.augment.DEGRADATIONS``; -1 = not degraded
    level:       (B,) degradation level d in [0, 1] (0 when not degraded)
    visible:     (B,) share of the original image inside the frame after the base augmentation's crop (1 without
                 one); None where no stage recorded it
    mix:         the batch's mixup / cutmix plan, None without mixing; the fields above stay unmixed (the label
                 strategy reads each original image), the training step mixes the network input and the targets
    """

    clean: Tensor
    degraded: Tensor
    classes: Tensor
    degradation: Tensor
    level: Tensor
    visible: Tensor | None = None
    mix: MixPlan | None = None

    def __len__(self) -> int:
        return self.classes.shape[0]
