"""Training on the tiny simulated cube: determinism, resume after a kill, run-folder guards."""
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import pandas as pd
import pytest
import torch
import yaml

from lai.checkpoint import TrainingState, milestones, read_pretrained
from lai.config import load_profile
from lai.errors import ConfigError, RunFolderError
from lai.evaluate import evaluate_run
from lai.train import train_rows, train_stage


def profile_with(**train):
    return load_profile("tiny", [f"train.{k}={v}" for k, v in train.items()])


def weights(run):
    return torch.load(run / "model.pt", weights_only=True)["model"]


def same_weights(a, b):
    return all(torch.equal(a[k], b[k]) for k in a) and a.keys() == b.keys()


def test_milestones_paper_and_reference():
    assert milestones(100, "paper") == [33, 67]
    assert milestones(30, "reference") == [15, 30]  # the reference decays once, at the middle


def test_same_seed_same_numbers_and_config_saved(tiny_data, tmp_path):
    _, _, cube = tiny_data
    p = profile_with(epochs=2)
    a = train_stage(p, "s2_masks", cube, tmp_path / "a", progress=False)
    b = train_stage(p, "s2_masks", cube, tmp_path / "b", progress=False)
    assert same_weights(weights(tmp_path / "a"), weights(tmp_path / "b"))
    pd.testing.assert_frame_equal(a.history.drop(columns=["seconds", "samples_per_s"]),
                                  b.history.drop(columns=["seconds", "samples_per_s"]))
    cfg = yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())
    assert cfg["row"] == "s2_masks" and cfg["train"]["epochs"] == 2 and cfg["cube"]["fingerprint"]
    assert list(a.history["epoch"]) == [1, 2] and (tmp_path / "a" / "history.csv").exists()


@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_interrupted_then_resumed_equals_uninterrupted(tiny_data, tmp_path, monkeypatch, ema):
    _, _, cube = tiny_data
    p = profile_with(epochs=3, ema=ema)  # with a moving average of the weights, the checkpoint carries it too
    full = train_stage(p, "s1_masks_seas", cube, tmp_path / "full", progress=False)

    real_save = TrainingState.save

    def save_then_die(state, path, config):
        real_save(state, path, config)
        if state.next_epoch == 1:
            raise KeyboardInterrupt  # killed right after the first epoch's checkpoint

    monkeypatch.setattr(TrainingState, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_stage(p, "s1_masks_seas", cube, tmp_path / "cut", progress=False)
    monkeypatch.setattr(TrainingState, "save", real_save)
    assert not (tmp_path / "cut" / "model.pt").exists()
    with pytest.raises(RunFolderError, match="pass --resume"):
        train_stage(p, "s1_masks_seas", cube, tmp_path / "cut", progress=False)
    import lai.train

    epochs_run, train_epoch = [], lai.train.train_epoch
    monkeypatch.setattr(lai.train, "train_epoch", lambda *a, **k: epochs_run.append(1) or train_epoch(*a, **k))
    resumed = train_stage(p, "s1_masks_seas", cube, tmp_path / "cut", resume=True, progress=False)
    assert len(epochs_run) == 2  # epochs 2 and 3: the first came from the checkpoint, not trained again
    assert same_weights(weights(tmp_path / "full"), weights(tmp_path / "cut"))
    cols = ["epoch", "lr", "train_loss", "val_mse"]
    pd.testing.assert_frame_equal(full.history[cols], resumed.history[cols])


def test_model_keeps_best_validation_weights_and_says_whether_it_converged(tiny_data, tmp_path):
    _, _, cube = tiny_data
    p = profile_with(epochs=3, patience=1, schedule="milestones")
    res = train_stage(p, "s2_masks", cube, tmp_path / "r", progress=False)
    result = json.loads((tmp_path / "r" / "result.json").read_text())
    best = int(res.history["val_mse"].idxmin())
    assert result["best_epoch"] == best + 1 and result["epochs"] == 3
    assert result["converged"] == (best < 2)
    ckpt = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=False)
    assert same_weights(weights(tmp_path / "r"), ckpt["best_model"])
    assert same_weights(ckpt["model"], ckpt["best_model"]) == (best == 2)


def test_moving_average_of_the_weights_known_answer():
    """train.ema: the first step's weights, then decay * average + (1 - decay) * weights, BatchNorm statistics too."""
    model = torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.BatchNorm1d(1))
    state = TrainingState.start(model, replace(load_profile("tiny").train, ema=0.75))
    with torch.no_grad():
        model[0].weight.fill_(4.0), model[1].running_mean.fill_(8.0)
        state.after_step()
        model[0].weight.fill_(0.0), model[1].running_mean.fill_(0.0)
        state.after_step()
    assert torch.allclose(state.scored[0].weight, torch.full((1, 2), 3.0))
    assert torch.allclose(state.scored[1].running_mean, torch.tensor([6.0]))
    assert torch.equal(model[0].weight, torch.zeros(1, 2))  # the model itself trains on, unaveraged
    assert TrainingState.start(model, load_profile("tiny").train).scored is model  # off by default
    with pytest.raises(ConfigError, match="train.ema"):
        profile_with(ema=1.0)


