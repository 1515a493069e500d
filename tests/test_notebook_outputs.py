"""The notebooks' committed outputs are what nbval compares: they are there, and a changed number fails."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from lai.facts import DATA_ROOT_ENV, RUN_DIR_ENV
from tests.nbval_tolerance import numbers_match

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("ref, test, same", [
    ("rmse 1.896", "rmse 1.896", True),
    ("rmse 1.896", "rmse 1.895", True),  # one unit of the last digit
    ("r2_lo -16.883", "r2_lo -16.879", True),  # within 5e-4 of the value
    ("r2_hi -0.000", "r2_hi  0.000", True),  # a column padded for its sign
    ("rmse 1.896", "rmse 1.899", False),
    ("rmse 0.058", "rmse 0.060", False),
    ("pixels 3836", "pixels 3837", False),  # integers exactly
    ("rmse 1.896", "RMSE 1.896", False),
    ("a 1.0 b", "a 1.0", False),
    ("one line", "one\nline", False),
    ("p 1.2e-05", "p 1.3e-05", True),  # one unit of the last digit, in the exponent's scale
    ("p 1.2e-05", "p 1.0e-04", False),  # the mantissa's decimals alone took 0.1 as the unit
])
def test_numbers_match_as_displayed(ref, test, same):
    assert numbers_match(ref, test) is same


def test_every_notebook_holds_the_outputs_nbval_compares():
    """nbval checks only cells that were run in the committed notebook: each code cell carries its outputs."""
    assert NOTEBOOKS
    for path in NOTEBOOKS:
        cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        assert all(c.execution_count for c in cells), f"{path.name}: run `make notebook-outputs`"
        shown = [c for c in cells[1:] if c.outputs]  # the parameters cell shows nothing
        assert len(shown) >= len(cells) // 2, f"{path.name}: outputs missing, run `make notebook-outputs`"
        text = json.dumps([c.outputs for c in cells])
        assert "image/png" not in text and "lai-nbval-" not in text, f"{path.name}: images or temporary paths"


def _nbval(tmp_path: Path, shown: str) -> subprocess.CompletedProcess:
    """nbval (with this project's comparison) on a notebook that prints 2/3 and whose committed output is ``shown``."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("print(f'{2 / 3:.3f} of 12 pixels')", execution_count=1,
                                          outputs=[nbformat.v4.new_output("stream", name="stdout", text=shown)])]
    nbformat.write(nb, tmp_path / "nb.ipynb")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "pytest", "nb.ipynb", "--nbval", "--nbval-current-env", "-p", "tests.nbval_tolerance",
                           "-p", "no:cacheprovider", "-p", "no:xdist", "-q"], cwd=tmp_path, env=env, capture_output=True, text=True)


def test_a_changed_number_fails_with_a_diff_naming_the_cell(tmp_path):
    assert _nbval(tmp_path, "0.666 of 12 pixels\n").returncode == 0  # 0.667 as displayed, give or take one unit
    for changed in ("0.676 of 12 pixels\n", "0.667 of 13 pixels\n"):
        run = _nbval(tmp_path, changed)
        assert run.returncode == 1, run.stdout
        assert "nb.ipynb::Cell 0" in run.stdout and changed.strip() in run.stdout, run.stdout


def test_a_test_session_removes_its_scratch_folder(tmp_path):
    """The tiny run folder and data root a session makes (conftest.py) go with it, on pytest-xdist workers too."""
    env = {k: v for k, v in os.environ.items() if k not in (DATA_ROOT_ENV, RUN_DIR_ENV)}
    env["TMPDIR"] = str(tmp_path)
    run = subprocess.run([sys.executable, "-m", "pytest", "tests/test_notebook_outputs.py::test_numbers_match_as_displayed",
                          "-n", "2", "-q"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.search(r"\b\d+ passed", run.stdout) and "failed" not in run.stdout, run.stdout
    assert not list(tmp_path.glob("lai-nbval-*")), "a test session left its scratch folder"
