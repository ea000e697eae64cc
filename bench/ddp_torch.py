"""The baseline of bench/train_bench: PyTorch DistributedDataParallel with the
gloo backend on localhost, WORLD processes with THREADS threads each, training
the same GPT (tools/gpt_torch.py) on the same text with the same step (forward,
backward with DDP's bucketed all-reduce overlapping it, clip, AdamW).

Prints one JSON object: global tokens/s (median and best over timed steps
after a warm-up), per-step time, the time each step spends waiting in the
all-reduce after backward, and the bytes each process sends.

Fair measurement (see docs/performance.md): Debian's python3-torch with
libopenblas0-openmp, OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset for this
command only:
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/ddp_torch.py \
      --data text.txt --world 2 --threads 1
"""
import argparse
import json
import os
import socket
import statistics
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from gpt_torch import GPT  # noqa: E402

CONFIGS = {"baby": {"n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 64},
           "small": {"n_layer": 6, "n_head": 6, "n_embd": 384, "block_size": 256}}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(rank, a, port, out):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    os.environ["GLOO_SOCKET_IFNAME"] = "lo"
    torch.set_num_threads(a.threads)
    if a.world > 1:
        dist.init_process_group("gloo", rank=rank, world_size=a.world)
    text = open(a.data, "rb").read()
    vocab = sorted(set(text))
    lut = {b: i for i, b in enumerate(vocab)}
    data = torch.tensor([lut[b] for b in text[: len(text) * 9 // 10]], dtype=torch.long)
    cfg = dict(CONFIGS[a.model], vocab_size=len(vocab), bias=False)
    torch.manual_seed(1337)
    model = GPT(cfg)
    DDP = torch.nn.parallel.DistributedDataParallel
    # The causal masks are constant bool buffers, which gloo cannot broadcast.
    DDP._set_params_and_buffers_to_ignore_for_model(
        model, [n for n, _ in model.named_buffers()])
    ddp = DDP(model) if a.world > 1 else model
    opt = model.optimizer(1e-3, 0.1, (0.9, 0.99))
    T = cfg["block_size"]
    g = torch.Generator().manual_seed(1000 + rank)
    step_times, tokens = [], a.batch * T * a.world
    for i in range(a.warmup + a.steps):
        ix = torch.randint(len(data) - T - 1, (a.batch,), generator=g)
        x = torch.stack([data[j: j + T] for j in ix])
        y = torch.stack([data[j + 1: j + 1 + T] for j in ix])
        if a.world > 1:
            dist.barrier()
        t0 = time.perf_counter()
        _, loss = ddp(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if i >= a.warmup:
            step_times.append(time.perf_counter() - t0)
    # Gradient exchange alone: one all-reduce of every gradient, as DDP's
    # buckets move them (same bytes), timed after training.
    exchange = []
    if a.world > 1:
        flat = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
        for _ in range(5):
            dist.barrier()
            t0 = time.perf_counter()
            dist.all_reduce(flat)
            exchange.append(time.perf_counter() - t0)
    n_params = sum(p.numel() for p in model.parameters())
    if rank == 0:
        med = statistics.median(step_times)
        out.put({"peer": "pytorch " + torch.__version__ + " DDP gloo", "model": a.model,
                 "processes": a.world, "threads": a.threads, "micro_batch": a.batch,
                 "steps_timed": a.steps, "step_time_median_s": med,
                 "step_time_min_s": min(step_times),
                 "tokens_per_s": tokens / med, "tokens_per_s_best": tokens / min(step_times),
                 "allreduce_s": statistics.median(exchange) if exchange else 0.0,
                 "parameters": n_params,
                 # A ring all-reduce sends 2 (W-1)/W of the gradient bytes per process.
                 "bytes_sent_per_process_per_step": int(2 * (a.world - 1) / a.world * n_params * 4),
                 "final_loss": float(loss)})
    if a.world > 1:
        dist.destroy_process_group()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--model", default="small", choices=sorted(CONFIGS))
    ap.add_argument("--world", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    a = ap.parse_args()
    ctx = mp.get_context("spawn")
    out = ctx.SimpleQueue()
    port = free_port()
    if a.world == 1:
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        worker(0, a, port, out)
    else:
        procs = [ctx.Process(target=worker, args=(r, a, port, out)) for r in range(a.world)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
            if p.exitcode != 0:
                sys.exit("a DDP process failed")
    print(json.dumps(out.get()))


if __name__ == "__main__":
    main()
