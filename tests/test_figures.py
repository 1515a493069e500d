"""Report figures: what they show, checked on the Figure objects built from small synthetic inputs."""
from __future__ import annotations

import matplotlib.colors
import numpy as np
import pytest

from lai import figures
from lai.facts import ROWS, SET_TITLES, TEST_SETS
from tests.test_report import make_cube, make_histories, make_predictions, make_tables


@pytest.fixture(scope="module")
def cube():
    return make_cube()


def _colorbars(fig):
    return [ax for ax in fig.axes if getattr(ax, "_colorbar", None) is not None]


def _titled(fig):
    return [ax for ax in fig.axes if ax.get_title() and getattr(ax, "_colorbar", None) is None]


def test_learning_curves_show_every_training_stage_in_table1_order():
    fig = figures.learning_curves(make_histories(4))
    loss, rmse = [ax for ax in fig.axes if ax.get_xlabel() == "epoch"]
    titles = [ROWS[r].title for r in ROWS]
    for ax in (loss, rmse):
        assert [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")] == titles
    assert [t.get_text() for t in fig.legends[0].get_texts()] == titles
    assert "6 training stages" in fig.get_suptitle() and "not trained" not in fig.get_suptitle()


def test_learning_curves_name_missing_stages_and_dash_further_seeds():
    histories = make_histories(3)
    del histories["s1"]
    histories["final_seed1"] = histories["final"]
    fig = figures.learning_curves(histories)
    ax = [a for a in fig.axes if a.get_xlabel() == "epoch"][1]
    lines = {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}
    assert len(lines) == 6 and ROWS["s1"].title not in lines
    seed = lines[f"{ROWS['final'].title}, seed 1"]
    assert seed.get_linestyle() == "--" and seed.get_color() == lines[ROWS["final"].title].get_color()
    assert f"not trained (no history): {ROWS['s1'].title}" in fig.get_suptitle()


def test_density_panels_follow_the_tables_and_share_one_labelled_colorbar(cube):
    preds = make_predictions(cube)
    pred, target, mask = figures.prediction_arrays(cube, {k: preds[k] for k in ("cloudy", "unique", "non_cloudy")})
    fig = figures.density(pred, target, mask)
    assert [ax.get_title().split(":")[0] for ax in _titled(fig)] == [SET_TITLES[s] for s in TEST_SETS]
    (bar,) = _colorbars(fig)
    assert bar._colorbar.ax.get_ylabel() == "pixels per bin (log)"
    meshes = [ax.collections[0] for ax in _titled(fig)]
    assert len({(m.norm.vmin, m.norm.vmax) for m in meshes}) == 1  # one colour scale: panels compare by colour
    assert bar._colorbar.norm.vmax == meshes[0].norm.vmax


def test_prediction_maps_take_cases_from_every_test_set_the_cloudy_one_included(cube):
    preds = make_predictions(cube)
    set_of = {int(i): name for name, p in preds.items() for i in p["triplet"].values}
    for n in (3, 4, 6):
        chosen = figures.choose_triplets(preds, n=n)
        assert len(chosen) == n
        sets = [set_of[i] for i in chosen]
        assert set(sets) == set(TEST_SETS) and sets == sorted(sets, key=TEST_SETS.index)  # grouped, tables' order
    assert figures.choose_triplets(preds, n=4, seed=0) == figures.choose_triplets(preds, n=4, seed=0)
    fig = figures.truth_vs_prediction_maps(cube, preds, n=4)
    labels = [ax.get_ylabel() for ax in fig.axes if ": triplet " in ax.get_ylabel()]
    assert len(labels) == 4
    assert sum(label.startswith(f"{SET_TITLES['cloudy']}: ") for label in labels) >= 1
    assert all("clear at t-2, t-1: " in label for label in labels)  # the cube's time labels


def test_prediction_maps_fill_up_from_the_other_sets_when_one_is_short(cube):
    preds = make_predictions(cube)
    preds["cloudy"] = preds["cloudy"].isel(triplet=slice(0, 1))
    chosen = figures.choose_triplets(preds, n=6)
    assert len(chosen) == 6 and int(preds["cloudy"]["triplet"].values[0]) in chosen


def test_figures_read_time_and_pol_labels_from_the_cube(cube):
    relabelled = cube.assign_coords(time=["past2", "past1", "now"], pol=["co", "cross"])
    fig = figures.sample_maps(relabelled, [0])
    text = {ax.get_title() for ax in fig.axes} | {ax.get_ylabel() for ax in fig.axes}
    assert any(t.startswith("past2:") for t in text) and {"co", "cross"} <= text
    fig = figures.cloud_statistics(relabelled)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["past2", "past1", "now"]


def test_error_bars_show_every_interval_and_rows_keep_their_colours():
    """Fig. 6 draws each model's 95 % interval where the tables give one, and colours each Table 1 row as Fig. 5 does."""
    from matplotlib.container import ErrorbarContainer

    tabs = make_tables()
    t1, bl = tabs["table1"].copy(), tabs["baselines"].copy()
    for t in (t1, bl):
        for col in ("rmse", "r2"):
            t[f"{col}_lo"], t[f"{col}_hi"] = t[col] - 0.05, t[col] + 0.05
    t1.loc[0, "rmse_lo"] = np.nan  # one interval missing: no error bar for that bar
    fig = figures.error_by_set(t1, bl, r2_floor=-10)
    rmse_ax, r2_ax = fig.axes[:2]
    bars = {ax: [c for c in ax.containers if isinstance(c, ErrorbarContainer)] for ax in (rmse_ax, r2_ax)}
    for ax, col in ((rmse_ax, "rmse"), (r2_ax, "r2")):
        finite = sum(int(np.isfinite(t[[col, f"{col}_lo", f"{col}_hi"]].to_numpy(float)).all(axis=1).sum()) for t in (t1, bl))
        assert len(bars[ax]) == finite and finite >= len(t1) + len(bl) - 4
        # each bar spans its row's interval: from lo to hi
        drawn = sorted(tuple(np.round([seg[0][1], seg[1][1]], 6)) for c in bars[ax] for seg in c.lines[2][0].get_segments())
        given = sorted(tuple(np.round(v[1:], 6)) for t in (t1, bl) for v in t[[col, f"{col}_lo", f"{col}_hi"]].to_numpy(float)
                       if np.isfinite(v).all())
        assert drawn == given
    colours = {h.get_label(): h.get_facecolor() for h in fig.legends[0].legend_handles}
    fig5 = figures.table1_comparison(t1)
    dots = {h.get_label(): h.get_color() for h in fig5.legends[0].legend_handles}
    shared = set(colours) & set(dots)
    assert len(shared) == t1["row"].nunique()
    assert all(np.allclose(colours[m][:3], matplotlib.colors.to_rgb(dots[m])) for m in shared)
