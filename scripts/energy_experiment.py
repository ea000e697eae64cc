#!/usr/bin/env python3
"""The energy- and contact-aware scheduler against the load-only one.

Starts a 24-satellite Walker constellation (70:24/3/1 at 1500 km, time scale
60, one `orbitrain node` process per satellite on this host) afresh for every
run, so every run starts with the same batteries at the same orbital phase
(`[orbit] start` = the run's start), trains the baby model in sync and in
async mode with `--scheduler aware` and `--scheduler load`, and records per
run: the loss over wall time (the metrics file), time to a target loss,
simulated seconds any battery spent below its depth-of-discharge floor, the
lowest state of charge, and the bytes the link layers carried over ISLs.
Writes results.json and an SVG plot (no plotting library needed).

  scripts/energy_experiment.py --build build --out docs/experiments --steps 60
"""
import argparse
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

CONFIG = """# The energy experiment's constellation (scripts/energy_experiment.py).
name = "energy-24"
{satellites}
[job]
scheduler = "sat-01"
parameter_server = "sat-01"
[storage]
root = "{root}"
replicas = 2
[orbit]
walker = "70:24/3/1"
altitude_km = 1500
epoch = "2026-03-20T00:00:00Z"
start = "{start}"
time_scale = 60
[links]
max_range_km = 6500
queue_limit_mib = 256
[[ground_station]]
name = "svalbard"
lat = 78.2
lon = 15.4
min_elevation_deg = 10
[energy]
solar_w = 100
battery_wh = 20
depth_of_discharge = 0.5
idle_w = 5
per_core_w = 40
initial_soc = 0.75
"""


def write_config(path, root, start, base_port):
    sats = "\n".join(
        f'[[satellite]]\nid = "sat-{i + 1:02d}"\nhost = "127.0.0.1"\nport = {base_port + i}'
        for i in range(24))
    stamp = datetime.datetime.fromtimestamp(start, datetime.timezone.utc)
    with open(path, "w") as f:
        f.write(CONFIG.format(satellites=sats, root=root,
                              start=stamp.strftime("%Y-%m-%dT%H:%M:%SZ")))


def up(binary, config, log):
    p = subprocess.Popen([binary, "up", "--config", config], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, start_new_session=True)
    out = open(log, "w")
    for line in p.stdout:
        out.write(line)
        if "is up" in line:
            # The satellites' logs keep coming: copy them to the log file, so
            # a full pipe never blocks `up` (and through it the satellites).
            def drain():
                for rest in p.stdout:
                    out.write(rest)
                out.close()
            threading.Thread(target=drain, daemon=True).start()
            return p
    raise RuntimeError("the constellation did not start")


def down(p):
    p.send_signal(signal.SIGINT)
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()


def run(args, mode, policy, data):
    config = os.path.join(args.work, "energy-24.toml")
    start = int(time.time()) + 3
    write_config(config, os.path.join(args.work, "data"), start, args.port)
    cluster = up(args.binary, config, os.path.join(args.work, f"up-{mode}-{policy}.log"))
    try:
        if not os.path.exists(os.path.join(args.work, "ingested")):
            subprocess.run([args.binary, "ingest", "--config", config, data, "--dataset", "lic",
                            "--ground-station", "none"], check=True, stdout=subprocess.DEVNULL)
            open(os.path.join(args.work, "ingested"), "w").close()
        metrics = os.path.join(args.out, f"metrics-{mode}-{policy}.jsonl")
        cmd = [args.binary, "train", "--config", config, "--dataset", "lic", "--steps",
               str(args.steps if mode == "sync" else args.steps * args.mb), "--mode", mode,
               "--scheduler", policy, "--micro-batch", "4", "--micro-batches-per-step",
               str(args.mb), "--eval-every", "0", "--checkpoint-every", "0", "--warmup", "10",
               "--lr", "3e-3", "--metrics", metrics, "--ground-station", "none",
               "--log-every", "10", "--seed", "7", "--staleness", "8"]
        t0 = time.time()
        subprocess.run(cmd, check=True, stdout=sys.stderr)
        wall = time.time() - t0
        status = json.loads(subprocess.run(
            [args.binary, "status", "--config", config, "--json", "--ground-station", "none",
             "--timeout", "10s"], check=True, capture_output=True, text=True).stdout)
    finally:
        down(cluster)
    orbits = [s["orbit"] for s in status["satellites"] if "orbit" in s]
    steps = [json.loads(l) for l in open(metrics)]
    return {
        "mode": mode, "policy": policy, "wall_s": wall,
        "curve": [(s["elapsed_s"], s["train_loss"]) for s in steps],
        "below_floor_s": sum(o["below_floor_s"] for o in orbits),
        "satellites_below_floor": sum(1 for o in orbits if o["below_floor_s"] > 0),
        "min_soc": min(o["min_state_of_charge"] for o in orbits),
        "isl_bytes": sum(o["link_bytes"] for o in orbits),
        "tasks_per_worker": [sum(x) for x in zip(*[s["tasks_per_worker"] for s in steps])],
        "declined": steps[-1].get("declined", 0),
    }


