"""Test-wide settings: notebooks run under nbval in a temporary run folder started with the tiny profile, and
their cells' outputs are compared with the outputs committed in ``notebooks/*.ipynb``.

``make test`` runs the suite on two pytest-xdist workers. Tests of one file stay on one worker (their module
fixtures are built once); the notebooks and the test files that run the tiny pipeline in the shared data
root (``LAI_DATA_ROOT``) form one unit that runs on one worker, in order (:data:`SHARED_DATA_ROOT`).

``make notebook-outputs`` (``pytest notebooks --nbval-lax --write-notebook-outputs``) executes the notebooks
exactly as the tests do and writes what they displayed back into the notebooks (images dropped, see
:func:`committed_outputs`); ``tests/nbval_sanitize.cfg`` masks what differs between runs (temporary paths).
"""
import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from lai.facts import DATA_ROOT_ENV, RUN_DIR_ENV  # no torch: the thread settings below still apply
from lai.progress import PROGRESS_ENV

ROOT = Path(__file__).resolve().parent
SANITIZE = ROOT / "tests" / "nbval_sanitize.cfg"
pytest_plugins = ("tests.nbval_tolerance",)  # numbers compared as displayed, give or take another CPU's rounding

# the session's scratch folder (tiny data root and run folder), removed when the process that made it exits; the
# pytest-xdist workers inherit both variables from the main process, so they make none of their own
_tmp = None
if DATA_ROOT_ENV not in os.environ or RUN_DIR_ENV not in os.environ:
    _tmp = tempfile.mkdtemp(prefix="lai-nbval-")
    atexit.register(shutil.rmtree, _tmp, ignore_errors=True)
    os.environ.setdefault(DATA_ROOT_ENV, os.path.join(_tmp, "data"))
os.environ.setdefault("MPLBACKEND", "Agg")
# numbers the notebooks display are compared to 3 decimals, so their kernels compute the same way everywhere:
# one thread (no parallel reductions), and the AVX2 kernels of torch's ATen, oneDNN and MKL also on a CPU that
# has more (AVX-512), so that a machine of another generation sums in the same order. numpy dispatches its
# math functions by CPU too: with its AVX-512 kernels the simulated data differ in the last bits (the data
# fingerprint the notebooks show changed on an AVX-512 machine, 2026-12-04), so those are switched off as well
# (names of numpy 2 and of numpy 1; a name the CPU or numpy lacks is ignored)
_NUMPY_AVX512 = "X86_V4 AVX512_ICL AVX512_SPR AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL"
for _name, _value in {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "ATEN_CPU_CAPABILITY": "avx2",
                      "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2", "NPY_DISABLE_CPU_FEATURES": _NUMPY_AVX512}.items():
    os.environ[_name] = _value
if RUN_DIR_ENV not in os.environ:  # the notebooks' parameter run_dir: a folder whose profile.yaml says tiny
    from lai.run_folder import open_run_folder

    os.environ[RUN_DIR_ENV] = str(open_run_folder(os.path.join(_tmp, "run"), "tiny")[1])

# what writes into LAI_DATA_ROOT or LAI_RUN_DIR: never on two workers at once
SHARED_DATA_ROOT = ("notebooks/", "tests/test_reliability.py", "tests/test_interrupt.py")
# test files of one test that runs over a minute: sent to a worker first (pytest-xdist's own order sends the files of
# most tests first, so such a file went last and the run waited for it: make test 7 min 1 s, 6 min 11 s with it first;
# the Intel Xeon, 2026-12-07)
LONG_FIRST = ("tests/test_gpu_profile.py",)


def work_unit(nodeid: str) -> str:
    """The pytest-xdist work unit of a test: its file, or one unit for everything that shares the data root."""
    path = nodeid.split("::", 1)[0]
    return "shared-data-root" if path.startswith(SHARED_DATA_ROOT) else path


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Work units in the order the workers take them (:func:`pytest_xdist_make_scheduler`): :data:`LONG_FIRST`, then
    the units of most tests first (pytest-xdist's own order); each unit's tests keep their order."""
    units: dict[str, list] = {}
    for item in items:
        units.setdefault(work_unit(item.nodeid), []).append(item)
    order = sorted(units, key=lambda unit: (unit not in LONG_FIRST, -len(units[unit])))
    items[:] = [item for unit in order for item in units[unit]]


def pytest_addoption(parser):
    parser.addoption("--write-notebook-outputs", action="store_true",
                     help="write the outputs the notebooks displayed under nbval back into notebooks/*.ipynb "
                          "(with --nbval-lax: nothing is compared while they are written)")


def pytest_configure(config):
    if getattr(config.option, "nbval_sanitize_with", "missing") is None:  # the file found from any working folder
        config.option.nbval_sanitize_with = str(SANITIZE)


def committed_outputs(outputs: list, execution_count: int, sanitize) -> list:
    """A cell's outputs as the notebook keeps them: no images (nbval does not compare them; ``<Figure ...>`` or
    ``<IPython.core.display.Image object>`` stays as text), no output metadata, text already sanitized (no
    temporary paths)."""
    import nbformat

    kept = []
    for out in outputs:
        out = dict(out)
        if "text" in out:
            out["text"] = sanitize(out["text"])
        if "data" in out:
            out["data"] = {k: sanitize(v) for k, v in out["data"].items() if not k.startswith("image/")}
            out["metadata"] = {}
        if out["output_type"] == "execute_result":
            out["execution_count"] = execution_count
        kept.append(nbformat.from_dict(out))
    return kept


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    """A notebook's kernel, started when its first cell is set up, runs with LAI_PROGRESS=0 (the notebooks'
    parameter ``progress``): no progress bars or per-epoch timings among the outputs compared. Only there:
    `lai run` started by a test still streams them."""
    if not hasattr(item, "cell_num"):
        yield
        return
    before = os.environ.get(PROGRESS_ENV)
    os.environ[PROGRESS_ENV] = "0"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(PROGRESS_ENV)
        else:
            os.environ[PROGRESS_ENV] = before


_written = {}  # notebook path -> its IPyNbFile, whose cells ran in this process
_failed = set()  # notebooks with a failed cell: not written


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    if call.when != "call" or not item.config.getoption("write_notebook_outputs") or not hasattr(item, "test_outputs"):
        return
    if outcome.get_result().failed:  # that notebook is left as it was: never half rewritten
        _failed.add(item.parent.path)
        return
    # nbval numbers code cells from 0, as pytest_sessionfinish numbers their execution counts from 1
    item.cell.outputs = committed_outputs(item.test_outputs, item.cell_num + 1, item.sanitize)
    _written[item.parent.path] = item.parent


def pytest_sessionfinish(session):
    import nbformat

    for path, notebook in _written.items():
        if path in _failed:
            print(f"\n{path}: a cell failed, so its outputs were not written")
            continue
        for i, cell in enumerate(c for c in notebook.nb.cells if c.cell_type == "code"):
            cell.execution_count = i + 1  # every code cell counts as run: nbval compares only cells that have
        nbformat.write(notebook.nb, str(path))


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist: plain `pytest` without it still runs
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class ByFile(LoadScopeScheduling):
        """One work unit per test file; one for everything that shares the data root (:func:`work_unit`), taken in
        the collection's order (:func:`pytest_collection_modifyitems`)."""

        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    config.option.loadscopereorder = False
    return ByFile(config, log)
