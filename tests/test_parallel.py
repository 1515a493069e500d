"""Many inputs on dask.distributed (simulation, cube, preprocessing, scenes): results do not depend on the workers."""
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from lai.config import PreprocessConfig
from lai.cube import build_cube
from lai.errors import ConfigError, LNBError
from lai.parallel import dask_client
from lai.preprocess import preprocess
from lai.scene import SceneError, predict_scenes
from tests.helpers import scene_manifest, write_tiff


def test_simulate_on_two_dask_workers_writes_the_serial_bytes(tiny_data, tmp_path):
    _, serial, _ = tiny_data  # the tiny profile simulated in one process
    done = subprocess.run([sys.executable, "-m", "lai", "simulate", "--profile", "tiny", "--out", str(tmp_path / "lnb"),
                           "--workers", "2", "--quiet"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["workers"] == 2 and summary["ran_on"] == "dask, 2 workers"  # what ran, not the serial path
    files = sorted(p.relative_to(serial) for p in serial.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "lnb") for p in (tmp_path / "lnb").rglob("*") if p.is_file())
    assert len(files) > 100
    for rel in files:
        assert (serial / rel).read_bytes() == (tmp_path / "lnb" / rel).read_bytes(), rel


def test_workers_and_scheduler_are_exclusive_and_checked():
    with pytest.raises(ConfigError, match="not both"):
        with dask_client(workers=2, scheduler="tcp://127.0.0.1:1"):
            pass
    from lai.parallel import max_workers

    for bad in (0, max_workers() + 1, 1000):
        with pytest.raises(ConfigError, match=rf"--workers must be a number of processes from 1 to {max_workers()} "
                                              rf"\(this machine's cores\), got {bad}"):
            with dask_client(workers=bad):
                pass


def _kill_own_worker(_):
    import os

    os._exit(1)  # as the kernel's OOM killer would end the worker process


def test_a_task_that_kills_its_workers_is_one_error():
    """A task whose worker dies more often than the scheduler allows ends in one line, not KilledWorker's traceback."""
    import dask
    import distributed  # noqa: F401 - its configuration defaults loaded first: config.set's undo would drop them

    from lai.errors import WorkerLostError
    from lai.parallel import map_ordered

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), dask_client(workers=1) as client:
        with pytest.raises(WorkerLostError, match=r"dask workers died while running task .*_kill_own_worker.* Try fewer "
                                                  r"--workers"):
            map_ordered(_kill_own_worker, [0], client)


def completed_tasks(scheduler: dict) -> int:
    """Tasks the cluster at ``scheduler`` has finished so far (its scheduler's count over every task name)."""
    from lai.parallel import new_client

    with new_client(scheduler["scheduler"]) as client:
        counts = client.run_on_scheduler(lambda dask_scheduler: [dict(prefix.state_counts)
                                                                  for prefix in dask_scheduler.task_prefixes.values()])
    return sum(c.get("memory", 0) + c.get("erred", 0) for c in counts)


@pytest.fixture(scope="module")
def scheduler():
    """One local cluster of two single-threaded worker processes for this module (``--scheduler ADDRESS``)."""
    import dask
    from dask.distributed import LocalCluster

    with (tempfile.TemporaryDirectory() as scratch, dask.config.set({"temporary-directory": scratch}),
          LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                       env={"OMP_NUM_THREADS": "1"}) as cluster):  # its scratch space removed afterwards
        yield {"scheduler": cluster.scheduler_address}


