"""Information Matching: adaptive label smoothing driven by the NMI between an image and its degraded copy."""

__version__ = "0.2.0"

# the library's subpackages (imported on use: ``import infomatch`` stays light); their contents: docs/library.md
__all__ = ["__version__", "augment", "base_augment", "data", "labels", "metrics", "models", "training"]
