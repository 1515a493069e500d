"""Reliability: corrupted files, SIGKILL at every long stage, reproducible reruns, resource limits.

* A seeded sweep corrupts the files of a valid LNB folder in many ways; every case must end in an
  :class:`LNBError` naming the corrupted file (or, with ``on_error="skip"``, in a reported skip of its
  triplet), in a separate worker process with a per-case time limit, so that a hang or an interpreter
  crash is caught too. A byte flip that still reads must read exactly the original arrays.
* ``lai simulate``, ``lai cube`` and ``lai run`` are killed with SIGKILL (the whole process group, the
  notebook kernel included) mid-way and run again: the outputs equal an uninterrupted run's.
* The pipeline run twice with the same seed gives identical tables (timing columns aside), and every
  run folder records its configuration, versions, git revision and data fingerprint.
* A device-resident split that does not fit is refused with a message naming the split and sizes.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import rasterio

from lai.config import load_profile
from lai.cube import build_cube, check_cube_file, open_cube
from lai.errors import LNBError, PipelineError, ResidencyError, RunFolderError
from lai.facts import DATA_ROOT_ENV, ROWS
from lai.lnb import MASK_DIR, S1_DIR, S2_DIR, SERIES_CSV, index_folder, read_triplet
from tests.helpers import make_lnb, write_tiff

ROOT = Path(__file__).resolve().parent.parent
CLEAR = r"cannot be read|expected|corrupt|truncated|missing"  # every reader message says what is wrong in these words

# --------------------------------------------------------------------------- corruption sweep

KINDS = ("truncate", "flip", "empty", "flip", "garbage", "bands", "flip", "dtype", "size", "missing")
N_CASES = 60
CASE_TIMEOUT_S = 30


def structural_bytes(path: Path) -> list[int]:
    """Positions of the TIFF header (bytes 0..8) and of the first image directory (IFD)."""
    data = path.read_bytes()
    order = "<" if data[:2] == b"II" else ">"
    ifd = struct.unpack(order + "I", data[4:8])[0]
    entries = struct.unpack(order + "H", data[ifd : ifd + 2])[0]
    return list(range(8)) + list(range(ifd, ifd + 2 + 12 * entries + 4))


def corrupt(path: Path, kind: str, seed: int) -> str:
    """Corrupt one LNB TIFF in place, reproducibly from ``seed``; return what was done."""
    rng = np.random.default_rng(seed)
    layer = path.parent.name
    data = path.read_bytes()
    if kind == "truncate":
        n = int(rng.integers(1, len(data)))
        path.write_bytes(data[:n])
        return f"truncated to {n} of {len(data)} bytes"
    if kind == "empty":
        path.write_bytes(b"")
        return "emptied (0 bytes)"
    if kind == "garbage":
        n = int(rng.integers(1, 4096))
        path.write_bytes(rng.bytes(n))
        return f"replaced by {n} random bytes"
    if kind == "flip":
        where = structural_bytes(path)
        positions = sorted(int(p) for p in rng.choice(where, int(rng.integers(1, 4)), replace=False))
        masks = [int(m) for m in rng.integers(1, 256, len(positions))]
        raw = bytearray(data)
        for p, m in zip(positions, masks):
            raw[p] ^= m
        path.write_bytes(bytes(raw))
        return "header/IFD byte(s) " + ", ".join(f"{p} ^= 0x{m:02x}" for p, m in zip(positions, masks))
    if kind == "missing":
        path.unlink()
        return "deleted"
    with rasterio.open(path) as src:
        arr = src.read()
    if kind == "bands":
        count = int(rng.choice([1, 3])) if layer == S1_DIR else int(rng.choice([2, 3]))
        new = np.concatenate([arr] * 3)[:count]
        what = f"rewritten with {count} band(s)"
    elif kind == "dtype":
        choices = ["float32", "int16", "uint16", "int8"] if layer == MASK_DIR else ["int16", "uint8", "int32", "uint16"]
        dtype = str(rng.choice(choices))
        new = arr.astype(dtype)
        what = f"rewritten as {dtype}"
    elif kind == "size":
        dh, dw = (int(v) for v in rng.choice([-8, -1, 1, 8], 2))
        h, w = arr.shape[1] + dh, arr.shape[2] + dw
        new = np.resize(arr, (arr.shape[0], h, w)).astype(arr.dtype)
        what = f"rewritten as {h}x{w} pixels"
    else:
        raise ValueError(kind)
    write_tiff(path, new)
    return what


def read_folder(root: Path) -> dict:
    """{triplet names: (s1, lai, scl, crs, transform)} of every triplet, reading as the cube builder does."""
    index = index_folder(root, progress=False)
    out = {}
    for t in index.triplets:
        d = read_triplet(root, t, (index.height, index.width))
        out[t.names] = (d.s1, d.lai, d.scl, d.crs, d.transform)
    return out


def _same(a, b) -> bool:
    return all(np.array_equal(x, y, equal_nan=True) if isinstance(x, np.ndarray) else x == y for x, y in zip(a, b))


def read_outcome(root: Path, on_error: str, originals: dict, scratch: Path) -> dict:
    """What lai makes of the (corrupted) folder: the reader with on_error="raise", the cube builder with "skip"."""
    try:
        if on_error == "raise":
            got, skipped = read_folder(root), []
        else:
            out = scratch / "cube.nc"
            out.unlink(missing_ok=True)
            summary = build_cube(root, out, on_error="skip", progress=False)
            skipped = summary.skipped
            with h5py.File(out, "r") as f:
                got = {tuple(n.decode() for n in f["name"][i]): (f["s1"][i], f["lai"][i], f["scl"][i])
                       for i in range(f["s1"].shape[0])}
    except LNBError as err:
        return {"outcome": "error", "file": err.file, "message": str(err)}
    except Exception as err:  # noqa: BLE001 - anything else is a finding, reported by the test
        return {"outcome": "other", "message": f"{type(err).__name__}: {err}"}
    equal = all(k in originals and _same(v, originals[k]) for k, v in got.items())
    return {"outcome": "read", "skipped": skipped, "triplets": len(got), "equal": equal}


def sweep_worker(pristine: str, scratch: str) -> None:
    """Worker process: read cases (JSON lines) on stdin, answer ``RESULT {json}`` lines on stdout."""
    pristine, scratch = Path(pristine), Path(scratch)
    root = scratch / "lnb"
    shutil.copytree(pristine, root)
    originals = read_folder(root)
    for line in sys.stdin:
        case = json.loads(line)
        target = root / case["file"]
        try:
            did = corrupt(target, case["kind"], case["seed"])
            result = read_outcome(root, case["on_error"], originals, scratch)
        finally:
            shutil.copy2(pristine / case["file"], target)
        print("RESULT " + json.dumps({**case, "did": did, **result}, default=str), flush=True)


class _Worker:
    """A ``sweep_worker`` subprocess; each case gets a time limit, a hang or crash ends the worker."""

    def __init__(self, pristine: Path, scratch: Path):
        scratch.mkdir(parents=True)
        self.log = open(scratch / "stderr.txt", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; from tests.test_reliability import sweep_worker; sweep_worker(*sys.argv[1:])",
             str(pristine), str(scratch)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
        )
        self.buffer = b""

    def run(self, case: dict, timeout: float) -> dict:
        self.proc.stdin.write((json.dumps(case) + "\n").encode())
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                if line.startswith(b"RESULT "):
                    return json.loads(line[7:])
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                self.close()
                return {**case, "outcome": "hang", "message": f"no answer within {timeout} s"}
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                code = self.proc.wait()
                self.close()
                return {**case, "outcome": "crash", "message": f"worker died with exit code {code}"}
            self.buffer += chunk

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.log.close()


def sweep_cases(files: list[str], n: int = N_CASES, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"id": i, "kind": KINDS[i % len(KINDS)], "file": str(rng.choice(files)),
             "seed": int(rng.integers(2**31)), "on_error": str(rng.choice(["raise", "raise", "skip"]))} for i in range(n)]


def check_case(r: dict, triplet_row: dict) -> str | None:
    """None if the case ended as it must, else what went wrong."""
    if r["outcome"] in ("hang", "crash", "other"):
        return r["message"]
    if r["outcome"] == "error":
        if r["on_error"] == "skip":
            return f"raised under on_error='skip': {r['message']}"
        if not r["file"].endswith(r["file_rel"]):
            return f"error names {r['file']}, not the corrupted file: {r['message']}"
        if not re.search(CLEAR, r["message"]):
            return f"unclear message: {r['message']}"
        return None
    # read without error: fine only when nothing (or exactly the corrupted file's triplet) is lost and data equal
    if not r["equal"]:
        return "read WITHOUT error but the arrays differ from the original file's"
    if r["skipped"]:
        s = r["skipped"]
        if len(s) != 1 or not s[0]["file"].endswith(r["file_rel"]) or s[0]["row"] != triplet_row[r["file_rel"]]:
            return f"skip report does not name the corrupted file's triplet: {s}"
        return None
    if r["kind"] != "flip":
        return "a corrupted file was read as if valid"
    return None


def test_corruption_sweep(tmp_path):
    """60 seeded corruptions of a valid folder: each one an LNBError naming the file, a reported skip,
    or (header byte flips only) a read that returns exactly the original arrays. None hangs or crashes."""
    pristine = make_lnb(tmp_path / "pristine")
    names = pd.read_csv(pristine / SERIES_CSV, dtype=str)[["0", "1", "2"]].values.tolist()
    triplet_row = {f"{layer}/{n}": row for row, trip in enumerate(names) for n in trip for layer in (S1_DIR, S2_DIR, MASK_DIR)}
    cases = sweep_cases(sorted(triplet_row))
    results, worker = [], None
    for case in cases:
        if worker is None or worker.proc.poll() is not None:
            worker = _Worker(pristine, tmp_path / f"worker{case['id']}")
        results.append({**worker.run(case, CASE_TIMEOUT_S), "file_rel": case["file"]})
    worker.close()
    problems = [f"case {r['id']} {r['kind']} {r['file']} ({r.get('did', '')}, on_error={r['on_error']}): {p}"
                for r in results if (p := check_case(r, triplet_row))]
    assert not problems, "\n".join(problems)
    outcomes = pd.Series([r["outcome"] + ("/skip" if r.get("skipped") else "") for r in results]).value_counts()
    harmless = [r for r in results if r["outcome"] == "read" and not r["skipped"]]
    print(f"\n{len(results)} corruptions: {outcomes.to_dict()}; {len(harmless)} header flips read the original data")
    assert {r["kind"] for r in results} == set(KINDS) and len(harmless) < len(results) // 4


@pytest.mark.timeout(300)
def test_every_header_byte_flip_is_caught_or_harmless(lnb):
    """Exhaustive, for one file of each layer: every byte of the header and IFD XOR 0x01, 0x80 and 0xFF.

    Each flip must raise an LNBError naming the file or read exactly the original pixels (the flipped
    byte does not matter). Random sweeps rarely hit the few bytes (strip offsets, bits per sample) that
    GDAL reads without complaint as different pixels; this visits them all.
    """
    from lai.lnb import read_tiff

    name = pd.read_csv(lnb / SERIES_CSV, dtype=str).loc[1, "1"]
    silent, counts = [], {"error": 0, "same": 0}
    for layer in (S1_DIR, S2_DIR, MASK_DIR):
        path = lnb / layer / name
        pristine = path.read_bytes()
        original = read_tiff(path, layer, (16, 16))[0]
        for pos in structural_bytes(path):
            for mask in (0x01, 0x80, 0xFF):
                raw = bytearray(pristine)
                raw[pos] ^= mask
                path.write_bytes(bytes(raw))
                try:
                    data = read_tiff(path, layer, (16, 16))[0]
                except LNBError as err:
                    assert err.file == str(path) and re.search(CLEAR, err.problem), err
                    counts["error"] += 1
                    continue
                if np.array_equal(data, original, equal_nan=True) and data.dtype == original.dtype:
                    counts["same"] += 1
                else:
                    silent.append(f"{layer} byte {pos} ^= 0x{mask:02x}")
        path.write_bytes(pristine)
    assert not silent, f"read without error as different pixels: {silent}"
    print(f"\nheader/IFD byte flips: {counts}")


def test_odd_first_file_is_the_one_named(lnb):
    """The reference tile size is the most common one: a wrong-sized file is named even when it comes first."""
    first = pd.read_csv(lnb / SERIES_CSV, dtype=str).loc[0, "0"]
    write_tiff(lnb / S1_DIR / first, np.zeros((2, 16, 8), np.float32))
    with pytest.raises(LNBError, match="16x8 pixels; expected 16x16") as info:
        index_folder(lnb, progress=False)
    assert info.value.file.endswith(f"{S1_DIR}/{first}")


def damage_header(path: Path, what: str) -> str:
    """Two header corruptions GDAL reads without any warning, as different but plausible pixels."""
    raw = bytearray(path.read_bytes())
    ifd = struct.unpack("<I", raw[4:8])[0]
    for k in range(struct.unpack("<H", raw[ifd : ifd + 2])[0]):
        entry = ifd + 2 + 12 * k
        tag = struct.unpack("<H", raw[entry : entry + 2])[0]
        if what == "strip offset into the IFD" and tag == 273:  # StripOffsets
            raw[entry + 8 : entry + 12] = struct.pack("<I", ifd + 10)
        if what == "bits-per-sample tag lost" and tag == 258:  # BitsPerSample -> an unknown tag: 1 bit by default
            raw[entry] ^= 0x80
    path.write_bytes(bytes(raw))
    return what


@pytest.mark.parametrize("what", ["strip offset into the IFD", "bits-per-sample tag lost"])
def test_header_damage_that_gdal_reads_silently_is_caught(lnb, what):
    name = pd.read_csv(lnb / SERIES_CSV, dtype=str).loc[1, "1"]
    path = lnb / (S2_DIR if what.startswith("strip") else MASK_DIR) / name
    damage_header(path, what)
    with pytest.raises(LNBError, match="corrupt TIFF") as info:
        read_folder(lnb)
    assert info.value.file == str(path)


# --------------------------------------------------------------------------- SIGKILL and rerun


def kill_when(args: list[str], ready, timeout: float = 300, cwd: Path | None = None) -> None:
    """Start ``args`` in its own process group; SIGKILL it and all its descendants as soon as ``ready()`` holds.

    Descendants are killed by id too: a notebook kernel runs in a session of its own.
    """
    import psutil

    proc = subprocess.Popen(args, cwd=cwd or ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while not ready() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        finished = proc.poll() is not None
        if not finished:
            try:
                children = psutil.Process(proc.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                children = []
            os.killpg(proc.pid, signal.SIGKILL)
            for child in children:
                with contextlib.suppress(psutil.NoSuchProcess):
                    child.kill()
            psutil.wait_procs(children, timeout=10)
        proc.wait()
    assert not finished, f"{args[3]} finished (exit {proc.returncode}) before the kill; nothing was tested"


def lai(*args, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lai", *map(str, args)], cwd=cwd or ROOT, capture_output=True,
                          text=True, timeout=timeout, check=False)


def partials(folder: Path) -> list[Path]:
    return sorted(folder.rglob(".*.partial-*"))


@pytest.mark.timeout(300)
def test_simulate_killed_then_rerun_is_byte_identical(tmp_path):
    from lai.simulate import simulate

    sets = ["simulate.train_triplets=40", "simulate.unique_triplets=8"]
    simulate(load_profile("tiny", sets).simulate, tmp_path / "ref", progress=False)
    out = tmp_path / "sim"
    args = [sys.executable, "-m", "lai", "simulate", "--profile", "tiny", "--out", str(out), "--quiet"]
    args += [a for s in sets for a in ("--set", s)]

    def half_written():
        return any(len(list((p / S1_DIR).glob("*.tiff"))) >= 30 for p in tmp_path.glob(".sim.partial-*"))

    kill_when(args, half_written)
    assert not out.exists(), "a killed simulation left a folder under its final name"
    assert partials(tmp_path), "expected the killed run's hidden .partial folder"
    done = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["reused"] is False
    assert not partials(tmp_path), "the rerun left the killed run's partial folder behind"
    ref_files = sorted(p.relative_to(tmp_path / "ref") for p in (tmp_path / "ref").rglob("*") if p.is_file())
    assert ref_files == sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    different = [str(f) for f in ref_files if (tmp_path / "ref" / f).read_bytes() != (out / f).read_bytes()]
    assert not different, different


@pytest.mark.timeout(300)
def test_cube_killed_then_rerun_has_the_same_fingerprint(tiny_data, tmp_path):
    _, lnb, reference = tiny_data
    out = tmp_path / "cube.nc"
    args = [sys.executable, "-m", "lai", "cube", str(lnb), "--out", str(out), "--profile", "tiny", "--quiet"]

    def half_written():
        return any(p.stat().st_size > 1_000_000 for p in tmp_path.glob(".cube.nc.partial-*"))

    kill_when(args, half_written)
    assert not out.exists(), "a killed build left a cube under its final name"
    [partial] = partials(tmp_path)
    info = lai("info", partial)  # the half-written file is refused, clearly
    assert info.returncode == 2 and "Traceback" not in info.stderr, info.stderr
    assert info.stderr.startswith(f"lai info: error: {partial}: "), info.stderr
    done = lai("cube", lnb, "--out", out, "--profile", "tiny", "--quiet")
    assert done.returncode == 0, done.stderr
    assert "(reused)" not in done.stdout
    assert not partials(tmp_path), "the rerun left the killed build's partial file behind"
    assert check_cube_file(out)["fingerprint"] == check_cube_file(reference)["fingerprint"]
    a, b = open_cube(out), open_cube(reference)
    assert (a["split"].values == b["split"].values).all() and (a["name"].values == b["name"].values).all()


TIMING = ["seconds", "samples_per_s"]


@pytest.fixture(scope="module")
def pipeline_runs(tmp_path_factory):
    """Run A uninterrupted; run B killed (with its notebook kernel) once training has begun, then rerun.

    A uses a relative path to a copy of the tiny profile (the notebooks run in another folder), B the
    built-in name; both share one data root, so the data are simulated and cubed once.
    """
    tmp = tmp_path_factory.mktemp("pipeline")
    shutil.copy(ROOT / "lai" / "profiles" / "tiny.yaml", tmp / "tiny.yaml")
    (tmp / "data").symlink_to(os.environ[DATA_ROOT_ENV], target_is_directory=True)  # the session's tiny data, simulated once
    common = ["--reports", "reports", "--data-root", "data"]
    a = lai("run", "--profile", "tiny.yaml", "--name", "a", *common, cwd=tmp)
    assert a.returncode == 0, a.stderr[-3000:]
    b_args = [sys.executable, "-m", "lai", "run", "--profile", "tiny", "--name", "b", *common]
    run_b = tmp / "reports" / "b"
    kill_when(b_args, lambda: (run_b / "runs" / "s1_masks_seas" / "checkpoint.pt").exists(), cwd=tmp)
    killed = {"report": (run_b / "report.pdf").exists(), "tables": sorted(p.name for p in (run_b / "tables").glob("*.csv")),
              "partials": partials(run_b), "output_a": a.stdout + a.stderr}
    b = lai("run", "--profile", "tiny", "--name", "b", *common, cwd=tmp)
    assert b.returncode == 0, b.stderr[-3000:]
    report_time = (tmp / "reports" / "a" / "report.pdf").stat().st_mtime_ns
    again = lai("run", "--profile", "tiny.yaml", "--name", "a", *common, cwd=tmp)
    assert again.returncode == 0, again.stderr[-3000:]
    killed.update(output_b=b.stdout, output_again=again.stdout,
                  report_rewritten=(tmp / "reports" / "a" / "report.pdf").stat().st_mtime_ns != report_time)
    return tmp / "reports" / "a", run_b, killed


def test_rerun_says_what_it_reused_and_executes_only_what_changed(pipeline_runs):
    """A second `lai run` with nothing changed reuses every notebook and leaves the report alone; the rerun
    after a kill reuses the notebook that had finished and runs the one that was interrupted."""
    from lai.pipeline import NOTEBOOKS

    again, b = pipeline_runs[2]["output_again"], pipeline_runs[2]["output_b"]
    for nb in NOTEBOOKS:
        assert f"[lai run] {nb}: reused" in again, again
    assert not pipeline_runs[2]["report_rewritten"]
    assert "[lai run] 01_data.ipynb: reused" in b and "[lai run] 02_training.ipynb: ran (no earlier run here)" in b, b


def test_pipeline_streams_epochs_without_kernel_noise(pipeline_runs):
    """`lai run` shows each notebook and every training stage's per-epoch line, and no kernel log."""
    output = pipeline_runs[2]["output_a"]
    for row in ("s1_masks_seas", "s2_masks_seas", "final", "s1", "s1_masks", "s2_masks"):
        assert f"{row} epoch 1/1: train loss" in output, row
    assert "[lai run] 05_report.ipynb" in output
    assert "IPKernelApp" not in output and "KeyboardInterrupt" not in output
    for nb in (pipeline_runs[0] / "notebooks").glob("*.ipynb"):  # ipywidgets present: no TqdmWarning
        assert "TqdmWarning" not in nb.read_text(), nb.name


