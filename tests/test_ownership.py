"""lai writes only what it made: lock files that cannot be aimed at another file, user folders never taken
for run folders, lai's own leftovers (and only those) removed, outputs kept out of input folders."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from lai.errors import RunFolderError
from lai.io import FOLDER_MARK, ForeignOutputError, OutputLockedError, claim_folder, is_partial, lock_file, output_lock
from tests.test_predict import write_scene

VICTIM = b"a user's thesis, not to be touched\n"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def folder_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): digest(p) for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def victim(tmp_path) -> Path:
    path = tmp_path / "elsewhere" / "thesis.tex"
    path.parent.mkdir()
    path.write_bytes(VICTIM)
    return path


# --------------------------------------------------------------------------- lock files


@pytest.mark.parametrize("folder", [None, "config.yaml"])
def test_a_symlink_at_the_lock_path_is_refused_and_its_target_untouched(tmp_path, victim, folder):
    out = tmp_path / "out" / "cube.nc"
    out.parent.mkdir()
    lock_file(out).symlink_to(victim)
    with pytest.raises(ForeignOutputError, match=rf"{lock_file(out)}, the lock file of {out}, is a symbolic link"):
        with output_lock(out, folder=folder):
            pass
    assert victim.read_bytes() == VICTIM and lock_file(out).is_symlink()
    assert not out.exists()


def test_a_dangling_symlink_at_the_lock_path_creates_nothing(tmp_path):
    out = tmp_path / "cube.nc"
    target = tmp_path / "planted"
    lock_file(out).symlink_to(target)
    with pytest.raises(ForeignOutputError, match="symbolic link"):
        with output_lock(out):
            pass
    assert not target.exists() and lock_file(out).is_symlink()


def _bind_socket(path: Path) -> None:
    """A Unix socket at ``path``, left behind (as a dead server leaves one)."""
    import socket

    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.close()


def test_fifo_folder_and_foreign_files_at_the_lock_path_are_refused_untouched(tmp_path, victim):
    cases = {
        "fifo": (lambda p: os.mkfifo(p), "not a regular file"),
        "folder": (lambda p: p.mkdir(), "a folder"),
        "hardlink": (lambda p: os.link(victim, p), "a file with other names"),
        # a hard link to a user's empty file reads as a fresh lock: its other name alone says it is not lai's
        "hardlink_empty": (lambda p: (p.with_name("users_empty").touch(), os.link(p.with_name("users_empty"), p)),
                           "a file with other names"),
        "foreign": (lambda p: p.write_bytes(VICTIM), "a file that lai did not write"),
        "socket": (_bind_socket, r"not a regular file \(a socket or device\?\)"),
    }
    for name, (plant, reason) in cases.items():
        out = tmp_path / f"{name}.nc"
        lock = lock_file(out)
        plant(lock)
        with pytest.raises(ForeignOutputError, match=rf"{lock}, the lock file of {out}, is {reason}"):
            with output_lock(out):
                pass
        assert lock.exists(), name  # neither truncated nor removed
    assert victim.read_bytes() == VICTIM and (tmp_path / "users_empty").read_bytes() == b""
    assert lock_file(tmp_path / "foreign.nc").read_bytes() == VICTIM


def test_a_lock_left_by_a_killed_lai_process_is_taken_again(tmp_path):
    out = tmp_path / "cube.nc"
    lock_file(out).write_text("pid 999999 on host elsewhere")
    with output_lock(out):
        assert lock_file(out).read_text().startswith(f"pid {os.getpid()} ")
    assert not lock_file(out).exists()


def test_cli_refuses_a_planted_lock_with_one_line(tiny_data, tmp_path, victim, capsys):
    from lai.cli import main

    _, lnb, _ = tiny_data
    out = tmp_path / "cube.nc"
    lock_file(out).symlink_to(victim)
    assert main(["cube", str(lnb), "--out", str(out), "--profile", "tiny", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a symbolic link" in err[0] and str(lock_file(out)) in err[0]
    assert victim.read_bytes() == VICTIM and not out.exists()


# --------------------------------------------------------------------------- folders lai made


def thesis(root: Path) -> Path:
    """A user's folder that looks like a run folder: report, tables, notebooks and a hidden drafts folder."""
    (root / "tables").mkdir(parents=True)
    (root / "notebooks").mkdir()
    (root / ".drafts.partial-old").mkdir()
    (root / "report.pdf").write_bytes(b"%PDF my thesis")
    (root / "tables" / "table1.csv").write_text("row,rmse\nmine,0.1\n")
    (root / "notebooks" / "01_data.ipynb").write_text("{}")
    (root / ".drafts.partial-old" / "chapter1.tex").write_text("draft")
    return root


