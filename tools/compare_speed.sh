#!/usr/bin/env bash
# Runs `orbitrain bench compute` and its PyTorch peer (tools/torch_bench.py)
# ROUNDS times each, for one model and precision, prints one JSON line per
# run, then a summary (tools/speed_summary.py) on stderr.
#
# By default the two programs run one after the other, alternately. With
# --lockstep both run at once but take turns step by step (their --turns
# pipes): each step of one is followed by a step of the other, so every pair
# of steps meets the same machine conditions. On a host whose speed drifts
# (this one's moves by up to 1.5x within minutes), the ratio of paired steps
# is the figure to trust.
#
# usage: tools/compare_speed.sh [--lockstep] ORBITRAIN_BIN MODEL PRECISION [ROUNDS] [BATCH] [THREADS]
#   e.g. tools/compare_speed.sh --lockstep build/bin/orbitrain small bf16 3 8 2
set -euo pipefail
lockstep=0
if [[ ${1:-} == --lockstep ]]; then
  lockstep=1
  shift
fi
bin=$1 model=$2 prec=$3 rounds=${4:-3} batch=${5:-8} threads=${6:-2}
steps=10 warmup=3
here=$(cd "$(dirname "$0")" && pwd)
# The peer at its best: OpenBLAS with its kernels for this CPU
# (tools/peer_openblas.sh says which).
peer_env=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE)
core=$("$here/peer_openblas.sh")
if [[ -n "$core" ]]; then
  peer_env+=("OPENBLAS_CORETYPE=$core")
fi
echo "peer: ${peer_env[*]} /usr/bin/python3 $here/torch_bench.py" >&2
ours=("$bin" bench compute --model "$model" --precision "$prec" --threads "$threads"
  --batch "$batch" --steps "$steps" --warmup "$warmup" --json)
peer=("${peer_env[@]}" /usr/bin/python3 "$here/torch_bench.py" --model "$model"
  --precision "$prec" --threads "$threads" --batch "$batch" --steps "$steps" --warmup "$warmup")
tag_ours='import json,sys; d=json.load(sys.stdin); d["peer"]="orbitrain"; print(json.dumps(d))'
one_line='import json,sys; print(json.dumps(json.load(sys.stdin)))'

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

for ((i = 0; i < rounds; ++i)); do
  if ((lockstep)); then
    mkfifo "$tmp/to_ours" "$tmp/to_peer"
    # Held open read-write here, so neither program blocks opening its ends
    # and a token waits in the pipe until its reader comes.
    exec 3<>"$tmp/to_ours" 4<>"$tmp/to_peer"
    "${ours[@]}" --turns "$tmp/to_ours,$tmp/to_peer" >"$tmp/ours.json" &
    pids=($!)
    "${peer[@]}" --turns "$tmp/to_peer,$tmp/to_ours" >"$tmp/peer.json" &
    pids+=($!)
    printf t >&3 # ours takes the first step
    # If either fails, the other would wait for its turn forever.
    status=0
    wait -n "${pids[@]}" || status=$?
    if ((status != 0)); then
      echo "compare_speed: a benchmark failed (exit $status)" >&2
      exit 1
    fi
    wait "${pids[@]}" || {
      echo "compare_speed: a benchmark failed" >&2
      exit 1
    }
    pids=()
    exec 3>&- 4>&-
    rm -f "$tmp/to_ours" "$tmp/to_peer"
    python3 -c "$tag_ours" <"$tmp/ours.json"
    python3 -c "$one_line" <"$tmp/peer.json"
  else
    "${ours[@]}" | python3 -c "$tag_ours"
    "${peer[@]}" | python3 -c "$one_line"
  fi
done | tee "$tmp/all.jsonl"
python3 "$here/speed_summary.py" <"$tmp/all.jsonl" >&2