def test_notebook_opened_alone_finds_the_runs_data_root(pipeline_runs):
    """`lai run --data-root data` records it in data.json: a notebook that opens the run folder alone
    (run_dir only, as in JupyterLab) uses that data root and its cube, not the default data/."""
    from lai.run_folder import RunContext

    run_a = pipeline_runs[0]
    data_root = (run_a.parent.parent / "data").resolve()
    assert json.loads((run_a / "data.json").read_text())["data_root"] == str(data_root)
    ctx = RunContext.open(run_a)
    assert ctx.data_root == data_root and ctx.cube_path.exists()


@pytest.mark.timeout(900)
def test_pipeline_killed_then_rerun_equals_uninterrupted(pipeline_runs):
    """Same seed, same tables: run B (SIGKILLed mid-training, then rerun) against uninterrupted run A."""
    run_a, run_b, killed = pipeline_runs
    assert not killed["report"] and "table1.csv" not in killed["tables"], "B was killed too late to test anything"
    tables = sorted(p.name for p in (run_a / "tables").glob("*.csv"))
    assert tables == sorted(p.name for p in (run_b / "tables").glob("*.csv"))
    assert {"splits.csv", "training.csv", "final_metrics.csv", "table1.csv", "baselines.csv"} <= set(tables)
    for name in tables:
        ta, tb = pd.read_csv(run_a / "tables" / name), pd.read_csv(run_b / "tables" / name)
        if name == "training.csv":
            ta, tb = ta.drop(columns=TIMING), tb.drop(columns=TIMING)
        pd.testing.assert_frame_equal(ta, tb, check_exact=True, obj=name)
    for run in (run_a, run_b):  # nothing under a final name is a half-written leftover
        assert not [p for p in run.rglob("*") if ".partial-" in p.name and not p.name.startswith(".")]
    assert not partials(run_b / "runs"), "the rerun left the killed training's partial files behind"
    assert json.loads((run_a / "data.json").read_text())["fingerprint"] == json.loads((run_b / "data.json").read_text())["fingerprint"]


