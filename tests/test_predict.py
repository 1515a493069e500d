"""`lai predict`: LNB folder or cube -> georeferenced GeoTIFFs + predictions.nc; scenes by sliding windows."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import rasterio
import xarray as xr
import yaml
from affine import Affine

from lai.errors import LNBError, RunFolderError
from lai.infer import load_trained
from lai.lnb import S1_DIR, index_folder
from lai.predict import predict_folder
from lai.products import SOURCE_COLOURS, source_path
from lai.scene import SceneError, predict_scene
from tests.helpers import make_lnb, scene_manifest, write_tiff

UTM = "EPSG:32633"


def georeference(root: Path, transform: Affine) -> None:
    """Give every TIFF of an LNB folder a UTM CRS and ``transform`` (as real Sentinel tiles carry)."""
    for path in root.rglob("*.tiff"):
        with rasterio.open(path, "r+") as dst:
            dst.crs, dst.transform = UTM, transform


def test_training_range_clip_is_one_encoding_rule():
    import torch

    from lai.config import ConfigError, EncodingConfig
    from lai.encode import count_clipped, normalise_db

    enc = EncodingConfig()
    raw = torch.tensor([-38.0, 9.7, -10.0, float("nan")])
    assert torch.equal(normalise_db(raw, enc)[:3], normalise_db(torch.tensor([-30.0, 0.0, -10.0]), enc))
    assert count_clipped(raw, enc) == 2 and count_clipped(raw.numpy(), enc) == 2
    with pytest.raises(ConfigError, match="encoding.db_range"):
        EncodingConfig(db_range=[0.0, -30.0]).validate()


def test_model_file_with_an_implausible_db_range_is_one_error(tiny_run, tmp_path):
    """A model.pt whose encoding claims [-1e308, 1e308] dB is refused by name, not an overflow in torch's clamp."""
    from lai.checkpoint import read_checkpoint, save_checkpoint
    from lai.errors import RunFolderError
    from lai.infer import load_trained

    state = read_checkpoint(tiny_run / "model.pt", ("model", "config"))
    state["config"]["encoding"]["db_range"] = [-1e308, 1e308]
    (tmp_path / "run").mkdir()
    save_checkpoint(tmp_path / "run" / "model.pt", state)
    with pytest.raises(RunFolderError, match=r"run/model\.pt: broken model configuration .*encoding\.db_range must be "
                                             r"\[low, high\] with -60 <= low < high <= 30"):
        load_trained(tmp_path / "run", "cpu")


def test_a_model_file_in_the_folder_of_another_rows_stage_is_refused(tiny_run, tmp_path):
    """An encoder's model.pt copied into the final model's folder was evaluated, its scores written there as the
    final model's."""
    import shutil

    swapped = shutil.copytree(tiny_run, tmp_path / "final")
    shutil.copy(tiny_run.parent / "s1_masks_seas" / "model.pt", swapped / "model.pt")
    with pytest.raises(RunFolderError, match=r"final/model\.pt: holds a model of row s1_masks_seas, but its folder is a "
                                             r"stage of row final"):
        load_trained(swapped, "cpu")


def test_lnb_120px_tiles_give_one_georeferenced_map_per_triplet(tiny_run, tmp_path):
    lnb = make_lnb(tmp_path / "lnb", n_triplets=2, size=120)
    transform = Affine(10, 0, 404400, 0, -10, 5342400)
    georeference(lnb, transform)
    # one raw, unclipped value outside the training range [-30, 0] dB
    names = index_folder(lnb, progress=False).triplets[0].names
    first = names[2]
    with rasterio.open(lnb / S1_DIR / first, "r+") as dst:
        a = dst.read()
        a[0, 0, :3] = [-38.0, 9.7, 3.0]
        dst.write(a)
    with rasterio.open(lnb / "s2-mask" / first) as src:  # a cloudy pixel at t, without radar at t-2: code 2
        gap = tuple(np.argwhere(src.read(1) == 8)[0])
    with rasterio.open(lnb / S1_DIR / names[0], "r+") as dst:
        a = dst.read()
        a[1][gap] = np.nan
        dst.write(a)
    summary = predict_folder(tiny_run, lnb, tmp_path / "out", progress=False)
    assert summary["model_without_past_radar_pixels"] == 1
    assert summary["triplets"] == 2 and summary["tile"] == [120, 120] and summary["s1_values_clipped"] == 3
    assert summary["maps_without_crs"] == [] and summary["maps_of_other_pixel_size"] == []
    assert summary["training_pixel_sizes"] == [[10.0, 10.0]]  # the simulator's 10 m pixels (model.pt records them)
    for trip in index_folder(lnb, progress=False).triplets:
        tif = tmp_path / "out" / (Path(trip.names[2]).stem + ".tif")
        with rasterio.open(tif) as src:
            assert (src.count, src.height, src.width) == (3, 120, 120) and src.dtypes[0] == "float32"
            assert src.crs.to_string() == UTM and src.transform == transform and np.isnan(src.nodata)
            assert src.descriptions == ("lai", "lai_model", "lai_std") and src.units == ("m2/m2",) * 3
            lai, model, std = src.read(1), src.read(2), src.read(3)
        with rasterio.open(source_path(tif)) as src:
            assert src.descriptions == ("source",) and src.dtypes[0] == "uint8" and src.nodata == 255
            assert src.tags(1)["flag_meanings"] == "model observed model_without_past_radar nodata"
            assert src.crs.to_string() == UTM
            source = src.read(1)
        assert np.isfinite(lai).all() and set(np.unique(source)) <= {0, 1, 2}
        assert (source[gap] == 2) == (trip.names[2] == first) and (source == 2).sum() <= 1
        assert model.min() >= 0 and model.max() <= 15  # physical LAI (lai.infer.clamp_lai)
        with rasterio.open(lnb / "s2-mask" / trip.names[2]) as src_scl, rasterio.open(lnb / "s2" / trip.names[2]) as src_lai:
            usable = np.isin(src_scl.read(1), [2, 3, 4, 5, 6])
            observed_lai = src_lai.read(1)
        assert np.array_equal(source == 1, usable)  # the gap-filled band: the observation where usable, the model elsewhere
        np.testing.assert_array_equal(lai[usable], observed_lai[usable])
        np.testing.assert_array_equal(lai[~usable], model[~usable])
        # the tiny run was not recalibrated: the model's raw deviation, the observation's error unknown (NaN)
        assert np.isnan(std[usable]).all() and (std[~usable] > 0).all()
    written = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert "NOT recalibrated" in written["uncertainty"]["model_sd"] and "lai_std" in written["bands"]
    assert written["s1_values_clipped"] == 3 and written["lai_range"] == [0.0, 15.0] and written["lai_clamped_pixels"] >= 0
    # predictions.nc: each map placed on the map by GDAL and by xarray + rioxarray, without lai
    nc = tmp_path / "out" / "predictions.nc"
    with h5py.File(nc) as f:
        assert f.attrs["Conventions"] == "CF-1.8" and list(f["grid"][:].astype(str)) == ["grid_001"] * 2  # one grid
        assert list(f["grid_index"][:]) == [0, 1] and f["grid_001/lai"].shape == (2, 120, 120)
    for group in ("grid_001",):
        with rasterio.open(f"NETCDF:{nc}:/{group}/lai") as src:
            assert src.crs.to_epsg() == 32633 and src.transform.almost_equals(transform) and src.count == 2  # one band per map
            # each band's position counted from 0, as grid_index counts it (GDAL counted from 1 without variable map)
            assert [src.tags(band)["NETCDF_DIM_map"] for band in (1, 2)] == ["0", "1"]
            np.testing.assert_array_equal(src.read(2), lai)  # the last triplet's map, as its GeoTIFF holds it
        import rioxarray  # noqa: F401 - the .rio accessor, as a GIS user of xarray would have it

        ds = xr.open_dataset(nc, group=group, engine="h5netcdf", decode_coords="all")
        assert ds["lai"].rio.crs.to_epsg() == 32633 and ds["lai"].rio.transform().almost_equals(transform)
        assert ds["lai"].attrs["units"] == "m2/m2" and ds["source"].encoding["dtype"] == np.uint8  # 255 decoded as NaN
        assert ds["lai"].attrs["standard_name"] == ds["lai_model"].attrs["standard_name"] == "leaf_area_index"
        assert ds["x"].attrs["units"] == "m" and ds["x"].attrs["standard_name"] == "projection_x_coordinate"
        assert float(ds["x"][0]) == transform.c + 5 and float(ds["y"][0]) == transform.f - 5  # cell centres
        ds.close()


