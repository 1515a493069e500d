"""Loading one training sample: cube slice versus its nine GeoTIFFs (rasterio, and tifffile when installed).

Measured side by side in one run on the same simulated 256x256 triplets, one sample at a time: raw reads,
then each read followed by lai's encoding of the sample (:func:`lai.encode.encode_batch`, what training
does to every batch). Prints per-sample times (median and min-max over ``--repeats`` passes, each pass
over every triplet), the cube's speed-up (ratio of medians) and the date, machine and load average;
writes the figures as JSON (``--out``). tifffile is what the reference code reads with; it is optional.
Usage: python benchmarks/cube_loading.py [--triplets 64] [--tile 256] [--repeats 5] [--out FILE]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import rasterio
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import report_header, simulated_cube, write_report  # noqa: E402

from lai.config import load_profile  # noqa: E402
from lai.encode import encode_batch  # noqa: E402
from lai.lnb import MASK_DIR, S1_DIR, S2_DIR, read_series  # noqa: E402
from lai.loader import CubeSplit  # noqa: E402

try:
    import tifffile
except ImportError:  # optional: the comparison is then rasterio only
    tifffile = None


def read_rasterio(root: Path, names) -> dict[str, np.ndarray]:
    out = {S1_DIR: [], S2_DIR: [], MASK_DIR: []}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in names:
            for folder in out:
                with rasterio.open(root / folder / name) as src:
                    out[folder].append(src.read())
    return out


def read_tifffile(root: Path, names) -> dict[str, np.ndarray]:
    out = {S1_DIR: [], S2_DIR: [], MASK_DIR: []}
    for name in names:
        for folder in out:
            a = tifffile.imread(root / folder / name)
            out[folder].append(a if a.ndim == 3 else a[None])  # rasterio's (bands, H, W)
    return out


def as_raw(tiffs: dict[str, list[np.ndarray]], doy: tuple[int, int]) -> dict[str, torch.Tensor]:
    """One sample read from GeoTIFFs as the loader's raw batch of one (s1 as (1, 3, 2, H, W), ...)."""
    s1 = np.stack(tiffs[S1_DIR])
    if s1.shape[1] != 2:  # tifffile may return (H, W, bands)
        s1 = np.moveaxis(s1, -1, 1)
    return {"s1": torch.from_numpy(np.ascontiguousarray(s1[None])),
            "lai": torch.from_numpy(np.concatenate(tiffs[S2_DIR])[None]),
            "scl": torch.from_numpy(np.concatenate(tiffs[MASK_DIR])[None]),
            "doy_target": torch.tensor([doy[0]]), "doy_from": torch.tensor([doy[1]])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--triplets", type=int, default=64)
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None, help="JSON file of the figures (default: print only)")
    args = ap.parse_args()
    torch.set_num_threads(1)  # one sample at a time, as one loader worker would
    enc = load_profile("quick").encoding
    lnb, cube = simulated_cube(args.triplets, tile_size=args.tile, grid=4, windows=4)
    triplets = read_series(lnb)
    split = CubeSplit(cube)
    order = np.random.default_rng(0).permutation(len(split))
    rows = split.index[order]
    doys = [(int(split.doy_target[i]), int(split.doy_from[i])) for i in order]

    def cube_raw(i):
        return split.read(np.array([i]))

    def cube_enc(i):
        raw = {k: torch.from_numpy(v) for k, v in split.read(np.array([i])).items()}
        return encode_batch(raw, enc)

    readers = {"cube": (lambda k: cube_raw(order[k]), lambda k: cube_enc(order[k])),
               "rasterio": (lambda k: read_rasterio(lnb, triplets[rows[k]].names),
                            lambda k: encode_batch(as_raw(read_rasterio(lnb, triplets[rows[k]].names), doys[k]), enc))}
    if tifffile is not None:
        readers["tifffile"] = (lambda k: read_tifffile(lnb, triplets[rows[k]].names),
                               lambda k: encode_batch(as_raw(read_tifffile(lnb, triplets[rows[k]].names), doys[k]), enc))
    times = {f"{name} {what}": [] for name in readers for what in ("raw", "encoded")}
    load_start = os.getloadavg()
    for _ in range(args.repeats):  # interleaved: every method once per pass
        for name, (raw, encoded) in readers.items():
            for what, fn in (("raw", raw), ("encoded", encoded)):
                t0 = time.perf_counter()
                for k in range(len(order)):
                    fn(k)
                times[f"{name} {what}"].append((time.perf_counter() - t0) / len(order) * 1e3)
    ms = {k: {"median": statistics.median(v), "min": min(v), "max": max(v), "values": v} for k, v in times.items()}
    report = {**report_header(__file__), "load_average_1_5_15": {"start": load_start, "end": os.getloadavg()},
              "triplets": len(order), "tile": args.tile, "repeats": args.repeats, "ms_per_sample": ms,
              "tifffile": getattr(tifffile, "__version__", None), "rasterio": rasterio.__version__}
    print(f"{report['date']}, {platform.platform()}, {os.cpu_count()} cores, load average {load_start[0]:.1f} -> "
          f"{report['load_average_1_5_15']['end'][0]:.1f}")
    print(f"{len(order)} triplets of {args.tile}x{args.tile}, one sample at a time, median [min, max] of {args.repeats} passes")
    for key, v in ms.items():
        what = key.split()[1]
        ratio = v["median"] / ms[f"cube {what}"]["median"]
        print(f"  {key:18s} {v['median']:8.2f} ms/sample [{v['min']:.2f}, {v['max']:.2f}]   cube faster by {ratio:5.1f}x")
    if tifffile is None:
        print("  tifffile is not installed: no comparison with it")
    if args.out:
        write_report(args.out, report)


if __name__ == "__main__":
    main()