@pytest.mark.timeout(900)
def test_run_folder_records_configuration_and_provenance(pipeline_runs):
    import pypdf
    import yaml

    run_a, _, _ = pipeline_runs
    assert yaml.safe_load((run_a / "profile.yaml").read_text()) == load_profile("tiny").to_dict()
    prov = json.loads((run_a / "provenance.json").read_text())
    assert {"lai_version", "git_revision", "git_dirty", "python", "packages", "device", "data_fingerprint"} <= set(prov)
    # the CPU and the kernels torch chose on it: retrained models differ in their last digits between them
    assert prov["cpu"] and isinstance(prov["cpu_kernels"], str) and prov["cpu_kernels"]
    assert prov["torch_threads"] >= 1
    assert prov["packages"]["torch"] and prov["packages"]["rasterio"] != "not installed"
    fingerprint = json.loads((run_a / "data.json").read_text())["fingerprint"]
    assert prov["data_fingerprint"] == fingerprint and len(fingerprint) == 64
    text = "\n".join(page.extract_text() for page in pypdf.PdfReader(run_a / "report.pdf").pages)
    assert prov["git_revision"] in text
    assert fingerprint[:16] in text
    for nb in ("01_data", "02_training", "03_ablations", "04_baselines", "05_report"):
        assert (run_a / "notebooks" / f"{nb}.ipynb").is_file()


