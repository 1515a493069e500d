"""Peak memory of `lai predict --scene` (sliding windows, windowed reads and writes) at two scene sizes.

Each prediction runs in a fresh process (peak resident set size, VmHWM: :func:`_common.peak_rss_mib`) with an untrained model
of the small preset (memory does not depend on the weights). Rows are written as soon as no later
window touches them, so memory should grow with the scene's width only, not with its area: a 4x
larger area should cost far less than 4x the memory above the process's baseline.
Usage: python benchmarks/scene_memory.py [--sizes 2048 4096] [--window 256] [--overlap 64] [--out FILE.json]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def write_scene(folder: Path, size: int) -> Path:
    """Three dates of smooth synthetic rasters on a UTM grid, written in row blocks; returns the manifest."""
    import numpy as np
    import rasterio
    import yaml
    from affine import Affine
    from rasterio.windows import Window

    transform = Affine(10, 0, 500000, 0, -10, 4600000)
    s2, s1 = [], []
    for k in range(3):
        files = {"s1": (2, "float32"), "lai": (1, "float32"), "scl": (1, "uint8")}
        for name, (count, dtype) in files.items():
            path = folder / f"{name}{k}.tif"
            with rasterio.open(path, "w", driver="GTiff", height=size, width=size, count=count, dtype=dtype,
                               crs="EPSG:32633", transform=transform, tiled=True, compress="deflate") as dst:
                for y0 in range(0, size, 512):
                    rows = min(512, size - y0)
                    y, x = np.mgrid[y0:y0 + rows, 0:size]
                    field = np.sin(x / 97.0) * np.cos(y / 131.0)
                    if name == "s1":
                        block = np.stack([-12 + 4 * field, -18 + 4 * field])
                    elif name == "lai":
                        block = (3 + 2 * field)[None]
                    else:
                        block = np.where(field > 0.5, 9, 4)[None]
                    dst.write(block.astype(dtype), window=Window(0, y0, size, rows))
        date = f"2019-06-{1 + 5 * k:02d}"
        s2.append({"date": date, "lai": f"lai{k}.tif", "scl": f"scl{k}.tif"})
        s1.append({"date": date, "file": f"s1{k}.tif"})  # VV and VH as one two-band raster
    (folder / "scene.yaml").write_text(yaml.safe_dump({"s2": s2, "s1": s1}))  # the form docs/manifest.md describes
    return folder / "scene.yaml"


def child(manifest: str, window: int, overlap: int) -> None:
    import torch
    from _common import peak_rss_mib

    from lai.config import CubeRef, EncodingConfig, ModelConfig, StageConfig, TrainConfig
    from lai.infer import Trained, build_model
    from lai.scene import predict_scene

    torch.manual_seed(0)
    config = StageConfig(ModelConfig(preset="small"), TrainConfig(), EncodingConfig(), CubeRef("", "", ""))
    trained = Trained(build_model(config.model, config.encoding).eval(), config, torch.device("cpu"))
    before = peak_rss_mib()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        predict_scene(trained, manifest, Path(tmp) / "lai.tif", window, overlap, progress=False)
    seconds = time.perf_counter() - start
    peak = peak_rss_mib()
    print(json.dumps({"before_mib": before, "peak_mib": peak, "seconds": seconds}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs=2, default=[2048, 4096])
    ap.add_argument("--window", type=int, default=256)
    ap.add_argument("--overlap", type=int, default=64)
    ap.add_argument("--out", type=Path, default=None, help="JSON file of the figures (default: print only)")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), int(args.child[2]))
        return
    load_start, results = os.getloadavg(), {}
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            manifest = write_scene(Path(tmp), size)
            out = subprocess.run([sys.executable, __file__, "--child", str(manifest), str(args.window), str(args.overlap)],
                                 capture_output=True, text=True, check=True)
            results[size] = json.loads(out.stdout.strip().splitlines()[-1])
        r = results[size]
        print(f"{size}x{size}: peak {r['peak_mib']:.0f} MiB (baseline {r['before_mib']:.0f} MiB), {r['seconds']:.1f} s")
    small, large = (results[s] for s in args.sizes)
    growth = (large["peak_mib"] - large["before_mib"]) / max(small["peak_mib"] - small["before_mib"], 1e-9)
    area = (args.sizes[1] / args.sizes[0]) ** 2
    print(f"memory above baseline grows {growth:.2f}x for {area:.0f}x the area")
    if args.out:
        from _common import report_header, write_report

        write_report(args.out, {**report_header(__file__), "load_average_1_5_15": {"start": load_start,
                                                                                     "end": os.getloadavg()},
                                "window": args.window, "overlap": args.overlap, "preset": "small",
                                "by_size": {str(s): results[s] for s in args.sizes},
                                "growth_above_baseline": growth, "area_ratio": area})


if __name__ == "__main__":
    main()
