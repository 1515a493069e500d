"""Georeferenced DataArrays: what rioxarray writes opens in rasterio with the cube's CRS and transform."""
import hashlib
from pathlib import Path

import numpy as np
import pytest
import rasterio

from lai.cube import open_cube
from lai.errors import CubeError
from lai.georef import georeferenced, triplet_array


def test_cube_variables_carry_cf_attributes(tiny_data):
    _, _, cube = tiny_data
    with open_cube(cube) as ds:
        assert ds.attrs["Conventions"].startswith("CF-")
        assert ds["lai"].attrs["standard_name"] == "leaf_area_index" and ds["s1"].attrs["units"] == "dB"
        assert len(ds["scl"].attrs["flag_meanings"].split()) == len(ds["scl"].attrs["flag_values"]) == 12


@pytest.mark.parametrize("variable", ["lai", "s1"])
def test_triplet_written_by_rioxarray_has_the_cube_georeferencing(tiny_data, tmp_path, variable):
    _, lnb, cube = tiny_data
    with open_cube(cube) as ds:
        crs, transform, name = str(ds["crs"].values[3]), ds["transform"].values[3], str(ds["name"].values[3][2])
    da = triplet_array(cube, 3, variable)
    da.rio.to_raster(tmp_path / "t.tif")
    with rasterio.open(tmp_path / "t.tif") as out, rasterio.open(lnb / ("s2" if variable == "lai" else "s1") / name) as src:
        assert out.crs == src.crs == rasterio.crs.CRS.from_string(crs)
        assert out.transform.almost_equals(src.transform) and tuple(out.transform)[:6] == pytest.approx(tuple(transform))
        band = 1 if variable == "lai" else 2
        np.testing.assert_array_equal(out.read(band), src.read(band))
    with open_cube(cube) as ds:  # another date: that date's values, not t's
        np.testing.assert_array_equal(triplet_array(cube, 3, variable, "t-2").values, ds[variable].values[3, 0])


def test_no_georeferencing_is_said_not_invented():
    with pytest.raises(CubeError, match="no georeferencing"):
        georeferenced(np.zeros((4, 4)), "", [np.nan] * 6, "lai", where="triplet 0")


def test_prediction_written_by_rioxarray_has_the_input_georeferencing(tiny_data, tiny_run, tmp_path):
    from lai.georef import prediction_array
    from lai.predict import predict_folder

    _, lnb, cube = tiny_data
    predict_folder(tiny_run, cube, tmp_path / "maps", progress=False)
    with open_cube(cube) as ds:
        name = str(ds["name"].values[5][2])
    da = prediction_array(tmp_path / "maps", name)
    assert da.equals(prediction_array(tmp_path / "maps" / "predictions.nc", 5))
    da.rio.to_raster(tmp_path / "p.tif")
    stem = name.rsplit(".", 1)[0]
    with rasterio.open(tmp_path / "p.tif") as out, rasterio.open(lnb / "s2" / name) as src, \
            rasterio.open(tmp_path / "maps" / f"{stem}.tif") as written:
        assert out.crs == src.crs and out.crs is not None
        out_crs = out.crs
        assert out.transform.almost_equals(src.transform) and (out.height, out.width) == (src.height, src.width)
        np.testing.assert_array_equal(out.read(1), written.read(1))  # the map lai predict wrote itself
    with rasterio.open(tmp_path / "maps" / f"{stem}.tif") as written:
        np.testing.assert_array_equal(prediction_array(tmp_path / "maps", 5, "lai_std").values, written.read(3))
    source = prediction_array(tmp_path / "maps", 5, "source")
    assert set(np.unique(source.values)) <= {0, 1, 255} and source.rio.crs == out_crs
    with pytest.raises(CubeError, match="out of range"):
        prediction_array(tmp_path / "maps", 10_000)
    with pytest.raises(CubeError, match="no such predictions file"):
        prediction_array(tmp_path / "nowhere.nc", 0)


def test_a_rotated_transform_and_an_index_out_of_range_are_refused(tiny_data):
    """x/y coordinates along the grid cannot describe a rotated one; a negative index does not wrap round."""
    _, _, cube = tiny_data
    with pytest.raises(CubeError, match=r"lai: rotated transform \(10\.0, 1\.0, 0\.0, 1\.0, -10\.0, 0\.0\) is not "
                                        r"supported"):
        georeferenced(np.zeros((4, 4)), "EPSG:32633", (10, 1, 0, 1, -10, 0), "lai")
    with pytest.raises(CubeError, match=r"triplet index -1 out of range 0\.\."):
        triplet_array(cube, -1)


def test_maps_of_a_variant_say_which_variant_they_come_from():
    """A variant is trained as row "final" with other settings: its maps name the variant as well as the row."""
    import types

    from lai.config import ModelConfig, TrainConfig
    from lai.facts import variant_of
    from lai.products import MapOrigin

    stage = lambda model, train=None: types.SimpleNamespace(model=model, train=train or TrainConfig())  # noqa: E731
    gated = dict(gated_skip=True, gate_form="mix", skip_base="two_dates")
    assert variant_of(stage(ModelConfig(row="final", **gated, past_context=[1, 2, 4]))) == "final_gated"
    assert variant_of(stage(ModelConfig(row="final", **gated))) == ""  # the variant before c54dbc7 (2026-12-06)
    assert variant_of(stage(ModelConfig(row="final", gated_skip=True, gate_form="mix"))) == ""  # the variant before 2026-12-06
    assert variant_of(stage(ModelConfig(row="final"), TrainConfig(cloudy_weight=3.0))) == "final_cloudy_weight"
    assert variant_of(stage(ModelConfig(row="final", residual=True))) == "final_residual"
    assert variant_of(stage(ModelConfig(row="final"))) == ""  # the paper's final model
    assert variant_of(stage(ModelConfig(row="final", gated_skip=True, gate_form="add"))) == ""  # an earlier lai's form
    assert variant_of(stage(ModelConfig(row="s1_masks_seas", **gated, past_context=[1, 2, 4]))) == ""  # not a final model
    tags = MapOrigin("runs/final_gated/model.pt", "final", "data", True, variant="final_gated").tags()
    assert tags["row"] == "final" and tags["variant"].startswith("final_gated (Final, gated skip: ")
    assert "variant" not in MapOrigin("runs/final/model.pt", "final", "data", True).tags()


