"""CPU training throughput of this checkout against an older one, side by side in one run.

Both versions train the quick profile's final model and its two encoders (small preset, 64x64 tiles,
fp32, on the CPU) through the interface both have::

    python -m lai train --profile quick --cube CUBE --runs RUNS --row final --set train.epochs=N ...

with the same cube data, seed and number of steps (``train.max_batches_per_epoch``), alternating
old / new for ``--repeats`` rounds. Each run's samples/s comes from the three stages' ``history.csv``
(training samples over training seconds: validation, start-up and writing excluded). It prints and
writes (JSON, ``benchmarks/results/``) the median and spread (min-max) of each version, their ratio
(new / old: the ratio of medians and the median of the per-round ratios), and the date, machine,
torch version and load averages. The old checkout is a git worktree, e.g.::

    git worktree add --detach ../lai-54ad904 54ad904
    python benchmarks/cpu_training.py ../lai-54ad904

One simulated LNB folder is made once (with this checkout); each version builds its own cube from it
(the cube format may differ between versions). Defaults take about 5-8 minutes on 2 idle cores.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from _common import report_header, write_report

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# no held-out regions, small test sets: most triplets train (enough for every run's steps)
SPLITS = ["--set", "splits.held_out_areas=[]", "--set", "splits.test_fraction=0.1", "--set", "splits.val_fraction=0.2",
          "--set", "splits.block_size=2"]  # set for both versions: a validation split on 320 triplets
STAGES = ("s1_masks_seas", "s2_masks_seas", "final")  # what `--row final` trains, in order


def run_lai(checkout: Path, args: list[str], log: Path) -> float:
    """Run ``python -m lai ARGS`` with ``checkout`` first on the path; return the wall time in seconds."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    t0 = time.perf_counter()
    with open(log, "a") as out:
        done = subprocess.run([sys.executable, "-m", "lai", *args], env=env, cwd=checkout, stdout=out,
                              stderr=subprocess.STDOUT)
    if done.returncode:
        raise SystemExit(f"python -m lai {' '.join(args)} failed in {checkout} (exit {done.returncode}); see {log}")
    return time.perf_counter() - t0


def samples_per_s(runs: Path) -> dict[str, float]:
    """Training samples/s of each stage and of all three together, from their history.csv."""
    out, samples, seconds = {}, 0.0, 0.0
    for stage in STAGES:
        hist = pd.read_csv(runs / stage / "history.csv")
        n = float((hist["samples_per_s"] * hist["seconds"]).sum())
        s = float(hist["seconds"].sum())
        out[stage] = n / s
        samples, seconds = samples + n, seconds + s
    out["all"] = samples / seconds
    out["final_val_rmse"] = float(pd.read_csv(runs / "final" / "history.csv")["val_rmse"].iloc[-1])
    return out


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "values": values}


