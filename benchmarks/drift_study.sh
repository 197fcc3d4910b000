#!/usr/bin/env bash
# The drift study behind the README's drift sections (issue 12): every figure there comes from
# this script's outputs, in the order below. Run it on an otherwise idle machine:
#     bash benchmarks/drift_study.sh [outputs/study]
# Each step writes its own folder and is skipped when that folder already holds its result, so an
# interrupted study continues where it stopped. 2 CPU cores: about 80 minutes in all (each step's
# time is in study.log).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-outputs/study}
PY=${PYTHON:-.venv/bin/python}
mkdir -p "$OUT"
log() { echo "[$(date +%H:%M:%S)] $*" | tee -a "$OUT/study.log"; }
timed() {  # timed <name> <command...>: run, append wall time to study.log
    local name=$1; shift
    local t0=$SECONDS
    log "start $name: $*"
    "$@" > "$OUT/$name.log" 2>&1
    log "done  $name in $((SECONDS - t0)) s"
}
train() {  # train <name> [options]: the default classifier (main job settings) with changes
    local name=$1; shift
    [ -f "$OUT/$name/all_results.json" ] && { log "skip $name (trained)"; return; }
    timed "train_$name" "$PY" scripts/train_classification.py --output_dir "$OUT/$name" --overwrite_output_dir "$@"
}

# 1. Light and exposure: the main job's classifier with each exposure mode (metadata is the
#    training default; it is named anyway), and with light-level training (photon-exact thinning
#    per frame) on top of metadata exposure.
train none --exposure none
train metadata --exposure metadata
train auto --exposure auto
train metadata_light --exposure metadata --train_intensities 1.0,0.5,0.1,0.05

# 2. Drift synthesis of the four side by side: own view against intensity, ISP drift, corruption
#    drift, their ratio; bootstrap intervals over the 143 test cells.
[ -f "$OUT/synthesis/summary.md" ] || timed synthesis "$PY" scripts/drift_synthesis.py \
    --model "$OUT/none" --compare "$OUT/metadata" "$OUT/auto" "$OUT/metadata_light" \
    --labels none,metadata,auto,metadata_light --output_dir "$OUT/synthesis"

# 3. Drift optimisation at low light with exposure, 3 seeds: static vs parametrized vs learned ISP.
[ -f "$OUT/optimization/drift_optimization.md" ] || timed optimization "$PY" scripts/drift_optimization.py \
    --intensities 0.01,0.05 --seeds 0,1,2 --exposure metadata --output_dir "$OUT/optimization"

# 4. ISP drift between pipelines: the train-variant x test-variant matrix for three ISPs that
#    differ in demosaicing, sharpening and denoising, with the metadata-exposure classifier.
[ -f "$OUT/matrix/summary.md" ] || timed matrix "$PY" scripts/drift_synthesis.py \
    --model "$OUT/metadata" --train_variants bi_s_ga,ma_u_me,me_s_me --intensities 1.0,0.05 \
    --corruptions none --output_dir "$OUT/matrix"

# 5. A CNN task model, as in the study: ResNet-18 (random init) at 128 px with metadata exposure,
#    then its drift synthesis (ISP drift against corruption drift).
train resnet18 --model_name_or_path resnet-18 --image_size 128 --exposure metadata
[ -f "$OUT/resnet18_synthesis/summary.md" ] || timed resnet18_synthesis "$PY" scripts/drift_synthesis.py \
    --model "$OUT/resnet18" --intensities 1.0,0.25,0.05,0.01 --output_dir "$OUT/resnet18_synthesis"

# 6. Drift forensics on the metadata-exposure classifier (the quick setting of the README).
[ -f "$OUT/forensics/forensics.md" ] || timed forensics "$PY" scripts/drift_forensics.py \
    --model "$OUT/metadata" --lambdas 0,1,100 --steps 3 --output_dir "$OUT/forensics"

# 7. Class balance: the metadata-exposure classifier with a class-weighted loss, and with a
#    class-balanced sampler (macro-F1 and the rare classes' F1 in all_results.json).
train balanced_loss --exposure metadata --class_balance weighted_loss
train balanced_sampler --exposure metadata --class_balance sampler

# 8. Seeds: the metadata-exposure classifier and the light-trained one, each with 3 seeds (42 is
#    the folder above; 1 and 2 are trained here), side by side at four intensities with the
#    corruptions (exposure none is measured with seed 42 only, in step 2).
[ -f "$OUT/seeds/summary.md" ] || timed seeds "$PY" scripts/drift_synthesis.py \
    --model "$OUT/metadata" --compare "$OUT/metadata_light" --labels metadata,metadata_light \
    --seeds 42,1,2 --intensities 1.0,0.25,0.05,0.01 --output_dir "$OUT/seeds"

# 9. Class balance side by side on the same test cells (paired intervals of the differences).
[ -f "$OUT/balance/summary.md" ] || timed balance "$PY" scripts/drift_synthesis.py \
    --model "$OUT/metadata" --compare "$OUT/balanced_loss" "$OUT/balanced_sampler" \
    --labels plain,weighted_loss,sampler --variants bi_s_ga --intensities 1.0 --corruptions none \
    --output_dir "$OUT/balance"
log "study complete"
