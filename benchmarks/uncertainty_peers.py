"""infomatch's uncertainty metrics and scalers beside torch-uncertainty's (and relplot's smooth ECE) on the same
logits, printed side by side with the absolute difference.

Synthetic CIFAR-100-sized logits (10,000 test, 5,000 validation, 100 classes) whose labels are drawn from a
per-class-scaled softmax, so the scalers have something to fix, and 2,000 OOD inputs with flatter logits. The peers
are not dependencies of infomatch; put them beside it without their dependencies' torch:

    pip install --no-deps --target /tmp/peers torch-uncertainty==0.13.0 relplot==1.0.3 seaborn pandas einops deprecation
    PYTHONPATH=src:/tmp/peers python benchmarks/uncertainty_peers.py
"""

from __future__ import annotations

import argparse
from importlib.metadata import version

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from infomatch.metrics import augrc, aurc, classwise_ece, coverage_at_risk, ood_detection, risk_at_coverage, smooth_ece
from infomatch.metrics.scalers import fit_scaler
from infomatch.metrics.temperature import fit_temperature


def synthetic(count: int, classes: int, generator: torch.Generator, flat: bool = False):
    logits = (1.0 if flat else 3.0) * torch.randn(count, classes, generator=generator)
    scale = torch.linspace(0.6, 1.4, classes)
    labels = torch.multinomial((logits * scale).softmax(dim=1), 1, generator=generator).squeeze(1)
    return logits, labels


def peer_value(metric, *arguments) -> float:
    metric.update(*arguments)
    return float(metric.compute())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import relplot
    from sklearn.metrics import roc_auc_score
    from torch_uncertainty import metrics as tu
    from torch_uncertainty.post_processing import DirichletScaler, TemperatureScaler, VectorScaler

    generator = torch.Generator().manual_seed(args.seed)
    logits, labels = synthetic(10_000, 100, generator)
    val_logits, val_labels = synthetic(5_000, 100, generator)
    ood_logits, _ = synthetic(2_000, 100, generator, flat=True)
    probs = logits.softmax(dim=1)
    confidence, prediction = probs.max(dim=1)
    correct = (prediction == labels).double()
    msp_out = ood_logits.softmax(dim=1).max(dim=1).values
    is_ood = torch.cat([torch.zeros(len(confidence)), torch.ones(len(msp_out))]).long()
    ours_ood = ood_detection(confidence, msp_out)

    rows = [
        ("AURC", aurc(confidence, correct), peer_value(tu.AURC(), probs, labels)),
        ("AUGRC", augrc(confidence, correct), peer_value(tu.AUGRC(), probs, labels)),
        ("risk at 80% coverage", risk_at_coverage(confidence, correct, 0.8),
         peer_value(tu.RiskAt80Cov(), probs, labels)),
        ("coverage at 5% risk", coverage_at_risk(confidence, correct, 0.05),
         peer_value(tu.CovAt5Risk(), probs, labels)),
        ("FPR95 (MSP; in-distribution positive)", ours_ood["fpr95"],
         peer_value(tu.FPR95(pos_label=0), torch.cat([confidence, msp_out]), is_ood)),
        ("AUROC (MSP) vs scikit-learn", ours_ood["auroc"], float(roc_auc_score(
            1 - is_ood.numpy(), torch.cat([confidence, msp_out]).numpy()))),
        ("classwise ECE (15 bins)", classwise_ece(probs, labels),
         peer_value(tu.ClasswiseCalibrationError(num_classes=100), probs, labels)),
        ("smooth ECE vs relplot.smECE", smooth_ece(probs, labels),
         float(relplot.smECE(confidence.double().numpy(), correct.numpy()))),
        ("smooth ECE vs torch-uncertainty (reflected kernel)", smooth_ece(probs, labels),
         peer_value(tu.SmoothCalibrationError(kernel_type="reflected"), probs, labels)),
    ]
    loader = DataLoader(TensorDataset(val_logits, val_labels), batch_size=1000)
    temperature = TemperatureScaler(model=None)
    temperature.fit(loader, progress=False)
    ours_t, peer_t = fit_temperature(val_logits, val_labels), float(temperature.temperature[0])
    rows.append(("temperature T", ours_t, peer_t))
    rows.append(("temperature: validation NLL at T", float(F.cross_entropy(val_logits / ours_t, val_labels)),
                 float(F.cross_entropy(val_logits / peer_t, val_labels))))
    vector = VectorScaler(num_classes=100, model=None)
    vector.fit(loader, progress=False)
    ours_vector = fit_scaler("vector", val_logits, val_labels)
    for split, (inputs, targets) in (("validation (fitted)", (val_logits, val_labels)), ("test", (logits, labels))):
        rows.append((f"vector scaling: {split} NLL", float(F.cross_entropy(ours_vector(inputs), targets)),
                     float(F.cross_entropy(vector(inputs), targets))))
    strength = 1e4
    dirichlet = DirichletScaler(num_classes=100, model=None, lambda_reg=strength, mu_reg=strength)
    dirichlet.fit(loader, progress=False)
    ours_dirichlet = fit_scaler("dirichlet", val_logits, val_labels, strength, strength)
    for split, (inputs, targets) in (("validation (fitted)", (val_logits, val_labels)), ("test", (logits, labels))):
        rows.append((f"Dirichlet (ODIR {strength:g}): {split} NLL",
                     float(F.cross_entropy(ours_dirichlet(inputs), targets)),
                     float(F.cross_entropy(dirichlet(inputs), targets))))

    print(f"torch {version('torch')}, torch-uncertainty {version('torch-uncertainty')}, relplot {version('relplot')}, "
          f"seed {args.seed}")
    with torch.no_grad():
        rows = [(name, float(ours), float(peer)) for name, ours, peer in rows]
    print(f"{'measure':52s} {'infomatch':>11s} {'peer':>11s} {'|difference|':>13s}")
    for name, ours, peer in rows:
        print(f"{name:52s} {ours:11.6f} {peer:11.6f} {abs(ours - peer):13.2e}")


if __name__ == "__main__":
    main()
