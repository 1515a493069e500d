"""Training under torchrun: two CPU processes (gloo) against one, with the same global batch."""
import json
import os
import subprocess
import sys

import pandas as pd
import pytest

# Per-rank BatchNorm statistics (4 samples instead of 8) and per-rank pooled losses (DDP averages the
# ranks' gradients; one process pools the pixels of all 8 samples) make the two runs differ slightly,
# never by more than this relative amount on the first epoch's mean training loss.
LOSS_TOLERANCE = 0.05


@pytest.fixture(autouse=True)
def _torchrun_logs_in_tmp_path(tmp_path, monkeypatch):
    """torchrun makes a log folder (torchelastic_*) in the temporary folder and leaves it: keep it in tmp_path."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))


def train(cube, runs, *launcher, cwd=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [*launcher, "-m", "lai", "train", "--profile", "tiny", "--cube", str(cube), "--runs", str(runs),
            "--row", "s2_masks", "--quiet", "--set", "train.epochs=1", "--set", "train.batch_size=8"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, env=env, cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    return runs / "s2_masks"


def test_torchrun_two_processes_train_like_one(tiny_data, tmp_path):
    _, _, cube = tiny_data
    one = train(cube, tmp_path / "one", sys.executable)
    two = train(cube, tmp_path / "two", sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc_per_node", "2")
    two_result, one_result = (json.loads((run / "result.json").read_text()) for run in (two, one))
    assert two_result["world_size"] == 2 and one_result["world_size"] == 1
    # the ranks trained one model: their gradients were averaged at every step (each rank alone drifts apart)
    assert two_result["ranks_identical"] is True and one_result["ranks_identical"] is True
    assert sorted(p.name for p in two.glob("*.pt")) == ["checkpoint.pt", "model.pt"]  # written once, by rank 0
    h1, h2 = pd.read_csv(one / "history.csv"), pd.read_csv(two / "history.csv")
    loss1, loss2 = h1["train_loss"].iloc[0], h2["train_loss"].iloc[0]
    assert abs(loss2 - loss1) / loss1 < LOSS_TOLERANCE, (loss1, loss2)


def test_torchrun_killed_then_resumed_equals_uninterrupted(tiny_data, tmp_path, monkeypatch):
    """SIGKILL a 2-process run once its first epoch's checkpoint exists; `--resume` ends with the weights
    of an uninterrupted 2-process run (augmentation on: each rank's draws come from seed, rank and epoch)."""
    import torch

    from tests.test_reliability import kill_when

    _, _, cube = tiny_data
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    args = ["--profile", "tiny", "--cube", str(cube), "--row", "s2_masks", "--quiet", "--set", "train.epochs=3",
            "--set", "train.batch_size=8", "--set", "train.schedule=milestones", "--set", "train.augment=true"]
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the same arithmetic in all three runs

    def run(runs, *extra):
        done = subprocess.run([*torchrun, "-m", "lai", "train", *args, "--runs", str(runs), *extra],
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]

    run(tmp_path / "whole")
    killed = tmp_path / "killed"
    kill_when([*torchrun, "-m", "lai", "train", *args, "--runs", str(killed)],
              lambda: (killed / "s2_masks" / "checkpoint.pt").exists())
    assert not (killed / "s2_masks" / "model.pt").exists()
    run(killed, "--resume")
    a = torch.load(tmp_path / "whole" / "s2_masks" / "model.pt", weights_only=True)["model"]
    b = torch.load(killed / "s2_masks" / "model.pt", weights_only=True)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
