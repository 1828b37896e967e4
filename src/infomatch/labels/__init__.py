"""Label strategies, the `labels` config group (``python train.py labels=im``), and the similarity measures they use.

Information Matching (IM) softens each training label by the information its degradation destroyed:
epsilon = clamp(1 - NMI(x, x'), 0, eps_max), y = (1 - epsilon) onehot + epsilon / K. ``nmi`` is the batched
NMI kernel, ``measures`` the alternatives (SSIM as in Siedel et al. 2025, chance-corrected NMI),
``strategies`` the strategies: ``hard``, ``ls``, ``im``, the controls ``matched``, ``level``, ``schedule``, and
the peers' rules ``mollify`` (Heinonen et al. 2025), ``visibility`` (Soft Augmentation, Liu et al. 2023) and
``confidence`` (a reference model's accuracy, Siedel et al. 2025).
"""

from infomatch.labels.measures import adjusted_nmi, ssim
from infomatch.labels.nmi import chance_nmi, nmi, quantize
from infomatch.labels.strategies import (
                                         ConfidenceSmoothing,
                                         HardLabels,
                                         InformationMatching,
                                         LabelSmoothing,
                                         LevelSmoothing,
                                         MatchedSmoothing,
                                         MeasuredSmoothing,
                                         MollifiedSmoothing,
                                         ScheduleSmoothing,
                                         VisibilitySmoothing,
    im_epsilon,
    one_hot,
    smooth,
)

__all__ = ["ConfidenceSmoothing", "HardLabels", "InformationMatching", "LabelSmoothing", "LevelSmoothing",
           "MatchedSmoothing", "MeasuredSmoothing", "MollifiedSmoothing", "ScheduleSmoothing", "VisibilitySmoothing",
           "adjusted_nmi", "chance_nmi", "im_epsilon", "nmi", "one_hot", "quantize", "smooth", "ssim"]
