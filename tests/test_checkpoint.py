"""Model files: plain tensors and values only, loaded with ``weights_only=True``; anything else refused."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from lai.checkpoint import (
    read_checkpoint,
    read_pretrained,
    read_trained,
    save_checkpoint,
    stage_config_from,
)
from lai.errors import RunFolderError
from lai.infer import load_trained
from lai.train import stage_config, train_stage
from tests.test_cli import Payload


def test_pickle_payload_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    for key in ("model", "config"):
        torch.save({"model": {}, "config": {}, key: Payload(marker)}, tmp_path / "model.pt")
        with pytest.raises(RunFolderError, match=r"model\.pt: refused: it holds Python objects other than tensors"):
            read_trained(tmp_path)
        with pytest.raises(RunFolderError, match="refused"):
            read_pretrained(tmp_path / "model.pt", expect_part="enc1")
    assert not marker.exists()
    torch.save({"model": {}, "config": {}, "x": Payload(marker)}, tmp_path / "model.pt", pickle_protocol=2)
    with pytest.raises(RunFolderError, match="refused"):
        read_checkpoint(tmp_path / "model.pt")
    assert not marker.exists()


def test_numpy_values_and_generator_states_round_trip(tmp_path):
    torch.manual_seed(7)
    state = {"history": [{"loss": np.float32(0.5), "epoch": np.int64(2)}], "torch_rng": torch.get_rng_state(),
             "array": np.arange(4)}
    expected = torch.rand(3)
    save_checkpoint(tmp_path / "c.pt", state)
    loaded = read_checkpoint(tmp_path / "c.pt")  # weights_only=True
    assert loaded["history"] == [{"loss": 0.5, "epoch": 2}] and torch.equal(loaded["array"], torch.arange(4))
    torch.manual_seed(0)
    torch.set_rng_state(loaded["torch_rng"])
    assert torch.equal(torch.rand(3), expected)


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory):
    """A finished tiny-profile stage (row s1)."""
    profile, _, cube = tiny_data
    run = tmp_path_factory.mktemp("trained") / "s1"
    train_stage(profile, "s1", cube, run, progress=False)
    return run


def test_trained_files_load_safely_and_broken_ones_are_named(tiny_data, trained, tmp_path):
    profile, _, cube = tiny_data
    run = trained
    for name in ("model.pt", "checkpoint.pt"):
        assert isinstance(torch.load(run / name, weights_only=True), dict)
    trained = load_trained(run, "cpu")
    assert trained.row == "s1" and sum(p.numel() for p in trained.model.parameters()) > 0
    cfg = stage_config(profile, "s1", cube).to_dict()
    with pytest.raises(RunFolderError, match=r"here\.pt: broken model configuration \(ConfigError: stage configuration lacks encoding\)"):
        stage_config_from({k: v for k, v in cfg.items() if k != "encoding"}, "here.pt")
    truncated = tmp_path / "t" / "model.pt"
    truncated.parent.mkdir()
    truncated.write_bytes((run / "model.pt").read_bytes()[:500])
    with pytest.raises(RunFolderError, match=r"t/model\.pt: cannot be read as a lai checkpoint"):
        load_trained(truncated.parent, "cpu")


def test_resume_from_a_checkpoint_of_another_shape_is_refused(tiny_data, trained, tmp_path):
    profile, _, cube = tiny_data
    run = tmp_path / "s1"
    shutil.copytree(trained, run)
    (run / "result.json").unlink()
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    state["model"] = {"nothing": torch.zeros(1)}
    torch.save(state, run / "checkpoint.pt")
    with pytest.raises(RunFolderError, match=r"s1/checkpoint\.pt: weights do not fit the model"):
        train_stage(profile, "s1", cube, run, resume=True, progress=False)
    del state["optimizer"]
    torch.save(state, run / "checkpoint.pt")
    with pytest.raises(RunFolderError, match=r"s1/checkpoint\.pt: not a lai checkpoint \(lacks optimizer\)"):
        train_stage(profile, "s1", cube, run, resume=True, progress=False)
