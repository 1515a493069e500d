"""The LNB reader: file names, and a clear error (file + problem) for every bad input."""
import datetime as dt
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from rasterio.transform import from_origin

from lai.cube import build_cube
from lai.lnb import (
    MASK_DIR,
    S1_DIR,
    S2_DIR,
    SERIES_CSV,
    TIME_COLUMNS,
    TRUTH_DIR,
    LNBError,
    TileName,
    estimate_middle_date,
    index_folder,
    read_triplet,
    write_series,
    write_tile,
)
from tests.helpers import make_lnb, write_tiff


def names(root):
    return pd.read_csv(root / SERIES_CSV, dtype=str).values.tolist()


def read_all(root):
    index = index_folder(root, progress=False)
    for t in index.triplets:
        read_triplet(root, t, (index.height, index.width))
    return index


def expect_error(root, file_part, problem_pattern):
    with pytest.raises(LNBError, match=problem_pattern) as info:
        read_all(root)
    assert file_part in info.value.file, info.value
    return info.value


def test_file_name_parts():
    p = TileName.parse("SPAIN_BADAJOZ_2019-03-11_2019-03-29-2-7-1-6.tiff")
    assert (p.country, p.area, p.time_index, p.n, p.row, p.col) == ("SPAIN", "BADAJOZ", 2, 7, 1, 6)
    assert (p.date_from, p.date_to) == (dt.date(2019, 3, 11), dt.date(2019, 3, 29))
    assert p.format() == "SPAIN_BADAJOZ_2019-03-11_2019-03-29-2-7-1-6.tiff"
    assert TileName.parse("CZECH_REPUBLIC_SOUTH_2020-01-01_2020-01-11-0-0-3-4.tiff").area == "REPUBLIC_SOUTH"


@pytest.mark.parametrize("bad", ["SPAIN_2019-03-11_2019-03-29-2-7-1-6.tiff", "x.tiff",
                                 "SPAIN_BADAJOZ_2019-13-11_2019-03-29-2-7-1-6.tiff",
                                 "SPAIN_BADAJOZ_2019-03-11_2019-03-29-5-7-1-6.tiff"])
def test_bad_file_names(bad):
    with pytest.raises(LNBError) as info:
        TileName.parse(bad)
    assert bad in str(info.value)


def test_a_date_the_cube_cannot_store_is_refused_by_its_file_name(lnb, tmp_path):
    """1969 passed the folder reader (it allowed 1678-2261), then the cube it wrote was refused by lai itself."""
    with pytest.raises(LNBError, match=r"1969-12-21, which lies outside 1970-2169, the dates a cube stores"):
        TileName.parse("SPAIN_BADAJOZ_1969-12-21_1970-01-08-0-7-1-6.tiff")
    from dataclasses import replace

    _rename_row(lnb, 0, lambda p: replace(p, date_from=p.date_from.replace(year=1969),
                                          date_to=p.date_to.replace(year=1969)))
    with pytest.raises(LNBError, match="1969-03-01, which lies outside 1970-2169"):
        build_cube(lnb, tmp_path / "cube.nc")
    assert not (tmp_path / "cube.nc").exists()


def test_middle_date_is_estimated_between():
    assert estimate_middle_date(dt.date(2019, 3, 1), dt.date(2019, 3, 11)) == dt.date(2019, 3, 6)


def test_valid_folder_reads(lnb):
    index = read_all(lnb)
    assert len(index.triplets) == 3 and (index.height, index.width) == (16, 16)
    data = read_triplet(lnb, index.triplets[0])
    assert data.s1.shape == (3, 2, 16, 16) and data.lai.shape == (3, 16, 16) and data.scl.dtype == np.uint8
    assert data.crs is None and data.transform is None


def test_crs_and_transform_are_kept(lnb):
    name = names(lnb)[0][0]
    arr = np.full((2, 16, 16), -10, np.float32)
    write_tiff(lnb / S1_DIR / name, arr, crs="EPSG:32630", transform=from_origin(500000, 4300000, 10, 10))
    data = read_triplet(lnb, index_folder(lnb, progress=False).triplets[0])
    assert data.crs == "EPSG:32630" and data.transform[0] == 10


def _georeference(root, row, folders, transform, crs="EPSG:32630"):
    """Give the files of triplet ``row`` in ``folders`` a CRS and ``transform`` (their pixels unchanged)."""
    for folder in folders:
        for name in names(root)[row]:
            with rasterio.open(root / folder / name, "r+") as dst:
                dst.crs, dst.transform = crs, transform


def test_a_triplet_file_on_another_grid_is_refused(lnb):
    """A map takes its triplet's grid: one file 1 km east of the others would place it beside its pixels."""
    grid = from_origin(500000, 4300000, 10, 10)
    _georeference(lnb, 0, (S1_DIR, S2_DIR, MASK_DIR), grid)
    first = names(lnb)[0][0]
    with rasterio.open(lnb / S1_DIR / first, "r+") as dst:
        dst.transform = from_origin(501000, 4300000, 10, 10)
    error = expect_error(lnb, f"{S1_DIR}/{first}", r"lies on another grid than s2/.*-2-\d+-0-0\.tiff and 7 more of the "
                                                    r"triplet's 9 georeferenced files: CRS EPSG:32630, "
                                                    r"transform \(10\.0, 0\.0, 501000\.0.*expected CRS EPSG:32630, "
                                                    r"transform \(10\.0, 0\.0, 500000\.0")
    assert "the files of a triplet must cover the same pixels" in error.problem


