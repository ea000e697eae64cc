"""nanoGPT's training recipe in PyTorch, as the reference for
`orbitrain train-local`: same model, same 90/10 split by position, same
sampler semantics (random windows, or --sampler sequential: batch i takes the
windows starting at (i*B + b) * block_size of the train split), AdamW with
nanoGPT's decay groups, gradient clipping, linear warmup then cosine decay.
Writes the trained model as safetensors (orbitrain's metadata convention), so
`orbitrain eval` can score both models with the same code.

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 tools/torch_train.py \
       --data FILE --steps 2000 --out torch.safetensors
"""
import argparse
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt_torch import GPT, load_model, model_metadata, save_safetensors, state_dict_for_export  # noqa: E402,E501


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--n-embd", type=int, default=128)
    ap.add_argument("--block-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=12)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--min-lr", type=float, default=1e-4)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--beta2", type=float, default=0.99)
    ap.add_argument("--grad-clip", type=float, default=1.0)
    ap.add_argument("--sampler", default="random", choices=["random", "sequential"])
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--log-every", type=int, default=0, help="print the loss every N steps")
    ap.add_argument("--init", default="", help="start from this safetensors model")
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    text = open(a.data, "rb").read()
    vocab = sorted(set(text))
    index = {b: i for i, b in enumerate(vocab)}
    data = torch.tensor([index[b] for b in text], dtype=torch.long)
    n = len(data) * 9 // 10
    train, val = data[:n], data[n:]
    T, B = a.block_size, a.batch
    cfg = {"n_layer": a.n_layer, "n_head": a.n_head, "n_embd": a.n_embd, "block_size": T,
           "vocab_size": len(vocab), "bias": False}
    if a.init:
        model, init_vocab = load_model(a.init)
        if list(init_vocab) != list(vocab):
            raise SystemExit(f"{a.init}: vocabulary differs from that of {a.data}")
        cfg = model.cfg
        T = cfg["block_size"]
    else:
        model = GPT(cfg)
    opt = model.optimizer(a.lr, a.weight_decay, (0.9, a.beta2))

    def lr_at(it):
        if it < a.warmup:
            return a.lr * (it + 1) / (a.warmup + 1)
        if it > a.steps:
            return a.min_lr
        r = (it - a.warmup) / (a.steps - a.warmup)
        return a.min_lr + 0.5 * (1.0 + math.cos(math.pi * r)) * (a.lr - a.min_lr)

    def batch(d, i, sampler, B=B):
        if sampler == "sequential":
            w = (len(d) - 1) // T
            starts = [((i * B + b) % w) * T for b in range(B)]
        else:
            starts = torch.randint(len(d) - T, (B,)).tolist()
        x = torch.stack([d[s:s + T] for s in starts])
        y = torch.stack([d[s + 1:s + 1 + T] for s in starts])
        return x, y

    def val_loss(n_batches=20):
        model.eval()
        with torch.no_grad():
            # as orbitrain's evaluate: sequential batches of min(B, 8) windows
            ls = [model(*batch(val, i, "sequential", min(B, 8)))[1].item()
                  for i in range(n_batches)]
        model.train()
        return sum(ls) / len(ls)

    t0 = time.time()
    for it in range(a.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(it)
        x, y = batch(train, it, a.sampler)
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), a.grad_clip)
        opt.step()
        if a.log_every and ((it + 1) % a.log_every == 0 or it == 0):
            print(f"step {it + 1} loss {loss.item():.6f}", flush=True)
        if (it + 1) % a.eval_every == 0 or it + 1 == a.steps:
            print(f"step {it + 1} loss {loss.item():.4f} val {val_loss():.4f} "
                  f"{(it + 1) * B * T / (time.time() - t0):.0f} tok/s", flush=True)
    if a.out:
        save_safetensors(a.out, state_dict_for_export(model), model_metadata(cfg, vocab))


if __name__ == "__main__":
    main()
