"""The gpu profile's whole run (every notebook, the report), shrunk by --set overrides, on the CPU: a lent GPU's
ten minutes must not be spent on a notebook that fails (docs/gpu.md)."""
import json
import re
import subprocess
import sys

import pandas as pd
import yaml

from lai.cube import check_cube_file
from lai.facts import ROWS


def test_the_gpu_profile_runs_every_notebook_at_reduced_size(tmp_path):
    """`lai run --profile gpu`, shrunk by --set overrides, through every notebook to the report: the paths only the
    GPU's run takes together (the paper preset, a float16 cube, the gated-skip candidate chosen on validation, three
    seeds of the chosen model and their ensemble, the spread head's calibration, three held-out regions), so that a
    lent GPU's ten minutes are not spent on a notebook that fails (checked by hand on 2026-12-04 before this test)."""
    shrink = ["simulate.train_triplets=260", "simulate.unique_triplets=40", "simulate.tile_size=32", "train.epochs=1",
              "train.max_batches_per_epoch=2", "train.batch_size=8", "baselines.max_train_pixels=20000",
              "baselines.rf_trees=10"]
    done = subprocess.run([sys.executable, "-m", "lai", "run", "--profile", "gpu", "--reports", str(tmp_path / "reports"),
                           "--data-root", str(tmp_path / "data"), *[a for s in shrink for a in ("--set", s)]],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    # the notebooks' progress bars reach lai run's terminal (they stayed in the executed notebooks)
    for bar in ("simulate", "build cube", "baselines: non_cloudy"):
        assert re.search(rf"{bar}: +\d+%\|", done.stderr), bar
    run = tmp_path / "reports" / "gpu"
    assert (run / "report.pdf").read_bytes()[:5] == b"%PDF-"
    profile = yaml.safe_load((run / "profile.yaml").read_text())
    assert profile["model"]["preset"] == "paper" and profile["model"]["uncertainty"] is True
    data = json.loads((run / "data.json").read_text())
    assert check_cube_file(data["cube"])["float_dtype"] == "float16"
    selection = pd.read_csv(run / "tables" / "selection.csv")
    assert list(selection["model"]) == ["final", *profile["candidates"]] and selection["chosen"].sum() == 1
    chosen = selection.loc[selection["chosen"], "model"].item()
    trained = list(pd.read_csv(run / "tables" / "training.csv")["row"])
    assert trained == [*ROWS, *profile["candidates"], f"{chosen}_seed1", f"{chosen}_seed2"]
    ensemble = pd.read_csv(run / "tables" / "ensemble.csv")
    assert set(ensemble["set"]) == {"val", "non_cloudy", "cloudy", "unique"} and set(ensemble["seeds"]) <= {1, 3}
    assert (ensemble.loc[ensemble["other"].str.endswith(" seeds"), "seeds"] == 3).all()
    calibration = pd.read_csv(run / "tables" / "calibration.csv")
    assert set(calibration.loc[calibration["sd"] == "recalibrated", "set"]) == {"non_cloudy", "cloudy", "unique"}
