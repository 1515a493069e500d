"""Cube build with and without GDAL's folder listing on every open (``GDAL_DISABLE_READDIR_ON_OPEN``)::

    python benchmarks/gdal_open.py LNB_FOLDER [--rounds 3] [--json benchmarks/results/gdal-open.json]

``LNB_FOLDER``: e.g. the quick run's simulated folder (``data/sim-*`` after ``make run``). Builds its cube with
the quick profile's splits in a fresh process per build, ``FALSE`` (GDAL lists the folder on each open, its
default) and ``TRUE`` (lai's setting, ``lai/__init__.py``) alternating for ``--rounds`` rounds; prints and writes
the wall time of each build, the medians and their ratio. The cubes are written to a temporary folder and deleted.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import report_header, write_report

BUILD = ("from pathlib import Path; import sys; from lai.config import load_profile; from lai.cube import build_cube; "
         "p = load_profile('quick'); build_cube(Path(sys.argv[1]), Path(sys.argv[2]), p.splits, p.encoding, progress=False)")


def build_seconds(folder: Path, out: Path, setting: str) -> float:
    env = {**os.environ, "GDAL_DISABLE_READDIR_ON_OPEN": setting}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", BUILD, str(folder), str(out)], env=env, check=True)
    seconds = time.perf_counter() - t0
    out.unlink()
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path, default=Path(__file__).resolve().parent / "results" / "gdal-open.json")
    args = ap.parse_args()
    files = sum(1 for _ in args.folder.rglob("*.tif*"))
    times: dict[str, list[float]] = {"FALSE": [], "TRUE": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for setting in times:
                times[setting].append(build_seconds(args.folder, Path(tmp) / f"cube-{setting}-{r}.nc", setting))
                print(f"round {r + 1}: GDAL_DISABLE_READDIR_ON_OPEN={setting}: {times[setting][-1]:.1f} s", flush=True)
    medians = {k: statistics.median(v) for k, v in times.items()}
    report = {**report_header(__file__), "folder": str(args.folder), "tiffs": files,
              "load_average": os.getloadavg(), "seconds": times, "median": medians,
              "speed_up": medians["FALSE"] / medians["TRUE"]}
    print(f"{files} TIFFs: median {medians['FALSE']:.1f} s (listing the folder on each open) vs {medians['TRUE']:.1f} s "
          f"(not): {report['speed_up']:.2f}x")
    write_report(args.json, report)


if __name__ == "__main__":
    main()