def test_lai_run_refuses_a_user_folder_and_leaves_it_as_it_was(tmp_path):
    from lai.pipeline import run_pipeline

    folder = thesis(tmp_path / "reports" / "thesis")
    before = folder_digest(folder)
    with pytest.raises(ForeignOutputError, match=rf"{folder} is a folder lai did not make \(it holds \.drafts"):
        run_pipeline("tiny", run_name="thesis", reports_root=tmp_path / "reports", data_root=tmp_path / "data",
                     progress=False)
    assert folder_digest(folder) == before and not (folder / FOLDER_MARK).exists()
    assert not (tmp_path / "data").exists()


def test_a_notebook_run_folder_must_be_new_empty_or_lai_made(tmp_path):
    from lai.run_profile import open_run_folder

    folder = thesis(tmp_path / "thesis")
    before = folder_digest(folder)
    with pytest.raises(ForeignOutputError, match="lai did not make"):
        open_run_folder(folder, "tiny")
    assert folder_digest(folder) == before
    empty = tmp_path / "empty"
    empty.mkdir()
    _, made = open_run_folder(empty, "tiny")
    assert (made / FOLDER_MARK).is_file() and (made / "profile.yaml").is_file()
    assert open_run_folder(made)[1] == made  # and it continues


def test_lai_train_refuses_a_user_folder_holding_model_files(tiny_data, tmp_path):
    from lai.config import load_profile
    from lai.train import train_stage

    _, _, cube = tiny_data
    folder = tmp_path / "runs" / "s1"
    folder.mkdir(parents=True)
    (folder / "model.pt").write_bytes(b"my own weights")
    (folder / "history.csv").write_text("epoch,loss\n1,0.5\n")
    before = folder_digest(folder)
    with pytest.raises(ForeignOutputError, match=rf"{folder} is a folder lai did not make \(it holds history.csv, model.pt"):
        train_stage(load_profile("tiny", ["train.epochs=1"]), "s1", cube, folder, progress=False)
    assert folder_digest(folder) == before


def test_a_foreign_config_yaml_is_read_but_never_marked(tiny_data, tmp_path):
    from lai.config import load_profile
    from lai.train import train_stage

    _, _, cube = tiny_data
    folder = tmp_path / "runs" / "s1"
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text("my: own settings\n")
    before = folder_digest(folder)
    with pytest.raises(RunFolderError, match="not the configuration of a lai training run"):
        train_stage(load_profile("tiny", ["train.epochs=1"]), "s1", cube, folder, progress=False)
    assert folder_digest(folder) == before and not (folder / FOLDER_MARK).exists()


def test_claim_folder_creates_marks_and_refuses(tmp_path):
    new = claim_folder(tmp_path / "a" / "b", "config.yaml")
    assert (new / FOLDER_MARK).is_file()
    (new / "model.pt").write_bytes(b"x")
    assert claim_folder(new, "config.yaml") == new  # marked: lai's
    (tmp_path / "file").write_text("x")
    with pytest.raises(ForeignOutputError, match="not a folder lai made"):
        claim_folder(tmp_path / "file", "config.yaml")
    (tmp_path / "link").symlink_to(new)
    with pytest.raises(ForeignOutputError, match="not a folder lai made"):
        claim_folder(tmp_path / "link", "config.yaml")


