#!/usr/bin/env bash
# The drift study behind docs/results.md: every figure there comes from this script's outputs.
#
#     bash benchmarks/drift_study.sh [--dataset raw_microscopy|raw_drone] [--device cpu|cuda]
#                                    [--out DIR] [STEP ...]
#
# --dataset: which study (default raw_microscopy); STEP names run only those steps (default: all
# of the dataset's steps, in the order below; `--list` prints them). Each step writes its own
# folder under DIR (default outputs/study/<dataset>) and is skipped when that folder already holds
# its result, so an interrupted study continues where it stopped; each step's wall time goes to
# DIR/study.log. --device cuda trains in bf16 with larger evaluation batches (the same budgets:
# a GPU runs them in minutes); cpu (the default) runs on whatever the machine has.
# Run it on an otherwise idle machine; to run two studies side by side on 2 cores, start each with
# OMP_NUM_THREADS=1 RAW_ISP_THREADS=1 (torch's default of one intra-op thread per core makes every
# operation wait for the busy core: ViT-tiny/32 inference fell from 67 to 3 images/s).
# SPLIT_SEEDS=1 runs each 3-seed drift optimisation step as two one-thread processes (seeds 0,1
# and seed 2) side by side, then reports the three seeds together (the finished runs are reused).
# On 2 CPU cores the microscopy study takes about 3 hours, the drone study about 2 hours
# (study.log has each step's time).
set -euo pipefail
cd "$(dirname "$0")/.."
DATASET=raw_microscopy
DEVICE=cpu
OUT=
SPLIT_SEEDS=${SPLIT_SEEDS:-0}
STEPS=()
LIST=0
while [ $# -gt 0 ]; do
    case $1 in
        --dataset) DATASET=$2; shift 2 ;;
        --device) DEVICE=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --list) LIST=1; shift ;;
        -h|--help) sed -n 2,16p "$0"; exit 0 ;;
        --*) echo "drift_study.sh: unknown option $1" >&2; exit 2 ;;
        *) STEPS+=("$1"); shift ;;
    esac
done
case $DATASET in raw_microscopy|raw_drone) ;; *) echo "--dataset: raw_microscopy or raw_drone, got $DATASET" >&2; exit 2 ;; esac
case $DEVICE in cpu|cuda) ;; *) echo "--device: cpu or cuda, got $DEVICE" >&2; exit 2 ;; esac
OUT=${OUT:-outputs/study/$DATASET}
PY=${PYTHON:-.venv/bin/python}
GPU=()
EVAL_BS=()
if [ "$DEVICE" = cuda ]; then GPU=(--mixed_precision bf16); EVAL_BS=(--per_device_eval_batch_size 256); fi

