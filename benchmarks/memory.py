"""Peak memory of the cube build and of streamed training at two dataset sizes, extrapolated.

Each measurement runs in a fresh process (peak resident set size, VmHWM: :func:`_common.peak_rss_mib`). If
memory does not grow with the number of triplets, the two peaks are about equal and the fitted slope is near
zero. Training's start reads a sample of the training split at once to set its heads' bias
(:func:`lai.train.init_head_bias`: at most 2**21 pixels, 512 tiles of 64x64): below that many training tiles
its peak grows with the split, above it no longer, so the straight-line projection overstates large sets.
Usage: python benchmarks/memory.py [--sizes 200 800] [--tile 64] [--out FILE.json]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

PAPER_TRIPLETS = 7635 + 2005


def child(mode: str, size: int, tile: int) -> None:
    from _common import peak_rss_mib, simulated_cube

    if mode == "build":
        from lai.config import load_profile
        from lai.cube import build_cube

        lnb, _ = simulated_cube(size, tile_size=tile)  # simulated beforehand by the parent: reused here
        before = peak_rss_mib()
        with tempfile.TemporaryDirectory() as tmp:
            p = load_profile("quick")
            build_cube(lnb, Path(tmp) / "cube.nc", p.splits, p.encoding, progress=False)
    else:
        from lai.config import load_profile
        from lai.train import train_stage

        _, cube = simulated_cube(size, tile_size=tile)
        p = load_profile("quick", ["train.epochs=1", "train.resident=off"])
        before = peak_rss_mib()
        with tempfile.TemporaryDirectory() as tmp:
            train_stage(p, "final", cube, Path(tmp) / "run", progress=False)
    peak = peak_rss_mib()
    print(json.dumps({"before_mib": before, "peak_mib": peak}))


def measure(mode: str, size: int, tile: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", mode, str(size), str(tile)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs=2, default=[200, 800])
    ap.add_argument("--tile", type=int, default=64)
    ap.add_argument("--out", type=Path, default=None, help="JSON file of the figures (default: print only)")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), int(args.child[2]))
        return
    from _common import report_header, simulated_cube, write_report

    for n in args.sizes:
        simulated_cube(n, tile_size=args.tile, progress=True)
    report = {**report_header(__file__), "load_average_1_5_15": {"start": os.getloadavg()}, "tile": args.tile,
              "sizes": args.sizes, "paper_triplets": PAPER_TRIPLETS, "steps": {}}
    print(f"tiles {args.tile}x{args.tile}; peak resident memory of a fresh process (MiB)")
    for mode, what in (("build", "cube build"), ("train", "training, 1 epoch, streamed loader")):
        small, large = (measure(mode, n, args.tile) for n in args.sizes)
        slope = (large["peak_mib"] - small["peak_mib"]) / (args.sizes[1] - args.sizes[0])
        paper = large["peak_mib"] + slope * (PAPER_TRIPLETS - args.sizes[1])
        report["steps"][mode] = {"what": what, "by_size": dict(zip(map(str, args.sizes), (small, large))),
                                 "slope_kib_per_triplet": slope * 1024, "projected_paper_mib": paper}
        print(f"{what:38s} {args.sizes[0]:5d} triplets: {small['peak_mib']:7.0f}   {args.sizes[1]:5d} triplets: "
              f"{large['peak_mib']:7.0f}   slope {slope * 1024:6.1f} KiB/triplet   "
              f"-> {PAPER_TRIPLETS} triplets: {paper:7.0f} MiB at this tile size")
    report["load_average_1_5_15"]["end"] = os.getloadavg()
    if args.out:
        write_report(args.out, report)


if __name__ == "__main__":
    main()
