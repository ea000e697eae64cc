"""Golden values for the compute/ tests, from PyTorch (Debian's python3-torch).

Writes to tests/compute/fixtures/ (committed, so the test suite needs no
PyTorch):
  golden_model.safetensors   a tiny model (bias on) exported from PyTorch, with
                             config and vocab in __metadata__
  golden_grads.safetensors   the gradient of the mean cross-entropy on batch
                             0 w.r.t. every parameter (wte: both uses summed)
  golden_final.safetensors   the parameters after the AdamW steps below
  golden.json                the batches, the loss at the initial weights and
                             the loss before every AdamW step (with clipping
                             and nanoGPT's schedule)
Everything is computed in float64 and stored as float32.

Run: /usr/bin/python3 tools/torch_golden.py [--out tests/compute/fixtures]
"""
import argparse
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt_torch import GPT, model_metadata, save_safetensors, state_dict_for_export  # noqa: E402

CFG = {"n_layer": 2, "n_head": 2, "n_embd": 16, "block_size": 8, "vocab_size": 11, "bias": True}
VOCAB = [10, 32, 97, 98, 99, 100, 101, 102, 103, 104, 105]  # "\n abcdefghi"
STEPS = 5
B = 3
OPT = {"lr": 1e-2, "min_lr": 1e-3, "warmup": 2, "decay_steps": 5, "weight_decay": 0.1,
       "beta1": 0.9, "beta2": 0.99, "eps": 1e-8, "grad_clip": 1.0}


def lr_at(it):
    o = OPT
    if it < o["warmup"]:
        return o["lr"] * (it + 1) / (o["warmup"] + 1)
    if it > o["decay_steps"]:
        return o["min_lr"]
    ratio = (it - o["warmup"]) / (o["decay_steps"] - o["warmup"])
    return o["min_lr"] + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (o["lr"] - o["min_lr"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests",
                                                  "compute", "fixtures"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(1234)
    model = GPT(CFG).double()
    # Random, non-degenerate weights (nanoGPT's init has zero biases and unit LN).
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name == "lm_head.weight":
                continue
            p.add_(0.1 * torch.randn_like(p))
            p.copy_(p.float().double())  # exactly the float32 values that are stored
    T = CFG["block_size"]
    g = torch.Generator().manual_seed(99)
    batches = [torch.randint(0, CFG["vocab_size"], (B, T + 1), generator=g) for _ in range(STEPS)]

    save_safetensors(os.path.join(args.out, "golden_model.safetensors"),
                     state_dict_for_export(model), model_metadata(CFG, VOCAB))

    x, y = batches[0][:, :T], batches[0][:, 1:]
    _, loss0 = model(x, y)
    model.zero_grad()
    loss0.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if n != "lm_head.weight"}
    # named_parameters lists the tied weight once (as transformer.wte.weight)
    save_safetensors(os.path.join(args.out, "golden_grads.safetensors"), grads)

    opt = model.optimizer(OPT["lr"], OPT["weight_decay"], (OPT["beta1"], OPT["beta2"]), OPT["eps"])
    losses = []
    for it in range(STEPS):
        x, y = batches[it][:, :T], batches[it][:, 1:]
        for group in opt.param_groups:
            group["lr"] = lr_at(it)
        _, loss = model(x, y)
        losses.append(loss.item())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), OPT["grad_clip"])
        opt.step()
    save_safetensors(os.path.join(args.out, "golden_final.safetensors"),
                     state_dict_for_export(model))
    with open(os.path.join(args.out, "golden.json"), "w") as f:
        json.dump({"config": CFG, "vocab": VOCAB, "optimizer": OPT, "batch": B,
                   "batches": [b.tolist() for b in batches], "loss0": loss0.item(),
                   "losses": losses, "torch_version": torch.__version__}, f, indent=1)
    print(f"wrote {args.out}: loss0 {loss0.item():.6f}, losses {[round(v, 6) for v in losses]}")


if __name__ == "__main__":
    main()