def test_a_marker_without_lais_text_does_not_hand_over_a_folder(tiny_data, tmp_path):
    """An empty (or any other) .lai-folder file is not lai's marker: the user's model files stay untouched."""
    stage = tmp_path / "runs" / "s1"
    stage.mkdir(parents=True)
    (stage / FOLDER_MARK).write_text("")
    (stage / "model.pt").write_text("mine")
    (stage / "history.csv").write_text("mine")
    before = folder_digest(stage)
    with pytest.raises(ForeignOutputError, match="does not hold the text lai writes"):
        claim_folder(stage, "config.yaml")
    from lai.config import load_profile
    from lai.train import train_stage

    with pytest.raises(ForeignOutputError, match="does not hold the text lai writes"):
        train_stage(load_profile("tiny", ["train.epochs=1"]), "s1", tiny_data[2], stage, progress=False)
    assert folder_digest(stage) == before


def test_a_folder_holding_only_an_empty_marker_is_taken_as_new(tmp_path):
    """lai killed between creating a new folder's marker and writing its text (seen in a test that kills a run at a
    stage's start) leaves an empty marker and nothing else: the rerun takes the folder as new and writes the marker;
    the same empty marker beside any other file still hands nothing over."""
    from lai.io import FOLDER_MARK_TEXT

    stage = tmp_path / "runs" / "s2"
    stage.mkdir(parents=True)
    (stage / FOLDER_MARK).write_text("")
    assert claim_folder(stage, "config.yaml") == stage
    assert (stage / FOLDER_MARK).read_text() == FOLDER_MARK_TEXT and sorted(p.name for p in stage.iterdir()) == [FOLDER_MARK]
    other = tmp_path / "runs" / "s3"
    other.mkdir()
    (other / FOLDER_MARK).write_text("")
    (other / "config.yaml").write_text("mine")
    with pytest.raises(ForeignOutputError, match="does not hold the text lai writes"):
        claim_folder(other, "config.yaml")
    assert (other / FOLDER_MARK).read_text() == "" and (other / "config.yaml").read_text() == "mine"


def test_a_copied_signature_file_beside_a_users_files_proves_nothing(tiny_data, tiny_run, tmp_path):
    """A model.pt (or profile.yaml) copied into a folder of the user's own files: lai evaluate replaced their
    metrics.csv, lai run their notebooks. A folder holding nothing but that file is taken, and marked."""
    import shutil

    from lai.evaluate import evaluate_run

    paper = tmp_path / "paper"
    paper.mkdir()
    shutil.copy(tiny_run / "model.pt", paper / "model.pt")
    (paper / "metrics.csv").write_text("my,metrics\n")
    before = folder_digest(paper)
    with pytest.raises(ForeignOutputError, match=r"paper is a folder lai did not make \(it holds metrics\.csv, model\.pt"):
        evaluate_run(paper, tiny_data[2], device="cpu", save_predictions=False)
    assert folder_digest(paper) == before
    (paper / "metrics.csv").unlink()
    evaluate_run(paper, tiny_data[2], device="cpu", save_predictions=False)  # model.pt alone: evaluated and marked
    assert (paper / FOLDER_MARK).is_file() and (paper / "metrics.csv").read_text() != "my,metrics\n"
    thesis = tmp_path / "thesis"
    (thesis / "notebooks").mkdir(parents=True)
    (thesis / "profile.yaml").write_text("name: tiny\n")
    (thesis / "notebooks" / "01_data.ipynb").write_text("{}")
    with pytest.raises(ForeignOutputError, match="thesis is a folder lai did not make"):
        claim_folder(thesis, "profile.yaml")
    assert not (thesis / FOLDER_MARK).exists()


def test_only_lai_named_partials_are_swept_inside_a_run_folder(tmp_path):
    run = claim_folder(tmp_path / "run", "profile.yaml")
    ours = [run / ".report.pdf.partial-123-deadbeef", run / "figures" / ".density.png.partial-9-0123abcd",
            run / ".map.tif.partial-77-00ff00ff.gtiff"]
    theirs = [run / ".drafts.partial-old" / "chapter.tex", run / ".x.partial-1-live", run / ".notes.partial-12-deadbeefX"]
    for p in ours + theirs:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x")
    with output_lock(run, folder="profile.yaml"):
        pass
    assert not any(p.exists() for p in ours) and all(p.exists() for p in theirs)
    assert [is_partial(p) for p in ours] == [True, True, True]


