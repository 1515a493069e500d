"""Simulate -> read -> cube -> sample: the cube holds exactly the TIFF contents; splits and atomicity."""
import numpy as np
import pandas as pd
import pytest

from lai.config import SplitConfig
from lai.cube import CubeError, build_cube, check_cube_file, open_cube
from lai.lnb import index_folder, read_triplet
from lai.loader import BatchLoader, CubeSplit


def test_round_trip_equals_tiffs(tiny_data):
    profile, lnb, cube = tiny_data
    ds = open_cube(cube)
    index = index_folder(lnb, progress=False)
    assert ds.sizes["triplet"] == len(index.triplets) == 120
    for k in (0, 37, len(index.triplets) - 1):
        trip = index.triplets[k]
        tiff = read_triplet(lnb, trip, with_truth=True)
        assert list(ds["name"].values[k]) == list(trip.names)
        np.testing.assert_array_equal(ds["s1"].values[k], tiff.s1)
        np.testing.assert_array_equal(ds["lai"].values[k], tiff.lai)
        np.testing.assert_array_equal(ds["scl"].values[k], tiff.scl)
        np.testing.assert_array_equal(ds["lai_true"].values[k], tiff.truth)
        assert ds["lai_true"].dims == ("triplet", "time", "y", "x")
        sample = CubeSplit(cube).read(np.array([k]))
        np.testing.assert_array_equal(sample["truth"][0], tiff.truth[2])  # models are scored against the truth at t
        np.testing.assert_array_equal(sample["s1"][0], tiff.s1)
        assert str(ds["date"].values[k, 0])[:10] == trip.target.date_from.isoformat()
        assert str(ds["date"].values[k, 2])[:10] == trip.target.date_to.isoformat()
    assert ds["date"].values[0, 0] < ds["date"].values[0, 1] < ds["date"].values[0, 2]
    assert list(ds["date_estimated"].values) == [0, 1, 0]
    assert ((ds["clear_fraction"] >= 0) & (ds["clear_fraction"] <= 1)).all()


def test_splits_held_out_areas_and_no_neighbour_leakage(tiny_data):
    profile, _, cube = tiny_data
    ds = open_cube(cube)
    split = ds["split"].values
    region = np.char.add(np.char.add(ds["country"].values.astype(str), "_"), ds["area"].values.astype(str))
    assert set(region[split == "unique"]) == set(profile.splits.held_out_areas)
    assert not set(region[split != "unique"]) & set(profile.splits.held_out_areas)
    # with block sampling, no tile position of a test set also trains (at any date)
    pos = lambda mask: {(r, a, b) for r, a, b in zip(region[mask], ds["grid_row"].values[mask], ds["grid_col"].values[mask])}  # noqa: E731
    train_pos = pos(split == "train")
    for name in ("non_cloudy", "cloudy", "val", "buffer"):
        assert not pos(split == name) & train_pos, name
    # nor has any test tile a training or validation tile among its 8 neighbours (lai.splits' promise, on the cube)
    import pandas as pd

    from lai.splits import neighbour_leaks

    meta = pd.DataFrame({"country": ds["country"].values.astype(str), "area": ds["area"].values.astype(str),
                         "grid_row": ds["grid_row"].values, "grid_col": ds["grid_col"].values})
    assert np.isin(split, ["non_cloudy", "cloudy"]).sum() >= 10 and np.isin(split, ["train", "val"]).sum() >= 10
    assert neighbour_leaks(meta, split).empty
    assert ds.attrs["splits_config"]