def test_files_within_the_tolerance_of_the_target_share_its_grid_even_if_not_of_each_other():
    """0.8 mm either side of the S2 LAI at t (within 1e-3 of a 10 m pixel) is its grid, though 1.6 mm apart."""
    from lai.lnb import common_grid

    def at(x):
        return "EPSG:32630", (10.0, 0.0, x, 0.0, -10.0, 4300000.0)

    files = {Path(f"s1/{k}"): at(499999.992) for k in "abc"} | {Path(f"s2/{k}"): at(500000.008) for k in "ab"}
    files[Path("s2/t")] = at(500000.0)
    assert common_grid(files, Path("s2/t")) == at(500000.0)


def test_an_s2_lai_at_t_off_the_grid_of_the_others_is_the_file_named(lnb):
    """The map takes the grid of the S2 LAI at t, but when that file alone lies elsewhere it is the one named (not
    an intact file measured against it)."""
    _georeference(lnb, 0, (S1_DIR, S2_DIR, MASK_DIR), from_origin(500000, 4300000, 10, 10))
    target = names(lnb)[0][2]
    with rasterio.open(lnb / S2_DIR / target, "r+") as dst:
        dst.crs = "EPSG:4326"
    expect_error(lnb, f"{S2_DIR}/{target}", r"lies on another grid than .* and 7 more of the triplet's 9 georeferenced "
                                            r"files: CRS EPSG:4326, .*; expected CRS EPSG:32630")


@pytest.mark.parametrize("other", [dict(crs="EPSG:32631"), dict(transform=from_origin(500000, 4299000, 10, 10)),
                                   dict(transform=from_origin(500000, 4300000, 10, 20))])
def test_a_triplet_file_in_another_crs_north_or_of_other_pixels_is_refused(lnb, other):
    """The other zone's CRS, 1 km north, pixels of another height: each another grid, as 1 km east is."""
    grid = from_origin(500000, 4300000, 10, 10)
    _georeference(lnb, 0, (S1_DIR, S2_DIR, MASK_DIR), grid)
    first = names(lnb)[0][1]
    with rasterio.open(lnb / MASK_DIR / first, "r+") as dst:
        dst.crs, dst.transform = other.get("crs", "EPSG:32630"), other.get("transform", grid)
    expect_error(lnb, f"{MASK_DIR}/{first}", r"lies on another grid than s2/")


def test_a_triplet_takes_the_grid_of_its_s2_lai_at_t(lnb):
    """S1 tiles without georeferencing (the layout fixes their size) take the S2 grid; the same CRS spelt
    otherwise is the same grid."""
    grid = from_origin(500000, 4300000, 10, 10)
    _georeference(lnb, 0, (S2_DIR,), grid)
    _georeference(lnb, 0, (MASK_DIR,), grid, crs=rasterio.crs.CRS.from_epsg(32630).to_wkt())
    data = read_triplet(lnb, index_folder(lnb, progress=False).triplets[0])
    assert data.crs == "EPSG:32630" and data.transform == tuple(grid)[:6]


def test_a_crs_with_a_datum_shift_is_kept_whole_and_another_shift_is_another_grid(lnb):
    """A local datum (an ellipsoid and a shift to WGS84, as national grids have) is not traded for the EPSG code
    PROJ finds close (which drops the shift: the map would lie about 36 m off here); a file of the triplet with
    another shift lies on another grid."""
    grid = from_origin(500000, 4300000, 10, 10)
    local = "+proj=utm +zone=30 +ellps=intl +towgs84=-50,-50,-50,0,0,0,0 +units=m +no_defs"
    _georeference(lnb, 0, (S1_DIR, S2_DIR, MASK_DIR), grid, crs=local)
    crs = read_triplet(lnb, index_folder(lnb, progress=False).triplets[0]).crs
    assert rasterio.crs.CRS.from_user_input(crs) == rasterio.crs.CRS.from_proj4(local)
    first = names(lnb)[0][0]
    with rasterio.open(lnb / S1_DIR / first, "r+") as dst:
        dst.crs = local.replace("-50,-50,-50", "-87,-98,-121")
    expect_error(lnb, f"{S1_DIR}/{first}", r"lies on another grid than s2/")


@pytest.mark.parametrize("folder", [S1_DIR, S2_DIR, MASK_DIR])
def test_missing_file(lnb, folder):
    name = names(lnb)[1][2]
    (lnb / folder / name).unlink()
    expect_error(lnb, f"{folder}/{name}", "missing")


@pytest.mark.parametrize("make", [os.mkfifo, lambda path: path.symlink_to("/dev/zero")])
def test_a_fifo_or_device_is_not_a_regular_file(lnb, make):
    name = names(lnb)[1][2]
    (lnb / S2_DIR / name).unlink()
    make(lnb / S2_DIR / name)
    expect_error(lnb, f"{S2_DIR}/{name}", r"named in image_series\.csv is not a regular file \(a folder, FIFO or device\?\)")


