#!/usr/bin/env bash
# One lent GPU machine's measurements for BENCHMARKS.md, as one prepared command (10 minutes):
#   1. bench/bench_gpu_scoring.py: full-size models' scoring throughput, fp32 / bf16 / bf16 NHWC,
#      with the GPU to itself;
#   2. the 5-seed grids of issue 24 as parallel runs on the GPU (bench/parallel_grid.py): the
#      Fashion-MNIST CPU protocol (fmnist-cpu) for the related projects' strategies next to random,
#      entropy and variation ratio, and hidden uncertainty against MC entropy and random on the
#      synthetic Cityscapes scenes (synthetic-cpu);
#   3. beside the grids, bench/gpu_smoke.py in bf16 + channels-last (every task and mode, tiny data).
# Everything lands in $OUT (the run folders as one tarball). Runs cut off by the time limit resume
# when the same command runs again over the unpacked folders.
#
#   FMNIST_DIR=.gpudata OUT=/tmp/out bash bench/gpu_session.sh
set -u
OUT=${OUT:-runs/gpu_session}
FMNIST_DIR=${FMNIST_DIR:-/usr/share/datasets/fashion-mnist}
GRID_SECONDS=${GRID_SECONDS:-390}     # stop starting runs after this; end them 60 s later
JOBS=${JOBS:-15}
DEVICE=${DEVICE:-cuda}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
start=$(date +%s)
stamp() { echo "[$(( $(date +%s) - start )) s] $*"; }

if ! $PYTHON -c "import pycocotools" 2>/dev/null && ls .whl/*.whl >/dev/null 2>&1; then
  $PYTHON -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site \
    .whl/*.whl && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
nvidia-smi -L; $PYTHON -c "import torch, sklearn; print(torch.__version__, sklearn.__version__)"

stamp "synthetic Cityscapes scenes (background)"
$PYTHON -m synthetic --format cityscapes --output data/fmnist_cityscapes --train 1000 --val 300 \
  --fashion-mnist "$FMNIST_DIR" > "$OUT/synthetic.log" 2>&1 &
synth=$!

stamp "scoring throughput"
timeout 80 $PYTHON bench/bench_gpu_scoring.py --device "$DEVICE" ${SCORING_ARGS:-} > "$OUT/gpu_scoring.txt" 2>&1
stamp "scoring throughput: rc $?"
wait $synth; stamp "synthetic: rc $?"

(timeout 330 $PYTHON bench/gpu_smoke.py --device "$DEVICE" --extra "--amp --channels-last" > "$OUT/smoke_amp.txt" 2>&1
 echo "rc $?" >> "$OUT/smoke_amp.txt") &

NEW="typiclust probcover cluster_margin batchbald hidden_uncertainty mb_outliers_mean \
mb_outliers_max mb_outliers_glosh mb_clustering mb_outliers_mean_least_confidence \
mb_outliers_mean_entropy active_transfer_learning"
stamp "grids"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1  # one core per run
$PYTHON bench/parallel_grid.py --jobs "$JOBS" --log-dir runs/gpu_grid/logs \
  --stop-starting-after "$GRID_SECONDS" --kill-after $((GRID_SECONDS + 60)) \
  --grid segmentation runs/gpu_grid/seg "random mc_entropy hidden_uncertainty" "0 1 2 3 4" \
    "--preset synthetic-cpu --device $DEVICE" \
  --grid classification runs/gpu_grid/fmnist "random entropy variation_ratio $NEW" "0 1 2 3 4" \
    "--preset fmnist-cpu --device cuda --data-dir $FMNIST_DIR" > "$OUT/grid.txt" 2>&1
stamp "grids: rc $?"
wait
tar czf "$OUT/gpu_grid.tgz" --exclude=pool.npz --exclude="*.png" --exclude=report \
  --exclude=checkpoints runs/gpu_grid
nvidia-smi --query-gpu=name,memory.used --format=csv >> "$OUT/grid.txt" 2>&1
stamp "done"