def test_a_local_cluster_leaves_nothing_in_the_temporary_folder(tmp_path, monkeypatch):
    """lai's local cluster keeps its workers' scratch space in a folder of its own and removes it (dask's default,
    dask-scratch-space in the temporary folder, stayed after every lai run and cube build on dask)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with dask_client(workers=1) as client:
        assert client.submit(sum, [1, 2]).result() == 3
        assert [p.name[:9] for p in tmp_path.iterdir()] == ["lai-dask-"]
    assert not list(tmp_path.iterdir())


def test_cube_on_two_dask_workers_equals_the_serial_cube(tiny_data, scheduler, tmp_path, capfd):
    import xarray as xr

    profile, lnb, serial = tiny_data
    before = completed_tasks(scheduler)
    summary = build_cube(lnb, tmp_path / "cube.nc", profile.splits, profile.encoding, progress=True, dask=scheduler)
    assert completed_tasks(scheduler) - before >= 120  # a task per triplet ran on the cluster
    assert "build cube" in capfd.readouterr().err  # the progress bar
    with xr.open_dataset(serial, engine="h5netcdf") as a, xr.open_dataset(tmp_path / "cube.nc", engine="h5netcdf") as b:
        assert a.identical(b)  # every array, coordinate and attribute, the fingerprint included
    assert summary.n_triplets == 120
    half = [build_cube(lnb, tmp_path / f"half{i}.nc", profile.splits, profile.encoding, progress=False,
                       cube_float="float16", dask=d) for i, d in enumerate((None, scheduler))]
    assert half[0].fingerprint == half[1].fingerprint != summary.fingerprint  # rounded on the workers as serially


def test_bad_triplets_on_dask_are_raised_or_skipped_as_serially(lnb, scheduler, tmp_path):
    from lai.lnb import MASK_DIR, read_series

    bad = read_series(lnb)[1].names[2]
    write_tiff(lnb / MASK_DIR / bad, np.full((16, 16), 15, np.uint8))
    before = completed_tasks(scheduler)
    with pytest.raises(LNBError, match=f"{bad}.*outside 0..11"):
        build_cube(lnb, tmp_path / "raised.nc", progress=False, dask=scheduler)
    assert not (tmp_path / "raised.nc").exists()
    assert completed_tasks(scheduler) > before  # raised from a task on the cluster
    before = completed_tasks(scheduler)
    on_dask = build_cube(lnb, tmp_path / "dask.nc", on_error="skip", progress=False, dask=scheduler)
    assert completed_tasks(scheduler) - before >= 3  # the three triplets read there
    serial = build_cube(lnb, tmp_path / "serial.nc", on_error="skip", progress=False)
    assert on_dask.skipped == serial.skipped and [s["row"] for s in serial.skipped] == [1]
    assert on_dask.fingerprint == serial.fingerprint and on_dask.n_triplets == 2


def test_preprocess_on_two_dask_workers_writes_the_serial_bytes(scheduler, tmp_path, capfd):
    from tests.test_preprocess import scene

    manifest = scene(tmp_path / "scene", size=64)
    cfg = PreprocessConfig(tile_size=32)
    serial = preprocess(manifest, tmp_path / "serial", cfg, progress=False)
    before = completed_tasks(scheduler)
    on_dask = preprocess(manifest, tmp_path / "dask", cfg, progress=True, dask=scheduler)
    assert completed_tasks(scheduler) > before  # its triplet ran on the cluster
    assert "preprocess" in capfd.readouterr().err
    assert {**serial, "out": ""} == {**on_dask, "out": ""} and serial["triplets"] == 4  # 1 triplet x 4 tiles
    files = sorted(p.relative_to(tmp_path / "serial") for p in (tmp_path / "serial").rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "dask") for p in (tmp_path / "dask").rglob("*") if p.is_file())
    for rel in files:
        if rel.name != "preprocess.json":  # names its own --out
            assert (tmp_path / "serial" / rel).read_bytes() == (tmp_path / "dask" / rel).read_bytes(), rel


def test_relative_paths_reach_the_workers_of_an_existing_cluster(tiny_data, tiny_run, scheduler, tmp_path, monkeypatch):
    """The workers of a --scheduler cluster run in a folder of their own: relative paths sent to them named files
    there (preprocess and simulate ended in tracebacks, cube said a file was missing)."""
    from lai.simulate import simulate
    from tests.test_predict import write_scene
    from tests.test_preprocess import scene

    profile, lnb, _ = tiny_data
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")  # the workers' folder is the one the cluster started in
    scene(Path("scene"), size=64)
    ran = [completed_tasks(scheduler)]  # each step below must run tasks on the cluster, not serially here
    assert preprocess(Path("scene/manifest.yaml"), Path("pre"), PreprocessConfig(tile_size=32), progress=False,
                      dask=scheduler)["triplets"] == 4
    ran.append(completed_tasks(scheduler))
    assert simulate(profile.simulate, Path("sim"), progress=False, dask=scheduler)["ran_on"] == "dask, 2 workers"
    ran.append(completed_tasks(scheduler))
    shutil.copytree(lnb, "lnb")
    assert build_cube(Path("lnb"), Path("cube.nc"), profile.splits, profile.encoding, progress=False,
                      dask=scheduler).n_triplets == 120
    ran.append(completed_tasks(scheduler))
    shutil.copytree(tiny_run, "final")
    manifest = write_scene(Path("s"), (40, 40), [-12.0, -18.0], 3.0, 4)
    (done,) = predict_scenes(Path("final"), [manifest], Path("maps"), window=32, overlap=8, device="cpu", dask=scheduler)
    assert Path("maps/scene.tif").is_file() and done["out"].endswith("maps/scene.tif")
    ran.append(completed_tasks(scheduler))
    assert all(b > a for a, b in zip(ran, ran[1:])), ran


def test_scenes_on_two_dask_workers_equal_the_serial_maps(tiny_run, scheduler, tmp_path, capfd):
    import rasterio
    import yaml
    from affine import Affine

    manifests = []
    for s in range(3):
        rng, root = np.random.default_rng(s), tmp_path / f"scene{s}"
        entries = []
        for k, date in enumerate(("2019-06-01", "2019-06-06", "2019-06-11")):
            kw = dict(crs="EPSG:32633", transform=Affine(10, 0, 500000, 0, -10, 4600000))
            write_tiff(root / f"s1_{k}.tif", rng.uniform(-25, -5, (2, 70, 50)).astype(np.float32), **kw)
            write_tiff(root / f"lai_{k}.tif", rng.uniform(0, 6, (70, 50)).astype(np.float32), **kw)
            entries.append({"date": date, "s1": f"s1_{k}.tif", "lai": f"lai_{k}.tif"})
        (root / f"field{s}.yaml").write_text(yaml.safe_dump(scene_manifest(entries)))
        manifests.append(root / f"field{s}.yaml")
    serial = predict_scenes(tiny_run, manifests, tmp_path / "serial", window=32, overlap=8, device="cpu", progress=False)
    before = completed_tasks(scheduler)
    on_dask = predict_scenes(tiny_run, manifests, tmp_path / "dask", window=32, overlap=8, device="cpu",
                             dask=scheduler)
    assert completed_tasks(scheduler) - before >= 3  # a task per scene ran on the cluster
    assert "predict scenes" in capfd.readouterr().err
    assert [s["out"] for s in on_dask] == [str(tmp_path / "dask" / f"field{s}.tif") for s in range(3)]
    for a, b in zip(serial, on_dask):
        assert {**a, "out": "", "source": ""} == {**b, "out": "", "source": ""}
        with rasterio.open(a["out"]) as x, rasterio.open(b["out"]) as y:
            # equal bytes with OMP_NUM_THREADS=1; serial torch on more threads may sum in another order
            np.testing.assert_allclose(x.read(), y.read(), rtol=0, atol=1e-5)
    with pytest.raises(SceneError, match="share the name"):
        predict_scenes(tiny_run, [manifests[0], manifests[0]], tmp_path / "twice", device="cpu", progress=False)
    sidecar = manifests[0].with_name("field0_source.yaml")
    sidecar.write_text(manifests[0].read_text())  # its map field0_source.tif: the first scene's source map
    with pytest.raises(SceneError, match=r"field0\.yaml and .*field0_source\.yaml: the source map of the first "
                                         r"\(field0_source\.tif\) would be the map of the second"):
        predict_scenes(tiny_run, [manifests[0], sidecar], tmp_path / "clash", device="cpu", progress=False)
    assert not (tmp_path / "clash").exists()
    from lai.cli import main

    cli = ["predict", "--run", str(tiny_run), "--device", "cpu", "--quiet"]
    assert main([*cli, "--scene", *map(str, manifests[:2]), "--out", str(tmp_path / "cli")]) == 0
    assert sorted(p.name for p in (tmp_path / "cli").iterdir()) == ["field0.tif", "field0_source.tif", "field1.tif", "field1_source.tif"]
    assert main([*cli, "--scene", str(manifests[0]), "--out", str(tmp_path / "one.tif"), "--workers", "2"]) == 2
    assert "give several --scene manifests" in capfd.readouterr().err


@pytest.mark.timeout(60)  # a hang guard (the handshake timeout is set to 2 s), not a speed target
@pytest.mark.parametrize("address", ["silent", "foo", "http://127.0.0.1:1/"])
def test_a_scheduler_that_is_not_dask_is_one_line_within_the_timeout(monkeypatch, address):
    """A server that accepts and says nothing (not dask), a bare word or a URL: one ConfigError naming --scheduler,
    within the handshake timeout, never a hang or a traceback."""
    import socket

    from lai import parallel
    from lai.config import ConfigError

    monkeypatch.setattr(parallel, "SCHEDULER_TIMEOUT_S", 2)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        if address == "silent":
            address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
        with pytest.raises(ConfigError, match=r"^--scheduler .*: cannot reach a dask scheduler there within 2s"):
            with parallel.dask_client(scheduler=address):
                pass


def test_bad_headers_on_dask_are_raised_or_skipped_as_serially(lnb, scheduler, tmp_path):
    """The header check runs on the workers too (in chunks of triplets): a mask of the wrong data type is named as
    serially, or its triplet skipped."""
    from lai.lnb import MASK_DIR, read_series

    bad = read_series(lnb)[2].names[0]
    write_tiff(lnb / MASK_DIR / bad, np.zeros((16, 16), np.float32))
    raised = []
    for dask in (None, scheduler):
        before = completed_tasks(scheduler)
        with pytest.raises(LNBError) as err:
            build_cube(lnb, tmp_path / "raised.nc", progress=False, dask=dask)
        raised.append(str(err.value))
        assert (completed_tasks(scheduler) > before) == (dask is not None)  # the header check ran on the cluster
    assert raised[0] == raised[1] and bad in raised[0]
    before = completed_tasks(scheduler)
    on_dask = build_cube(lnb, tmp_path / "dask.nc", on_error="skip", progress=False, dask=scheduler)
    assert completed_tasks(scheduler) > before
    serial = build_cube(lnb, tmp_path / "serial.nc", on_error="skip", progress=False)
    assert on_dask.skipped == serial.skipped and [s["row"] for s in serial.skipped] == [2]
    assert on_dask.fingerprint == serial.fingerprint


def test_lai_run_reads_its_cube_on_dask_only_with_cores_to_spare(monkeypatch):
    """One process on the 2-core machines of the tests and CI (the writer would compete with the readers); on a GPU
    machine's 16 cores, 15 reading workers."""
    import lai.parallel
    from lai.cube import run_cube_dask

    for cores, expected in ((1, None), (2, None), (3, None), (4, {"workers": 3}), (16, {"workers": 15}),
                            (64, {"workers": 16})):
        monkeypatch.setattr(lai.parallel, "max_workers", lambda cores=cores: cores)
        assert run_cube_dask() == expected, cores


