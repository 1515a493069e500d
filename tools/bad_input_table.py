#!/usr/bin/env python
"""Try every bad input of the tests and print, as markdown, the exact message each one gets.

    .venv/bin/python tools/bad_input_table.py > docs/bad-inputs.md

Command-line cases are those of tests/test_cli.py, each run as ``python -m lai ...``; the LNB reader
cases use the corruptions of tests/test_reliability.py (and those of tests/test_lnb.py) through
``lai validate``; then operating-system errors, and the Python and notebook entry points. Takes a few minutes
(it simulates the tiny profile's data once).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import io
import re
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np
import pandas as pd

from lai import cli
from lai.errors import one_line
from lai.lnb import MASK_DIR, S1_DIR, S2_DIR, SERIES_CSV, TIME_COLUMNS, TileName
from tests.helpers import make_lnb
from tests.test_cli import CASES, error_message, prepare, run_case
from tests.test_reliability import (
    VALUE_CASES,
    corrupt,
    damage_header,
    disk_full_while_simulating,
    edit_tiff,
    permission_denied_on_csv,
    permission_denied_on_s1_file,
    read_only_output_folder,
    write_limited,
    write_limited_args,
)


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>")


class Paths:
    """Shortens temporary paths in messages: <tmp>/..., <lnb>/..."""

    def __init__(self):
        self.pairs: list[tuple[str, str]] = []

    def add(self, path, label: str) -> None:
        self.pairs.append((str(path), label))
        self.pairs.sort(key=lambda p: -len(p[0]))

    def __call__(self, text: str) -> str:
        for path, label in self.pairs:
            text = text.replace(path, label)
        return text


def validate(folder: Path) -> tuple[int, str]:
    """``lai validate folder`` in this process: (exit code, message)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(["validate", str(folder), "--quiet"])
    return code, error_message("validate", err.getvalue()) or "(no error)"


def _csv(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / SERIES_CSV, dtype=str)


def _rename_row(root: Path, row: int, change) -> None:
    table = _csv(root)
    for col in TIME_COLUMNS:
        old = table.loc[row, col]
        new = change(TileName.parse(old)).format()
        for folder in (S1_DIR, S2_DIR, MASK_DIR):
            (root / folder / old).rename(root / folder / new)
        table.loc[row, col] = new
    table.to_csv(root / SERIES_CSV, index=False)


def _pixels(root: Path, layer: str, name: str, edit, **profile) -> None:
    edit_tiff(root / layer / name, edit, **profile)


def _one_file_shifted(root: Path) -> None:
    """Every file of triplet 1 on one UTM grid but its S1 file of t-2, 1 km east."""
    import rasterio
    from rasterio.transform import from_origin

    row = _csv(root).loc[1]
    for layer in (S1_DIR, S2_DIR, MASK_DIR):
        for col in TIME_COLUMNS:
            with rasterio.open(root / layer / row[col], "r+") as dst:
                east = 1000 if (layer, col) == (S1_DIR, TIME_COLUMNS[0]) else 0
                dst.crs, dst.transform = "EPSG:32630", from_origin(500000 + east, 4300000, 10, 10)


