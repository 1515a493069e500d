"""Bad input through the command line: exit code 2, ``lai <cmd>: error: ...`` naming the file, key or
parameter and what was expected, and never a Python traceback.

The main cases run ``python -m lai ...`` in a subprocess (two at a time: most of the cost is the
import); the others go through ``lai.cli.main`` in this process, where an escaping exception fails the
test just the same. ``tools/bad_input_table.py`` runs every case as a subprocess for docs/bad-inputs.md.
"""
from __future__ import annotations

import contextlib
import io
import re
import subprocess
import sys
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import make_lnb

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Case:
    id: str
    what: str  # the bad input, in words (for docs/bad-inputs.md)
    argv: list[str]  # after `lai`; {placeholders} filled from prepare()
    pattern: str  # regex the message must match (after "lai <cmd>: error: " for exit code 2)
    code: int = 2
    absent: str | None = None  # a path placeholder that must not exist afterwards (nothing written)
    spawn: bool = False  # True: `python -m lai` in a subprocess; False: lai.cli.main in this process (faster)

    def args(self, inputs: dict) -> list[str]:
        return [a.format(**inputs) for a in self.argv]


TINY = ["--profile", "tiny"]
SIM = ["simulate", *TINY, "--out", "{tmp}/sim"]

CASES = [
    Case("unknown-profile", "`--profile` names no built-in profile or file",
         ["simulate", "--profile", "no-such-profile", "--out", "{tmp}/sim"],
         r"unknown profile 'no-such-profile'; built-in profiles: paper, quick, tiny", absent="{tmp}/sim", spawn=True),
    Case("missing-profile-file", "`--profile` is a YAML path that does not exist",
         ["simulate", "--profile", "{tmp}/absent.yaml", "--out", "{tmp}/sim"], r"profile file .*absent\.yaml does not exist"),
    Case("profile-unknown-key", "profile file with a misspelt section (`trian:`)",
         ["simulate", "--profile", "{typo_yaml}", "--out", "{tmp}/sim"], r"unknown configuration key\(s\) trian; expected one of: .*train"),
    Case("profile-bad-yaml", "profile file that is not valid YAML",
         ["simulate", "--profile", "{broken_yaml}", "--out", "{tmp}/sim"], r"profile file .*broken\.yaml is not valid YAML"),
    Case("set-unknown-key", "`--set train.epoch=3` (unknown key)",
         [*SIM, "--set", "train.epoch=3"], r"unknown configuration key\(s\) train\.epoch; expected one of: .*epochs", spawn=True),
    Case("set-malformed", "`--set train.epochs` (no `=value`)",
         [*SIM, "--set", "train.epochs"], r"override 'train\.epochs' must look like section\.key=value"),
    Case("set-wrong-type", "`--set train.epochs=three`",
         [*SIM, "--set", "train.epochs=three"], r"train\.epochs must be an integer, got 'three'"),
    Case("negative-epochs", "`lai train --set train.epochs=-1`",
         ["train", *TINY, "--set", "train.epochs=-1", "--cube", "{cube}", "--runs", "{tmp}/runs_neg"],
         r"train\.epochs must be positive, got -1", absent="{tmp}/runs_neg", spawn=True),
    Case("tile-not-divisible", "`--set simulate.tile_size=33` (U-Net down-samples by 2)",
         [*SIM, "--set", "simulate.tile_size=33"], r"tile size 33 is not divisible by 2 = 2\^\(levels-1\) of the U-Net",
         absent="{tmp}/sim", spawn=True),
    Case("tile-too-deep", "`--set model.encoder_widths=[2,2,2,2,2,2,2]` (32-pixel tiles, 64x down-sampling)",
         [*SIM, "--set", "model.encoder_widths=[2,2,2,2,2,2,2]"], r"tile size 32 is not divisible by 64"),
    Case("unknown-region", "`--set simulate.train_regions=[ATLANTIS_NOWHERE]`",
         [*SIM, "--set", "simulate.train_regions=[ATLANTIS_NOWHERE]"],
         r"simulate\.train_regions: unknown region\(s\) ATLANTIS_NOWHERE; known regions: SPAIN_BADAJOZ", absent="{tmp}/sim", spawn=True),
    Case("negative-count", "`--set simulate.unique_triplets=-4`",
         [*SIM, "--set", "simulate.unique_triplets=-4"], r"simulate\.unique_triplets must be zero or positive, got -4", spawn=True),
    Case("zero-train-triplets", "`--set simulate.train_triplets=0`",
         [*SIM, "--set", "simulate.train_triplets=0"], r"simulate\.train_triplets must be positive, got 0"),
    Case("simulate-into-other-folder", "`lai simulate --out` a folder holding other files",
         ["simulate", *TINY, "--out", "{lnb_ok}", "--quiet"], r"already exists and does not hold a simulation of this configuration"),
    Case("validate-truncated-file", "`lai validate` on a folder with a truncated TIFF",
         ["validate", "{bad_lnb}", "--quiet"], r"{bad_file}: is truncated: pixel block at bytes \d+\.\.\d+ lies past the end of the file \(300 bytes\)"),
    Case("cube-truncated-file", "`lai cube` on a folder with a truncated TIFF",
         ["cube", "{bad_lnb}", "--out", "{tmp}/bad.nc", *TINY, "--quiet"],
         r"{bad_file}: is truncated: pixel block", absent="{tmp}/bad.nc", spawn=True),
    Case("cube-skip-bad", "`lai cube --skip-bad` on the same folder (exit 0, the skip is listed)",
         ["cube", "{bad_lnb}", "--out", "{tmp}/skipped.nc", *TINY, "--skip-bad", "--quiet"],
         r"skipped 1 bad triplet\(s\):\n    CSV row 2: .*{bad_file}: is truncated", code=0),
    Case("cube-missing-folder", "`lai cube` on a folder that does not exist",
         ["cube", "{tmp}/nowhere", "--out", "{tmp}/none.nc", *TINY], r"nowhere/s1: folder is missing"),
    Case("cube-other-settings", "`lai cube --out` an existing cube built with other settings",
         ["cube", "{lnb_ok}", "--out", "{cube}", *TINY, "--quiet"], r"already exists and was not built from .* with these settings"),
    Case("info-old-schema", "`lai info` on a cube written by an older schema (version 0)",
         ["info", "{old_cube}"], r"old\.nc: written by cube schema version 0; this lai reads version 1\. Rebuild it with `lai cube`", spawn=True),
    Case("info-other-schema", "`lai info` on an HDF5 file of another schema",
         ["info", "{other_cube}"], r"other\.nc: attribute schema is 'something-else'; expected 'lai-cube' \(not a lai cube\)"),
    Case("info-truncated", "`lai info` on a truncated cube",
         ["info", "{truncated_cube}"], r"truncated\.nc: not a readable cube \(truncated or not netCDF4/HDF5\)"),
    Case("info-not-hdf5", "`lai info` on a file that is not HDF5",
         ["info", "{junk_cube}"], r"junk\.nc: not a readable cube"),
    Case("train-missing-cube", "`lai train --cube` a file that does not exist",
         ["train", *TINY, "--cube", "{tmp}/absent.nc", "--runs", "{tmp}/runs_x"], r"absent\.nc: cube file does not exist; build it with `lai cube`"),
    Case("train-unknown-row", "`lai train --row s3`",
         ["train", *TINY, "--cube", "{cube}", "--runs", "{tmp}/runs_row", "--row", "s3"],
         r"argument --row: invalid choice: '?s3'? \(choose from .*s1.*s2_masks_seas.*final.*all", absent="{tmp}/runs_row"),
    Case("train-other-run", "`lai train` into a run folder holding another run (other epochs)",
         ["train", *TINY, "--set", "train.epochs=2", "--cube", "{cube}", "--runs", "{other_runs}", "--row", "s1"],
         r"runs_other/s1 already holds another run \(different train\); choose another run folder or delete it", spawn=True),
    Case("train-foreign-config", "`lai train` into a run folder whose config.yaml is not lai's",
         ["train", *TINY, "--cube", "{cube}", "--runs", "{foreign_runs}", "--row", "s1"],
         r"s1/config\.yaml is not the configuration of a lai training run"),
    Case("evaluate-no-model", "`lai evaluate --run` a folder without model.pt",
         ["evaluate", "--run", "{tmp}/empty_run", "--cube", "{cube}"],
         r"empty_run/model\.pt: weights file does not exist \(did that training stage finish\?\)", spawn=True),
    Case("evaluate-corrupt-model", "`lai evaluate --run` a folder whose model.pt is not a checkpoint",
         ["evaluate", "--run", "{tmp}/junk_run", "--cube", "{cube}"], r"junk_run/model\.pt: cannot be read as a lai checkpoint"),
    Case("run-negative-epochs", "`lai run --set train.epochs=-1` (refused before any notebook runs)",
         ["run", *TINY, "--set", "train.epochs=-1", "--reports", "{tmp}/reports_neg", "--data-root", "{tmp}/data_neg"],
         r"train\.epochs must be positive, got -1", absent="{tmp}/reports_neg", spawn=True),
    Case("run-missing-data", "`lai run --data` a folder that does not exist (reaches notebook 01)",
         ["run", *TINY, "--data", "{tmp}/nowhere", "--reports", "{tmp}/reports_nodata", "--data-root", "{tmp}/data_nodata"],
         r"notebook 01_data\.ipynb failed in cell \d+ \(execution count \d+\): LNBError: .*nowhere/s1: folder is missing; "
         r"an LNB folder holds s1/, s2/ and s2-mask/\. The executed notebook is .*01_data\.ipynb",
         absent="{tmp}/reports_nodata/tiny/notebooks/02_training.ipynb"),
    Case("run-other-run", "`lai run` into a run folder holding another run",
         ["run", *TINY, "--reports", "{other_reports}", "--data-root", "{tmp}/data_other"],
         r"reports_other/tiny already holds a run with another configuration \(see its profile\.yaml\)",
         absent="{other_reports}/tiny/notebooks/01_data.ipynb", spawn=True),
]


