"""lai publish: a finished run's report, tables, figures and configuration copied to a folder kept in git."""
import json
import os
import re
import warnings
from pathlib import Path

import pytest

from lai.cli import main
from lai.io import FOLDER_MARK_TEXT, ForeignOutputError, claim_folder
from lai.report.inputs import ReportError
from lai.report.publish import publish


def _png_of(size: tuple[int, int]) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, "white").save(out, "PNG")
    return out.getvalue()


PNG = _png_of((3, 2))  # a small image that decodes


WRITTEN = "2026-12-07T06:49:23"  # when the report notebook wrote provenance.json, and the report printed it


def _run(tmp_path, tables=("table1", "comparisons", "training")):
    run = tmp_path / "standard"
    for sub in ("tables", "figures", "notebooks", "runs/final"):
        (run / sub).mkdir(parents=True, exist_ok=True)
    for name in ("report.pdf", "profile.yaml"):
        (run / name).write_text(name)
    (run / "report.json").write_text(json.dumps({"provenance": {"items": [["git revision (this report)", "abc123"],
                                                                          ["written", WRITTEN]]}}))
    (run / "provenance.json").write_text(json.dumps({"git_revision": "abc123", "git_dirty": False, "device": "CPU (2 cores)",
                                                     "written": WRITTEN}))
    for t in tables:
        (run / "tables" / f"{t}.csv").write_text("row,seconds\ns1,1500\nfinal,2100\n" if t == "training" else "set\nnon_cloudy\n")
    (run / "figures" / "density.png").write_bytes(PNG)
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
    # the stages were trained by other code than the report's (reused): the README says which
    (run / "tables" / "training.csv").write_text("row,seconds,trained_at,trained_on\ns1,1500,37142eeae748 (lai 0.1.0),"
                                                 "Xeon (AVX512)\nfinal,2100,37142eeae748 (lai 0.1.0),Xeon (AVX512)\n")
    publish(run, dest, "make reference")
    assert ("(tables/training.csv, `seconds`; trained 2 at git revision 37142eeae748 (lai 0.1.0) on Xeon (AVX512)); "
            "a rerun reuses trained stages") in (dest / "README.md").read_text()
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


def test_publish_refuses_a_run_folder_being_written_or_whose_last_run_stopped_before_its_report(tmp_path):
    """A rerun into the run folder (lai run holds its lock) would mix two runs' files; notebook 01 run again, alone
    or by a run that stopped after it, left a provenance.json (new data) beside the previous run's report."""
    from lai.io import OutputLockedError, output_lock

    run = _run(tmp_path)
    with output_lock(run):  # the lock lai run holds on its run folder
        with pytest.raises(OutputLockedError, match=rf"{run} is being written by another lai process"):
            publish(run, tmp_path / "out", "make reference")
    prov = json.loads((run / "provenance.json").read_text())
    (run / "provenance.json").write_text(json.dumps({**prov, "written": "2026-12-08T10:00:00"}))
    with pytest.raises(ReportError, match=r"report\.json was written from the provenance of 2026-12-07T06:49:23, but "
                                          r"provenance\.json is of 2026-12-08T10:00:00: notebook 01 ran again after "
                                          r"the report, alone or in a lai run that stopped before its report; make "
                                          r"the report again \(lai run continues the run"):
        publish(run, tmp_path / "out", "make reference")
    assert not (tmp_path / "out").exists()


