#!/bin/bash
# Pack what `lai run` needs beyond a GPU image's Python (torch, numpy, pandas, xarray, h5py, scipy, scikit-learn,
# matplotlib, seaborn, tqdm, pyyaml, psutil are there) into one .devsite/site.tar.xz for a device call: the wheels
# of the versions in this checkout's .venv, for CPython 3.12 on manylinux x86-64, installed into one folder and
# compressed (about 49 MB, 2 minutes; the wheels alone are about 75 MB). Also copies 54ad904's lai/ and benchmarks/
# to .devsite/base for benchmarks/gpu_session.sh. Usage: tools/pack_gpu_site.sh (then see docs/gpu.md).
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.devsite/' .git/info/exclude 2>/dev/null || echo /.devsite/ >> .git/info/exclude
NEEDED="affine cligj click-plugins rasterio h5netcdf papermill nbformat nbclient jupyter_client jupyter_core ipykernel
ipython ipython_pygments_lexers traitlets pyzmq tornado comm matplotlib-inline prompt_toolkit wcwidth stack-data executing
asttokens pure_eval pexpect ptyprocess nest-asyncio2 fastjsonschema jsonschema jsonschema-specifications referencing
rpds-py platformdirs entrypoints tenacity typst dask distributed partd locket tblib zict ipywidgets jupyterlab_widgets"
freeze=$(.venv/bin/python -m pip freeze)
pins=$(for p in $NEEDED; do echo "$freeze" | grep -i "^${p}==" | head -1; done)
wheels=$(mktemp -d); site=$(mktemp -d)
plat="--python-version 3.12 --implementation cp --only-binary=:all:"
for n in 28 27 26 24 17 5; do plat="$plat --platform manylinux_2_${n}_x86_64"; done
plat="$plat --platform manylinux2014_x86_64 --platform manylinux1_x86_64"
python3 -m pip download -q --no-deps $plat -d "$wheels" $pins
python3 -m pip install -q --no-index --no-deps --no-compile --target "$site" $plat "$wheels"/*.whl
mkdir -p .devsite
tar -C "$site" -cf - . | xz -9 -T0 > .devsite/site.tar.xz
rm -rf "$wheels" "$site" .devsite/base && mkdir -p .devsite/base
git archive 54ad904 lai benchmarks | tar -x -C .devsite/base
ls -la .devsite/site.tar.xz
