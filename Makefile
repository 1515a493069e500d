# Two commands do everything on a fresh machine:
#   make run    set up, then the main job (the whole notebook pipeline on the quick profile -> reports/quick/report.pdf)
#   make test   set up, then the linter (ruff) and every test (unit tests + all notebooks under nbval, tiny profile)
VENV    ?= .venv
PYTHON  ?= python3
PROFILE ?= quick
# pytest-xdist workers of make test (conftest.py keeps the tests that share data on one)
TEST_WORKERS ?= 2
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.lai-installed

.PHONY: setup run test notebook-outputs reference lab bench clean

# exit status 0 when the user's Jupyter kernel "lai" is absent or runs this environment's Python
define USER_KERNEL_IS_OURS
import json, os, sys
from jupyter_core.paths import jupyter_data_dir
spec = os.path.join(jupyter_data_dir(), "kernels", "lai", "kernel.json")
try:
    theirs = json.load(open(spec))["argv"][0]
except FileNotFoundError:
    sys.exit(0)
except (OSError, ValueError, KeyError, IndexError, TypeError):
    sys.exit(1)
sys.exit(0 if theirs == sys.executable else 1)  # a venv's python: compare the paths, not what they link to
endef
export USER_KERNEL_IS_OURS

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@# CPU machines: torch 2.13.0 is a local CPU build here; an unpinned torch would pull CUDA wheels.
	@if ! command -v nvidia-smi >/dev/null 2>&1 && ! $(PY) -c "import torch" 2>/dev/null; then \
		$(PY) -m pip install --quiet torch==2.13.0; fi
	$(PY) -m pip install --quiet -e '.[dev]'
	@# the notebooks' Jupyter kernel "lai" (this environment's Python), in the environment (--sys-prefix)
	$(PY) -m ipykernel install --sys-prefix --name lai --display-name "Python (lai)" >/dev/null
	@# and for the user, so that a JupyterLab started outside this environment lists the notebooks' kernel too,
	@# unless the user's kernel "lai" is another environment's (another checkout's): that one is left as it is
	@if $(PY) -c "$$USER_KERNEL_IS_OURS"; then $(PY) -m ipykernel install --user --name lai --display-name "Python (lai)" >/dev/null; \
	else echo "note: the user's Jupyter kernel 'lai' runs another environment's Python: left as it is (this one's is in $(VENV))"; fi
	@command -v pdftoppm >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq poppler-utils >/dev/null; } || \
		echo "note: install Debian's poppler-utils (pdftoppm) to render report pages in the tests"
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(VENV)/bin/lai run --profile $(PROFILE)

test: setup
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -n $(TEST_WORKERS)

# the notebooks' committed outputs, which make test compares (tiny profile, executed as the tests execute them):
# run after a change that alters what a notebook displays, then commit notebooks/
notebook-outputs: setup
	$(PY) -m pytest notebooks --nbval-lax --write-notebook-outputs

# the reference results in git: the standard profile's run (about an hour on 2 CPU cores), published without
# cubes or weights to reports/reference/
reference: setup
	$(VENV)/bin/lai run --profile standard
	$(VENV)/bin/lai publish reports/standard reports/reference --command-line "make reference"

# options for jupyter lab: make lab LAB_ARGS="--no-browser --port 8899"
lab: setup
	$(VENV)/bin/lai lab $(LAB_ARGS)

# each benchmark's figures also as JSON under data/ (not committed; benchmarks/results/ holds the quoted runs)
bench: setup
	$(PY) benchmarks/cube_loading.py --out data/bench-cube-loading.json
	$(PY) benchmarks/memory.py --out data/bench-memory.json
	$(PY) benchmarks/simulate_speed.py --out data/bench-simulate-speed.json
	$(PY) benchmarks/gpu.py --preset small --tile 64 --batch 16 --triplets 256 --variants fp32 --skip training --inference-compile none --out data/bench-training-speed.json

clean:
	rm -rf reports/quick reports/tiny data
