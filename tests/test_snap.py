"""SNAP biophysical LAI network on the real Sentinel-2 L2A patches that bigearthnet-common ships."""
from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from lai.snap import (
    BUILTIN,
    FLAGS,
    VALID_RANGE,
    Angles,
    check_reflectance,
    flag_counts,
    read_auxdata,
    snap_lai,
    snap_product,
    threshold_output,
)
from tests.helpers import write_snap_auxdata

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def patches(tmp_path_factory):
    """(name, LAI, NDVI, B08 reflectance) of every patch not on the package's seasonal-snow list (SNAP LAI is undefined
    on snow; the winter Finnish patch is listed there): read as benchmarks/snap_patches.py reads them."""
    spec = importlib.util.spec_from_file_location("benchmark_snap_patches", BENCHMARKS / "snap_patches.py")
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    arrays = benchmark.patch_arrays(tmp_path_factory.mktemp("ben"))
    out = [(name, lai, ndvi, nir) for name, lai, ndvi, nir, snowy in arrays if not snowy]
    assert len(out) >= 5 and len(arrays) - len(out) <= 1
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
    with pytest.raises(ValueError, match="relative_azimuth must be a finite number"):
        snap_lai(np.zeros((8, 4, 4)), Angles(5, 45, float("nan")))


# --------------------------------------------------------------------------- SNAP 3_0 from an auxdata folder


def test_auxdata_folder_gives_the_same_network_and_snaps_domain_flags(tmp_path):
    """A folder in SNAP's layout holding the built-in numbers computes the built-in LAI; SNAP's domain rule flags a
    band beyond its bounds and a pixel whose grid cell is not listed; the values themselves are kept."""
    rng = np.random.default_rng(0)
    refl = rng.uniform(0.02, 0.25, (8, 6, 6))
    refl[:, 0, 0] = [0.05, 0.04, 0.08, 0.3, 0.4, 0.45, 0.2, 0.1]
    lo, hi = BUILTIN.normalisation[:8, 0], BUILTIN.normalisation[:8, 1]
    cell = np.floor(10 * (refl[:, 0, 0] - lo) / (hi - lo) + 1)
    refl[:, 0, 1] = refl[:, 0, 0]
    refl[0, 0, 1] = hi[0] + 0.01  # B03 beyond the domain's maximum
    write_snap_auxdata(tmp_path / "aux", BUILTIN, grid=cell[None])  # only pixel (0, 0)'s cell is inside
    net = read_auxdata(tmp_path / "aux", "S2B")
    assert net.name.startswith("SNAP 3_0 S2B")
    angles = Angles(5, 40, 60)
    np.testing.assert_allclose(snap_lai(refl, angles, net), snap_lai(refl, angles), rtol=1e-6)
    lai, flags = snap_product(refl, angles, net)
    out_of_range = (flags & 1).astype(bool)
    assert not out_of_range[0, 0] and out_of_range[0, 1] and out_of_range.sum() == 35
    assert flag_counts(flags)["input_out_of_range"] == 35
    assert not (snap_product(refl, angles)[1] & 1).any()  # the built-in network carries no domain: not checked


def test_output_thresholds_and_flags_follow_snap():
    """Within 0.2 below 0 or above 8: set to the bound and flagged; beyond: kept and flagged too low / too high."""
    def constant(lai_value):  # a network whose output is lai_value everywhere
        low, high = BUILTIN.denormalisation
        return dataclasses.replace(BUILTIN, w2=np.zeros(5), b2=2 * (lai_value - low) / (high - low) - 1)

    refl = np.full((8, 1, 1), 0.1)
    expected = {-0.1: (0.0, "output_thresholded_to_min"), 8.1: (8.0, "output_thresholded_to_max"),
                -0.5: (-0.5, "output_too_low"), 9.0: (9.0, "output_too_high"), 4.0: (4.0, None)}
    for value, (out, flag) in expected.items():
        lai, flags = snap_product(refl, Angles(5, 40, 60), constant(value))
        assert lai.item() == pytest.approx(out, abs=1e-5)
        assert flags.item() == (0 if flag is None else 1 << FLAGS.index(flag))
    # at the boundaries, the processor's strict inequalities (BiophysicalAlgo.processOutputOutOfRange): a value
    # exactly at a bound, or exactly one tolerance beyond it, is kept and not flagged
    values = np.array([-0.2, 0.0, 8.0, 8.2, -0.2000001, 8.2000001])
    lai, flags = threshold_output(values, (0.2, 0.0, 8.0))
    np.testing.assert_array_equal(lai, values.astype(np.float32))
    assert flags.tolist() == [0, 0, 0, 0, 1 << FLAGS.index("output_too_low"), 1 << FLAGS.index("output_too_high")]