# --------------------------------------------------------------------------- notebook parameters


@pytest.mark.timeout(300)
def test_bad_notebook_parameter_names_the_notebook_and_cell(tmp_path, monkeypatch):
    """A notebook whose parameters fail (here the run folder's profile.yaml, broken past the up-front check)
    fails as a PipelineError naming the notebook and cell."""
    from lai import pipeline
    from lai.io import claim_folder

    monkeypatch.setattr(pipeline, "open_run_folder", lambda *a, **k: None)  # skip the up-front claim of the folder
    claim_folder(tmp_path / "x", None)  # a run folder lai made, whose profile.yaml was then broken
    (tmp_path / "x" / "notebooks").mkdir(parents=True)
    (tmp_path / "x" / "profile.yaml").write_text("train: [1, 2\n")
    with pytest.raises(PipelineError) as info:
        pipeline.run_pipeline("tiny", run_name="x", reports_root=tmp_path, data_root=tmp_path / "data", progress=False)
    message = str(info.value)
    assert "notebook 01_data.ipynb failed in cell" in message
    assert "RunFolderError: " in message and "x/profile.yaml: not a configuration this lai can read" in message
    assert (tmp_path / "x" / "notebooks" / "01_data.ipynb").is_file()
    assert not (tmp_path / "x" / "notebooks" / "02_training.ipynb").exists(), "the pipeline went on after a failure"


# --------------------------------------------------------------------------- resource limits