def reader_cases():
    """(bad input, function(lnb folder) -> None) pairs; each gets a fresh valid 3-triplet folder."""
    def n(root, row=1, col="1"):
        return _csv(root).loc[row, col]

    cases = []
    for kind, seed in (("truncate", 3), ("empty", 0), ("garbage", 1), ("flip", 11), ("bands", 0), ("dtype", 0),
                       ("size", 0), ("missing", 0)):
        for layer in (S1_DIR, S2_DIR, MASK_DIR) if kind in ("bands", "dtype") else (S2_DIR,):
            cases.append((f"{layer}/ file, sweep corruption `{kind}`",
                          lambda root, k=kind, s=seed, lay=layer: corrupt(root / lay / n(root), k, s)))
    cases += [
        ("s2/ file: StripOffsets points into the IFD (GDAL alone reads it silently)",
         lambda r: damage_header(r / S2_DIR / n(r), "strip offset into the IFD")),
        ("s2-mask/ file: BitsPerSample tag lost (GDAL alone reads it silently as 1-bit)",
         lambda r: damage_header(r / MASK_DIR / n(r), "bits-per-sample tag lost")),
        ("one S2 LAI NaN where the SCL says valid (masked and counted)", lambda r: (_pixels(r, MASK_DIR, n(r), lambda a: a.fill(4)),
                                                           _pixels(r, S2_DIR, n(r), lambda a: a.__setitem__((0, 3, 3), np.nan)))),
        ("one S1 +inf where the SCL says valid (masked and counted)", lambda r: (_pixels(r, MASK_DIR, n(r), lambda a: a.fill(4)),
                                                        _pixels(r, S1_DIR, n(r), lambda a: a.__setitem__((1, 3, 3), np.inf)))),
        ("SCL value outside 0..11", lambda r: _pixels(r, MASK_DIR, n(r), lambda a: a.__setitem__((0, 0, 0), 12))),
        *((f"pixel values: {case}", lambda r, lay=layer, e=edit: _pixels(r, lay, n(r), e))
          for case, (layer, edit, _) in sorted(VALUE_CASES.items())),
        ("declared nodata (-1) in one S2 LAI pixel where the SCL says valid (missing, counted)",
         lambda r: (_pixels(r, MASK_DIR, n(r), lambda a: a.fill(4)),
                    _pixels(r, S2_DIR, n(r), lambda a: a.__setitem__((0, 3, 3), -1), nodata=-1))),
        ("one file of a triplet on another grid (its S1 of t-2 1 km east of the other eight)", _one_file_shifted),
        ("grid row 3000000000 in the file names (beyond the cube's int32)",
         lambda r: _rename_row(r, 0, lambda p: replace(p, row=3_000_000_000))),
        ("image_series.csv names a file that is missing", lambda r: (r / S1_DIR / n(r, 2, "0")).unlink()),
        ("image_series.csv holds the same triplet twice",
         lambda r: pd.concat([_csv(r), _csv(r).iloc[[0]]]).to_csv(r / SERIES_CSV, index=False)),
        ("window dates in the wrong order (DateFrom after DateTo)",
         lambda r: _rename_row(r, 0, lambda p: replace(p, date_from=p.date_to, date_to=p.date_from))),
        ("the three files of a row disagree on the window dates",
         lambda r: _rename_row(r, 2, lambda p: replace(p, date_to=p.date_to + dt.timedelta(days=p.time_index == 1)))),
        ("t-1 file in column \"0\" (IdxTime disagrees with the column)",
         lambda r: _csv(r).rename(columns={"0": "1", "1": "0"})[list(TIME_COLUMNS)].to_csv(r / SERIES_CSV, index=False)),
        ("file name that does not parse", lambda r: _csv(r).replace({n(r): "not-a-tile.tiff"}).to_csv(r / SERIES_CSV, index=False)),
        ("image_series.csv empty", lambda r: (r / SERIES_CSV).write_text("")),
        ("image_series.csv header only", lambda r: (r / SERIES_CSV).write_text(",".join(TIME_COLUMNS) + "\n")),
        ("image_series.csv without columns 0,1,2", lambda r: (r / SERIES_CSV).write_text("a,b\nx,y\n")),
        ("no image_series.csv", lambda r: (r / SERIES_CSV).unlink()),
        ("no s2-mask/ folder", lambda r: shutil.rmtree(r / MASK_DIR)),
    ]
    return cases


