"""Writing a simulated dataset: plan the scenes and triplets, name the tiles, write the LNB folder (serially,
in forked processes or on dask), and ``simulation.yaml``. The files do not depend on how they were run."""
from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from lai.config import ConfigError, SimConfig
from lai.io import atomic_path, output_lock
from lai.lnb import MASK_DIR, REVISIT, S1_DIR, S2_DIR, SERIES_CSV, TRUTH_DIR, TileName, write_series, write_tile
from lai.simulate.land import END, PIXEL, START
from lai.simulate.random_fields import name_key
from lai.simulate.regions import REGIONS, Region
from lai.simulate.sensors import Scene

SIM_VERSION = 3  # 3: truth/ holds the true LAI of t-2 and t-1 too (the other files unchanged)
SIMULATION_FILE = "simulation.yaml"  # the SimConfig a simulated LNB folder was written with


@dataclass
class ScenePlan:
    """What to write for one scene: its windows and the (window, row, col) triplets picked."""

    region: Region
    role: str  # "train" or "unique"
    index: int  # scene number within the region
    col_offset: int  # scenes of a region sit side by side (one empty tile between them)
    first: dt.date  # first S2 acquisition of the scene's 5-day timeline
    windows: list  # [(t-2, t-1, t)]
    picks: list = field(default_factory=list)  # [(window, row, col)]

    def n_before(self, date: dt.date) -> int:
        return (date - self.first).days // REVISIT


def _windows(rng, first: dt.date, count: int) -> list:
    """``count`` dated windows spread over the seasons (stratified day of year), years 2017-2020."""
    out, used = [], set()
    for w in range(count):
        for _ in range(1000):
            target = dt.date(int(rng.integers(2017, 2021)), 1, 1) + dt.timedelta(days=int((w + rng.random()) / count * 365))
            t = first + dt.timedelta(days=REVISIT * round((target - first).days / REVISIT))
            t1 = t - dt.timedelta(days=10 if rng.random() < 0.2 else 5)
            t0 = t1 - dt.timedelta(days=10 if rng.random() < 0.2 else 5)
            if t0 >= first and t <= END and (t0, t) not in used:
                break
        else:
            raise ConfigError(f"simulate.windows_per_scene={count} is too many distinct windows for 2017-2020")
        used.add((t0, t))
        out.append((t0, t1, t))
    return sorted(out)


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (i < total % parts) for i in range(parts)]


