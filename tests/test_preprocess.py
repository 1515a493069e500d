"""`lai preprocess`: scene rasters -> LNB tiles; real BigEarthNet patches end to end to georeferenced maps."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import yaml
from affine import Affine

from lai import examples
from lai.config import PreprocessConfig
from lai.cube import build_cube
from lai.lnb import SERIES_CSV, LNBError, TileName, index_folder, read_triplet
from lai.manifest import read_preprocess_manifest
from lai.predict import predict_folder
from lai.preprocess import SNAP_FLAGS_DIR, pick_triplets, preprocess
from lai.products import map_files
from lai.scene import SceneError, open_scene, predict_scene
from lai.snap import BUILTIN, flag_counts
from tests.helpers import scene_manifest, write_snap_auxdata, write_tiff

UTM = "EPSG:32633"
S2_GRID = Affine(10, 0, 500000, 0, -10, 4600000)
DATES = ["2019-06-01", "2019-06-06", "2019-06-11", "2019-06-16"]


def scene(root: Path, size=96, s1_on_20m_linear=False, seed=0) -> Path:
    """Four S2 dates (LAI, SCL) and S1 for the first three (S1 of 16 June is 4 days off); returns the manifest."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    s2, s1 = [], []
    for k, date in enumerate(DATES):
        write_tiff(root / f"lai{k}.tif", rng.uniform(0, 6, (size, size)).astype(np.float32), crs=UTM, transform=S2_GRID)
        write_tiff(root / f"scl{k}.tif", rng.choice([4, 5, 9], (size, size)).astype(np.uint8), crs=UTM, transform=S2_GRID)
        s2.append({"date": date, "lai": f"lai{k}.tif", "scl": f"scl{k}.tif"})
        s1_date = (dt.date.fromisoformat(date) + dt.timedelta(days=4 if k == 3 else k % 2)).isoformat()
        if s1_on_20m_linear:  # constant power on a coarser grid: 0.05 and 0.01 -> -13.01 and -20 dB
            power = np.stack([np.full((size // 2 + 4, size // 2 + 4), v, np.float32) for v in (0.05, 0.01)])
            write_tiff(root / f"s1_{k}.tif", power, crs=UTM, transform=Affine(20, 0, 499960, 0, -20, 4600040))
        else:
            write_tiff(root / f"s1_{k}.tif", rng.uniform(-25, -5, (2, size, size)).astype(np.float32), crs=UTM, transform=S2_GRID)
        s1.append({"date": s1_date, "file": f"s1_{k}.tif"})
    manifest = {"country": "SPAIN", "area": "BADAJOZ", "s2": s2, "s1": s1}
    (root / "manifest.yaml").write_text(yaml.safe_dump(manifest))
    return root / "manifest.yaml"


def test_triplets_by_date_real_names_and_georeferenced_tiles(tmp_path):
    manifest = scene(tmp_path / "scene")
    m = read_preprocess_manifest(manifest)
    triplets, _, unused = pick_triplets(m.s2, m.s1, max_gap_days=1)
    assert triplets == [(0, 1, 2)] and unused == ["2019-06-16 (nearest S1 4 days away)"]
    assert pick_triplets(m.s2, m.s1, max_gap_days=4)[0] == [(0, 1, 2), (1, 2, 3)]
    summary = preprocess(manifest, tmp_path / "lnb", PreprocessConfig(tile_size=32), progress=False)
    assert summary["triplets"] == 9 and summary["partial_tiles_left_out"] == 0
    assert json.loads((tmp_path / "lnb" / "preprocess.json").read_text()) == json.loads(json.dumps(summary))
    series = pd.read_csv(tmp_path / "lnb" / SERIES_CSV, dtype=str)
    assert series.iloc[0].tolist() == [f"SPAIN_BADAJOZ_2019-06-01_2019-06-11-{k}-0-0-0.tiff" for k in range(3)]
    index = index_folder(tmp_path / "lnb", progress=False)
    trip = next(t for t in index.triplets if (t.target.row, t.target.col) == (1, 2))
    data = read_triplet(tmp_path / "lnb", trip)
    assert data.crs == UTM and data.transform == tuple(S2_GRID * Affine.translation(64, 32))[:6]
    with rasterio.open(tmp_path / "scene" / "lai2.tif") as src:
        np.testing.assert_array_equal(data.lai[2], src.read(1)[32:64, 64:96])


def test_each_s2_dates_radar_is_recorded_and_a_tie_does_not_repeat_the_date_before(tmp_path):
    """S1 equally near two S2 dates went to the earlier, so t-2 and t-1 shared one radar image while another was as
    near t-1; which S1 date each S2 date took, and which went unused, were not recorded."""
    manifest = scene(tmp_path / "scene")
    m = yaml.safe_load(manifest.read_text())
    for entry, day in zip(m["s2"], ("01", "03", "05", "16")):
        entry["date"] = f"2019-06-{day}"
    for entry, day in zip(m["s1"], ("02", "04", "11", "20")):
        entry["date"] = f"2019-06-{day}"
    manifest.write_text(yaml.safe_dump(m))
    summary = preprocess(manifest, tmp_path / "lnb", PreprocessConfig(tile_size=32), progress=False)
    # 3 June: 2 and 4 June equally near; 1 June took the 2nd, so the 4th
    assert summary["s1_date_of_s2_date"] == {"2019-06-01": "2019-06-02", "2019-06-03": "2019-06-04",
                                             "2019-06-05": "2019-06-04"}
    assert summary["s1_dates_unused"] == ["2019-06-11", "2019-06-20"]
    assert summary["s2_dates_without_s1"] == ["2019-06-16 (nearest S1 4 days away)"]


def test_s1_on_another_grid_is_resampled_in_linear_power_or_refused(tmp_path):
    manifest = scene(tmp_path / "scene", s1_on_20m_linear=True)
    preprocess(manifest, tmp_path / "lnb", PreprocessConfig(tile_size=32, s1_units="linear"), progress=False)
    index = index_folder(tmp_path / "lnb", progress=False)
    s1 = read_triplet(tmp_path / "lnb", index.triplets[4]).s1
    np.testing.assert_allclose(s1[:, 0], 10 * np.log10(0.05), atol=1e-4)
    np.testing.assert_allclose(s1[:, 1], -20.0, atol=1e-4)
    with pytest.raises(SceneError, match=r"s1_0.tif: S1 .* is on another grid \(EPSG:32633, 20 m\) than the S2 scene "
                                         r"\(EPSG:32633, 10 m\) and reprojection is not allowed"):
        preprocess(manifest, tmp_path / "lnb2", PreprocessConfig(tile_size=32, reproject=False), progress=False)
    assert not (tmp_path / "lnb2").exists()
    # a geographic S1 grid: its pixel size in degrees, not "m" (the message said 0.0001 m)
    write_tiff(tmp_path / "scene" / "s1_0.tif", np.full((2, 48, 48), 0.05, np.float32), crs="EPSG:4326",
               transform=Affine(0.0001, 0, 15.0, 0, -0.0001, 41.55))
    with pytest.raises(SceneError, match=r"s1_0.tif: S1 .* is on another grid \(EPSG:4326, 0.0001 degrees\) than"):
        preprocess(manifest, tmp_path / "lnb2", PreprocessConfig(tile_size=32, reproject=False), progress=False)


def test_scl_on_a_coarser_grid_keeps_its_classes_and_a_shifted_s1_is_resampled(tmp_path):
    """A 20 m SCL gives each 10 m pixel the class of the 20 m pixel it lies in (nearest: never a blend of two
    classes); an S1 raster of the S2 pixel size but shifted by half a pixel is resampled (in linear power), not
    read as a window as if its pixel corners were aligned."""
    manifest = scene(tmp_path / "scene")
    scl20 = np.where(np.arange(48) % 2, 9, 4).astype(np.uint8)[None, :].repeat(48, 0)  # 20 m columns: 4, 9, 4, ...
    write_tiff(tmp_path / "scene" / "scl2.tif", scl20, crs=UTM, transform=Affine(20, 0, 500000, 0, -20, 4600000))
    ramp = np.broadcast_to(-20 + 0.1 * np.arange(97, dtype=np.float32), (2, 96, 97))  # dB, rising 0.1 per column
    write_tiff(tmp_path / "scene" / "s1_2.tif", np.ascontiguousarray(ramp), crs=UTM,
               transform=Affine(10, 0, 500005, 0, -10, 4600000))
    preprocess(manifest, tmp_path / "lnb", PreprocessConfig(tile_size=32), progress=False)
    index = index_folder(tmp_path / "lnb", progress=False)
    data = read_triplet(tmp_path / "lnb", next(t for t in index.triplets if (t.target.row, t.target.col) == (1, 2)))
    cols = 64 + np.arange(32)  # the tile's columns in the scene
    np.testing.assert_array_equal(data.scl[2], np.where((cols // 2) % 2, 9, 4)[None, :].repeat(32, 0))
    power = 10 ** ((-20 + 0.1 * np.arange(97)) / 10)  # a 10 m pixel j lies half on source columns j - 1 and j
    expected = 10 * np.log10((power[cols - 1] + power[cols]) / 2)
    np.testing.assert_allclose(data.s1[2, :, 0, :], np.broadcast_to(expected, (2, 32)), atol=1e-3)


@pytest.mark.parametrize("layer, values, message", [
    ("lai1.tif", np.full((96, 96), 3000, np.float32), r"lai1\.tif: has .* outside the plausible LAI range \[0, 15\]: "
                                                        r"values such as 3000 \(wrong units"),
    ("scl2.tif", np.full((96, 96), 300, np.float32), r"scl2\.tif: holds SCL value\(s\) \[300\] outside 0\.\.11"),
    ("scl1.tif", np.full((96, 96), 4.5, np.float32), r"scl1\.tif: holds fractional SCL value\(s\) such as 4\.5; expected "
                                                       r"classes 0\.\.11"),
    ("s1_0.tif", np.full((2, 96, 96), 0.05, np.float32), r"s1_0\.tif: has every backscatter value of VV in \[0, 1\].*linear power"),
    ("lai1.tif", np.where(np.eye(96, dtype=bool), 1e300, 3.0), r"lai1\.tif: holds values beyond the float32 range "
                                                              r"\(±3\.4e\+38\) lai stores pixels in, such as 1e\+300"),
])
def test_preprocess_refuses_what_the_reader_refuses_and_writes_nothing(tmp_path, layer, values, message):
    """LAI in digital numbers, a float SCL of 300 (uint8 would read 44, cloud-free) and linear S1: the same checks
    as `lai validate` (lai.pixels.clean_pixels), made before the folder is written."""
    manifest = scene(tmp_path / "scene")
    write_tiff(tmp_path / "scene" / layer, values, crs=UTM, transform=S2_GRID)
    with pytest.raises(LNBError, match=message):
        preprocess(manifest, tmp_path / "lnb", PreprocessConfig(tile_size=32), progress=False)
    assert not (tmp_path / "lnb").exists() and not list(tmp_path.glob(".lnb*"))


def test_preprocess_counts_the_pixels_it_fixed(tmp_path):
    manifest = scene(tmp_path / "scene")
    with rasterio.open(tmp_path / "scene" / "lai0.tif", "r+") as dst:
        lai = dst.read(1)
        lai[0, :3] = (-0.1, 26.0, np.nan)  # snapped to 0; masked; masked (where the SCL says usable)
        dst.write(lai, 1)
    with rasterio.open(tmp_path / "scene" / "scl0.tif", "r+") as dst:
        scl = dst.read(1)
        scl[0, :3] = 4
        dst.write(scl, 1)
    summary = preprocess(manifest, tmp_path / "lnb", PreprocessConfig(tile_size=32), progress=False)
    assert summary["pixel_fixes"] == {"lai_snapped": 1, "lai_masked": 2, "s1_masked": 0}


def test_tiles_then_predict_then_mosaic_equals_the_scene_prediction(tiny_run, tmp_path, monkeypatch):
    """Round trip: scene -> tiles -> predict per tile (``context`` 0) -> mosaic agrees with predicting the scene in
    windows of the tile size without overlap, within float rounding (1e-4 LAI). The scene map's overviews
    average the LAI bands, take the nearest source code (codes are not quantities) and the RMS of lai_std."""
    import lai.scene

    finished = []

    def spy(gtiff, target, resampling, rms_band=None):
        with rasterio.open(gtiff) as src:
            finished.append((src.dtypes[0], resampling, rms_band))
        return finish(gtiff, target, resampling, rms_band)

    finish = lai.scene._finish
    monkeypatch.setattr(lai.scene, "_finish", spy)
    manifest = scene(tmp_path / "scene")
    preprocess(manifest, tmp_path / "lnb", PreprocessConfig(tile_size=32), progress=False)
    predict_folder(tiny_run, tmp_path / "lnb", tmp_path / "maps", progress=False, context=0)  # each tile alone
    mosaic = np.full((96, 96), np.nan, np.float32)
    for tif in map_files(tmp_path / "maps"):
        with rasterio.open(tif) as src:
            col, row = (round(v) for v in ~S2_GRID * (src.transform.c, src.transform.f))
            mosaic[row:row + 32, col:col + 32] = src.read(1)
    entries = [{"date": DATES[k], "s1": f"s1_{k}.tif", "lai": f"lai{k}.tif", "scl": f"scl{k}.tif"} for k in range(3)]
    (tmp_path / "scene" / "t.yaml").write_text(yaml.safe_dump(scene_manifest(entries)))
    predict_scene(tiny_run, tmp_path / "scene" / "t.yaml", tmp_path / "scene.tif", window=32, overlap=0, progress=False)
    with rasterio.open(tmp_path / "scene.tif") as src:
        direct = src.read(1)
    assert np.isfinite(mosaic).all()
    assert sorted(finished, key=str) == [("float32", "AVERAGE", "lai_std"), ("uint8", "NEAREST", None)]
    np.testing.assert_allclose(mosaic, direct, atol=1e-4)
    # the preprocessing manifest itself is a scene: its one triplet of dates with S1 (16 June has none near)
    summary = predict_scene(tiny_run, manifest, tmp_path / "same.tif", window=32, overlap=0, progress=False)
    assert summary["dates"] == DATES[:3]
    with rasterio.open(tmp_path / "same.tif") as src:
        np.testing.assert_array_equal(src.read(1), direct)
    four = predict_scene(tiny_run, manifest, tmp_path / "last.tif", window=32, overlap=0, progress=False,
                         preprocess=PreprocessConfig(max_s1_gap_days=4))  # 16 June has S1 4 days off: two triplets
    assert four["dates"] == DATES[1:]  # without a target, the last one is mapped
    raw = yaml.safe_load(manifest.read_text())
    raw["target"] = DATES[3]
    manifest.write_text(yaml.safe_dump(raw))
    with pytest.raises(SceneError, match=r"target 2019-06-16 ends no triplet of S2 dates with S1; dates that do: 2019-06-11"):
        predict_scene(tiny_run, manifest, tmp_path / "refused.tif", progress=False)
    assert not (tmp_path / "refused.tif").exists()
    with pytest.raises(SceneError, match=r"target 2019-06-16 ends no triplet"):  # not ignored by preprocess either
        preprocess(manifest, tmp_path / "refused_lnb", PreprocessConfig(tile_size=32), progress=False)
    assert not (tmp_path / "refused_lnb").exists()


def test_scene_from_l2a_bands_and_s1_on_another_grid(tiny_run, tmp_path):
    """One command from Sentinel products to a scene map: L2A bands through SNAP, S1 in linear power on a 20 m grid
    reprojected, as preprocess does."""
    (patch,) = [p for p in examples.extract(tmp_path / "ben") if p.name.startswith("S2A_MSIL2A_20170613")]
    summary = predict_scene(tiny_run, examples.write_manifest(patch, tmp_path / "p.yaml"), tmp_path / "p.tif",
                            window=64, overlap=16, progress=False)
    assert summary["lai_from_snap"] == {str(patch.s2_time.date()): "SNAP 2_1 (built in; Weiss and Baret, ATBD 1.1)"}
    with rasterio.open(tmp_path / "p.tif") as out, rasterio.open(patch.vv) as src:
        assert out.crs == src.crs and out.transform == src.transform and np.isfinite(out.read(2)).all()
    manifest = scene(tmp_path / "linear", size=64, s1_on_20m_linear=True)
    with pytest.raises(LNBError, match="linear power, not dB"):
        predict_scene(tiny_run, manifest, tmp_path / "db.tif", window=32, overlap=0, progress=False)
    summary = predict_scene(tiny_run, manifest, tmp_path / "lin.tif", window=32, overlap=0, progress=False,
                            preprocess=PreprocessConfig(s1_units="linear"))
    assert summary["s1_values_clipped"] == 0 and summary["height"] == 64


def test_l2a_no_data_digital_numbers_give_no_lai(tmp_path):
    """L2A's no-data value (digital number 0, as along an orbit's edge) is missing, not a reflectance of 0 or -0.1:
    without it SNAP's network gave LAI 0.9 to 2.1 there, taken as clear where no SCL is given."""
    from rasterio.windows import Window

    from lai.pixels import BadPixelTally
    from lai.scene import open_scene

    (patch,) = [p for p in examples.extract(tmp_path / "ben") if p.name.startswith("S2A_MSIL2A_20170613")]
    for path in patch.bands.values():
        with rasterio.open(path, "r+") as dst:
            dn = dst.read(1)
            dn[:3] = 0  # the top rows outside the orbit's swath, in every band
            dst.write(dn, 1)
    scene = open_scene(examples.write_manifest(patch, tmp_path / "p.yaml"))
    whole = (slice(None), slice(None))
    _, lai, _, _ = scene.read_window(Window(0, 0, 120, 120), (2, 3, 4, 5, 6), BadPixelTally(), whole)
    assert np.isnan(lai[2, :3]).all() and np.isfinite(lai[2, 10:]).mean() > 0.9


def test_real_bigearthnet_patches_end_to_end(tiny_run, tmp_path):
    """Format and georeferencing test, not a science test: each real patch has one date, used as t-2,
    t-1 and t. Real S1 (dB) and S2 L2A bands -> SNAP LAI -> LNB tiles -> cube -> predict."""
    patches = examples.extract(tmp_path / "ben")
    assert len(patches) == 6
    for p in patches[:2]:  # two UTM zones (33N, 29N)
        lnb, out = tmp_path / f"lnb_{p.name}", tmp_path / f"maps_{p.name}"
        summary = preprocess(examples.write_manifest(p, tmp_path / f"{p.name}.yaml"), lnb,
                             PreprocessConfig(tile_size=120), progress=False)
        assert summary["triplets"] == 1 and summary["s2_dates_without_scl"]
        build_cube(lnb, tmp_path / f"{p.name}.nc", progress=False)
        result = predict_folder(tiny_run, tmp_path / f"{p.name}.nc", out, progress=False)
        with rasterio.open(p.vv) as src, rasterio.open(p.vh) as src_vh:
            crs, transform, vv, vh = src.crs, src.transform, src.read(1), src_vh.read(1)
        outside = int(((vv < -30) | (vv > 0)).sum() + ((vh < -30) | (vh > 0)).sum())
        assert outside > 0 and result["s1_values_clipped"] == 3 * outside  # the one date counts as t-2, t-1, t
        tifs = map_files(out)
        assert len(tifs) == 1 and TileName.parse(tifs[0].with_suffix(".tiff").name).time_index == 2
        with rasterio.open(tifs[0]) as src:
            assert src.crs == crs and src.transform == transform and (src.height, src.width) == (120, 120)
            lai = src.read(1)
        assert np.isfinite(lai).all()
        s1 = read_triplet(lnb, index_folder(lnb, progress=False).triplets[0]).s1
        np.testing.assert_array_equal(s1[2, 0], vv)


MTD = """<?xml version="1.0" encoding="UTF-8"?>
<n1:Level-2A_User_Product xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-2A.xsd">
 <n1:General_Info><Product_Info><PROCESSING_BASELINE>05.09</PROCESSING_BASELINE>
  <Datatake><SPACECRAFT_NAME>Sentinel-2B</SPACECRAFT_NAME></Datatake></Product_Info>
  <Product_Image_Characteristics><QUANTIFICATION_VALUES_LIST>
   <BOA_QUANTIFICATION_VALUE unit="none">10000</BOA_QUANTIFICATION_VALUE></QUANTIFICATION_VALUES_LIST>
   <BOA_ADD_OFFSET_VALUES_LIST>{offsets}</BOA_ADD_OFFSET_VALUES_LIST>
  </Product_Image_Characteristics></n1:General_Info></n1:Level-2A_User_Product>
"""


def test_l2a_bands_through_snap_auxdata_with_platform_metadata_and_flags(tmp_path):
    """SNAP 3_0 of the date's platform from --snap-auxdata (here a folder in SNAP's layout holding the built-in
    numbers: same LAI), its flags written beside the LAI and counted; the baseline offset read from MTD_MSIL2A.xml;
    a missing platform, an S2C date and digital numbers left unscaled refused before anything is written."""
    (patch,) = [p for p in examples.extract(tmp_path / "ben") if p.name.startswith("S2A_MSIL2A_20171221")]  # winter
    aux = write_snap_auxdata(tmp_path / "aux", BUILTIN)
    manifest = examples.write_manifest(patch, tmp_path / "m.yaml")
    builtin = preprocess(manifest, tmp_path / "builtin", PreprocessConfig(tile_size=120), progress=False)
    summary = preprocess(manifest, tmp_path / "lnb", PreprocessConfig(tile_size=120, snap_auxdata=str(aux)), progress=False)
    (date, snap), = summary["lai_from_snap"].items()
    assert snap["network"].startswith("SNAP 3_0 S2A") and snap["platform"] == "S2A" and snap["domain_checked"]
    assert not builtin["lai_from_snap"][date]["domain_checked"]
    name = index_folder(tmp_path / "lnb", progress=False).triplets[0].names[2]
    with rasterio.open(tmp_path / "lnb" / "s2" / name) as a, rasterio.open(tmp_path / "builtin" / "s2" / name) as b:
        np.testing.assert_allclose(a.read(1), b.read(1), rtol=1e-5)
    with rasterio.open(tmp_path / "lnb" / SNAP_FLAGS_DIR / name) as src:
        flags = src.read(1)
    assert flags.dtype == np.uint8 and flag_counts(flags) == snap["flags"]
    assert snap["flags"]["input_out_of_range"] == 120 * 120  # the one grid cell of the test folder holds no pixel
    assert snap["flags"]["output_thresholded_to_min"] > 0 and summary["snap_flags_meaning"]

    raw = yaml.safe_load(manifest.read_text())
    shifted = {}  # the same reflectances as digital numbers of baseline 05.09 (offset -1000)
    for band, f in raw["s2"][0]["bands"].items():
        with rasterio.open(f) as src:
            profile, dn = src.profile, src.read()
        shifted[band] = str(tmp_path / f"{band}.tif")
        with rasterio.open(shifted[band], "w", **profile) as dst:
            dst.write((dn + np.where(dn > 0, 1000, 0)).astype(dn.dtype))
    for date_entry in raw["s2"]:
        date_entry.update(bands=shifted, metadata="MTD_MSIL2A.xml")
        date_entry.pop("platform", None)
    offsets = "".join(f'<BOA_ADD_OFFSET band_id="{k}">-1000</BOA_ADD_OFFSET>' for k in range(13))
    (tmp_path / "MTD_MSIL2A.xml").write_text(MTD.format(offsets=offsets))
    manifest.write_text(yaml.safe_dump(raw))
    summary = preprocess(manifest, tmp_path / "offset", PreprocessConfig(tile_size=120), progress=False)
    assert summary["lai_from_snap"][date]["platform"] == "S2B"  # from the metadata
    said = yaml.safe_load(manifest.read_text())
    for date_entry in said["s2"]:  # the baseline said instead, or the offset on the command line: the same LAI
        date_entry.pop("metadata", None)  # the three entries may be one (a YAML alias)
        date_entry.update(processing_baseline="05.09", platform="S2B")
    manifest.write_text(yaml.safe_dump(said))
    preprocess(manifest, tmp_path / "said", PreprocessConfig(tile_size=120), progress=False)
    for date_entry in said["s2"]:
        date_entry.pop("processing_baseline", None)
    manifest.write_text(yaml.safe_dump(said))
    preprocess(manifest, tmp_path / "flag", PreprocessConfig(tile_size=120, reflectance_offset=-0.1), progress=False)
    for folder in ("said", "flag"):
        with rasterio.open(tmp_path / folder / "s2" / name) as a, rasterio.open(tmp_path / "offset" / "s2" / name) as b:
            np.testing.assert_array_equal(a.read(1), b.read(1))
    assert summary["lai_from_snap"][date]["reflectance"] == "MTD_MSIL2A.xml (baseline 05.09)"
    with rasterio.open(tmp_path / "offset" / "s2" / name) as a, rasterio.open(tmp_path / "builtin" / "s2" / name) as b:
        np.testing.assert_allclose(a.read(1), b.read(1), rtol=1e-4, atol=1e-4)

    for change, cfg, message in [
        (lambda e: e.update(platform="S2C"), {}, r"platform: S2C, but its metadata says S2B"),
        (lambda e: (e.pop("metadata", None), e.update(platform="S2C")), dict(snap_auxdata=str(aux)),
         r"no LAI network for S2C"),
        (lambda e: e.pop("metadata", None), dict(snap_auxdata=str(aux)), r"needs platform \(S2A or S2B\) or metadata"),
        (lambda e: e.pop("metadata", None), dict(reflectance_scale=1.0), r"look like digital numbers"),
        (lambda e: e.update(processing_baseline="five"), {}, r"give metadata or processing_baseline, not both"),
        (lambda e: (e.pop("metadata", None), e.update(processing_baseline="v5")), {}, r"processing_baseline 'v5' is not a"),
        (lambda e: e.update(angles={"view_zenith": 0.08, "sun_zenith": 1.2, "relative_azimuth": 1.5}), {},
         r"looks like radians or a cosine"),
        # the offset bands without metadata: read as before 04.00 they gave LAI about half the true one
        (lambda e: e.pop("metadata", None), {}, r"99 % of their digital numbers are at least 1000 in every band, as in "
                                                r"L2A products from processing baseline 04\.00 on"),
    ]:
        bad = yaml.safe_load(yaml.safe_dump(raw))
        for date_entry in bad["s2"]:
            change(date_entry)
        manifest.write_text(yaml.safe_dump(bad))
        with pytest.raises(SceneError, match=message):
            preprocess(manifest, tmp_path / "refused", PreprocessConfig(tile_size=120, **cfg), progress=False)
        assert not (tmp_path / "refused").exists()


@pytest.mark.parametrize("change, message", [
    (lambda m: m.update(country="SP-AIN"), "country 'SP-AIN'"),
    (lambda m: m.update(country="ÅLAND"), "country 'ÅLAND' and area 'BADAJOZ' must be ASCII letters and digits"),
    (lambda m: m["s2"][1].update(lai="absent.tif"), r"s2\[1\]\.lai: file .*absent.tif does not exist"),
    (lambda m: m["s2"][1].update(lai="/dev/null"), r"s2\[1\]\.lai: file /dev/null is not a regular file \(a folder, FIFO or device\?\)"),
    (lambda m: m["s2"][0].update(bands={"B03": "lai0.tif"}), r"s2\[0\] must hold date and either lai or bands"),
    (lambda m: m["s1"][0].pop("file"), r"s1\[0\] must hold date and vv \+ vh"),
])
def test_bad_manifest_is_named(tmp_path, change, message):
    manifest = scene(tmp_path / "scene", size=32)
    raw = yaml.safe_load(manifest.read_text())
    change(raw)
    manifest.write_text(yaml.safe_dump(raw))
    with pytest.raises(SceneError, match=message):
        preprocess(manifest, tmp_path / "lnb", PreprocessConfig(tile_size=32), progress=False)
    assert not (tmp_path / "lnb").exists()


def test_a_manifest_names_a_bad_date_and_a_missing_file_and_the_short_form_is_refused(tmp_path):
    """lai.manifest reads one format with one date parser and one file resolver; each error names the key. The
    short form of earlier versions (``dates:``) is refused with the way to rewrite it."""
    manifest = scene(tmp_path / "scene", size=32)
    raw = yaml.safe_load(manifest.read_text())
    raw["s2"][2]["date"] = "2019-06-31"
    manifest.write_text(yaml.safe_dump(raw))
    with pytest.raises(SceneError, match=r"s2\[2\]\.date: '2019-06-31' is not a YYYY-MM-DD date"):
        read_preprocess_manifest(manifest)
    raw["s2"][2]["date"], raw["s2"][1]["scl"] = DATES[2], "absent.tif"
    manifest.write_text(yaml.safe_dump(raw))
    with pytest.raises(SceneError, match=r"s2\[1\]\.scl: file .*absent\.tif does not exist"):
        read_preprocess_manifest(manifest)
    dates = [{"date": d, "s1": f"s1_{k}.tif", "lai": f"lai{k}.tif"} for k, d in enumerate(DATES[:3])]
    short = tmp_path / "scene" / "short.yaml"
    short.write_text(yaml.safe_dump({"dates": dates}))
    with pytest.raises(SceneError, match=r"short\.yaml: the short form .* is no longer read: .*docs/manifest\.md"):
        open_scene(short)
    short.write_text(yaml.safe_dump(scene_manifest(dates)))  # the same dates in the one format
    assert open_scene(short).dates == [dt.date.fromisoformat(d) for d in DATES[:3]]


@pytest.mark.parametrize("case, cfg, message", [
    ("ok", dict(s1_units="linear"), r"s1_0\.tif: 3200 of its 3200 values on the S2 grid \(the part from x [\d.]+, y [\d.]+\) "
                                    r"are below -1: dB, not linear power \(drop --s1-units linear\)"),
    ("s1_elsewhere", {}, r"s1_0\.tif: S1 of 2019-06-01 covers none of the S2 scene$"),
    ("mislabelled_crs", {}, r"s1_0\.tif: the S2 scene's bounds in EPSG:4326 do not transform into this raster's CRS"),
])
def test_s1_that_gives_no_value_is_refused_before_any_tile(tmp_path, case, cfg, message):
    """dB data read as linear power (every value NaN) and S1 100 km away were written as tiles without radar, exit 0;
    a mislabelled CRS ended in a traceback (adversarial pass 3: F9, F15)."""
    from tests.test_predict import bad_scene

    manifest = bad_scene(tmp_path / "scene", case)
    with pytest.raises(SceneError, match=message):
        preprocess(manifest, tmp_path / "lnb", PreprocessConfig(tile_size=16, **cfg), progress=False)
    assert not (tmp_path / "lnb").exists() and not list(tmp_path.glob(".lnb*"))


def test_s1_covering_part_of_the_scene_gives_tiles_without_radar_there(tmp_path):
    """Integer S1 over the west half was written as 0 dB on the east half (exit 0, nothing counted)."""
    from tests.test_predict import bad_scene

    preprocess(bad_scene(tmp_path / "scene", "s1_west_int16"), tmp_path / "lnb", PreprocessConfig(tile_size=20),
               progress=False)
    for trip in index_folder(tmp_path / "lnb", progress=False).triplets:
        s1 = read_triplet(tmp_path / "lnb", trip).s1
        assert (np.isnan(s1) if trip.target.col == 1 else s1 == np.float32([-12, -18])[:, None, None]).all()


def test_an_empty_offset_in_the_l2a_metadata_is_named(tmp_path):
    """An empty <BOA_ADD_OFFSET band_id="2"/> ended in a TypeError traceback."""
    from lai.manifest import read_l2a_metadata

    offsets = '<BOA_ADD_OFFSET band_id="2"/>' + "".join(f'<BOA_ADD_OFFSET band_id="{k}">-1000</BOA_ADD_OFFSET>'
                                                        for k in range(3, 13))
    (tmp_path / "MTD_MSIL2A.xml").write_text(MTD.format(offsets=offsets))
    with pytest.raises(SceneError, match=r"s2\[0\]\.metadata: .*MTD_MSIL2A\.xml: BOA_QUANTIFICATION_VALUE or a "
                                         r"BOA_ADD_OFFSET is not a number \(or empty\)"):
        read_l2a_metadata(tmp_path / "MTD_MSIL2A.xml", "m.yaml: s2[0].metadata")


@pytest.mark.parametrize("units", ["db", "linear"])
def test_an_undeclared_zero_border_of_an_s1_scene_is_missing_radar_not_0_db(tmp_path, units):
    """GRD products' no-data border, 0 and not declared in many exports, became 0 dB (the brightest input) blended
    into the pixels along it; it is missing radar now, counted in preprocess.json."""
    manifest = scene(tmp_path / "scene", s1_on_20m_linear=True)
    for k in range(4):
        with rasterio.open(tmp_path / "scene" / f"s1_{k}.tif", "r+") as dst:
            power = dst.read()
            values = power if units == "linear" else (10 * np.log10(power)).astype(np.float32)
            values[:, :, :10] = 0.0  # the first 10 columns of 20 m: 200 m west of the swath
            dst.write(values)
    summary = preprocess(manifest, tmp_path / "lnb", PreprocessConfig(tile_size=32, s1_units=units), progress=False)
    index = index_folder(tmp_path / "lnb", progress=False)
    for trip in index.triplets:
        s1 = read_triplet(tmp_path / "lnb", trip).s1
        if trip.target.col == 0:  # the border covers the scene's first 160 m (S1 starts 40 m west of it)
            assert np.isnan(s1[..., :15]).all() and np.isfinite(s1[..., 17:]).all()
        for band, db in enumerate((-13.01, -20.0)):  # elsewhere the constant backscatter, undimmed by the border
            assert np.nanmax(np.abs(s1[:, band] - db)) < 0.01
    assert summary["s1_missing_pixels"] == 3 * 3 * 32 * 16 and summary["pixel_fixes"]["s1_masked"] == 0


def test_0_db_in_one_polarisation_of_a_two_band_s1_scene_raster_is_a_value(tmp_path):
    """Data clipped to [-30, 0] dB reach 0 dB in VV alone: preprocess and --scene took each such pixel as missing
    radar, where an LNB tile of the same pixels keeps its value, so the maps from tiles and from the scene differed.
    A 0 in both bands stays no data (the undeclared border above)."""
    manifest = scene(tmp_path / "scene")  # dB on the S2 grid, 96x96 pixels: 3x3 tiles of 32
    for k in range(4):
        with rasterio.open(tmp_path / "scene" / f"s1_{k}.tif", "r+") as dst:
            db = dst.read()
            db[0, :8] = 0.0  # VV clipped at 0 dB in the first 8 rows
            db[:, 90:] = 0.0  # both bands 0 in the last 6 rows: no data
            dst.write(db)
    summary = preprocess(manifest, tmp_path / "lnb", PreprocessConfig(tile_size=32), progress=False)
    assert summary["s1_missing_pixels"] == 3 * 6 * 96  # three S2 dates (one triplet), the last rows only
    trip = next(t for t in index_folder(tmp_path / "lnb", progress=False).triplets if t.target.row == 0)
    s1 = read_triplet(tmp_path / "lnb", trip).s1
    assert (s1[:, 0, :8] == 0).all() and np.isfinite(s1[:, 1, :8]).all() and (s1[:, 1, :8] < 0).all()


def test_a_two_band_s1_raster_is_read_by_its_band_descriptions(tmp_path):
    """SNAP's exports list Sigma0_VH before Sigma0_VV: taken by position, VH (-20 dB) became VV and VV became VH."""
    manifest = scene(tmp_path / "scene", s1_on_20m_linear=True)  # band 1 -13.01 dB, band 2 -20 dB
    for k in range(4):
        with rasterio.open(tmp_path / "scene" / f"s1_{k}.tif", "r+") as dst:
            dst.write(dst.read()[::-1].copy())  # VH first
            dst.set_band_description(1, "Sigma0_VH_db")
            dst.set_band_description(2, "Sigma0_VV_db")
    preprocess(manifest, tmp_path / "lnb", PreprocessConfig(tile_size=32, s1_units="linear"), progress=False)
    trip = index_folder(tmp_path / "lnb", progress=False).triplets[4]  # an inner tile
    s1 = read_triplet(tmp_path / "lnb", trip).s1
    assert np.allclose(s1[:, 0], -13.01, atol=0.01) and np.allclose(s1[:, 1], -20.0, atol=0.01)  # VV, VH


def test_a_scene_file_is_judged_whole_and_a_negative_linear_power_is_missing_radar(tmp_path):
    """preprocess judged each tile: a corner of bad LAI (4 % of its file, 39 % of one tile) or of slightly negative
    linear power (thermal noise removed over water) refused the file as out of range, or as dB. Each file is judged
    whole, as predict --scene judges it, and such a power is missing radar."""
    manifest = scene(tmp_path / "scene", s1_on_20m_linear=True)
    with rasterio.open(tmp_path / "scene" / "lai0.tif", "r+") as dst:
        lai = dst.read(1)
        lai[:20, :20] = -999.0
        dst.write(lai, 1)
    with rasterio.open(tmp_path / "scene" / "s1_0.tif", "r+") as dst:
        power = dst.read()
        power[:, :10, :10] = -0.001
        dst.write(power)
    with rasterio.open(tmp_path / "scene" / "scl0.tif") as src:
        usable = int(np.isin(src.read(1)[:20, :20], [2, 3, 4, 5, 6]).sum())
    summary = preprocess(manifest, tmp_path / "lnb", PreprocessConfig(tile_size=32, s1_units="linear"), progress=False)
    assert summary["pixel_fixes"]["lai_masked"] == usable > 0
    assert 15 * 15 <= summary["s1_missing_pixels"] <= 18 * 18  # the corner's 10 m pixels, bilinear at its edge
    with rasterio.open(tmp_path / "scene" / "lai0.tif", "r+") as dst:
        lai[:40, :40] = -999.0  # 17 % of the file: its units, not a few pixels
        dst.write(lai, 1)
    with pytest.raises(LNBError, match=r"lai0\.tif: has \d+ of \d+ pixel"):
        preprocess(manifest, tmp_path / "lnb2", PreprocessConfig(tile_size=32, s1_units="linear"), progress=False)
    assert not (tmp_path / "lnb2").exists()


def test_one_band_s1_rasters_whose_descriptions_name_the_other_polarisation_are_refused(tmp_path):
    """vv and vh given as one file each, swapped in the manifest: their band descriptions say so (read as given,
    VV took VH's level without a word); given the right way round they are read as named."""
    manifest = scene(tmp_path / "scene", s1_on_20m_linear=True)  # band 1 -13.01 dB (VV), band 2 -20 dB (VH)
    m = yaml.safe_load(manifest.read_text())
    for k, entry in enumerate(m["s1"]):
        with rasterio.open(tmp_path / "scene" / entry["file"]) as src:
            for band, pol in enumerate(("VV", "VH"), 1):
                with rasterio.open(tmp_path / "scene" / f"{pol}_{k}.tif", "w", **{**src.profile, "count": 1}) as dst:
                    dst.write(src.read(band), 1)
                    dst.set_band_description(1, f"Sigma0_{pol}")
        m["s1"][k] = {"date": entry["date"], "vv": f"VH_{k}.tif", "vh": f"VV_{k}.tif"}
    manifest.write_text(yaml.safe_dump(m))
    cfg = PreprocessConfig(tile_size=32, s1_units="linear")
    with pytest.raises(LNBError, match=r"VH_0\.tif: is given as vv, but its band description 'Sigma0_VH' names VH: "
                                       r"are vv and vh swapped in the manifest\?"):
        preprocess(manifest, tmp_path / "lnb", cfg, progress=False)
    assert not (tmp_path / "lnb").exists()
    manifest.write_text(yaml.safe_dump({**m, "s1": [{"date": e["date"], "vv": e["vh"], "vh": e["vv"]} for e in m["s1"]]}))
    preprocess(manifest, tmp_path / "lnb", cfg, progress=False)
    s1 = read_triplet(tmp_path / "lnb", index_folder(tmp_path / "lnb", progress=False).triplets[4]).s1
    assert np.allclose(s1[:, 0], -13.01, atol=0.01) and np.allclose(s1[:, 1], -20.0, atol=0.01)  # VV, VH


def test_notebook_00s_patch_outputs_are_made_again_when_the_model_or_the_code_changed(tiny_data, tiny_run, tmp_path):
    """Notebook 00 reused its maps whatever model they came from (a retrained final model kept the old maps in its
    figure; maps made before notebook 02 recalibrated the spread kept an uncalibrated lai_std); RunContext keeps them
    for the model file, its calibration.json and the lai code that made them, and touches no folder of another's."""
    import os
    import shutil

    from lai.errors import PipelineError
    from lai.run_folder import RunContext

    ctx = RunContext("tiny", run_dir=tmp_path / "report", data_root=tmp_path / "data")
    shutil.copytree(tiny_run.parent, ctx.run_dir / "runs", dirs_exist_ok=True)
    patch = ctx.real_patches()[0]
    maps = ctx.predict_patch(patch)  # preprocesses the patch first
    lnb_summary, maps_summary = ctx.preprocess_patch(patch) / "preprocess.json", maps / "summary.json"
    stamps = lambda: (lnb_summary.stat().st_mtime_ns, maps_summary.stat().st_mtime_ns)  # noqa: E731
    first = stamps()
    assert ctx.predict_patch(patch) == maps and stamps() == first  # reused
    weights = ctx.run_dir / "runs" / "final" / "model.pt"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))  # the model retrained
    ctx.predict_patch(patch)
    assert stamps()[0] == first[0] and stamps()[1] != first[1]
    record = maps.with_name(f".{maps.name}.made.json")
    record.write_text(record.read_text().replace('"lai_code": "', '"lai_code": "0'))  # made by other lai code
    ctx.predict_patch(patch)
    assert stamps()[1] != first[1]
    assert "NOT recalibrated" in maps_summary.read_text()
    second = stamps()
    from lai.evaluate import calibrate_run

    calibrate_run(ctx.run_dir / "runs" / "final", tiny_data[2], device="cpu")  # what notebook 02 does after training
    ctx.predict_patch(patch)
    assert stamps()[1] != second[1] and "NOT recalibrated" not in maps_summary.read_text()
    shutil.rmtree(maps)
    record.unlink()
    maps.mkdir()
    (maps / "mine.txt").write_text("a user's file")
    with pytest.raises(PipelineError, match=r"maps_.* is not a folder lai wrote here"):
        ctx.predict_patch(patch)
    assert (maps / "mine.txt").exists()
    patches = ctx.run_dir / "preprocessing" / "bigearthnet"  # the unpacked example patches: kept, or lai's replaced
    extracted = (patches / examples.EXTRACTED).stat().st_mtime_ns
    assert RunContext("tiny", run_dir=ctx.run_dir).real_patches() == ctx.real_patches()
    assert (patches / examples.EXTRACTED).stat().st_mtime_ns == extracted  # reused
    (patches / examples.EXTRACTED).unlink()  # cut short since (its record kept): unpacked again
    assert RunContext("tiny", run_dir=ctx.run_dir).real_patches() == ctx.real_patches()
    assert (patches / examples.EXTRACTED).is_file()
    shutil.rmtree(patches)
    patches.with_name(f".{patches.name}.made.json").unlink()
    patches.mkdir()
    (patches / "mine.txt").write_text("a user's file")
    with pytest.raises(PipelineError, match=r"bigearthnet is not a folder lai wrote here"):
        RunContext("tiny", run_dir=ctx.run_dir).real_patches()
    assert [p.name for p in patches.iterdir()] == ["mine.txt"]


def test_context_frames_each_tile_with_the_pixels_of_the_tiles_beside_it(tiny_run, tmp_path, capsys):
    """``--context``: each tile is predicted inside a frame cut from the mosaic of the tiles beside it (the same
    dates, placed by their names and transforms), reaching out only where a tile lies; the cube gives the same maps.
    With ``--context 0`` each tile is predicted alone, and lai predict says a mosaic shows seams."""
    from lai import cli
    from lai.encode import day_of_year
    from lai.infer import clamp_lai, load_trained, predict_batch

    manifest = scene(tmp_path / "scene")
    preprocess(manifest, tmp_path / "lnb", PreprocessConfig(tile_size=32), progress=False)
    index = index_folder(tmp_path / "lnb", progress=False)
    assert len(index.triplets) == 9  # the 96x96 scene in 3x3 tiles of one triplet of dates
    mosaic = {"s1": np.zeros((3, 2, 96, 96), np.float32), "lai": np.zeros((3, 96, 96), np.float32),
              "scl": np.zeros((3, 96, 96), np.uint8)}
    place = {}
    for trip in index.triplets:
        d = read_triplet(tmp_path / "lnb", trip)
        col, row = (round(v) for v in ~S2_GRID * (d.transform[2], d.transform[5]))
        place[Path(trip.names[2]).stem] = (row, col)
        for key, value in mosaic.items():
            value[..., row:row + 32, col:col + 32] = getattr(d, key)
    dates = index.triplets[0].target
    trained = load_trained(tiny_run)

    def expected(rows: slice, cols: slice, top: int, left: int) -> np.ndarray:  # the model on the mosaic's frame
        frame = [mosaic[key][..., rows, cols][None] for key in ("s1", "lai", "scl")]
        lai = predict_batch(trained, *frame, day_of_year([dates.date_to]), day_of_year([dates.date_from]))[0]
        return clamp_lai(lai[0, top:top + 32, left:left + 32])[0]

    def maps(folder: Path) -> dict:  # (row, col) of the tile in the scene -> band lai_model
        out = {}
        for tif in map_files(folder):
            with rasterio.open(tif) as src:
                out[place[tif.stem]] = src.read(2)
        return out

    summary = predict_folder(tiny_run, tmp_path / "lnb", tmp_path / "framed", progress=False, context=8)
    assert (summary["context"], summary["maps_with_neighbours"], summary["neighbours_off_grid"]) == (8, 9, 0)
    framed = maps(tmp_path / "framed")
    for row, col in framed:  # centre, edges, corners: frames of one shape share a model call, each cropped by its place
        rows, cols = slice(max(row - 8, 0), min(row + 40, 96)), slice(max(col - 8, 0), min(col + 40, 96))
        np.testing.assert_allclose(framed[row, col], expected(rows, cols, row - rows.start, col - cols.start), atol=1e-5)
    assert sorted(framed) == [(r, c) for r in (0, 32, 64) for c in (0, 32, 64)]

    build_cube(tmp_path / "lnb", tmp_path / "cube.nc", progress=False)
    from_cube = predict_folder(tiny_run, tmp_path / "cube.nc", tmp_path / "framed_cube", progress=False, context=8)
    assert from_cube["maps_with_neighbours"] == 9
    for position, lai in maps(tmp_path / "framed_cube").items():
        np.testing.assert_allclose(lai, framed[position], atol=1e-5)
    default = predict_folder(tiny_run, tmp_path / "lnb", tmp_path / "default", progress=False)
    assert default["context"] == 32  # lai.facts.PREDICT_CONTEXT, at most the tiles' 32 pixels

    assert cli.main(["predict", "--run", str(tiny_run), "--data", str(tmp_path / "lnb"), "--out", str(tmp_path / "alone"),
                     "--context", "0", "--quiet"]) == 0
    assert capsys.readouterr().err == (
        "lai predict: warning: 9 of 9 maps have tiles of the same dates beside them, and each was predicted from its own "
        "tile alone (--context 0): a mosaic of them shows the tile edges (summary.json: maps_with_neighbours)\n")
    alone = maps(tmp_path / "alone")
    np.testing.assert_allclose(alone[32, 32], expected(slice(32, 64), slice(32, 64), 0, 0), atol=1e-5)
    assert np.abs(alone[32, 32] - framed[32, 32]).max() > 1e-3  # the frame reached the model


def test_the_tiles_beside_one_without_georeferencing_are_not_read():
    """The original LNB files carry no georeferencing and are never joined: their neighbours by name are not read
    (each would be read up to nine times)."""
    from lai.predict import Neighbours, Sample, framed_tile

    names = [tuple(TileName("ES", "A", dt.date(2019, 6, 1), dt.date(2019, 6, 11), k, 0, 0, c).format() for k in range(3))
             for c in range(3)]

    class Unplaced:  # three tiles in a row, named beside each other, without CRS and transform
        shape, reads = (4, 4), []

        def read(self, i):
            self.reads.append(i)
            return Sample(names[i][2], np.zeros((3, 2, 4, 4), np.float32), np.zeros((3, 4, 4), np.float32),
                          np.full((3, 4, 4), 4, np.uint8), dt.date(2019, 6, 11), dt.date(2019, 6, 1), None, None)

    inputs = Unplaced()
    sample, framed = framed_tile(inputs, Neighbours(names), 1, 2)
    assert inputs.reads == [1] and framed.lai is sample.lai and (framed.top, framed.left) == (0, 0)


def test_a_tile_with_none_beside_it_is_predicted_alone():
    """The frame reaches out only on the sides where a tile lies: none, the tile itself; a missing diagonal tile's
    corner takes the nearest pixels of the two beside it."""
    from lai.predict import Sample, in_context

    def tile(value: float) -> Sample:
        return Sample("t", np.full((3, 2, 4, 4), value, np.float32), np.full((3, 4, 4), value, np.float32),
                      np.full((3, 4, 4), 4, np.uint8), dt.date(2019, 6, 11), dt.date(2019, 6, 1), UTM, tuple(S2_GRID)[:6])

    alone = in_context(tile(1.0), {}, 2)
    assert (alone.lai.shape, alone.top, alone.left) == ((3, 4, 4), 0, 0)
    framed = in_context(tile(1.0), {(0, 1): tile(2.0), (1, 0): tile(3.0)}, 2)
    assert (framed.lai.shape, framed.top, framed.left) == ((3, 6, 6), 0, 0)
    np.testing.assert_array_equal(framed.lai[0, :4, 4:], 2.0)
    np.testing.assert_array_equal(framed.lai[0, 4:, :4], 3.0)
    corner = framed.lai[0, 4:, 4:]  # no tile there: each pixel the nearest of the right tile's or the lower tile's
    assert set(np.unique(corner)) <= {2.0, 3.0} and framed.s1[0, 0, 5, 5] in (2.0, 3.0)


def test_tiles_named_beside_but_placed_elsewhere_are_not_joined():
    """Neighbours by name only where the transforms agree: a tile whose name says beside but whose transform places it
    elsewhere, or one without georeferencing, frames nothing and is counted."""
    from lai.predict import Neighbours, beside, shifted

    names = [tuple(TileName("ES", "A", dt.date(2019, 6, 1), dt.date(2019, 6, 11), k, 0, r, c).format() for k in range(3))
             for r, c in ((0, 0), (0, 1), (1, 0), (5, 5))]
    names.append(tuple(TileName("ES", "A", dt.date(2019, 6, 1), dt.date(2019, 6, 21), k, 0, 1, 1).format() for k in range(3)))
    neighbours = Neighbours(names)
    assert neighbours.named(0) == {(0, 1): 1, (1, 0): 2}  # not (5, 5); not (1, 1) of other dates
    grid = tuple(S2_GRID)[:6]
    georef = [(UTM, grid), (UTM, shifted(grid, 0, 32)), (UTM, shifted(grid, 31, 0)), (UTM, grid), (None, None)]
    assert beside(georef[0], georef[1], (0, 1), (32, 32)) and not beside(georef[0], georef[2], (1, 0), (32, 32))
    assert not beside((None, None), georef[1], (0, 1), (32, 32))
    assert neighbours.counts(georef, (32, 32)) == (2, 2)  # tiles 0 and 1 joined; 0-2 and 1-2 (diagonal) off the grid
