"""Benchmark helpers that feed lai its inputs keep up with lai (the benchmarks themselves are run by hand; one
wrote a manifest form lai no longer reads and failed unseen). No timing here: figures live in benchmarks/."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

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


def test_test_time_augmentation_uses_trainings_symmetries():
    """Each symmetry the benchmark averages over is one that training draws (lai.augment's pixel orders), and
    turning back undoes it."""
    from lai.augment import symmetry_orders

    tta = _benchmark("test_time_augmentation")
    tta.check_inverse()
    for height, width in ((5, 5), (4, 6)):
        x = torch.arange(2 * height * width, dtype=torch.float32).reshape(2, height, width)
        orders = symmetry_orders(height, width)
        found = tta.symmetries(height, width)
        assert len(found) == (8 if height == width else 4)
        for turns, flip in found:
            moved = tta.turned(x, turns, flip)
            assert torch.equal(moved.flatten(-2), x.flatten(-2)[:, orders[2 * turns + int(flip)]])
