"""Bad input through the command line: exit code 2, ``lai <cmd>: error: ...`` naming the file, key or
parameter and what was expected, and never a Python traceback.

The main cases run ``python -m lai ...`` in a subprocess (two at a time: most of the cost is the
import); the others go through ``lai.cli.main`` in this process, where an escaping exception fails the
test just the same. ``tools/bad_input_table.py`` runs every case as a subprocess for docs/bad-inputs.md.
"""
from __future__ import annotations

import contextlib
import glob
import io
import os
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

from lai.io import claim_folder
from tests.helpers import alias_bomb, make_lnb, scene_manifest

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Case:
    id: str
    what: str  # the bad input, in words (for docs/bad-inputs.md)
    argv: list[str]  # after `lai`; {placeholders} filled from prepare()
    pattern: str  # regex the message must match (after "lai <cmd>: error: " for exit code 2)
    code: int = 2
    absent: str | None = None  # a path placeholder that must not exist afterwards (nothing written)
    present: str | None = None  # a path placeholder that must still exist afterwards (nothing deleted)
    unchanged: str | None = None  # a file placeholder whose bytes must be as before the command (nothing overwritten)
    spawn: bool = False  # True: `python -m lai` in a subprocess; False: lai.cli.main in this process (faster)

    def args(self, inputs: dict) -> list[str]:
        return [a.format(**inputs) for a in self.argv]


TINY = ["--profile", "tiny"]
SIM = ["simulate", *TINY, "--out", "{tmp}/sim"]

