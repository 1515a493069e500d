"""Benchmark helpers that feed lai its inputs keep up with lai (the benchmarks themselves are run by hand; one
wrote a manifest form lai no longer reads and failed unseen). No timing here: figures live in benchmarks/."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _benchmark(name: str):
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_scene_memory_writes_a_scene_lai_predicts(tmp_path, capsys):
    scene_memory = _benchmark("scene_memory")
    manifest = scene_memory.write_scene(tmp_path, 96)
    scene_memory.child(str(manifest), 64, 16)  # what each measured process runs, on a small scene
    measured = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert measured["peak_mib"] >= measured["before_mib"] > 0 and measured["seconds"] > 0


def test_test_time_augmentation_averages_over_what_training_draws():
    """The symmetries the benchmark averages over (lai.augment.drawn_symmetries) are exactly those lai.augment draws
    for the tile's shape, and each prediction goes back to the tile's order."""
    from lai.augment import augment, drawn_symmetries, symmetry_orders

    tta = _benchmark("test_time_augmentation")
    assert tta.drawn_symmetries is drawn_symmetries
    for height, width in ((5, 5), (4, 6)):
        orders = symmetry_orders(height, width)
        picked = drawn_symmetries(height, width)
        assert len(picked) == (8 if height == width else 4)
        x = torch.arange(height * width, dtype=torch.float32).reshape(1, height, width).expand(200, -1, -1)
        drawn = augment({"lai": x}, torch.Generator().manual_seed(0))["lai"].flatten(-2)
        found = {next(i for i in range(8) if torch.equal(sample, x[0].flatten()[orders[i]])) for sample in drawn}
        assert found == set(picked)
        for i in picked:
            assert torch.equal(x[0].flatten()[orders[i]][orders[i].argsort()], x[0].flatten())


def test_data_scaling_plot_draws_one_run_and_refuses_two(tmp_path):
    """The learning-curve figure draws the committed data-scaling JSONs of one run, and refuses JSONs of two
    cubes (their test sets differ, so their points do not compare)."""
    plot = _benchmark("plot_data_scaling")
    results = BENCHMARKS / "results"
    jsons = [results / "data-scaling-standard-2026-12-05.json", results / "data-scaling-standard-subset-seed1-2026-12-05.json"]
    out = plot.plot(plot.load(jsons), tmp_path / "curve.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    other = json.loads(jsons[1].read_text()) | {"cube": "/elsewhere/cube.nc"}
    (tmp_path / "other.json").write_text(json.dumps(other))
    with pytest.raises(SystemExit, match="different cubes"):
        plot.load([jsons[0], tmp_path / "other.json"])
