"""Time, memory and disk of the paper profile's data stage (simulate + cube), measured on a fraction.

The paper profile simulates 9,640 triplets of 256x256 pixels on scenes of 8x8 tiles. This script
simulates a fixed fraction of it with the same scene size and triplets per scene (default: one
training region, i.e. its two scenes of about 318 triplets), on a local dask cluster of
``--workers`` processes, then builds the cube from it twice (float32, float16), also on dask.

Measured per step: wall time; CPU time (user+sys) of this process (the scheduler side: for the cube,
the single HDF5 writer) and of the worker processes (``RUSAGE_CHILDREN`` once they have exited);
peak resident memory of this process, of the largest worker and of the whole process tree (psutil,
sampled every 0.2 s); folder and cube sizes. Starting and stopping the cluster is measured alone
once, since every step pays it. A sample of the folder's GeoTIFFs is also rewritten
with DEFLATE (floating-point predictor) to show what compressing them would save.

Projection to the full profile: sizes scale with triplets; simulation CPU with the scene-dates the
simulator computes (every date of a scene is simulated over the whole 2048x2048 scene; the tiles
written scale with triplets but cost little, so this is an estimate); cube CPU with triplets. On
N cores: simulation CPU / N but never below ceil(scenes / N) scenes in a row (one scene per task);
cube CPU / N but never below the single writer's own CPU. Outputs are deleted at the end.

    python benchmarks/data_stage.py --workers 2 --json benchmarks/results/data-stage-paper-fraction.json
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import resource
import shutil
import tempfile
import threading
import time
from pathlib import Path

import psutil
from _common import report_header

from lai.config import CUBE_FLOATS, load_profile
from lai.cube import build_cube
from lai.simulate import plan, scene_dates, simulate

FRACTION = ["simulate.train_regions=[SPAIN_BADAJOZ]", "simulate.train_triplets=636", "simulate.unique_triplets=0",
            "splits.held_out_areas=[]"]


class Sampler:
    """Peak RSS of this process, of its largest descendant and of the whole tree, sampled in a thread."""

    def __init__(self, interval: float = 0.2):
        self.interval, self.me = interval, psutil.Process()
        self.parent = self.child = self.tree = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                own = self.me.memory_info().rss
                kids = []
                for p in self.me.children(recursive=True):
                    try:
                        kids.append(p.memory_info().rss)
                    except psutil.Error:
                        pass
                self.parent, self.child = max(self.parent, own), max([self.child, *kids])
                self.tree = max(self.tree, own + sum(kids))
            except psutil.Error:
                pass
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def measured(step):
    """Run ``step()``; return its result and wall, CPU (this process / workers) and peak memory in MiB."""
    self0, kids0 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with Sampler() as mem:
        result = step()
    wall = time.perf_counter() - start
    self1, kids1 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_self = (self1.ru_utime - self0.ru_utime) + (self1.ru_stime - self0.ru_stime)
    cpu_workers = (kids1.ru_utime - kids0.ru_utime) + (kids1.ru_stime - kids0.ru_stime)
    mib = 2**20
    return result, {
        "wall_s": round(wall, 1), "cpu_parent_s": round(cpu_self, 1), "cpu_workers_s": round(cpu_workers, 1),
        "cpu_total_s": round(cpu_self + cpu_workers, 1), "peak_rss_parent_mib": round(mem.parent / mib),
        "peak_rss_largest_worker_mib": round(mem.child / mib), "peak_rss_tree_mib": round(mem.tree / mib),
    }


def folder_bytes(root: Path) -> dict:
    sizes = {sub.name: sum(f.stat().st_size for f in sub.rglob("*") if f.is_file()) for sub in root.iterdir() if sub.is_dir()}
    sizes["total"] = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    return sizes


def deflate_ratio(root: Path, n_files: int = 40) -> dict:
    """Compressed / raw size of a sample of the folder's TIFFs rewritten with DEFLATE (per layer)."""
    import rasterio

    out = {}
    with tempfile.TemporaryDirectory(dir=root.parent) as tmp:
        for layer in ("s1", "s2", "s2-mask", "truth"):
            files = sorted((root / layer).iterdir())[:: max(1, len(list((root / layer).iterdir())) // n_files)][:n_files]
            raw = packed = 0
            for f in files:
                with rasterio.open(f) as src:
                    data, profile = src.read(), src.profile
                predictor = 3 if data.dtype.kind == "f" else 2
                target = Path(tmp) / f.name
                with rasterio.open(target, "w", **{**profile, "compress": "deflate", "predictor": predictor}) as dst:
                    dst.write(data)
                raw, packed = raw + f.stat().st_size, packed + target.stat().st_size
                target.unlink()
            out[layer] = round(packed / raw, 3)
    return out


def empty_cluster(dask: dict) -> None:
    """Start the cluster, run one trivial task, stop it: the fixed cost inside every measured step."""
    from lai.parallel import dask_client, map_ordered

    with dask_client(**dask) as client:
        map_ordered(abs, [-1], client)


def plan_stats(cfg) -> dict:
    plans = plan(cfg)
    return {"scenes": len(plans), "triplets": sum(len(s.picks) for s in plans),
            "scene_dates": sum(len(scene_dates(s)) for s in plans)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--set", dest="overrides", action="append", default=None, metavar="KEY=VALUE",
                        help=f"overrides of the paper profile selecting the fraction (default: {' '.join(FRACTION)})")
    parser.add_argument("--workdir", type=Path, default=None, help="where the outputs go (deleted after; default: a temp dir)")
    parser.add_argument("--cores", type=int, default=16, help="core count to project to")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--note", default="", help="what else ran on the machine meanwhile")
    args = parser.parse_args()
    overrides = FRACTION if args.overrides is None else args.overrides
    profile, full = load_profile("paper", overrides), load_profile("paper")
    part, whole = plan_stats(profile.simulate), plan_stats(full.simulate)
    # paper-size triplet: s1 6 + lai 3 + truth 1 float32 planes, scl 3 uint8 planes
    need = part["triplets"] * 256 * 256 * (10 * 4 + 3) * 2.6
    workdir = Path(tempfile.mkdtemp(prefix="lai-data-stage-", dir=args.workdir))
    free = shutil.disk_usage(workdir).free
    if need > 0.8 * free:
        raise SystemExit(f"{workdir}: {free / 1e9:.1f} GB free, the measurement needs about {need / 1e9:.1f} GB")
    dask = {"workers": args.workers}
    results: dict = {
        "machine": {**report_header(__file__)["machine"], "ram_gib": round(psutil.virtual_memory().total / 2**30)},
        "note": args.note, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "workers": args.workers,
        "overrides": overrides, "fraction": part, "paper_profile": whole,
        "triplet_ratio": whole["triplets"] / part["triplets"], "scene_date_ratio": whole["scene_dates"] / part["scene_dates"],
    }
    try:
        _, results["cluster_start_stop"] = measured(functools.partial(empty_cluster, dask))
        lnb = workdir / "lnb"
        summary, results["simulate"] = measured(lambda: simulate(profile.simulate, lnb, progress=False, dask=dask))
        results["simulate"]["triplets"] = summary["triplets"]
        results["folder_bytes"] = folder_bytes(lnb)
        print("simulate", json.dumps(results["simulate"]), flush=True)
        for dtype in CUBE_FLOATS:
            cube = workdir / f"cube-{dtype}.nc"
            _, results[f"cube_{dtype}"] = measured(functools.partial(
                build_cube, lnb, cube, profile.splits, profile.encoding, progress=False, cube_float=dtype, dask=dask))
            results[f"cube_{dtype}"]["bytes"] = cube.stat().st_size
            print(f"cube {dtype}", json.dumps(results[f"cube_{dtype}"]), flush=True)
            cube.unlink()
        results["tiff_deflate_ratio"] = deflate_ratio(lnb)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results["projection"] = project(results, args.cores)
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")


def project(r: dict, cores: int) -> dict:
    """Linear projection to the whole paper profile, on this machine's cores and on ``cores`` cores."""
    tr, sr, whole = r["triplet_ratio"], r["scene_date_ratio"], r["paper_profile"]
    gb, fixed = 1e9, r["cluster_start_stop"]

    def scaled(step: dict, key: str, ratio: float) -> float:
        """CPU seconds of a step scaled to the whole profile, the cluster's fixed start/stop cost counted once."""
        return max(0.0, step[key] - fixed[key]) * ratio + fixed[key]

    sim_cpu = scaled(r["simulate"], "cpu_total_s", sr)
    per_scene = sim_cpu / whole["scenes"]
    out = {
        "assumptions": "sizes x triplets; simulation CPU x scene-dates; cube CPU x triplets (CPU of starting and stopping "
                       "the cluster, measured alone, counted once); on N cores: simulation "
                       "max(CPU/N, ceil(scenes/N) scenes in a row), cube max(CPU/N, the single writer's CPU); memory per "
                       "worker does not grow with triplets (one scene at a time), the writer's neither",
        "folder_gb": round(r["folder_bytes"]["total"] * tr / gb, 1),
        "cube_float32_gb": round(r["cube_float32"]["bytes"] * tr / gb, 1),
        "cube_float16_gb": round(r["cube_float16"]["bytes"] * tr / gb, 1),
        "simulate_cpu_h": round(sim_cpu / 3600, 2),
    }
    out["folder_plus_cube_float32_gb"] = round(out["folder_gb"] + out["cube_float32_gb"], 1)
    out["folder_plus_cube_float16_gb"] = round(out["folder_gb"] + out["cube_float16_gb"], 1)
    for dtype in CUBE_FLOATS:
        c = r[f"cube_{dtype}"]
        out[f"cube_{dtype}_cpu_h"] = round(scaled(c, "cpu_total_s", tr) / 3600, 2)
        out[f"cube_{dtype}_writer_cpu_h"] = round(scaled(c, "cpu_parent_s", tr) / 3600, 2)
    for n in (r["workers"], cores):
        sim = max(sim_cpu / n, math.ceil(whole["scenes"] / n) * per_scene)
        c = r["cube_float16"]
        cube = max(scaled(c, "cpu_total_s", tr) / n, scaled(c, "cpu_parent_s", tr))
        out[f"wall_h_on_{n}_cores"] = {"simulate": round(sim / 3600, 2), "cube_float16": round(cube / 3600, 2),
                                       "peak_rss_gib": round((n * r["simulate"]["peak_rss_largest_worker_mib"]
                                                              + r["simulate"]["peak_rss_parent_mib"]) / 1024, 1)}
    return out


if __name__ == "__main__":
    main()
