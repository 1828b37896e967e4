#!/usr/bin/env bash
# All GPU figures of docs/benchmarks.md in one go (under 3 minutes on one H100):
#   bash benchmarks/gpu_suite.sh [log folder, default outputs/gpu_suite]
# The epoch timing trains on generated data of CIFAR-100's size (45,000 training images after the
# 5,000-image validation split), so it needs no download; seconds per epoch do not depend on content.
set -uo pipefail
LOGS=${1:-outputs/gpu_suite}
mkdir -p "$LOGS"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
run() { echo "### $*"; "$@" 2>&1 | tee -a "$LOGS/suite.log"; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$LOGS/suite.log"
python -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" | tee -a "$LOGS/suite.log"
run python benchmarks/bench_degrade_nmi.py --device cuda --batch 256 --batches 200 --reference-batches 2 --threads 1
run python benchmarks/bench_train_step.py --widths 16 64 --batch 512 --steps 30 --rounds 3
run python benchmarks/bench_lightning_overhead.py --width 64 --batch 512 --steps 60 --rounds 2
run python benchmarks/bench_lightning_overhead.py --width 64 --batch 512 --steps 60 --rounds 2 --lightning-defaults
run python benchmarks/bench_corruptions.py --device cuda --images 10000 --width 64
run python train.py labels=im augment=all trainer=gpu model.width=64 data=synthetic data.train_size=50000 \
    data.test_size=10000 data.val_size=5000 data.batch_size=512 trainer.max_epochs=4 logger=csv \
    hydra.run.dir="$LOGS/epoch_timing"
python - "$LOGS/epoch_timing" <<'PY' | tee -a "$LOGS/suite.log"
import csv, json, sys
from pathlib import Path
run = Path(sys.argv[1])
rows = [row for row in csv.DictReader(open(run / "csv" / "metrics.csv")) if row.get("time/epoch_s")]
seconds = [float(row["time/epoch_s"]) for row in rows]
steady = sorted(seconds[1:])[len(seconds[1:]) // 2] if len(seconds) > 1 else seconds[0]
print(f"seconds per epoch (width 64, batch 512, 45k images, with validation): {', '.join(f'{s:.2f}' for s in seconds)}")
print(f"projected 100-epoch run: {100 * steady / 60:.1f} min (median of epochs after the first)")
print("fit seconds:", round(json.loads((run / "metrics.json").read_text())["fit_seconds"], 1))
PY
