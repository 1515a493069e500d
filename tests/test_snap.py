"""SNAP biophysical LAI network on the real Sentinel-2 L2A patches that bigearthnet-common ships."""
from __future__ import annotations

import bz2

import numpy as np
import pytest
import rasterio

from lai import examples
from lai.preprocess import grid_of, read_on_grid
from lai.snap import BANDS, VALID_RANGE, Angles, snap_lai


@pytest.fixture(scope="module")
def patches(tmp_path_factory):
    """(name, LAI, NDVI, B08 reflectance) of every patch not on the package's seasonal-snow list."""
    snowy = set(bz2.decompress((examples.archive_folder() / "patches_with_seasonal_snow.csv.bz2").read_bytes()).decode().split())
    out, skipped = [], []
    for p in examples.extract(tmp_path_factory.mktemp("ben")):
        if p.name in snowy:  # SNAP LAI is undefined on snow; the winter Finnish patch is listed there
            skipped.append(p.name)
            continue
        grid = grid_of(p.bands["B03"])
        refl = np.concatenate([read_on_grid(p.bands[b], grid, "bilinear") for b in BANDS]) * 1e-4
        with rasterio.open(p.bands["B03"].with_name(p.name + "_B04.tif")) as r4, \
                rasterio.open(p.bands["B03"].with_name(p.name + "_B08.tif")) as r8:
            red, nir = r4.read(1) * 1e-4, r8.read(1) * 1e-4
        out.append((p.name, snap_lai(refl, p.angles), (nir - red) / (nir + red), nir))
    assert len(out) >= 5 and len(skipped) <= 1
    return out


def test_values_lie_in_the_processor_range(patches):
    for name, lai, _, _ in patches:
        inside = ((lai >= VALID_RANGE[0]) & (lai <= VALID_RANGE[1])).mean()
        assert inside > 0.9, f"{name}: only {inside:.1%} of LAI values within {VALID_RANGE}"


def test_lai_follows_ndvi_over_vegetation(patches):
    for name, lai, ndvi, _ in patches:
        veg = ndvi > 0.3
        r = np.corrcoef(lai[veg], ndvi[veg])[0, 1]
        assert veg.sum() > 1000 and r > 0.6, f"{name}: correlation with NDVI {r:.2f} over {veg.sum()} vegetated pixels"


def test_water_and_bare_soil_near_zero(patches):
    water = np.concatenate([lai[nir < 0.05] for _, lai, _, nir in patches])  # NIR below 5%: open water
    bare = np.concatenate([lai[(ndvi < 0.2) & (nir >= 0.05)] for _, lai, ndvi, nir in patches])
    assert water.size > 1000 and bare.size > 500
    assert np.median(water) < 0.5 and np.median(bare) < 0.6
    vegetated = np.concatenate([lai[ndvi > 0.6] for _, lai, ndvi, _ in patches])
    assert np.median(vegetated) > 4 * np.median(bare)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="8 bands"):
        snap_lai(np.zeros((7, 4, 4)), Angles(5, 30, 90))
    with pytest.raises(ValueError, match="sun_zenith"):
        snap_lai(np.zeros((8, 4, 4)), Angles(5, 95, 90))
