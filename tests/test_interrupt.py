"""Ctrl-C during `lai run` (SIGINT to the whole foreground process group, kernel included)."""
import os
import signal
import subprocess
import sys


def test_ctrl_c_during_training_ends_with_one_line(tmp_path):
    args = [sys.executable, "-m", "lai", "run", "--profile", "tiny", "--reports", str(tmp_path / "reports"),
            "--data-root", os.environ["LAI_DATA_ROOT"]]  # the session's tiny data (conftest.py): simulated once
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