CASES = [
    Case("unknown-profile", "`--profile` names no built-in profile or file",
         ["simulate", "--profile", "no-such-profile", "--out", "{tmp}/sim"],
         r"unknown profile 'no-such-profile'; built-in profiles: (\w+, )+tiny \(or give a \.yaml path\)", absent="{tmp}/sim", spawn=True),
    Case("missing-profile-file", "`--profile` is a YAML path that does not exist",
         ["simulate", "--profile", "{tmp}/absent.yaml", "--out", "{tmp}/sim"], r"profile file .*absent\.yaml does not exist",
         absent="{tmp}/sim"),
    Case("profile-unknown-key", "profile file with a misspelt section (`trian:`)",
         ["simulate", "--profile", "{typo_yaml}", "--out", "{tmp}/sim"], r"unknown configuration key\(s\) trian; expected one of: .*train",
         absent="{tmp}/sim"),
    Case("profile-bad-yaml", "profile file that is not valid YAML",
         ["simulate", "--profile", "{broken_yaml}", "--out", "{tmp}/sim"], r"profile file .*broken\.yaml is not valid YAML"),
    Case("set-unknown-key", "`--set train.epoch=3` (unknown key)",
         [*SIM, "--set", "train.epoch=3"], r"unknown configuration key\(s\) train\.epoch; expected one of: .*epochs", absent="{tmp}/sim",
         spawn=True),
    Case("set-malformed", "`--set train.epochs` (no `=value`)",
         [*SIM, "--set", "train.epochs"], r"override 'train\.epochs' must look like section\.key=value"),
    Case("set-wrong-type", "`--set train.epochs=three`",
         [*SIM, "--set", "train.epochs=three"], r"train\.epochs must be an integer, got 'three'", absent="{tmp}/sim"),
    Case("negative-epochs", "`lai train --set train.epochs=-1`",
         ["train", *TINY, "--set", "train.epochs=-1", "--cube", "{cube}", "--runs", "{tmp}/runs_neg"],
         r"train\.epochs must be positive, got -1", absent="{tmp}/runs_neg", spawn=True),
    Case("tile-not-divisible", "`--set simulate.tile_size=33` (U-Net down-samples by 2)",
         [*SIM, "--set", "simulate.tile_size=33"], r"tile size 33 is not divisible by 2 = 2\^\(levels-1\) of the U-Net",
         absent="{tmp}/sim", spawn=True),
    Case("tile-too-deep", "`--set model.encoder_widths=[2,2,2,2,2,2,2]` (32-pixel tiles, 64x down-sampling)",
         [*SIM, "--set", "model.encoder_widths=[2,2,2,2,2,2,2]"],
         r"tile size 32 is not divisible by 64 = 2\^\(levels-1\) of the U-Net \(encoder widths \[2, 2, 2, 2, 2, 2, 2\], "
         r"decoder widths \[8, 16\]\)"),
    Case("unknown-region", "`--set simulate.train_regions=[ATLANTIS_NOWHERE]`",
         [*SIM, "--set", "simulate.train_regions=[ATLANTIS_NOWHERE]"],
         r"simulate\.train_regions: unknown region\(s\) ATLANTIS_NOWHERE; known regions: SPAIN_BADAJOZ", absent="{tmp}/sim", spawn=True),
    Case("negative-count", "`--set simulate.unique_triplets=-4`",
         [*SIM, "--set", "simulate.unique_triplets=-4"], r"simulate\.unique_triplets must be zero or positive, got -4", spawn=True),
    Case("zero-train-triplets", "`--set simulate.train_triplets=0`",
         [*SIM, "--set", "simulate.train_triplets=0"], r"simulate\.train_triplets must be positive, got 0"),
    Case("simulate-into-other-folder", "`lai simulate --out` a folder holding other files",
         ["simulate", *TINY, "--out", "{lnb_ok}", "--quiet"], r"{lnb_ok} already exists and does not hold a simulation of this configuration"),
    Case("validate-truncated-file", "`lai validate` on a folder with a truncated TIFF",
         ["validate", "{bad_lnb}", "--quiet"],
         r"{bad_lnb}/{bad_file}: is truncated: pixel block at bytes \d+\.\.\d+ lies past the end of the file \(300 bytes\)"),
    Case("cube-truncated-file", "`lai cube` on a folder with a truncated TIFF",
         ["cube", "{bad_lnb}", "--out", "{tmp}/bad.nc", *TINY, "--quiet"],
         r"{bad_lnb}/{bad_file}: is truncated: pixel block", absent="{tmp}/bad.nc", spawn=True),
    Case("cube-skip-bad", "`lai cube --skip-bad` on the same folder (exit 0, the skip is listed)",
         ["cube", "{bad_lnb}", "--out", "{tmp}/skipped.nc", *TINY, "--skip-bad", "--quiet"],
         r"skipped 1 bad triplet\(s\):\n    CSV row 2: .*{bad_lnb}/{bad_file}: is truncated", code=0),
    Case("cube-missing-folder", "`lai cube` on a folder that does not exist",
         ["cube", "{tmp}/nowhere", "--out", "{tmp}/none.nc", *TINY], r"nowhere: LNB folder does not exist \(expected a folder with s1/",
         absent="{tmp}/none.nc"),
    Case("cube-other-settings", "`lai cube --out` an existing cube built with other settings",
         ["cube", "{lnb_ok}", "--out", "{cube}", *TINY, "--quiet"], r"{cube} already exists and was not built from {lnb_ok} as it is now with these settings",
         unchanged="{cube}"),
    Case("info-old-schema", "`lai info` on a cube written by an older schema (version 0)",
         ["info", "{old_cube}"], r"old\.nc: written by cube schema version 0; this lai reads version 2\. Rebuild it with `lai cube`", spawn=True),
    Case("info-other-schema", "`lai info` on an HDF5 file of another schema",
         ["info", "{other_cube}"], r"other\.nc: attribute schema is 'something-else'; expected 'lai-cube' \(not a lai cube\)"),
    Case("info-truncated", "`lai info` on a truncated cube",
         ["info", "{truncated_cube}"], r"truncated\.nc: not a readable cube \(truncated or not netCDF4/HDF5\)"),
    Case("info-not-hdf5", "`lai info` on a file that is not HDF5",
         ["info", "{junk_cube}"], r"junk\.nc: not a readable cube \(truncated or not netCDF4/HDF5\)"),
    Case("info-device", "`lai info` on a device, not a file", ["info", "/dev/null"],
         r"/dev/null is not a regular file \(a device or pipe\?\), not a cube"),
    Case("cube-name-not-utf8", "a cube whose triplet name is not UTF-8 text (damaged)", ["info", "{badname_cube}"],
         r"badname\.nc: not a consistent cube: triplet 0's name b'SPAIN_\\xe9\.tiff' is not UTF-8 text; rebuild it"),
    Case("cube-no-fingerprint", "a cube without its fingerprint attribute",
         ["train", *TINY, "--cube", "{nofingerprint_cube}", "--runs", "{tmp}/runs_nofp", "--row", "s1"],
         r"nofingerprint\.nc: incomplete cube, attribute fingerprint missing; rebuild it with `lai cube`",
         absent="{tmp}/runs_nofp"),
    Case("cube-date-overflow", "a cube whose date holds day 2147483647", ["info", "{baddate_cube}"],
         r"baddate\.nc: not a consistent cube: variable date holds day 2147483647, outside 0\.\.73048"),
    Case("cube-unknown-crs", "`lai predict --data` a cube whose triplet CRS is EPSG:99999",
         ["predict", "--run", "{fresh_run}", "--data", "{badcrs_cube}", "--out", "{tmp}/pred_crs"],
         r"badcrs\.nc: a triplet's CRS 'EPSG:99999' is not one GDAL knows", absent="{tmp}/pred_crs"),
    Case("train-missing-cube", "`lai train --cube` a file that does not exist",
         ["train", *TINY, "--cube", "{tmp}/absent.nc", "--runs", "{tmp}/runs_x"], r"absent\.nc: cube file does not exist; build it with `lai cube`"),
    Case("train-huge-widths", "`lai train --set model.encoder_widths=[16384,32768]` (a model needing hundreds of GiB per step)",
         ["train", *TINY, "--set", "model.encoder_widths=[16384,32768]", "--cube", "{cube}", "--runs", "{tmp}/runs_huge", "--row", "s1"],
         r"model\.encoder_widths \[16384, 32768\], model\.decoder_widths \[8, 16\]: one training step of batch \d+ on 32x32 tiles "
         r"needs about [\d.]+ GiB, more than 50% of the [\d.]+ GiB available", absent="{tmp}/runs_huge"),
    Case("train-classes-not-in-cube", "`lai train --set encoding.valid_classes=[1]` on a cube built with [2, 3, 4, 5, 6]",
         ["train", *TINY, "--set", "encoding.valid_classes=[1]", "--cube", "{cube}", "--runs", "{tmp}/runs_vc", "--row", "s1"],
         r"cube\.nc: built with the SCL classes \[2, 3, 4, 5, 6\] usable; encoding\.valid_classes \[1\] adds \[1\], whose "
         r"LAI the cube never checked", absent="{tmp}/runs_vc"),
    Case("train-unknown-row", "`lai train --row s3`",
         ["train", *TINY, "--cube", "{cube}", "--runs", "{tmp}/runs_row", "--row", "s3"],
         r"argument --row: invalid choice: '?s3'? \(choose from .*s1.*s2_masks_seas.*final.*all", absent="{tmp}/runs_row"),
    Case("train-other-run", "`lai train` into a run folder holding another run (other epochs)",
         ["train", *TINY, "--set", "train.epochs=2", "--cube", "{cube}", "--runs", "{other_runs}", "--row", "s1"],
         r"runs_other/s1 already holds another run \(different train\.epochs: 1 there, 2 here\); it stopped before its "
         r"first epoch ended \(diverged or interrupted\), so nothing trained is kept there; choose another run folder "
         r"or delete it", unchanged="{other_runs}/s1/config.yaml", spawn=True),
    Case("train-diverging", "`lai train --set train.lr=1e10` (the loss becomes NaN)",
         ["train", *TINY, "--set", "train.lr=1e10", "--cube", "{cube}", "--runs", "{tmp}/runs_nan", "--row", "s1", "--quiet"],
         r"s1 epoch 1/\d+: the training loss became (nan|inf); lower train\.lr", spawn=True),
    Case("train-foreign-config", "`lai train` into a run folder whose config.yaml is not lai's",
         ["train", *TINY, "--cube", "{cube}", "--runs", "{foreign_runs}", "--row", "s1"],
         r"{foreign_runs}/s1/config\.yaml is not the configuration of a lai training run",
         unchanged="{foreign_runs}/s1/config.yaml"),
    Case("evaluate-no-model", "`lai evaluate --run` a folder without model.pt",
         ["evaluate", "--run", "{tmp}/empty_run", "--cube", "{cube}"],
         r"empty_run/model\.pt: weights file does not exist \(did that training stage finish\?\)",
         absent="{tmp}/empty_run/.lai-folder", spawn=True),
    Case("predict-pipeline-run-folder", "`lai predict --run` a pipeline run folder (reports/<run>) instead of one of its stages",
         ["predict", "--run", "{tmp}/reports_run", "--data", "{lnb_ok}", "--out", "{tmp}/pred_runfolder", "--quiet"],
         r"reports_run is a pipeline run folder, not a training stage: give .*reports_run/runs/final_gated \(its chosen "
         r"model \(tables/selection\.csv\), not trained yet\)", absent="{tmp}/pred_runfolder"),
    Case("evaluate-corrupt-model", "`lai evaluate --run` a folder whose model.pt is not a checkpoint",
         ["evaluate", "--run", "{tmp}/junk_run", "--cube", "{cube}"], r"junk_run/model\.pt: cannot be read as a lai checkpoint",
         absent="{tmp}/junk_run/.lai-folder"),
    Case("run-negative-epochs", "`lai run --set train.epochs=-1` (refused before any notebook runs)",
         ["run", *TINY, "--set", "train.epochs=-1", "--reports", "{tmp}/reports_neg", "--data-root", "{tmp}/data_neg"],
         r"train\.epochs must be positive, got -1", absent="{tmp}/reports_neg", spawn=True),
    Case("run-missing-data", "`lai run --data` a folder that does not exist (refused before its run folder is made, "
         "which would then refuse the corrected path as another configuration)",
         ["run", *TINY, "--data", "{tmp}/nowhere", "--reports", "{tmp}/reports_nodata", "--data-root", "{tmp}/data_nodata"],
         r"^lai run: error: .*nowhere: LNB folder does not exist \(expected a folder with s1/, s2/, s2-mask/ and image_series\.csv\)$",
         absent="{tmp}/reports_nodata"),
    # -- data loss: outputs replace only regular files lai wrote, never a folder or the input
    Case("cube-out-is-input", "`lai cube FOLDER --out FOLDER --overwrite` (the input folder as output)",
         ["cube", "{victim_lnb}", "--out", "{victim_lnb}", *TINY, "--overwrite", "--quiet"],
         r"victim_lnb is an existing folder; lai never replaces a folder", present="{victim_lnb}/image_series.csv"),
    Case("cube-out-other-folder", "`lai cube --out` an existing folder with files, `--overwrite`",
         ["cube", "{lnb_ok}", "--out", "{full_dir}", *TINY, "--overwrite", "--quiet"],
         r"full_dir is an existing folder; lai never replaces a folder", present="{full_dir}/keep.txt"),
    Case("cube-out-inside-input", "`lai cube FOLDER --out FOLDER/cube.nc`",
         ["cube", "{victim_lnb}", "--out", "{victim_lnb}/cube.nc", *TINY, "--quiet"],
         r"victim_lnb/cube\.nc lies inside the LNB folder .*victim_lnb; write the cube outside the input folder",
         absent="{victim_lnb}/cube.nc"),
    Case("cube-overwrite-foreign-file", "`lai cube --out notes.txt --overwrite` (a file lai did not write)",
         ["cube", "{lnb_ok}", "--out", "{full_dir}/keep.txt", *TINY, "--overwrite", "--quiet"],
         r"keep\.txt exists and is not a readable lai cube; lai replaces only cubes it wrote", present="{full_dir}/keep.txt",
         unchanged="{full_dir}/keep.txt"),
    Case("cube-out-device", "`lai cube --out /dev/full` (not a regular file)",
         ["cube", "{lnb_ok}", "--out", "/dev/full", *TINY, "--quiet"], r"/dev/full is not a regular file"),
    Case("cube-long-name", "`lai cube --out` a legal 243-character file name (exit 0)",
         ["cube", "{lnb_ok}", "--out", "{tmp}/{long_name}", *TINY, "--quiet"], r"cube .*x{{200}}", code=0),
    Case("cube-out-unwritable-folder", "`lai cube --out` into a folder no file can be created in (`/sys`)",
         ["cube", "{lnb_ok}", "--out", "/sys/cube.nc", *TINY, "--quiet"], r"^lai cube: error: /sys: permission denied$"),
    # -- model files: no code from a pickle, clear errors for broken ones
    Case("evaluate-pickle-payload", "`lai evaluate --run` a model.pt carrying a pickle payload (it would create a file)",
         ["evaluate", "--run", "{evil_run}", "--cube", "{cube}"],
         r"evil_run/model\.pt: refused: it holds Python objects other than tensors and plain values", absent="{tmp}/pwned"),
    Case("evaluate-broken-config", "`lai evaluate --run` a model.pt whose configuration is broken",
         ["evaluate", "--run", "{broken_cfg_run}", "--cube", "{cube}"],
         r"broken_cfg_run/model\.pt: broken model configuration \(ConfigError: model\.encoder_widths must be a list",
         absent="{broken_cfg_run}/.lai-folder"),
    Case("evaluate-wrong-weights", "`lai evaluate --run` a model.pt whose weights do not fit its configuration",
         ["evaluate", "--run", "{wrong_weights_run}", "--cube", "{cube}"],
         r"wrong_weights_run/model\.pt: weights do not fit the model its configuration describes \(Missing key\(s\) in "
         r"state_dict: \"enc1\.", absent="{wrong_weights_run}/.lai-folder"),
    Case("evaluate-huge-config", "`lai evaluate --run` a small model.pt whose configuration asks for widths [262144, 262144]",
         ["evaluate", "--run", "{huge_cfg_run}", "--cube", "{cube}"],
         r"huge_cfg_run/model\.pt: broken model configuration \(ConfigError: model\.encoder_widths must be a non-empty "
         r"list of positive integers of at most 65536 channels, got \[262144, 262144\]\)"),
    Case("train-resume-corrupt-checkpoint", "`lai train --resume` with a corrupt checkpoint.pt",
         ["train", *TINY, "--cube", "{cube}", "--runs", "{resume_runs}", "--row", "s1", "--resume", "--quiet"],
         r"s1/checkpoint\.pt: cannot be read as a lai checkpoint \(truncated or not a torch file\)",
         unchanged="{resume_runs}/s1/checkpoint.pt"),
    Case("train-resume-pickle-checkpoint", "`lai train --resume` with a checkpoint.pt carrying a pickle payload",
         ["train", *TINY, "--cube", "{cube}", "--runs", "{evil_runs}", "--row", "s1", "--resume", "--quiet"],
         r"s1/checkpoint\.pt: refused: it holds Python objects", absent="{tmp}/pwned",
         unchanged="{evil_runs}/s1/checkpoint.pt"),
    # -- silent wrong results: other split labels, bad tiles, bad cubes
    Case("evaluate-other-splits", "`lai evaluate` a model on a cube with other split labels (`splits.seed=1`)",
         ["evaluate", "--run", "{fresh_run}", "--cube", "{resplit_cube}"],
         r"fresh_run: the model was trained on a cube with other split labels than .*resplit\.nc",
         absent="{fresh_run}/predictions"),
    Case("train-other-splits", "`lai train` into a run folder trained on the same data with other split labels",
         ["train", *TINY, "--cube", "{resplit_cube}", "--runs", "{other_runs}", "--row", "s1", "--quiet"],
         r"runs_other/s1 already holds another run \(different cube data or split labels\)"),
    Case("train-odd-tiles", "`lai train` on a cube of 32x33-pixel tiles",
         ["train", *TINY, "--cube", "{odd_cube}", "--runs", "{tmp}/runs_odd", "--row", "s1", "--quiet"],
         r"odd\.nc: tile size 32x33 is not divisible by 2 = 2\^\(levels-1\) of the U-Net", absent="{tmp}/runs_odd"),
    Case("evaluate-odd-tiles", "`lai evaluate` on a cube of 32x33-pixel tiles",
         ["evaluate", "--run", "{fresh_run}", "--cube", "{odd_cube}"], r"odd\.nc: tile size 32x33 is not divisible by 2"),
    Case("train-empty-val", "`lai train` on a cube whose validation split is empty",
         ["train", *TINY, "--cube", "{noval_cube}", "--runs", "{tmp}/runs_noval", "--row", "s1", "--quiet"],
         r"noval\.nc: the val split is empty; check the splits configuration", absent="{tmp}/runs_noval"),
    Case("info-missing-variable", "`lai info` on a cube missing a variable (`split`)",
         ["info", "{novar_cube}"], r"novar\.nc: incomplete cube, variable\(s\) split missing; rebuild it with `lai cube`"),
    Case("train-missing-variable", "`lai train` on a cube missing a variable (`split`)",
         ["train", *TINY, "--cube", "{novar_cube}", "--runs", "{tmp}/runs_novar", "--row", "s1", "--quiet"],
         r"novar\.nc: incomplete cube, variable\(s\) split missing", spawn=True),
    # -- configuration values
    Case("nan-lr", "`--set train.lr=.nan`", [*SIM, "--set", "train.lr=.nan"], r"train\.lr must be a finite number, got nan",
         absent="{tmp}/sim"),
    Case("nan-lai-scale", "`--set encoding.lai_scale=.nan`",
         [*SIM, "--set", "encoding.lai_scale=.nan"], r"encoding\.lai_scale must be a finite number, got nan",
         absent="{tmp}/sim"),
    Case("inf-alpha", "`--set train.alpha=.inf`", [*SIM, "--set", "train.alpha=.inf"], r"train\.alpha must be a finite number, got inf",
         absent="{tmp}/sim"),
    Case("huge-tile", "`--set simulate.tile_size=1000000`",
         [*SIM, "--set", "simulate.tile_size=1000000"], r"simulate\.tile_size must lie in 16\.\.4096 pixels, got 1000000",
         absent="{tmp}/sim"),
    Case("huge-grid", "`--set simulate.grid=100000`",
         [*SIM, "--set", "simulate.grid=100000"], r"simulate\.grid must be at most 64 tiles per scene side, got 100000",
         absent="{tmp}/sim"),
    Case("negative-seed", "`--set simulate.seed=-1`",
         [*SIM, "--set", "simulate.seed=-1"], r"simulate\.seed must lie in 0\.\.4294967295, got -1", absent="{tmp}/sim"),
    Case("negative-cap", "`--set splits.max_cloudy=-5`",
         [*SIM, "--set", "splits.max_cloudy=-5"], r"splits\.max_cloudy must be zero or positive \(or null for no cap\), got -5",
         absent="{tmp}/sim"),
    Case("profile-list", "profile file holding a list", ["simulate", "--profile", "{list_yaml}", "--out", "{tmp}/sim"],
         r"profile file .*list\.yaml holds a list; expected a mapping of sections", absent="{tmp}/sim"),
    Case("profile-string", "profile file holding a string", ["simulate", "--profile", "{string_yaml}", "--out", "{tmp}/sim"],
         r"profile file .*string\.yaml holds a str; expected a mapping of sections", absent="{tmp}/sim"),
    Case("profile-empty", "empty profile file", ["simulate", "--profile", "{empty_yaml}", "--out", "{tmp}/sim"],
         r"profile file .*empty\.yaml is empty; expected a mapping of sections", absent="{tmp}/sim"),
    Case("profile-duplicate-key", "profile file repeating a key (`epochs:` twice)",
         ["simulate", "--profile", "{dup_yaml}", "--out", "{tmp}/sim"],
         r"profile file .*dup\.yaml: key 'epochs' appears twice in one mapping \(lines 2 and 3\)",
         absent="{tmp}/sim"),
    # -- pixel values, and --skip-bad skipping the same problems in validate as in cube
    Case("validate-lai-out-of-range", "`lai validate` on a folder with LAI 50 in all of one file",
         ["validate", "{range_lnb}", "--quiet"],
         r"{range_file}: has \d+ of \d+ pixel\(s\), 100\.0 % of its usable pixels .* outside the plausible LAI range "
         r"\[0, 15\]: values such as 50 \(wrong units, or undeclared nodata\?\)"),
    Case("validate-huge-tile", "`lai validate` on a folder whose S1 file declares 60000x60000 pixels (sparse, a few kB)",
         ["validate", "{huge_lnb}", "--quiet"],
         r"{huge_file}: is 60000x60000 pixels: one triplet of that size needs about [\d.]+ GiB, more than 50% of the "
         r"[\d.]+ GiB available; cut the scene into tiles"),
    Case("validate-skip-bad-values", "`lai validate --skip-bad` on the same folder (exit 0, the skip is listed)",
         ["validate", "{range_lnb}", "--skip-bad", "--quiet"],
         r"2 valid triplets .*\n.*\n  skipped CSV row 2: .*{range_file}: has (\d+) of \1 pixel\(s\), 100\.0 % of its usable pixels "
         r"\(SCL \[2, 3, 4, 5, 6\]\) outside the plausible LAI range \[0, 15\]: values such as 50 \(wrong units", code=0),
    Case("run-name-escapes", "`lai run --name ../../x` (outside the reports folder)",
         ["run", *TINY, "--name", "../../escaped", "--reports", "{tmp}/esc_run/reports/a/b", "--data-root", "{tmp}/esc_run/data"],
         r"run name '\.\./\.\./escaped' must be a plain folder name", absent="{tmp}/esc_run"),
    Case("run-other-run", "`lai run` into a run folder holding another run",
         ["run", *TINY, "--reports", "{other_reports}", "--data-root", "{tmp}/data_other"],
         r"reports_other/tiny already holds a run with another configuration \(see its profile\.yaml\): "
         r"different train\.epochs: 7 there, 1 here; .*; choose another "
         r"folder: `lai run --name NEW`, or in a notebook set the parameter run_dir to a new folder",
         absent="{other_reports}/tiny/notebooks/01_data.ipynb", unchanged="{other_reports}/tiny/profile.yaml", spawn=True),
    # -- lai predict: run, inputs and outputs named; nothing written on failure
    Case("predict-data-and-scene", "`lai predict` with both `--data` and `--scene`",
         ["predict", "--run", "{fresh_run}", "--data", "{lnb_ok}", "--scene", "{scene_yaml}", "--out", "{tmp}/pred_both"],
         r"give exactly one of --data \(LNB folder or cube\) and --scene \(scene manifest\)", absent="{tmp}/pred_both"),
    Case("predict-no-model", "`lai predict --run` a folder without model.pt",
         ["predict", "--run", "{tmp}/empty_run", "--data", "{lnb_ok}", "--out", "{tmp}/pred_nomodel", "--quiet"],
         r"empty_run/model\.pt: weights file does not exist", absent="{tmp}/pred_nomodel", spawn=True),
    Case("predict-missing-data", "`lai predict --data` a path that does not exist",
         ["predict", "--run", "{fresh_run}", "--data", "{tmp}/nowhere", "--out", "{tmp}/pred_nodata", "--quiet"],
         r"--data .*nowhere does not exist \(expected an LNB folder or a cube \.nc file\)", absent="{tmp}/pred_nodata"),
    Case("predict-out-taken", "`lai predict --out` a folder holding other files",
         ["predict", "--run", "{fresh_run}", "--data", "{lnb_ok}", "--out", "{full_dir}", "--quiet"],
         r"--out {full_dir} already exists and is not an empty folder; choose a new folder", present="{full_dir}/keep.txt"),
    Case("predict-truncated-file", "`lai predict --data` a folder with a truncated TIFF",
         ["predict", "--run", "{fresh_run}", "--data", "{bad_lnb}", "--out", "{tmp}/pred_bad", "--quiet"],
         r"{bad_lnb}/{bad_file}: is truncated: pixel block at bytes \d+\.\.\d+ lies past the end of the file \(300 bytes\)", absent="{tmp}/pred_bad"),
    Case("predict-batch-size", "`lai predict --batch-size 0`",
         ["predict", "--run", "{fresh_run}", "--data", "{lnb_ok}", "--out", "{tmp}/pred_b0", "--batch-size", "0"],
         r"--batch-size must be at least 1 \(triplets per model call\), got 0$", absent="{tmp}/pred_b0"),
    Case("predict-device-foo", "`lai predict --device foo`",
         ["predict", "--run", "{fresh_run}", "--data", "{lnb_ok}", "--out", "{tmp}/pred_dev", "--device", "foo"],
         r"device 'foo' is not a device torch knows; use auto, cpu, cuda or cuda:N", absent="{tmp}/pred_dev"),
    Case("predict-data-scene-option", "`lai predict --data ... --reflectance-scale 1` (an option of --scene only)",
         ["predict", "--run", "{fresh_run}", "--data", "{lnb_ok}", "--out", "{tmp}/pred_opt", "--reflectance-scale", "1"],
         r"--max-s1-gap-days, .* and --snap-auxdata say how scene rasters are read: they apply to --scene, not to --data",
         absent="{tmp}/pred_opt"),
    Case("predict-data-window", "`lai predict --data ... --window 0` (windows cut scenes: an option of --scene only)",
         ["predict", "--run", "{fresh_run}", "--data", "{lnb_ok}", "--out", "{tmp}/pred_win", "--window", "0"],
         r"--window and --overlap cut a scene into windows: they apply to --scene, not to --data", absent="{tmp}/pred_win"),
    Case("predict-scene-batch-size", "`lai predict --scene ... --batch-size 0` (an option of --data only)",
         ["predict", "--run", "{fresh_run}", "--scene", "{scene_yaml}", "--out", "{tmp}/pred.tif", "--batch-size", "0"],
         r"--batch-size applies to --data; a scene is predicted window by window \(--window\)", absent="{tmp}/pred.tif"),
    Case("predict-scene-context", "`lai predict --scene ... --context 8` (an option of --data only)",
         ["predict", "--run", "{fresh_run}", "--scene", "{scene_yaml}", "--out", "{tmp}/pred_ctx.tif", "--context", "8"],
         r"--context applies to --data; a scene's windows overlap by --overlap instead", absent="{tmp}/pred_ctx.tif"),
    Case("predict-data-context-negative", "`lai predict --data ... --context -1`",
         ["predict", "--run", "{fresh_run}", "--data", "{lnb_ok}", "--out", "{tmp}/pred_ctx", "--context", "-1"],
         r"--context -1: the pixels of the neighbouring tiles around each tile; expected 0 or more", absent="{tmp}/pred_ctx"),
    Case("predict-data-context-too-big", "`lai predict --data ... --context 10000` (a frame wider than the tiles beside)",
         ["predict", "--run", "{fresh_run}", "--data", "{lnb_ok}", "--out", "{tmp}/pred_ctx_big", "--context", "10000"],
         r"--context 10000: at most the tiles' size, \d+x\d+ pixels in {lnb_ok} \(the frame comes from the tiles beside",
         absent="{tmp}/pred_ctx_big"),
    Case("predict-model-file-inside-run", "`lai predict --run RUN/model.pt --out RUN/maps` (the run given as its weights file)",
         ["predict", "--run", "{fresh_run}/model.pt", "--data", "{cube}", "--out", "{fresh_run}/maps", "--quiet"],
         r"maps lies inside the training run folder {fresh_run}; write the maps outside the input folder",
         absent="{fresh_run}/maps"),
    Case("predict-scene-missing", "`lai predict --scene` a manifest that does not exist",
         ["predict", "--run", "{fresh_run}", "--scene", "{tmp}/absent_scene.yaml", "--out", "{tmp}/pred.tif"],
         r"scene manifest .*absent_scene\.yaml does not exist", absent="{tmp}/pred.tif"),
    Case("predict-scene-overlap", "`lai predict --scene --window 32 --overlap 32`",
         ["predict", "--run", "{fresh_run}", "--scene", "{scene_yaml}", "--out", "{tmp}/pred.tif", "--window", "32",
          "--overlap", "32"], r"--overlap must lie in \[0, window/2\] = \[0, 16\] .*got overlap 32 with window 32",
         absent="{tmp}/pred.tif"),
    Case("predict-scene-inside-run", "`lai predict --scene --out` a map inside the training run folder it reads",
         ["predict", "--run", "{fresh_run}", "--scene", "{scene_yaml}", "--out", "{fresh_run}/map.tif"],
         r"map\.tif lies inside the training run folder {fresh_run}; write the map outside the input folder",
         absent="{fresh_run}/map.tif"),
    Case("predict-data-inside-run", "`lai predict --data --out` maps inside the training run folder it reads",
         ["predict", "--run", "{fresh_run}", "--data", "{cube}", "--out", "{fresh_run}/maps", "--quiet"],
         r"maps lies inside the training run folder {fresh_run}; write the maps outside the input folder",
         absent="{fresh_run}/maps"),
    Case("out-dot", "`--out .` (the current folder: no name of its own)", ["simulate", *TINY, "--out", "."],
         r"output path '\.' names no file or folder of its own \('', '\.' or '\.\.'\); give the output a new name"),
    Case("predict-scene-window-1", "`lai predict --scene --window 1` (a window per pixel: hours on a Sentinel-2 tile)",
         ["predict", "--run", "{fresh_run}", "--scene", "{scene_yaml}", "--out", "{tmp}/pred.tif", "--window", "1",
          "--overlap", "0"], r"--window must be at least 32 pixels, got 1", absent="{tmp}/pred.tif"),
    Case("predict-scene-no-file", "`lai predict --scene` a manifest naming a raster that does not exist",
         ["predict", "--run", "{fresh_run}", "--scene", "{scene_yaml}", "--out", "{tmp}/pred.tif"],
         r"scene\.yaml: s1\[0\]\.file: file .*absent_s1\.tif does not exist", absent="{tmp}/pred.tif"),
    Case("predict-scene-neither-format", "`lai predict --scene` a YAML mapping without s2 and s1",
         ["predict", "--run", "{fresh_run}", "--scene", "{scene_no_format}", "--out", "{tmp}/pred.tif"],
         r"no_format\.yaml: expected keys s2 and s1 \(the manifest format of docs/manifest\.md\); got images",
         absent="{tmp}/pred.tif"),
    Case("predict-scene-short-form", "`lai predict --scene` a manifest in the short form of earlier versions (`dates:`)",
         ["predict", "--run", "{fresh_run}", "--scene", "{scene_short_form}", "--out", "{tmp}/pred.tif"],
         r"short_form\.yaml: the short form \(a key 'dates' listing t-2, t-1, t\) is no longer read: list each date "
         r"under s2 \(date, lai, scl\) and under s1", absent="{tmp}/pred.tif"),
    Case("predict-scene-target", "`lai predict --scene` a manifest whose `target` ends no triplet of usable dates",
         ["predict", "--run", "{fresh_run}", "--scene", "{scene_bad_target}", "--out", "{tmp}/pred.tif"],
         r"bad_target\.yaml: target 2019-06-06 ends no triplet of S2 dates with S1; dates that do: 2019-06-11",
         absent="{tmp}/pred.tif"),
    Case("predict-scene-too-wide", "`lai predict --scene` rasters 16,777,216 pixels wide (sparse GeoTIFFs of a few kB)",
         ["predict", "--run", "{fresh_run}", "--scene", "{wide_scene_yaml}", "--out", "{tmp}/pred_wide.tif"],
         r"wide_scene\.yaml: the scene is 256x16777216 pixels; predicting it by windows of 256 rows needs about 96 GiB, "
         r"more than 50% of the [\d.]+ GiB available; cut it into narrower scenes", absent="{tmp}/pred_wide.tif"),
    # -- resources and ownership: bounded processes, one-line scheduler errors, locks and folders lai did not make
    Case("workers-too-many", "`--workers 1000` (more processes than the machine has cores)", [*SIM, "--workers", "1000"],
         r"--workers must be a number of processes from 1 to {cores} \(this machine's cores\), got 1000", absent="{tmp}/sim"),
    Case("scheduler-no-address", "`--scheduler foo` (no host:port)", [*SIM, "--scheduler", "foo"],
         r"--scheduler foo: cannot reach a dask scheduler there .*expected an address such as tcp://host:8786", absent="{tmp}/sim"),
    Case("scheduler-http", "`--scheduler http://localhost:1` (a web address, not a dask one)", [*SIM, "--scheduler", "http://localhost:1"],
         r"--scheduler http://localhost:1: cannot reach a dask scheduler there .*unknown address scheme 'http'", absent="{tmp}/sim"),
    Case("cube-fifo-lock", "`lai cube --out` where a FIFO sits at the output's lock path",
         ["cube", "{lnb_ok}", "--out", "{tmp}/fifo/cube.nc"], r"{fifo_lock}, the lock file of {tmp}/fifo/cube\.nc, is not a regular file",
         present="{fifo_lock}"),
    Case("cube-symlink-lock", "`lai cube --out` where a symbolic link to a user's file sits at the output's lock path",
         ["cube", "{lnb_ok}", "--out", "{tmp}/planted/cube.nc"], r"{tmp}/planted/\.cube\.nc\.lock, the lock file of {tmp}/planted/cube\.nc, is a symbolic link",
         unchanged="{victim}"),
    Case("run-user-folder", "`lai run --name thesis` where `<reports>/thesis` is a user's folder (report.pdf, tables/, a hidden drafts folder)",
         ["run", *TINY, "--name", "thesis", "--reports", "{tmp}/user_reports", "--data-root", "{tmp}/user_data"],
         r"thesis is a folder lai did not make \(it holds \.drafts\.partial-old, notebooks, report\.pdf, tables; no ",
         present="{thesis_draft}", absent="{tmp}/user_data"),
    # -- lai preprocess: the manifest's file, key or entry named; nothing written on failure
    Case("preprocess-missing-manifest", "`lai preprocess` a manifest that does not exist",
         ["preprocess", "{tmp}/absent_manifest.yaml", "--out", "{tmp}/pre_out"],
         r"preprocessing manifest {tmp}/absent_manifest\.yaml does not exist$", absent="{tmp}/pre_out", spawn=True),
    Case("preprocess-alias-bomb", "`lai preprocess` a 0.5 kB manifest whose YAML aliases expand to 3.5 billion values",
         ["preprocess", "{bomb_yaml}", "--out", "{tmp}/pre_out"],
         r"preprocessing manifest {bomb_yaml}: its aliases expand to over 100,000 values \(an alias bomb\?\)$",
         absent="{tmp}/pre_out"),
    Case("preprocess-impossible-date", "`lai preprocess` a manifest with the date 2019-02-30",
         ["preprocess", "{feb30_yaml}", "--out", "{tmp}/pre_out"], r"feb30\.yaml holds an impossible value: '2019-02-30' at line 4 is not a date "
         r"\(day is out of range for month\)",
         absent="{tmp}/pre_out"),
    Case("preprocess-cube-as-manifest", "`lai preprocess` given a cube (a binary NetCDF file) as its manifest",
         ["preprocess", "{cube}", "--out", "{tmp}/pre_out"],
         r"preprocessing manifest .*cube\.nc is not UTF-8 text: 'utf-8' codec can't decode byte 0x89 in position 0",
         absent="{tmp}/pre_out"),
    Case("predict-scene-geotiff", "`lai predict --scene` given a GeoTIFF as its manifest",
         ["predict", "--run", "{fresh_run}", "--scene", "{a_tiff}", "--out", "{tmp}/pred.tif"],
         r"scene manifest .*\.tiff? is not UTF-8 text: 'utf-8' codec can't decode byte 0x[0-9a-f]{{2}} in position \d+",
         absent="{tmp}/pred.tif"),
    Case("preprocess-bad-yaml", "`lai preprocess` a manifest that is not valid YAML",
         ["preprocess", "{broken_yaml}", "--out", "{tmp}/pre_out"],
         r"preprocessing manifest .*broken\.yaml is not valid YAML: expected ',' or '\]', but got '<stream end>' at line 2$",
         absent="{tmp}/pre_out"),
    Case("preprocess-missing-key", "`lai preprocess` a manifest without `s2:`",
         ["preprocess", "{manifest_no_s2}", "--out", "{tmp}/pre_out"],
         r"no_s2\.yaml: key 's2' is missing or empty", absent="{tmp}/pre_out"),
    Case("preprocess-empty-s2", "`lai preprocess` a manifest with `s2: []` (no S2 date)",
         ["preprocess", "{manifest_empty_s2}", "--out", "{tmp}/pre_out"],
         r"empty_s2\.yaml: key 's2' is missing or empty$", absent="{tmp}/pre_out"),
    Case("preprocess-missing-file", "`lai preprocess` a manifest naming an S2 file that does not exist",
         ["preprocess", "{manifest_absent_file}", "--out", "{tmp}/pre_out"],
         r"absent_file\.yaml: s2\[0\]\.lai: file .*absent_lai\.tif does not exist", absent="{tmp}/pre_out"),
    Case("control-characters", "`lai validate` a path holding a newline and a terminal escape (clear screen)",
         ["validate", "{tmp}/no\nsuch\x1b[2J"], r"no\\nsuch\\x1b\[2J: LNB folder does not exist"),
    Case("validate-a-file", "`lai validate` a file, not a folder",
         ["validate", "{victim}"],
         r"victim\.txt: is not a folder \(expected a folder with s1/, s2/, s2-mask/ and image_series\.csv\)$",
         unchanged="{victim}"),
    Case("train-runs-is-a-file", "`lai train --runs` naming a file (a folder is needed)",
         ["train", *TINY, "--cube", "{cube}", "--runs", "{victim}", "--row", "s1", "--quiet"],
         r"victim\.txt: already exists \(a file where lai needs a new file or a folder\?\)", present="{victim}"),
    Case("info-folder", "`lai info` given a folder (an LNB folder) instead of a cube",
         ["info", "{lnb_ok}"], r"lnb_ok is a folder, not a cube file \(an LNB folder\? build its cube with `lai cube`\)"),
    Case("preprocess-null-file", "`lai preprocess` a manifest with `lai: null` for a date",
         ["preprocess", "{manifest_null_lai}", "--out", "{tmp}/pre_out"],
         r"null_lai\.yaml: s2\[0\]\.lai: expected a file name, got null", absent="{tmp}/pre_out"),
    Case("preprocess-null-scl", "`lai preprocess` a manifest with `scl: null` for a date (every pixel would count as clear)",
         ["preprocess", "{manifest_null_scl}", "--out", "{tmp}/pre_out"],
         r"null_scl\.yaml: s2\[0\]\.scl: expected a file name, got null", absent="{tmp}/pre_out"),
    Case("preprocess-list-file", "`lai preprocess` a manifest with `file: [a.tif]` (a list) for an S1 date",
         ["preprocess", "{manifest_list_file}", "--out", "{tmp}/pre_out"],
         r"list_file\.yaml: s1\[0\]\.file: expected a file name, got list \"\['/[^\"]*\"$", absent="{tmp}/pre_out"),
    Case("preprocess-scl-typo", "`lai preprocess` a manifest with `sc1:` for `scl:` (every pixel would count as clear)",
         ["preprocess", "{manifest_scl_typo}", "--out", "{tmp}/pre_out"],
         r"scl_typo\.yaml: s2\[0\]: unknown key\(s\) sc1; expected date, lai, bands, angles, scl", absent="{tmp}/pre_out"),
    Case("predict-scene-key-typo", "`lai predict --scene` a manifest with `traget:` for `target:`",
         ["predict", "--run", "{fresh_run}", "--scene", "{manifest_top_typo}", "--out", "{tmp}/pred.tif"],
         r"top_typo\.yaml: unknown key\(s\) traget; expected country, area, s2, s1, target", absent="{tmp}/pred.tif"),
    Case("preprocess-repeated-date", "`lai preprocess` a manifest listing one S2 date twice, with other rasters",
         ["preprocess", "{manifest_repeated}", "--out", "{tmp}/pre_out"],
         r"repeated\.yaml: s2\[3\]\.date 2019-06-01 repeats s2\[0\]\.date with other rasters; give each date once",
         absent="{tmp}/pre_out"),
    Case("preprocess-copied-entry", "`lai preprocess` a manifest listing one S2 entry twice (copied: t-1 would be a copy of t)",
         ["preprocess", "{manifest_copied}", "--out", "{tmp}/pre_out"],
         r"copied\.yaml: s2\[3\] repeats s2\[0\] \(2019-06-01\): one acquisition read as two dates, so a triplet's "
         r"t-1 would be a copy of its t; give each date once \(or, for a format test that means it, set "
         r"repeated_dates: true\)", absent="{tmp}/pre_out"),
    Case("preprocess-s1-file-and-bands", "`lai preprocess` an S1 date naming both `file` and `vh`",
         ["preprocess", "{manifest_s1_both}", "--out", "{tmp}/pre_out"],
         r"s1_both\.yaml: s1\[0\]: give file \(one two-band raster\) or vv and vh, not both", absent="{tmp}/pre_out"),
    Case("preprocess-year-2300", "`lai preprocess` a manifest dated 2300 (a cube could not store it)",
         ["preprocess", "{manifest_year_2300}", "--out", "{tmp}/pre_out"],
         r"year_2300\.yaml: s2\[0\]\.date: 2300-06-01 lies outside 1970-2169, the dates a cube stores",
         absent="{tmp}/pre_out"),
    Case("preprocess-extra-band", "`lai preprocess` a manifest whose `bands:` also names B02 (the network reads eight bands)",
         ["preprocess", "{manifest_extra_band}", "--out", "{tmp}/pre_out"],
         r"extra_band\.yaml: s2\[0\]\.bands: unknown key\(s\) B02; expected B03, B04", absent="{tmp}/pre_out"),
    Case("preprocess-float-date", "`lai preprocess` a manifest with `date: 20190601.5` (Python's ISO reader takes it)",
         ["preprocess", "{manifest_float_date}", "--out", "{tmp}/pre_out"],
         r"float_date\.yaml: s2\[0\]\.date: '20190601\.5' is not a YYYY-MM-DD date", absent="{tmp}/pre_out"),
    Case("preprocess-long-name", "`lai preprocess` a manifest naming a 5,000-character file (quoted cut short)",
         ["preprocess", "{manifest_long_name}", "--out", "{tmp}/pre_out"],
         r"long_name\.yaml: s2\[0\]\.lai: file .*xxxxxxxxxx\.\.\. cannot be looked up \(File name too long\)",
         absent="{tmp}/pre_out"),
    Case("preprocess-bad-country", "`lai preprocess` a manifest with country `SP-AIN`",
         ["preprocess", "{manifest_bad_country}", "--out", "{tmp}/pre_out"],
         r"bad_country\.yaml: country 'SP-AIN' and area 'BADAJOZ' must be ASCII letters and digits", absent="{tmp}/pre_out"),
    Case("preprocess-no-s1-match", "`lai preprocess` a manifest whose S1 dates are all a month from the S2 dates",
         ["preprocess", "{manifest_far_s1}", "--out", "{tmp}/pre_out"],
         r"far_s1\.yaml: no three S2 dates with an S1 acquisition within 1 day\(s\) each \(left out: 2019-06-01 \(nearest "
         r"S1 30 days away\), 2019-06-06 \(nearest S1 35 days away\), 2019-06-11 \(nearest S1 40 days away\)\)$",
         absent="{tmp}/pre_out"),
    Case("preprocess-reflectance-scale-0", "`lai preprocess --reflectance-scale 0` (a constant LAI that would pass validation)",
         ["preprocess", "{manifest_far_s1}", "--out", "{tmp}/pre_out", "--reflectance-scale", "0"],
         r"preprocess\.reflectance_scale \(--reflectance-scale\) must be a finite number in \(0, 1\] .*got 0\.0",
         absent="{tmp}/pre_out"),
    Case("preprocess-reflectance-offset-nan", "`lai preprocess --reflectance-offset nan`",
         ["preprocess", "{manifest_far_s1}", "--out", "{tmp}/pre_out", "--reflectance-offset", "nan"],
         r"preprocess\.reflectance_offset \(--reflectance-offset\) must be a finite number in \[-0\.5, 0\.5\].*got nan",
         absent="{tmp}/pre_out"),
    Case("preprocess-snap-auxdata-absent", "`lai preprocess --snap-auxdata` a folder that does not exist",
         ["preprocess", "{manifest_far_s1}", "--out", "{tmp}/pre_out", "--snap-auxdata", "{tmp}/no_snap"],
         r"preprocess\.snap_auxdata \(--snap-auxdata\) .*no_snap: not a folder; expected SNAP's auxdata folder",
         absent="{tmp}/pre_out"),
    Case("preprocess-tile-size", "`lai preprocess --tile-size 8`",
         ["preprocess", "{manifest_far_s1}", "--out", "{tmp}/pre_out", "--tile-size", "8"],
         r"preprocess\.tile_size must be at least 16 pixels, got 8", absent="{tmp}/pre_out"),
    Case("preprocess-out-taken", "`lai preprocess --out` a folder holding other files",
         ["preprocess", "{manifest_far_s1}", "--out", "{full_dir}"],
         r"--out {full_dir} already exists and is not an empty folder; choose a new folder", present="{full_dir}/keep.txt"),
    # adversarial pass 3: pixels and scenes
    Case("predict-scene-scaled-lai", "`lai predict --scene` LAI rasters declaring scale 0.1 (LAI 3.0 stored as 30)",
         ["predict", "--run", "{fresh_run}", "--scene", "{pix_scaled_lai}", "--out", "{tmp}/pix_scaled_lai.tif", "--quiet"],
         r"{tmp}/pix_scaled_lai/lai_0\.tif: band 1 declares scale 0\.1 / offset 0; lai reads values as stored: write it unscaled "
         r"\(gdal_translate -unscale\)", absent="{tmp}/pix_scaled_lai.tif"),
    Case("predict-scene-complex-lai", "`lai predict --scene` complex64 LAI rasters",
         ["predict", "--run", "{fresh_run}", "--scene", "{pix_complex_lai}", "--out", "{tmp}/pix_complex_lai.tif", "--quiet"],
         r"{tmp}/pix_complex_lai/lai_0\.tif: has dtype complex64; expected float S2 LAI values", absent="{tmp}/pix_complex_lai.tif"),
    Case("predict-scene-linear-s1", "`lai predict --scene` S1 in linear power with one bright pixel (2.0) in every 8x8 block",
         ["predict", "--run", "{fresh_run}", "--scene", "{pix_linear_s1}", "--out", "{tmp}/pix_linear_s1.tif", "--quiet"],
         r"s1_0\.tif: has 98 % of its backscatter values of VV in \[0, 1\] \(median 0\.05\): linear power, not dB; convert "
         r"with 10\*log10", absent="{tmp}/pix_linear_s1.tif"),
    Case("predict-scene-scl-elsewhere", "`lai predict --scene` SCL rasters in another UTM zone (covering none of the scene)",
         ["predict", "--run", "{fresh_run}", "--scene", "{pix_scl_elsewhere}", "--out", "{tmp}/pix_scl_elsewhere.tif", "--quiet"],
         r"{tmp}/pix_scl_elsewhere/scl_0\.tif: SCL covers none of the S2 scene \(its CRS EPSG:32632, the scene's EPSG:32633\)",
         absent="{tmp}/pix_scl_elsewhere.tif"),
    Case("predict-scene-mislabelled-crs", "`lai predict --scene` LAI and SCL labelled EPSG:4326 holding UTM coordinates, S1 in UTM",
         ["predict", "--run", "{fresh_run}", "--scene", "{pix_mislabelled_crs}", "--out", "{tmp}/pix_mislabelled_crs.tif", "--quiet"],
         r"s1_0\.tif: the S2 scene's bounds in EPSG:4326 do not transform into this raster's CRS \(EPSG:32633\)", absent="{tmp}/pix_mislabelled_crs.tif"),
    Case("predict-scene-fine-s1", "`lai predict --scene` S1 rasters of 20000x20000 pixels of 2 cm over a 400 m scene (sparse, a few kB)",
         ["predict", "--run", "{fresh_run}", "--scene", "{pix_fine_s1}", "--out", "{tmp}/pix_fine_s1.tif", "--quiet"],
         r"s1_0\.tif: reading it onto the S2 grid needs 20004x20004 of its pixels of 0\.02 \(3\.2 GB\) for 40x40 "
         r"pixels of 10, more than lai reads at once; resample it first \(gdalwarp -tr\)", absent="{tmp}/pix_fine_s1.tif"),
    Case("predict-scene-no-radar", "`lai predict --scene` 4000x4000 rasters without a value (sparse): refused before any window",
         ["predict", "--run", "{fresh_run}", "--scene", "{pix_no_radar}", "--out", "{tmp}/pix_no_radar.tif", "--quiet"],
         r"{tmp}/pix_no_radar/s1_0\.tif: S1 of 2019-06-01 holds no backscatter value on the S2 scene \(4000x4000 pixels\): all "
         r"NaN or nodata", absent="{tmp}/pix_no_radar.tif"),
    Case("preprocess-s1-units-linear-db", "`lai preprocess --s1-units linear` of S1 in dB (every value would become NaN)",
         ["preprocess", "{pix_ok}", "--out", "{tmp}/pix_pre", "--tile-size", "16", "--s1-units", "linear"],
         r"s1_0\.tif: 3200 of its 3200 values on the S2 grid \(the part from x 500000, y 4600000\) are below -1: dB, not "
         r"linear power \(drop --s1-units linear\)",
         absent="{tmp}/pix_pre"),
    Case("preprocess-s1-elsewhere", "`lai preprocess` S1 rasters 100 km from the scene",
         ["preprocess", "{pix_s1_elsewhere}", "--out", "{tmp}/pix_pre", "--tile-size", "16"],
         r"{tmp}/pix_s1_elsewhere/s1_0\.tif: S1 of 2019-06-01 covers none of the S2 scene$", absent="{tmp}/pix_pre"),
    Case("preprocess-empty-offset", "`lai preprocess` L2A bands whose MTD_MSIL2A.xml holds an empty `<BOA_ADD_OFFSET band_id=\"2\"/>`",
         ["preprocess", "{pix_empty_offset}", "--out", "{tmp}/pix_pre"],
         r"{pix_empty_offset}: s2\[0\]\.metadata: {tmp}/pix_mtd\.xml: BOA_QUANTIFICATION_VALUE or a BOA_ADD_OFFSET is not a "
         r"number \(or empty\)",
         absent="{tmp}/pix_pre"),
    # adversarial pass 3: run folders and cubes
    Case("info-schema-version-text", "`lai info` on a cube whose attribute schema_version is 'abc'",
         ["info", "{abc_version_cube}"],
         r"abc_version\.nc: written by cube schema version abc; this lai reads version 2\. Rebuild it with `lai cube`"),
    Case("train-schema-version-text", "`lai train --cube` a cube whose attribute schema_version is 'abc'",
         ["train", *TINY, "--cube", "{abc_version_cube}", "--runs", "{tmp}/runs_abc", "--row", "s1", "--quiet"],
         r"abc_version\.nc: written by cube schema version abc", absent="{tmp}/runs_abc"),
    Case("info-clear-fraction-1d", "`lai info` on a cube whose clear_fraction has one dimension",
         ["info", "{flat_clear_cube}"], r"flat_clear\.nc: not a consistent cube: variable clear_fraction has shape \({triplets},\); "
         r"expected 2 dimension\(s\): {triplets} triplets, 3 dates; rebuild it with `lai cube`"),
    Case("info-split-huge", "`lai info` on a small cube whose split declares 300 million (unallocated) triplets",
         ["info", "{huge_split_cube}"], r"huge_split\.nc: not a consistent cube: variable split has shape \(300000000,\); "
         r"expected 1 dimension\(s\): {triplets} triplets; rebuild it with `lai cube`"),
    Case("cube-reuse-attribute-not-json", "`lai cube --out` an existing cube of the same source and settings whose "
         "pixel_fixes attribute is not JSON (the reuse path)", ["cube", "{tiny_lnb}", "--out", "{bad_fixes_cube}", *TINY, "--quiet"],
         r"bad_fixes\.nc: attribute pixel_fixes is '\{{not json', not the JSON dict lai writes; rebuild the cube \(`lai cube --overwrite`\)",
         unchanged="{bad_fixes_cube}"),
    Case("predict-selection-not-utf8", "`lai predict --run` a pipeline run folder whose tables/selection.csv is not UTF-8",
         ["predict", "--run", "{tmp}/reports_latin", "--data", "{lnb_ok}", "--out", "{tmp}/pred_latin", "--quiet"],
         r"reports_latin is a pipeline run folder, not a training stage: give .*reports_latin/runs/final \(its final model, "
         r"not trained yet; tables/selection\.csv is unreadable\)", absent="{tmp}/pred_latin"),
    Case("predict-calibration-implausible", "`lai predict --run` a stage whose calibration.json has the factor 1e30",
         ["predict", "--run", "{cal_run}", "--data", "{lnb_ok}", "--out", "{tmp}/pred_cal", "--quiet"],
         r"cal_run/calibration\.json: factors\.pooled 1e\+30 must lie in \[0\.001, 1000\]; delete it to predict uncalibrated",
         absent="{tmp}/pred_cal"),
    Case("predict-calibration-nested", "`lai predict --run` a stage whose calibration.json nests 100000 lists",
         ["predict", "--run", "{deep_cal_run}", "--data", "{lnb_ok}", "--out", "{tmp}/pred_deep", "--quiet"],
         r"deep_cal_run/calibration\.json is not readable JSON \(nested too deeply\); delete it", absent="{tmp}/pred_deep"),
    Case("publish-notebook-fifo", "`lai publish` a run folder whose notebooks/02.ipynb is a FIFO (it hung)",
         ["publish", "{tmp}/pub_fifo", "{tmp}/pub_fifo_out"],
         r"pub_fifo/notebooks/02\.ipynb is not a regular file \(a folder, FIFO or device\?\); expected the file lai writes; "
         r"rerun the pipeline \(lai run\) to write it again", absent="{tmp}/pub_fifo_out"),
    Case("publish-table-dev-zero", "`lai publish` a run folder whose tables/table1.csv links to /dev/zero (it filled the disk)",
         ["publish", "{tmp}/pub_zero", "{tmp}/pub_zero_out"],
         r"pub_zero/tables/table1\.csv is not a regular file but a symbolic link, which lai does not follow here",
         absent="{tmp}/pub_zero_out"),
    Case("publish-provenance-nested", "`lai publish` a run folder whose provenance.json nests 100000 objects",
         ["publish", "{tmp}/pub_deep", "{tmp}/pub_deep_out"],
         r"pub_deep/provenance\.json is not readable JSON \(nested too deeply\); rerun the pipeline \(lai run\) to write it "
         r"again", absent="{tmp}/pub_deep_out"),
    # adversarial pass 4: what lai prints, and names read from a cube
    Case("info-control-characters", "`lai info` on a cube built from a folder whose name holds terminal escapes "
         "(printed escaped)", ["info", "{esc_cube}"], r"source: +\S*esc\\x1b\]0;pw", code=0),
    Case("validate-control-characters", "`lai validate` a folder whose name holds terminal escapes (printed escaped)",
         ["validate", "{esc_lnb}", "--quiet"], r"esc\\x1b\]0;pwned\\x07\\x1b\[2Jdir: 3 valid triplets", code=0),
    Case("predict-cube-empty-name", "`lai predict --data` a cube whose triplet name is empty (it wrote a hidden .tif)",
         ["predict", "--run", "{fresh_run}", "--data", "{bad_names_cube}", "--out", "{tmp}/pred_names", "--quiet"],
         r"bad_names\.nc: not a consistent cube: triplet 1 is named ''; expected a file name \(not empty, not starting "
         r"with '\.', without path separators or control characters\)", absent="{tmp}/pred_names"),
    Case("info-cube-escape-name", "`lai info` on a cube whose triplet name holds ESC",
         ["info", "{esc_name_cube}"], r"esc_name\.nc: not a consistent cube: triplet 0 is named 'x\\x1b\[2J.tiff'"),
    # adversarial pass 4: lai run, lai predict
    Case("run-inputs-link", "`lai run --force` into a run folder whose notebooks/.inputs links to a user's folder",
         ["run", *TINY, "--reports", "{tmp}/reports_sl", "--data-root", "{tmp}/data_sl", "--force"],
         r"reports_sl/tiny/notebooks/\.inputs is a symbolic link or a file, not the folder lai made there",
         present="{tmp}/reports_sl/tiny/notebooks/.inputs/01_data.ipynb.json"),  # the link and the user's file behind it
    Case("run-inside-data", "`lai run --data LNB --reports LNB/reports` (the run folder inside the input folder)",
         ["run", *TINY, "--data", "{lnb_ok}", "--reports", "{lnb_ok}/reports", "--data-root", "{tmp}/data_in"],
         r"lnb_ok/reports/tiny lies inside the LNB folder {lnb_ok}; write the run folder outside the input folder",
         absent="{lnb_ok}/reports"),
    Case("predict-selection-path", "`lai predict --run` a pipeline run folder whose tables/selection.csv chooses the "
         "model `../../../etc`", ["predict", "--run", "{tmp}/reports_pfx", "--data", "{lnb_ok}", "--out", "{tmp}/pred_pfx"],
         r"reports_pfx is a pipeline run folder, not a training stage: give .*reports_pfx/runs/final \(its final model, "
         r"not trained yet; tables/selection\.csv is unreadable: its model '\.\./\.\./\.\./etc' is none lai trains\)$",
         absent="{tmp}/pred_pfx"),
]