def test_a_value_beyond_float32_is_named(lnb):
    """A float64 value no float32 holds is refused naming it (not cast to inf with a numpy warning)."""
    name = names(lnb)[0][1]
    array = np.full((2, 16, 16), -10.0)
    array[0, 0, 0] = -1e300
    write_tiff(lnb / S1_DIR / name, array)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        expect_error(lnb, f"{S1_DIR}/{name}", r"holds values beyond the float32 range .* such as -1e\+300 \(an undeclared")


def test_wrong_band_count(lnb):
    name = names(lnb)[0][1]
    write_tiff(lnb / S1_DIR / name, np.zeros((1, 16, 16), np.float32))
    expect_error(lnb, name, r"1 band\(s\); expected 2 bands \(VV, VH\)")
    write_tiff(lnb / S2_DIR / name, np.zeros((2, 16, 16), np.float32))
    write_tiff(lnb / S1_DIR / name, np.zeros((2, 16, 16), np.float32))
    expect_error(lnb, f"{S2_DIR}/{name}", r"2 band\(s\); expected 1 band of float LAI")


def test_wrong_size_within_triplet_and_across_tiles(lnb):
    name = names(lnb)[2][0]
    write_tiff(lnb / MASK_DIR / name, np.full((16, 8), 4, np.uint8))
    expect_error(lnb, f"{MASK_DIR}/{name}", "16x8 pixels; expected 16x16")


@pytest.mark.parametrize("folder,array,expected", [
    (MASK_DIR, np.full((16, 16), 4, np.float32), "dtype float32; expected 1 band of uint8 SCL"),
    (S2_DIR, np.full((16, 16), 4, np.int16), "dtype int16; expected 1 band of float LAI"),
    (S1_DIR, np.zeros((2, 16, 16), np.uint8), "dtype uint8; expected 2 bands"),
])
def test_wrong_dtype(lnb, folder, array, expected):
    name = names(lnb)[0][2]
    write_tiff(lnb / folder / name, array)
    expect_error(lnb, f"{folder}/{name}", expected)


@pytest.mark.parametrize("value", [np.nan, np.inf, -0.5, 26.5])
def test_one_bad_usable_lai_pixel_is_masked_and_counted(lnb, value):
    """One rule for LAI (lai.pixels.clean_pixels): a usable pixel out of range is missing (NaN, SCL 0), counted."""
    from lai.lnb import read_triplet

    name = names(lnb)[1][0]
    write_tiff(lnb / MASK_DIR / name, np.full((16, 16), 4, np.uint8))
    with rasterio.open(lnb / S2_DIR / name) as src:
        arr = src.read()
    arr[:, 3, 3], arr[:, 5, 5] = value, -0.1
    write_tiff(lnb / S2_DIR / name, arr)
    index = index_folder(lnb, progress=False)
    trip = next(t for t in index.triplets if t.names[0] == name)
    data = read_triplet(lnb, trip, (16, 16))
    assert np.isnan(data.lai[0, 3, 3]) and data.scl[0, 3, 3] == 0
    assert data.lai[0, 5, 5] == 0 and data.scl[0, 5, 5] == 4
    assert data.fixes == {"lai_snapped": 1, "lai_masked": 1, "s1_masked": 0}


def test_declared_nodata_on_usable_pixels_is_missing_not_wrong_units(lnb):
    """A mostly cloudy tile (49 usable pixels) with 10 declared-nodata LAI pixels among them was refused as "wrong
    units, or undeclared nodata?": its nodata was declared. Values out of range are still judged."""
    from lai.lnb import read_triplet

    name = names(lnb)[1][0]
    scl = np.full((16, 16), 9, np.uint8)
    scl[:7, :7] = 4
    write_tiff(lnb / MASK_DIR / name, scl)
    with rasterio.open(lnb / S2_DIR / name) as src:
        arr = src.read()
    arr[0, :2, :5] = -9999
    write_tiff(lnb / S2_DIR / name, arr, nodata=-9999)
    trip = next(t for t in index_folder(lnb, progress=False).triplets if t.names[0] == name)
    data = read_triplet(lnb, trip, (16, 16))
    assert np.isnan(data.lai[0, :2, :5]).all() and (data.scl[0, :2, :5] == 0).all() and data.fixes["lai_masked"] == 10
    arr[0, :2, :5] = 50.0  # the same pixels holding a value: 20 % of the usable ones out of range, refused
    write_tiff(lnb / S2_DIR / name, arr)
    with pytest.raises(LNBError, match=r"has 10 of 49 pixel\(s\), 20\.4 % of its usable pixels .* values such as 50"):
        read_triplet(lnb, trip, (16, 16))


def test_bad_s1_pixels_are_missing_and_nan_is_accepted(lnb):
    from lai.lnb import read_triplet

    name = names(lnb)[1][0]
    with rasterio.open(lnb / S1_DIR / name) as src:
        arr = src.read()
    arr[0, 3, 3], arr[1, 3, 3], arr[0, 4, 4], arr[1, 6, 6] = np.inf, -9999, np.nan, np.nan
    write_tiff(lnb / S1_DIR / name, arr)
    trip = next(t for t in index_folder(lnb, progress=False).triplets if t.names[0] == name)
    data = read_triplet(lnb, trip, (16, 16))
    assert np.isnan(data.s1[0, :, 3, 3]).all() and np.isnan(data.s1[0, 0, 4, 4])
    assert data.fixes["s1_masked"] == 1


