"""lai publish: a finished run's report, tables, figures and configuration copied to a folder kept in git."""
import json
import os
from pathlib import Path

import pytest

from lai.cli import main
from lai.io import FOLDER_MARK_TEXT, ForeignOutputError
from lai.report.inputs import ReportError
from lai.report.publish import publish


def _run(tmp_path, tables=("table1", "comparisons", "training")):
    run = tmp_path / "standard"
    for sub in ("tables", "figures", "notebooks", "runs/final"):
        (run / sub).mkdir(parents=True, exist_ok=True)
    for name in ("report.pdf", "report.json", "profile.yaml"):
        (run / name).write_text(name)
    (run / "provenance.json").write_text(json.dumps({"git_revision": "abc123", "git_dirty": False, "device": "CPU (2 cores)"}))
    for t in tables:
        (run / "tables" / f"{t}.csv").write_text("row,seconds\ns1,1500\nfinal,2100\n" if t == "training" else "set\nnon_cloudy\n")
    (run / "figures" / "density.png").write_bytes(b"png")
    (run / "runs" / "final" / "model.pt").write_bytes(b"weights")
    (run / "notebooks" / "02_training.ipynb").write_text(json.dumps({"metadata": {"papermill": {"duration": 61.4}}}))
    return run


def test_publish_copies_results_not_weights_and_says_how_to_regenerate(tmp_path):
    run, dest = _run(tmp_path), tmp_path / "reference"
    publish(run, dest, "make reference")
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) == [
        ".lai-folder", ".lai-published", "README.md", "figures/density.png", "profile.yaml", "provenance.json", "report.json", "report.pdf",
        "tables/comparisons.csv", "tables/table1.csv", "tables/training.csv"]
    index = (dest / "README.md").read_text()
    assert "`make reference`" in index and "abc123" in index and "02_training.ipynb | 61" in index
    assert "The 2 training stages took 60 min when they were trained" in index  # 1500 + 2100 s, not the rerun's time
    # a second publish replaces the first, dropping a table the new run no longer has
    (run / "tables" / "comparisons.csv").unlink()
    main(["publish", str(run), str(dest)])
    assert not (dest / "tables" / "comparisons.csv").exists() and (dest / "tables" / "table1.csv").exists()


def test_publish_refuses_an_unfinished_run_and_a_users_folder(tmp_path):
    run = _run(tmp_path)
    (run / "report.pdf").unlink()
    with pytest.raises(ReportError, match="lacks report.pdf"):
        publish(run, tmp_path / "out", "make reference")
    (run / "report.pdf").write_text("pdf")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(ForeignOutputError, match="mine is a folder lai did not make"):
        publish(run, mine, "make reference")
    assert (mine / "notes.txt").read_text() == "keep" and not (mine / "report.pdf").exists()


