"""Loads an orbitrain safetensors model in PyTorch and prints the same number
as `orbitrain eval`: the mean cross-entropy over the first N non-overlapping
windows of block_size+1 bytes of a file. Shows that models exported by
orbitrain load in PyTorch and compute the same thing.

Run: /usr/bin/python3 tools/torch_eval.py MODEL.safetensors FILE [--windows N]
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt_torch import load_model  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("data")
    ap.add_argument("--windows", type=int, default=0)
    a = ap.parse_args()
    model, vocab = load_model(a.model)
    model.eval()
    index = {b: i for i, b in enumerate(vocab)}
    data = open(a.data, "rb").read()
    toks = torch.tensor([index[b] for b in data], dtype=torch.long)
    T = model.cfg["block_size"]
    n = len(toks) // (T + 1)
    if a.windows:
        n = min(n, a.windows)
    w = toks[: n * (T + 1)].view(n, T + 1)
    with torch.no_grad():
        losses = [model(w[i:i + 64, :T], w[i:i + 64, 1:])[1].item() * len(w[i:i + 64])
                  for i in range(0, n, 64)]
    print(f"torch eval: {n} windows of {T + 1} bytes, mean cross-entropy {sum(losses) / n:.4f}")


if __name__ == "__main__":
    main()