def test_an_s1_fill_of_zero_in_both_polarisations_is_missing_radar_and_counted(lnb):
    """A swath edge written as 0 in VV and VH (an undeclared nodata) was read as 0 dB, the brightest radar, without a
    word; 0 dB in VV alone (data clipped to [-30, 0] dB) stays a value. Even a fill over most of the tile is missing
    radar, not "linear power"."""
    from lai.lnb import read_triplet

    name = names(lnb)[1][0]
    with rasterio.open(lnb / S1_DIR / name) as src:
        arr = src.read()
    arr[:, :3, :] = 0.0  # 48 pixels of fill
    arr[0, 5, 5] = 0.0  # VV clipped at 0 dB
    write_tiff(lnb / S1_DIR / name, arr)
    trip = next(t for t in index_folder(lnb, progress=False).triplets if t.names[0] == name)
    data = read_triplet(lnb, trip, (16, 16))
    assert np.isnan(data.s1[0, :, :3]).all() and data.s1[0, 0, 5, 5] == 0 and np.isfinite(data.s1[0, :, 3:]).all()
    assert data.fixes["s1_masked"] == 48
    arr[:, :12, :] = 0.0  # three quarters of the tile
    write_tiff(lnb / S1_DIR / name, arr)
    data = read_triplet(lnb, trip, (16, 16))
    assert np.isnan(data.s1[0, :, :12]).all() and data.fixes["s1_masked"] == 192


def test_an_s1_tile_written_vh_first_is_read_by_its_band_descriptions(lnb):
    """SNAP lists Sigma0_VH before Sigma0_VV: the folder reader (validate, cube, predict --data) read band 1 as VV."""
    from lai.lnb import read_triplet

    name = names(lnb)[1][0]
    with rasterio.open(lnb / S1_DIR / name) as src:
        vv, vh = src.read()
    trip = next(t for t in index_folder(lnb, progress=False).triplets if t.names[0] == name)
    with rasterio.open(lnb / S1_DIR / name, "r+") as dst:  # the same pixels, stored VH first and named so
        dst.write(np.stack([vh, vv]))
        dst.set_band_description(1, "Sigma0_VH_db")
        dst.set_band_description(2, "Sigma0_VV_db")
    np.testing.assert_array_equal(read_triplet(lnb, trip, (16, 16)).s1[0], np.stack([vv, vh]))
    with rasterio.open(lnb / S1_DIR / name, "r+") as dst:  # which band is VH? not guessed
        dst.set_band_description(1, "Sigma0_VV_db")
    expect_error(lnb, f"{S1_DIR}/{name}", r"its band descriptions \['Sigma0_VV_db', 'Sigma0_VV_db'\] name VV twice; "
                                           r"expected one band VV and one VH")
    with rasterio.open(lnb / S1_DIR / name, "r+") as dst:  # one band named VH: the other is VV
        dst.set_band_description(1, "VH")
        dst.set_band_description(2, "")
    np.testing.assert_array_equal(read_triplet(lnb, trip, (16, 16)).s1[0], np.stack([vv, vh]))
    with rasterio.open(lnb / S1_DIR / name, "r+") as dst:  # another acquisition mode: not read as VV and VH
        dst.set_band_description(1, "HH")
        dst.set_band_description(2, "HV")
    expect_error(lnb, f"{S1_DIR}/{name}", r"its band descriptions \['HH', 'HV'\] name the polarisation HH; lai reads "
                                           r"Sentinel-1 VV and VH")


def _on_gcps_only(path, arr) -> None:
    """``arr`` written to ``path`` georeferenced by four ground control points, without a grid (radar geometry)."""
    from rasterio.control import GroundControlPoint
    from rasterio.crs import CRS

    with rasterio.open(path, "w", driver="GTiff", height=16, width=16, count=len(arr), dtype=arr.dtype) as dst:
        dst.write(arr)
        dst.gcps = ([GroundControlPoint(r, c, 500000.0 + 10 * c, 4000000.0 - 10 * r) for r, c in
                     [(0, 0), (0, 16), (16, 0), (16, 16)]], CRS.from_epsg(32630))