def test_split_assignment_is_reproducible_and_thresholds_hold(tiny_data):
    import pandas as pd

    from lai.splits import assign_splits

    profile, _, cube = tiny_data
    ds = open_cube(cube)
    cf, cl = ds["clear_fraction"].values, ds["cloud_fraction"].values
    meta = pd.DataFrame({"country": ds["country"].values.astype(str), "area": ds["area"].values.astype(str),
                         "grid_row": ds["grid_row"].values, "grid_col": ds["grid_col"].values,
                         **{f"clear_t{i}": cf[:, i] for i in range(3)}, **{f"cloud_t{i}": cl[:, i] for i in range(3)}})
    a = assign_splits(meta, profile.splits)
    np.testing.assert_array_equal(a, ds["split"].values)
    nc, c = a == "non_cloudy", a == "cloudy"
    assert (cf[nc, :2].mean(1) >= profile.splits.clear_past_threshold).all()
    assert (cl[c, :2].mean(1) >= profile.splits.cloudy_past_threshold).all()
    other = assign_splits(meta, SplitConfig(**{**profile.splits.__dict__, "seed": 1}))
    assert (other != a).any()
    rnd = assign_splits(meta, SplitConfig(**{**profile.splits.__dict__, "sampling": "random"}))
    assert set(rnd) <= {"train", "val", "non_cloudy", "cloudy", "unique", "buffer"}


def test_loader_batches_and_residency(tiny_data):
    _, _, cube = tiny_data
    split = CubeSplit(cube, "train")
    streamed = list(BatchLoader(split, 8, shuffle=False, resident="off"))
    resident = list(BatchLoader(split, 8, shuffle=False, resident="on"))
    assert sum(b["s1"].shape[0] for b in streamed) == len(split)
    for a, b in zip(streamed, resident):
        for key in a:
            assert np.array_equal(a[key].numpy(), b[key].numpy(), equal_nan=True)
    assert streamed[0]["s1"].shape[1:3] == (3, 2) and streamed[0]["doy_target"].shape == (8,)
    with open_cube(cube) as ds:  # the days of year of t and of t-2 (t-1's date is estimated, never read)
        dates = ds["date"].values[split.index[:8]]
    doy = lambda d: pd.DatetimeIndex(d).dayofyear  # noqa: E731
    assert streamed[0]["doy_target"].tolist() == doy(dates[:, 2]).tolist()
    assert streamed[0]["doy_from"].tolist() == doy(dates[:, 0]).tolist() != doy(dates[:, 1]).tolist()


def test_the_loader_reads_a_cube_whose_rows_carry_a_filter_and_counts_its_bytes(tiny_data, tmp_path):
    """A cube repacked with HDF5's shuffle filter (h5repack -f SHUF) came out of the fast reader as garbage; and the
    split's size counted three true-LAI frames where the loader keeps t's only."""
    import shutil

    import h5py

    _, _, cube = tiny_data
    shuffled = tmp_path / "shuffled.nc"
    shutil.copy(cube, shuffled)
    with h5py.File(shuffled, "r+") as f:
        values, attrs = f["lai"][:], dict(f["lai"].attrs)
        dims = [d[0] for d in f["lai"].dims] if all(len(d) for d in f["lai"].dims) else []
        del f["lai"]
        ds = f.create_dataset("lai", data=values, chunks=(1, *values.shape[1:]), shuffle=True)
        for k, v in attrs.items():
            if k not in ("DIMENSION_LIST",):
                ds.attrs[k] = v
        for axis, scale in enumerate(dims):
            ds.dims[axis].attach_scale(scale)
    rows = np.array([3, 0, 5])
    np.testing.assert_array_equal(CubeSplit(shuffled).read(rows)["lai"], CubeSplit(cube).read(rows)["lai"])
    split = CubeSplit(cube, "train")
    batch = split.read(np.arange(len(split)))
    assert split.nbytes() == sum(v.nbytes for k, v in batch.items() if k not in ("doy_target", "doy_from"))


def test_existing_cube_reused_or_refused(tiny_data, tmp_path):
    profile, lnb, cube = tiny_data
    again = build_cube(lnb, cube, profile.splits, profile.encoding, progress=False)
    assert again.reused
    with pytest.raises(FileExistsError, match="already exists"):
        build_cube(lnb, cube, SplitConfig(seed=5), profile.encoding, progress=False)