log() { echo "[$(date +%H:%M:%S)] $*" | tee -a "$OUT/study.log"; }
timed() {  # timed <name> <command...>: run, append wall time to study.log
    local name=$1; shift
    local t0=$SECONDS
    log "start $name: $*"
    "$@" > "$OUT/$name.log" 2>&1
    log "done  $name in $((SECONDS - t0)) s"
}
wanted() {  # wanted <step>: whether the step is to run (no STEP given: all)
    [ "$LIST" = 1 ] && { echo "$1"; return 1; }
    [ ${#STEPS[@]} -eq 0 ] && return 0
    local s; for s in "${STEPS[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1
}
train() {  # train <task> <name> [options]: a training run (the task's defaults with changes)
    local task=$1 name=$2; shift 2
    wanted "$name" || return 0
    [ -f "$OUT/$name/all_results.json" ] && { log "skip $name (trained)"; return; }
    timed "$name" "$PY" "scripts/train_$task.py" --output_dir "$OUT/$name" --overwrite_output_dir "${GPU[@]}" "$@"
}
step() {  # step <name> <done-file> <command...>: a drift-control run, skipped once its result exists
    local name=$1 result=$2; shift 2
    wanted "$name" || return 0
    [ -f "$OUT/$name/$result" ] && { log "skip $name (done)"; return; }
    if [ "$SPLIT_SEEDS" = 1 ] && [[ " $* " == *" --seeds 0,1,2 "* ]]; then
        # Seeds 0,1 and seed 2 in two one-thread processes; the call below reuses their runs.
        local a b
        OMP_NUM_THREADS=1 RAW_ISP_THREADS=1 timed "${name}_s01" "$@" --output_dir "$OUT/$name" --seeds 0,1 --no_report &
        a=$!
        OMP_NUM_THREADS=1 RAW_ISP_THREADS=1 timed "${name}_s2" "$@" --output_dir "$OUT/$name" --seeds 2 --no_report &
        b=$!
        local rc=0
        wait "$a" || rc=$?
        wait "$b" || rc=$?
        [ "$rc" = 0 ] || { log "$name: a seed process failed (exit $rc); see $OUT/${name}_s01.log, ${name}_s2.log"; return "$rc"; }
    fi
    timed "$name" "$@" --output_dir "$OUT/$name"
}
mkdir -p "$OUT"
SYN="$PY scripts/drift_synthesis.py"
OPT="$PY scripts/drift_optimization.py"
FOR="$PY scripts/drift_forensics.py"

if [ "$DATASET" = raw_microscopy ]; then
    # 1. Light and exposure: the main job's classifier with each exposure mode, and with
    #    light-level training (photon-exact thinning per frame) on top of metadata exposure.
    train classification none --exposure none
    train classification metadata --exposure metadata
    train classification auto --exposure auto
    train classification metadata_light --exposure metadata --train_intensities 1.0,0.5,0.1,0.05
    # 2. Drift synthesis of the four side by side (12 ISPs x 7 intensities, corruptions, intervals).
    step synthesis summary.md $SYN --model "$OUT/none" --compare "$OUT/metadata" "$OUT/auto" "$OUT/metadata_light" \
        --labels none,metadata,auto,metadata_light "${EVAL_BS[@]}"
    # 3. Drift optimisation at the training scripts' budget (--full: all 658 training cells, 8
    #    epochs of batch 32, validation after each), 3 seeds, one step per intensity: static vs
    #    parametrized vs learned ISP, metadata exposure, ISP parameters in developed units.
    for i in 0.01 0.05 1; do
        step "optimization_i$i" drift_optimization.md $OPT --full --intensities "$i" --seeds 0,1,2 \
            --isps static:bi_s_ga,parametrized,learned --exposure metadata "${GPU[@]}"
    done
    #     The same without the learned ISP (its U-Net is the slowest of the three on a CPU): what a
    #     2-core session can afford at 0.05 and full light.
    for i in 0.05 1; do
        step "optimization_sp_i$i" drift_optimization.md $OPT --full --intensities "$i" --seeds 0,1,2 \
            --isps static:bi_s_ga,parametrized --exposure metadata "${GPU[@]}"
    done
    #     And static vs learned at full light and 0.05 (the static runs repeat those above with the
    #     same seeds: a check that a run reproduces).
    for i in 1 0.05; do
        step "optimization_sl_i$i" drift_optimization.md $OPT --full --intensities "$i" --seeds 0,1,2 \
            --isps static:bi_s_ga,learned --exposure metadata "${GPU[@]}"
    done
    # 3b. The evidence for the ISP's default units at 0.01: the parametrized ISP with every
    #     parameter at the ISP rate in its own units and no clipping (the setting before).
    step optimization_units_raw_i0.01 drift_optimization.md $OPT --full --intensities 0.01 --seeds 0,1,2 \
        --isps parametrized --exposure metadata --isp_rate_units raw --isp_max_grad_norm 0 "${GPU[@]}"
    #     (the same in two 2-core sessions: seed 1, which collapsed at the short budget, then 0 and 2)
    step optimization_units_raw_i0.01_s1 drift_optimization.md $OPT --full --intensities 0.01 --seeds 1 \
        --isps parametrized --exposure metadata --isp_rate_units raw --isp_max_grad_norm 0 "${GPU[@]}"
    step optimization_units_raw_i0.01_s02 drift_optimization.md $OPT --full --intensities 0.01 --seeds 0,2 \
        --isps parametrized --exposure metadata --isp_rate_units raw --isp_max_grad_norm 0 "${GPU[@]}"
    # 4. ISP drift between pipelines: the train-variant x test-variant matrix.
    step matrix summary.md $SYN --model "$OUT/metadata" --train_variants bi_s_ga,ma_u_me,me_s_me \
        --intensities 1.0,0.05 --corruptions none "${EVAL_BS[@]}"
    # 5. A CNN task model, as in the study: ResNet-18 (random init) at 128 px, then its synthesis.
    train classification resnet18 --model_name_or_path resnet-18 --image_size 128 --exposure metadata
    step resnet18_synthesis summary.md $SYN --model "$OUT/resnet18" --intensities 1.0,0.25,0.05,0.01 "${EVAL_BS[@]}"
    # 6. Drift forensics on the metadata-exposure classifier.
    step forensics forensics.md $FOR --model "$OUT/metadata" --lambdas 0,1,100 --steps 3
    # 7. Class balance.
    train classification balanced_loss --exposure metadata --class_balance weighted_loss
    train classification balanced_sampler --exposure metadata --class_balance sampler
    # 8. Seeds of the metadata and light-trained classifiers side by side.
    step seeds summary.md $SYN --model "$OUT/metadata" --compare "$OUT/metadata_light" --labels metadata,metadata_light \
        --seeds 42,1,2 --intensities 1.0,0.25,0.05,0.01 "${EVAL_BS[@]}"
    step balance summary.md $SYN --model "$OUT/metadata" --compare "$OUT/balanced_loss" "$OUT/balanced_sampler" \
        --labels plain,weighted_loss,sampler --variants bi_s_ga --intensities 1.0 --corruptions none
    # 9. The Raw2Logit protocol preset, reduced (5 epochs; the preset's 100 are for the real data
    #    or a GPU), on split seed 0.
    train classification raw2logit_s0 --protocol raw2logit --num_train_epochs 5 --split_seed 0
else
    # 1. Segmentation: which default learns. SegFormer-b0 with 8 epochs (validation after each)
    #    and the pixel cross-entropy, a class-weighted cross-entropy (car is 8 % of the pixels),
    #    and Dice + cross-entropy; then UperNet-ResNet-18, the CNN counterpart, with the chosen loss
    #    and a decoder of width 128 (the width-512 preset takes 32 s per step of 8 tiles on one
    #    core, about 9x the width-128 one: benchmarks/results/cpu-2core-2026-12-08/upernet_steps.txt).
    train segmentation seg_ce --num_train_epochs 8
    train segmentation seg_weighted --num_train_epochs 8 --class_balance weighted_loss
    train segmentation seg_dice_ce --num_train_epochs 8 --loss dice_ce
    train segmentation seg_upernet18 --num_train_epochs 8 --loss dice_ce --model_name_or_path upernet-resnet18-h128
    # The default (train_segmentation.py with no options) has the settings of this candidate.
    DEFAULT=${DRONE_DEFAULT:-seg_dice_ce}
    # 1b. The baselines beside it: all background, and the best single-feature colour threshold
    #     fitted on the training tiles (benchmarks/drone_baselines.py).
    if wanted baselines && [ ! -f "$OUT/baselines.json" ]; then
        timed baselines "$PY" benchmarks/drone_baselines.py --model "$OUT/$DEFAULT" --json "$OUT/baselines.json"
    fi
    # 2. Drift synthesis of the default: 12 ISPs x 7 intensities, corruptions, intervals over tiles.
    step synthesis summary.md $SYN --model "$OUT/$DEFAULT" "${EVAL_BS[@]}"
    #    The CNN counterpart's own ISP drift, at full light and 0.01 (no corruptions).
    step upernet_synthesis summary.md $SYN --model "$OUT/seg_upernet18" --intensities 1.0,0.01 --corruptions none \
        "${EVAL_BS[@]}"
    # 3. The train x test ISP matrix at full and low light (the study's worst drone pair was
    #    ma_s_ga -> bi_u_me); the default itself is the bi_s_ga row, and one more training, ma_s_ga,
    #    is what a 2-core session affords (about an hour on one core).
    step matrix summary.md $SYN --model "$OUT/$DEFAULT" --train_variants ma_s_ga \
        --intensities 1.0,0.05 --corruptions none "${EVAL_BS[@]}"
    # 4. Drift forensics.
    step forensics forensics.md $FOR --model "$OUT/$DEFAULT" --lambdas 0,1,100 --steps 3
    # 5. Drift optimisation scored with IoU, 3 seeds (the default's budget). On 2 cores, split the
    #    seeds over the cores: SPLIT_SEEDS=1 (above).
    for i in 0.01 1; do
        step "optimization_i$i" drift_optimization.md $OPT --task segmentation --full --intensities "$i" --seeds 0,1,2 \
            --isps static:bi_s_ga,parametrized --exposure metadata "${GPU[@]}"
    done
    # 6. The car / no-car classification task (930 tiles) through training and drift synthesis.
    train classification cls --dataset raw_drone
    step cls_synthesis summary.md $SYN --model "$OUT/cls" "${EVAL_BS[@]}"
    #    and drift optimisation on it (static vs parametrized, 3 seeds, the training script's
    #    budget): the drone's drift optimisation that a 2-core session can afford (the
    #    segmentation steps above take about 35 min per run there).
    for i in 0.01 1; do
        step "cls_optimization_i$i" drift_optimization.md $OPT --dataset raw_drone --full --intensities "$i" \
            --seeds 0,1,2 --isps static:bi_s_ga,parametrized --exposure metadata "${GPU[@]}"
    done
fi
[ "$LIST" = 1 ] || log "study steps finished"
