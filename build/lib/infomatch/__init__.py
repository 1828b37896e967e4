"""Information Matching: adaptive label smoothing driven by the NMI between an image and its degraded copy."""

__version__ = "0.1.0"