def test_a_cube_is_not_reused_once_a_tile_it_was_built_from_is_rewritten(lnb, tmp_path):
    """The same CSV, a tile rewritten with other values of the same size (float32 tiles always are): the cube is
    built again, not reused with the old values."""
    import os

    import rasterio

    from lai.lnb import S2_DIR

    first = build_cube(lnb, tmp_path / "cube.nc", progress=False)
    assert not first.reused and build_cube(lnb, tmp_path / "cube.nc", progress=False).reused
    tile = sorted((lnb / S2_DIR).iterdir())[0]
    with rasterio.open(tile, "r+") as dst:
        dst.write(dst.read() + 0.5)
    size = tile.stat().st_size
    os.utime(tile, ns=(tile.stat().st_atime_ns, tile.stat().st_mtime_ns + 10**9))
    assert tile.stat().st_size == size
    again = build_cube(lnb, tmp_path / "cube.nc", progress=False, overwrite=True)
    assert not again.reused and again.fingerprint != first.fingerprint


def test_a_cube_is_not_reused_once_a_gdal_sidecar_changes_what_a_tile_reads_as(lnb, tmp_path):
    """A ``.aux.xml`` written beside a tile after the cube was built names its S1 bands VH, VV: GDAL reads that, so
    the folder now reads as other data and the cube is built again (with the bands swapped), not reused."""
    import xarray as xr

    from lai.lnb import S1_DIR

    first = build_cube(lnb, tmp_path / "cube.nc", progress=False)
    with xr.open_dataset(tmp_path / "cube.nc") as cube:
        before = cube["s1"].transpose("triplet", "time", "pol", ...).values
    tile = sorted((lnb / S1_DIR).iterdir())[0]
    (lnb / S1_DIR / f"{tile.name}.aux.xml").write_text(
        '<PAMDataset><PAMRasterBand band="1"><Description>VH</Description></PAMRasterBand>'
        '<PAMRasterBand band="2"><Description>VV</Description></PAMRasterBand></PAMDataset>')
    again = build_cube(lnb, tmp_path / "cube.nc", progress=False, overwrite=True)
    assert not again.reused and again.fingerprint != first.fingerprint
    with xr.open_dataset(tmp_path / "cube.nc") as cube:
        after = cube["s1"].transpose("triplet", "time", "pol", ...).values
    changed = ~np.all(np.isclose(before, after, equal_nan=True), axis=(2, 3, 4))  # (triplet, time)
    assert changed.any()
    np.testing.assert_array_equal(after[changed][:, ::-1], before[changed])  # that tile's bands swapped, nothing else


def test_an_image_series_csv_that_is_a_fifo_is_refused_not_read(lnb, tmp_path):
    """The cube's reuse key hashed the CSV before any check: a FIFO there blocked ``lai cube`` for ever."""
    import os

    from lai.errors import LNBError
    from lai.lnb import SERIES_CSV

    (lnb / SERIES_CSV).unlink()
    os.mkfifo(lnb / SERIES_CSV)
    with pytest.raises(LNBError, match=r"image_series\.csv: is not a regular file \(a folder, FIFO or device\?\); "
                                       r"expected a CSV"):
        build_cube(lnb, tmp_path / "cube.nc", progress=False)


def test_cube_schema_checks(tmp_path, tiny_data):
    import h5py

    bad = tmp_path / "other.nc"
    with h5py.File(bad, "w") as f:
        f.attrs["schema"] = "lai-cube"
        f.attrs["schema_version"] = 0
    with pytest.raises(CubeError, match="schema version 0"):
        check_cube_file(bad)
    (tmp_path / "junk.nc").write_bytes(b"not hdf5")
    with pytest.raises(CubeError, match="not a readable cube"):
        open_cube(tmp_path / "junk.nc")
    with pytest.raises(CubeError, match="does not exist"):
        open_cube(tmp_path / "absent.nc")


def _edited(cube, out, edit):
    """A copy of ``cube`` at ``out`` changed by ``edit(h5py.File)``."""
    import shutil

    import h5py

    shutil.copy(cube, out)
    with h5py.File(out, "a") as f:
        edit(f)
    return out


def _replace(name, value):
    def edit(f):
        del f[name]
        f[name] = value
    return edit


