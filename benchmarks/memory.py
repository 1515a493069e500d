"""Peak memory of the cube build and of streamed training at two dataset sizes, extrapolated.

Each measurement runs in a fresh process (peak resident set size, ru_maxrss). If memory does not grow
with the number of triplets, the two peaks are about equal and the fitted slope is near zero.
Usage: python benchmarks/memory.py [--sizes 200 800] [--tile 64]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

PAPER_TRIPLETS = 7635 + 2005


def child(mode: str, size: int, tile: int) -> None:
    from _common import simulated_cube

    if mode == "build":
        from lai.config import load_profile
        from lai.cube import build_cube

        lnb, _ = simulated_cube(size, tile_size=tile)  # simulated beforehand by the parent: reused here
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        with tempfile.TemporaryDirectory() as tmp:
            p = load_profile("quick")
            build_cube(lnb, Path(tmp) / "cube.nc", p.splits, p.encoding, progress=False)
    else:
        from lai.config import load_profile
        from lai.train import train_stage

        _, cube = simulated_cube(size, tile_size=tile)
        p = load_profile("quick", ["train.epochs=1", "train.resident=off"])
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        with tempfile.TemporaryDirectory() as tmp:
            train_stage(p, "final", cube, Path(tmp) / "run", progress=False)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"before_mib": before / 1024, "peak_mib": peak / 1024}))


def measure(mode: str, size: int, tile: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", mode, str(size), str(tile)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs=2, default=[200, 800])
    ap.add_argument("--tile", type=int, default=64)
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), int(args.child[2]))
        return
    from _common import simulated_cube

    for n in args.sizes:
        simulated_cube(n, tile_size=args.tile, progress=True)
    print(f"tiles {args.tile}x{args.tile}; peak resident memory of a fresh process (MiB)")
    for mode, what in (("build", "cube build"), ("train", "training, 1 epoch, streamed loader")):
        small, large = (measure(mode, n, args.tile) for n in args.sizes)
        slope = (large["peak_mib"] - small["peak_mib"]) / (args.sizes[1] - args.sizes[0])
        paper = large["peak_mib"] + slope * (PAPER_TRIPLETS - args.sizes[1])
        print(f"{what:38s} {args.sizes[0]:5d} triplets: {small['peak_mib']:7.0f}   {args.sizes[1]:5d} triplets: "
              f"{large['peak_mib']:7.0f}   slope {slope * 1024:6.1f} KiB/triplet   "
              f"-> {PAPER_TRIPLETS} triplets: {paper:7.0f} MiB at this tile size")


if __name__ == "__main__":
    main()
