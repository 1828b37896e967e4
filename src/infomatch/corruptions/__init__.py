"""CIFAR-100-C corruption robustness: the official files, or the corruptions regenerated on the device."""