def prepare(tmp: Path, cube: Path) -> dict:
    """Write every bad input the cases refer to under ``tmp``; ``cube`` is a valid tiny-profile cube."""
    import h5py

    from lai.config import load_profile
    from lai.train import stage_config

    tmp.mkdir(parents=True, exist_ok=True)
    inputs = {"tmp": str(tmp), "cube": str(cube), "cores": str(len(os.sched_getaffinity(0)))}  # --workers' bound
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
    (other / "config.yaml").write_text(yaml.safe_dump(stage_config(load_profile("tiny"), "s1", Path(cube)).to_dict(), sort_keys=False))
    foreign = tmp / "runs_foreign" / "s1"
    foreign.mkdir(parents=True)
    (foreign / "config.yaml").write_text("learning_rate: 0.1\n")
    inputs.update(other_runs=str(other.parent), foreign_runs=str(foreign.parent))

    _prepare_reliability(tmp, Path(cube), inputs)
    (tmp / "empty_run").mkdir()
    (tmp / "junk_run").mkdir()
    (tmp / "reports_run" / "runs").mkdir(parents=True)  # what `lai run` leaves before its chosen model is trained
    (tmp / "reports_run" / "tables").mkdir()
    (tmp / "reports_run" / "tables" / "selection.csv").write_text("model,title,best_val_rmse,best_epoch,chosen\n"
                                                                "final,All,1.0,3,False\nfinal_gated,Gated,0.9,4,True\n")
    (tmp / "junk_run" / "model.pt").write_bytes(b"junk")
    (tmp / "reports_other" / "tiny").mkdir(parents=True)
    (tmp / "reports_other" / "tiny" / "profile.yaml").write_text("name: tiny\ntrain:\n  epochs: 7\n")
    inputs["other_reports"] = str(tmp / "reports_other")
    _prepare_manifests(tmp, inputs)
    _prepare_planted(tmp, inputs)
    # adversarial pass 3: pixels and scenes (40x40 scenes with one defect each; an L2A date with an empty offset)
    from lai.snap import BANDS
    from tests.test_predict import bad_scene
    from tests.test_preprocess import MTD

    for case in ("ok", "scaled_lai", "complex_lai", "linear_s1", "scl_elsewhere", "mislabelled_crs", "fine_s1", "no_radar",
                 "s1_elsewhere"):
        inputs[f"pix_{case}"] = str(bad_scene(tmp / f"pix_{case}", case))
    (tmp / "pix_mtd.xml").write_text(MTD.format(offsets='<BOA_ADD_OFFSET band_id="2"/>'))
    raw = yaml.safe_load(Path(inputs["pix_ok"]).read_text())
    for e in raw["s2"]:
        e.update(bands=dict.fromkeys(BANDS, e.pop("lai")), metadata=str(tmp / "pix_mtd.xml"),
                 angles={"view_zenith": 5, "sun_zenith": 30, "relative_azimuth": 100})
    (tmp / "pix_ok" / "empty_offset.yaml").write_text(yaml.safe_dump(raw))
    inputs["pix_empty_offset"] = str(tmp / "pix_ok" / "empty_offset.yaml")
    _prepare_records(tmp, Path(cube), inputs)
    # adversarial pass 4: a folder name with terminal escapes; cubes whose triplet names are no plain file names
    import shutil

    esc = make_lnb(tmp / "esc\x1b]0;pwned\x07\x1b[2Jdir")
    inputs.update(esc_lnb=str(esc), esc_cube=_cube_from(esc, tmp / "esc.nc"))
    for name, k, value in (("bad_names", 1, b""), ("esc_name", 0, b"x\x1b[2J.tiff")):
        shutil.copy(cube, tmp / f"{name}.nc")
        with h5py.File(tmp / f"{name}.nc", "a") as f:
            f["name"][k, 2] = value
        inputs[f"{name}_cube"] = str(tmp / f"{name}.nc")
    # adversarial pass 4: a run folder whose records folder links to a user's one; a selection naming a path
    (tmp / "victim_inputs").mkdir()
    (tmp / "victim_inputs" / "01_data.ipynb.json").write_text('{"my": "record"}')
    (claim_folder(tmp / "reports_sl" / "tiny", None) / "notebooks").mkdir()
    (tmp / "reports_sl" / "tiny" / "notebooks" / ".inputs").symlink_to(tmp / "victim_inputs")
    (tmp / "reports_pfx" / "runs").mkdir(parents=True)
    (tmp / "reports_pfx" / "tables").mkdir()
    (tmp / "reports_pfx" / "tables" / "selection.csv").write_text("model,title,best_val_rmse,best_epoch,chosen\n"
                                                                 "../../../etc,x,1,1,True\n")
    return inputs