@pytest.mark.parametrize("layer, rewrite, message", [
    # radar geometry: it would pass the same-grid check unseen beside UTM tiles
    (S1_DIR, _on_gcps_only, r"is georeferenced by 4 ground control points only \(slant or ground range geometry\?\); "
                            r"expected a map grid"),
    # GDAL's half floats read fine but are not the layout's float32: said so, not "corrupt"
    (S2_DIR, lambda path, arr: write_tiff(path, arr, NBITS=16),
     r"declares 16 bits per sample \(NBITS\) for dtype float32 \(32 bits\): a packed or half-float file, or a corrupt "
     r"TIFF header; lai reads whole 32-bit samples"),
    # predictions.nc's x/y follow rows and columns: a rotated tile's maps would be read in the wrong place
    (S2_DIR, lambda path, arr: write_tiff(path, arr, crs="EPSG:32630", transform=Affine(10, 2, 500000, 2, -10, 4000000)),
     r"has a rotated or sheared grid \(geotransform 500000, 10, 2, 4e\+06, 2, -10\); expected a grid along its rows "
     r"and columns"),
])
def test_a_tile_lai_cannot_place_or_read_as_stored_is_refused(lnb, layer, rewrite, message):
    name = names(lnb)[1][0]
    with rasterio.open(lnb / layer / name) as src:
        arr = src.read()
    rewrite(lnb / layer / name, arr)
    expect_error(lnb, f"{layer}/{name}", message)


def test_a_vrt_named_tiff_is_refused(lnb, tmp_path):
    """A ``.tiff`` that holds VRT XML reads another file, which neither the checks nor the cube's reuse key follow."""
    import rasterio.shutil

    name = names(lnb)[1][0]
    elsewhere = tmp_path / "elsewhere.tif"
    os.replace(lnb / S2_DIR / name, elsewhere)
    rasterio.shutil.copy(elsewhere, lnb / S2_DIR / name, driver="VRT")
    expect_error(lnb, f"{S2_DIR}/{name}", r"is a VRT file, not a GeoTIFF \(GDAL driver GTiff\)")


@pytest.mark.parametrize("folder", [S1_DIR, S2_DIR])
def test_a_file_mostly_out_of_range_is_refused(lnb, folder):
    name = names(lnb)[1][0]
    write_tiff(lnb / MASK_DIR / name, np.full((16, 16), 4, np.uint8))
    with rasterio.open(lnb / folder / name) as src:
        arr = src.read()
    arr[..., :2, :] = 5000  # 32 of 256 pixels: 12.5 %, over the 5 % limit
    write_tiff(lnb / folder / name, arr)
    expect_error(lnb, f"{folder}/{name}", r"has (32|64) of (256|512) pixel\(s\), 12\.5 % of its .* values such as 5000 "
                                          r"\(wrong units, or undeclared nodata\?\)")


def test_nan_lai_under_clouds_is_accepted(lnb):
    name = names(lnb)[1][0]
    scl = np.full((16, 16), 4, np.uint8)
    scl[:4] = 9
    lai = np.ones((16, 16), np.float32)
    lai[:4] = np.nan
    write_tiff(lnb / MASK_DIR / name, scl)
    write_tiff(lnb / S2_DIR / name, lai)
    read_all(lnb)


def test_scl_out_of_range(lnb):
    name = names(lnb)[0][0]
    scl = np.full((16, 16), 4, np.uint8)
    scl[0, 0] = 12
    scl[0, 1] = 200
    write_tiff(lnb / MASK_DIR / name, scl)
    expect_error(lnb, f"{MASK_DIR}/{name}", r"SCL value\(s\) \[12, 200\] outside 0..11")


def test_unparsable_name_in_csv(lnb):
    table = pd.read_csv(lnb / SERIES_CSV, dtype=str)
    table.loc[1, "1"] = "not-a-tile.tiff"
    table.to_csv(lnb / SERIES_CSV, index=False)
    err = expect_error(lnb, "row 2", "does not parse")
    assert "not-a-tile.tiff" in err.file


def test_empty_and_malformed_csv(lnb):
    rows = (lnb / SERIES_CSV).read_text().splitlines()
    (lnb / SERIES_CSV).write_text("")
    expect_error(lnb, SERIES_CSV, "is empty")
    (lnb / SERIES_CSV).write_text("0,1,2\n")
    expect_error(lnb, SERIES_CSV, "no triplet rows")
    (lnb / SERIES_CSV).write_text("a,b\nx,y\n")
    expect_error(lnb, SERIES_CSV, r"lacks column\(s\)")
    for extra in (",", ",checked"):  # pandas took column "0" as the index and said "row 1: has an empty cell"
        (lnb / SERIES_CSV).write_text("\n".join([rows[0]] + [r + extra for r in rows[1:]]) + "\n")
        expect_error(lnb, SERIES_CSV, r"has rows with more fields than its header has columns \(a trailing comma")
    (lnb / SERIES_CSV).unlink()
    expect_error(lnb, SERIES_CSV, "missing")


def _rename_row(root, row, fn):
    table = pd.read_csv(root / SERIES_CSV, dtype=str)
    new = []
    for col in ("0", "1", "2"):
        old = table.loc[row, col]
        renamed = fn(TileName.parse(old)).format()
        for folder in (S1_DIR, S2_DIR, MASK_DIR):
            (root / folder / old).rename(root / folder / renamed)
        new.append(renamed)
    table.loc[row, ["0", "1", "2"]] = new
    table.to_csv(root / SERIES_CSV, index=False)
    return new


def test_reversed_window_dates(lnb):
    from dataclasses import replace

    _rename_row(lnb, 0, lambda p: replace(p, date_from=p.date_to, date_to=p.date_from))
    expect_error(lnb, "row 1", "window dates reversed: DateFrom 2019-03-11 is after DateTo 2019-03-01")


