"""lai's built-in SNAP LAI (2_1) on the six real Sentinel-2 L2A patches of bigearthnet-common: per patch, the share
of values inside the processor's range, the correlation with NDVI over vegetated pixels (NDVI > 0.3), and the median
LAI over open water (NIR below 5 %) and bare soil (NDVI < 0.2). The patch on the package's seasonal-snow list is
reported apart (SNAP LAI is undefined on snow). tests/test_snap.py asserts bounds on the same figures::

    python benchmarks/snap_patches.py --out FILE.json
"""
from __future__ import annotations

import argparse
import bz2
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import report_header, write_report  # noqa: E402

VEGETATED_NDVI, BARE_NDVI, WATER_NIR = 0.3, 0.2, 0.05


def patch_arrays(folder: Path) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray, bool]]:
    """(name, SNAP LAI, NDVI, B08 reflectance, on the seasonal-snow list) of every patch, unpacked into ``folder``."""
    import rasterio

    from lai import examples
    from lai.preprocess import grid_of, read_on_grid
    from lai.snap import BANDS, snap_lai

    snowy = set(bz2.decompress((examples.archive_folder() / "patches_with_seasonal_snow.csv.bz2").read_bytes()).decode().split())
    out = []
    for p in examples.extract(folder):
        grid = grid_of(p.bands["B03"])
        refl = np.concatenate([read_on_grid(p.bands[b], grid, "bilinear") for b in BANDS]) * 1e-4
        with rasterio.open(p.bands["B03"].with_name(p.name + "_B04.tif")) as r4, \
                rasterio.open(p.bands["B03"].with_name(p.name + "_B08.tif")) as r8:
            red, nir = r4.read(1) * 1e-4, r8.read(1) * 1e-4
        out.append((p.name, snap_lai(refl, p.angles), (nir - red) / (nir + red), nir, p.name in snowy))
    return out


def patch_figures(name: str, lai: np.ndarray, ndvi: np.ndarray, nir: np.ndarray, snowy: bool) -> dict:
    """The figures of one patch (``None`` where it has no pixel of that kind)."""
    from lai.snap import VALID_RANGE

    def median(mask):
        return float(np.median(lai[mask])) if mask.any() else None

    veg = ndvi > VEGETATED_NDVI
    return {"patch": name, "seasonal_snow": snowy, "pixels": int(lai.size),
            "inside_valid_range": float(((lai >= VALID_RANGE[0]) & (lai <= VALID_RANGE[1])).mean()),
            "vegetated_pixels": int(veg.sum()),
            "ndvi_correlation_vegetated": float(np.corrcoef(lai[veg], ndvi[veg])[0, 1]) if veg.sum() > 1 else None,
            "water_pixels": int((nir < WATER_NIR).sum()), "water_median_lai": median(nir < WATER_NIR),
            "bare_median_lai": median((ndvi < BARE_NDVI) & (nir >= WATER_NIR))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "snap-patches.json")
    args = parser.parse_args()
    report = report_header(__file__)
    with tempfile.TemporaryDirectory() as tmp:
        report["patches"] = [patch_figures(*arrays) for arrays in patch_arrays(Path(tmp))]
    for r in report["patches"]:
        water = "" if r["water_median_lai"] is None else f", median LAI over water {r['water_median_lai']:.2f} ({r['water_pixels']} px)"
        print(f"{r['patch']}{' (seasonal snow)' if r['seasonal_snow'] else ''}: {r['inside_valid_range']:.1%} inside the range, "
              f"r with NDVI {r['ndvi_correlation_vegetated']:.2f} over {r['vegetated_pixels']} vegetated px{water}")
    write_report(args.out, report)


if __name__ == "__main__":
    main()
