#!/usr/bin/env bash
# The stock-tools pipeline: vspipe renders vmaf_pre(DIST) as y4m, ffmpeg's libvmaf scores it against REF.
#   examples/vmaf_pipeline.sh REF DIST [LOG.json] [MODEL]
# Both inputs are re-timed to N/FRAME_RATE so libvmaf pairs frame n with frame n: millisecond container
# timestamps (mkv) against exact y4m ones would otherwise pair some frames off by one.
# Uses the venv's vspipe and the ffmpeg binary shipped by imageio-ffmpeg (it has libvmaf; Debian's has not).
set -euo pipefail
if [ $# -lt 2 ]; then echo "usage: $0 REF DIST [LOG.json] [MODEL]" >&2; exit 2; fi
here="$(cd "$(dirname "$0")" && pwd)"
py="${PYTHON:-$here/../.venv/bin/python}"
[ -x "$py" ] || py="$(command -v python3)"
bin="$(dirname "$py")"
ref="$1"; dist="$2"; log="${3:-vmaf_prefiltered.json}"; model="${4:-learned_filter_v1}"
for f in "$ref" "$dist"; do [ -f "$f" ] || { echo "vmaf_pipeline: $f does not exist" >&2; exit 2; }; done
logdir="$(dirname -- "$log")"
[ -d "$logdir" ] || { echo "vmaf_pipeline: the folder of LOG ($logdir) does not exist" >&2; exit 2; }
[ -w "$logdir" ] || { echo "vmaf_pipeline: the folder of LOG ($logdir) is not writable" >&2; exit 2; }
# libvmaf's options sit inside an ffmpeg filtergraph: escape '\', ':' and ',' in the log path for it.
log_escaped="$(printf '%s' "$log" | sed -e 's/\\/\\\\\\\\/g' -e 's/:/\\\\:/g' -e "s/'/\\\\\\'/g" -e 's/,/\\,/g')"
ffmpeg="$("$py" -c 'import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())')"
# vspipe loads plugins before the script: preload the openvino package's runtime so that
# vapoursynth-mlrt-ov (if installed) shares it and vmaf_pre's OpenVINO backend stays usable.
ov_lib="$("$py" -c 'from vsfilter.backends import openvino_runtime_library as f; print(f())' 2>/dev/null || true)"
if [ -n "$ov_lib" ]; then export LD_PRELOAD="$ov_lib${LD_PRELOAD:+:$LD_PRELOAD}"; fi
"$bin/vspipe" -c y4m -a "src=$dist" -a "model=$model" "$here/prefilter.vpy" - |
    "$ffmpeg" -nostdin -hide_banner -loglevel error -i - -i "$ref" \
        -lavfi "[0:v]settb=AVTB,setpts=N/FRAME_RATE/TB[d];[1:v]settb=AVTB,setpts=N/FRAME_RATE/TB[r];[d][r]libvmaf=model=version=vmaf_v0.6.1:log_fmt=json:log_path=$log_escaped:shortest=1" \
        -f null -
"$py" -c "import json,sys; print('VMAF (prefiltered):', round(json.load(open(sys.argv[1]))['pooled_metrics']['vmaf']['mean'], 3))" "$log"