def test_triplet_files_disagree_on_dates(lnb):
    from dataclasses import replace

    _rename_row(lnb, 2, lambda p: replace(p, date_to=p.date_to + dt.timedelta(days=p.time_index == 1)))
    expect_error(lnb, "row 3", "window dates .* disagree with")


def test_duplicated_triplet(lnb):
    table = pd.read_csv(lnb / SERIES_CSV, dtype=str)
    pd.concat([table, table.iloc[[0]]]).to_csv(lnb / SERIES_CSV, index=False)
    expect_error(lnb, "row 4", r"duplicates row 1")


def test_skip_bad_skips_bad_csv_rows_too(lnb, tmp_path, capsys):
    """--skip-bad skipped triplets with bad files, but a row whose names are refused (a repeat, a name that does not
    parse) still stopped validate and cube: both are skipped now, and said."""
    from lai.cli import main

    table = pd.read_csv(lnb / SERIES_CSV, dtype=str)
    bad = table.iloc[[0]].assign(**{"1": "not-a-tile.tiff", "2": "nor-this.tiff"})
    pd.concat([table, table.iloc[[0]], bad]).to_csv(lnb / SERIES_CSV, index=False)
    index = index_folder(lnb, on_error="skip", progress=False)
    assert [t.row for t in index.triplets] == [0, 1, 2]
    assert [(s.row, s.problem) for s in index.skipped] == [
        (3, "duplicates row 1 (the same triplet twice)"),
        (4, 'file name does not parse; expected <COUNTRY>_<AREA>_<YYYY-MM-DD>_<YYYY-MM-DD>-<IdxTime>-<n>-<Row>-<Col>.tiff')]
    assert main(["validate", str(lnb), "--skip-bad", "--quiet"]) == 0
    summary = build_cube(lnb, tmp_path / "cube.nc", on_error="skip", progress=False)
    assert summary.n_triplets == 3 and [s["row"] for s in summary.skipped] == [3, 4]
    expect_error(lnb, "row 4", r"duplicates row 1")  # without --skip-bad: refused, as before


def test_two_triplets_of_one_target(lnb):
    """Two histories of the same t file: one map per target, so the second row is refused (not found at predict)."""
    from dataclasses import replace

    table = pd.read_csv(lnb / SERIES_CSV, dtype=str)
    first = TileName.parse(table.loc[0, "0"])
    other = replace(first, n=first.n + 1000).format()  # the same t-2 tile under another index
    for folder in (S1_DIR, S2_DIR, MASK_DIR):
        (lnb / folder / other).write_bytes((lnb / folder / table.loc[0, "0"]).read_bytes())
    extra = table.iloc[[0]].assign(**{"0": other})
    pd.concat([table, extra]).to_csv(lnb / SERIES_CSV, index=False)
    expect_error(lnb, "row 4", rf"names the t file {table.loc[0, '2']} of row 1 again; expected one triplet per "
                               r"target \(tile and date t\)")


def test_truncated_and_non_tiff_files(lnb):
    name = names(lnb)[1][1]
    path = lnb / S2_DIR / name
    path.write_bytes(path.read_bytes()[:200])
    expect_error(lnb, f"{S2_DIR}/{name}", "truncated|cannot be read")
    path.write_text("hello, not a TIFF")
    expect_error(lnb, f"{S2_DIR}/{name}", "cannot be read as a GeoTIFF")


def test_skip_option_counts_and_lists_bad_triplets(lnb, tmp_path):
    bad_header = names(lnb)[0][1]
    write_tiff(lnb / S1_DIR / bad_header, np.zeros((1, 16, 16), np.float32))
    bad_values = names(lnb)[2][2]
    write_tiff(lnb / MASK_DIR / bad_values, np.full((16, 16), 15, np.uint8))
    with pytest.raises(LNBError):
        build_cube(lnb, tmp_path / "cube.nc", progress=False)
    assert not (tmp_path / "cube.nc").exists()
    summary = build_cube(lnb, tmp_path / "cube.nc", on_error="skip", progress=False)
    assert summary.n_triplets == 1
    assert [s["row"] for s in summary.skipped] == [0, 2]
    assert bad_header in summary.skipped[0]["file"] and "band" in summary.skipped[0]["problem"]
    assert "outside 0..11" in summary.skipped[1]["problem"]
    assert "skipped 2 bad triplet(s)" in str(summary)