def python_cases(tmp: Path, cube: Path):
    """(entry point, bad input, message) rows for the Python and notebook entry points."""
    from lai import loader, pipeline
    from lai.checkpoint import read_pretrained
    from lai.config import load_profile
    from lai.errors import LaiError
    from lai.io import output_lock
    from lai.train import train_stage

    rows = []

    def attempt(entry, what, fn):
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # what the entry point prints is not part of the table
                fn()
            rows.append((entry, what, "(no error)"))
        except LaiError as err:
            rows.append((entry, what, f"{type(err).__name__}: {err}"))

    with mock.patch.object(loader, "_free_bytes", lambda device: 100 * 2**20), \
            mock.patch.object(loader.CubeSplit, "nbytes", lambda self, *a, **k: 3 * 2**30):
        attempt("`BatchLoader` / `lai train`", "`train.resident=on`, split of 3 GiB, 0.1 GiB free (patched)",
                lambda: loader.BatchLoader(loader.CubeSplit(cube, "train"), 8, resident="on"))
    train_stage(load_profile("tiny"), "s1_masks_seas", cube, tmp / "runs" / "s1_masks_seas", progress=False)
    wider = load_profile("tiny", ["model.encoder_widths=[4, 8, 16]", "model.decoder_widths=[8, 16, 32]"])
    attempt("`train_stage(init_from=...)`", "pre-trained encoder from a different model configuration",
            lambda: train_stage(wider, "final", cube, tmp / "runs" / "final",
                                init_from={"enc1": tmp / "runs" / "s1_masks_seas"}, progress=False))
    attempt("`read_pretrained(expect_part=...)`", "checkpoint without the weights asked for",
            lambda: read_pretrained(tmp / "runs" / "s1_masks_seas", expect_part="enc2"))
    with output_lock(tmp / "runs" / "s1"):
        attempt("`lai train` (any writer: `lai cube`, `lai simulate`)", "a second writer while another process writes the run folder",
                lambda: train_stage(load_profile("tiny"), "s1", cube, tmp / "runs" / "s1", progress=False))
    (tmp / "nb" / "x" / "notebooks").mkdir(parents=True)
    (tmp / "nb" / "x" / "profile.yaml").write_text("train: [1, 2\n")
    with mock.patch.object(pipeline, "open_run_folder", lambda *a, **k: None):
        attempt("notebook parameters (papermill)", "a run folder whose profile.yaml is broken reaching a notebook (up-front check bypassed)",
                lambda: pipeline.run_pipeline("tiny", run_name="x", reports_root=tmp / "nb",
                                              data_root=tmp / "nb" / "data", progress=False))
    import IPython

    from lai.run_folder import PAPERMILL_MARK, RunContext

    class Kernel:  # what a kernel that papermill ran the parameters cells in holds (IPython's In)
        user_ns = {"In": ["", "run_dir = profile = overrides = data = data_root = progress = None",
                          f'{PAPERMILL_MARK}profil = "tiny"\n']}

    with mock.patch.object(IPython, "get_ipython", lambda: Kernel()):
        attempt("notebook parameters (papermill)", "`-p profil tiny`: a parameter the notebook does not have",
                lambda: RunContext.open(tmp / "nb" / "typo"))
    attempt("notebook parameters (papermill)", "`-r data_root \"\"` (or `LAI_DATA_ROOT` set empty): the project folder",
            lambda: RunContext.open(tmp / "nb" / "empty", "tiny", data_root=""))
    attempt("notebook parameters (papermill)", "`-p overrides name=../../x`: a default run folder outside reports/",
            lambda: RunContext.open(None, "tiny", ["name=../../x"]))
    return rows