@pytest.mark.parametrize("edit, message", [
    (lambda f: f.attrs.__setitem__("schema_version", "abc"), r"written by cube schema version abc; this lai reads version 2"),
    (lambda f: _replace("clear_fraction", np.zeros(f["lai"].shape[0], np.float32))(f),
     r"not a consistent cube: variable clear_fraction has shape \(\d+,\); expected 2 dimension\(s\): \d+ triplets, 3 dates"),
    (lambda f: (f.__delitem__("split"), f.create_dataset("split", shape=(300_000_000,), dtype="S8", chunks=(1_000_000,))),
     r"not a consistent cube: variable split has shape \(300000000,\); expected 1 dimension\(s\)"),  # unallocated: a small file
    (lambda f: _replace("s1", np.zeros((f["lai"].shape[0], 3, 3, *f["lai"].shape[-2:]), np.float32))(f),
     r"not a consistent cube: variable s1 has shape \(\d+, 3, 3, 32, 32\); expected 2 polarisations \(VV, VH\)"),
    (lambda f: _replace("lai", np.zeros((f["lai"].shape[0], 3, 16, 16), np.float32))(f),
     r"not a consistent cube: variable s1 has shape \(\d+, 3, 2, 32, 32\); expected tiles of 16x16 pixels, as lai's"),
])
def test_a_cube_of_inconsistent_attributes_or_shapes_is_refused(tiny_data, tmp_path, edit, message):
    """Edited cubes: a CubeError naming the cube from every reader (not a ValueError, IndexError or xarray's)."""
    cube = _edited(tiny_data[2], tmp_path / "edited.nc", edit)
    with pytest.raises(CubeError, match=rf"edited\.nc: {message}.*lai cube"):
        open_cube(cube)


def test_reused_cube_with_an_attribute_not_json_is_refused(tiny_data, tmp_path):
    profile, lnb, cube = tiny_data
    bad = _edited(cube, tmp_path / "fixes.nc", lambda f: f.attrs.__setitem__("pixel_fixes", "{not json"))
    with pytest.raises(CubeError, match=r"fixes\.nc: attribute pixel_fixes is '\{not json', not the JSON dict lai writes"):
        build_cube(lnb, bad, profile.splits, profile.encoding, progress=False)  # the same source and settings: reused


def test_a_variable_lai_did_not_write_opens_without_warnings(tiny_data, tmp_path):
    """A variable without dimension names (written with h5py): no xarray phony_dims warning before lai's message."""
    import warnings

    cube = tiny_data[2]
    relabelled = _edited(cube, tmp_path / "labels.nc", lambda f: _replace("split", np.full(f["lai"].shape[0], 99))(f))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # xarray's phony_dims warning on a variable without dimension names
        assert set(open_cube(relabelled)["split"].values.tolist()) == {99}


def test_a_split_label_lai_does_not_write_gets_its_row_in_lai_info(tiny_data, tmp_path):
    """``trian`` (an edited cube) was left out of `lai info`'s table without a word."""
    from lai.cube import describe

    def mislabel(f):
        labels = f["split"][:].astype(str)
        labels[labels == "train"] = "trian"
        _replace("split", labels.astype("S16"))(f)

    cube = _edited(tiny_data[2], tmp_path / "labels.nc", mislabel)
    with open_cube(tiny_data[2]) as ds:
        before = describe(ds)
    with open_cube(cube) as ds:
        table = describe(ds)
    assert list(table.index) == [i for i in before.index if i != "train"] + ["trian"]
    assert table.loc["trian", "triplets"] == before.loc["train", "triplets"]


