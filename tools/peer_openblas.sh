#!/usr/bin/env bash
# Prints the OPENBLAS_CORETYPE under which the PyTorch peer of the benchmarks
# runs at its best on this host, or nothing when OpenBLAS's own detection is
# best. The environment's OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are ignored (on
# the AMD EPYC hosts, Haswell halved OpenBLAS's speed). An OpenBLAS that does
# not know the CPU (0.3.21 on Emerald Rapids says "Prescott", 5x slower) gets
# SkylakeX when the CPU has AVX-512: there, small f32 ran at 544 tokens/s
# (Prescott), 1,687 (Haswell), 2,092 (Cooperlake) and 2,636 (SkylakeX).
# PEER_OPENBLAS_CORETYPE, when set, is printed as is.
set -euo pipefail
if [[ -n "${PEER_OPENBLAS_CORETYPE:-}" ]]; then
  echo "$PEER_OPENBLAS_CORETYPE"
  exit 0
fi
core=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_VERBOSE=2 \
  /usr/bin/python3 -c 'import torch' 2>&1 | sed -n 's/^Core: //p' | head -1 || true)
if [[ "$core" == Prescott ]] && grep -qw avx512f /proc/cpuinfo; then
  echo SkylakeX
fi
