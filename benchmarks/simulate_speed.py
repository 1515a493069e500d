"""Time the simulator on the quick dataset (not a test).

    python benchmarks/simulate_speed.py            # the quick profile's dataset
    python benchmarks/simulate_speed.py --tiny     # 60 + 20 triplets, 32x32 tiles
    python benchmarks/simulate_speed.py --workers 1
    python benchmarks/simulate_speed.py --out FILE.json   # the figures as JSON too
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from lai.config import SimConfig, load_profile
from lai.simulate import simulate

sys.path.insert(0, str(Path(__file__).resolve().parent))

TINY = {"train_triplets": 60, "unique_triplets": 20, "tile_size": 32, "grid": 4, "windows_per_scene": 8}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="the tiny dataset instead of the quick one")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: automatic)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="JSON file of the figures (default: print only)")
    args = parser.parse_args()
    cfg = SimConfig(**TINY) if args.tiny else load_profile("quick").simulate
    cfg.seed = args.seed
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = simulate(cfg, Path(tmp) / "lnb", progress=False, workers=args.workers)
        seconds = time.perf_counter() - start
        size = sum(f.stat().st_size for f in (Path(tmp) / "lnb").rglob("*") if f.is_file())
    print(
        f"{'tiny' if args.tiny else 'quick'} dataset: {summary['triplets']} triplets, {summary['files']} files, "
        f"{size / 1e6:.0f} MB, {summary['scenes']} scenes, workers={summary['workers']}, CPUs={os.cpu_count()}"
    )
    print(f"seconds: {seconds:.1f}")
    print(f"triplets/s: {summary['triplets'] / seconds:.1f}")
    if args.out:
        from _common import report_header, write_report

        write_report(args.out, {**report_header(__file__), "load_average_1_5_15": {"start": load_start,
                                                                                     "end": os.getloadavg()},
                                "dataset": "tiny" if args.tiny else "quick", "seed": args.seed,
                                "triplets": summary["triplets"], "files": summary["files"], "megabytes": size / 1e6,
                                "scenes": summary["scenes"], "workers": summary["workers"], "seconds": seconds,
                                "triplets_per_s": summary["triplets"] / seconds})


if __name__ == "__main__":
    main()
