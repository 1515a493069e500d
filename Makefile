# Two commands do everything on a fresh machine:
#   make run    set up, then the main job (the whole notebook pipeline on the quick profile -> reports/quick/report.pdf)
#   make test   set up, then every test (unit tests + all notebooks under nbval with the tiny profile)
VENV    ?= .venv
PYTHON  ?= python3
PROFILE ?= quick
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.lai-installed

.PHONY: setup run test lab bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@# CPU machines: torch 2.13.0 is a local CPU build here; an unpinned torch would pull CUDA wheels.
	@if ! command -v nvidia-smi >/dev/null 2>&1 && ! $(PY) -c "import torch" 2>/dev/null; then \
		$(PY) -m pip install --quiet torch==2.13.0; fi
	$(PY) -m pip install --quiet -e '.[dev]'
	@# a Jupyter kernel named "lai" inside this environment only (--sys-prefix): a user's own JupyterLab
	@# started from this environment lists it; nothing outside the environment is touched
	$(PY) -m ipykernel install --sys-prefix --name lai --display-name "Python (lai)" >/dev/null
	@command -v pdftoppm >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq poppler-utils >/dev/null; } || \
		echo "note: install Debian's poppler-utils (pdftoppm) to render report pages in the tests"
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(VENV)/bin/lai run --profile $(PROFILE)

test: setup
	$(PY) -m pytest

lab: setup
	$(VENV)/bin/lai lab

bench: setup
	$(PY) benchmarks/cube_loading.py
	$(PY) benchmarks/cube_memory.py
	$(PY) benchmarks/simulate_speed.py
	$(PY) benchmarks/train_speed.py

clean:
	rm -rf reports/quick reports/tiny data