def test_decay_from_best_restarts_each_plateau_decay_from_the_best_weights():
    """train.decay_from_best: when the plateau schedule decays the learning rate, the model goes on from the
    best-validation weights so far; without it (PyTorch's rule) from the last epoch's; refused where it cannot act."""
    base = replace(load_profile("tiny").train, lr_patience=0, schedule="plateau")
    for on in (True, False):
        model = torch.nn.Linear(2, 1)
        state = TrainingState.start(model, replace(base, decay_from_best=on))
        with torch.no_grad():
            model.weight.fill_(1.0)
        state.end_epoch({"epoch": 1, "val_mse": 1.0})  # the best so far: weights 1
        with torch.no_grad():
            model.weight.fill_(2.0)
        lr = state.lr
        state.end_epoch({"epoch": 2, "val_mse": 2.0})  # worse: the plateau decays at once (lr_patience 0)
        assert state.lr < lr
        assert torch.equal(model.weight, torch.full((1, 2), 1.0 if on else 2.0)), on
        with torch.no_grad():
            model.weight.fill_(3.0)
        state.end_epoch({"epoch": 3, "val_mse": 0.5})  # better, no decay: the weights stay as trained
        assert torch.equal(model.weight, torch.full((1, 2), 3.0))
    for bad in ({"schedule": "milestones"}, {"ema": 0.9}):
        with pytest.raises(ConfigError, match="train.decay_from_best"):
            profile_with(decay_from_best=True, **bad)


def test_moving_average_is_what_validation_scores_and_the_run_keeps(tiny_data, tmp_path, monkeypatch):
    import lai.train as train_mod

    _, _, cube = tiny_data
    scored = []
    real_validate = train_mod.validate
    monkeypatch.setattr(train_mod, "validate", lambda m, *a, **k: scored.append(m) or real_validate(m, *a, **k))
    train_stage(profile_with(epochs=1, ema=0.9), "s2_masks", cube, tmp_path / "r", progress=False)
    ckpt = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=True)
    average = {k.removeprefix("module."): v for k, v in ckpt["averaged"].items() if k.startswith("module.")}
    assert same_weights(weights(tmp_path / "r"), average) and not same_weights(ckpt["model"], average)
    assert len(scored) == 1 and all(torch.equal(v, scored[0].state_dict()[k]) for k, v in average.items())


def test_plateau_schedule_stops_when_validation_stops_improving(tiny_data, tmp_path, monkeypatch):
    import lai.train as train_mod

    _, _, cube = tiny_data
    monkeypatch.setattr(train_mod, "validate", lambda *a, **k: {"val_mse": 1.0, "val_rmse": 5.0})
    p = profile_with(epochs=10, patience=2, lr_patience=0, schedule="plateau")
    res = train_stage(p, "s2_masks", cube, tmp_path / "r", progress=False)
    result = json.loads((tmp_path / "r" / "result.json").read_text())
    assert list(res.history["epoch"]) == [1, 2, 3] and result["best_epoch"] == 1 and result["converged"]
    assert list(res.history["lr"]) == pytest.approx([1e-3, 1e-3, 2e-4])  # decayed after one epoch without progress


def test_convergence_and_early_stop_rule():
    from lai.train import convergence

    falling = pd.DataFrame({"epoch": [1, 2, 3, 4], "val_mse": [4.0, 3.0, 2.0, 1.0], "val_rmse": [2.0, 1.7, 1.4, 1.0]})
    flat = falling.assign(val_mse=[4.0, 1.0, 2.0, 3.0])
    assert convergence(falling, 2) == {"best_epoch": 4, "best_val_rmse": 1.0, "stopped_epoch": 4, "flat_epochs": 0,
                                       "converged": False}
    assert convergence(flat, 2)["converged"] and convergence(flat, 2)["best_epoch"] == 2
    assert (convergence(flat, 2)["stopped_epoch"], convergence(flat, 2)["flat_epochs"]) == (4, 2)
    assert not convergence(flat, 3)["converged"]