def test_products_clamp_lai_to_the_plausible_range_and_count_it():
    from lai.infer import clamp_lai

    lai = np.array([[-0.7, 0.0, 3.2], [15.0, 15.4, np.nan]], np.float32)
    out, moved = clamp_lai(lai)
    assert moved == 2 and np.array_equal(out[:, :2], [[0.0, 0.0], [15.0, 15.0]]) and out[0, 2] == np.float32(3.2)
    assert np.isnan(out[1, 2])


def test_odd_tile_size_is_padded_and_cropped_back(tiny_run, tmp_path):
    lnb = make_lnb(tmp_path / "lnb", n_triplets=1, size=33)
    summary = predict_folder(tiny_run, lnb, tmp_path / "out", progress=False)
    assert summary["tile"] == [33, 33] and summary["padded_to"] == [34, 34]
    (tif,) = (tmp_path / "out").glob("*[0-9].tif")
    with rasterio.open(tif) as src:
        assert (src.height, src.width) == (33, 33) and np.isfinite(src.read(1)).all()


def test_maps_of_pixels_the_model_was_not_trained_on_are_listed_and_lai_predict_warns(tiny_run, tmp_path, capsys):
    """A model trained on 10 m pixels maps 20 m pixels as extrapolation (fields at another scale): summary.json lists
    such maps and the command says so; a model file without the record (lai before it) judges nothing."""
    from lai import cli
    from lai.infer import load_trained

    lnb = make_lnb(tmp_path / "lnb", n_triplets=2, size=64)
    georeference(lnb, Affine(20, 0, 404400, 0, -20, 5342400))
    assert cli.main(["predict", "--run", str(tiny_run), "--data", str(lnb), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    written = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert written["training_pixel_sizes"] == [[10.0, 10.0]] and len(written["maps_of_other_pixel_size"]) == 2
    assert capsys.readouterr().err == (
        f"lai predict: warning: 2 of 2 maps are of pixels of another size than the model's training pixels (10 x 10, "
        f"in their CRS's units; first: {written['maps_of_other_pixel_size'][0]}): the model sees fields at another "
        "scale, its maps are extrapolation (summary.json: maps_of_other_pixel_size)\n")
    scene = write_scene(tmp_path / "scene", (40, 40), [-12.0, -18.0], 3.0, 4, transform=Affine(20, 0, 500000, 0, -20, 4600000))
    assert cli.main(["predict", "--run", str(tiny_run), "--scene", str(scene), "--out", str(tmp_path / "scene.tif"),
                     "--quiet"]) == 0
    assert capsys.readouterr().err == (
        f"lai predict: warning: {scene}: its pixels are of another size than the model's training pixels (10 x 10, in "
        "their CRS's units): the model sees fields at another scale, its map is extrapolation\n")
    trained = load_trained(tiny_run, "cpu")
    assert not trained.other_pixel_size((10.05, 0, 0, 0, -9.95, 0)) and trained.other_pixel_size((10, 0, 0, 0, -10.2, 0))
    trained.pixel_sizes = []
    assert not trained.other_pixel_size((20, 0, 0, 0, -20, 0))


def test_the_maps_clamp_the_models_lai_to_the_plausible_range_and_count_it(tiny_run, tmp_path, monkeypatch):
    """Both products (--data, --scene) write the model's LAI clamped to [0, 15] (lai.infer.clamp_lai) and count the
    pixels moved: the model made to say -0.7 and 15.4 at two known pixels of every tile and window."""
    from lai import predict, scene

    real = predict.predict_batch

    def out_of_range(*args, **kwargs):
        lai, observed, sd = real(*args, **kwargs)
        lai = lai.copy()
        lai[:, 0, 0], lai[:, 1, 1] = -0.7, 15.4
        return lai, observed, sd

    monkeypatch.setattr(predict, "predict_batch", out_of_range)
    monkeypatch.setattr(scene, "predict_batch", out_of_range)
    lnb = make_lnb(tmp_path / "lnb", n_triplets=2, size=32)
    summary = predict_folder(tiny_run, lnb, tmp_path / "maps", progress=False)
    assert summary["lai_clamped_pixels"] == 4  # two pixels of each of the two maps
    for tif in sorted((tmp_path / "maps").glob("*[0-9].tif")):
        with rasterio.open(tif) as src:
            model = src.read(2)
        assert (model[0, 0], model[1, 1]) == (0.0, 15.0) and model.min() >= 0 and model.max() <= 15
    manifest = write_scene(tmp_path / "scene", (40, 40), [-12.0, -18.0], 3.0, 9)  # one window covers it
    summary = scene.predict_scene(tiny_run, manifest, tmp_path / "scene.tif", window=64, overlap=8, progress=False)
    assert summary["windows"] == 1 and summary["lai_clamped_pixels"] == 2
    with rasterio.open(tmp_path / "scene.tif") as src:
        model = src.read(2)
    assert (model[0, 0], model[1, 1]) == (0.0, 15.0)


def test_maps_without_a_crs_are_listed_and_lai_predict_warns(tiny_run, tmp_path, capsys):
    """Rasters without a CRS (a transform only) give maps a GIS cannot place: summary.json lists them and the command
    says so on stderr, while it writes every map."""
    from lai import cli

    lnb = make_lnb(tmp_path / "lnb", n_triplets=2, size=64)  # no CRS (tests.helpers)
    assert cli.main(["predict", "--run", str(tiny_run), "--data", str(lnb), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    stems = [Path(t.names[2]).stem for t in index_folder(lnb, progress=False).triplets]
    written = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [Path(name).stem for name in written["maps_without_crs"]] == stems
    err = capsys.readouterr().err
    assert err == (f"lai predict: warning: 2 of 2 maps have no CRS, as their input rasters had none (first: "
                   f"{written['maps_without_crs'][0]}): a GIS cannot place them (summary.json: maps_without_crs)\n")
    for stem in stems:
        with rasterio.open(tmp_path / "out" / f"{stem}.tif") as src:
            assert src.crs is None and src.count == 3


def test_cube_input_matches_lnb_input(tiny_run, lnb, tmp_path):
    from lai.cube import build_cube

    cube = tmp_path / "cube.nc"
    build_cube(lnb, cube, progress=False)
    a = predict_folder(tiny_run, lnb, tmp_path / "a", progress=False)
    b = predict_folder(tiny_run, cube, tmp_path / "b", progress=False)
    assert a["triplets"] == b["triplets"] > 0
    def maps(folder: Path, band: str) -> dict[str, np.ndarray]:  # name -> map (these tiles carry no CRS: no georef)
        with h5py.File(folder / "predictions.nc") as f:
            return {n: f[g][band][i] for n, g, i in zip(f["name"][:].astype(str), f["grid"][:].astype(str), f["grid_index"][:])}

    for band in ("lai", "lai_model"):
        ma, mb = maps(tmp_path / "a", band), maps(tmp_path / "b", band)
        assert ma.keys() == mb.keys()
        for name in ma:
            np.testing.assert_allclose(ma[name], mb[name], atol=1e-5)
    assert b["data_origin"] == a["data_origin"] and a["data_origin"].startswith("real")  # no true LAI in either
    for tif in sorted((tmp_path / "a").glob("*.tif")):  # the same placement and dates, from the cube's records
        with rasterio.open(tif) as x, rasterio.open(tmp_path / "b" / tif.name) as y:
            assert x.transform == y.transform and x.crs == y.crs
            assert x.tags()["date_t_minus_2"] == y.tags()["date_t_minus_2"] < x.tags()["date_t"] == y.tags()["date_t"]


def test_bad_inputs_are_named(tiny_run, tmp_path, lnb):
    with pytest.raises(RunFolderError, match="model.pt"):
        predict_folder(tmp_path, lnb, tmp_path / "o1", progress=False)
    with pytest.raises(FileNotFoundError, match="--data"):
        predict_folder(tiny_run, tmp_path / "nowhere", tmp_path / "o2", progress=False)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "mine.txt").write_text("not lai's")
    with pytest.raises(FileExistsError, match="taken"):
        predict_folder(tiny_run, lnb, tmp_path / "taken", progress=False)
    assert (tmp_path / "taken" / "mine.txt").read_text() == "not lai's"
    bad = next((lnb / S1_DIR).iterdir())
    write_tiff(bad, np.zeros((16, 16), np.float32))  # one band instead of VV, VH
    with pytest.raises(Exception, match=bad.name):
        predict_folder(tiny_run, lnb, tmp_path / "o3", progress=False)
    assert not (tmp_path / "o3").exists()


def test_a_simulated_folder_says_so_without_its_truth_and_a_scene_map_is_a_geotiff(tiny_run, tmp_path, lnb):
    """data_origin: a folder lai's simulator wrote says simulated by its simulation.yaml, also without truth/ (it
    said real); a scene's --out must name a GeoTIFF (x.nc got a GeoTIFF, x_source.tif beside it)."""
    from lai.simulate import SIMULATION_FILE

    (lnb / SIMULATION_FILE).write_text("simulated: true\n")
    assert predict_folder(tiny_run, lnb, tmp_path / "maps", progress=False)["data_origin"].startswith("simulated")
    manifest = write_scene(tmp_path / "scene", (40, 40), [-12.0, -18.0], 3.0, 4)
    with pytest.raises(SceneError, match=r"--out .*x\.nc: a scene's map is a GeoTIFF; name it with \.tif or \.tiff"):
        predict_scene(tiny_run, manifest, tmp_path / "x.nc", window=32, overlap=8, progress=False)
    assert not list(tmp_path.glob("x*"))


def test_a_model_without_radar_keeps_its_maps_where_radar_is_missing(tiny_run, tmp_path):
    """The S2 encoder's rows read no S1: missing radar neither empties their maps (nodata) nor marks them code 2,
    and band lai_model names what each row reads (it named S1 and S2 LAI for every row)."""
    s2_row = tiny_run.parent / "s2_masks_seas"
    s1 = np.full((2, 40, 40), -12.0, np.float32)
    s1[:, :10] = np.nan  # no radar at any date in the first 10 rows
    manifest = write_scene(tmp_path / "scene", (40, 40), s1, 3.0, 9)  # clouded at every date: the model fills all
    for run, out in ((s2_row, "s2.tif"), (tiny_run, "final.tif")):
        predict_scene(run, manifest, tmp_path / out, window=32, overlap=8, progress=False)
    with rasterio.open(tmp_path / "s2.tif") as src, rasterio.open(source_path(tmp_path / "s2.tif")) as code:
        assert np.isfinite(src.read(2)).all() and set(np.unique(code.read(1))) == {0}
        assert src.tags(2)["long_name"] == ("LAI at t predicted by the model (from S2 LAI at t-2, t-1, the S2 cloud "
                                            "masks and the date)")
    with rasterio.open(tmp_path / "final.tif") as src, rasterio.open(source_path(tmp_path / "final.tif")) as code:
        assert np.isnan(src.read(2)[:10]).all() and (code.read(1)[:10] == 255).all()
        assert src.tags(2)["long_name"].startswith("LAI at t predicted by the model (from Sentinel-1 at t-2, t-1, t, S2")
    lnb = make_lnb(tmp_path / "lnb", n_triplets=1, size=32)
    for name in index_folder(lnb, progress=False).triplets[0].names:  # per triplet: no radar in the first 8 columns
        with rasterio.open(lnb / S1_DIR / name, "r+") as dst:
            a = dst.read()
            a[:, :, :8] = np.nan
            dst.write(a)
    summary = predict_folder(s2_row, lnb, tmp_path / "maps", progress=False)
    assert summary["model_without_past_radar_pixels"] == 0
    (tif,) = (tmp_path / "maps").glob("*[0-9].tif")
    with rasterio.open(tif) as src, rasterio.open(source_path(tif)) as code:
        assert np.isfinite(src.read(1)).all() and set(np.unique(code.read(1))) <= {0, 1}


def test_what_train_and_validate_refuse_predict_refuses_too(tiny_run, tmp_path, lnb):
    """A cube checked for fewer SCL classes than the model counts usable; ``--run`` given as the weights file with
    the maps inside its stage folder; weights holding NaN; a folder without any radar: each refused, nothing written."""
    import shutil

    import torch

    from lai.config import ConfigError
    from lai.cube import build_cube
    from lai.io import ForeignOutputError

    cube = tmp_path / "cube.nc"
    build_cube(lnb, cube, progress=False)
    with h5py.File(cube, "r+") as f:
        f.attrs["valid_classes"] = "[4, 5]"  # as `lai cube --set encoding.valid_classes=[4,5]` writes it
    with pytest.raises(ConfigError, match=r"built with the SCL classes \[4, 5\] usable; encoding\.valid_classes .* "
                                          r"adds \[2, 3, 6\], whose LAI the cube never checked"):
        predict_folder(tiny_run, cube, tmp_path / "o1", progress=False)
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    with pytest.raises(ForeignOutputError, match="maps lies inside the training run folder"):
        predict_folder(run / "model.pt", lnb, run / "maps", progress=False)
    state = torch.load(run / "model.pt", weights_only=True)
    key = next(k for k, v in state["model"].items() if v.is_floating_point())
    state["model"][key] = torch.full_like(state["model"][key], float("nan"))
    torch.save(state, run / "model.pt")
    with pytest.raises(RunFolderError, match=rf"model\.pt: weight {key} holds NaN or inf \(a diverged or damaged "
                                             r"training\); train it again"):
        predict_folder(run, lnb, tmp_path / "o2", progress=False)
    for f in (lnb / S1_DIR).iterdir():
        write_tiff(f, np.full((2, 16, 16), np.nan, np.float32))
    with pytest.raises(LNBError, match=r"none of its 3 triplets holds a backscatter value \(S1 all NaN or nodata\): no "
                                       "radar to predict from"):
        predict_folder(tiny_run, lnb, tmp_path / "o3", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cube.nc", "lnb", "run"]


# --------------------------------------------------------------------------- scenes


SCENE_TRANSFORM = Affine(10, 0, 500000, 0, -10, 4600000)


def write_scene(root: Path, size: tuple[int, int], s1, lai, scl, transform=SCENE_TRANSFORM) -> Path:
    """A three-date scene of constant or given rasters and its manifest."""
    entries = []
    for k, date in enumerate(("2019-06-01", "2019-06-06", "2019-06-11")):
        kw = dict(crs=UTM, transform=transform)
        s1_map = np.asarray(s1, np.float32)[..., None, None] if np.ndim(s1) == 1 else s1
        write_tiff(root / f"s1_{k}.tif", np.broadcast_to(s1_map, (2, *size)).astype(np.float32), **kw)
        write_tiff(root / f"lai_{k}.tif", np.broadcast_to(np.float32(lai), size).astype(np.float32), **kw)
        write_tiff(root / f"scl_{k}.tif", np.broadcast_to(np.uint8(scl), size).astype(np.uint8), **kw)
        entries.append({"date": date, "s1": f"s1_{k}.tif", "lai": f"lai_{k}.tif", "scl": f"scl_{k}.tif"})
    (root / "scene.yaml").write_text(yaml.safe_dump(scene_manifest(entries)))
    return root / "scene.yaml"


def test_a_scenes_spread_is_the_models_where_one_window_covers_it(tiny_run, tmp_path):
    """Overlapping windows blend their variances; with one window band lai_std is exactly the model's standard
    deviation (blending the deviations themselves wrote sqrt(sd) at every pixel)."""
    from rasterio.windows import Window

    from lai.encode import day_of_year
    from lai.infer import predict_batch
    from lai.pixels import BadPixelTally
    from lai.scene import open_scene

    rng = np.random.default_rng(4)
    s1 = rng.uniform(-20, -8, (2, 40, 40)).astype(np.float32)
    manifest = write_scene(tmp_path, (40, 40), s1, rng.uniform(0.5, 5, (40, 40)).astype(np.float32), 9)  # clouded
    predict_scene(tiny_run, manifest, tmp_path / "out.tif", window=64, overlap=8, progress=False)
    with rasterio.open(tmp_path / "out.tif") as src:
        std = src.read(3)
    trained, scene = load_trained(tiny_run, "cpu"), open_scene(manifest)
    whole = (slice(None), slice(None))
    s1_in, lai_in, scl, _ = scene.read_window(Window(0, 0, 40, 40), trained.enc.valid_classes, BadPixelTally(), whole)
    _, _, sd = predict_batch(trained, s1_in[None], lai_in[None], scl[None], day_of_year(scene.dates[2:]),
                             day_of_year(scene.dates[:1]))
    np.testing.assert_allclose(std, sd[0], rtol=1e-5)


def test_uniform_scene_gives_uniform_map_without_seams(tiny_run, tmp_path):
    manifest = write_scene(tmp_path, (150, 170), [-12.0, -18.0], 3.0, 9)  # cloudy at every date: S1 only
    trained = load_trained(tiny_run, "cpu")
    maps = {}
    for overlap in (24, 0):
        out = tmp_path / f"map{overlap}.tif"
        summary = predict_scene(trained, manifest, out, window=64, overlap=overlap, progress=False)
        with rasterio.open(out) as src:
            assert src.crs.to_string() == UTM and src.transform == Affine(10, 0, 500000, 0, -10, 4600000)
            assert src.profile["tiled"] and src.count == 3
            maps[overlap] = src.read(1)
        assert summary["observed_fraction"] == 0 and summary["s1_values_clipped"] == 0
        assert summary["training_pixel_sizes"] == [[10.0, 10.0]] and summary["other_pixel_size"] is False
    inner = (slice(12, -12), slice(12, -12))  # away from the scene's own edges (padding there, as in one tile)
    blended, tiled = maps[24][inner], maps[0][inner]
    spread = lambda a: float(np.ptp(a))  # noqa: E731
    assert spread(blended) < 0.5 * spread(tiled)
    assert spread(blended) < 0.05


def test_scene_counts_each_clipped_value_once(tiny_run, tmp_path):
    s1 = np.full((2, 100, 90), -12.0, np.float32)
    s1[0, 40:60, 30:50] = -38.0  # 400 raw values below -30 dB, where several of the six windows overlap
    manifest = write_scene(tmp_path, (100, 90), s1, 3.0, 4)
    summary = predict_scene(tiny_run, manifest, tmp_path / "out.tif", window=64, overlap=32, progress=False)
    assert summary["windows"] == 6 and summary["s1_values_clipped"] == 3 * 400  # at t-2, t-1 and t


def test_scene_on_two_grids_is_refused(tiny_run, tmp_path):
    manifest = write_scene(tmp_path, (40, 40), [-12.0, -18.0], 3.0, 4)
    write_tiff(tmp_path / "lai_1.tif", np.ones((40, 40), np.float32), crs="EPSG:32632", transform=Affine(10, 0, 0, 0, -10, 0))
    with pytest.raises(SceneError, match=r"lai_1\.tif: S2 grid \(CRS EPSG:32632, 40x40 pixels of 10 m from \(0, 0\)\) "
                                         r"differs from that of 2019-06-01, .*lai_0\.tif \(CRS EPSG:32633, 40x40 "
                                         r"pixels.*\); every S2 date of a scene"):
        predict_scene(tiny_run, manifest, tmp_path / "out.tif", window=32, overlap=8, progress=False)
    assert not (tmp_path / "out.tif").exists()


@pytest.mark.parametrize("transform", [Affine(7.07, -7.07, 500000, -7.07, -7.07, 4600000),  # rotated
                                       Affine(10, 0, 500000, 0, 10, 4599600),  # south-up
                                       Affine(-10, 0, 500400, 0, -10, 4600000)])  # x growing westward
def test_rasters_that_are_not_north_up_are_refused_naming_the_file(tiny_run, tmp_path, transform):
    """Windows along rows and columns of such a grid lost part of the S1 and misplaced the rest without a word."""
    manifest = write_scene(tmp_path, (40, 40), [-12.0, -18.0], 3.0, 4, transform=transform)
    with pytest.raises(SceneError, match=r"lai_0\.tif: rotated, sheared or mirrored geotransform .*warp it first"):
        predict_scene(tiny_run, manifest, tmp_path / "out.tif", window=32, overlap=8, progress=False)
    assert not (tmp_path / "out.tif").exists()


def test_missing_radar_is_counted_and_a_map_without_model_values_refused(tiny_run, tmp_path):
    """S1 NaN on part of a date is counted in the summary; NaN everywhere leaves no model value: refused before any
    window, nothing written (it gave an all-NaN map with exit 0 and nothing said)."""
    s1 = np.full((2, 40, 40), -12.0, np.float32)
    s1[:, :10] = np.nan
    manifest = write_scene(tmp_path / "part", (40, 40), s1, 3.0, 4)
    summary = predict_scene(tiny_run, manifest, tmp_path / "part.tif", window=32, overlap=8, progress=False)
    assert summary["s1_missing_pixels"] == 3 * 10 * 40 and 0 < summary["model_fraction"] <= 1
    manifest = write_scene(tmp_path / "none", (40, 40), np.full((2, 40, 40), np.nan, np.float32), 3.0, 4)
    with pytest.raises(SceneError, match=r"s1_0\.tif: S1 of 2019-06-01 holds no backscatter value on the S2 scene"):
        predict_scene(tiny_run, manifest, tmp_path / "none.tif", window=32, overlap=8, progress=False)
    assert not (tmp_path / "none.tif").exists() and not list(tmp_path.glob(".none*"))


@pytest.mark.parametrize("form, message", [
    ("vv_two_bands", r"s1_0\.tif: S1 VV raster has 2 bands; expected 1"),  # it said "got 4" of VV and VH together
    ("file_one_band", r"vv_0\.tif: S1 \(VV, VH\) raster has 1 bands; expected 2"),
])
def test_s1_band_counts_are_named_per_file(tiny_run, tmp_path, form, message):
    manifest = write_scene(tmp_path, (40, 40), [-12.0, -18.0], 3.0, 4)
    m = yaml.safe_load(manifest.read_text())
    for k, e in enumerate(m["s1"]):
        write_tiff(tmp_path / f"vv_{k}.tif", np.full((40, 40), -12.0, np.float32), crs=UTM, transform=SCENE_TRANSFORM)
        m["s1"][k] = ({"date": e["date"], "vv": e["file"], "vh": f"vv_{k}.tif"} if form == "vv_two_bands"
                      else {"date": e["date"], "file": f"vv_{k}.tif"})
    manifest.write_text(yaml.safe_dump(m))
    with pytest.raises(SceneError, match=message):
        predict_scene(tiny_run, manifest, tmp_path / "out.tif", window=32, overlap=8, progress=False)


@pytest.mark.parametrize("raster", ["lai_2.tif", "s1_1.tif"])
def test_a_truncated_scene_raster_is_named(tiny_run, tmp_path, raster):
    """GDAL's read error named the map being written (or no file at all); it names the input now."""
    manifest = write_scene(tmp_path, (64, 64), [-12.0, -18.0], 3.0, 4)
    path = tmp_path / raster
    path.write_bytes(path.read_bytes()[:-2000])
    with pytest.raises(SceneError, match=rf"{raster}: pixel data cannot be read \(truncated or corrupt file\?\)"):
        predict_scene(tiny_run, manifest, tmp_path / "out.tif", window=64, overlap=0, progress=False)
    assert not (tmp_path / "out.tif").exists()


def test_a_raster_without_crs_is_one_error_without_rasterios_warning(tiny_run, tmp_path):
    import warnings

    manifest = write_scene(tmp_path, (40, 40), [-12.0, -18.0], 3.0, 4)
    write_tiff(tmp_path / "scl_2.tif", np.full((40, 40), 4, np.uint8))  # no CRS, no transform
    with warnings.catch_warnings(record=True) as caught, pytest.raises(SceneError, match=r"scl_2\.tif: raster has no CRS"):
        warnings.simplefilter("always")
        predict_scene(tiny_run, manifest, tmp_path / "out.tif", window=32, overlap=8, progress=False)
    assert not [w for w in caught if "georeferenc" in str(w.message).lower()]


@pytest.mark.parametrize("layer", ["lai", "scl"])
def test_a_multi_band_lai_or_scl_raster_is_refused(tiny_run, tmp_path, layer):
    """Band 1 of a three-band LAI or SCL raster was taken without a word."""
    manifest = write_scene(tmp_path, (40, 40), [-12.0, -18.0], 3.0, 4)
    dtype = np.float32 if layer == "lai" else np.uint8
    write_tiff(tmp_path / f"{layer}_1.tif", np.full((3, 40, 40), 3, dtype), crs=UTM, transform=SCENE_TRANSFORM)
    what = "S2 LAI" if layer == "lai" else "SCL"
    with pytest.raises(SceneError, match=rf"{layer}_1\.tif: {what} raster has 3 bands; expected 1"):
        predict_scene(tiny_run, manifest, tmp_path / "out.tif", window=32, overlap=8, progress=False)
    assert not (tmp_path / "out.tif").exists()


def test_scene_pixels_follow_the_folder_rule(tiny_run, tmp_path):
    """--scene checks every window as the folder reader does (lai.pixels.clean_pixels): declared nodata is missing,
    a few bad LAI pixels are counted, a file in the wrong units or an SCL beyond 0..11 is refused by name."""
    s1 = np.full((2, 40, 40), -12.0, np.float32)
    s1[:, 5, 5] = -9999
    lai = np.full((40, 40), 3.0, np.float32)
    lai[10, 10:13] = (-0.1, 26.5, np.nan)
    manifest = write_scene(tmp_path, (40, 40), s1, lai, 4)
    for k in range(3):
        write_tiff(tmp_path / f"s1_{k}.tif", s1, crs=UTM, transform=SCENE_TRANSFORM, nodata=-9999)
    entries = yaml.safe_load(manifest.read_text())
    entries["s1"][1]["date"] = "2019-06-07"  # the S1 of t-1 a day after its S2 date (within max_s1_gap_days)
    manifest.write_text(yaml.safe_dump(entries))
    summary = predict_scene(tiny_run, manifest, tmp_path / "out.tif", window=32, overlap=8, progress=False)
    with rasterio.open(tmp_path / "out.tif") as src, rasterio.open(source_path(tmp_path / "out.tif")) as src_source:
        assert src.descriptions == ("lai", "lai_model", "lai_std") and src.units == ("m2/m2",) * 3  # kept by the COG copy
        lai_map, model, std, source = src.read(1), src.read(2), src.read(3), src_source.read(1)
        tags = src.tags()
        assert src_source.tags()["date_t"] == tags["date_t"] == summary["dates"][2]
    assert summary["s1_dates"] == ["2019-06-01", "2019-06-07", "2019-06-11"] and summary["dates"][1] == "2019-06-06"
    assert [tags[f"date_s1_{k}"] for k in ("t_minus_2", "t_minus_1", "t")] == summary["s1_dates"]  # what the map used
    assert tags["data"] == str(manifest.resolve()) and tags["data_origin"].startswith("real")
    assert np.isnan(model[5, 5]) and np.isfinite(np.delete(model.ravel(), 5 * 40 + 5)).all()  # S1 nodata at t
    assert np.isnan(std[source == 1]).all() and (std[source == 0] > 0).all()  # not recalibrated: observation's error unknown
    assert lai_map[5, 5] == 3.0 and source[5, 5] == 1  # observed there: the gap-filled band holds the observation
    assert source[10, 11] == source[10, 12] == 0 and lai_map[10, 11] == model[10, 11]  # masked LAI: the model
    assert lai_map[10, 10] == 0 and source[10, 10] == 1  # -0.1 snapped to 0 (SNAP's convention)
    assert summary["pixel_fixes"] == {"lai_snapped": 3, "lai_masked": 6, "s1_masked": 0}
    write_tiff(tmp_path / "lai_1.tif", np.full((40, 40), 3000, np.float32), crs=UTM, transform=SCENE_TRANSFORM)
    with pytest.raises(LNBError, match=r"lai_1\.tif: has .* values such as 3000 \(wrong units"):
        predict_scene(tiny_run, manifest, tmp_path / "out2.tif", window=32, overlap=8, progress=False)
    write_tiff(tmp_path / "lai_1.tif", lai, crs=UTM, transform=SCENE_TRANSFORM)
    write_tiff(tmp_path / "scl_2.tif", np.full((40, 40), 260, np.uint16), crs=UTM, transform=SCENE_TRANSFORM)
    with pytest.raises(LNBError, match=r"scl_2\.tif: holds SCL value\(s\) \[260\] outside 0\.\.11"):
        predict_scene(tiny_run, manifest, tmp_path / "out3.tif", window=32, overlap=8, progress=False)
    assert not (tmp_path / "out2.tif").exists() and not (tmp_path / "out3.tif").exists()
    raw = yaml.safe_load(manifest.read_text())
    raw["s2"][2].pop("scl")  # no SCL at t: nothing counts as observed
    manifest.write_text(yaml.safe_dump(raw))
    s1[:, 20, 20] = -9999  # no radar at t-2 there (read as -30 dB): the map's source says so
    write_tiff(tmp_path / "s1_0.tif", s1, crs=UTM, transform=SCENE_TRANSFORM, nodata=-9999)
    summary = predict_scene(tiny_run, manifest, tmp_path / "out4.tif", window=32, overlap=8, progress=False)
    with rasterio.open(tmp_path / "out4.tif") as src, rasterio.open(source_path(tmp_path / "out4.tif")) as src_source:
        assert np.array_equal(src.read(1), src.read(2), equal_nan=True)
        source = src_source.read(1)
    assert set(np.unique(source)) == {0, 2, 255} and source[20, 20] == 2 and source[5, 5] == 255
    assert summary["model_without_past_radar_pixels"] == 1 and summary["source_codes"][2] == "model_without_past_radar"
    assert summary["observed_fraction"] == 0 and "the model everywhere" in summary["bands"]
    with rasterio.open(source_path(tmp_path / "out4.tif")) as src:  # a GIS shows the codes apart unstyled (COG too)
        assert src.colormap(1)[1] == SOURCE_COLOURS[1] and src.colormap(1)[255][3] == 0
    with rasterio.open(tmp_path / "out4.tif") as src:  # the map says it too, without the printed summary
        tags, band_1 = src.tags(), src.tags(1)
    assert "the model everywhere" in band_1["long_name"] and "the model everywhere" in tags["observed_at_t"]
    assert tags["dates_without_scl"] == json.dumps(summary["dates_without_scl"]) and tags["window"] == "32"
    assert json.loads(tags["pixel_fixes"]) == summary["pixel_fixes"] and tags["s1_missing_pixels"] == str(
        summary["s1_missing_pixels"])


def test_the_five_percent_rule_judges_a_scene_file_whole_whatever_the_window(tiny_run, tmp_path):
    """4 % of an LAI raster out of range under clear SCL, all in one corner, is 25 % of the window there: the file
    passes with any window (it was refused with windows of 32), and wrong units are refused by name with any."""
    lai = np.full((80, 80), 3.0, np.float32)
    lai[:16, :16] = 40.0  # 256 of 6,400 pixels
    manifest = write_scene(tmp_path, (80, 80), [-12.0, -18.0], lai, 4)
    trained = load_trained(tiny_run, "cpu")
    fixed = [predict_scene(trained, manifest, tmp_path / f"w{window}.tif", window=window, overlap=overlap,
                           progress=False)["pixel_fixes"]["lai_masked"] for window, overlap in ((32, 8), (80, 0))]
    assert fixed == [3 * 256, 3 * 256]  # each pixel counted once, over the three dates
    wrong_units = np.full((80, 80), 3000.0, np.float32)
    wrong_units[:8] = 3.0  # the first windows pass
    write_tiff(tmp_path / "lai_1.tif", wrong_units, crs=UTM, transform=SCENE_TRANSFORM)
    for window in (32, 80):
        with pytest.raises(LNBError, match=r"lai_1\.tif: has .* values such as 3000 \(wrong units"):
            predict_scene(trained, manifest, tmp_path / f"bad{window}.tif", window=window, overlap=0, progress=False)
        assert not (tmp_path / f"bad{window}.tif").exists()
    # half the scene clouded: 8 % of the usable pixels out of range (4 % of all) is over the rule, judged on the
    # usable pixels once every window is read (the check during the windows can only count all pixels)
    scl = np.full((80, 80), 9, np.uint8)
    scl[:40] = 4
    lai = np.full((80, 80), 3.0, np.float32)
    lai[:4, :64] = 40.0  # 256 of the 3,200 usable pixels
    cloudy = write_scene(tmp_path / "half", (80, 80), [-12.0, -18.0], lai, scl)
    with pytest.raises(LNBError, match=r"lai_\d\.tif: has 256 of 3200 pixel\(s\), 8\.0 % of its usable pixels"):
        predict_scene(trained, cloudy, tmp_path / "half.tif", window=80, overlap=0, progress=False)


def _sparse(path: Path, size: int, bands: int, dtype: str, nodata=None, res: float = 10.0) -> None:
    """A tiled GeoTIFF of ``size`` x ``size`` pixels of ``res`` m on the scene's corner, no block written (a few kB)."""
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=bands, dtype=dtype, crs=UTM,
                       transform=Affine(res, 0, 500000, 0, -res, 4600000), tiled=True, sparse_ok=True, nodata=nodata):
        pass


def _write_bad(root: Path, case: str, k: int) -> None:
    """Date ``k`` of the scene of :func:`bad_scene` given the defect ``case``."""
    kw = dict(crs=UTM, transform=SCENE_TRANSFORM)
    if case == "scaled_lai":  # LAI 3.0 stored as 30 with scale 0.1
        write_tiff(root / f"lai_{k}.tif", np.full((40, 40), 30, np.float32), **kw)
        with rasterio.open(root / f"lai_{k}.tif", "r+") as dst:
            dst.scales = (0.1,)
    elif case in ("int_lai", "complex_lai"):
        write_tiff(root / f"lai_{k}.tif", np.full((40, 40), 3 + 1j if case == "complex_lai" else 3,
                                                  np.complex64 if case == "complex_lai" else np.uint8), **kw)
    elif case == "linear_s1":  # linear power, one bright pixel (a town) in every 8x8 block
        s1 = np.stack([np.full((40, 40), 0.05), np.full((40, 40), 0.01)]).astype(np.float32)
        s1[:, ::8, ::8] = 2.0
        write_tiff(root / f"s1_{k}.tif", s1, **kw)
    elif case == "scl_elsewhere":  # the scene's numbers in another UTM zone: 6 degrees away
        write_tiff(root / f"scl_{k}.tif", np.full((40, 40), 4, np.uint8), crs="EPSG:32632", transform=SCENE_TRANSFORM)
    elif case == "mislabelled_crs":  # UTM coordinates labelled as degrees; S1 in UTM
        for layer, value in (("lai", np.float32(3)), ("scl", np.uint8(4))):
            write_tiff(root / f"{layer}_{k}.tif", np.full((40, 40), value), crs="EPSG:4326", transform=SCENE_TRANSFORM)
    elif case == "s1_elsewhere":  # 100 km east
        write_tiff(root / f"s1_{k}.tif", np.stack([np.full((40, 40), v, np.float32) for v in (-12, -18)]), crs=UTM,
                   transform=Affine(10, 0, 600000, 0, -10, 4600000))
    elif case == "s1_west_int16":  # integer dB covering the west half of the scene only
        write_tiff(root / f"s1_{k}.tif", np.stack([np.full((40, 20), v, np.int16) for v in (-12, -18)]), **kw)
    elif case == "fine_s1":  # 20000x20000 pixels of 2 cm over the 400 m scene: 3.2 GB to read
        _sparse(root / f"s1_{k}.tif", 20000, 2, "float32", res=0.02)
    elif case == "no_radar":  # 4000x4000 pixels, no value anywhere
        for layer, bands, dtype, nodata in (("s1", 2, "float32", np.nan), ("lai", 1, "float32", np.nan),
                                            ("scl", 1, "uint8", None)):
            _sparse(root / f"{layer}_{k}.tif", 4000, bands, dtype, nodata)
    elif case != "ok":
        raise ValueError(case)


def bad_scene(root: Path, case: str) -> Path:
    """A 40x40 three-date scene (:func:`write_scene`) with one defect of adversarial pass 3 (F5-F14) at every date, its
    manifest naming country and area so that ``lai preprocess`` reads it too; ``case`` "ok": none."""
    manifest = write_scene(root, (40, 40), [-12.0, -18.0], 3.0, 4)
    for k in range(3):
        _write_bad(root, case, k)
    manifest.write_text(yaml.safe_dump({"country": "SPAIN", "area": "BADAJOZ", **yaml.safe_load(manifest.read_text())}))
    return manifest


@pytest.mark.parametrize("case, message", [
    ("scaled_lai", r"lai_0\.tif: band 1 declares scale 0\.1 / offset 0; lai reads values as stored"),
    ("int_lai", r"lai_0\.tif: has dtype uint8; expected float S2 LAI values"),  # as the LNB reader refuses it
    ("complex_lai", r"lai_0\.tif: has dtype complex64; expected float S2 LAI values"),
    ("linear_s1", r"s1_0\.tif: has 98 % of its backscatter values of VV in \[0, 1\] \(median 0\.05\): linear power"),
    ("scl_elsewhere", r"scl_0\.tif: SCL covers none of the S2 scene \(its CRS EPSG:32632, the scene's EPSG:32633\)"),
    ("mislabelled_crs", r"s1_0\.tif: the S2 scene's bounds in EPSG:4326 do not transform into this raster's CRS "
                        r"\(EPSG:32633\): is one of them mislabelled"),
    ("s1_elsewhere", r"s1_0\.tif: S1 of 2019-06-01 covers none of the S2 scene$"),
    ("fine_s1", r"s1_0\.tif: reading it onto the S2 grid needs 20004x20004 of its pixels of 0\.02 \(3\.2 GB\) for 40x40 "
                r"pixels of 10, more than lai reads at once; resample it first"),
    ("no_radar", r"s1_0\.tif: S1 of 2019-06-01 holds no backscatter value on the S2 scene \(4000x4000 pixels\): all "
                 r"NaN or nodata"),
])
def test_scene_rasters_that_cannot_be_read_honestly_are_refused(tiny_run, tmp_path, case, message, monkeypatch):
    """Each was read with exit 0 (a wrong map), a traceback, gigabytes, or minutes of windows before the error
    (adversarial pass 3: F7, F8, F10, F14, F15): now one error naming the file, before any window or at the first
    (where the pixels say it), nothing written."""
    import warnings

    from lai import scene

    reads = {"s2_tile": 0, "s1_tile": 0}  # per window, one read of each of the three dates

    def counted(name, read):
        def wrapper(*args, **kwargs):
            reads[name] += 1
            return read(*args, **kwargs)
        return wrapper

    for name in reads:
        monkeypatch.setattr(scene, name, counted(name, getattr(scene, name)))
    manifest = bad_scene(tmp_path / "scene", case)
    with warnings.catch_warnings():
        for category in (np.exceptions.ComplexWarning, RuntimeWarning):  # on stderr beside the error
            warnings.simplefilter("error", category)
        with pytest.raises((SceneError, LNBError), match=message):
            predict_scene(tiny_run, manifest, tmp_path / "out.tif", window=32, overlap=8, progress=False)
    assert max(reads.values()) <= 3, reads  # the first of its windows of 32 at most (they read minutes of windows)
    assert not list(tmp_path.glob("*out*"))


def test_s1_covering_part_of_the_scene_is_missing_elsewhere_not_0_db(tiny_run, tmp_path):
    """Integer S1 read outside its extent as 0 dB (a bright, plausible value): it is missing radar, and counted."""
    manifest = bad_scene(tmp_path, "s1_west_int16")
    summary = predict_scene(tiny_run, manifest, tmp_path / "out.tif", window=40, overlap=8, progress=False)
    assert summary["s1_missing_pixels"] == 3 * 40 * 20 and summary["model_fraction"] == 0.5
    with rasterio.open(tmp_path / "out.tif") as src:
        model = src.read(2)
    assert np.isnan(model[:, 20:]).all() and np.isfinite(model[:, :20]).all()


def test_lai_under_a_mask_band_is_missing_not_observed(tiny_run, tmp_path):
    """An LAI raster's own mask band (0 under it) gave observed LAI 0 in the map: masked pixels are missing."""
    manifest = write_scene(tmp_path, (40, 40), [-12.0, -18.0], 3.0, 4)
    mask = np.full((40, 40), 255, np.uint8)
    mask[:, 0] = 0  # 40 of 1600 usable pixels: under the 5 % a file may have out of range
    for k in range(3):
        with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(
                tmp_path / f"lai_{k}.tif", "w", driver="GTiff", width=40, height=40, count=1, dtype="float32", crs=UTM,
                transform=SCENE_TRANSFORM) as dst:
            dst.write(np.where(mask > 0, 3.0, 0.0).astype(np.float32)[None])
            dst.write_mask(mask)
    summary = predict_scene(tiny_run, manifest, tmp_path / "out.tif", window=40, overlap=8, progress=False)
    with rasterio.open(tmp_path / "out.tif") as src, rasterio.open(source_path(tmp_path / "out.tif")) as src_source:
        lai, model, source = src.read(1), src.read(2), src_source.read(1)
    assert (source[:, 0] == 0).all() and np.array_equal(lai[:, 0], model[:, 0]) and (lai[:, 1:] == 3).all()
    assert summary["pixel_fixes"]["lai_masked"] == 3 * 40


def test_cli_predict_and_its_errors(tiny_run, lnb, tmp_path, capsys):
    from lai.cli import main

    assert main(["predict", "--run", str(tiny_run), "--data", str(lnb), "--out", str(tmp_path / "maps"), "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["triplets"] == 3
    assert main(["predict", "--run", str(tiny_run), "--out", str(tmp_path / "x")]) == 2
    assert "exactly one of --data" in capsys.readouterr().err
    assert main(["predict", "--run", str(tmp_path), "--data", str(lnb), "--out", str(tmp_path / "y")]) == 2
    assert "model.pt" in capsys.readouterr().err


def test_cli_evaluate_calibrates_the_spread_that_predict_writes(tiny_data, tiny_run, tmp_path, capsys):
    """The command-line route (train, evaluate, predict) gives maps whose lai_std is recalibrated and holds the
    observation's error where observed, as the notebook pipeline's do."""
    import shutil

    from lai.cli import main

    _, lnb, cube = tiny_data
    run = tmp_path / "final"
    shutil.copytree(tiny_run, run)
    assert main(["evaluate", "--run", str(run), "--cube", str(cube)]) == 0
    out, err = capsys.readouterr()
    assert "final on non_cloudy" in err and "final on val" in err  # progress bars: scoring, then calibration
    assert "spread recalibrated on the validation split" in out
    assert "fitted on the validation split less one region, the coverage of that region's pixels:" in out
    assert (run / "calibration.json").exists()
    assert main(["predict", "--run", str(run), "--data", str(lnb), "--out", str(tmp_path / "maps"), "--quiet"]) == 0
    tif = next(p for p in sorted((tmp_path / "maps").glob("*.tif")) if p != source_path(p) and "_source" not in p.name)
    with rasterio.open(tif) as src, rasterio.open(source_path(tif)) as src_source:
        std, source, tags = src.read(3), src_source.read(1), src.tags()
    assert tags["lai_std"].startswith("recalibrated on the validation split")
    reach = json.loads(tags["lai_std_interval_half_width"].split(": ", 1)[1])  # 68 % and 95 %, per stratum
    assert set(reach) == {"68 %", "95 %"} and all(len(v) == 6 for v in reach.values())
    assert (source == 1).any() and np.isfinite(std[source == 1]).all() and np.isfinite(std[source == 0]).all()
    encoder = tmp_path / "s1_masks_seas"  # an encoder stage of the same (uncertainty) profile: no spread head
    shutil.copytree(tiny_run.parent / encoder.name, encoder)
    assert main(["evaluate", "--run", str(encoder), "--cube", str(cube), "--quiet"]) == 0  # exit 2 here, after its metrics
    out, err = capsys.readouterr()
    assert "spread recalibrated" not in out and not (encoder / "calibration.json").exists() and " on " not in err


def test_windows_blend_by_a_ramp_at_both_ends_and_overlap_at_most_half(tiny_run, tmp_path):
    """Each window's weight rises from ~0 to 1 over the overlap at both ends (a one-sided ramp left seams at every
    trailing edge), and an overlap over half the window is refused before any work (the scene read many times)."""
    from lai.scene import ramp

    r = ramp(64, 16)
    assert np.allclose(r, r[::-1]) and r[0] < 0.1 and r[16:48].min() == 1.0
    np.testing.assert_allclose(r[:16], (np.arange(16) + 0.5) / 16)
    manifest = write_scene(tmp_path, (40, 40), [-12.0, -18.0], 3.0, 4)
    with pytest.raises(SceneError, match=r"--overlap must lie in \[0, window/2\] = \[0, 16\].* got overlap 17 with "
                                         r"window 32"):
        predict_scene(tiny_run, manifest, tmp_path / "out.tif", window=32, overlap=17, progress=False)
    assert not (tmp_path / "out.tif").exists()


def test_scene_overviews_of_the_deviation_are_its_root_mean_square(tmp_path):
    """A map with band lai_std: its overviews are the RMS of the deviations they cover (their mean would understate
    the typical one), the LAI bands' the mean; the COG keeps every tag, description, unit and nodata of the map."""
    from rasterio.transform import from_origin

    from lai.scene import _finish, overview_factors

    assert overview_factors(512, 512) == [] and overview_factors(600, 100) == [2] and overview_factors(40, 1500) == [2, 4]
    rng = np.random.default_rng(0)
    bands = rng.uniform(0, 6, (3, 600, 600)).astype(np.float32)
    bands[:, :50, :50] = np.nan
    for name, describe in (("with_std", ("lai", "lai_model", "lai_std")), ("plain", ("lai", "lai_model", "other"))):
        gtiff = tmp_path / f"{name}.gtiff"
        write_tiff(gtiff, bands, nodata=np.nan, crs=UTM, transform=from_origin(500000, 4300000, 10, 10), tiled=True,
                   blockxsize=256, blockysize=256)
        with rasterio.open(gtiff, "r+") as dst:
            dst.update_tags(model="run 1", t="2019-06-01")
            dst.units = ("m2/m2",) * 3
            for i, d in enumerate(describe, 1):
                dst.set_band_description(i, d)
                dst.update_tags(i, long_name=f"band {d}")
        _finish(gtiff, tmp_path / f"{name}.tif", "AVERAGE", rms_band="lai_std")
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(name)) == [f"{name}.gtiff", f"{name}.tif"]
    blocks = bands.reshape(3, 300, 2, 300, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the all-NaN corner
        mean, rms = np.nanmean(blocks, axis=(2, 4)), np.sqrt(np.nanmean(blocks**2, axis=(2, 4)))
    with rasterio.open(tmp_path / "with_std.tif") as cog, rasterio.open(tmp_path / "plain.tif") as plain:
        assert cog.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG" and cog.overviews(3) == [2]
        assert cog.tags() == plain.tags() and cog.descriptions[:2] == plain.descriptions[:2]
        assert cog.descriptions[2] == "lai_std" and cog.units == plain.units == ("m2/m2",) * 3
        assert [cog.tags(i) for i in (1, 2)] == [plain.tags(i) for i in (1, 2)] and cog.tags(3) == {"long_name": "band lai_std"}
        assert np.isnan(cog.nodata) and cog.crs == plain.crs and cog.transform == plain.transform
        np.testing.assert_array_equal(cog.read(), plain.read())
    for name, expected in (("with_std", rms[2]), ("plain", mean[2])):
        with rasterio.open(tmp_path / f"{name}.tif", overview_level=0) as overview:
            zoomed = overview.read()
        np.testing.assert_allclose(zoomed[:2], mean[:2], rtol=1e-6)
        np.testing.assert_allclose(zoomed[2], expected, rtol=1e-6)
    assert np.nanmin(rms[2] - mean[2]) > 0  # the two differ on every pixel of this map


def test_scene_overviews_stay_within_the_range_of_their_pixels(tmp_path):
    """The COG's overviews (what a GIS shows zoomed out) average LAI and keep the source codes; GDAL's default,
    cubic, put LAI of stripes of 0 and 8 at -0.40 and 8.40."""
    from rasterio.transform import from_origin

    from lai.scene import _finish

    stripes = np.where((np.arange(600) // 3) % 2, 8.0, 0.0).astype(np.float32)[None, :].repeat(600, 0)
    stripes[:50, :50] = np.nan
    codes = np.where(stripes == 8, 1, 0).astype(np.uint8)
    codes[:50, :50] = 255
    for name, array, nodata, resampling in (("lai", stripes, np.nan, "AVERAGE"), ("source", codes, 255, "NEAREST")):
        gtiff = tmp_path / f"{name}.gtiff"
        write_tiff(gtiff, array, nodata=nodata, crs=UTM, transform=from_origin(500000, 4300000, 10, 10),
                   tiled=True, blockxsize=256, blockysize=256)
        _finish(gtiff, tmp_path / f"{name}.tif", resampling)
        with rasterio.open(tmp_path / f"{name}.tif") as cog:
            assert cog.driver == "GTiff" and cog.overviews(1) == [2]
        with rasterio.open(tmp_path / f"{name}.tif", overview_level=0) as overview:
            zoomed = overview.read(1)
        if name == "lai":
            assert np.nanmin(zoomed) == 0.0 and np.nanmax(zoomed) == 8.0 and np.isnan(zoomed[:25, :25]).all()
        else:
            assert set(np.unique(zoomed)) == {0, 1, 255}