def test_interrupted_build_leaves_no_cube(tiny_data, tmp_path, monkeypatch):
    import lai.lnb as lnb_mod

    profile, lnb, _ = tiny_data
    calls = {"n": 0}
    real = lnb_mod.read_triplet

    def failing(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(lnb_mod, "read_triplet", failing)
    out = tmp_path / "cube.nc"
    with pytest.raises(KeyboardInterrupt):
        build_cube(lnb, out, profile.splits, profile.encoding, progress=False)
    assert not out.exists()
    assert not list(tmp_path.glob(".cube.nc.partial-*"))


def test_float16_cube_halves_the_floats_within_the_stated_precision(tiny_data, tmp_path):
    import h5py

    profile, lnb, exact = tiny_data
    half = tmp_path / "half.nc"
    build_cube(lnb, half, profile.splits, profile.encoding, progress=False, cube_float="float16")
    with h5py.File(exact, "r") as a, h5py.File(half, "r") as b:
        assert [b[v].dtype for v in ("s1", "lai", "lai_true", "scl")] == [np.float16] * 3 + [np.uint8]
        for v, bound, worst in (("s1", 32, 2**-7), ("lai", 8, 2**-9), ("lai_true", 8, 2**-9)):  # half a float16 step
            x, y = a[v][:], b[v][:].astype(np.float32)
            np.testing.assert_array_equal(np.isnan(x), np.isnan(y))
            inside = np.abs(np.nan_to_num(x)) < bound
            assert inside.mean() > 0.99, v
            np.testing.assert_allclose(y[inside], x[inside], rtol=0, atol=worst)
            np.testing.assert_allclose(y, x, rtol=2**-11, atol=2**-25)  # anywhere: half a step (subnormals: absolute)
            assert 0 < np.nanmax(np.abs(y - x)), v  # rounded indeed
        np.testing.assert_array_equal(a["split"][:], b["split"][:])
        assert b.attrs["float_dtype"] == "float16" and b.attrs["fingerprint"] != a.attrs["fingerprint"]
    sample = CubeSplit(half).read(np.array([3, 0]))  # decoded for the models
    assert sample["s1"].dtype == sample["lai"].dtype == sample["truth"].dtype == np.float32
    np.testing.assert_array_equal(sample["lai"][1], np.asarray(open_cube(half)["lai"].values[0], np.float32))
    assert half.stat().st_size < 0.6 * exact.stat().st_size
    from lai.georef import triplet_array

    assert triplet_array(half, 0, "s1").dtype == np.float32  # GeoTIFF-ready
    with pytest.raises(FileExistsError, match="overwrite"):  # a float32 build does not reuse it
        build_cube(lnb, half, profile.splits, profile.encoding, progress=False)


def test_time_and_pol_carry_their_labels(lnb, tmp_path):
    import xarray as xr

    from lai.facts import POLARISATIONS, TIME_LABELS

    cube = tmp_path / "cube.nc"
    build_cube(lnb, cube, SplitConfig(held_out_areas=[]), progress=False)
    with xr.open_dataset(cube, engine="h5netcdf") as plain:  # labels without lai's help
        assert list(plain["time"].values) == ["t-2", "t-1", "t"] == list(TIME_LABELS)
        assert list(plain["pol"].values) == ["VV", "VH"] == list(POLARISATIONS)
    ds = open_cube(cube)
    assert ds["s1"].sel(time="t-1", pol="VH").shape == (ds.sizes["triplet"], ds.sizes["y"], ds.sizes["x"])
    np.testing.assert_array_equal(ds["lai"].sel(time="t").values, ds["lai"].values[:, 2])
    np.testing.assert_array_equal(CubeSplit(cube).read(np.array([0]))["s1"][0], ds["s1"].values[0])


def test_a_cube_of_an_older_schema_is_replaced_not_reused(tmp_path):
    """A version-1 cube (true LAI at t only) at the output is lai's own: refused by readers with its version,
    rebuilt with overwrite, never reused even when built from the same folder with the same settings."""
    import h5py

    from tests.helpers import make_lnb

    lnb = make_lnb(tmp_path / "lnb", n_triplets=3, truth=True)
    out = tmp_path / "cube.nc"
    build_cube(lnb, out, SplitConfig(block_size=1), progress=False)
    with h5py.File(out, "a") as f:
        f.attrs["schema_version"] = 1
    with pytest.raises(CubeError, match="schema version 1; this lai reads version 2"):
        open_cube(out)
    with pytest.raises(FileExistsError, match="already exists"):
        build_cube(lnb, out, SplitConfig(block_size=1), progress=False)
    summary = build_cube(lnb, out, SplitConfig(block_size=1), progress=False, overwrite=True)
    assert not summary.reused and summary.has_truth and open_cube(out)["lai_true"].shape[:2] == (3, 3)


def test_a_cube_whose_triplet_names_would_fill_memory_is_refused_before_they_are_read(tmp_path, tiny_data):
    """An 8 kB cube declaring 50 million triplets of 200-byte names (consistent shapes, nothing stored): its names
    were read at once (28 GiB asked, a MemoryError traceback). Their size is checked first."""
    import h5py

    n = 2_000_000  # names of 1.2 GB
    cube = tmp_path / "huge_names.nc"
    with h5py.File(tiny_data[2], "r") as src, h5py.File(cube, "w") as f:
        f.attrs.update(dict(src.attrs))
        for name, shape in {"s1": (n, 3, 2, 1, 1), "lai": (n, 3, 1, 1), "scl": (n, 3, 1, 1), "split": (n,),
                            "date": (n, 3)}.items():
            f.create_dataset(name, shape=shape, dtype=np.float32 if name != "split" else "S8", chunks=True)
        f.create_dataset("name", shape=(n, 3), dtype="S200", chunks=(65536, 3))
    assert cube.stat().st_size < 1_000_000
    with pytest.raises(CubeError, match=r"huge_names\.nc: not a consistent cube: its 6,000,000 triplet names take about "
                                        r"1,144 MiB, more than the 256 MiB of any cube lai writes"):
        check_cube_file(cube)


def test_a_split_reads_its_own_triplets(tiny_data):
    """Position k of a split is the k-th triplet labelled with it in the cube (never the cube's k-th triplet, which
    may be a test triplet), for one split and for several."""
    _, _, cube = tiny_data
    with open_cube(cube) as ds:
        labels, lai, scl = ds["split"].values.astype(str), ds["lai"].values, ds["scl"].values
    for wanted in ("val", ["non_cloudy", "cloudy"]):
        rows = np.flatnonzero(np.isin(labels, wanted))
        assert 0 < len(rows) and rows[0] > 0  # the split's rows are not the cube's first rows
        split = CubeSplit(cube, wanted)
        got = split.read(np.arange(len(split)))
        np.testing.assert_array_equal(got["lai"], lai[rows])
        np.testing.assert_array_equal(got["scl"], scl[rows])
        streamed = np.concatenate([b["lai"].numpy() for b in BatchLoader(split, 4, resident="off")])
        np.testing.assert_array_equal(streamed, lai[rows])


def test_a_split_has_a_target_only_where_a_pixel_is_clear_at_t(tiny_data, tmp_path):
    """All of t clouded, t-2 and t-1 clear: nothing to score (the past dates do not count); one clear pixel at t of
    one triplet: something to score."""
    import shutil

    import h5py

    _, _, cube = tiny_data
    copy = tmp_path / "cube.nc"
    shutil.copy(cube, copy)
    with h5py.File(copy, "r+") as f:
        scl = f["scl"][:]
        scl[:, :2], scl[:, 2] = 4, 9
        f["scl"][:] = scl
    assert not CubeSplit(copy, "val").has_target([2, 3, 4, 5, 6])
    val_rows = CubeSplit(copy, "val").index
    with h5py.File(copy, "r+") as f:
        scl[val_rows[-1], 2, 3, 3] = 5
        f["scl"][:] = scl
    assert CubeSplit(copy, "val").has_target([2, 3, 4, 5, 6], block=2)
    assert not CubeSplit(copy, "val").has_target([4])


def test_training_batches_are_the_split_in_the_order_its_generator_shuffles(tiny_data):
    """shuffle: the samples in torch.randperm's order of the loader's generator (so a checkpoint's generator state
    replays it), each at most once, the last partial batch dropped with drop_last; without shuffle, in cube order."""
    import torch

    _, _, cube = tiny_data
    split = CubeSplit(cube, "train")
    lai = split.read(np.arange(len(split)))["lai"]
    for resident in ("off", "on"):
        loader = BatchLoader(split, 8, shuffle=True, resident=resident, generator=torch.Generator().manual_seed(3),
                             drop_last=True)
        got = np.concatenate([b["lai"].numpy() for b in loader])
        order = torch.randperm(len(split), generator=torch.Generator().manual_seed(3)).numpy()
        assert len(got) == len(split) // 8 * 8 and (order[:len(got)] != np.arange(len(got))).any()
        np.testing.assert_array_equal(got, lai[order[:len(got)]])
    plain = np.concatenate([b["lai"].numpy() for b in BatchLoader(split, 8, resident="off")])
    np.testing.assert_array_equal(plain, lai)
