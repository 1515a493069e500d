"""Shared set-up for the benchmarks: a simulated LNB folder and its cube in a cache folder.

Heavy modules (pandas, lai's cube and simulator) are imported where used, so that a measured child process
that needs only :func:`peak_rss_mib` does not start with their memory."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
from pathlib import Path

from lai.facts import BASELINES, ORACLE, RUN_DATA_FILE, RUN_PROFILE_FILE, TABLE

CACHE = Path(__file__).resolve().parent.parent / "data" / "benchmarks"


def report_header(script: str) -> dict:
    """What every benchmark's JSON starts with: when, which script (``__file__`` of the caller, named
    ``benchmarks/<file>``), on what machine (load: by the caller)."""
    import torch

    from lai.provenance import cpu_model

    return {"date": dt.datetime.now().isoformat(timespec="seconds"), "script": f"benchmarks/{Path(script).name}",
            "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpu": cpu_model(),
                        "cpu_kernels": torch.backends.cpu.get_cpu_capability(), "cpu_count": os.cpu_count(),
                        "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                        "python": platform.python_version()}}


def median_seconds(fn, steps: int, warmup: int = 0) -> float:
    """Median wall time of ``steps`` calls of ``fn`` after ``warmup`` untimed ones."""
    import statistics
    import time

    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def peak_rss_mib() -> float:
    """This process's peak resident memory so far, in MiB: VmHWM of /proc/self/status. Not ``ru_maxrss``, which a
    process started by ``subprocess`` inherits from its parent through exec (Linux keeps the larger of the two): a
    child measured by it reported its parent's peak, and the cube build row of 2026-12-03/05 was the parent's."""
    try:
        with open("/proc/self/status") as status:
            line = next(line for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        raise RuntimeError("peak memory needs Linux's /proc/self/status (VmHWM)") from None
    return int(line.split()[1]) / 1024


def run_cube(run: Path) -> Path:
    """The cube a finished lai run was trained and scored on (recorded by its data step)."""
    return Path(json.loads((run / RUN_DATA_FILE).read_text())["cube"])


def run_chosen(run: Path) -> str:
    """The chosen model of a finished lai run (its tables/selection.csv)."""
    import pandas as pd

    from lai.facts import chosen_model, result_file

    return chosen_model(pd.read_csv(run / result_file("table", TABLE.selection)).to_dict("records"))


def run_profile(run: Path):
    """The profile a finished lai run ran with (its profile.yaml)."""
    from lai.config import load_profile

    return load_profile(run / RUN_PROFILE_FILE)


def stage_cube(run: Path, stage: str) -> str:
    """The cube a stage of a finished lai run was trained on (its config.yaml)."""
    import yaml

    from lai.facts import STAGE_CONFIG_FILE

    return yaml.safe_load((run / "runs" / stage / STAGE_CONFIG_FILE).read_text())["cube"]["path"]


def run_comparators(run: Path, baselines=BASELINES) -> dict:
    """A finished run's per-triplet sums of ``baselines`` and of the oracle bound (key :data:`lai.facts.ORACLE`),
    as data frames read from its tables: the other side of :func:`lai.tables.comparisons`."""
    import pandas as pd

    from lai.facts import result_file

    base = pd.read_csv(run / result_file("table", TABLE.baselines_per_triplet))
    return {**{b: base[base["baseline"] == b] for b in baselines},
            ORACLE: pd.read_csv(run / result_file("table", TABLE.oracle_per_triplet))}


def write_report(path: Path, report: dict) -> None:
    """The benchmark's figures as JSON at ``path`` (its folder made if needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
    print(f"written {path}")


def simulated_cube(train_triplets: int, unique_triplets: int = 0, tile_size: int = 64, grid: int = 4,
                   windows: int = 8, progress: bool = False) -> tuple[Path, Path]:
    """Simulate (or reuse) a dataset of the given size; return (lnb folder, cube path)."""
    from lai.config import SimConfig, load_profile
    from lai.cube import build_cube
    from lai.simulate import simulate

    cfg = SimConfig(train_triplets=train_triplets, unique_triplets=unique_triplets, tile_size=tile_size,
                    grid=grid, windows_per_scene=windows,
                    unique_regions=SimConfig().unique_regions if unique_triplets else [])
    key = hashlib.sha256(json.dumps(cfg.__dict__, sort_keys=True).encode()).hexdigest()[:10]
    lnb = CACHE / f"lnb-{key}"
    simulate(cfg, lnb, progress=progress)
    profile = load_profile("quick")
    cube = CACHE / f"cube-{key}.nc"
    build_cube(lnb, cube, profile.splits, profile.encoding, progress=progress)
    return lnb, cube