def test_a_published_folder_is_never_taken_as_a_run_folder(tmp_path):
    """Its profile.yaml is the run's, so ``lai run --name`` it (or a notebook with run_dir there) matched and wrote
    weights, notebooks and a cube's records into the folder kept in git."""
    from lai.errors import RunFolderError
    from lai.run_profile import open_run_folder

    dest = tmp_path / "reference"
    publish(_run(tmp_path), dest, "make reference")
    before = _digest(dest)
    for profile in (None, "tiny"):
        with pytest.raises(RunFolderError, match=rf"{dest} holds results lai publish copied there \(\.lai-published\), "
                                                 "kept without weights or notebooks: lai never runs into it"):
            open_run_folder(dest, profile)
    assert _digest(dest) == before


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
    ("tables/table1.csv", lambda p: p.symlink_to("/dev/zero"), "is not a regular file"),  # copied zeros until the disk was full
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
    (dest / "tables" / "splits.csv").write_text("my analysis")
    (dest / "NOTES.md").write_text("notes")  # outside what publish writes: never touched
    before = _digest(dest)
    with pytest.raises(ForeignOutputError, match=r"reference holds tables/splits.csv, which no earlier lai publish wrote"):
        publish(run, dest, "make reference")
    (run / "tables" / "splits.csv").write_text("the run's")  # the run has one of that name now: still the user's file
    with pytest.raises(ForeignOutputError, match="tables/splits.csv, which no earlier lai publish wrote"):
        publish(run, dest, "make reference")
    assert _digest(dest) == before
    (dest / "tables" / "splits.csv").unlink()
    (run / "tables" / "comparisons.csv").unlink()
    publish(run, dest, "make reference")  # what the record lists is lai's: replaced, or deleted when the run lacks it
    assert (dest / "tables" / "splits.csv").read_text() == "the run's" and not (dest / "tables" / "comparisons.csv").exists()
    assert (dest / "NOTES.md").read_text() == "notes"
    # a record of an earlier lai (written last, without "finished", nor README.md in its list) still proves README.md lai's
    files = [name for name in json.loads((dest / ".lai-published").read_text())["files"] if name != "README.md"]
    (dest / ".lai-published").write_text(json.dumps({"files": files}))
    publish(run, dest, "make reference")
    (dest / ".lai-published").write_text("[1, 2]")
    with pytest.raises(ReportError, match=r"\.lai-published .*expected an object|not the list of files"):
        publish(run, dest, "make reference")