def test_resident_split_that_does_not_fit_is_refused(tiny_data, tmp_path, monkeypatch, capsys):
    from lai import cli, loader

    _, _, cube = tiny_data
    monkeypatch.setattr(loader, "_free_bytes", lambda device: 100 * 2**20)  # 100 MiB "free"
    monkeypatch.setattr(loader.CubeSplit, "nbytes", lambda self, *a, **k: 3 * 2**30)  # a 3 GiB split
    split = loader.CubeSplit(cube, "train")
    with pytest.raises(ResidencyError, match=r"split 'train' of .* needs 3\.00 GiB but only 0\.10 GiB is free on cpu"):
        loader.BatchLoader(split, 8, resident="on")
    assert loader.BatchLoader(split, 8, resident="auto").resident is False  # auto streams instead
    code = cli.main(["train", "--profile", "tiny", "--set", "train.resident=on", "--cube", str(cube),
                     "--runs", str(tmp_path / "runs"), "--row", "s1", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("lai train: error: train.resident=on: split 'train'"), err
    assert "GiB" in err and "Traceback" not in err


def test_a_batch_that_cannot_fit_is_refused_before_it_is_read(tiny_data, monkeypatch):
    """A cube may declare any tile size: the streamed batch is checked against the memory available first."""
    from lai import io, loader

    _, _, cube = tiny_data
    monkeypatch.setattr(io, "free_memory", lambda: 2**20)  # 1 MiB available: a batch of 8 tiny tiles needs 1 MiB
    with pytest.raises(ResidencyError, match=r"cube\.nc: a batch of 8 triplets of 32x32 pixels needs about 0\.000977 GiB, "
                                             r"more than 50% of the 0\.000977 GiB available; use a smaller batch size"):
        loader.BatchLoader(loader.CubeSplit(cube, "train"), 8)
    assert len(loader.BatchLoader(loader.CubeSplit(cube, "train"), 2).split) > 0  # a batch that fits



def test_free_memory_is_read_again_once_its_reading_is_older_than_its_max_age(monkeypatch):
    """A folder's checks ask for the free memory once per file: one reading serves them for a moment, not longer."""
    import types

    import psutil

    from lai import io

    readings = iter([7 * 2**30, 3 * 2**30])
    monkeypatch.setattr(psutil, "virtual_memory", lambda: types.SimpleNamespace(available=next(readings)))
    clock = [100.0]
    monkeypatch.setattr("time.monotonic", lambda: clock[0])
    monkeypatch.setattr(io, "_free_memory_read", [])
    assert io.free_memory() == 7 * 2**30
    clock[0] += io.FREE_MEMORY_MAX_AGE_S / 2
    assert io.free_memory() == 7 * 2**30  # the same reading
    clock[0] += io.FREE_MEMORY_MAX_AGE_S
    assert io.free_memory() == 3 * 2**30  # read again

# --------------------------------------------------------------------------- second pass: values, reuse, OS errors


def edit_tiff(path: Path, edit, **profile) -> None:
    """Rewrite a TIFF after ``edit`` changed its pixels in place (``profile``: e.g. ``nodata=-1``)."""
    with rasterio.open(path) as src:
        arr = src.read()
    edit(arr)
    write_tiff(path, arr, **profile)


def _row_name(root: Path, row: int = 1, col: str = "1") -> str:
    return pd.read_csv(root / SERIES_CSV, dtype=str).loc[row, col]


_WHOLE_LAI = r"has \d+ of \d+ pixel\(s\), 100\.0 % of its usable pixels .* outside the plausible LAI range \[0, 15\]: "
VALUE_CASES = {  # whole files in wrong units (a few bad pixels are masked and counted: tests/test_lnb.py)
    "s1-nodata-undeclared": (S1_DIR, lambda a: a.fill(-9999), r"has 512 of 512 pixel\(s\), 100\.0 % of its backscatter "
                             r"values outside the plausible range \[-60, 30\] dB: values such as -9999"),
    "s1-linear-power": (S1_DIR, lambda a: a.__setitem__(slice(None), np.linspace(0.001, 0.9, a.size).reshape(a.shape)),
                        r"has every backscatter value of VV in \[0, 1\] \(max 0\.44962\): linear power, not dB"),
    "s1-vh-linear-power": (S1_DIR, lambda a: a[1].__setitem__(slice(None), np.linspace(0.001, 0.9, a[1].size).reshape(a[1].shape)),
                           r"has every backscatter value of VH in \[0, 1\] \(max 0\.9\): linear power, not dB"),  # VV in dB
    "lai-nodata-undeclared": (S2_DIR, lambda a: a.fill(-1), _WHOLE_LAI + "values such as -1 "),
    "lai-50": (S2_DIR, lambda a: a.fill(50), _WHOLE_LAI + "values such as 50 "),
    "lai-1e30": (S2_DIR, lambda a: a.fill(1e30), _WHOLE_LAI + r"values such as 1e\+30 "),
}


@pytest.mark.parametrize("case", sorted(VALUE_CASES))
def test_implausible_values_name_file_and_value(lnb, tmp_path, case):
    from lai import cli

    layer, edit, pattern = VALUE_CASES[case]
    name = _row_name(lnb)
    edit_tiff(lnb / layer / name, edit)
    with pytest.raises(LNBError, match=pattern) as info:
        read_folder(lnb)
    assert info.value.file == str(lnb / layer / name)
    # validate --skip-bad and cube --skip-bad skip exactly the same triplet for the same reason
    index = index_folder(lnb, on_error="skip", progress=False)
    assert index.skipped == []
    summary = build_cube(lnb, tmp_path / "c.nc", on_error="skip", progress=False)
    assert [(s["row"], s["file"]) for s in summary.skipped] == [(1, str(lnb / layer / name))]
    assert cli.main(["validate", str(lnb), "--skip-bad", "--quiet"]) == 0


def test_real_unclipped_s1_range_stays_valid(lnb):
    name = _row_name(lnb)
    edit_tiff(lnb / S1_DIR / name, lambda a: (a.__setitem__((0, 0, 0), -38.0), a.__setitem__((1, 0, 1), 9.7)))
    data = read_folder(lnb)
    assert any(d[0].min() == -38.0 and np.isclose(d[0].max(), 9.7) for d in data.values())


def test_declared_nodata_is_read_as_missing(lnb):
    """A nodata value declared in the TIFF is missing data: NaN in the cube where clouds hide the pixel,
    and where the SCL says the pixel is usable too (then its SCL becomes 0, no data)."""
    name = _row_name(lnb)
    edit_tiff(lnb / MASK_DIR / name, lambda a: (a.fill(4), a.__setitem__((0, 4, 4), 9)))
    edit_tiff(lnb / S2_DIR / name, lambda a: a.__setitem__((0, 4, 4), -1), nodata=-1)
    lai = {k[1]: v[1] for k, v in read_folder(lnb).items()}[name]
    assert np.isnan(lai[1, 4, 4]) and np.isfinite(np.delete(lai[1].ravel(), 4 * 16 + 4)).all()
    edit_tiff(lnb / MASK_DIR / name, lambda a: a.fill(4))
    lai, scl = {k[1]: v[1:3] for k, v in read_folder(lnb).items()}[name]
    assert np.isnan(lai[1, 4, 4]) and np.isfinite(np.delete(lai[1].ravel(), 4 * 16 + 4)).all()
    assert scl[1, 4, 4] == 0 and (np.delete(scl[1].ravel(), 4 * 16 + 4) == 4).all()  # usable no more: no data


def test_grid_index_beyond_the_stored_integer_type_is_refused():
    from lai.lnb import TileName

    with pytest.raises(LNBError, match=r"row 3000000000 exceeds 2147483647, the largest index the cube stores \(int32\)"):
        TileName.parse("SPAIN_BADAJOZ_2019-03-01_2019-03-11-0-3-3000000000-1.tiff")


def test_cube_reuse_follows_the_files_not_only_the_csv(tmp_path):
    lnb = make_lnb(tmp_path / "lnb")
    out = tmp_path / "cube.nc"
    first = build_cube(lnb, out, progress=False)
    assert build_cube(lnb, out, progress=False).reused
    edit_tiff(lnb / S2_DIR / _row_name(lnb), lambda a: a.__setitem__((0, 0, 0), 1.25))  # same CSV, edited TIFF
    with pytest.raises(FileExistsError, match=r"cube\.nc already exists and was not built from .*lnb as it is now"):
        build_cube(lnb, out, progress=False)
    rebuilt = build_cube(lnb, out, overwrite=True, progress=False)
    assert not rebuilt.reused and rebuilt.fingerprint != first.fingerprint
    copy = tmp_path / "copy"
    shutil.copytree(lnb, copy)  # another folder with the same CSV
    with pytest.raises(FileExistsError, match="copy as it is now"):
        build_cube(copy, out, progress=False)


def test_model_on_other_split_labels_is_neither_reused_nor_scored(tiny_data, tmp_path):
    from lai.checkpoint import save_checkpoint
    from lai.errors import RunFolderError
    from lai.evaluate import EVALUATED_ON, evaluate_run
    from lai.infer import build_model
    from lai.run_folder import RunContext
    from lai.train import stage_config

    profile, lnb, cube = tiny_data
    resplit = tmp_path / "resplit.nc"
    build_cube(lnb, resplit, load_profile("tiny", ["splits.seed=1"]).splits, profile.encoding, progress=False)
    a, b = open_cube(cube)["split"].values, open_cube(resplit)["split"].values
    leaked = ((b == "non_cloudy") | (b == "cloudy")) & (a == "train")
    assert leaked.any(), "the other split seed should move training triplets into the test sets"
    ctx = RunContext("tiny", run_dir=tmp_path / "report", data_root=tmp_path / "data")
    ctx.cube_path.parent.mkdir(parents=True)
    shutil.copy(cube, ctx.cube_path)
    run = ctx.run_dir / "runs" / "s1"
    cfg = stage_config(profile, "s1", ctx.cube_path)
    save_checkpoint(run / "model.pt", {"model": build_model(cfg.model, cfg.encoding).state_dict(), "config": cfg.to_dict()})
    with pytest.raises(RunFolderError, match="trained on a cube with other split labels"):
        evaluate_run(run, resplit)
    assert not (run / "metrics.csv").exists()
    first = ctx.evaluate("s1")
    before = (run / "metrics.csv").stat().st_mtime_ns
    pd.testing.assert_frame_equal(ctx.evaluate("s1").drop(columns="note"), first.drop(columns="note"),
                                  check_dtype=False)  # read back from metrics.csv (an empty note reads as NaN)
    assert (run / "metrics.csv").stat().st_mtime_ns == before, "metrics of this cube and code were not reused"
    recorded = json.loads((run / EVALUATED_ON).read_text())
    for changed in ({"fingerprint": "x", "splits": "other"},  # metrics of another cube
                    {"lai_code": "0" * 64}):  # computed by other lai code: a fix to the metrics must reach them
        (run / EVALUATED_ON).write_text(json.dumps({**recorded, **changed}))
        before = (run / "metrics.csv").stat().st_mtime_ns
        pd.testing.assert_frame_equal(ctx.evaluate("s1"), first)
        assert (run / "metrics.csv").stat().st_mtime_ns != before, f"cached metrics were reused: {changed}"


def test_the_noise_floor_is_kept_only_for_the_code_that_wrote_it(tiny_data, tmp_path):
    """tables/noise_floor.csv was written once per run folder: a fix to lai.noise never reached it."""
    from lai.facts import TABLE
    from lai.run_folder import RunContext

    _, _, cube = tiny_data
    ctx = RunContext("tiny", run_dir=tmp_path / "report", data_root=tmp_path / "data")
    ctx.cube_path.parent.mkdir(parents=True)
    shutil.copy(cube, ctx.cube_path)
    first = ctx.noise_floor()
    table = ctx.table(TABLE.noise_floor)
    before = table.stat().st_mtime_ns
    pd.testing.assert_frame_equal(ctx.noise_floor().drop(columns="note"), first.drop(columns="note"), check_dtype=False)
    assert table.stat().st_mtime_ns == before, "the floor of this code was computed again"
    # notebook 04 writes the chosen model's columns beside the floor; notebook 03 rerun after it shows the floor alone
    ctx.save_table(first.assign(model="final", model_rmse=0.5), TABLE.noise_floor)
    assert list(ctx.noise_floor().columns) == list(first.columns)
    (ctx.run_dir / "tables" / ".noise_floor.csv.made.json").write_text(json.dumps({"lai_code": "0" * 64}))  # other code
    pd.testing.assert_frame_equal(ctx.noise_floor(), first)
    assert table.stat().st_mtime_ns != before, "a floor written by other lai code was reused"


def test_the_extra_rows_are_in_the_training_table_and_the_report(pipeline_runs):
    """The rows beyond the paper (tiny: extras on) were trained by notebook 04 but missing from tables/training.csv,
    so the report said nothing of how they stopped or how long they took."""
    from lai.facts import EXTRA_ROWS

    run = pipeline_runs[0]
    rows = list(pd.read_csv(run / "tables" / "training.csv")["row"])
    assert set(EXTRA_ROWS) <= set(rows) and rows[:6] == list(ROWS)


def test_the_training_table_keeps_the_stages_another_notebook_listed(tmp_path):
    """Notebooks 02 and 03 both wrote tables/training.csv: rerunning 02 alone (as from JupyterLab) dropped Table 1's
    five other rows, and the report's training section with them, without a word."""
    from lai.facts import TABLE
    from lai.run_folder import RunContext

    ctx = RunContext("tiny", run_dir=tmp_path / "report", data_root=tmp_path / "data")
    for row in ("s1", "s2_masks", "final"):
        (ctx.run_dir / "runs" / row).mkdir(parents=True)
        pd.DataFrame({"epoch": [1, 2], "seconds": [1.0, 1.0], "samples_per_s": [5.0, 5.0], "val_rmse": [0.9, 0.8],
                      "val_mse": [0.03, 0.02]}).to_csv(ctx.run_dir / "runs" / row / "history.csv", index=False)
    env = {"git_revision": "37142eeae7488e9340c4a7f4a046a7fab5864b6a", "git_dirty": False, "lai_version": "0.1.0",
           "cpu": "Intel Xeon", "cpu_kernels": "AVX512", "device": "CPU (2 cores)"}
    (ctx.run_dir / "runs" / "final" / "result.json").write_text(json.dumps({"parameters": 100, "environment": env}))
    ctx.save_training(["s1", "s2_masks", "final"])  # notebook 03
    assert list(ctx.save_training(["final"])["row"]) == ["s1", "s2_masks", "final"]  # notebook 02 again
    table = ctx.read_table(TABLE.training).set_index("row")
    assert list(table.index) == ["s1", "s2_masks", "final"]
    # which code and machine trained each stage (reused across later code): from its result.json
    assert table.loc["final", "trained_at"] == "37142eeae748 (lai 0.1.0)"
    assert table.loc["final", "trained_on"] == "Intel Xeon (AVX512), CPU (2 cores)"
    assert table.loc["s1", "trained_at"] == "unknown"
    from lai.report.inputs import trained_by

    assert trained_by(table.reset_index()) == [("unknown", "? (?), ?", 2),
                                               ("37142eeae748 (lai 0.1.0)", "Intel Xeon (AVX512), CPU (2 cores)", 1)]


def test_an_unreadable_evaluated_on_record_is_named(tmp_path):
    """runs/<row>/evaluated_on.json emptied (adversarial pass 4, D12): notebook 02 failed with a bare JSONDecodeError.
    One RunFolderError naming the file and how to evaluate again."""
    from lai.errors import RunFolderError
    from lai.evaluate import EVALUATED_ON, evaluated_on

    assert evaluated_on(tmp_path) is None  # never evaluated
    (tmp_path / EVALUATED_ON).write_text("")
    with pytest.raises(RunFolderError, match=rf"{tmp_path}/evaluated_on\.json is not readable JSON \(.*\); delete it to "
                       "evaluate that stage again"):
        evaluated_on(tmp_path)
    (tmp_path / EVALUATED_ON).unlink()
    (tmp_path / EVALUATED_ON).symlink_to("/dev/zero")
    with pytest.raises(RunFolderError, match=r"evaluated_on\.json is not a regular file"):
        evaluated_on(tmp_path)


def test_run_folder_records_that_are_no_regular_files_are_refused_by_the_notebooks_readers(tmp_path):
    """What the notebooks read back from their run folder (tables, histories, data.json): a FIFO or a device link is
    one PipelineError naming it, not a hang or memory filling up; a data.json of no use means the default data root."""
    from lai.run_folder import RunContext

    ctx = RunContext("tiny", run_dir=tmp_path / "report", data_root=tmp_path / "data")
    os.mkfifo(ctx.table("selection"))
    with pytest.raises(PipelineError, match=r"tables/selection\.csv is not a regular file.*rerun the notebook"):
        ctx.read_table("selection")
    (ctx.run_dir / "runs" / "s1").mkdir()
    (ctx.run_dir / "runs" / "s1" / "history.csv").symlink_to("/dev/zero")
    with pytest.raises(RunFolderError, match=r"s1/history\.csv is not a regular file.*delete the stage folder \S*runs/s1"):
        ctx.histories(["s1"])
    (ctx.run_dir / "data.json").write_text("[" * 100_000 + "]" * 100_000)
    assert ctx._recorded_data_root() is None
    with pytest.raises(PipelineError, match=r"data\.json is not readable JSON \(nested too deeply\)"):
        ctx.write_provenance()
    from lai.records import read_record

    (ctx.run_dir / "big.csv").write_text("a,b\n1,2\n")
    with pytest.raises(PipelineError, match=r"big\.csv holds 8 bytes, more than the 7 a record lai writes there may have"):
        read_record(ctx.run_dir / "big.csv", PipelineError, "", limit=7)


def test_no_provenance_record_of_a_run_folder_without_results(tmp_path):
    """Notebook 05 run first left a provenance.json in a run folder that held nothing else (the report was refused)."""
    from lai.run_folder import RunContext

    ctx = RunContext("tiny", run_dir=tmp_path / "report", data_root=tmp_path / "data")
    with pytest.raises(PipelineError, match=r"report holds no results yet \(no data\.json, no tables\): run notebooks 01-04"):
        ctx.write_provenance()
    assert not (ctx.run_dir / "provenance.json").exists()


def test_the_notebooks_read_stage_records_through_the_stage_folders_checks(tmp_path):
    """Learning curves and the training table read history.csv and result.json as lai.stage_folder checks them: a
    history without samples/s or a result that is not an object is one RunFolderError naming the file."""
    from lai.run_folder import RunContext

    ctx = RunContext("tiny", run_dir=tmp_path / "report", data_root=tmp_path / "data")
    stage = ctx.run_dir / "runs" / "s1"
    stage.mkdir(parents=True)
    (stage / "history.csv").write_text("epoch,val_mse,val_rmse,seconds\n1,0.1,1.5,2.0\n")
    with pytest.raises(RunFolderError, match=r"s1/history\.csv: expected one row per epoch.*lacking samples_per_s"):
        ctx.histories(["s1"])
    (stage / "history.csv").write_text("epoch,val_mse,val_rmse,seconds,samples_per_s\n1,0.1,1.5,2.0,40\n")
    assert list(ctx.histories(["s1", "s2"])) == ["s1"]
    (stage / "result.json").write_text("[1]")
    with pytest.raises(RunFolderError, match=r"s1/result\.json: expected a JSON object"):
        ctx.training_summary(["s1"])


def test_a_checkpoint_that_is_a_fifo_is_refused_not_waited_on(tmp_path):
    from lai.checkpoint import read_checkpoint
    from lai.errors import RunFolderError

    os.mkfifo(tmp_path / "checkpoint.pt")  # torch.load waited for a writer forever
    with pytest.raises(RunFolderError, match=r"checkpoint\.pt is not a regular file.*delete it"):
        read_checkpoint(tmp_path / "checkpoint.pt")


def test_os_errors_are_one_line_naming_path_and_cause():
    import errno

    from lai.errors import describe_os_error

    assert describe_os_error(OSError(errno.ENOSPC, "No space left on device", "/data/cube.nc")) == \
        "/data/cube.nc: the disk is full (no space left on device)"
    h5 = OSError("Unable to synchronously create file (unable to open file: name = '/ro/cube.nc', errno = 30, "
                 "error message = 'Read-only file system', flags = 13, o_flags = 242)")
    assert describe_os_error(h5) == "/ro/cube.nc: the file system is read-only"
    assert describe_os_error(PermissionError(errno.EACCES, "Permission denied", "/x/image_series.csv")) == \
        "/x/image_series.csv: permission denied"


def cli_capture(*argv) -> tuple[int, str]:
    """``lai ARGV`` in this process: (exit code, stderr)."""
    import io as _io

    from lai import cli

    err = _io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(_io.StringIO()):
        code = cli.main([str(a) for a in argv])
    return code, err.getvalue()


def _raising(match, error, real):
    """A stand-in for ``real`` that raises ``error(path)`` for the paths ``match`` accepts."""
    def call(path, *args, **kwargs):
        if match(path):
            raise error(path)
        return real(path, *args, **kwargs)
    return call


def disk_full_while_simulating(tmp: Path) -> tuple[int, str]:
    """ENOSPC injected where the simulation writes its CSV (as a real write() raises it: no file name)."""
    import errno
    from unittest import mock

    full = _raising(lambda p: ".partial-" in str(p), lambda p: OSError(errno.ENOSPC, "No space left on device"), Path.write_text)
    with mock.patch.object(Path, "write_text", full):
        return cli_capture("simulate", "--profile", "tiny", "--out", tmp / "sim", "--quiet")


def permission_denied_on_csv(lnb: Path) -> tuple[int, str]:
    import errno
    from unittest import mock

    denied = lambda p: PermissionError(errno.EACCES, "Permission denied", str(p))  # noqa: E731
    with mock.patch.object(pd, "read_csv", _raising(lambda p: Path(p) == lnb / SERIES_CSV, denied, pd.read_csv)):
        return cli_capture("validate", lnb, "--quiet")


def permission_denied_on_s1_file(lnb: Path, s1_file: Path) -> tuple[int, str]:
    import builtins
    import errno
    from unittest import mock

    denied = lambda p: PermissionError(errno.EACCES, "Permission denied", str(p))  # noqa: E731
    with mock.patch.object(builtins, "open", _raising(lambda p: str(p) == str(s1_file), denied, builtins.open)):
        return cli_capture("validate", lnb, "--quiet")


def read_only_output_folder(lnb: Path, folder: Path) -> tuple[int, str]:
    import errno
    from unittest import mock

    import lai.io

    read_only = lambda p: OSError(errno.EROFS, "Read-only file system", str(p))  # noqa: E731
    with mock.patch.object(lai.io.os, "open", _raising(lambda p: str(p).startswith(str(folder)), read_only, os.open)):
        return cli_capture("cube", lnb, "--out", folder / "cube.nc", "--profile", "tiny", "--quiet")


def test_disk_full_while_simulating_is_one_message_and_leaves_nothing(tmp_path):
    code, err = disk_full_while_simulating(tmp_path)
    assert code == 2 and err == f"lai simulate: error: {tmp_path / 'sim'}: the disk is full (no space left on device)\n"
    assert list(tmp_path.iterdir()) == []


def test_permission_denied_and_read_only_folders_are_named(lnb, tmp_path):
    """Errors injected at the system-call boundary: the tests run as root, whom permissions do not stop."""
    assert permission_denied_on_csv(lnb) == (2, f"lai validate: error: {lnb / SERIES_CSV}: permission denied\n")
    s1_file = lnb / S1_DIR / _row_name(lnb)
    assert permission_denied_on_s1_file(lnb, s1_file) == (2, f"lai validate: error: {s1_file}: permission denied\n")
    folder = tmp_path / "ro"
    folder.mkdir()
    assert read_only_output_folder(lnb, folder) == (2, f"lai cube: error: {folder}: the file system is read-only\n")
    assert list(folder.iterdir()) == []


def write_limited(args: list, timeout: float = 280) -> subprocess.CompletedProcess:
    """``lai ARGS`` in a process that may not grow a file past 200 kB (RLIMIT_FSIZE): a real failing write."""
    import resource

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # then write() fails with EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))

    return subprocess.run([sys.executable, "-m", "lai", *map(str, args), "--quiet"], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, preexec_fn=limit, check=False)


def write_limited_args(command: str, lnb: Path, cube: Path, out: Path) -> list:
    return {"cube": ["cube", lnb, "--out", out / "cube.nc", "--profile", "tiny"],
            "train": ["train", "--profile", "tiny", "--set", "model.preset=paper", "--set", "model.encoder_widths=null",
                      "--set", "model.decoder_widths=null", "--cube", cube, "--runs", out, "--row", "s1"]}[command]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("command", ["cube", "train"])
def test_write_failure_in_hdf5_or_torch_is_one_message(tiny_data, tmp_path, command):
    """A real failing write (the disk-full path of HDF5 and torch, without mounting a small disk):
    one line, exit 2, no crash, nothing left behind."""
    _, lnb, cube = tiny_data
    out = tmp_path / "out"
    done = write_limited(write_limited_args(command, lnb, cube, out))
    target = out / "cube.nc" if command == "cube" else out / "s1" / "checkpoint.pt"
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr == f"lai {command}: error: {target}: the file grew past the size limit of this system or process\n"
    assert not partials(out) and not list(out.rglob("*.lock"))


def test_notebook_reuse_follows_what_each_notebook_read_and_wrote(tmp_path):
    """lai.pipeline.NotebookInputs without kernels: a notebook is reused while what it read and wrote is unchanged;
    a file a notebook rewrites stops counting for the notebooks before it, and reruns those after it that read it."""
    from lai.pipeline import NotebookInputs

    run, data, nbs = tmp_path / "run", tmp_path / "data", tmp_path / "nbs"
    for d in (run / "notebooks", data, nbs):
        d.mkdir(parents=True)
    for nb in ("01_data.ipynb", "00_preprocessing.ipynb", "05_report.ipynb"):
        (nbs / nb).write_text(nb)
        (run / "notebooks" / nb).write_text("executed")
    inputs = NotebookInputs(run, data)

    def execute(nb, writes):
        before = inputs.snapshot(nbs / nb)
        for name, text in writes.items():
            (run / name).write_text(text)
        inputs.record(nb, before, inputs.snapshot(nbs / nb))

    def changed(nb):
        return inputs.changed(nb, inputs.snapshot(nbs / nb), run / "notebooks" / nb)

    execute("01_data.ipynb", {"provenance.json": "01", "data.json": "cube"})
    execute("00_preprocessing.ipynb", {"snap.csv": "first"})
    execute("05_report.ipynb", {"provenance.json": "05", "report.pdf": "pdf"})
    assert [changed(nb) for nb in ("01_data.ipynb", "00_preprocessing.ipynb", "05_report.ipynb")] == ["", "", ""]
    execute("00_preprocessing.ipynb", {"snap.csv": "second"})  # 00 again, a new table
    assert changed("01_data.ipynb") == "" and changed("00_preprocessing.ipynb") == ""
    assert changed("05_report.ipynb") == "changed since its last run: run/snap.csv"  # 05 read it: runs again
    (run / "data.json").write_text("another cube")
    assert changed("01_data.ipynb") == "changed since its last run: run/data.json"
    (nbs / "05_report.ipynb").write_text("edited")
    assert "<notebook>" in changed("05_report.ipynb")


def test_another_runs_files_in_the_shared_data_root_are_none_of_this_runs_inputs(tmp_path):
    """Runs of other names share the data root: moving another run's cube away reran every notebook of this one,
    "changed since its last run: data/cube-...nc" (a file it never read). Its own simulation and cube (data.json)
    still count."""
    from lai.pipeline import NotebookInputs

    run, data, nbs = tmp_path / "run", tmp_path / "data", tmp_path / "nbs"
    for d in (run / "notebooks", data / "sim-mine", nbs):
        d.mkdir(parents=True)
    (data / "sim-mine" / "tile.tif").write_text("tile")
    (data / "cube-theirs.nc").write_text("theirs")
    for nb in ("01_data.ipynb", "02_training.ipynb"):
        (nbs / nb).write_text(nb)
        (run / "notebooks" / nb).write_text("executed")
    inputs = NotebookInputs(run, data.resolve())

    def execute(nb, make):
        before = inputs.snapshot(nbs / nb)
        make()
        inputs.record(nb, before, inputs.snapshot(nbs / nb))

    def changed(nb):
        return inputs.changed(nb, inputs.snapshot(nbs / nb), run / "notebooks" / nb)

    execute("01_data.ipynb", lambda: ((data / "cube-mine.nc").write_text("mine"), (run / "data.json").write_text(
        json.dumps({"source": str(data / "sim-mine"), "cube": str(data / "cube-mine.nc")}))))
    execute("02_training.ipynb", lambda: (run / "training.csv").write_text("row"))
    (data / "cube-theirs.nc").unlink()
    assert changed("01_data.ipynb") == changed("02_training.ipynb") == ""
    (data / "sim-mine" / "tile.tif").write_text("another tile")
    assert changed("02_training.ipynb") == "changed since its last run: data/sim-mine/tile.tif"


def test_notebook_records_that_are_unreadable_rerun_their_notebook_naming_the_record(tmp_path):
    """A record in notebooks/.inputs nested 200,000 lists deep (adversarial pass 4, D7) raised a RecursionError
    traceback out of `lai run`. Read with lai's bounded reader: the notebook runs again, its line naming the record;
    as an earlier notebook's record, it is dropped when a later notebook is recorded."""
    from lai.pipeline import NotebookInputs

    run, data, nbs = tmp_path / "run", tmp_path / "data", tmp_path / "nbs"
    for d in (run / "notebooks", data, nbs):
        d.mkdir(parents=True)
    for nb in ("01_data.ipynb", "02_training.ipynb"):
        (nbs / nb).write_text(nb)
        (run / "notebooks" / nb).write_text("executed")
    inputs = NotebookInputs(run, data)
    record = run / "notebooks" / ".inputs" / "01_data.ipynb.json"
    for text, why in (("[" * 200_000 + "]" * 200_000, r"is not readable JSON \(nested too deeply\)"),
                      ('{"inputs": [], "outputs": {}}', "is not the record of a notebook's inputs and outputs")):
        record.write_text(text)
        now = inputs.snapshot(nbs / "01_data.ipynb")
        assert re.fullmatch(rf"its record of the last run is unreadable: {record} {why}.*; it is run again",
                            inputs.changed("01_data.ipynb", now, run / "notebooks" / "01_data.ipynb"))
    inputs.record("02_training.ipynb", now, inputs.snapshot(nbs / "02_training.ipynb"))
    assert not record.exists()


def test_notebook_03_alone_asks_for_notebook_02s_choice_before_training_anything(tmp_path):
    """Notebook 03 run by hand in a new run folder trained all six Table 1 rows (48 min on the standard profile), then
    stopped: "selection.csv does not exist yet: run the notebook that writes it first", naming no notebook."""
    from lai.errors import PipelineError
    from lai.run_folder import RunContext

    ctx = RunContext("tiny", run_dir=tmp_path / "report", data_root=tmp_path / "data")
    with pytest.raises(PipelineError, match=r"selection\.csv does not exist yet: notebook 02_training chooses the model"):
        ctx.train_table1(progress=False)
    assert not any((ctx.run_dir / "runs").glob("*/model.pt")) and not (tmp_path / "data").exists()
