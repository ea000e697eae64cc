#!/usr/bin/env bash
# Runs `orbitrain bench compute` and its PyTorch peer (tools/torch_bench.py)
# alternately, ROUNDS times each, for one model and precision, and prints one
# JSON line per run. Alternating puts both under the same machine conditions;
# compare the best (minimum) step times, or the medians on a quiet machine.
#
# usage: tools/compare_speed.sh ORBITRAIN_BIN MODEL PRECISION [ROUNDS] [BATCH] [THREADS]
#   e.g. tools/compare_speed.sh build/bin/orbitrain small f32 3 8 2
set -euo pipefail
bin=$1 model=$2 prec=$3 rounds=${4:-3} batch=${5:-8} threads=${6:-2}
here=$(cd "$(dirname "$0")" && pwd)
# The peer at its best: OpenBLAS with its kernels for this CPU
# (tools/peer_openblas.sh says which).
peer_env=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE)
core=$("$here/peer_openblas.sh")
if [[ -n "$core" ]]; then
  peer_env+=("OPENBLAS_CORETYPE=$core")
fi
echo "peer: ${peer_env[*]} /usr/bin/python3 $here/torch_bench.py" >&2
for ((i = 0; i < rounds; ++i)); do
  "$bin" bench compute --model "$model" --precision "$prec" --threads "$threads" \
    --batch "$batch" --json | python3 -c 'import json,sys; d=json.load(sys.stdin); d["peer"]="orbitrain"; print(json.dumps(d))'
  "${peer_env[@]}" /usr/bin/python3 "$here/torch_bench.py" \
    --model "$model" --precision "$prec" --threads "$threads" --batch "$batch" |
    python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)))'
done