# --------------------------------------------------------------------------- predict


def test_predict_data_takes_a_lock_and_removes_the_leftovers_of_a_killed_run(tiny_run, lnb, tmp_path):
    from lai.predict import predict_folder

    out = tmp_path / "maps"
    leftover = tmp_path / ".maps.partial-4242-0badcafe"  # what a killed writer leaves
    with output_lock(out):
        leftover.mkdir()
        (leftover / "looks_valid.tif").write_bytes(b"II*\0")
        with pytest.raises(OutputLockedError, match=f"{out} is being written by another lai process"):
            predict_folder(tiny_run, lnb, out, progress=False)
    assert not out.exists() and leftover.exists()
    predict_folder(tiny_run, lnb, out, progress=False)
    assert not leftover.exists() and (out / "predictions.nc").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_an_output_in_a_folder_linked_from_the_input_is_inside_it(tmp_path):
    """``lnb/s1`` links to the user's store: ``lnb/s1/cube.nc`` (as written) and ``store/s1/cube.nc`` (the link's
    target) both write among the inputs; a folder beside them does not."""
    from lai.io import check_outside

    (tmp_path / "store" / "s1").mkdir(parents=True)
    (tmp_path / "lnb").mkdir()
    (tmp_path / "lnb" / "s1").symlink_to(tmp_path / "store" / "s1")
    for out in (tmp_path / "lnb" / "s1" / "cube.nc", tmp_path / "lnb" / "c.nc"):
        with pytest.raises(ForeignOutputError, match=rf"{out} lies inside the LNB folder {tmp_path / 'lnb'}; write the "
                                                     "cube outside the input folder"):
            check_outside(out, tmp_path / "lnb", "LNB folder", "the cube")
    out = tmp_path / "store" / "s1" / "cube.nc"
    with pytest.raises(ForeignOutputError, match=rf"{out} lies inside {tmp_path / 'store' / 's1'}, which "
                                                 rf"{tmp_path / 'lnb' / 's1'} of the LNB folder links to; write the cube "
                                                 "outside the input folder and the folders it links to"):
        check_outside(out, tmp_path / "lnb", "LNB folder", "the cube")
    check_outside(tmp_path / "store" / "cube.nc", tmp_path / "lnb", "LNB folder", "the cube")
    check_outside(tmp_path / "cube.nc", tmp_path / "nowhere", "LNB folder", "the cube")  # no folder: nothing inside


def test_predict_data_refuses_an_output_inside_its_input_folder(tiny_run, lnb):
    from lai.predict import predict_folder

    before = folder_digest(lnb)
    with pytest.raises(ForeignOutputError, match=rf"{lnb / 'maps'} lies inside the LNB folder {lnb}"):
        predict_folder(tiny_run, lnb, lnb / "maps", progress=False)
    assert folder_digest(lnb) == before


def test_two_scene_predictions_into_one_output_one_refused(tiny_run, tmp_path):
    from lai.scene import predict_scene, predict_scenes

    manifest = write_scene(tmp_path, (40, 40), [-12.0, -18.0], 3.0, 4)
    out = tmp_path / "lai_t.tif"
    stale = tmp_path / ".lai_t.tif.partial-4242-0badcafe.gtiff"
    with output_lock(out):
        stale.write_bytes(b"II*\0")
        with pytest.raises(OutputLockedError, match="being written by another lai process"):
            predict_scene(tiny_run, manifest, out, window=32, overlap=8, progress=False)
    assert not out.exists() and stale.exists()
    predict_scene(tiny_run, manifest, out, window=32, overlap=8, progress=False)
    assert out.is_file() and not stale.exists() and not lock_file(out).exists()
    with pytest.raises(FileExistsError, match="already exists"):
        predict_scene(tiny_run, manifest, out, window=32, overlap=8, progress=False)
    maps = tmp_path / "maps"
    with output_lock(maps), pytest.raises(OutputLockedError):
        predict_scenes(tiny_run, [manifest], maps, window=32, overlap=8, progress=False)
    assert not maps.exists()
    summaries = predict_scenes(tiny_run, [manifest], maps, window=32, overlap=8, progress=False)
    assert [Path(s["out"]).name for s in summaries] == ["scene.tif"]
    assert sorted(p.name for p in maps.iterdir()) == ["scene.tif", "scene_source.tif"]
    assert np.isfinite(np.array(summaries[0]["observed_fraction"]))


