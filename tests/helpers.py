"""Helpers shared by the tests: small LNB folders written as real GeoTIFFs, random raw batches, small models."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
import torch

from lai.config import EncodingConfig, ModelConfig
from lai.encode import mask_channels
from lai.lnb import MASK_DIR, S1_DIR, S2_DIR, SERIES_CSV, TRUTH_DIR, TileName
from lai.model import LAIModel

ENC = EncodingConfig()


def write_tiff(path: Path, array: np.ndarray, **kw) -> None:
    """Write (bands, H, W) or (H, W) ``array`` as a GeoTIFF without georeferencing (like the real LNB files)."""
    array = array[None] if array.ndim == 2 else array
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = dict(driver="GTiff", height=array.shape[1], width=array.shape[2], count=array.shape[0], dtype=array.dtype)
    profile.update(kw)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array)


def make_lnb(root: Path, n_triplets: int = 3, size: int = 16, seed: int = 0, truth: bool = False,
             width: int | None = None) -> Path:
    """A valid LNB folder of ``n_triplets`` random triplets (one area, tiles on a row) of size x width pixels."""
    rng = np.random.default_rng(seed)
    shape = (size, width or size)
    rows = []
    for k in range(n_triplets):
        start = dt.date(2019, 3, 1) + dt.timedelta(days=10 * k)
        names = [
            TileName("SPAIN", "BADAJOZ", start, start + dt.timedelta(days=10), i, 3 + i, 0, k).format() for i in range(3)
        ]
        for name in names:
            write_tiff(root / S1_DIR / name, rng.uniform(-25, -5, (2, *shape)).astype(np.float32))
            write_tiff(root / S2_DIR / name, rng.uniform(0, 6, shape).astype(np.float32))
            write_tiff(root / MASK_DIR / name, rng.choice([4, 5, 8], shape).astype(np.uint8))
        if truth:  # the true LAI of every S2 file; t's drawn from the main stream as before, t-2 and t-1 from their own
            write_tiff(root / TRUTH_DIR / names[2], rng.uniform(0, 6, shape).astype(np.float32))
            past = np.random.default_rng([seed, k])
            for name in names[:2]:
                write_tiff(root / TRUTH_DIR / name, past.uniform(0, 6, shape).astype(np.float32))
        rows.append(names)
    pd.DataFrame(rows, columns=["0", "1", "2"]).to_csv(root / SERIES_CSV, index=False)
    return root


def raw_batch(b=2, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    scl = torch.randint(0, 12, (b, 3, size, size), generator=g, dtype=torch.uint8)
    return {
        "s1": -30 * torch.rand(b, 3, 2, size, size, generator=g),
        "lai": 6 * torch.rand(b, 3, size, size, generator=g),
        "scl": scl,
        "doy_target": torch.randint(1, 366, (b,), generator=g),
        "doy_from": torch.randint(1, 366, (b,), generator=g),
    }


def small(row, **kw):
    return LAIModel(ModelConfig(row=row, preset="small", **kw), mask_channels(ENC))


def write_snap_auxdata(root: Path, network, platforms=("S2A", "S2B"), grid: np.ndarray | None = None) -> Path:
    """A SNAP auxdata folder (``root/3_0/<platform>/LAI/LAI_*``) holding ``network``'s numbers (lai's built-in 2_1
    numbers, so no SNAP data ship with the tests); domain bounds: the input bounds; ``grid``: cells (rows of 8)."""
    tables = {
        "Normalisation": network.normalisation, "Denormalisation": [network.denormalisation],
        "Weights_Layer1_Neurons": network.w1, "Weights_Layer1_Bias": [network.b1], "Weights_Layer2_Neurons": [network.w2],
        "Weights_Layer2_Bias": [[network.b2]], "ExtremeCases": [[-network.extreme[0], *network.extreme[1:]]],
        "DefinitionDomain_MinMax": network.normalisation[:8].T,
        "DefinitionDomain_Grid": grid if grid is not None else np.full((1, 8), 5),
    }
    for platform in platforms:
        folder = root / "3_0" / platform / "LAI"
        folder.mkdir(parents=True, exist_ok=True)
        for name, table in tables.items():
            np.savetxt(folder / f"LAI_{name}", np.asarray(table, np.float64), delimiter=",", fmt="%.17g")
    return root


def alias_bomb() -> str:
    """A YAML document of under 0.5 kB whose aliases (9 levels of 9) expand to 3.5 billion values."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{k}: &a{k} [" + ", ".join([f"*a{k - 1}"] * 9) + "]" for k in range(1, 10)]
    return "\n".join(lines) + "\n"


def scene_manifest(dates: list[dict], **top) -> dict:
    """A scene manifest (docs/manifest.md) of ``dates``, each ``{date, s1 (a two-band VV/VH raster), lai[, scl]}``:
    the S2 dates under ``s2``, the S1 rasters of the same dates under ``s1``; ``top``: further top-level keys."""
    s2 = [{k: d[k] for k in ("date", "lai", "scl") if k in d} for d in dates]
    return {**top, "s2": s2, "s1": [{"date": d["date"], "file": d["s1"]} for d in dates]}
