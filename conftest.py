"""Test-wide settings: notebooks run under nbval with the tiny profile in a temporary folder."""
import os
import tempfile

os.environ.setdefault("LAI_PROFILE", "tiny")
_tmp = tempfile.mkdtemp(prefix="lai-nbval-")
os.environ.setdefault("LAI_RUN_DIR", os.path.join(_tmp, "run"))
os.environ.setdefault("LAI_DATA_ROOT", os.path.join(_tmp, "data"))
os.environ.setdefault("MPLBACKEND", "Agg")