def _no_local_cluster(monkeypatch):
    import dask.distributed

    def failing(*args, **kwargs):
        raise RuntimeError("Nanny failed to start.")

    monkeypatch.setattr(dask.distributed, "LocalCluster", failing)


def test_a_local_cluster_that_does_not_start_is_one_error(monkeypatch):
    from lai.errors import ClusterStartError

    _no_local_cluster(monkeypatch)
    with pytest.raises(ClusterStartError, match=r"^a local dask cluster of 2 worker processes did not start \(Nanny failed "
                                                r"to start\.\); run without --workers$"):
        with dask_client(workers=2):
            pass


def test_lai_run_builds_its_cube_in_process_when_its_cluster_does_not_start(tiny_data, tmp_path, monkeypatch, capsys):
    """On 4 cores or more lai run reads on a local cluster; where that cannot start (no local sockets, a sandbox),
    the run goes on in this process, says so, and the cube is the same."""
    import lai.cube
    from lai.run_folder import RunContext

    profile, lnb, serial = tiny_data
    monkeypatch.setattr(lai.cube, "run_cube_dask", lambda: {"workers": 2})
    _no_local_cluster(monkeypatch)
    ctx = RunContext.open(tmp_path / "run", "tiny", data_root=tmp_path / "data", progress=False)
    summary = ctx.ensure_data()
    assert "lai: a local dask cluster of 2 worker processes did not start (Nanny failed to start.); building the cube " \
           "in this process" in capsys.readouterr().err
    assert summary.fingerprint == build_cube(lnb, tmp_path / "again.nc", profile.splits, profile.encoding,
                                             progress=False).fingerprint