def test_sigkill_mid_training_then_resume(tiny_data, tmp_path):
    """A real SIGKILL during the second epoch; `lai train --resume` ends with the uninterrupted weights."""
    _, _, cube = tiny_data
    args = [sys.executable, "-m", "lai", "train", "--profile", "tiny", "--cube", str(cube), "--row", "s2_masks",
            "--set", "train.epochs=4", "--quiet"]
    subprocess.run(args + ["--runs", str(tmp_path / "full")], check=True, capture_output=True)
    run = tmp_path / "cut"
    proc = subprocess.Popen(args + ["--runs", str(run)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = run / "s2_masks" / "checkpoint.pt"
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run / "s2_masks" / "model.pt").exists(), "killed too late to test anything"
    saved = torch.load(ckpt, weights_only=False)["history"]  # the epochs done before the kill, with their timings
    done = subprocess.run(args + ["--runs", str(run), "--resume"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert same_weights(weights(tmp_path / "full" / "s2_masks"), weights(run / "s2_masks"))
    history = pd.read_csv(run / "s2_masks" / "history.csv")  # those epochs kept, not trained again (a timing differs)
    assert len(saved) >= 1 and list(history["seconds"][: len(saved)]) == pytest.approx([h["seconds"] for h in saved],
                                                                                       rel=1e-9)


def test_resume_under_another_number_of_processes_is_recorded(tiny_data, tmp_path, capsys):
    """A stage whose first epoch ran on two torchrun processes, resumed by one: the rerun says so, and
    result.json and history.csv record both world sizes (a checkpoint edited to stand for the two-process epoch)."""
    from lai.checkpoint import STATE_KEYS, read_checkpoint, save_checkpoint
    from lai.train import train_stage

    _, _, cube = tiny_data
    p = profile_with(epochs=2, max_batches_per_epoch=2)
    run = tmp_path / "s2_masks"
    train_stage(p, "s2_masks", cube, run, progress=False)
    state = read_checkpoint(run / "checkpoint.pt", STATE_KEYS)
    state["history"] = [{**state["history"][0], "world_size": 2}]
    state["epoch"] = 0
    save_checkpoint(run / "checkpoint.pt", state)
    (run / "result.json").unlink()
    (run / "model.pt").unlink()
    capsys.readouterr()
    train_stage(p, "s2_masks", cube, run, resume=True, progress=False)
    assert "resuming a stage trained on 2 process(es) with 1" in capsys.readouterr().err
    result = json.loads((run / "result.json").read_text())
    assert result["world_size"] == 1 and result["world_sizes"] == [2, 1]
    assert list(pd.read_csv(run / "history.csv")["world_size"]) == [2, 1]


def test_resume_refuses_a_checkpoint_of_another_configuration(tiny_data, tmp_path):
    """A stage folder whose config.yaml says train.lr 0.5 and 3 epochs beside a checkpoint.pt saved at lr 0.001 (one
    epoch): resuming would train on at the checkpoint's settings while result.json and model.pt claimed the new ones.
    Refused, naming the stage folder and the differing keys; nothing in it is written."""
    from lai.train import stage_config

    _, _, cube = tiny_data
    run = tmp_path / "s1"
    train_stage(profile_with(epochs=1, max_batches_per_epoch=1), "s1", cube, run, progress=False)
    (run / "result.json").unlink()
    (run / "model.pt").unlink()  # an unfinished stage
    p = profile_with(epochs=3, lr=0.5, max_batches_per_epoch=1)
    (run / "config.yaml").write_text(yaml.safe_dump(stage_config(p, "s1", cube).to_dict(), sort_keys=False))
    before = {f.name: f.read_bytes() for f in run.iterdir()}
    with pytest.raises(RunFolderError, match=rf"{run}: checkpoint\.pt was saved by a run of another configuration than "
                       r"the stage's now \(different train\.epochs: 1 there, 3 here; train\.lr: 0\.001 there, 0\.5 here\).*"
                       r"train into a new --runs folder, or delete the stage folder"):
        train_stage(p, "s1", cube, run, resume=True, progress=False)
    assert {f.name: f.read_bytes() for f in run.iterdir()} == before


@pytest.mark.parametrize("field, value, message", [
    ("history", [1, 2], r"damaged checkpoint \(ValueError: its history holds 2 record\(s\) for 2 epoch\(s\) run; "
                        r"expected one mapping per epoch\)"),
    ("epoch", -3, r"damaged checkpoint \(ValueError: its history holds 2 record\(s\) for -2 epoch\(s\) run"),
    ("best_val_mse", float("nan"), r"damaged checkpoint \(ValueError: best_val_mse is NaN\)"),
    ("best_model", {}, r"checkpoint\.pt \(best_model\): weights do not fit the model its configuration describes"),
])
def test_resume_refuses_a_checkpoint_whose_fields_are_damaged(tiny_data, tmp_path, field, value, message):
    """A checkpoint that torch reads (weights only) but whose fields are not lai's: refused as damaged, not a
    traceback in the training loop or at the end of the stage."""
    import torch

    from lai.train import stage_config

    _, _, cube = tiny_data
    run = tmp_path / "s1"
    p = profile_with(epochs=3, max_batches_per_epoch=1)
    train_stage(profile_with(epochs=2, max_batches_per_epoch=1), "s1", cube, run, progress=False)
    (run / "result.json").unlink()
    (run / "model.pt").unlink()  # an unfinished stage of 3 epochs, 2 run
    (run / "config.yaml").write_text(yaml.safe_dump(stage_config(p, "s1", cube).to_dict(), sort_keys=False))
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    state["config"]["train"]["epochs"] = 3
    state[field] = value
    torch.save(state, run / "checkpoint.pt")
    with pytest.raises(RunFolderError, match=message):
        train_stage(p, "s1", cube, run, resume=True, progress=False)


@pytest.mark.parametrize("file, text, message", [
    ("result.json", "[]", r"result\.json: expected a JSON object with the integer 'parameters' lai writes, got \[\]"),
    ("result.json", "{}", r"result\.json: field 'parameters' holds null, expected the integer of at least 0"),
    ("result.json", '{"parameters": true}', r"result\.json: field 'parameters' holds true, expected the integer"),  # bool: int
    ("result.json", "not json", r"result\.json is not readable JSON"),
    ("history.csv", "epoch,lr,val_mse,val_rmse,seconds,samples_per_s\n",
     r"history\.csv: expected one row per epoch with columns epoch, val_mse, val_rmse, seconds, samples_per_s; it has 0 row"),
    ("history.csv", "", r"history\.csv: expected one row per epoch.*it has 0 row\(s\), lacking epoch"),
    ("history.csv", "epoch,val_mse,val_rmse,seconds,samples_per_s\nabc,def,ghi,x,y\n",
     r"history\.csv: column epoch holds 'abc' in data row 1, not a number"),
    ("history.csv", "epoch,val_mse,val_rmse,seconds,samples_per_s\n1,0.1,0.3,5,10\n2,0.1,0.3,5,1e",
     r"history\.csv: column samples_per_s holds '1e' in data row 2, not a number"),  # a file cut mid-row
    ("history.csv", "epoch,val_mse,val_rmse,seconds,samples_per_s\n1,0.1,0.3,5,10\n2,0.1,",
     r"history\.csv: data row 2 has 3 field\(s\), the header 5 \(a file cut short"),  # cut earlier in the row
    ("history.csv", "epoch,val_mse,val_rmse,seconds,samples_per_s,lr\n1,0.1,0.3,5,10,0.001\n2,0.1,0.3,5,10",
     r"history\.csv: data row 2 has 5 field\(s\), the header 6"),  # cut where every needed column is whole
    ("history.csv", b"epoch,val_mse,val_rmse,seconds,samples_per_s\n1,0.1,0.3,5,\xff\n", r"history\.csv is not a readable CSV"),
    ("history.csv", "epoch,val_mse,val_rmse,seconds,samples_per_s\n1,0.1,inf,5,10\n",
     r"history\.csv: column val_rmse holds 'inf' in data row 1, not a number \(finite, at least 0\)"),  # edited: never reused
    ("history.csv", "epoch,val_mse,val_rmse,seconds,samples_per_s\n1,0.1,0.3,5,10\n2,-1e308,0.3,5,10\n",
     r"history\.csv: column val_mse holds '-1e\+308' in data row 2, not a number \(finite, at least 0\)"),
    ("result.json", "[" * 100_000 + "]" * 100_000, r"result\.json is not readable JSON \(nested too deeply\)"),
    ("result.json", os.mkfifo, r"result\.json is not a regular file"),  # would hang
    ("result.json", lambda p: p.symlink_to("/dev/zero"), r"result\.json is not a regular file"),  # would fill memory
    ("history.csv", lambda p: p.symlink_to("/dev/zero"), r"history\.csv is not a regular file"),
])
def test_tampered_finished_stage_is_named_not_reused(tiny_data, tmp_path, file, text, message):
    """A finished stage whose result.json or history.csv was emptied or replaced: one error naming the file and how
    to retrain, never a KeyError or an empty table reused."""
    from lai.train import train_stage

    _, _, cube = tiny_data
    p = profile_with(epochs=1, max_batches_per_epoch=1)
    run = tmp_path / "s2_masks"
    train_stage(p, "s2_masks", cube, run, progress=False)
    if callable(text):
        (run / file).unlink()
        text(run / file)
    else:
        (run / file).write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(RunFolderError, match=message + r".*delete the stage folder"):
        train_stage(p, "s2_masks", cube, run, progress=False)


def test_final_model_reuses_pretrained_encoders(tiny_data, tmp_path):
    _, _, cube = tiny_data
    p = profile_with(epochs=1)
    results = train_rows(p, cube, tmp_path, ["final"], progress=False)
    assert list(results) == ["s1_masks_seas", "s2_masks_seas", "final"]
    cfg = yaml.safe_load((tmp_path / "final" / "config.yaml").read_text())
    assert set(cfg["init_from"]) == {"enc1", "enc2"}
    again = train_rows(p, cube, tmp_path, ["s1_masks_seas", "final"], progress=False)
    assert all(r.reused for r in again.values())
    table = evaluate_run(tmp_path / "final", cube, device="cpu")
    assert set(table["set"]) == {"non_cloudy", "cloudy", "unique"}
    assert (tmp_path / "final" / "metrics.csv").exists() and (tmp_path / "final" / "per_tile.csv").exists()
    assert (tmp_path / "final" / "predictions" / "unique.nc").exists()
    assert "truth_rmse_cloudy" in table


def test_the_same_runs_folder_named_from_another_folder_is_reused(tiny_data, tmp_path, monkeypatch):
    """Trained as `--runs runs` in one folder, then named by its absolute path from another, or copied whole: the
    same run (it was refused as "another run", the message inviting the user to delete it)."""
    from lai.stage_folder import same_folder

    _, _, cube = tiny_data
    p = profile_with(epochs=1, max_batches_per_epoch=1)
    monkeypatch.chdir(tmp_path)
    train_rows(p, cube, "runs", ["final"], progress=False)
    assert yaml.safe_load((tmp_path / "runs" / "final" / "config.yaml").read_text())["init_from"]["enc1"] == "runs/s1_masks_seas"
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    again = train_rows(p, cube, tmp_path / "runs", ["final"], progress=False)
    assert all(r.reused for r in again.values())
    import shutil

    shutil.copytree(tmp_path / "runs", tmp_path / "backup")  # a runs folder copied (or renamed) whole
    assert all(r.reused for r in train_rows(p, cube, tmp_path / "backup", ["final"], progress=False).values())
    assert same_folder("runs/s1", tmp_path / "runs" / "s1") and same_folder("./runs/s1", tmp_path / "runs" / "s1")
    assert not same_folder("other/s1", tmp_path / "runs" / "s1") and not same_folder("/elsewhere/runs/s1", tmp_path / "runs" / "s1")
    assert not same_folder(None, tmp_path) and not same_folder("", tmp_path)


def test_run_folder_of_another_run_is_refused(tiny_data, tmp_path):
    _, _, cube = tiny_data
    train_stage(profile_with(epochs=1), "s1", cube, tmp_path / "r", progress=False)
    with pytest.raises(RunFolderError, match=r"r already holds another run \(different train\.epochs: 1 there, 2 here\)"):
        train_stage(profile_with(epochs=2), "s1", cube, tmp_path / "r", progress=False)
    # the number of seeds a profile trains is not the stage's: more seeds reuse it (they were refused)
    assert train_stage(profile_with(epochs=1, seeds=3), "s1", cube, tmp_path / "r", progress=False).reused


def test_a_diverged_validation_stops_the_stage_and_says_what_its_folder_holds(tiny_data, tmp_path, monkeypatch):
    """Weights diverged in an epoch's last steps (a finite training loss, NaN on validation) crashed on a traceback, or
    were written as a finished stage "converged"; it is refused as the NaN training loss is, nothing kept. A rerun
    with other settings into its folder, which holds only that run's configuration, is told so."""
    import lai.train
    from lai.errors import TrainingDivergedError

    _, _, cube = tiny_data
    run = tmp_path / "r"
    monkeypatch.setattr(lai.train, "validate", lambda *a, **k: {"val_mse": float("nan"), "val_rmse": float("nan")})
    with pytest.raises(TrainingDivergedError, match=r"r epoch 1/1: the validation error became nan \(the weights "
                                                    r"diverged\); lower train\.lr"):
        train_stage(profile_with(epochs=1, lr=0.5), "s1", cube, run, progress=False)
    assert sorted(p.name for p in run.iterdir()) == [".lai-folder", "config.yaml"]
    monkeypatch.undo()
    with pytest.raises(RunFolderError, match=r"r already holds another run \(different train\.lr: 0\.5 there, 0\.001 here\); "
                                             r"it stopped before its first epoch ended \(diverged or interrupted\), so "
                                             r"nothing trained is kept there; choose another run folder or delete it"):
        train_stage(profile_with(epochs=1), "s1", cube, run, progress=False)


def test_stage_saved_before_a_field_existed_loads_but_is_not_reused(tiny_data, tmp_path):
    """config.yaml and model.pt lacking fields added since: the model loads (the defaults apply), but the stage is
    not taken for today's, which may differ by them."""
    from lai.checkpoint import save_checkpoint
    from lai.infer import load_trained

    _, _, cube = tiny_data
    run = tmp_path / "r"
    train_stage(profile_with(epochs=1), "s1", cube, run, progress=False)
    saved = yaml.safe_load((run / "config.yaml").read_text())
    del saved["model"]["residual"], saved["train"]["augment"]
    (run / "config.yaml").write_text(yaml.safe_dump(saved, sort_keys=False))
    save_checkpoint(run / "model.pt", {"model": weights(run), "config": saved})
    config = load_trained(run, "cpu").config
    assert config.row == "s1" and config.model.residual is False and config.train.augment is True
    with pytest.raises(RunFolderError, match=r"r already holds another run \(its configuration lacks model\.residual, "
                       r"train\.augment: written by another version of lai\); choose another run folder"):
        train_stage(profile_with(epochs=1), "s1", cube, run, progress=False)


def test_checkpoint_from_other_model_configuration_is_refused(tiny_data, tmp_path):
    _, _, cube = tiny_data
    train_stage(profile_with(epochs=1), "s1_masks_seas", cube, tmp_path / "s1_masks_seas", progress=False)
    other = load_profile("tiny", ["model.encoder_widths=[4, 8, 16]", "model.decoder_widths=[8, 16, 32]", "train.epochs=1"])
    with pytest.raises(RunFolderError, match="different model configuration"):
        train_stage(other, "final", cube, tmp_path / "final", init_from={"enc1": tmp_path / "s1_masks_seas"}, progress=False)
    with pytest.raises(RunFolderError, match="no enc2 weights"):
        read_pretrained(tmp_path / "s1_masks_seas", expect_part="enc2")
    (tmp_path / "broken.pt").write_bytes(b"junk")
    with pytest.raises(RunFolderError, match="cannot be read"):
        read_pretrained(tmp_path / "broken.pt")


def test_a_damaged_or_foreign_pretrained_encoder_is_named(tiny_data, tmp_path):
    """The final model's pre-trained encoder holding NaN ("the training loss became nan; lower train.lr"), another row's
    model in its folder (a load_state_dict traceback) and a model file cut short ("error: Invalid argument", no file
    named) are each refused, naming the file."""
    import shutil

    from lai.checkpoint import save_checkpoint

    _, _, cube = tiny_data
    train_stage(profile_with(epochs=1), "s1_masks_seas", cube, tmp_path / "s1_masks_seas", progress=False)
    train_stage(profile_with(epochs=1), "s1", cube, tmp_path / "s1", progress=False)
    final = lambda enc1, name: train_stage(profile_with(epochs=1), "final", cube, tmp_path / name,  # noqa: E731
                                           init_from={"enc1": enc1}, progress=False)
    damaged = shutil.copytree(tmp_path / "s1_masks_seas", tmp_path / "nan")
    state = torch.load(damaged / "model.pt", weights_only=True)
    key = next(k for k, v in state["model"].items() if k.startswith("enc1.") and v.is_floating_point())
    state["model"][key] = state["model"][key] * float("nan")
    save_checkpoint(damaged / "model.pt", state)
    with pytest.raises(RunFolderError, match=rf"nan: weight {key[len('enc1.'):]} holds NaN or inf"):
        final(damaged, "f1")
    foreign = shutil.copytree(tmp_path / "s1_masks_seas", tmp_path / "foreign")
    shutil.copy(tmp_path / "s1" / "model.pt", foreign / "model.pt")
    with pytest.raises(RunFolderError, match=r"foreign: holds a model of row s1, not of s1_masks_seas"):
        final(foreign, "f2")
    cut = shutil.copytree(tmp_path / "s1_masks_seas", tmp_path / "cut")
    (cut / "model.pt").write_bytes((tmp_path / "s1_masks_seas" / "model.pt").read_bytes()[:20000])
    with pytest.raises(RunFolderError, match=r"cut/model\.pt: cannot be read as a lai checkpoint \(truncated"):
        final(cut, "f3")


def test_impossible_configuration_is_refused(tiny_data, tmp_path):
    _, _, cube = tiny_data
    with pytest.raises(ConfigError, match="train.epochs must be positive"):
        profile_with(epochs=-1)
    with pytest.raises(ConfigError, match="tile size 32 is not divisible by 64"):
        load_profile("tiny", ["model.encoder_widths=[2, 2, 2, 2, 2, 2, 2]"])
    real_data = load_profile("tiny", ["data=/somewhere", "model.encoder_widths=[2, 2, 2, 2, 2, 2, 2]", "train.epochs=1"])
    with pytest.raises(ConfigError, match="tile size 32 is not divisible by 64"):
        train_stage(real_data, "s1", cube, tmp_path / "x", progress=False)
    with pytest.raises(ConfigError, match=r"unknown configuration key.*train.epoch;"):
        load_profile("tiny", ["train.epoch=3"])
    # a loss on no pixel (classes outside the valid ones) and seeds beyond the largest one: refused, not trained
    with pytest.raises(ConfigError, match=r"train\.loss_classes \[8\] hold none of encoding\.valid_classes"):
        load_profile("tiny", ["train.loss_classes=[8]"])
    with pytest.raises(ConfigError, match=r"train\.seed 4294967295 with train\.seeds 2: the last seed, 4294967296"):
        load_profile("tiny", ["train.seed=4294967295", "train.seeds=2"])


def test_usable_classes_are_those_the_cube_checked_and_hold_a_target(tiny_data, tmp_path):
    """A class the cube never range-checked (SCL 7) is refused; a subset of its classes without a pixel at t too."""
    import shutil

    import h5py

    _, _, cube = tiny_data
    wider = load_profile("tiny", ["encoding.valid_classes=[2, 3, 4, 5, 6, 7]", "train.epochs=1"])
    with pytest.raises(ConfigError, match=r"built with the SCL classes \[2, 3, 4, 5, 6\] usable; encoding\.valid_classes "
                                          r"\[2, 3, 4, 5, 6, 7\] adds \[7\], whose LAI the cube never checked"):
        train_stage(wider, "s1", cube, tmp_path / "wider", progress=False)
    shadows = tmp_path / "shadows.nc"  # every pixel at t a cloud shadow: nothing clear under the strict rule
    shutil.copy(cube, shadows)
    with h5py.File(shadows, "r+") as f:
        f["scl"][:, 2] = 3
    strict = load_profile("tiny", ["encoding.valid_classes=[4, 5, 6]", "train.epochs=1"])
    with pytest.raises(ConfigError, match=r"no pixel of the train split is usable at t under encoding\.valid_classes "
                                          r"\[4, 5, 6\]"):
        train_stage(strict, "s1", shadows, tmp_path / "strict", progress=False)
    assert not [p for p in (tmp_path / "wider").rglob("*") if p.name.endswith((".pt", ".csv"))]


def test_fresh_heads_start_at_the_training_targets_mean(tiny_data):
    """A head's mean output over a batch is its bias (it reads batch-normalised features): after init_head_bias it
    is the mean normalised target of the drawn triplets; a pre-trained part keeps its bias; residual heads start
    at the mean change; the gated skip starts at its gate's start times the last clear LAI plus the mean change."""
    from lai.encode import encode_batch
    from lai.infer import build_model
    from lai.loader import CubeSplit
    from lai.model import last_clear
    from lai.train import init_head_bias

    _, _, cube = tiny_data
    p = profile_with(epochs=1)
    split = CubeSplit(cube, "train")
    x = encode_batch({k: torch.from_numpy(v) for k, v in split.read(range(len(split))).items()}, p.encoding)
    target = float(x.target[x.target_valid].mean())
    for residual in (False, True):
        model = build_model(replace(p.model, row="final", residual=residual), p.encoding)
        before = model.enc1.head.bias.clone()
        assert init_head_bias(model, split, p.encoding, skip={"enc1"}) == pytest.approx(target, rel=1e-5)
        assert torch.equal(model.enc1.head.bias, before)
        with torch.no_grad():
            out = model.train()(x)
        change = float(last_clear(x)[x.target_valid].mean()) if residual else 0.0
        for part in ("enc2", "dec"):
            assert float(out[part].mean()) - (float(last_clear(x).mean()) if residual else 0.0) == pytest.approx(
                target - change, abs=1e-4)
    # a pre-trained head that predicted the LAI itself, in a residual model: moved down by the mean last clear LAI
    model = build_model(replace(p.model, row="final", residual=True), p.encoding)
    before = model.enc1.head.bias.detach().clone()
    init_head_bias(model, split, p.encoding, skip={"enc1"}, shift={"enc1"})
    base = float(last_clear(x)[x.target_valid].mean())
    assert float(model.enc1.head.bias.detach()[0]) == pytest.approx(float(before[0]) - base, abs=1e-5)
    # the gated skip starts at gate_start x the last clear LAI plus a constant change, pixel by pixel (zero weights)
    model = build_model(replace(p.model, row="final", gated_skip=True, gate_start=0.9), p.encoding)
    init_head_bias(model, split, p.encoding)
    with torch.no_grad():
        out = model.train()(x)
    base = last_clear(x)
    expected = target - 0.9 * float(base[x.target_valid].mean()) + 0.9 * base
    torch.testing.assert_close(out["dec"], expected, atol=1e-5, rtol=0)
    # the mixing gated skip: its own LAI starts at the mean target, its gate at gate_start as a constant map
    model = build_model(replace(p.model, row="final", gated_skip=True, gate_form="mix", gate_start=0.9), p.encoding)
    init_head_bias(model, split, p.encoding)
    head = model.dec_head.requires_grad_(False)
    assert float(head.bias[0]) == pytest.approx(target, rel=1e-5) and float(head.weight[0].abs().sum()) > 0
    assert float(head.weight[1].abs().sum()) == 0 and float(torch.sigmoid(head.bias[1])) == pytest.approx(0.9)


def test_fine_tuning_overrides_win_over_the_variants_settings():
    """benchmarks/gated_start.py --finetune-set measures a setting the variant fixes (it once trained the variant's
    own model.past_context silently); other keys and the seed apply as before, and a bad value is refused."""
    from lai.facts import EXTRA_ROWS
    from lai.train import fine_tune_profile

    profile = load_profile("tiny")
    plain = fine_tune_profile(profile, "final_gated")
    assert plain.model.past_context == EXTRA_ROWS["final_gated"].overrides["model"]["past_context"]
    tuned = fine_tune_profile(profile, "final_gated", seed=3,
                              overrides=["model.past_context=[1,2,4,8]", "train.lr=3e-4"])
    assert tuned.model.past_context == [1, 2, 4, 8] and tuned.train.lr == 3e-4 and tuned.train.seed == 3
    assert tuned.model.gated_skip and tuned.model.skip_base == "two_dates"  # the variant's other settings kept
    assert fine_tune_profile(profile, "final", overrides=["train.lr=3e-4"]).model.past_context == []
    with pytest.raises(ConfigError, match="past_context"):
        fine_tune_profile(profile, "final_gated", overrides=["model.past_context=[0.1]"])


def test_model_chosen_by_validation_then_its_seeds(tiny_data, tmp_path):
    """The final model and a candidate, one seed each; the lower best validation RMSE is chosen (as the histories
    say) and only the chosen one gets the further seeds."""
    from lai.train import train_chosen

    _, _, cube = tiny_data
    p = profile_with(epochs=1, seeds=2)
    p = replace(p, candidates=["final_gated"])
    selection, runs = train_chosen(p, cube, tmp_path, progress=False)
    best = {name: pd.read_csv(tmp_path / name / "history.csv")["val_rmse"].min() for name in ("final", "final_gated")}
    chosen = min(best, key=lambda n: (best[n], n != "final"))
    assert selection.set_index("model")["chosen"].to_dict() == {n: n == chosen for n in best}
    assert selection.set_index("model")["best_val_rmse"].to_dict() == pytest.approx(best)
    assert list(runs) == [chosen, f"{chosen}_seed1"] and (tmp_path / f"{chosen}_seed1" / "model.pt").exists()
    other = "final" if chosen == "final_gated" else "final_gated"
    assert not (tmp_path / f"{other}_seed1").exists()
    cfg = yaml.safe_load((tmp_path / f"{chosen}_seed1" / "config.yaml").read_text())
    assert cfg["train"]["seed"] == 1 and cfg["model"]["gated_skip"] == (chosen == "final_gated")


def test_ensemble_is_the_mean_of_its_seeds_scored_like_one_model(tiny_data, tmp_path):
    """Two seeds of the final model: each member is scored as lai evaluate scores it, and the ensemble's
    per-triplet sums are those of the mean of the members' saved predictions (validation split too)."""
    import h5py
    import numpy as np
    import xarray as xr

    from lai.evaluate import evaluate_ensemble
    from lai.metrics import SUMS, triplet_sums
    from lai.train import seed_runs, train_variant

    _, _, cube = tiny_data
    p = profile_with(epochs=1, seeds=2)
    runs = []
    for run, seed in seed_runs("final", p.train).items():
        train_variant(p, "final", cube, tmp_path, seed, run, progress=False)
        evaluate_run(tmp_path / run, cube, batch_size=p.train.batch_size, device="cpu")
        runs.append(tmp_path / run)
    table, sums, members = evaluate_ensemble(runs, cube, batch_size=p.train.batch_size, device="cpu")
    assert list(table["set"]) == ["val", "non_cloudy", "cloudy", "unique"] and "val" in set(sums["set"])
    for run, member in zip(runs, members):
        saved = pd.read_csv(run / "per_tile.csv").set_index(["set", "triplet"])[list(SUMS)]
        mine = member.set_index(["set", "triplet"]).loc[saved.index, list(SUMS)]
        assert np.allclose(mine.to_numpy(), saved.to_numpy(), rtol=1e-6, atol=1e-6)
    assert not np.allclose(members[0]["sse"], members[1]["sse"])  # two different trainings
    with h5py.File(cube, "r") as f:
        observed = f["lai"][:, 2]
    for name in ("non_cloudy", "unique"):
        preds = [xr.open_dataset(run / "predictions" / f"{name}.nc", engine="h5netcdf").load() for run in runs]
        index = preds[0]["triplet"].to_numpy()
        mean = (preds[0]["lai_pred"] + preds[1]["lai_pred"]).to_numpy() / 2
        expected = triplet_sums(mean, observed[index], preds[0]["clear_t"].to_numpy().astype(bool))
        got = sums[sums["set"] == name].set_index("triplet").loc[index, list(SUMS)].to_numpy()
        assert np.allclose(got, expected, rtol=1e-5), name
    with pytest.raises(ConfigError, match="at least two"):
        evaluate_ensemble(runs[:1], cube, device="cpu")



def test_run_folder_scores_the_ensemble_of_its_chosen_models_seeds(tmp_path):
    """What notebook 04 does where a profile trains two seeds (RunContext.ensemble): the run folder's ensemble tables,
    named after the chosen model, and its comparisons against the seeds (validation too), the others and the oracle."""
    from lai.facts import TABLE
    from lai.run_folder import RunContext

    ctx = RunContext.open(tmp_path / "run", "tiny", ["train.epochs=1", "train.seeds=2", "train.max_batches_per_epoch=2"],
                          data_root=tmp_path / "data", progress=False)
    ctx.ensure_data(progress=False)
    ctx.train_chosen(progress=False)
    chosen, runs = ctx.chosen()
    assert runs == [chosen, f"{chosen}_seed1"]
    assert ctx.ensemble(chosen, runs[:1], {}) is None and not ctx.table(TABLE.ensemble).exists()
    table = ctx.ensemble(chosen, runs, {"persistence": ctx.per_triplet(runs[0]).assign(sse=1.0)})
    pd.testing.assert_frame_equal(ctx.read_table(TABLE.ensemble), table, check_dtype=False)
    saved = ctx.read_table(TABLE.ensemble_per_triplet)
    assert set(saved["model"]) == {f"{chosen} ensemble", *runs}
    assert set(ctx.read_table(TABLE.ensemble_metrics)["set"]) == {"val", "non_cloudy", "cloudy", "unique"}
    assert set(table[table["other"] == "persistence"]["set"]) == {"non_cloudy", "cloudy", "unique"}
    vs_seeds = table[table["other"] == f"{chosen} seeds"]
    assert list(vs_seeds["set"]) == ["val", "non_cloudy", "cloudy", "unique"] and (vs_seeds["seeds"] == 2).all()
    assert set(table[table["other"] == "oracle"]["set"]) == {"non_cloudy", "cloudy", "unique"}


def test_fine_tuning_starts_from_the_pretrained_encoders(tiny_data, tmp_path):
    """The final model's encoders start as the pre-trained stages left them (``init_from``): with a learning rate
    too small to move them, its encoders' parameters after an epoch are the pre-trained ones."""
    _, _, cube = tiny_data
    quick = profile_with(epochs=1, max_batches_per_epoch=1)
    for row, run in (("s1_masks_seas", "s1"), ("s2_masks_seas", "s2")):
        train_stage(quick, row, cube, tmp_path / run, progress=False)
    still = profile_with(epochs=1, max_batches_per_epoch=1, lr=1e-12)
    train_stage(still, "final", cube, tmp_path / "final", init_from={"enc1": tmp_path / "s1", "enc2": tmp_path / "s2"},
                progress=False)
    final = weights(tmp_path / "final")
    for part, run in (("enc1", "s1"), ("enc2", "s2")):
        pre = weights(tmp_path / run)
        names = [k for k in pre if k.startswith(f"{part}.") and "running_" not in k and "num_batches" not in k]
        assert len(names) > 10 and all(k in final for k in names)
        assert all(torch.allclose(final[k], pre[k], atol=1e-8) for k in names), part


def test_the_seed_reaches_the_weights_the_shuffle_and_the_augmentation(tiny_data, tmp_path, monkeypatch):
    """train.seed draws the initial weights, the order of the batches and the augmentation: each is another for
    another seed (the three were one draw with the seed fixed at 0 in any of them)."""
    import lai.train
    from lai.checkpoint import TrainingState

    _, _, cube = tiny_data
    drawn = {}
    start, augment_seed = TrainingState.start, lai.train.augment_seed

    def record_start(model, tcfg):
        state = start(model, tcfg)
        drawn.setdefault(tcfg.seed, {})["weights"] = {k: v.clone() for k, v in model.state_dict().items()}
        drawn[tcfg.seed]["order"] = torch.randperm(50, generator=state.generator.clone_state())
        return state

    def record_augment(seed, rank, epoch):
        drawn.setdefault(seed, {}).setdefault("augment", []).append(augment_seed(seed, rank, epoch))
        return augment_seed(seed, rank, epoch)

    monkeypatch.setattr(TrainingState, "start", staticmethod(record_start))
    monkeypatch.setattr(lai.train, "augment_seed", record_augment)
    for seed in (0, 1):
        p = profile_with(epochs=1, max_batches_per_epoch=1, seed=seed, augment="true")
        train_stage(p, "s2_masks", cube, tmp_path / f"seed{seed}", progress=False)
    a, b = drawn[0], drawn[1]
    assert not same_weights(a["weights"], b["weights"])
    assert not torch.equal(a["order"], b["order"]) and a["augment"] != b["augment"]
