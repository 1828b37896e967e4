#!/usr/bin/env bash
# The GPU figures of docs/benchmarks.md in one go (about 3 minutes on one H100), old and new data paths side by side:
#   bash benchmarks/gpu_suite.sh [log folder, default outputs/gpu_suite]
# "loader" = the DataLoader path with i.i.d. degradation types (data.on_device=false augment.sampling=iid);
# "device" = the defaults (uint8 sets on the GPU, stratified types, no per-step sync).
# The epoch timings train on generated data of CIFAR-100's size (45,000 training images after the 5,000-image
# validation split), so they need no download; seconds per epoch do not depend on content.
# Every step has its own time limit (STEP_LIMIT seconds, default 120), so one slow step cannot use up a lease:
# a limit around the whole script would stop the shell but leave its Python children running.
set -uo pipefail
LOGS=${1:-outputs/gpu_suite}
LIMIT=${STEP_LIMIT:-120}
mkdir -p "$LOGS"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
run() {
    echo "### $*" | tee -a "$LOGS/suite.log"
    timeout -k 5 "$LIMIT" "$@" 2>&1 | grep -v -E "it/s|s/it" | tee -a "$LOGS/suite.log"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$LOGS/suite.log"
python -c "import torch, lightning; print('torch', torch.__version__, 'lightning', lightning.__version__, torch.cuda.get_device_name())" | tee -a "$LOGS/suite.log"
run python benchmarks/bench_train_step.py --widths 64 --batch 512 --steps 15 --rounds 2 --sampling iid
run python benchmarks/bench_train_step.py --widths 64 --batch 512 --steps 15 --rounds 2 --sampling stratified
run python benchmarks/bench_lightning_overhead.py --width 64 --batch 512 --steps 40 --rounds 1 --data loader
run python benchmarks/bench_lightning_overhead.py --width 64 --batch 512 --steps 40 --rounds 1 --data device
run python benchmarks/bench_corruptions.py --device cuda --images 10000 --width 64

# seconds per epoch of train.py, with the GPU's utilisation sampled every 100 ms while it trains
epoch_timing() {
    local name=$1; shift
    nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits -lms 100 > "$LOGS/util_$name.txt" &
    local sampler=$!
    timeout -k 5 "$LIMIT" python train.py labels=im augment=all trainer=gpu model.width=64 data=synthetic data.train_size=50000 \
        data.test_size=10000 data.val_size=5000 data.batch_size=512 trainer.max_epochs=4 logger=csv test=false \
        callbacks.model_checkpoint.save_last=false hydra.run.dir="$LOGS/epoch_$name" "$@" > "$LOGS/epoch_$name.log" 2>&1
    kill $sampler
    [ -f "$LOGS/epoch_$name/csv/metrics.csv" ] || { echo "$name: no epoch finished within ${LIMIT} s" | tee -a "$LOGS/suite.log"; return; }
    python benchmarks/epoch_report.py "$LOGS/epoch_$name" "$LOGS/util_$name.txt" --name "$name" | tee -a "$LOGS/suite.log"
}
epoch_timing loader data.on_device=false augment.sampling=iid
epoch_timing device
