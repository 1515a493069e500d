"""Loading one training sample: cube slice versus its nine GeoTIFFs read with rasterio.

Measured side by side in one run on the same simulated 256x256 triplets; prints the ratio (goal: >= 10).
Usage: python benchmarks/cube_loading.py [--triplets 64] [--tile 256] [--repeats 3]
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import rasterio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import simulated_cube  # noqa: E402

from lai.lnb import MASK_DIR, S1_DIR, S2_DIR, read_series  # noqa: E402
from lai.loader import CubeSplit  # noqa: E402


def read_tiffs(root: Path, names) -> list[np.ndarray]:
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in names:
            for folder in (S1_DIR, S2_DIR, MASK_DIR):
                with rasterio.open(root / folder / name) as src:
                    out.append(src.read())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--triplets", type=int, default=64)
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    lnb, cube = simulated_cube(args.triplets, tile_size=args.tile, grid=4, windows=4)
    triplets = read_series(lnb)
    split = CubeSplit(cube)
    order = np.random.default_rng(0).permutation(len(triplets))
    tiff_t, cube_t = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        for i in order:
            read_tiffs(lnb, triplets[i].names)
        tiff_t.append((time.perf_counter() - t0) / len(order))
        t0 = time.perf_counter()
        for i in order:
            split.read(np.array([i]))
        cube_t.append((time.perf_counter() - t0) / len(order))
    tiff, cb = min(tiff_t), min(cube_t)
    print(f"{len(order)} triplets of {args.tile}x{args.tile}, best of {args.repeats} passes, one sample at a time")
    print(f"nine GeoTIFFs with rasterio: {tiff * 1e3:8.2f} ms/sample ({1 / tiff:7.1f} samples/s)")
    print(f"one cube slice (HDF5 chunk): {cb * 1e3:8.2f} ms/sample ({1 / cb:7.1f} samples/s)")
    print(f"ratio cube / TIFF speed: {tiff / cb:.1f}x (goal >= 10)")


if __name__ == "__main__":
    main()