def prepare(tmp: Path, cube: Path) -> dict:
    """Write every bad input the cases refer to under ``tmp``; ``cube`` is a valid tiny-profile cube."""
    import h5py

    from lai.config import load_profile
    from lai.train import stage_config

    tmp.mkdir(parents=True, exist_ok=True)
    inputs = {"tmp": str(tmp), "cube": str(cube)}
    (tmp / "typo.yaml").write_text("trian:\n  epochs: 1\n")
    (tmp / "broken.yaml").write_text("train: [1, 2\n")
    inputs.update(typo_yaml=str(tmp / "typo.yaml"), broken_yaml=str(tmp / "broken.yaml"))

    inputs["lnb_ok"] = str(make_lnb(tmp / "lnb_ok"))
    bad = make_lnb(tmp / "bad_lnb")
    name = pd.read_csv(bad / "image_series.csv", dtype=str).loc[1, "1"]
    path = bad / "s2" / name
    path.write_bytes(path.read_bytes()[:300])
    inputs.update(bad_lnb=str(bad), bad_file=f"s2/{name}")

    with h5py.File(tmp / "old.nc", "w") as f:
        f.attrs.update({"schema": "lai-cube", "schema_version": 0})
    with h5py.File(tmp / "other.nc", "w") as f:
        f.attrs["schema"] = "something-else"
    (tmp / "truncated.nc").write_bytes(Path(cube).read_bytes()[: Path(cube).stat().st_size // 2])
    (tmp / "junk.nc").write_bytes(b"definitely not HDF5")
    inputs.update({f"{k}_cube": str(tmp / f"{k}.nc") for k in ("old", "other", "truncated", "junk")})

    other = tmp / "runs_other" / "s1"  # the run `lai train --row s1` (epochs 1) leaves before training
    other.mkdir(parents=True)
    (other / "config.yaml").write_text(yaml.safe_dump(stage_config(load_profile("tiny"), "s1", Path(cube), {}), sort_keys=False))
    foreign = tmp / "runs_foreign" / "s1"
    foreign.mkdir(parents=True)
    (foreign / "config.yaml").write_text("learning_rate: 0.1\n")
    inputs.update(other_runs=str(other.parent), foreign_runs=str(foreign.parent))

    (tmp / "empty_run").mkdir()
    (tmp / "junk_run").mkdir()
    (tmp / "junk_run" / "model.pt").write_bytes(b"junk")
    (tmp / "reports_other" / "tiny").mkdir(parents=True)
    (tmp / "reports_other" / "tiny" / "profile.yaml").write_text("name: tiny\ntrain:\n  epochs: 7\n")
    inputs["other_reports"] = str(tmp / "reports_other")
    return inputs


def run_case(case: Case, inputs: dict, spawn: bool | None = None) -> subprocess.CompletedProcess:
    """Run one case: as ``python -m lai`` (``spawn``) or through ``lai.cli.main`` in this process."""
    args = case.args(inputs)
    if case.spawn if spawn is None else spawn:
        return subprocess.run([sys.executable, "-m", "lai", *args], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    from lai import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(args)
        except SystemExit as exit_:
            code = exit_.code
        except BaseException:  # noqa: BLE001 - an escaping exception is what the test looks for
            code = None
            err.write(traceback.format_exc())
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def error_message(command: str, stderr: str) -> str | None:
    """The ``lai <command>: error: ...`` message (it may run over several lines), or None."""
    start = stderr.find(f"lai {command}: error: ")
    return stderr[start:].strip() if start >= 0 else None


def check(case: Case, inputs: dict, done: subprocess.CompletedProcess) -> None:
    command = case.argv[0]
    pattern = case.pattern.format(**{k: re.escape(v) for k, v in inputs.items()})
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == case.code, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    if case.code == 2:
        message = error_message(command, done.stderr)
        assert message is not None, done.stderr
        assert re.search(pattern, message), message
    else:
        assert re.search(pattern, done.stdout), done.stdout
    if case.absent:
        assert not Path(case.absent.format(**inputs)).exists(), f"{case.absent} was written"


@pytest.fixture(scope="module")
def cli_results(tiny_data, tmp_path_factory):
    inputs = prepare(tmp_path_factory.mktemp("cli"), tiny_data[2])
    with ThreadPoolExecutor(2) as pool:  # subprocesses two at a time while the in-process cases run here
        spawned = {c.id: pool.submit(run_case, c, inputs) for c in CASES if c.spawn}
        done = {c.id: run_case(c, inputs) for c in CASES if not c.spawn}
        done.update({k: f.result() for k, f in spawned.items()})
    return inputs, done


@pytest.mark.timeout(600)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_on_the_command_line(case, cli_results):
    inputs, done = cli_results
    check(case, inputs, done[case.id])


def test_unknown_subcommand_and_missing_argument_exit_2():
    """argparse's own errors also exit 2, with usage, not a traceback."""
    for argv in (["frobnicate"], ["cube"]):
        done = subprocess.run([sys.executable, "-m", "lai", *argv], cwd=ROOT, capture_output=True, text=True, check=False)
        assert done.returncode == 2 and "usage: lai" in done.stderr and "Traceback" not in done.stderr