def _prepare_records(tmp: Path, cube: Path, inputs: dict) -> None:
    """Run folders whose records are FIFOs, device links, deep JSON or implausible values, and edited cubes."""
    import json
    import shutil

    import h5py
    import numpy as np

    def edited(name, edit):
        shutil.copy(cube, tmp / f"{name}.nc")
        with h5py.File(tmp / f"{name}.nc", "a") as f:
            edit(f)
        inputs[f"{name}_cube"] = str(tmp / f"{name}.nc")

    def replace(f, name, value):
        del f[name]
        f[name] = value

    with h5py.File(cube, "r") as f:
        inputs["triplets"] = str(f["lai"].shape[0])  # what a shape error names as expected
    edited("abc_version", lambda f: f.attrs.__setitem__("schema_version", "abc"))
    edited("flat_clear", lambda f: replace(f, "clear_fraction", np.zeros(f["lai"].shape[0], np.float32)))
    edited("huge_split", lambda f: (f.__delitem__("split"), f.create_dataset("split", shape=(300_000_000,), dtype="S8",
                                                                             chunks=(1_000_000,))))
    edited("bad_fixes", lambda f: f.attrs.__setitem__("pixel_fixes", "{not json"))
    inputs["tiny_lnb"] = str(cube.parent / "lnb")  # the folder the cube was built from: the copy is reused

    (tmp / "reports_latin" / "runs").mkdir(parents=True)
    (tmp / "reports_latin" / "tables").mkdir()
    (tmp / "reports_latin" / "tables" / "selection.csv").write_bytes(b"model,chosen\nfinal_\xe9,True\n")
    for name, text in (("cal_run", json.dumps({"factors": {"pooled": 1e30}, "sd_factors": {"pooled": 1.0}, "against": "truth"})),
                       ("deep_cal_run", "[" * 100_000 + "]" * 100_000)):
        shutil.copytree(inputs["fresh_run"], tmp / name)
        (tmp / name / "calibration.json").write_text(text)
        inputs[name] = str(tmp / name)

    for name in ("pub_fifo", "pub_zero", "pub_deep"):
        run = tmp / name
        for sub in ("tables", "notebooks"):
            (run / sub).mkdir(parents=True)
        for file in ("report.pdf", "report.json", "profile.yaml"):
            (run / file).write_text("x")
        (run / "provenance.json").write_text("{}")
        (run / "tables" / "a.csv").write_text("a\n1\n")
    os.mkfifo(tmp / "pub_fifo" / "notebooks" / "02.ipynb")
    (tmp / "pub_zero" / "tables" / "table1.csv").symlink_to("/dev/zero")
    (tmp / "pub_deep" / "provenance.json").write_text('{"a": ' * 100_000 + "1" + "}" * 100_000)


