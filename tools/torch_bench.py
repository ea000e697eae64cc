"""The PyTorch peer of `orbitrain bench compute`: the same model and training
step (forward, backward, clip, AdamW) at the same batch, timed the same way
(warm-up, then min and median step time).

Fair measurement (see docs/performance.md): Debian's python3-torch with
libopenblas0-openmp, and OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset for this
command only, e.g.
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 tools/torch_bench.py \
      --model small --threads 2 [--precision bf16]
"""
import argparse
import json
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt_torch import GPT  # noqa: E402

CONFIGS = {"baby": {"n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 64},
           "small": {"n_layer": 6, "n_head": 6, "n_embd": 384, "block_size": 256}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="small", choices=sorted(CONFIGS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", default="f32", choices=["f32", "bf16"])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--vocab", type=int, default=65)
    ap.add_argument("--turns", default="",
                    help="IN,OUT: two pipes; take turns with a peer benchmark, one step each "
                         "(tools/compare_speed.sh --lockstep)")
    a = ap.parse_args()
    turn_in = turn_out = None
    if a.turns:
        in_path, out_path = a.turns.split(",")
        turn_in = os.open(in_path, os.O_RDONLY)
        turn_out = os.open(out_path, os.O_WRONLY)
    torch.set_num_threads(a.threads)
    cfg = dict(CONFIGS[a.model], vocab_size=a.vocab, bias=False)
    torch.manual_seed(0)
    model = GPT(cfg)
    opt = model.optimizer(1e-4, 0.1, (0.9, 0.95))
    T = cfg["block_size"]
    x = torch.randint(0, a.vocab, (a.batch, T))
    y = torch.randint(0, a.vocab, (a.batch, T))
    times = []
    for i in range(a.warmup + a.steps):
        if turn_in is not None and len(os.read(turn_in, 1)) != 1:
            sys.exit("--turns: the peer closed its pipe")
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.precision == "bf16"):
            _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        dt = time.perf_counter() - t0
        if turn_out is not None:
            os.write(turn_out, b"t")
        if i >= a.warmup:
            times.append(dt)
    in_order = list(times)
    times.sort()
    n_params = sum(p.numel() for p in model.parameters())
    flops_tok = 6 * n_params + 12 * cfg["n_layer"] * cfg["n_embd"] * T
    tok_s = a.batch * T / times[len(times) // 2]
    print(json.dumps({"peer": "pytorch " + torch.__version__, "model": a.model,
                      "precision": a.precision, "threads": a.threads, "batch": a.batch,
                      "step_time_min_s": times[0], "step_time_median_s": times[len(times) // 2],
                      "step_times_s": in_order, "lockstep": bool(a.turns),
                      "tokens_per_s": tok_s, "gflops": flops_tok * tok_s / 1e9,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024},
                     indent=2))


if __name__ == "__main__":
    main()