def _digest(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("held", [
    {"README.md": "my readme", "tables/results.csv": "precious", "figures/plot.png": "png"},  # a README proves nothing
    {".lai-folder": "", "tables/table1.csv": "mine"},  # an empty (forged) marker neither
])
def test_publish_never_writes_into_a_users_folder_holding_what_it_writes(tmp_path, held):
    run, mine = _run(tmp_path), tmp_path / "mine"
    for name, text in held.items():
        (mine / name).parent.mkdir(parents=True, exist_ok=True)
        (mine / name).write_text(text)
    before = _digest(mine)
    with pytest.raises(ForeignOutputError, match="mine"):
        publish(run, mine, "make reference")
    assert _digest(mine) == before


def test_publish_keeps_the_run_and_the_destination_apart(tmp_path):
    run = _run(tmp_path)
    before = _digest(run)
    for dest, message in ((run, "lies inside the run folder"), (run / "pub", "lies inside the run folder"),
                          (tmp_path, "lies inside the destination")):
        with pytest.raises(ForeignOutputError, match=message):
            publish(run, dest, "make reference")
    assert _digest(run) == before


@pytest.mark.parametrize("spoil, message", [
    (lambda run: (run / "provenance.json").write_text("not json"), r"provenance\.json is not readable JSON"),
    (lambda run: (run / "provenance.json").write_text("[1, 2]"), r"provenance\.json holds a JSON list, expected an object"),
    (lambda run: (run / "notebooks" / "02_training.ipynb").write_text("{"), r"02_training\.ipynb is not readable JSON"),
    (lambda run: (run / "notebooks" / "02_training.ipynb").write_text(
        json.dumps({"metadata": {"papermill": {"duration": "abc"}}})), r"duration is 'abc', not a number"),
])
def test_unreadable_run_records_are_refused_before_anything_is_copied(tmp_path, spoil, message):
    run, dest = _run(tmp_path), tmp_path / "reference"
    spoil(run)
    with pytest.raises(ReportError, match=message):
        publish(run, dest, "make reference")
    assert not dest.exists()


@pytest.mark.parametrize("path, make, message", [
    ("notebooks/02_training.ipynb", os.mkfifo, "is not a regular file"),  # hung
    ("notebooks/02_training.ipynb", lambda p: p.symlink_to("/dev/zero"), "is not a regular file"),  # filled memory
    ("tables/z.csv", lambda p: p.symlink_to("/dev/zero"), "is not a regular file"),  # copied zeros until the disk was full
    ("figures/density.png", os.mkfifo, "is not a regular file"),
    ("report.pdf", lambda p: p.symlink_to("/dev/zero"), "lacks report.pdf"),
    ("provenance.json", lambda p: p.write_text("{\"a\": " * 100_000 + "1" + "}" * 100_000), r"is not readable JSON \(nested too deeply\)"),
])
def test_run_files_that_are_no_regular_files_are_refused_before_anything_is_copied(tmp_path, path, make, message):
    """A FIFO, a link to a device or JSON nested too deeply among the files publish reads or copies: one error naming
    it, and the destination never made (no half-published folder)."""
    run, dest = _run(tmp_path), tmp_path / "reference"
    if (run / path).exists():
        (run / path).unlink()
    make(run / path)
    with pytest.raises(ReportError, match=message):
        publish(run, dest, "make reference")
    assert not dest.exists()


def test_publish_follows_no_link_inside_its_folder(tmp_path):
    """A tables/ link planted in a folder lai made: publish deleted and replaced the CSVs at its target."""
    run, dest = _run(tmp_path), tmp_path / "reference"
    publish(run, dest, "make reference")
    mine = tmp_path / "mydata"
    mine.mkdir()
    (mine / "results.csv").write_text("precious")
    (mine / "table1.csv").write_text("mine")
    import shutil

    shutil.rmtree(dest / "tables")
    (dest / "tables").symlink_to(mine)
    before = _digest(mine)
    with pytest.raises(ForeignOutputError, match=r"reference/tables is a symbolic link or a file"):
        publish(run, dest, "make reference")
    assert _digest(mine) == before


def test_publish_replaces_and_deletes_only_what_an_earlier_publish_recorded(tmp_path):
    """A table a user added to a published folder: publish deleted it (the run lacks it) or replaced it (the run has
    one of that name). Now both are refused, named, with nothing touched."""
    run, dest = _run(tmp_path), tmp_path / "reference"
    publish(run, dest, "make reference")
    assert "tables/table1.csv" in json.loads((dest / ".lai-published").read_text())["files"]
    (dest / "tables" / "mine.csv").write_text("my analysis")
    (dest / "NOTES.md").write_text("notes")  # outside tables/ and figures/: never touched
    before = _digest(dest)
    with pytest.raises(ForeignOutputError, match=r"reference holds tables/mine.csv, which no earlier lai publish wrote"):
        publish(run, dest, "make reference")
    (run / "tables" / "mine.csv").write_text("the run's")  # the run has one of that name now: still the user's file
    with pytest.raises(ForeignOutputError, match="tables/mine.csv, which no earlier lai publish wrote"):
        publish(run, dest, "make reference")
    assert _digest(dest) == before
    (dest / "tables" / "mine.csv").unlink()
    (run / "tables" / "comparisons.csv").unlink()
    publish(run, dest, "make reference")  # what the record lists is lai's: replaced, or deleted when the run lacks it
    assert (dest / "tables" / "mine.csv").read_text() == "the run's" and not (dest / "tables" / "comparisons.csv").exists()
    assert (dest / "NOTES.md").read_text() == "notes"
    # a folder published before the record existed: files the run also has count as lai's, others are refused
    (dest / ".lai-published").unlink()
    publish(run, dest, "make reference")
    (dest / ".lai-published").unlink()
    (dest / "figures" / "old.png").write_bytes(b"png")
    with pytest.raises(ForeignOutputError, match="figures/old.png, which no earlier lai publish wrote"):
        publish(run, dest, "make reference")
    (dest / ".lai-published").write_text("[1, 2]")
    with pytest.raises(ReportError, match=r"\.lai-published .*expected an object|not the list of files"):
        publish(run, dest, "make reference")


def test_a_marker_with_crlf_line_ends_is_lais(tmp_path):
    """A git checkout with core.autocrlf turned reports/reference's marker to CRLF: publish refused the folder."""
    run, dest = _run(tmp_path), tmp_path / "reference"
    publish(run, dest, "make reference")
    (dest / ".lai-folder").write_bytes(FOLDER_MARK_TEXT.replace("\n", "\r\n").encode())
    publish(run, dest, "make reference")
    attributes = (Path(__file__).resolve().parent.parent / ".gitattributes").read_text().split("\n")
    assert ".lai-folder -text" in attributes and ".lai-published -text" in attributes
