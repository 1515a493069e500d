"""One writer per output: two concurrent `lai cube` or `lai train` into the same output, stale partials
of dead writers removed on the next run, SIGTERM leaving nothing behind, and outputs that never replace
a folder."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from lai.cube import check_cube_file
from lai.io import ForeignOutputError, OutputLockedError, atomic_path, atomic_write_text, lock_file, output_lock
from lai.lnb import S1_DIR

ROOT = Path(__file__).resolve().parent.parent


def start(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lai", *map(str, args)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


WARM = ("import sys, lai.cli, lai.cube, lai.train, lai.simulate; print('ready', flush=True); sys.stdin.readline(); "
        "sys.exit(lai.cli.main(sys.argv[1:]))")


def warm(*args) -> subprocess.Popen:
    """A `lai` process that has done its imports and runs ``args`` once a line arrives on its stdin."""
    proc = subprocess.Popen([sys.executable, "-c", WARM, *map(str, args)], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def go(proc: subprocess.Popen) -> tuple[str, str]:
    proc.stdin.write("go\n")
    proc.stdin.flush()
    return proc.communicate(timeout=300)


def wait_for(condition, timeout: float = 120, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        assert proc is None or proc.poll() is None, f"finished too early: {proc.communicate()}"
        time.sleep(0.02)


def test_lock_refuses_a_second_writer_naming_output_pid_and_host(tmp_path):
    out = tmp_path / "cube.nc"
    with output_lock(out):
        assert lock_file(out).read_text() == f"pid {os.getpid()} on host {socket.gethostname()}"
        with pytest.raises(OutputLockedError, match=rf"{out} is being written by another lai process "
                                                    rf"\(pid {os.getpid()} on host {socket.gethostname()}; lock file"):
            with output_lock(out):
                pass
    assert not lock_file(out).exists()
    with output_lock(out):  # free again
        pass


def test_a_failed_output_leaves_none_of_the_folders_made_for_it(tmp_path):
    """``lai cube nowhere --out new/a/b/cube.nc`` failed and left new/a/b; folders that existed, or that hold
    something by the end, stay."""
    (tmp_path / "new").mkdir()
    with pytest.raises(RuntimeError), output_lock(tmp_path / "new" / "a" / "b" / "cube.nc"):
        raise RuntimeError("the input is bad")
    assert list(tmp_path.iterdir()) == [tmp_path / "new"] and not any((tmp_path / "new").iterdir())
    with pytest.raises(RuntimeError), output_lock(tmp_path / "new" / "a" / "b" / "cube.nc"):
        (tmp_path / "new" / "a" / "other.txt").write_text("another output, written meanwhile")
        raise RuntimeError("the input is bad")
    assert sorted(p.name for p in (tmp_path / "new" / "a").iterdir()) == ["other.txt"]
    with output_lock(tmp_path / "ok" / "cube.nc"):  # a success keeps its folder, empty or not
        pass
    assert (tmp_path / "ok").is_dir()


@pytest.mark.parametrize("hard_links", [True, False])
def test_new_files_are_placed_together_and_never_over_one_that_appeared(tmp_path, monkeypatch, hard_links):
    """A scene's map and its source map: a file the user made at either path while they were written stays as it
    is, and neither is placed (``os.replace`` had replaced the map, or left the source map alone). Also on a file
    system without hard links (placed by rename once checked)."""
    import errno

    from lai.io import atomic_new_files

    if not hard_links:
        def no_link(src, dst):
            raise OSError(errno.EPERM, "Operation not permitted")
        monkeypatch.setattr(os, "link", no_link)

    a, b = tmp_path / "map.tif", tmp_path / "map_source.tif"
    for appeared in (a, b):
        with pytest.raises(ForeignOutputError, match=rf"{appeared} appeared meanwhile; lai replaces no file it did not write"):
            with atomic_new_files(a, b) as (ta, tb):
                ta.write_text("map")
                tb.write_text("source")
                appeared.write_text("the user's own file")
        assert [p.name for p in tmp_path.iterdir()] == [appeared.name] and appeared.read_text() == "the user's own file"
        appeared.unlink()
    with atomic_new_files(a, b) as (ta, tb):
        ta.write_text("map")
        tb.write_text("source")
    assert (a.read_text(), b.read_text()) == ("map", "source") and sorted(tmp_path.iterdir()) == [a, b]


def test_stale_partials_are_removed_only_when_their_lock_is_free(tmp_path):
    out = tmp_path / "sim"
    stale_dir = tmp_path / ".sim.partial-999999-deadbeef"
    (stale_dir / S1_DIR).mkdir(parents=True)
    (stale_dir / S1_DIR / "a.tiff").write_bytes(b"x" * 100)
    other = tmp_path / ".simulation.partial-1-aaaa"  # another output's partial: not ours to remove
    other.write_text("keep")
    users = tmp_path / ".sim.partial-notes"  # a user's file that only looks like ours: not of lai's PID-RANDOM form
    users.write_text("mine")
    with output_lock(out):
        assert not stale_dir.exists() and other.exists() and users.read_text() == "mine"
        live = tmp_path / ".sim.partial-1-live"
        live.mkdir()
        with pytest.raises(OutputLockedError):  # while held, a second run removes nothing
            with output_lock(out):
                pass
        assert live.exists()


def test_a_sweep_of_a_folder_spares_the_partial_of_an_output_another_command_is_writing(tmp_path):
    """`lai run` sweeping its run folder deleted the partial folder of a `lai predict --out RUN/maps` still writing."""
    run = tmp_path / "run"
    with output_lock(run, folder=None):  # a run folder lai made
        pass
    partial = run / ".maps.partial-123-deadbeef"
    with output_lock(run / "maps"):  # the other command, writing
        partial.mkdir()
        with output_lock(run, folder=None):
            assert partial.exists()
    with output_lock(run, folder=None):  # no process holds its lock any more: a leftover
        assert not partial.exists()


def test_two_cube_builds_to_one_output(tiny_data, tmp_path):
    profile, lnb, reference = tiny_data
    out = tmp_path / "cube.nc"
    second = warm("cube", lnb, "--out", out, "--profile", "tiny", "--quiet")
    first = start("cube", lnb, "--out", out, "--profile", "tiny", "--quiet")
    wait_for(lambda: list(tmp_path.glob(".cube.nc.partial-*")), proc=first)
    _, err = go(second)
    assert second.returncode == 2, err
    assert f"lai cube: error: {out} is being written by another lai process (pid {first.pid} on host" in err
    stdout, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert f"cube {out}" in stdout and "(reused)" not in stdout
    assert check_cube_file(out)["fingerprint"] == check_cube_file(reference)["fingerprint"]
    assert not list(tmp_path.glob(".cube.nc.*"))  # neither partial nor lock left


def test_two_trainings_into_one_run_folder(tiny_data, tmp_path):
    _, _, cube = tiny_data
    runs = tmp_path / "runs"
    args = ("train", "--profile", "tiny", "--set", "train.epochs=2", "--cube", cube, "--runs", runs, "--row", "s1", "--quiet")
    second = warm(*args)
    first = start(*args)
    wait_for(lambda: (runs / "s1" / "config.yaml").exists(), proc=first)
    os.kill(first.pid, signal.SIGSTOP)  # held mid-training (on an idle machine it could finish before the second asks)
    try:
        _, err = go(second)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    assert second.returncode == 2, err
    assert f"lai train: error: {runs / 's1'} is being written by another lai process (pid {first.pid} on host" in err
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert json.loads((runs / "s1" / "result.json").read_text())["epochs"] == 2
    assert (runs / "s1" / "model.pt").is_file() and not lock_file(runs / "s1").exists()


@pytest.mark.timeout(300)
def test_sigterm_leaves_no_partial_and_no_lock(tmp_path):
    out = tmp_path / "sim"
    proc = start("simulate", "--profile", "tiny", "--out", out, "--quiet")
    wait_for(lambda: any(len(list((p / S1_DIR).glob("*.tiff"))) >= 10 for p in tmp_path.glob(".sim.partial-*")), proc=proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert "lai simulate: interrupted" in err
    assert list(tmp_path.iterdir()) == []


def test_outputs_never_replace_a_folder(tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "mine.txt").write_text("keep")
    with pytest.raises(ForeignOutputError, match="results is an existing folder; lai never replaces a folder"):
        atomic_write_text(folder, "text")
    assert (folder / "mine.txt").read_text() == "keep"
    (tmp_path / "link").symlink_to(folder)
    with pytest.raises(ForeignOutputError, match="link is a symbolic link"):
        atomic_write_text(tmp_path / "link", "text")
    assert (folder / "mine.txt").read_text() == "keep" and not list(tmp_path.glob(".*partial*"))


def test_a_link_made_while_an_output_is_written_is_not_replaced(tmp_path):
    """The output path is checked again just before the rename: a symbolic link the user made there meanwhile
    (absent when the write began) stays, and the half-made output goes."""
    mine = tmp_path / "mine.txt"
    mine.write_text("keep")
    out = tmp_path / "result.json"
    with pytest.raises(ForeignOutputError, match="result.json is a symbolic link"):
        with atomic_path(out) as tmp:
            tmp.write_text("lai's")
            out.symlink_to(mine)
    assert out.is_symlink() and out.read_text() == "keep" and not list(tmp_path.glob(".*partial*"))


def test_a_notebook_is_refused_a_run_folder_lai_run_is_writing_but_not_its_own_kernels(tmp_path, monkeypatch):
    """A notebook opened in JupyterLab on the run folder `make run` is writing used to run and rewrite its tables
    (two writers); now it is refused, naming the holder, when it opens the folder and, where it had opened it
    before the run began, at its next write, while the kernels of that `lai run` (which say its lock in the
    environment) and the holder itself go on."""
    from lai.facts import RUN_LOCK_HOLDER_ENV
    from lai.io import lock_holder
    from lai.run_folder import RunContext

    run = tmp_path / "run"
    before = RunContext.open(run, "tiny", data_root=tmp_path / "data")  # a kernel that opened it before lai run began
    patch = before.real_patches()[0]
    assert lock_holder(run) is None
    holder = subprocess.Popen([sys.executable, "-c", "import sys; from lai.io import output_lock\n"
                               f"with output_lock({str(run)!r}, folder='profile.yaml'):\n"
                               "    print('held', flush=True); sys.stdin.readline()"],
                              cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        text = f"pid {holder.pid} on host {socket.gethostname()}"
        assert lock_holder(run) == text
        with pytest.raises(OutputLockedError, match=rf"{run} is being written by another lai process \({text}; `lai run`"):
            RunContext.open(run)
        for write in (lambda: before.save_table(pd.DataFrame({"a": [1]}), "splits"), before.write_provenance,
                      lambda: before.preprocess_patch(patch)):
            with pytest.raises(OutputLockedError, match=rf"is being written by another lai process \({text}; "):
                write()  # refused at its next write, not only when it opened the folder
        assert not (run / "tables" / "splits.csv").exists() and not (run / "provenance.json").exists()
        assert not (run / "preprocessing" / f"lnb_{patch.name}").exists()  # refused before notebook 00's work
        shutil.rmtree(run / "preprocessing" / "bigearthnet")
        before._patches = None
        with pytest.raises(OutputLockedError, match=rf"is being written by another lai process \({text}; "):
            before.real_patches()  # the example patches are not unpacked again either
        assert not (run / "preprocessing" / "bigearthnet").exists()
        monkeypatch.setenv(RUN_LOCK_HOLDER_ENV, text)  # a kernel of that lai run
        assert RunContext.open(run).run_dir == run
        assert before.save_table(pd.DataFrame({"a": [1]}), "splits").exists()
    finally:
        holder.communicate("go\n", timeout=60)
    monkeypatch.delenv(RUN_LOCK_HOLDER_ENV)
    assert lock_holder(run) is None and RunContext.open(run).run_dir == run  # free again, and lock_holder took nothing


def test_an_output_that_cannot_take_the_result_is_named_not_its_temporary_sibling(tmp_path, monkeypatch):
    """An empty --out that is a mount point is refused before any work (the rename onto it fails: EBUSY); a rename
    refused otherwise (an immutable folder: EPERM) names the output, not the hidden .partial sibling, and leaves
    nothing."""
    import errno

    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setattr(os.path, "ismount", lambda p: Path(p) == out)
    with pytest.raises(ForeignOutputError, match=r"out is a mount point; .* give a new folder inside it"):
        with atomic_path(out):
            raise AssertionError("work started")
    monkeypatch.undo()

    def refused(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted", str(src), None, str(dst))

    monkeypatch.setattr(os, "replace", refused)
    with pytest.raises(OSError, match=rf"the finished result could not be put in place \(Operation not permitted\); "
                                      rf"nothing was written there: '{out}'") as caught:
        with atomic_path(out) as tmp:
            tmp.mkdir()
            (tmp / "result.txt").write_text("done")
    assert ".partial" not in str(caught.value) and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_folder_claimed_by_a_refused_command_is_not_left_behind(tmp_path):
    """A command refused after claiming a run folder (a check of its inputs failed) removes the marker it wrote there,
    and the folder and the parents it made; a folder lai had marked before, or into which it wrote, stays as it is."""
    from lai.io import FOLDER_MARK

    def refused(folder):
        with pytest.raises(ValueError, match="refused"):
            with output_lock(folder, folder="config.yaml"):
                assert (folder / FOLDER_MARK).is_file()
                raise ValueError("refused")

    refused(tmp_path / "runs" / "s1")
    assert not (tmp_path / "runs").exists()  # the stage folder, its lock and the runs folder made for it
    (tmp_path / "mine").mkdir()  # an empty folder of the user's: kept, without the marker the command wrote
    refused(tmp_path / "mine")
    assert (tmp_path / "mine").is_dir() and not any((tmp_path / "mine").iterdir())
    kept = tmp_path / "kept"
    with output_lock(kept, folder="config.yaml"):
        pass  # a folder lai made before, empty but its marker
    refused(kept)
    assert sorted(p.name for p in kept.iterdir()) == [FOLDER_MARK]
    with pytest.raises(ValueError, match="after writing"):
        with output_lock(tmp_path / "written", folder="config.yaml"):
            (tmp_path / "written" / "config.yaml").write_text("row: s1\n")
            raise ValueError("after writing")
    assert (tmp_path / "written" / "config.yaml").is_file()  # what it wrote stays for the next run to resume or refuse