def _refused(capsys, argv, pattern):
    """``lai publish ...`` refused: exit 2 and one line ``lai publish: error: ...`` matching ``pattern``."""
    assert main(["publish", *map(str, argv)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.match(r"lai publish: error: .*" + pattern, err), err


def test_publish_refuses_another_lai_folder(tmp_path, capsys):
    """A run folder before its tables (lai's marker, profile.yaml, data.json): publish replaced its profile.yaml and
    added its own files. A folder with lai's marker but no publish record is refused, named with what it holds."""
    run, other = _run(tmp_path), tmp_path / "other"
    claim_folder(other, None)
    (other / "profile.yaml").write_text("name: other\n")
    (other / "data.json").write_text("{}")
    before = _digest(other)
    _refused(capsys, [run, other], r"other holds data\.json, profile\.yaml but no \.lai-published: it is a folder lai made")
    assert _digest(other) == before
    (other / "profile.yaml").unlink()
    (other / "data.json").unlink()
    publish(run, other, "make reference")  # nothing but the marker: as good as empty


def test_publish_refuses_a_top_level_file_it_did_not_record(tmp_path, capsys):
    run, dest = _run(tmp_path), tmp_path / "reference"
    publish(run, dest, "make reference")
    record = json.loads((dest / ".lai-published").read_text())
    assert "README.md" in record["files"] and record["finished"] is True
    record["files"].remove("profile.yaml")
    (dest / ".lai-published").write_text(json.dumps(record))
    (dest / "profile.yaml").write_text("mine")
    before = _digest(dest)
    _refused(capsys, [run, dest], r"reference holds profile\.yaml, which no earlier lai publish wrote there")
    assert _digest(dest) == before


@pytest.mark.parametrize("path, make, message", [
    ("tables/table1.csv", lambda p, secret: p.symlink_to(secret), r"table1\.csv is not a regular file but a symbolic link"),
    ("report.json", lambda p, secret: p.symlink_to(secret), r"report\.json is not a regular file but a symbolic link"),
    ("tables", lambda p, secret: (secret.parent / "elsewhere").mkdir() or p.symlink_to(secret.parent / "elsewhere"),
     r"tables is a symbolic link, which lai publish does not follow"),  # a folder beside the destination
    ("figures/density.png", lambda p, secret: p.write_text("hostname"), r"density\.png is not a readable PNG image"),
    ("figures/density.png", lambda p, secret: p.write_bytes(PNG[:-20]), r"density\.png is not a readable PNG image"),
    ("figures/density.png", lambda p, secret: p.write_bytes(PNG[:-1]), r"density\.png is not a readable PNG image"),
    ("figures/density.png", lambda p, secret: p.write_bytes(PNG[:16] + bytes([PNG[16] ^ 0xFF]) + PNG[17:]),
     r"density\.png is not a readable PNG image"),
])
def test_publish_copies_only_the_schemas_regular_files(tmp_path, capsys, path, make, message):
    """A link to a mode-600 secret at a table's name was copied, mode 644, into the folder kept in git; any *.csv or
    *.png was published, PNG or not. Now links are refused (never opened; a linked tables/ too), and so are non-PNGs
    and PNGs that do not decode (a signature alone, or a file cut short, once passed)."""
    run, dest, secret = _run(tmp_path), tmp_path / "reference", tmp_path / "secret.txt"
    secret.write_text("SECRET=hunter2")
    secret.chmod(0o600)
    if (run / path).is_dir():
        import shutil

        shutil.rmtree(run / path)
    (run / path).unlink(missing_ok=True)
    make(run / path, secret)
    _refused(capsys, [run, dest], message)
    assert not dest.exists()


def test_publish_refuses_more_than_its_size_limit_before_reading(tmp_path, capsys, monkeypatch):
    """Twelve sparse 250 MB files took 3 GB of memory and wrote 3 GB: publish now adds up the sizes first."""
    run, dest = _run(tmp_path), tmp_path / "reference"
    for name in ("density", "sample_maps", "s1_vs_lai"):
        with open(run / "figures" / f"{name}.png", "wb") as f:
            f.write(PNG)
            f.truncate(250 * 2**20)  # sparse: nothing on disk
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail(f"{self} read whole"))
    _refused(capsys, [run, dest], r"the files to publish hold 786,4\d\d,\d\d\d bytes \(the largest, figures/\w+\.png, "
             r"262,144,000\), more than the 536,870,912")
    assert not dest.exists()


def test_an_interrupted_publish_leaves_a_record_the_next_one_reads(tmp_path, monkeypatch):
    """Killed after a few files, publish left them unrecorded (the record came last): the next publish refused them
    as a user's. Now the record, written first and marked unfinished, lists them."""
    run, dest = _run(tmp_path), tmp_path / "reference"
    publish(run, dest, "make reference")
    (run / "figures" / "learning_curves.png").write_bytes(PNG)
    copied = []

    import lai.report.publish as pub

    copy = pub._copy

    def killed(src, dst, *args):
        if copied:
            raise KeyboardInterrupt
        copied.append(copy(src, dst, *args))

    monkeypatch.setattr(pub, "_copy", killed)
    with pytest.raises(KeyboardInterrupt):
        publish(run, dest, "make reference")
    monkeypatch.undo()
    record = json.loads((dest / ".lai-published").read_text())
    assert record["finished"] is False and "figures/learning_curves.png" in record["files"]
    assert not (dest / "README.md").exists()  # a folder cut short does not look like a finished publish
    (run / "figures" / "learning_curves.png").unlink()
    publish(run, dest, "make reference")  # the unfinished record's files are lai's: replaced or deleted
    assert not (dest / "figures" / "learning_curves.png").exists()
    assert json.loads((dest / ".lai-published").read_text())["finished"] is True


def test_provenance_strings_reach_readme_md_as_plain_short_text(tmp_path):
    run, dest = _run(tmp_path), tmp_path / "reference"
    (run / "provenance.json").write_text(json.dumps({"git_revision": "abc\x1b[2J\x07\n\n# Injected heading\n",
                                                     "device": "x" * 100_000, "platform": ["a", "list"], "git_dirty": "no",
                                                     "written": WRITTEN}))
    publish(run, dest, "make reference")
    index = (dest / "README.md").read_text()
    assert len(index) < 2000 and not any(c in index for c in "\x1b\x07") and "\n# Injected" not in index
    assert "git revision abc[2J# Injected heading on xxx" in index and "..., ?;" in index and "uncommitted" not in index


@pytest.mark.parametrize("duration", ["1e999", -5, "nan", True])
def test_notebook_durations_must_be_finite_seconds(tmp_path, capsys, duration):
    run, dest = _run(tmp_path), tmp_path / "reference"
    (run / "notebooks" / "02_training.ipynb").write_text(json.dumps({"metadata": {"papermill": {"duration": duration}}}))
    _refused(capsys, [run, dest], r"02_training\.ipynb: papermill's duration is .*, not a number of seconds \(0 to ")
    assert not dest.exists()


@pytest.mark.parametrize("seconds", ["1e308", "lots", "-5"])
def test_training_seconds_that_are_no_durations_show_as_unknown(tmp_path, capsys, seconds):
    run, dest = _run(tmp_path), tmp_path / "reference"
    (run / "tables" / "training.csv").write_text(f"row,seconds\ns1,{seconds}\nfinal,1e308\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's overflow warning on stderr
        publish(run, dest, "make reference")
    assert "Training time: unknown (tables/training.csv, `seconds`" in (dest / "README.md").read_text()


def test_an_unreadable_record_says_what_helps(tmp_path, capsys):
    run, dest = _run(tmp_path), tmp_path / "reference"
    publish(run, dest, "make reference")
    (dest / ".lai-published").write_text("[1, 2")
    _refused(capsys, [run, dest], r"\.lai-published is not readable JSON \(.*\); remove the folder .* or publish elsewhere$")


def test_a_marker_with_crlf_line_ends_is_lais(tmp_path):
    """A git checkout with core.autocrlf turned reports/reference's marker to CRLF: publish refused the folder."""
    run, dest = _run(tmp_path), tmp_path / "reference"
    publish(run, dest, "make reference")
    (dest / ".lai-folder").write_bytes(FOLDER_MARK_TEXT.replace("\n", "\r\n").encode())
    publish(run, dest, "make reference")
    attributes = (Path(__file__).resolve().parent.parent / ".gitattributes").read_text().split("\n")
    assert ".lai-folder -text" in attributes and ".lai-published -text" in attributes


def test_a_users_own_table_in_the_run_folder_stays_there_and_is_said(tmp_path, capsys):
    """Tables and figures outside the run folder's schema are not published (only the run's own), and the command
    says which; the publish goes on."""
    run, dest = _run(tmp_path), tmp_path / "reference"
    (run / "tables" / "notes.csv").write_text("mine")
    (run / "figures" / "zz.png").write_bytes(PNG)
    assert main(["publish", str(run), str(dest)]) == 0
    err = capsys.readouterr().err
    assert "not published, not in the run folder's schema" in err and "tables/notes.csv" in err and "figures/zz.png" in err
    assert not (dest / "tables" / "notes.csv").exists() and (dest / "tables" / "table1.csv").exists()


def test_a_killed_runs_notebook_partial_is_no_notebook_of_the_run(tmp_path):
    """lai run writes each executed notebook to a hidden partial first: a killed run's partial (cut mid-write, or
    holding a duration) is neither refused nor counted."""
    run, dest = _run(tmp_path), tmp_path / "reference"
    (run / "notebooks" / ".03_ablations.ipynb.partial-123-abcdef12.ipynb").write_text('{"metadata": {"papermill": {"dura')
    (run / "notebooks" / ".04_baselines.ipynb.partial-123-abcdef13.ipynb").write_text(
        json.dumps({"metadata": {"papermill": {"duration": 500.0}}}))
    publish(run, dest, "make reference")
    index = (dest / "README.md").read_text()
    assert "partial" not in index and "all | 61" in index


@pytest.mark.parametrize("make", [lambda p: p.mkdir(), lambda p: p.symlink_to("elsewhere.csv")], ids=["folder", "link"])
def test_a_recorded_file_that_is_no_longer_a_file_is_refused_and_named(tmp_path, capsys, make):
    """A file an earlier publish wrote (its record lists it) replaced by a folder or a link: refused before anything
    is written, naming the path and what was expected (it was the bare OS error 'Is a directory')."""
    run, dest = _run(tmp_path), tmp_path / "reference"
    publish(run, dest, "make reference")
    (dest / "tables" / "training.csv").unlink()
    make(dest / "tables" / "training.csv")
    before = _digest(dest)
    _refused(capsys, [run, dest], r"reference/tables/training.csv (is not a regular file \(a folder, FIFO or device\?\)|is a symbolic link), where an "
             r"earlier lai publish wrote a file")
    assert _digest(dest) == before


def test_a_file_that_grows_after_its_size_check_is_refused_not_copied_whole(tmp_path, monkeypatch):
    """The 512 MiB limit is checked on the sizes when the files are opened; a file a run keeps writing grew past it
    while publish copied it (the copy read to the end). Now exactly the checked bytes are copied, and a file that
    changed size is a ReportError naming it; the destination stays marked unfinished, and a later publish works."""
    import lai.report.publish as publishing

    run, dest = _run(tmp_path), tmp_path / "reference"
    opened = publishing._open_sources

    def growing(run_dir, stack):
        files, sizes = opened(run_dir, stack)
        with open(run / "tables" / "training.csv", "a") as f:
            f.write("more,rows\n" * 1000)
        return files, sizes

    monkeypatch.setattr(publishing, "_open_sources", growing)
    with pytest.raises(ReportError, match=r"tables/training.csv changed while lai publish copied it \(\d[\d,]* bytes when "
                       r"checked\)"):
        publish(run, dest, "make reference")
    assert json.loads((dest / ".lai-published").read_text())["finished"] is False and not (dest / "README.md").exists()
    monkeypatch.setattr(publishing, "_open_sources", opened)
    publish(run, dest, "make reference")
    assert (dest / "tables" / "training.csv").read_bytes() == (run / "tables" / "training.csv").read_bytes()


def test_a_published_real_data_run_says_its_data_and_how_it_was_made(tmp_path):
    """lai publish of a run on a real LNB folder wrote "Reference results ... Regenerate with `make reference`" (the
    simulated standard profile) and never said the data were real; now its data and its own commands."""
    run, dest = _run(tmp_path), tmp_path / "published"
    (run / "profile.yaml").write_text("name: tiny\ndata: /data/my-lnb\n")
    (run / "data.json").write_text(json.dumps({"kind": "real", "source": "/data/my-lnb", "data_root": str(tmp_path / "data")}))
    main(["publish", str(run), str(dest)])
    index = (dest / "README.md").read_text()
    # the profile the run resolved (its overrides, its LNB folder), its name and reports root, then this publish
    assert f"`lai run --profile {dest}/profile.yaml --name standard --reports {run.parent} --data-root " \
           f"{tmp_path / 'data'} && lai publish {run} {dest}`" in index
    assert "Data: real, the LNB folder /data/my-lnb (no true LAI" in index and "make reference" not in index
    (run / "data.json").write_text(json.dumps({"kind": "simulated", "source": "data/sim-1"}))
    main(["publish", str(run), str(dest), "--command-line", "make reference"])
    index = (dest / "README.md").read_text()
    assert "Data: simulated by lai's built-in simulator" in index and "`make reference`" in index


def test_a_table_or_figure_rewritten_after_the_report_is_not_published_beside_it(tmp_path):
    """Notebook 00 run again alone drew another patch into its figure; publish copied it beside a report.pdf showing
    the first (the report's provenance alone was checked). report.json records each table's and figure's SHA-256."""
    from lai.report.inputs import REPORTED_FILES, result_digests

    run = _run(tmp_path)
    report = json.loads((run / "report.json").read_text())
    (run / "report.json").write_text(json.dumps({**report, REPORTED_FILES: result_digests(run)}))
    publish(run, tmp_path / "ok", "make reference")
    (run / "figures" / "density.png").write_bytes(_png_of((4, 2)))
    (run / "tables" / "seeds.csv").write_text("set\nnon_cloudy\n")
    with pytest.raises(ReportError, match=r"figures/density\.png, tables/seeds\.csv changed since the report was "
                                          r"written .* make the report again"):
        publish(run, tmp_path / "stale", "make reference")
    assert not (tmp_path / "stale").exists() or not any((tmp_path / "stale").rglob("*.png"))