def test_no_writer_follows_a_link_planted_in_a_folder_it_fills(tiny_run, tiny_data, tmp_path):
    """`predictions/` of a stage (lai evaluate), `notebooks/` or a notebook of a run folder (lai run): a link there
    made lai write into the user's folder. Refused, the target untouched."""
    from lai.evaluate import evaluate_run
    from lai.io import own_subfolder
    from lai.pipeline import run_pipeline

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "cloudy.nc").write_text("my predictions")
    (mine / "01_data.ipynb").write_text('{"my": "notebook"}')
    before = folder_digest(mine)
    stage = tmp_path / "final"
    import shutil

    shutil.copytree(tiny_run, stage)
    shutil.rmtree(stage / "predictions", ignore_errors=True)
    (stage / "predictions").symlink_to(mine)
    with pytest.raises(ForeignOutputError, match=r"final/predictions is a symbolic link or a file, not the folder lai made"):
        evaluate_run(stage, tiny_data[2])
    reports = tmp_path / "reports"
    run_dir = claim_folder(reports / "tiny", None)
    (run_dir / "notebooks").symlink_to(mine)
    with pytest.raises(ForeignOutputError, match="tiny/notebooks is a symbolic link or a file"):
        run_pipeline("tiny", reports_root=reports, data_root=tmp_path / "data", progress=False)
    (run_dir / "notebooks").unlink()
    own_subfolder(run_dir, "notebooks")
    (run_dir / "notebooks" / "00_preprocessing.ipynb").symlink_to(mine / "01_data.ipynb")
    with pytest.raises(ForeignOutputError, match="00_preprocessing.ipynb is a symbolic link"):
        run_pipeline("tiny", reports_root=reports, data_root=tmp_path / "data", progress=False)
    assert folder_digest(mine) == before
    # refused before the first notebook (01_data) ran: nothing simulated, no notebook written
    assert not (tmp_path / "data").exists() and not (run_dir / "notebooks" / "01_data.ipynb").exists()


def test_predict_data_refuses_maps_inside_the_training_run_folder(tiny_run, tiny_data):
    from lai.predict import predict_folder

    before = folder_digest(tiny_run)
    with pytest.raises(ForeignOutputError, match="maps lies inside the training run folder"):
        predict_folder(tiny_run, tiny_data[2], tiny_run / "maps", progress=False)
    assert folder_digest(tiny_run) == before


def test_a_scene_map_locks_its_source_sidecar_too(tiny_run, tmp_path):
    """--out m.tif writes m_source.tif as well: a second writer naming m_source.tif is refused meanwhile (it had
    swept the first writer's live temporary away)."""
    from lai.products import source_path
    from lai.scene import predict_scene

    manifest = write_scene(tmp_path, (40, 40), [-12.0, -18.0], 3.0, 4)
    out = tmp_path / "m.tif"
    with output_lock(source_path(out)), pytest.raises(OutputLockedError, match="m_source.tif is being written"):
        predict_scene(tiny_run, manifest, out, window=32, overlap=8, progress=False)
    assert not out.exists()


@pytest.mark.parametrize("name", [".", "", ".."])
def test_an_output_named_dot_is_one_line_and_a_folder_filled_in_place_may_be_dot(tmp_path, monkeypatch, name):
    from lai.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="names no file or folder of its own"):
        lock_file(name)
    if name != "..":
        with output_lock(name, folder=None) as path:  # the current folder, empty: taken as lai's
            assert path == tmp_path
        assert (tmp_path / FOLDER_MARK).is_file()


