"""Test-wide settings: notebooks run under nbval in a temporary run folder started with the tiny profile.

``make test`` runs the suite on two pytest-xdist workers. Tests of one file stay on one worker (their module
fixtures are built once); the notebooks and the test files that run the tiny pipeline in the shared data
root (``LAI_DATA_ROOT``) form one unit that runs on one worker, in order (:data:`SHARED_DATA_ROOT`).
"""
import os
import tempfile

import pytest

_tmp = tempfile.mkdtemp(prefix="lai-nbval-")
os.environ.setdefault("LAI_DATA_ROOT", os.path.join(_tmp, "data"))
os.environ.setdefault("MPLBACKEND", "Agg")
if "LAI_RUN_DIR" not in os.environ:  # the notebooks' parameter run_dir: a folder whose profile.yaml says tiny
    from lai.run_folder import open_run_folder

    os.environ["LAI_RUN_DIR"] = str(open_run_folder(os.path.join(_tmp, "run"), "tiny")[1])

# what writes into LAI_DATA_ROOT or LAI_RUN_DIR: never on two workers at once
SHARED_DATA_ROOT = ("notebooks/", "tests/test_reliability.py", "tests/test_interrupt.py")


def pytest_configure(config):
    if getattr(config.option, "numprocesses", None):
        # one thread per worker (set before the workers start, so that torch in them and in their subprocesses
        # sees it): two workers on two cores, not two workers of two threads each
        os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist: plain `pytest` without it still runs
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class ByFile(LoadScopeScheduling):
        """One work unit per test file; one for everything that shares the data root."""

        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "shared-data-root" if path.startswith(SHARED_DATA_ROOT) else path

    return ByFile(config, log)