def test_writer_makes_a_folder_the_reader_accepts(tmp_path):
    """write_tile and write_series (used by the simulator and preprocessing) write what the reader reads back."""
    transform = from_origin(500000, 4600000, 10, 10)
    rng = np.random.default_rng(0)
    tiles = [TileName("SPAIN", "BADAJOZ", dt.date(2019, 6, 1), dt.date(2019, 6, 11), k, 0, 0, 0).format() for k in range(3)]
    s1 = rng.uniform(-25, -5, (3, 2, 16, 16)).astype(np.float32)
    lai = rng.uniform(0, 6, (3, 16, 16)).astype(np.float32)
    for folder in (S1_DIR, S2_DIR, MASK_DIR):
        (tmp_path / folder).mkdir()
    for k, name in enumerate(tiles):
        write_tile(tmp_path / S1_DIR / name, s1[k], "EPSG:32629", transform)
        write_tile(tmp_path / S2_DIR / name, lai[k], "EPSG:32629", transform)  # (H, W): one band
        write_tile(tmp_path / MASK_DIR / name, np.full((1, 16, 16), 4, np.uint8), "EPSG:32629", transform)
    assert write_series(tmp_path, [tiles]).read_text() == ",".join(TIME_COLUMNS) + "\n" + ",".join(tiles) + "\n"
    index = index_folder(tmp_path, progress=False)
    data = read_triplet(tmp_path, index.triplets[0])
    np.testing.assert_array_equal(data.s1, s1)
    np.testing.assert_array_equal(data.lai, lai)
    assert data.crs == "EPSG:32629" and data.transform == tuple(transform)[:6]
    with rasterio.open(tmp_path / S1_DIR / tiles[0]) as src:
        assert src.tags(ns="IMAGE_STRUCTURE").get("INTERLEAVE") == "PIXEL" and src.compression is None


def test_gdal_skips_the_folder_listing_but_still_finds_sidecar_files(tmp_path):
    """lai sets GDAL_DISABLE_READDIR_ON_OPEN=TRUE (opens of thousands of files in one folder twice as fast); a
    world file beside a GeoTIFF without georeferencing still gives the reader its transform (EMPTY_DIR would not)."""
    import os
    import warnings

    import lai  # noqa: F401 - sets the variable on import
    from lai.lnb import read_tiff

    assert os.environ["GDAL_DISABLE_READDIR_ON_OPEN"] == "TRUE"
    path = tmp_path / "s2.tif"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # not georeferenced: what the world file is for
        with rasterio.open(path, "w", driver="GTiff", width=4, height=4, count=1, dtype="float32") as dst:
            dst.write(np.ones((1, 4, 4), np.float32))
    (tmp_path / "s2.tfw").write_text("10\n0\n0\n-10\n500005\n4600005\n")
    _, _, transform = read_tiff(path, "s2")
    assert transform == (10, 0, 500000, 0, -10, 4600010)  # (a, b, c, d, e, f) of the affine transform