@pytest.fixture
def fake_notebooks(monkeypatch):
    """`lai run` without kernels: papermill "executes" a notebook by writing its name to the output path; a notebook
    named in the returned set fails after writing a partial copy."""
    import contextlib

    import papermill

    from lai import pipeline

    failing: set[str] = set()

    def execute(source, out, **kwargs):
        Path(out).write_text(f'{{"executed": "{Path(source).name}"}}')
        if Path(source).name in failing:
            raise papermill.PapermillExecutionError(3, 2, "x", "ValueError", "broken", [])

    monkeypatch.setattr(papermill, "execute_notebook", execute)
    monkeypatch.setattr(pipeline, "_notebook_kernel", lambda: contextlib.nullcontext((None, None, None)))
    return failing


def test_lai_run_replaces_a_hard_link_at_an_executed_notebook_never_writes_through_it(tmp_path, fake_notebooks):
    """An executed notebook whose name is a hard link to a user's file (adversarial pass 4, D1): papermill wrote
    through it and overwrote the user's file. It writes a temporary now, renamed into place: the link is replaced."""
    from lai.errors import PipelineError
    from lai.pipeline import NOTEBOOKS, run_pipeline

    reports, thesis = tmp_path / "reports", tmp_path / "thesis.txt"
    thesis.write_text("MY THESIS")
    notebooks = claim_folder(reports / "tiny", None) / "notebooks"
    notebooks.mkdir()
    os.link(thesis, notebooks / "05_report.ipynb")
    os.link(thesis, notebooks / "01_data.ipynb")
    fake_notebooks.add("01_data.ipynb")  # a failing notebook's partial copy is kept for inspection, also not through it
    with pytest.raises(PipelineError, match=r"notebook 01_data\.ipynb failed in cell 3 .*ValueError: broken"):
        run_pipeline("tiny", reports_root=reports, data_root=tmp_path / "data", progress=False)
    fake_notebooks.clear()
    run_pipeline("tiny", reports_root=reports, data_root=tmp_path / "data", progress=False)
    assert thesis.read_text() == "MY THESIS" and thesis.stat().st_nlink == 1
    assert [(notebooks / nb).read_text() for nb in NOTEBOOKS] == [f'{{"executed": "{nb}"}}' for nb in NOTEBOOKS]
    assert not [p for p in notebooks.iterdir() if is_partial(p)]


def test_lai_run_refuses_a_link_at_its_records_folder_before_running_or_removing_anything(tmp_path, fake_notebooks):
    """`notebooks/.inputs` a symbolic link to a user's folder (adversarial pass 4, D6): `lai run --force` removed a record
    through it, and ran notebook 01 before refusing it. Refused now before any notebook runs; the folder untouched."""
    from lai.pipeline import run_pipeline

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "01_data.ipynb.json").write_text('{"my": "record"}')
    before = folder_digest(mine)
    notebooks = claim_folder(tmp_path / "reports" / "tiny", None) / "notebooks"
    notebooks.mkdir()
    (notebooks / ".inputs").symlink_to(mine)
    with pytest.raises(ForeignOutputError, match=r"tiny/notebooks/\.inputs is a symbolic link or a file"):
        run_pipeline("tiny", reports_root=tmp_path / "reports", data_root=tmp_path / "data", progress=False, force=True)
    assert folder_digest(mine) == before and not [p for p in notebooks.iterdir() if p.suffix == ".ipynb"]


@pytest.mark.parametrize("sub", ["preprocessing", "tables", "runs"])
def test_lai_run_refuses_a_link_at_any_folder_it_fills_before_running(tmp_path, fake_notebooks, sub):
    """`preprocessing/` a symbolic link to a user's folder (regression pass of 2026-12-04): notebook 00 wrote its
    manifests and tiles there (and may remove its own old tiles there). Every folder lai fills in a run folder is
    checked before any notebook runs."""
    from lai.pipeline import run_pipeline

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "patch.yaml").write_text("mine")
    before = folder_digest(mine)
    run_dir = claim_folder(tmp_path / "reports" / "tiny", None)
    (run_dir / sub).symlink_to(mine)
    with pytest.raises(ForeignOutputError, match=rf"tiny/{sub} is a symbolic link or a file"):
        run_pipeline("tiny", reports_root=tmp_path / "reports", data_root=tmp_path / "data", progress=False, force=True)
    assert folder_digest(mine) == before and not list(run_dir.glob("notebooks/*.ipynb"))  # no notebook ran