def plan(cfg: SimConfig) -> list[ScenePlan]:
    """Scenes, windows and picked triplets for every region, deterministic in ``cfg.seed``."""
    plans = []
    per_scene = cfg.grid**2 * cfg.windows_per_scene
    for role, names, total in (("train", cfg.train_regions, cfg.train_triplets), ("unique", cfg.unique_regions, cfg.unique_triplets)):
        if not total:
            continue
        for name, count in zip(names, _split(total, len(names))):
            if not count:  # fewer triplets than regions
                continue
            region = REGIONS[name]
            n_scenes = -(-count // per_scene)
            for index, n in enumerate(_split(count, n_scenes)):
                rng = np.random.default_rng(np.random.SeedSequence([int(cfg.seed), name_key(name), index, 0x9A17]))
                first = START + dt.timedelta(days=int(rng.integers(0, REVISIT)))
                scene = ScenePlan(region, role, index, index * (cfg.grid + 1), first, _windows(rng, first, cfg.windows_per_scene))
                chosen = np.sort(rng.choice(per_scene, size=n, replace=False))
                w, rc = np.divmod(chosen, cfg.grid**2)
                r, c = np.divmod(rc, cfg.grid)
                scene.picks = list(zip(w.tolist(), r.tolist(), c.tolist()))
                plans.append(scene)
    return plans


def check_regions(cfg: SimConfig) -> None:
    """Raise ConfigError for unknown, repeated or shared region names."""
    known = ", ".join(REGIONS)
    for key in ("train_regions", "unique_regions"):
        names = getattr(cfg, key)
        unknown = [n for n in names if n not in REGIONS]
        if unknown:
            raise ConfigError(f"simulate.{key}: unknown region(s) {', '.join(unknown)}; known regions: {known}")
        if len(set(names)) != len(names):
            raise ConfigError(f"simulate.{key} repeats a region: {names}")
    both = sorted(set(cfg.train_regions) & set(cfg.unique_regions))
    if both and cfg.unique_triplets:
        raise ConfigError(f"simulate.unique_regions must not repeat training regions: {', '.join(both)}")
    if cfg.windows_per_scene > 200:
        raise ConfigError(f"simulate.windows_per_scene must be at most 200, got {cfg.windows_per_scene}")


# --------------------------------------------------------------------------- writing


def yaml_text(cfg: SimConfig) -> str:
    """Contents of ``simulation.yaml``: the SimConfig plus a note that the data are simulated."""
    doc = {
        "note": "SIMULATED data written by lai.simulate (not real Sentinel-1/2 observations); "
        "truth/ holds the true LAI of every S2 file (t-2, t-1 and t of every triplet), named after it.",
        "simulated": True,
        "simulator_version": SIM_VERSION,
        "simulate": dataclasses.asdict(cfg),
    }
    return yaml.safe_dump(doc, sort_keys=False)


def scene_dates(scene: ScenePlan) -> dict:
    """Date -> [(window, time index)] for the windows that have picks."""
    used = sorted({w for w, _, _ in scene.picks})
    out: dict = {}
    for w in used:
        for k, d in enumerate(scene.windows[w]):
            out.setdefault(d, []).append((w, k))
    return dict(sorted(out.items()))


def _tile_name(scene: ScenePlan, window: tuple, k: int, row: int, col: int) -> str:
    r = scene.region
    return TileName(r.country, r.area, window[0], window[2], k, scene.n_before(window[k]), row, col + scene.col_offset).format()


def _simulate_scene(cfg: SimConfig, scene: ScenePlan, root: Path, bar=None) -> list:
    """Simulate the dates of one scene, write its picked tiles, return its CSV rows."""
    from affine import Affine
    from rasterio.crs import CRS

    ts = cfg.tile_size
    model = Scene(scene.region, cfg.grid * ts, cfg.seed, scene.index, cfg.cloudiness)
    crs = CRS.from_epsg(scene.region.epsg)
    east, north = scene.region.origin()
    by_window: dict = {}
    for w, r, c in scene.picks:
        by_window.setdefault(w, []).append((r, c))
    for date, uses in scene_dates(scene).items():
        obs = model.observe(date)
        for w, k in uses:
            for r, c in by_window[w]:
                name = _tile_name(scene, scene.windows[w], k, r, c)
                sl = np.s_[r * ts : (r + 1) * ts, c * ts : (c + 1) * ts]
                transform = Affine(PIXEL, 0, east + (c + scene.col_offset) * ts * PIXEL, 0, -PIXEL, north - r * ts * PIXEL)
                write_tile(root / S1_DIR / name, np.stack([obs.vv[sl], obs.vh[sl]]), crs, transform)
                write_tile(root / S2_DIR / name, obs.lai[sl][None], crs, transform)
                write_tile(root / MASK_DIR / name, obs.scl[sl][None], crs, transform)
                write_tile(root / TRUTH_DIR / name, obs.truth[sl][None], crs, transform)
        if bar is not None:
            bar.update(1)
    return [tuple(_tile_name(scene, scene.windows[w], k, r, c) for k in range(3)) for w, r, c in scene.picks]


# --------------------------------------------------------------------------- entry point


def _reuse_or_refuse(out: Path, text: str) -> bool:
    """True if ``out`` holds a finished simulation with this exact ``simulation.yaml``.

    An absent or empty folder is False (it will be written); anything else raises.
    """
    if not out.exists():
        return False
    existing = out / SIMULATION_FILE
    if out.is_dir() and existing.is_file() and existing.read_text() == text and (out / SERIES_CSV).is_file():
        return True
    if out.is_dir() and not any(out.iterdir()):
        return False
    raise FileExistsError(
        f"{out} already exists and does not hold a simulation of this configuration "
        "(different or missing simulation.yaml); choose another folder or delete it"
    )


def _auto_workers(cfg: SimConfig, plans: list) -> int:
    """Processes worth starting: one per scene up to the CPUs, only when the run is not tiny."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    files = 10 * sum(len(s.picks) for s in plans)
    big = files >= 2000 or cfg.grid * cfg.tile_size >= 1024
    return max(1, min(cpus, len(plans), 16)) if big else 1


def _run_scenes(cfg: SimConfig, plans: list, root: Path, workers: int, bar, dask: dict | None = None) -> tuple[list, str]:
    """Simulate every scene, on dask (``dask``: workers or scheduler), in ``workers`` forked
    processes (one scene each) or serially.

    Returns each scene's CSV rows in plan order, and how they ran ("dask, N workers", "N processes", "1 process");
    the files do not depend on how they were run.
    """
    import multiprocessing

    if dask:
        from lai.parallel import dask_client, map_ordered, worker_count

        with dask_client(**dask) as client:
            # absolute: the workers of an existing cluster (--scheduler) run in folders of their own
            rows = map_ordered(functools.partial(_simulate_scene, cfg, root=Path(root).resolve()), plans, client,
                               on_done=lambda i, _: bar.update(len(scene_dates(plans[i]))))
            return rows, f"dask, {worker_count(client)} workers"

    if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
        from concurrent.futures import ProcessPoolExecutor, as_completed

        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
        try:
            futures = {pool.submit(_simulate_scene, cfg, scene, root): i for i, scene in enumerate(plans)}
            results: list = [None] * len(plans)
            for fut in as_completed(futures):
                i = futures[fut]
                results[i] = fut.result()
                bar.update(len(scene_dates(plans[i])))
        except BaseException:  # Ctrl-C, SIGTERM or a failed scene: stop now, not after every queued scene
            running = list((pool._processes or {}).values())  # the scenes being written, thrown away with the rest
            for proc in running:
                proc.kill()  # SIGKILL: a forked worker inherits lai's SIGTERM handler, which would only interrupt its scene
            for proc in running:  # gone before the caller removes the partial folder they write into
                proc.join()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
        return results, f"{workers} processes"
    results = []
    for scene in plans:
        bar.set_postfix_str(f"{scene.region.name} #{scene.index}")
        results.append(_simulate_scene(cfg, scene, root, bar))
    return results, "1 process"


def simulate(cfg: SimConfig, out: str | Path, progress: bool = True, workers: int | None = None,
             dask: dict | None = None) -> dict:
    """Write a simulated dataset in the real LNB layout (plus truth/) to ``out``; return a summary.

    Reuses ``out`` if it already holds a simulation of the identical configuration; refuses
    (FileExistsError) to touch any other existing content. The folder appears atomically
    (built in a hidden sibling, renamed at the end) and is locked while written (a second
    writer is refused; the leftovers of a killed one are removed). ``workers``: processes,
    one scene each (None: automatic); ``dask``: ``{"workers": N}`` or ``{"scheduler": ADDRESS}``
    runs the scenes on dask.distributed instead. The output does not depend on either.
    """
    cfg.validate()
    with output_lock(out):
        return _simulate(cfg, Path(out), progress, workers, dask)


def _simulate(cfg: SimConfig, out: Path, progress: bool, workers: int | None, dask: dict | None) -> dict:
    from lai.progress import tqdm

    cfg.validate()
    check_regions(cfg)
    out, text, start = Path(out), yaml_text(cfg), time.perf_counter()
    summary = {"out": str(out), "train_triplets": cfg.train_triplets, "unique_triplets": cfg.unique_triplets}
    if _reuse_or_refuse(out, text):
        n = max(0, len((out / SERIES_CSV).read_text().splitlines()) - 1)
        return {**summary, "reused": True, "triplets": n, "message": f"reused the existing simulation in {out}",
                "seconds": time.perf_counter() - start}
    plans = plan(cfg)
    workers = _auto_workers(cfg, plans) if workers is None else max(1, int(workers))
    total_dates = sum(len(scene_dates(s)) for s in plans)
    with atomic_path(out) as tmp, tqdm(total=total_dates, desc="simulate", unit="date", disable=not progress) as bar:
        tmp = Path(tmp)
        for sub in (S1_DIR, S2_DIR, MASK_DIR, TRUTH_DIR):
            (tmp / sub).mkdir(parents=True)
        per_scene, ran_on = _run_scenes(cfg, plans, tmp, workers, bar, dask)
        rows = [row for scene_rows in per_scene for row in scene_rows]
        write_series(tmp, rows)
        (tmp / SIMULATION_FILE).write_text(text)
    regions: dict = {}
    for scene in plans:
        info = regions.setdefault(scene.region.name, {"role": scene.role, "scenes": 0, "triplets": 0})
        info["scenes"] += 1
        info["triplets"] += len(scene.picks)
    seconds = time.perf_counter() - start
    return {
        **summary, "reused": False, "triplets": len(rows), "regions": regions, "scenes": len(plans),
        "files": 10 * len(rows), "workers": dask.get("workers") if dask else workers,  # None: an existing cluster
        "ran_on": ran_on,
        "message": f"simulated {len(rows)} triplets into {out}",
        "seconds": seconds, "triplets_per_second": len(rows) / max(seconds, 1e-9),
    }
