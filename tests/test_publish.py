"""lai publish: a finished run's report, tables, figures and configuration copied to a folder kept in git."""
import json

import pytest

from lai.cli import main
from lai.io import ForeignOutputError
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
        ".lai-folder", "README.md", "figures/density.png", "profile.yaml", "provenance.json", "report.json", "report.pdf",
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
