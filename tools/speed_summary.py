"""Summarises tools/compare_speed.sh output (JSON lines from stdin): for each
program, the min and median step times of every run; then the speed ratios
PyTorch time / orbitrain time (above 1: orbitrain is faster):
  - of the best minima over all runs;
  - of the medians, run by run;
  - lockstep runs only: the median over all step pairs of the paired ratio
    (step i of PyTorch / step i of orbitrain, taken in turns).
"""
import json
import statistics
import sys


def main():
    runs = {"orbitrain": [], "pytorch": []}
    for line in sys.stdin:
        line = line.strip()
        if not line.startswith("{"):
            continue
        d = json.loads(line)
        who = "orbitrain" if d["peer"] == "orbitrain" else "pytorch"
        runs[who].append(d)
    ours, peer = runs["orbitrain"], runs["pytorch"]
    if not ours or not peer:
        sys.exit("speed_summary: need runs of both orbitrain and pytorch")
    for who, rs in runs.items():
        print(f"{who:9s} min   " + " ".join(f"{r['step_time_min_s']:.4f}" for r in rs))
        print(f"{who:9s} median " + " ".join(f"{r['step_time_median_s']:.4f}" for r in rs))
    best = min(r["step_time_min_s"] for r in peer) / min(r["step_time_min_s"] for r in ours)
    medians = [p["step_time_median_s"] / o["step_time_median_s"] for o, p in zip(ours, peer)]
    print(f"ratio of best minima {best:.3f}")
    print("ratio of medians per run " + " ".join(f"{r:.3f}" for r in medians))
    paired = []
    for o, p in zip(ours, peer):
        if o.get("lockstep") and p.get("lockstep"):
            paired += [b / a for a, b in zip(o["step_times_s"], p["step_times_s"])]
    if paired:
        paired.sort()
        print(f"paired step ratio: median {statistics.median(paired):.3f}, "
              f"quartiles {paired[len(paired) // 4]:.3f} .. {paired[3 * len(paired) // 4]:.3f}, "
              f"{len(paired)} pairs")


if __name__ == "__main__":
    main()
