"""Test-wide settings: notebooks run under nbval in a temporary run folder started with the tiny profile."""
import os
import tempfile

_tmp = tempfile.mkdtemp(prefix="lai-nbval-")
os.environ.setdefault("LAI_DATA_ROOT", os.path.join(_tmp, "data"))
os.environ.setdefault("MPLBACKEND", "Agg")
if "LAI_RUN_DIR" not in os.environ:  # the notebooks' parameter run_dir: a folder whose profile.yaml says tiny
    from lai.run_folder import open_run_folder

    os.environ["LAI_RUN_DIR"] = str(open_run_folder(os.path.join(_tmp, "run"), "tiny")[1])