def test_maps_say_where_they_come_from_and_follow_cf(tiny_data, tiny_run, tmp_path):
    """Each GeoTIFF names its model, data, dates and whether the data were simulated; predictions.nc carries a CF
    grid mapping (grid_mapping_name) and each map's date as a coordinate that a slice keeps."""
    import xarray as xr

    from lai.predict import predict_folder

    _, lnb, cube = tiny_data
    summary = predict_folder(tiny_run, lnb, tmp_path / "maps", progress=False)
    assert summary["data_origin"].startswith("simulated")
    with open_cube(cube) as ds:
        name, date_t = str(ds["name"].values[5][2]), ds["date"].values[5][2]
    with rasterio.open(tmp_path / "maps" / name.replace(".tiff", ".tif")) as written:
        tags = written.tags()
    with rasterio.open(tmp_path / "maps" / name.replace(".tiff", "_source.tif")) as source:
        assert source.colormap(1)[0] == (253, 174, 97, 255)  # the codes coloured apart (lai.products.SOURCE_COLOURS)
    assert tags["data_origin"].startswith("simulated") and tags["data"] == str(lnb.resolve())
    assert tags["model"].endswith("model.pt") and tags["row"] == "final" and tags["lai_version"]
    assert "variant" not in tags  # the paper's final model, not a variant of it
    assert tags["model_sha256"] == hashlib.sha256(Path(tags["model"]).read_bytes()).hexdigest()  # which model
    assert np.datetime64(tags["date_t"]) == date_t and tags["date_t_minus_2"] < tags["date_t"]
    assert tags["lai_std"].startswith("NOT recalibrated")  # the tiny run has no calibration.json
    assert tags["lai_std_where_observed"].startswith("unknown") and "NaN" in tags["lai_std_where_observed"]
    assert "lai_std_interval_half_width" not in tags  # a Gaussian's reach would read as a measurement
    with xr.open_dataset(tmp_path / "maps" / "predictions.nc", group="grid_001", engine="h5netcdf") as ds:
        assert ds["spatial_ref"].attrs["grid_mapping_name"] == "transverse_mercator"
        first = ds["lai"].isel(map=0)
        assert "time" in first.coords and first["time"].values == ds["time"].values[0]
        first_date = str(first["date_t_minus_2"].values.astype("datetime64[D]"))
    with xr.open_dataset(tmp_path / "maps" / "predictions.nc", engine="h5netcdf") as root:
        assert root.attrs["model_sha256"] == tags["model_sha256"]
        k = int(np.flatnonzero((root["grid"].values == "grid_001") & (root["grid_index"].values == 0))[0])
        name = str(root["name"].values[k])
        assert str(root["date_t_minus_2"].values[k].astype("datetime64[D]")) == first_date
    with rasterio.open(tmp_path / "maps" / name.replace(".tiff", ".tif")) as written:
        assert written.tags()["date_t_minus_2"] == first_date  # the map's own first date, as its GeoTIFF says


def test_predictions_file_reads_whole_as_a_datatree_in_cf_units(tmp_path):
    """Grids of several groups: xarray's DataTree reads the whole file (a group's map dimension is not the root's
    triplet); a CRS in US survey feet names its unit as UDUNITS spells it; a transform without a CRS keeps x/y."""
    import xarray as xr

    from lai.products import PredictionsFile

    maps = np.ones((4, 3), np.float32), np.ones((4, 3), np.float32), np.ones((4, 3), np.uint8)
    with PredictionsFile(tmp_path / "p.nc", 3, {"title_note": "test"}) as nc:
        nc.add("a.tiff", (17000, 16980), *maps, "EPSG:2263", (10.0, 0, 1000.0, 0, -10.0, 2000.0))
        nc.add("b.tiff", (17010, 16990), *maps, "EPSG:2263", (10.0, 0, 1000.0, 0, -10.0, 2000.0))
        nc.add("c.tiff", (17020, 17000), *maps, None, (2.0, 0, 500.0, 0, -2.0, 600.0))
    tree = xr.open_datatree(tmp_path / "p.nc", engine="h5netcdf")
    assert set(tree.children) == {"grid_001", "grid_002"} and tree["grid_001"].ds.sizes["map"] == 2
    feet = tree["grid_001"].ds
    assert feet["x"].attrs["units"] == feet["y"].attrs["units"] == "US_survey_foot"
    assert feet["lai"].attrs["ancillary_variables"] == "source"
    bare = tree["grid_002"].ds
    assert "spatial_ref" not in bare and np.allclose(bare["x"].values, [501.0, 503.0, 505.0])
    assert np.allclose(bare["y"].values, [599.0, 597.0, 595.0, 593.0]) and "units" not in bare["x"].attrs
    tree.close()
