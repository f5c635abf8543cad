#!/usr/bin/env bash
# Does a change compute what the code computed before it? Runs, with one torch thread each:
#   - the demo's three runs (classification, --preset fmnist-demo, every cycle);
#   - one cycle of each task's --preset synthetic-cpu on small synthetic scenes
#     (segmentation image-level and superpixel, detection, pose);
# and prints the sha256 of every metrics.csv without its timing columns (*seconds: the only
# columns that differ between two identical computations). Run it on two commits and compare:
#
#   bash bench/identity_check.sh /tmp/before > before.txt      # on the old commit
#   bash bench/identity_check.sh /tmp/after  > after.txt       # on the new one
#   diff before.txt after.txt
#
# OUT (the first argument) holds the scenes and the runs; an existing OUT resumes.
set -euo pipefail
OUT=${1:?usage: bench/identity_check.sh OUT}
PY=${PYTHON:-.venv/bin/python}
mkdir -p "$OUT"
export ACTIVE_LEARNING_OFFLINE=1 XDG_CACHE_HOME="$OUT/cache"
common=(--threads 1 --no-progress --no-report-map --output-dir "$OUT/runs")

for strategy in loss_prediction random variation_ratio; do
  $PY -m classification.train --preset fmnist-demo --strategy "$strategy" "${common[@]}" >/dev/null
done

[ -d "$OUT/cityscapes" ] || $PY -m synthetic --format cityscapes --output "$OUT/cityscapes" --train 120 --val 40
[ -d "$OUT/voc" ] || $PY -m synthetic --format voc --output "$OUT/voc" --train 120 --val 40
[ -d "$OUT/coco" ] || $PY -m synthetic --format coco-keypoints --output "$OUT/coco" --train 120 --val 40

small=(--cycles 1 --initial-size 40 --budget 20 --epochs 2)
$PY -m segmentation.train --preset synthetic-cpu --data-dir "$OUT/cityscapes" --strategy mc_entropy \
  "${small[@]}" "${common[@]}" >/dev/null
$PY -m segmentation.train --preset synthetic-cpu --data-dir "$OUT/cityscapes" \
  --strategy mc_entropy_superpixels --cycles 1 --initial-size 40 --superpixels-per-cycle 200 \
  --epochs 2 "${common[@]}" >/dev/null
$PY -m object_detection.train --preset synthetic-cpu --dataset_root "$OUT/voc" --strategy entropy \
  "${small[@]}" "${common[@]}" >/dev/null
$PY -m human_pose_estimation.train --preset synthetic-cpu --dataset_root "$OUT/coco" \
  --strategy heatmap_uncertainty "${small[@]}" "${common[@]}" >/dev/null

cd "$OUT/runs"
find . -name metrics.csv | sort | $PY -c '
import csv, hashlib, io, sys
for path in sys.stdin.read().split():
    rows = list(csv.reader(open(path, newline="")))
    keep = [i for i, name in enumerate(rows[0]) if not name.endswith("seconds")]
    text = io.StringIO()
    csv.writer(text).writerows([[row[i] for i in keep] for row in rows])
    print(hashlib.sha256(text.getvalue().encode()).hexdigest(), path)
'