def _prepare_planted(tmp: Path, inputs: dict) -> None:
    """What a careless or hostile user leaves where lai writes: a FIFO and a symbolic link at lock paths, a
    user's folder at a run folder's place; YAML alias bombs and impossible dates in manifests."""
    from lai.io import lock_file
    from tests.test_ownership import thesis

    (tmp / "fifo").mkdir()
    fifo = lock_file(tmp / "fifo" / "cube.nc")
    os.mkfifo(fifo)
    (tmp / "planted").mkdir()
    (tmp / "victim.txt").write_text("a user's file")
    lock_file(tmp / "planted" / "cube.nc").symlink_to(tmp / "victim.txt")
    thesis(tmp / "user_reports" / "thesis")
    inputs.update(fifo_lock=str(fifo), victim=str(tmp / "victim.txt"),
                  thesis_draft=str(tmp / "user_reports" / "thesis" / ".drafts.partial-old" / "chapter1.tex"))
    (tmp / "bomb.yaml").write_text(alias_bomb())
    (tmp / "feb30.yaml").write_text("country: SPAIN\narea: BADAJOZ\ns2:\n  - {date: 2019-02-30, lai: x.tif}\n")
    inputs.update(bomb_yaml=str(tmp / "bomb.yaml"), feb30_yaml=str(tmp / "feb30.yaml"))