def git_revision(checkout: Path) -> str:
    done = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(checkout), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return done.stdout.strip() + ("+changes" if dirty else "") if done.returncode == 0 else "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old", type=Path, help="checkout of the older version (a git worktree)")
    ap.add_argument("--new", type=Path, default=ROOT, help="checkout of the newer version (default: this one)")
    ap.add_argument("--repeats", type=int, default=5, help="rounds; each trains both versions once (default 5)")
    ap.add_argument("--epochs", type=int, default=2, help="epochs per stage (default 2)")
    ap.add_argument("--steps", type=int, default=8, help="training batches per epoch (default 8, batch 16)")
    ap.add_argument("--triplets", type=int, default=320, help="simulated triplets (default 320)")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder, kept (default: a temporary one, removed after a "
                    "successful run; a failed run keeps it for its log.txt)")
    ap.add_argument("--out", type=Path, default=None, help="JSON file (default: benchmarks/results/cpu-training-DATE.json)")
    args = ap.parse_args()
    old, new = args.old.resolve(), args.new.resolve()
    for checkout in (old, new):
        if not (checkout / "lai" / "__init__.py").exists():
            raise SystemExit(f"{checkout}: not a lai checkout (no lai/__init__.py)")
    today = dt.date.today().isoformat()
    out_json = args.out or HERE / "results" / f"cpu-training-{today}.json"
    work = Path(tempfile.mkdtemp(prefix="lai-cpu-training-")) if args.work is None else args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    log = work / "log.txt"
    loads = [os.getloadavg()]

    lnb = work / "lnb"
    if not lnb.exists():
        print(f"simulating {args.triplets} triplets of 64x64 into {lnb} ...", flush=True)
        run_lai(new, ["simulate", "--profile", "quick", "--out", str(lnb), "--quiet",
                      "--set", f"simulate.train_triplets={args.triplets}", "--set", "simulate.unique_triplets=0",
                      "--set", "simulate.unique_regions=[]", "--set", "splits.held_out_areas=[]",
                      *SPLITS], log)
    versions = {"old": old, "new": new}
    cubes = {}
    for name, checkout in versions.items():
        cubes[name] = work / f"cube-{name}.nc"
        if not cubes[name].exists():
            print(f"building the {name} version's cube ...", flush=True)
            run_lai(checkout, ["cube", str(lnb), "--out", str(cubes[name]), "--profile", "quick", "--quiet", *SPLITS], log)

    overrides = [f"train.epochs={args.epochs}", f"train.max_batches_per_epoch={args.steps}", "train.seed=0",
                 "train.device=cpu", *SPLITS[1::2]]
    results: dict[str, list[dict]] = {name: [] for name in versions}
    walls: dict[str, list[float]] = {name: [] for name in versions}
    for r in range(args.repeats):
        order = list(versions) if r % 2 == 0 else list(versions)[::-1]  # alternate who goes first
        for name in order:
            runs = work / f"runs-{name}-{r}"
            shutil.rmtree(runs, ignore_errors=True)
            wall = run_lai(versions[name], ["train", "--profile", "quick", "--cube", str(cubes[name]), "--runs", str(runs),
                                            "--row", "final", "--quiet", *sum((["--set", o] for o in overrides), [])], log)
            rates = samples_per_s(runs)
            results[name].append(rates)
            walls[name].append(wall)
            loads.append(os.getloadavg())
            print(f"round {r + 1}/{args.repeats} {name}: {rates['all']:6.1f} samples/s (encoders "
                  f"{rates['s1_masks_seas']:.1f} / {rates['s2_masks_seas']:.1f}, final {rates['final']:.1f}), "
                  f"wall {wall:5.1f} s, load {loads[-1][0]:.1f}", flush=True)
            shutil.rmtree(runs, ignore_errors=True)

    report = {**report_header(__file__), "load_average_1_5_15": {"start": loads[0], "end": loads[-1], "max_1min": max(x[0] for x in loads)},
              "settings": {"profile": "quick", "row": "final", "tile": 64, "batch_size": 16, "epochs_per_stage": args.epochs,
                           "steps_per_epoch": args.steps, "repeats": args.repeats, "overrides": overrides},
              "versions": {name: {"checkout": str(path), "revision": git_revision(path)} for name, path in versions.items()}}
    for key in (*STAGES, "all", "final_val_rmse"):
        report[key] = {name: summary([x[key] for x in results[name]]) for name in versions}
        if key != "final_val_rmse":
            per_round = [n[key] / o[key] for n, o in zip(results["new"], results["old"])]
            report[key]["ratio_of_medians"] = report[key]["new"]["median"] / report[key]["old"]["median"]
            report[key]["ratio_per_round"] = summary(per_round)
    report["wall_s"] = {name: summary(walls[name]) for name in versions}
    write_report(out_json, report)
    if args.work is None:
        shutil.rmtree(work)  # about 200 MB of simulated data and cubes

    print(f"\n{report['date']}, {platform.platform()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"load average {loads[0][0]:.1f} at start, {loads[-1][0]:.1f} at end (max {report['load_average_1_5_15']['max_1min']:.1f})")
    print(f"old {report['versions']['old']['revision']} vs new {report['versions']['new']['revision']}: samples/s, "
          f"median [min, max] of {args.repeats} interleaved runs")
    for key in (*STAGES, "all"):
        o, n, ratio = report[key]["old"], report[key]["new"], report[key]["ratio_per_round"]
        print(f"  {key:14s} old {o['median']:6.1f} [{o['min']:.1f}, {o['max']:.1f}]  new {n['median']:6.1f} "
              f"[{n['min']:.1f}, {n['max']:.1f}]  new/old {report[key]['ratio_of_medians']:.2f}x "
              f"(per round {ratio['median']:.2f}x [{ratio['min']:.2f}, {ratio['max']:.2f}])")
    v = report["final_val_rmse"]
    print(f"  final model's validation RMSE after {args.epochs} epochs (LAI): old {v['old']['median']:.3f}, new {v['new']['median']:.3f}")


if __name__ == "__main__":
    main()
