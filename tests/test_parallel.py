"""Many inputs on dask.distributed: the results do not depend on the number of workers."""
import subprocess
import sys

import pytest

from lai.errors import ConfigError
from lai.parallel import dask_client


def test_simulate_on_two_dask_workers_writes_the_serial_bytes(tiny_data, tmp_path):
    _, serial, _ = tiny_data  # the tiny profile simulated in one process
    done = subprocess.run([sys.executable, "-m", "lai", "simulate", "--profile", "tiny", "--out", str(tmp_path / "lnb"),
                           "--workers", "2", "--quiet"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    files = sorted(p.relative_to(serial) for p in serial.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "lnb") for p in (tmp_path / "lnb").rglob("*") if p.is_file())
    assert len(files) > 100
    for rel in files:
        assert (serial / rel).read_bytes() == (tmp_path / "lnb" / rel).read_bytes(), rel


def test_workers_and_scheduler_are_exclusive_and_checked():
    with pytest.raises(ConfigError, match="not both"):
        with dask_client(workers=2, scheduler="tcp://127.0.0.1:1"):
            pass
    with pytest.raises(ConfigError, match="--workers must be a positive"):
        with dask_client(workers=0):
            pass