def _prepare_manifests(tmp: Path, inputs: dict) -> None:
    """Scene and preprocessing manifests of the predict and preprocess cases (rasters: any existing file
    where the case fails before reading it)."""
    s1, s2 = (next((Path(inputs["lnb_ok"]) / layer).iterdir()) for layer in ("s1", "s2"))
    dates = [{"date": f"2019-06-{d:02d}", "s1": str(tmp / "absent_s1.tif"), "lai": str(s2)} for d in (1, 6, 11)]
    inputs["a_tiff"] = str(s2)
    manifests = {
        "scene_yaml": ("scene.yaml", scene_manifest(dates)),
        "scene_no_format": ("no_format.yaml", {"images": [str(s2)]}),
        "scene_short_form": ("short_form.yaml", {"dates": dates}),
        "scene_bad_target": ("bad_target.yaml", {"target": "2019-06-06", "s2": [{"date": f"2019-06-{d:02d}", "lai": str(s2)}
                                                                               for d in (1, 6, 11)],
                                                 "s1": [{"date": f"2019-06-{d:02d}", "file": str(s1)} for d in (1, 6, 11)]}),
        "manifest_no_s2": ("no_s2.yaml", {"country": "SPAIN", "area": "BADAJOZ", "s1": [{"date": "2019-06-01", "file": str(s1)}]}),
        "manifest_empty_s2": ("empty_s2.yaml", {"country": "SPAIN", "area": "BADAJOZ", "s2": [],
                                                "s1": [{"date": "2019-06-01", "file": str(s1)}]}),
        "manifest_absent_file": ("absent_file.yaml", {"country": "SPAIN", "area": "BADAJOZ",
                                                      "s2": [{"date": "2019-06-01", "lai": str(tmp / "absent_lai.tif")}],
                                                      "s1": [{"date": "2019-06-01", "file": str(s1)}]}),
    }
    s2_dates = [{"date": f"2019-06-{d:02d}", "lai": str(s2)} for d in (1, 6, 11)]
    # far_s1: the S1 date a month before the S2 dates (a gap of the wrong sign would pass for a near one)
    for key, name, country, s1_date in (("manifest_bad_country", "bad_country.yaml", "SP-AIN", "2019-06-01"),
                                        ("manifest_far_s1", "far_s1.yaml", "SPAIN", "2019-05-02")):
        manifests[key] = (name, {"country": country, "area": "BADAJOZ", "s2": s2_dates,
                                 "s1": [{"date": s1_date, "file": str(s1)}]})
    wide = [tmp / f"wide_{k}.tif" for k in range(3)]
    for k, path in enumerate(wide):
        sparse_tiff(path, 256, 2**24, bands=2 if k < 2 else 1)
    import numpy as np
    import rasterio.windows

    with rasterio.open(wide[0], "r+") as dst:  # one block of backscatter (an S1 scene's 0 is no data)
        dst.write(np.full((2, 256, 256), -12.0, dst.dtypes[0]), window=rasterio.windows.Window(0, 0, 256, 256))
    manifests["wide_scene_yaml"] = ("wide_scene.yaml", scene_manifest([{"date": f"2019-06-{d:02d}", "s1": str(wide[0]),
                                                                        "lai": str(wide[2])} for d in (1, 6, 11)]))
    base = {"country": "SPAIN", "area": "BADAJOZ", "s2": s2_dates, "s1": [{"date": f"2019-06-{d:02d}", "file": str(s1)}
                                                                        for d in (1, 6, 11)]}
    manifests.update({  # one defect each in an otherwise usable manifest
        "manifest_null_lai": ("null_lai.yaml", {**base, "s2": [{"date": "2019-06-01", "lai": None}, *s2_dates[1:]]}),
        "manifest_null_scl": ("null_scl.yaml", {**base, "s2": [{**s2_dates[0], "scl": None}, *s2_dates[1:]]}),
        "manifest_list_file": ("list_file.yaml", {**base, "s1": [{"date": "2019-06-01", "file": [str(s1)]}]}),
        "manifest_scl_typo": ("scl_typo.yaml", {**base, "s2": [{**d, "sc1": str(s2)} for d in s2_dates]}),
        "manifest_top_typo": ("top_typo.yaml", {**base, "traget": "2019-06-11"}),
        # the repeat last, not beside the entry it repeats: the message names that entry, not the one before
        "manifest_repeated": ("repeated.yaml", {**base, "s2": [*s2_dates, {**s2_dates[0], "scl": str(s2)}]}),
        "manifest_copied": ("copied.yaml", {**base, "s2": [*s2_dates, s2_dates[0]]}),
        # file and one of vv, vh: refused as file and both are
        "manifest_s1_both": ("s1_both.yaml", {**base, "s1": [{"date": "2019-06-01", "file": str(s1), "vh": str(s1)}]}),
        "manifest_year_2300": ("year_2300.yaml", {**base, "s2": [{**d, "date": d["date"].replace("2019", "2300")}
                                                                for d in s2_dates]}),
        "manifest_long_name": ("long_name.yaml", {**base, "s2": [{"date": "2019-06-01", "lai": "x" * 5000}]}),
        "manifest_extra_band": ("extra_band.yaml", {**base, "s2": [
            {"date": d["date"], "bands": {b: str(s2) for b in ("B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B11", "B12")},
             "angles": {"view_zenith": 5, "sun_zenith": 30, "relative_azimuth": 100}} for d in s2_dates]}),
        "manifest_float_date": ("float_date.yaml", {**base, "s2": [{**s2_dates[0], "date": 20190601.5}, *s2_dates[1:]]}),
    })
    for key, (name, content) in manifests.items():
        (tmp / name).write_text(yaml.safe_dump(content, sort_keys=False))
        inputs[key] = str(tmp / name)