def test_auxdata_errors_name_the_file_and_the_platform(tmp_path):
    with pytest.raises(FileNotFoundError, match="no SNAP auxdata folder 3_0/"):
        read_auxdata(tmp_path, "S2A")
    write_snap_auxdata(tmp_path / "aux", BUILTIN)
    with pytest.raises(FileNotFoundError, match="no LAI network for S2C .*built-in 2_1"):
        read_auxdata(tmp_path / "aux", "S2C")
    nested = tmp_path / "snap" / "s2tbx" / "biophysical"  # SNAP's own ~/.snap/auxdata layout
    write_snap_auxdata(nested, BUILTIN, platforms=("S2A",))
    assert read_auxdata(tmp_path / "snap", "S2A").w1.shape == (5, 11)
    (tmp_path / "aux" / "3_0" / "S2A" / "LAI" / "LAI_Weights_Layer1_Bias").write_text("1,2,3\n")
    with pytest.raises(ValueError, match=r"LAI_Weights_Layer1_Bias: expected a table of 1 x 5 finite numbers"):
        read_auxdata(tmp_path / "aux", "S2A")
    (tmp_path / "aux" / "3_0" / "S2B" / "LAI" / "LAI_Normalisation").unlink()
    with pytest.raises(FileNotFoundError, match=r"LAI_Normalisation: missing"):
        read_auxdata(tmp_path / "aux", "S2B")


def test_angles_in_radians_and_reflectance_in_digital_numbers_are_refused():
    with pytest.raises(ValueError, match="sun_zenith .* looks like radians or a cosine"):
        Angles(0.09, 0.61, 1.2).check()
    with pytest.raises(ValueError, match="view_zenith must lie in"):
        Angles(35, 40, 90).check()
    dn = np.full((8, 4, 4), 1200.0)
    with pytest.raises(ValueError, match="look like digital numbers; give --reflectance-scale 1e-4"):
        check_reflectance(dn, 1.0, "b03.tif")
    with pytest.raises(ValueError, match="look like reflectance already in 0-1; give --reflectance-scale 1"):
        check_reflectance(dn * 1e-4 * 1e-4, 1e-4, "b03.tif")
    check_reflectance(dn * 1e-4, 1e-4, "b03.tif")


def test_the_network_reads_its_inputs_in_the_order_of_snaps_atbd():
    """SNAP's LAI network (S2ToolBox ATBD, Weiss and Baret): inputs B3, B4, B5, B6, B7, B8A, B11, B12 reflectance, then
    the cosines of the view zenith, sun zenith and relative azimuth angles, each scaled to [-1, 1] by its
    normalisation bounds; 5 tanh neurons; a linear output scaled back from [-1, 1]. Written out here apart from lai's
    code, with the built-in 2_1 numbers: a band or angle out of place, or an angle dropped, fails."""
    from lai.snap import BANDS

    assert BANDS == ("B03", "B04", "B05", "B06", "B07", "B8A", "B11", "B12")
    rng = np.random.default_rng(3)
    refl = rng.uniform(0.02, 0.45, (8, 6))
    view, sun, azimuth = 6.0, 38.0, 115.0
    net = BUILTIN
    expected = []
    for pixel in refl.T:
        x = [*pixel, np.cos(np.radians(view)), np.cos(np.radians(sun)), np.cos(np.radians(azimuth))]
        scaled = [2 * (v - lo) / (hi - lo) - 1 for v, (lo, hi) in zip(x, net.normalisation)]
        hidden = [np.tanh(sum(w * s for w, s in zip(weights, scaled)) + b) for weights, b in zip(net.w1, net.b1)]
        out = sum(w * h for w, h in zip(net.w2, hidden)) + net.b2
        low, high = net.denormalisation
        expected.append(0.5 * (out + 1) * (high - low) + low)
    np.testing.assert_allclose(snap_lai(refl, Angles(view, sun, azimuth)), expected, rtol=1e-5)
