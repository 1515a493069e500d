"""A huge ``image_series.csv`` naming files that do not exist: how long ``lai validate`` takes, and how much memory,
to its first error (the first missing file), for this checkout and optionally an older one::

    python benchmarks/big_series.py --rows 3000000 [--old OLD_CHECKOUT] --out /tmp/big_series.json

The folder (s1/, s2/, s2-mask/ empty; the CSV of well-formed names, ~160 bytes a row) is written to a temporary
folder and removed afterwards. Each checkout runs as ``python -m lai validate`` in a subprocess under
``/usr/bin/time``-like accounting (wall time, peak resident memory of the child: ``resource.getrusage``).
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import report_header, write_report  # noqa: E402


def write_folder(root: Path, rows: int) -> None:
    """An LNB folder whose CSV names ``rows`` triplets of well-formed names and whose subfolders are empty."""
    for sub in ("s1", "s2", "s2-mask"):
        (root / sub).mkdir(parents=True)
    start = dt.date(2018, 1, 1)
    with open(root / "image_series.csv", "w") as f:
        f.write("0,1,2\n")
        for i in range(rows):
            a = start + dt.timedelta(days=i % 1000)
            b = a + dt.timedelta(days=10)
            r, c = divmod(i // 1000, 1000)
            f.write(",".join(f"FRANCE_BEAUCE_{a}_{b}-{k}-{i % 1000 * 3 + k}-{r}-{c}.tiff" for k in range(3)) + "\n")


def validate(checkout: Path, folder: Path) -> dict:
    """Wall time, peak RSS and the last line of ``lai validate folder`` run from ``checkout``'s package."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "lai", "validate", str(folder), "--quiet"], env=env,
                          capture_output=True, text=True, cwd=tempfile.gettempdir())
    seconds = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the largest child so far
    return {"checkout": str(checkout), "seconds": seconds, "peak_rss_gib_max_so_far": peak_kib / 2**20,
            "exit": proc.returncode, "message": (proc.stderr.strip().splitlines() or [""])[-1]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=3_000_000)
    ap.add_argument("--old", type=Path, help="an older checkout to compare with (run second)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "lnb"
        write_folder(folder, args.rows)
        runs = [validate(Path(__file__).resolve().parent.parent, folder)]
        if args.old:  # run after this checkout: ru_maxrss of children is a running maximum
            runs.append(validate(args.old.resolve(), folder))
    for r in runs:
        print(f"{r['checkout']}: {r['seconds']:.1f} s, peak RSS so far {r['peak_rss_gib_max_so_far']:.2f} GiB, "
              f"exit {r['exit']}: {r['message']}")
    write_report(args.out, report_header(__file__) | {
        "rows": args.rows, "load_average": os.getloadavg(), "runs": runs})


if __name__ == "__main__":
    main()