def sparse_tiff(path: Path, height: int, width: int, bands: int = 1) -> Path:
    """A tiled float32 GeoTIFF declaring ``height`` x ``width`` pixels with no tile written (a few kB on disk)."""
    import rasterio
    from affine import Affine

    with rasterio.open(path, "w", driver="GTiff", height=height, width=width, count=bands, dtype="float32",
                       tiled=True, blockxsize=256, blockysize=256, sparse_ok=True, crs="EPSG:32633",
                       transform=Affine(10, 0, 500000, 0, -10, 4600000)):
        pass
    return path


class Payload:
    """A pickle payload: unpickling it creates the file ``path`` (stands for any code an attacker wants run)."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def _cube_from(lnb: Path, out: Path, *overrides: str) -> str:
    from lai.config import load_profile
    from lai.cube import build_cube

    profile = load_profile("tiny", list(overrides))
    build_cube(lnb, out, profile.splits, profile.encoding, progress=False)
    return str(out)


def _prepare_reliability(tmp: Path, cube: Path, inputs: dict) -> None:
    """Inputs of the data-loss, model-file, split-label, tile, configuration and pixel-value cases."""
    import shutil

    import h5py
    import numpy as np
    import rasterio
    import torch

    from lai.config import load_profile
    from lai.infer import build_model
    from lai.train import stage_config
    from tests.helpers import write_tiff

    inputs["victim_lnb"] = str(make_lnb(tmp / "victim_lnb"))
    (tmp / "full_dir").mkdir()
    (tmp / "full_dir" / "keep.txt").write_text("mine")
    inputs["full_dir"] = str(tmp / "full_dir")
    inputs["long_name"] = "x" * 240 + ".nc"

    stage = stage_config(load_profile("tiny"), "s1", cube)
    cfg = stage.to_dict()
    for name, state in {
        "evil_run": {"model": Payload(tmp / "pwned"), "config": cfg},
        "broken_cfg_run": {"model": {}, "config": {**cfg, "model": {**cfg["model"], "encoder_widths": "wide"}}},
        "wrong_weights_run": {"model": {"nothing": torch.zeros(1)}, "config": cfg},
        "fresh_run": {"model": build_model(stage.model, stage.encoding).state_dict(), "config": cfg},  # untrained weights suffice
        # small weights, a configuration asking for a model of terabytes
        "huge_cfg_run": {"model": build_model(stage.model, stage.encoding).state_dict(),
                         "config": {**cfg, "model": {**cfg["model"], "encoder_widths": [262144, 262144]}}},
    }.items():
        (tmp / name).mkdir()
        torch.save(state, tmp / name / "model.pt")
        inputs[name] = str(tmp / name)
    for name, checkpoint in (("resume_runs", b"junk"), ("evil_runs", None)):
        run = claim_folder(tmp / name / "s1", None)  # a stage lai made, killed with its checkpoint spoilt
        (run / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        if checkpoint is None:
            torch.save({"model": Payload(tmp / "pwned")}, run / "checkpoint.pt")
        else:
            (run / "checkpoint.pt").write_bytes(checkpoint)
        inputs[name] = str(run.parent)

    inputs["resplit_cube"] = _cube_from(cube.parent / "lnb", tmp / "resplit.nc", "splits.seed=1")
    inputs["odd_cube"] = _cube_from(make_lnb(tmp / "odd_lnb", n_triplets=6, size=32, width=33), tmp / "odd.nc")
    inputs["noval_cube"] = _cube_from(Path(inputs["lnb_ok"]), tmp / "noval.nc")
    shutil.copy(cube, tmp / "novar.nc")
    with h5py.File(tmp / "novar.nc", "a") as f:
        del f["split"]
    inputs["novar_cube"] = str(tmp / "novar.nc")

    def name_not_utf8(f):
        f["name"][0, 2] = b"SPAIN_\xe9.tiff"

    def crs_unknown(f):
        f["crs"][0] = "EPSG:99999"

    for name, edit in (("badname", name_not_utf8), ("nofingerprint", lambda f: f.attrs.__delitem__("fingerprint")),
                       ("baddate", lambda f: f["date"].__setitem__((0, 2), 2**31 - 1)), ("badcrs", crs_unknown)):
        shutil.copy(cube, tmp / f"{name}.nc")
        with h5py.File(tmp / f"{name}.nc", "a") as f:
            edit(f)
        inputs[f"{name}_cube"] = str(tmp / f"{name}.nc")

    for name, text in (("list", "- simulate\n- train\n"), ("string", "just a string\n"), ("empty", ""),
                       ("dup", "train:\n  epochs: 1\n  epochs: 2\n")):
        (tmp / f"{name}.yaml").write_text(text)
        inputs[f"{name}_yaml"] = str(tmp / f"{name}.yaml")

    huge = make_lnb(tmp / "huge_lnb")
    name = pd.read_csv(huge / "image_series.csv", dtype=str).loc[0, "0"]
    sparse_tiff(huge / "s1" / name, 60000, 60000, bands=2)
    inputs.update(huge_lnb=str(huge), huge_file=f"s1/{name}")
    bad = make_lnb(tmp / "range_lnb")
    name = pd.read_csv(bad / "image_series.csv", dtype=str).loc[1, "0"]
    with rasterio.open(bad / "s2" / name) as src:
        lai = src.read()
    lai[0] = 50  # the whole file: wrong units, not a few bad pixels (those are masked and counted)
    write_tiff(bad / "s2" / name, lai.astype(np.float32))
    inputs.update(range_lnb=str(bad), range_file=f"s2/{name}")


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


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def check(case: Case, inputs: dict, done: subprocess.CompletedProcess) -> None:
    command = case.argv[0]
    pattern = case.pattern.format(**{k: re.escape(v) for k, v in inputs.items()})
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr
    assert done.returncode == case.code, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", done.stdout), done.stdout  # names read from data: escaped
    if case.code == 2:
        message = error_message(command, done.stderr)
        assert message is not None, done.stderr
        assert "\n" not in message and "\x1b" not in message and len(message) <= 2100, message  # one line, escaped, cut
        assert re.search(pattern, message), message
    else:
        assert re.search(pattern, done.stdout), done.stdout
    if case.absent:
        absent = Path(case.absent.format(**inputs))
        assert not absent.exists(), f"{case.absent} was written"
        # nor a half-written output beside it, or the lock of one (lai.io: atomic_path, output_lock)
        left = [p.name for p in absent.parent.glob(f".{glob.escape(absent.name)}.*") if re.fullmatch(
            rf"\.{re.escape(absent.name)}\.(partial-.*|lock)", p.name)] if absent.parent.is_dir() else []
        assert not left, f"{case.absent}: {left} left beside it"
    if case.present:
        assert Path(case.present.format(**inputs)).exists(), f"{case.present} was deleted"
    if case.unchanged:
        kept = Path(case.unchanged.format(**inputs))
        assert kept.is_file(), f"{case.unchanged} was deleted"
        assert _sha256(kept) == inputs[f"sha256 before {case.id}"], f"{case.unchanged} changed"


@pytest.fixture(scope="module")
def cli_results(tiny_data, tmp_path_factory):
    inputs = prepare(tmp_path_factory.mktemp("cli"), tiny_data[2])
    inputs.update({f"sha256 before {c.id}": _sha256(Path(c.unchanged.format(**inputs))) for c in CASES if c.unchanged})
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


@pytest.mark.parametrize("argv", [[*SIM, "--workers", "0"], ["cube", "{lnb}", "--out", "{tmp}/c.nc", *TINY, "--workers", "-1"]])
def test_workers_out_of_range_is_one_line_before_any_work(tmp_path, argv):
    """--workers is checked before any work: no progress bar before the one line, nothing written."""
    inputs = {"tmp": str(tmp_path), "lnb": str(make_lnb(tmp_path / "lnb"))}
    done = run_case(Case("workers", "", argv, ""), inputs)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert re.fullmatch(rf"lai {argv[0]}: error: --workers must be a number of processes from 1 to "
                        rf"{len(os.sched_getaffinity(0))} \(this machine's cores\), got {argv[-1]}\n", done.stderr)
    assert not (tmp_path / "sim").exists() and not (tmp_path / "c.nc").exists()


def test_second_lai_run_into_a_run_folder_being_written_is_refused(tmp_path):
    """While one `lai run` writes a run folder (it holds the folder's lock), a second one into it is refused,
    naming the holder, before it writes anything."""
    import os
    import socket

    from lai.io import output_lock

    case = Case("run-locked", "`lai run` into a run folder another `lai run` is writing",
                ["run", *TINY, "--reports", "{tmp}/reports", "--data-root", "{tmp}/data"],
                rf"reports/tiny is being written by another lai process \(pid {os.getpid()} on host "
                rf"{re.escape(socket.gethostname())}; lock file .*reports/\.tiny\.lock\); wait for it to finish or write elsewhere",
                absent="{tmp}/reports/tiny/profile.yaml", present="{tmp}/reports/.tiny.lock")  # the holder's lock stays
    inputs = {"tmp": str(tmp_path)}
    with output_lock(tmp_path / "reports" / "tiny", folder="profile.yaml"):  # what the first `lai run` holds while it runs
        done = run_case(case, inputs)
        check(case, inputs, done)


def test_lab_passes_jupyter_options_through(monkeypatch):
    import subprocess

    from lai import cli

    calls = []
    monkeypatch.setattr(subprocess, "call", lambda argv: calls.append(argv) or 0)
    assert cli.main(["lab", "--no-browser", "--port", "8899", "--allow-root"]) == 0
    assert calls[0][-3:] == ["--port", "8899", "--allow-root"] and "--no-browser" in calls[0]
    assert calls[0][1:4] == ["-m", "jupyter", "lab"]
    with pytest.raises(SystemExit):  # other commands still refuse unknown options
        cli.main(["validate", "x", "--no-browser"])


def test_a_path_stdout_cannot_encode_is_printed_escaped(tmp_path, monkeypatch):
    """stdout in latin-1 (PYTHONIOENCODING, a C locale): a Japanese folder name ended the command in a
    UnicodeEncodeError traceback; it is printed with backslash escapes and the command succeeds."""
    import io

    from lai.cli import main
    from tests.helpers import make_lnb

    folder = make_lnb(tmp_path / "données_日本")
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="latin-1", errors="strict", write_through=True)
    monkeypatch.setattr(sys, "stdout", out)
    assert main(["validate", str(folder), "--quiet"]) == 0
    text = raw.getvalue().decode("latin-1")
    assert "données_\\u65e5\\u672c" in text