def smooth(curve, k=10):
    out = []
    for i in range(len(curve)):
        w = curve[max(0, i - k + 1):i + 1]
        out.append((curve[i][0], sum(l for _, l in w) / len(w)))
    return out


def time_to(curve, target):
    for t, l in smooth(curve):
        if l <= target:
            return t
    return None


def svg(results, path, target):
    W, H, L, B = 760, 420, 60, 50
    tmax = max(t for r in results for t, _ in r["curve"]) * 1.02
    ls = [l for r in results for _, l in smooth(r["curve"])]
    lmin, lmax = min(ls) * 0.98, max(ls) * 1.02
    x = lambda t: L + (W - L - 20) * t / tmax
    y = lambda l: 20 + (H - 20 - B) * (lmax - l) / (lmax - lmin)
    colors = {("sync", "aware"): "#1f77b4", ("sync", "load"): "#aec7e8",
              ("async", "aware"): "#d62728", ("async", "load"): "#ff9896"}
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           'font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<line x1="{L}" y1="{H - B}" x2="{W - 20}" y2="{H - B}" stroke="black"/>',
           f'<line x1="{L}" y1="20" x2="{L}" y2="{H - B}" stroke="black"/>',
           f'<text x="{W / 2}" y="{H - 12}" text-anchor="middle">wall time (s)</text>',
           f'<text x="15" y="{H / 2}" transform="rotate(-90 15 {H / 2})" '
           'text-anchor="middle">training loss (moving average of 10)</text>']
    for i in range(6):
        t = tmax * i / 5
        out.append(f'<text x="{x(t):.1f}" y="{H - B + 15}" text-anchor="middle">{t:.0f}</text>')
        l = lmin + (lmax - lmin) * i / 5
        out.append(f'<text x="{L - 5}" y="{y(l) + 4:.1f}" text-anchor="end">{l:.2f}</text>')
    out.append(f'<line x1="{L}" y1="{y(target):.1f}" x2="{W - 20}" y2="{y(target):.1f}" '
               'stroke="gray" stroke-dasharray="4,3"/>')
    for k, r in enumerate(results):
        c = colors[(r["mode"], r["policy"])]
        pts = " ".join(f"{x(t):.1f},{y(l):.1f}" for t, l in smooth(r["curve"]))
        dash = "" if r["policy"] == "aware" else ' stroke-dasharray="6,3"'
        out.append(f'<polyline fill="none" stroke="{c}" stroke-width="2"{dash} points="{pts}"/>')
        label = (f'{r["mode"]} {r["policy"]}: below floor {r["below_floor_s"]:.0f} s '
                 f'({r["satellites_below_floor"]} sat.)')
        out.append(f'<line x1="{W - 330}" y1="{34 + 16 * k}" x2="{W - 305}" y2="{34 + 16 * k}" '
                   f'stroke="{c}" stroke-width="2"{dash}/>')
        out.append(f'<text x="{W - 300}" y="{38 + 16 * k}">{label}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--out", default="docs/experiments")
    ap.add_argument("--work", default="/tmp/orbitrain-energy")
    ap.add_argument("--steps", type=int, default=60, help="sync steps (async: steps x mb)")
    ap.add_argument("--mb", type=int, default=12, help="micro-batches per sync step")
    ap.add_argument("--port", type=int, default=4760)
    ap.add_argument("--runs", default="sync:aware,sync:load,async:aware,async:load")
    ap.add_argument("--target", type=float, default=0)
    args = ap.parse_args()
    args.binary = os.path.abspath(os.path.join(args.build, "bin", "orbitrain"))
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    os.makedirs(args.out, exist_ok=True)
    data = os.path.join(args.work, "licenses.txt")
    with open(data, "wb") as f:
        for name in sorted(os.listdir("/usr/share/common-licenses")):
            p = os.path.join("/usr/share/common-licenses", name)
            if os.path.isfile(p):
                f.write(open(p, "rb").read())
    results = []
    for spec in args.runs.split(","):
        mode, policy = spec.split(":")
        print(f"== {mode} {policy}", file=sys.stderr, flush=True)
        results.append(run(args, mode, policy, data))
    # The target: the highest final smoothed loss any run reached (all reach it).
    target = args.target or max(smooth(r["curve"])[-1][1] for r in results)
    for r in results:
        r["time_to_target_s"] = time_to(r["curve"], target)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"target_loss": target, "runs": results}, f, indent=1)
    svg(results, os.path.join(args.out, "energy.svg"), target)
    print(f"target loss {target:.3f}")
    for r in results:
        print(f'{r["mode"]:5} {r["policy"]:5} wall {r["wall_s"]:6.1f} s  to target '
              f'{r["time_to_target_s"]} s  below floor {r["below_floor_s"]:.0f} sim s on '
              f'{r["satellites_below_floor"]} satellites  min SoC {r["min_soc"]:.2f}  '
              f'ISL {r["isl_bytes"] / 1e9:.2f} GB  declined {r["declined"]}')


if __name__ == "__main__":
    main()
