#!/usr/bin/env bash
# The full-scale study on one GPU: several 100-epoch runs sharing it at once, then one evaluation of them all.
#   bash benchmarks/gpu_study.sh <data.root> <study folder> <deadline seconds> <labels:seed> [<labels:seed> ...]
#   e.g. bash benchmarks/gpu_study.sh data/cifar100 outputs/study 900 hard:0 ls:0 im:0
# EPOCHS (default 100), WIDTH (64) and EXTRA (more overrides) shrink it for a dry run on a CPU:
#   EPOCHS=1 WIDTH=4 EXTRA="trainer=cpu data.train_limit=512" bash benchmarks/gpu_study.sh data/cifar100 /tmp/s 600 hard:0
# Each run: the fair default protocol at ResNet-18 width 64, batch 512, 100 epochs (train.py's defaults
# otherwise). Runs still going at the deadline are stopped and moved to <study>/unfinished (never evaluated:
# their cosine schedule did not finish). The evaluation (clean metrics, robustness grid, confidence) of the
# finished runs goes to <study>/eval/<date>. The small files (configs, metrics, summary, a few plots) are then
# collected into <study>/results and packed as <study>/results.tar.gz: unpack it into docs/results/<name>/ and
# run python -m infomatch.results tables. Checkpoints stay in the run folders.
set -uo pipefail
ROOT=$1; STUDY=$2; DEADLINE=$3; shift 3
mkdir -p "$STUDY/runs" "$STUDY/unfinished"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
# several processes share the host's cores: a few threads each instead of all of them each
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
start=$(date +%s)
declare -A pids
for spec in "$@"; do
    labels=${spec%%:*}; seed=${spec##*:}; name=${labels}_seed${seed}
    # shellcheck disable=SC2086  # EXTRA is a list of overrides
    python train.py labels="$labels" seed="$seed" model.width="${WIDTH:-64}" data.batch_size=512 \
        trainer.max_epochs="${EPOCHS:-100}" data.root="$ROOT" data.download=false \
        callbacks.model_checkpoint.save_last=false logger=csv hydra.run.dir="$STUDY/runs/$name" ${EXTRA:-} \
        > "$STUDY/runs/$name.log" 2>&1 &
    pids[$name]=$!
done
while :; do
    alive=0
    for name in "${!pids[@]}"; do kill -0 "${pids[$name]}" 2>/dev/null && alive=1; done
    elapsed=$(( $(date +%s) - start ))
    [ $alive = 0 ] && break
    if [ $elapsed -ge "$DEADLINE" ]; then
        for name in "${!pids[@]}"; do kill "${pids[$name]}" 2>/dev/null; done
        sleep 3
        break
    fi
    sleep 5
done
echo "training wall time: $(( $(date +%s) - start )) s"
for name in "${!pids[@]}"; do
    if [ ! -f "$STUDY/runs/$name/metrics.json" ]; then
        echo "$name: unfinished at the deadline, moved to $STUDY/unfinished"
        mv "$STUDY/runs/$name" "$STUDY/runs/$name.log" "$STUDY/unfinished/" 2>/dev/null
    fi
done
if compgen -G "$STUDY/runs/*/metrics.json" > /dev/null; then
    evaluation="$STUDY/eval/$(date +%Y-%m-%d_%H-%M-%S)"
    python evaluate.py ckpt="$STUDY/runs" data.root="$ROOT" data.download=false hydra.run.dir="$evaluation" \
        > "$STUDY/eval.log" 2>&1
    echo "evaluation exit code $?; wall time so far: $(( $(date +%s) - start )) s"
    python -m infomatch.results collect "$STUDY/runs" "$evaluation" "$STUDY/results" \
        && tar czf "$STUDY/results.tar.gz" -C "$STUDY" results
fi