def os_error_cases(tmp: Path, lnb: Path, cube: Path):
    """(bad input, exit code, message) of operating-system errors on the command line."""
    rows = []
    for command in ("cube", "train"):
        done = write_limited(write_limited_args(command, lnb, cube, tmp / f"limited_{command}"))
        rows.append((f"`lai {command}`: a write fails for real (file size limit, RLIMIT_FSIZE; the disk-full path)",
                     done.returncode, done.stderr.strip()))
    folder = make_lnb(tmp / "lnb")
    s1_file = folder / S1_DIR / _csv(folder).loc[1, "1"]
    (tmp / "ro").mkdir()
    for what, (code, err) in (
        ("`lai simulate`: disk full (ENOSPC injected where the CSV is written)", disk_full_while_simulating(tmp / "full")),
        ("`lai validate`: permission denied on image_series.csv (injected)", permission_denied_on_csv(folder)),
        ("`lai validate`: permission denied on an s1/ file (injected)", permission_denied_on_s1_file(folder, s1_file)),
        ("`lai cube --out` in a read-only folder (EROFS injected)", read_only_output_folder(folder, tmp / "ro")),
    ):
        rows.append((what, code, err.strip()))
    return rows


def main() -> int:
    from lai.config import load_profile
    from lai.cube import build_cube
    from lai.simulate import simulate

    short = Paths()
    out = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        short.add(tmp, "<tmp>")
        profile = load_profile("tiny")
        simulate(profile.simulate, tmp / "tiny" / "lnb", progress=False)
        build_cube(tmp / "tiny" / "lnb", tmp / "tiny" / "cube.nc", profile.splits, profile.encoding, progress=False)
        inputs = prepare(tmp / "cli", tmp / "tiny" / "cube.nc")

        out += ["# Bad inputs and the messages they get", "",
                "Generated by `tools/bad_input_table.py`, which runs every case (those of `tests/test_cli.py`, ",
                "`tests/test_reliability.py` and `tests/test_lnb.py`); temporary paths are shortened to `<tmp>` ",
                "and `<lnb>`. On the command line every such error is one `lai <command>: error: ...` message on ",
                "stderr and exit code 2, never a Python traceback.", "",
                "## Command line", "", "| bad input | command | exit | message |", "| --- | --- | --- | --- |"]
        for case in CASES:
            done = run_case(case, inputs, spawn=True)
            msg = error_message(case.argv[0], done.stderr) if done.returncode else done.stdout.strip()
            if "Traceback" in done.stderr:
                msg = "TRACEBACK: " + done.stderr.strip().splitlines()[-1]
            command = "lai " + " ".join(re.sub(r"\{(\w+)\}", r"<\1>", re.sub(r"\{tmp\}/", "", one_line(a))) for a in case.argv)
            out.append(f"| {cell(case.what)} | `{cell(command)}` | {done.returncode} | {cell(short(msg or ''))} |")

        out += ["", "## LNB folder (reader, `lai validate`, `lai cube`)", "",
                "Each case starts from a valid folder of three triplets (`tests/conftest.py::make_lnb`).", "",
                "| bad input | exit | message |", "| --- | --- | --- |"]
        for k, (what, spoil) in enumerate(reader_cases()):
            root = make_lnb(tmp / "reader" / str(k))
            short.add(root, "<lnb>")
            did = spoil(root)
            code, msg = validate(root)
            what += f": {did}" if isinstance(did, str) and "sweep" in what else ""
            out.append(f"| {cell(what)} | {code} | {cell(short(msg))} |")

        out += ["", "## Operating-system errors", "",
                "Permission errors are injected at the system-call boundary (the tests run as root, whom permissions "
                "do not stop); the file size limit is a real failing write in HDF5 and torch.", "",
                "| case | exit | message |", "| --- | --- | --- |"]
        (tmp / "os").mkdir()
        short.add(tmp / "os", "<os>")
        for what, code, msg in os_error_cases(tmp / "os", tmp / "tiny" / "lnb", tmp / "tiny" / "cube.nc"):
            out.append(f"| {cell(what)} | {code} | {cell(short(msg))} |")

        out += ["", "## Python and notebook entry points", "", "| entry point | bad input | error |", "| --- | --- | --- |"]
        for entry, what, msg in python_cases(tmp / "py", tmp / "tiny" / "cube.nc"):
            out.append(f"| {cell(entry)} | {cell(what)} | {cell(short(msg))} |")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