def test_validate_says_how_much_radar_is_missing(tmp_path, capsys):
    """NaN backscatter is missing radar (allowed, as at a swath edge), but validate says how much, and names a file
    that holds none at all (it printed "no pixel value out of range" and nothing else)."""
    from lai.cli import main

    lnb = make_lnb(tmp_path / "lnb")
    first = sorted((lnb / S1_DIR).iterdir())[0]
    write_tiff(first, np.full((2, 16, 16), np.nan, np.float32))
    assert main(["validate", str(lnb), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"256 S1 pixels without a backscatter value (NaN or nodata): missing radar; 1 S1 file(s) hold none at all, e.g. {first}" in out
    lai_file = sorted((lnb / S2_DIR).iterdir())[1]  # an S2 LAI export that failed: NaN everywhere
    write_tiff(lai_file, np.full((16, 16), np.nan, np.float32))
    assert main(["validate", str(lnb), "--quiet"]) == 0
    assert (f"1 S2 LAI file(s) hold no LAI value at all (NaN or out of range: a missing acquisition, allowed, or a "
            f"failed export), e.g. {lai_file}") in capsys.readouterr().out


def test_validate_checks_the_classes_the_profile_makes_usable(tmp_path, capsys):
    """`lai validate` took the default classes whatever the profile: it passed a folder that `lai cube --set
    encoding.valid_classes=[2, ..., 7]` refused (LAI 20 under SCL 7)."""
    from lai.cli import main

    lnb = make_lnb(tmp_path / "lnb")
    first = sorted((lnb / MASK_DIR).iterdir())[0]
    write_tiff(first, np.full((16, 16), 7, np.uint8))
    write_tiff(lnb / S2_DIR / first.name, np.full((16, 16), 20, np.float32))
    assert main(["validate", str(lnb), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["validate", str(lnb), "--quiet", "--set", "encoding.valid_classes=[2, 3, 4, 5, 6, 7]"]) == 2
    assert f"{first.name}: has 256 of 256 pixel(s), 100.0 % of its usable pixels (SCL [2, 3, 4, 5, 6, 7])" in \
        capsys.readouterr().err


def test_a_dataset_without_any_radar_is_refused_by_validate_and_cube(tmp_path, capsys):
    """Every S1 file NaN: validate called all triplets valid, and an S1-only model trained on nothing."""
    from lai.cli import main
    from lai.errors import LNBError

    lnb = make_lnb(tmp_path / "lnb")
    for f in (lnb / S1_DIR).iterdir():
        write_tiff(f, np.full((2, 16, 16), np.nan, np.float32))
    assert main(["validate", str(lnb), "--quiet"]) == 2
    assert "none of the 9 S1 files of the valid triplets holds a backscatter value" in capsys.readouterr().err
    with pytest.raises(LNBError, match="no radar in this dataset"):
        build_cube(lnb, tmp_path / "cube.nc", progress=False)
    assert not (tmp_path / "cube.nc").exists()


def test_a_dataset_without_any_usable_lai_is_refused_by_validate_and_cube(tmp_path, capsys):
    """Every SCL 0 (no data): validate called all triplets valid and training found nothing, much later."""
    from lai.cli import main
    from lai.config import EncodingConfig
    from lai.errors import LNBError

    lnb = make_lnb(tmp_path / "lnb")
    for f in (lnb / MASK_DIR).iterdir():
        write_tiff(f, np.zeros((16, 16), np.uint8))
    assert main(["validate", str(lnb), "--quiet"]) == 2
    assert "none of the 9 S2 LAI files of the valid triplets holds a usable pixel (a LAI value where the SCL class " \
           f"is one of {list(EncodingConfig().valid_classes)}): no optical data" in capsys.readouterr().err
    with pytest.raises(LNBError, match="no optical data to train on or score in this dataset"):
        build_cube(lnb, tmp_path / "cube.nc", progress=False)
    assert not (tmp_path / "cube.nc").exists()


def _write_masked(path, array, mask):
    """``array`` as a GeoTIFF with an internal GDAL mask band (0: invalid), as GDAL tools write it."""
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(
            path, "w", driver="GTiff", height=array.shape[-2], width=array.shape[-1], count=len(array),
            dtype=array.dtype) as dst:
        dst.write(array)
        dst.write_mask(mask)


def test_pixels_under_a_gdal_mask_are_missing_not_values(lnb):
    """The reader honours a mask band like a declared nodata value: masked LAI 0 and S1 0 dB became values."""
    name = names(lnb)[1][0]
    write_tiff(lnb / MASK_DIR / name, np.full((16, 16), 4, np.uint8))
    mask = np.full((16, 16), 255, np.uint8)
    mask[3, 3] = 0
    _write_masked(lnb / S2_DIR / name, np.full((1, 16, 16), 2.0, np.float32) * (mask > 0), mask)
    _write_masked(lnb / S1_DIR / name, np.full((2, 16, 16), -12.0, np.float32) * (mask > 0), mask)
    trip = next(t for t in index_folder(lnb, progress=False).triplets if t.names[0] == name)
    data = read_triplet(lnb, trip, (16, 16))
    assert np.isnan(data.lai[0, 3, 3]) and data.scl[0, 3, 3] == 0 and np.isnan(data.s1[0, :, 3, 3]).all()
    assert np.isfinite(data.lai[0]).sum() == 255 and data.fixes["lai_masked"] == 1


def test_a_declared_scale_factor_is_refused(lnb):
    """LAI 10 with scale 0.1 (LAI 1.0) was read as 10: lai reads values as stored, so it refuses a scale or offset."""
    name = names(lnb)[0][2]
    with rasterio.open(lnb / S2_DIR / name, "r+") as dst:
        dst.scales = (0.1,)
    expect_error(lnb, f"{S2_DIR}/{name}", r"band 1 declares scale 0\.1 / offset 0; lai reads values as stored: "
                                          r"write it unscaled \(gdal_translate -unscale\)")


def test_linear_power_with_a_few_bright_pixels_is_refused(lnb):
    """Linear power with one bright pixel (2.0, a town) in every 8x8 block passed as dB: the rule looks at most
    values, not all."""
    name = names(lnb)[1][1]
    s1 = np.stack([np.full((16, 16), 0.05), np.full((16, 16), 0.01)]).astype(np.float32)
    s1[:, ::8, ::8] = 2.0
    write_tiff(lnb / S1_DIR / name, s1)
    expect_error(lnb, f"{S1_DIR}/{name}", r"has 98 % of its backscatter values of VV in \[0, 1\] \(median 0\.05\): linear "
                                          r"power, not dB")


def test_an_undeclared_minus_infinity_in_s1_says_how_to_declare_it():
    """A swath edge of -inf (10*log10 of 0) refused a whole file with "wrong units, or undeclared nodata?", though
    declaring -inf as the nodata (or writing NaN) is all it takes."""
    from lai.pixels import _range_error

    message = str(_range_error("s1", "s1/a.tif", 300, 1000, -np.inf, [4, 5]))
    assert message.startswith("s1/a.tif: has") and "values such as -inf (10*log10 of 0, an undeclared nodata: declare " \
        "-inf as the raster's nodata or write NaN there" in message
    assert "(wrong units, or undeclared nodata?)" in str(_range_error("s1", "s1/a.tif", 300, 1000, -9999.0, [4, 5]))


def test_a_truth_folder_missing_a_file_is_named_not_dropped_whole(tmp_path):
    """One lost file of truth/ made the whole folder real data (no true LAI in its cube, no floor, no oracle) without a
    word; it is named, and the folder without truth/ is read as real data."""
    import shutil

    lnb = make_lnb(tmp_path / "lnb", n_triplets=3, truth=True)
    lost = sorted((lnb / TRUTH_DIR).iterdir())[4]
    lost.unlink()
    with pytest.raises(LNBError, match=rf"{lost.name}: is missing: truth/ holds the true LAI of 8 of the 9 S2 files the "
                                       r"triplets name \(1 missing\); restore them, or move truth/ away"):
        index_folder(lnb, progress=False)
    shutil.rmtree(lnb / TRUTH_DIR)
    assert not index_folder(lnb, progress=False).has_truth
