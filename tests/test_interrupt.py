"""Ctrl-C during `lai run` (SIGINT to the whole foreground process group, kernel included)."""
import os
import signal
import subprocess
import sys

from lai.facts import DATA_ROOT_ENV


def test_ctrl_c_during_training_ends_with_one_line(tmp_path):
    args = [sys.executable, "-m", "lai", "run", "--profile", "tiny", "--reports", str(tmp_path / "reports"),
            "--data-root", os.environ[DATA_ROOT_ENV]]  # the session's tiny data (conftest.py): simulated once
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    seen = []
    try:
        for line in p.stdout:  # wait until training has begun
            seen.append(line)
            if " epoch 1/" in line:
                break
        os.killpg(p.pid, signal.SIGINT)
        rest, _ = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert any(" epoch 1/" in line for line in seen), "".join(seen)[-2000:]
    assert p.returncode == 130
    assert rest.strip().splitlines()[-1] == "lai run: interrupted"
    assert "Traceback" not in rest and "ZMQError" not in rest, rest[-3000:]


def test_sigterm_stops_a_simulation_on_worker_processes_at_once(tmp_path):
    """The forked workers went on with every queued scene (20 s and more) before the partial folder was removed."""
    import time

    out = tmp_path / "sim"
    args = [sys.executable, "-m", "lai", "simulate", "--profile", "tiny", "--set", "simulate.train_triplets=1200",
            "--set", "simulate.tile_size=64", "--out", str(out), "--quiet"]  # large enough for 2 worker processes
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not any(tmp_path.glob(".sim.partial-*/s1/*.tiff")) and time.monotonic() < deadline:
            time.sleep(0.1)  # the workers are writing scenes
        assert p.poll() is None, p.stderr.read()
        p.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        _, err = p.communicate(timeout=120)
        waited = time.monotonic() - t0
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode == 130 and err.strip().splitlines()[-1] == "lai simulate: interrupted", err[-2000:]
    assert waited < 5, f"{waited:.1f} s from SIGTERM to exit"
    assert list(tmp_path.iterdir()) == []  # nothing half-written left, not even by a worker after the clean-up
