"""Configuration: the profile stays torch-free, is resolved once per run folder; stage configurations compare by equality."""

import json
from pathlib import Path

import pytest


def test_building_a_profile_imports_no_torch():
    """Configuration and the shared facts stay torch-free (no import circle through the model)."""
    import subprocess
    import sys

    code = "import sys; from lai.config import load_profile; load_profile('paper'); import lai.facts, lai.tables; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=__import__("pathlib").Path(__file__).resolve().parent.parent)
    assert done.stdout.strip() == "False", done.stdout + done.stderr


# --------------------------------------------------------------------------- run folders: the profile resolved once


def test_run_folder_profile_is_resolved_once_and_then_read_as_it_is(tmp_path, monkeypatch):
    """A new folder is started from profile + overrides (profile.yaml written); opened by its folder alone it gives
    that profile back from profile.yaml without resolving anything again."""
    import yaml

    from lai import run_profile
    from lai.config import load_profile
    from lai.run_folder import RunContext

    ctx = RunContext.open(tmp_path / "run", "tiny", ["train.epochs=2"], data_root=tmp_path / "data")
    expected = load_profile("tiny", ["train.epochs=2"])
    assert ctx.profile == expected and ctx.run_dir == tmp_path / "run" and ctx.data_root == tmp_path / "data"
    assert yaml.safe_load((tmp_path / "run" / "profile.yaml").read_text()) == expected.to_dict()

    def no_resolution(*args, **kwargs):
        raise AssertionError("the profile was resolved again")

    monkeypatch.setattr(run_profile, "load_profile", no_resolution)
    assert RunContext.open(tmp_path / "run").profile == expected


def test_notebook_paths_that_would_land_elsewhere_are_refused_before_any_folder_is_made(tmp_path, monkeypatch):
    """An empty path parameter (an environment variable set empty) is not the project folder; ``~`` is the home folder;
    a profile's name is a plain folder name under reports/; a run of real data writes neither its run folder nor its
    data root inside its LNB folder (as `lai run` refuses)."""
    from lai import run_profile
    from lai.errors import ConfigError
    from lai.io import ForeignOutputError
    from lai.run_folder import RunContext
    from tests.helpers import make_lnb

    before = sorted(tmp_path.iterdir())
    with pytest.raises(ConfigError, match=r"the parameter data_root is empty \(or the environment variable LAI_DATA_ROOT "
                                          r"set empty\): give a path"):
        RunContext.open(tmp_path / "run", "tiny", data_root="")
    with pytest.raises(ConfigError, match=r"the parameter run_dir is empty \(or the environment variable LAI_RUN_DIR set "
                                          r"empty\): give a path"):
        RunContext.open(" ", "tiny")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert RunContext.open("~/run", "tiny").run_dir == tmp_path / "home" / "run"
    monkeypatch.setattr(run_profile, "PROJECT_ROOT", tmp_path / "project")
    with pytest.raises(ConfigError, match=r"run name '\.\./\.\./evil' must be a plain folder name"):
        RunContext.open(None, "tiny", ["name=../../evil"])
    assert not (tmp_path / "project").exists() and not (tmp_path / "evil").exists()
    lnb = make_lnb(tmp_path / "lnb")
    with pytest.raises(ForeignOutputError, match=r"lnb/run lies inside the LNB folder .*write the run folder outside"):
        RunContext.open(lnb / "run", "tiny", data=lnb)
    with pytest.raises(ForeignOutputError, match=r"lnb/cubes lies inside the LNB folder .*write the data root \(data_root\)"):
        RunContext.open(tmp_path / "real", "tiny", data=lnb, data_root=lnb / "cubes")
    assert not (lnb / "run").exists() and not (tmp_path / "real").exists()
    assert sorted(p for p in tmp_path.iterdir() if p.name not in ("home", "lnb")) == before


def test_run_folder_refuses_another_configuration_naming_run_dir(tmp_path):
    import yaml

    from lai.errors import RunFolderError
    from lai.run_folder import RunContext

    run = tmp_path / "run"
    RunContext.open(run, "tiny")
    before = (run / "profile.yaml").stat().st_mtime_ns
    assert RunContext.open(run, "tiny").profile.train.epochs == 1  # the same configuration again: fine
    with pytest.raises(RunFolderError, match=rf"^{run} already holds a run with another configuration \(see its profile\.yaml\): "
                       r"different train\.epochs: 1 there, 3 here; .*in a notebook set the parameter run_dir to a new folder$"):
        RunContext.open(run, "tiny", ["train.epochs=3"])
    # overrides without a profile apply to the folder's (tiny), not to quick: the field changed is the one named
    with pytest.raises(RunFolderError, match=r"configuration \(see its profile\.yaml\): different train\.epochs: 1 there, 3 "
                                             r"here; choose"):
        RunContext.open(run, overrides=["train.epochs=3"])
    assert RunContext.open(run, overrides=["train.epochs=1"]).profile.name == "tiny"  # what it holds: fine
    assert (run / "profile.yaml").stat().st_mtime_ns == before
    saved = yaml.safe_load((run / "profile.yaml").read_text())
    del saved["extras"]  # a profile.yaml written before this field existed
    (run / "profile.yaml").write_text(yaml.safe_dump(saved, sort_keys=False))
    assert RunContext.open(run).profile.extras is False  # opened as it is: the default applies
    with pytest.raises(RunFolderError, match=r"profile\.yaml\): its configuration lacks extras: written by another version of lai; choose"):
        RunContext.open(run, "tiny")
    (run / "profile.yaml").write_text("train: [1, 2\n")
    with pytest.raises(RunFolderError, match=r"run/profile\.yaml: not a configuration this lai can read .*set the parameter run_dir"):
        RunContext.open(run)


def test_new_run_folders_default_to_reports_and_absolute_data(tmp_path, monkeypatch):
    """Nothing given: reports/quick (started with quick); a profile alone: reports/<its name>. A relative data
    path is stored absolute, so that notebooks running in another folder read the same data."""
    from lai import run_folder, run_profile
    from lai.run_folder import RunContext

    monkeypatch.setattr(run_profile, "PROJECT_ROOT", tmp_path)  # reports/ of new folders
    monkeypatch.setattr(run_folder, "PROJECT_ROOT", tmp_path)  # and their data/
    assert RunContext.open().run_dir == tmp_path / "reports" / "quick"
    tiny = RunContext.open(profile="tiny")
    assert tiny.run_dir == tmp_path / "reports" / "tiny" and tiny.data_root == tmp_path / "data"
    half = RunContext.open(tmp_path / "half", "tiny", ["cube_float=float16"])
    assert half.cube_path.parent == tiny.cube_path.parent and half.cube_path != tiny.cube_path  # one cube per storage type
    strict = RunContext.open(tmp_path / "strict", "tiny", ["encoding.valid_classes=[4, 5]"])
    assert strict.cube_path not in (tiny.cube_path, half.cube_path)  # the cube's split labels depend on the classes
    for sub in ("s1", "s2", "s2-mask"):
        (tmp_path / "lnb" / sub).mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "lnb")  # a notebook's kernel runs in notebooks/: its relative paths are the project's
    real = RunContext.open("real", "tiny", data="lnb", data_root="data")
    assert real.run_dir == tmp_path / "real" and real.data_root == tmp_path / "data"
    assert real.profile.data == str(tmp_path / "lnb") and RunContext.open(tmp_path / "real").profile.data == str(tmp_path / "lnb")
    assert not (tmp_path / "lnb" / "real").exists()
    over = RunContext.open("over", "tiny", ["data=lnb"], data_root="data")  # as an override too, not from the kernel's folder
    assert over.profile.data == str(tmp_path / "lnb")
    (tmp_path / "mine.yaml").write_text("name: mine\nextras: false\n")  # a profile file beside notebooks/, not in it
    assert RunContext.open("mine", "mine.yaml", data_root="data").profile.name == "mine"
    (tmp_path / "also.yml").write_text("name: also\nextras: false\n")  # .yml too is a file of the project folder
    assert RunContext.open("also", "also.yml", data_root="data").profile.name == "also"


def test_a_mistyped_data_folder_leaves_no_run_folder_that_refuses_the_right_one(tmp_path):
    """`data` naming no LNB folder is refused before the run folder is claimed: the corrected path then starts it
    (the folder had kept the wrong path in profile.yaml and refused the right one as another configuration)."""
    from lai.errors import LNBError
    from lai.pipeline import run_pipeline
    from lai.run_folder import RunContext

    run = tmp_path / "run"
    with pytest.raises(LNBError, match=rf"^{tmp_path}/nowhere: LNB folder does not exist \(expected a folder with s1/, s2/, s2-mask/ and image_series\.csv\)$"):
        RunContext.open(run, "tiny", data=tmp_path / "nowhere")
    with pytest.raises(LNBError, match="nowhere: LNB folder does not exist"):
        run_pipeline("tiny", data=tmp_path / "nowhere", reports_root=tmp_path / "reports", data_root=tmp_path / "data")
    assert not run.exists() and not (tmp_path / "reports").exists()
    for sub in ("s1", "s2", "s2-mask"):
        (tmp_path / "lnb" / sub).mkdir(parents=True)
    assert RunContext.open(run, "tiny", data=tmp_path / "lnb").profile.data == str(tmp_path / "lnb")


def test_overrides_given_as_one_string_by_papermill(tmp_path):
    """papermill's `-p overrides X` passes a string: one override, or a YAML list; anything else names the parameter
    (a string was taken character by character: "override '[' must look like section.key=value"). `-p progress
    maybe` was taken as True."""
    from lai.errors import ConfigError
    from lai.run_folder import RunContext

    assert RunContext.open(tmp_path / "one", "tiny", "train.epochs=2").profile.train.epochs == 2
    two = RunContext.open(tmp_path / "two", "tiny", '["train.epochs=3", "cube_float=float16"]').profile
    assert (two.train.epochs, two.cube_float) == (3, "float16")
    for bad, shown in (("[train.epochs=3", r"'\[train\.epochs=3'"), ("[1, 2]", r"\[1, 2\]")):
        with pytest.raises(ConfigError, match=rf"^the parameter overrides must be a list of 'section\.key=value' strings.*{shown}$"):
            RunContext.open(tmp_path / "bad", "tiny", bad)
    assert not (tmp_path / "bad").exists()
    with pytest.raises(ConfigError, match=r"^the parameter progress must be True, False or None, got 'maybe'$"):
        RunContext.open(tmp_path / "bad", "tiny", progress="maybe")
    assert not (tmp_path / "bad").exists()


def test_unknown_notebook_parameter_is_refused(tmp_path, monkeypatch):
    """`papermill ... -p profil paper` (a misspelt parameter): papermill only warns, and the run went on with the
    default profile in its place. The notebook's first lai call refuses it, naming it and the parameters it has."""
    import inspect
    import json

    import IPython

    from lai.errors import ConfigError
    from lai.pipeline import NOTEBOOK_DIR
    from lai.run_folder import PAPERMILL_MARK, RunContext, unknown_notebook_parameters

    params = {"run_dir", "profile"}
    declared = 'run_dir = None\nprofile = "quick"  # a comment\nprogress: bool | None = None\n'
    injected = f'{PAPERMILL_MARK}run_dir = "/x"\nprofil = "paper"\nrundir = "/y"\n'
    assert unknown_notebook_parameters(["", declared, injected, "import lai"], params) == (
        ["profil", "rundir"], ["profile", "progress", "run_dir"])
    assert unknown_notebook_parameters(["", declared, f'{PAPERMILL_MARK}run_dir = "/x"\n'], params)[0] == []
    assert unknown_notebook_parameters(["", declared, "profil = 1"], params)[0] == []  # papermill injected nothing
    assert unknown_notebook_parameters(["", "x = 1", injected], params)[0] == []  # no parameters cell ran
    # in JupyterLab, cells run again in another order: the parameters cell is found wherever it ran before
    lab = f'{PAPERMILL_MARK}run_dir = "/x"\n'
    assert unknown_notebook_parameters(["", declared, lab, "ctx = 1", lab, "ctx = 1"], params)[0] == []
    # a cell assigning only some of the parameters (run again by hand) is not the parameters cell
    both = f'{PAPERMILL_MARK}run_dir = "/x"\nprofile = "tiny"\n'
    assert unknown_notebook_parameters(["", declared, 'run_dir = "/z"', both], params) == (
        [], ["profile", "progress", "run_dir"])
    assert unknown_notebook_parameters(["", declared, "ctx = 1", injected], params)[0] == ["profil", "rundir"]
    every = set(inspect.signature(RunContext.open).parameters)  # what each notebook passes RunContext.open
    lai_run = f'{PAPERMILL_MARK}run_dir = "/r"\ndata_root = "/d"\n'  # what `lai run` injects
    for nb in sorted(NOTEBOOK_DIR.glob("*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        cell = next("".join(c["source"]) for c in cells if "parameters" in c["metadata"].get("tags", []))
        unknown, names = unknown_notebook_parameters(["", cell, lai_run], every)
        assert unknown == [] and every <= set(names), nb.name

    class Shell:
        user_ns = {"In": ["", declared.replace("run_dir = None", "run_dir = data = data_root = overrides = None"),
                          injected]}

    monkeypatch.setattr(IPython, "get_ipython", lambda: Shell())
    with pytest.raises(ConfigError, match=r"^unknown notebook parameter\(s\) profil, rundir \(papermill -p\); this "
                                          r"notebook's parameters are data, data_root, overrides, profile, progress, "
                                          r"run_dir$"):
        RunContext.open(tmp_path / "run", "tiny")
    assert not (tmp_path / "run").exists()
    Shell.user_ns["In"][-1] = injected.replace("profil", "profile").replace("rundir", "run_dir")
    assert RunContext.open(tmp_path / "run", "tiny").profile.name == "tiny"


def test_papermill_with_a_misspelt_parameter_stops_at_the_first_lai_call(tmp_path):
    """The same through papermill and a kernel, on notebook 01: no run folder is made."""
    import papermill as pm

    from lai.pipeline import NOTEBOOK_DIR

    with pytest.raises(pm.PapermillExecutionError, match=r"unknown notebook parameter\(s\) profil \(papermill -p\); "
                                                         r"this notebook's parameters are data, data_root, overrides, "):
        pm.execute_notebook(str(NOTEBOOK_DIR / "01_data.ipynb"), str(tmp_path / "out.ipynb"), kernel_name="python3",
                            parameters={"run_dir": str(tmp_path / "run"), "profil": "tiny"}, cwd=str(NOTEBOOK_DIR),
                            progress_bar=False)
    assert not (tmp_path / "run").exists()


def test_every_notebook_reads_its_run_folder_and_data_root_from_the_environment(monkeypatch):
    """The tests (conftest.py) and a shell give the notebooks their run folder and data root as LAI_RUN_DIR and
    LAI_DATA_ROOT: each notebook's parameters cell reads both and leaves the profile to the folder (profile, overrides
    and data unset), and its one RunContext.open call passes every parameter in its own place (checked here without a
    kernel: a swapped one was left to nbval's slow run of the notebooks; data_root None would put notebook 01's data
    in the project's data/)."""
    import ast
    import inspect

    from lai.facts import DATA_ROOT_ENV, RUN_DIR_ENV
    from lai.pipeline import NOTEBOOK_DIR
    from lai.run_folder import RunContext

    monkeypatch.setenv(RUN_DIR_ENV, "/runs/mine")
    monkeypatch.setenv(DATA_ROOT_ENV, "/data/shared")
    order = list(inspect.signature(RunContext.open).parameters)
    for nb in sorted(NOTEBOOK_DIR.glob("*.ipynb")):
        cells = [c for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"]
        names: dict = {}
        exec("".join(next(c for c in cells if "parameters" in c["metadata"].get("tags", []))["source"]), names)
        assert {k: names[k] for k in order} == {"run_dir": "/runs/mine", "profile": None, "overrides": [], "data": None,
                                                "data_root": "/data/shared", "progress": None}, nb.name
        [call] = [node for c in cells if "RunContext.open" in "".join(c["source"])
                  for node in ast.walk(ast.parse("".join(c["source"])))
                  if isinstance(node, ast.Call) and ast.unparse(node.func) == "RunContext.open"]
        passed = [ast.unparse(a) for a in call.args] + [f"{k.arg}={ast.unparse(k.value)}" for k in call.keywords]
        assert passed == order[:len(call.args)] + [f"{k}={k}" for k in order[len(call.args):]], nb.name


def test_a_run_folder_opened_alone_uses_the_data_root_its_data_step_recorded(tmp_path, monkeypatch):
    """A notebook opened with run_dir alone (JupyterLab, after `lai run --data-root`) takes the data root the folder's
    data step recorded in data.json, and so its cube, not data/; a data_root given still wins."""
    import lai.cube
    import lai.simulate
    from lai import run_folder
    from lai.cube import CubeSummary
    from lai.run_folder import RunContext

    monkeypatch.setattr(run_folder, "PROJECT_ROOT", tmp_path / "project")
    monkeypatch.setattr(lai.simulate, "simulate", lambda *a, **k: None)
    monkeypatch.setattr(lai.cube, "build_cube", lambda *a, **k: CubeSummary(
        "cube.nc", 30, 64, 64, True, {"train": 20, "val": 10}, fingerprint="a" * 64))
    run, shared = tmp_path / "run", (tmp_path / "shared").resolve()
    ctx = RunContext.open(run, "tiny", data_root=shared)
    assert RunContext.open(run).data_root == tmp_path / "project" / "data"  # nothing recorded yet: the default
    ctx.ensure_data()
    alone = RunContext.open(run)
    assert alone.data_root == shared and alone.cube_path == ctx.cube_path
    assert RunContext.open(run, data_root=tmp_path / "other").data_root == tmp_path / "other"


def test_the_stages_show_progress_unless_lai_progress_is_0(tmp_path, monkeypatch):
    """The parameter progress None: progress bars and per-epoch lines, unless the environment variable LAI_PROGRESS is
    0 (as the tests set it for the notebooks, whose committed outputs hold none); True or False wins over it."""
    from lai.progress import PROGRESS_ENV
    from lai.run_folder import RunContext

    run = tmp_path / "run"
    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    assert RunContext.open(run, "tiny").progress is True and RunContext.open(run, progress=False).progress is False
    monkeypatch.setenv(PROGRESS_ENV, "0")
    assert RunContext.open(run).progress is False and RunContext.open(run, progress=True).progress is True
    monkeypatch.setenv(PROGRESS_ENV, "1")
    assert RunContext.open(run).progress is True


def test_a_real_data_run_folder_opened_alone_refuses_a_data_root_inside_its_lnb_folder(tmp_path):
    """A folder started on real data, opened by run_dir alone (its profile.yaml as it is) with data_root inside the
    LNB folder: refused as when the data are given, nothing written there."""
    from lai.io import ForeignOutputError
    from lai.run_folder import RunContext
    from tests.helpers import make_lnb

    lnb = make_lnb(tmp_path / "lnb")
    RunContext.open(tmp_path / "real", "tiny", data=lnb)
    with pytest.raises(ForeignOutputError, match=r"lnb/cubes lies inside the LNB folder .*write the data root \(data_root\)"):
        RunContext.open(tmp_path / "real", data_root=lnb / "cubes")
    assert not (lnb / "cubes").exists()


def test_lai_run_gives_the_notebooks_absolute_paths_and_reruns_them_when_the_real_data_change(tmp_path, monkeypatch,
                                                                                               capsys):
    """`lai run --reports reports --data-root data --data lnb` started outside the project: the notebooks run in
    notebooks/, where a relative path is the project's, so they get the run folder and data root made absolute from
    the folder `lai run` started in, and profile.yaml holds the LNB folder absolute; a data root inside the LNB folder
    is refused before anything is made. The LNB folder's files are inputs of every notebook: one changed there runs
    them again. (papermill faked: no kernels.)"""
    import contextlib

    import papermill
    import yaml

    from lai import pipeline
    from lai.io import ForeignOutputError
    from lai.lnb import SERIES_CSV
    from tests.helpers import make_lnb

    calls = []

    def execute(source, out, parameters, cwd, **kwargs):
        calls.append((Path(source).name, parameters, cwd))
        Path(out).write_text("{}")

    monkeypatch.setattr(papermill, "execute_notebook", execute)
    monkeypatch.setattr(pipeline, "_notebook_kernel", lambda: contextlib.nullcontext((None, None, None)))
    here = tmp_path.resolve()
    lnb = make_lnb(here / "lnb")
    monkeypatch.chdir(here)
    args = {"profile": "tiny", "data": "lnb", "reports_root": "reports", "data_root": "data", "progress": False}
    with pytest.raises(ForeignOutputError, match=r"lnb/cubes lies inside the LNB folder .*write the data root "
                                                 r"\(--data-root\) outside"):
        pipeline.run_pipeline(**{**args, "data_root": "lnb/cubes"})
    assert calls == [] and not (here / "reports").exists()
    pipeline.run_pipeline(**args)
    run = here / "reports" / "tiny"
    assert [c[0] for c in calls] == list(pipeline.NOTEBOOKS)
    assert {(str(c[1]), c[2]) for c in calls} == {(str({"run_dir": str(run), "data_root": str(here / "data")}),
                                                   str(pipeline.NOTEBOOK_DIR))}
    assert yaml.safe_load((run / "profile.yaml").read_text())["data"] == str(lnb)
    calls.clear()
    pipeline.run_pipeline(**args)
    assert calls == []  # nothing changed: every notebook reused
    with (lnb / SERIES_CSV).open("a") as series:
        series.write("\n")
    capsys.readouterr()
    pipeline.run_pipeline(**args)
    assert [c[0] for c in calls] == list(pipeline.NOTEBOOKS)
    assert f"[lai run] 01_data.ipynb: ran (changed since its last run: input/{SERIES_CSV})" in capsys.readouterr().out


# --------------------------------------------------------------------------- training stages


def _stage(**train):
    from dataclasses import replace

    from lai.config import CubeRef, StageConfig, load_profile

    profile = load_profile("tiny", [f"train.{k}={v}" for k, v in train.items()])
    return StageConfig(replace(profile.model, row="s1"), profile.train, profile.encoding, CubeRef("/a/cube.nc", "f" * 64, "s" * 64))


def test_stage_configuration_is_compared_by_equality():
    from dataclasses import replace

    from lai.config import CubeRef, differences

    a = _stage()
    assert a == _stage() and a.row == "s1"
    assert a == replace(a, cube=CubeRef("/moved/cube.nc", a.cube.fingerprint, a.cube.splits))  # the same data elsewhere
    assert a != replace(a, cube=CubeRef(a.cube.path, a.cube.fingerprint, "other split labels"))
    other_data = replace(a, cube=CubeRef(a.cube.path, "other data", a.cube.splits))  # same labels, other pixels
    assert a != other_data and differences(a, other_data) == [("cube.fingerprint", a.cube.fingerprint, "other data")]
    assert differences(a, _stage(epochs=2)) == [("train.epochs", 1, 2)]
    assert differences(a, replace(a, init_from={"enc1": "/runs/s1_masks_seas"})) == [("init_from.enc1", None, "/runs/s1_masks_seas")]


def test_saved_stage_configurations_read_back_typed_older_ones_included():
    import yaml

    from lai.config import ConfigError, StageConfig

    a = _stage()
    saved = yaml.safe_load(yaml.safe_dump(a.to_dict(), sort_keys=False))
    assert list(saved) == ["row", "model", "train", "encoding", "cube", "init_from"]
    assert StageConfig.from_mapping(saved) == a
    del saved["model"]["residual"], saved["train"]["augment"]  # written before these fields existed: their defaults
    assert StageConfig.from_mapping(saved) == a
    with pytest.raises(ConfigError, match=r"row 's2' differs from model\.row 's1'"):
        StageConfig.from_mapping({**saved, "row": "s2"})
    with pytest.raises(ConfigError, match=r"stage configuration lacks train, cube"):
        StageConfig.from_mapping({"row": "s1", "model": saved["model"], "encoding": saved["encoding"]})
    with pytest.raises(ConfigError, match=r"model\.encoder_widths must be a list"):
        StageConfig.from_mapping({**saved, "model": {**saved["model"], "encoder_widths": "wide"}})


def test_a_section_not_saved_is_named_once():
    from lai.config import describe_differences, load_profile, profile_from_dict, saved_differences

    saved = {"name": "tiny", "train": {"epochs": 7}}  # a profile.yaml from another version, or written by hand
    diffs = saved_differences(saved, profile_from_dict(saved), load_profile("tiny"))
    text = describe_differences(diffs)
    assert text.startswith("different train.epochs: 7 there, 1 here; its configuration lacks data, simulate, splits and ")
    assert "simulate." not in text


def test_a_difference_beyond_the_cut_is_shown():
    """Two values whose shortened forms look alike: the list's extra element, or the whole values, are shown."""
    from lai.config import describe_differences, load_profile

    tiny, quick = load_profile("tiny").simulate.unique_regions, load_profile("quick").simulate.unique_regions
    text = describe_differences([("simulate.unique_regions", tiny, quick)])
    extra = sorted(set(quick) - set(tiny))
    assert text == f"different simulate.unique_regions: [] only there, {extra!r} only here" and extra
    long = describe_differences([("data.lnb", "/data/" + "x" * 40 + "/a", "/data/" + "x" * 40 + "/b")])
    assert long.endswith("xx/a' there, '/data/" + "x" * 40 + "/b' here")


# --------------------------------------------------------------------------- reading YAML mappings, section names


@pytest.mark.parametrize("text, message", [
    ("- simulate\n", r"^scene manifest .*m\.yaml holds a list; expected a YAML mapping$"),
    ("", r"^scene manifest .*m\.yaml is empty; expected a YAML mapping$"),
    ("a: [1, 2\n", r"^scene manifest .*m\.yaml is not valid YAML: expected ',' or '\]', but got '<stream end>' at line 2$"),
    ("a: 1\na: 2\n", r"^scene manifest .*m\.yaml: key 'a' appears twice in one mapping \(lines 1 and 2\)"),
    (b"a: \xff\n", r"^scene manifest .*m\.yaml is not UTF-8 text"),
    ("a: &x {b: 1}\nc:\n  <<: *x\n", r"^scene manifest .*m\.yaml uses a YAML merge key \(<<\) at line 3, which lai does "
                                    r"not read: write the keys out$"),  # valid YAML: it was called "not valid YAML"
])
def test_one_yaml_mapping_reader_names_the_file_in_one_line(tmp_path, text, message):
    """lai.records.read_yaml_mapping: the error class the caller asks for, one line naming the file and what it should hold."""
    from lai.errors import ConfigError
    from lai.records import read_yaml_mapping

    path = tmp_path / "m.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(KeyError) as info:
        read_yaml_mapping(path, "scene manifest", "a YAML mapping", error=KeyError)
    assert "\n" not in info.value.args[0] and __import__("re").search(message, info.value.args[0]), info.value.args[0]
    path.write_text("a: 1\nb: [x, y]\n")
    assert read_yaml_mapping(path, "scene manifest") == {"a": 1, "b": ["x", "y"]}
    with pytest.raises(ConfigError, match=r"^x .*absent\.yaml does not exist$"):  # the default error class
        read_yaml_mapping(tmp_path / "absent.yaml", "x")
    with pytest.raises(ConfigError, match=r"^x .* is not a file$"):
        read_yaml_mapping(tmp_path, "x")


def test_section_names_in_messages_are_the_profile_keys():
    """A section's messages name it by its key in a profile (derived from Profile's fields, not retyped)."""
    import dataclasses

    from lai.config import ConfigError, PreprocessConfig, Profile

    profile = Profile()
    for f in dataclasses.fields(Profile):
        section = getattr(profile, f.name)
        if dataclasses.is_dataclass(section) and hasattr(section, "seed"):
            bad = dataclasses.replace(section, seed=-1)
            with pytest.raises(ConfigError, match=rf"^{f.name}\.seed must lie in 0\.\."):
                bad.validate()
    with pytest.raises(ConfigError, match=r"^preprocess\.s1_units must be one of db, linear"):
        PreprocessConfig(s1_units="watts").validate()


def test_held_out_regions_have_one_default():
    """The simulator's unique regions and the splits' held-out areas default to one list; quick shares its own."""
    from lai.config import HELD_OUT_REGIONS, SimConfig, SplitConfig, load_profile

    assert SimConfig().unique_regions == SplitConfig().held_out_areas == list(HELD_OUT_REGIONS)
    for name in ("quick", "paper", "tiny"):
        profile = load_profile(name)
        assert profile.simulate.unique_regions == profile.splits.held_out_areas, name
    assert "HUNGARY_BEKES" in load_profile("quick").splits.held_out_areas


def test_candidates_name_variants_of_the_final_model():
    from lai.config import ConfigError, load_profile

    assert load_profile("quick").candidates == load_profile("standard").candidates == ["final_gated"]
    with pytest.raises(ConfigError, match=r"candidates must name distinct variants of the final model among "
                                          r"final_cloudy_weight, final_residual, final_gated, got \['final_big'\]"):
        load_profile("tiny", ["candidates=[final_big]"])
    with pytest.raises(ConfigError, match="distinct"):
        load_profile("tiny", ["candidates=[final_gated, final_gated]"])


def test_overrides_read_numbers_as_yaml_1_2_does():
    """PyYAML alone reads 1e-3 as the string '1e-3' (YAML 1.1), which the typed check then refused."""
    from lai.config import load_profile

    p = load_profile("tiny", ["train.lr=1e-3", "train.lr_decay=2E-1", "encoding.db_scale=3e1"])
    assert (p.train.lr, p.train.lr_decay, p.encoding.db_scale) == (0.001, 0.2, 30.0)


@pytest.mark.parametrize("decay", ["0", "1", "1.5"])
def test_a_learning_rate_decay_that_stops_or_breaks_training_is_refused(decay):
    """0 passed and stopped learning at the first decay (milestones); 1 passed and ended in PyTorch's traceback."""
    from lai.config import ConfigError, load_profile

    with pytest.raises(ConfigError, match=rf"train.lr_decay must lie strictly between 0 and 1 .*got {decay}"):
        load_profile("tiny", [f"train.lr_decay={decay}"])


@pytest.mark.timeout(120)  # a hang guard, not a speed target: expanding the bomb would run for hours
def test_yaml_alias_bombs_and_deep_nesting_are_one_line_errors(tmp_path):
    """A 0.5 kB alias bomb (9 levels of 9 aliases: 3.5 billion values once expanded) and 20,000 nested levels
    end in one line naming the file, never in an expansion or a RecursionError."""
    from lai.config import ConfigError, parse_overrides
    from lai.records import read_yaml_mapping
    from tests.helpers import alias_bomb

    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(alias_bomb())
    assert bomb.stat().st_size < 1024
    with pytest.raises(ConfigError, match=r"bomb\.yaml: its aliases expand to over 100,000 values"):
        read_yaml_mapping(bomb, "profile file")
    deep = tmp_path / "deep.yaml"
    deep.write_text("a: " + "[" * 20_000 + "]" * 20_000 + "\n")
    with pytest.raises(ConfigError, match=r"deep\.yaml: it nests deeper than lai reads"):
        read_yaml_mapping(deep, "profile file")
    with pytest.raises(ConfigError, match=r"^override 'train\.x=\[\[\[\[.{60,}\.\.\.': value is not valid YAML") as info:
        parse_overrides(["train.x=" + "[" * 5000])
    assert len(str(info.value)) < 400
    with pytest.raises(ConfigError, match=r"^override 'simulate\.seed=2019-02-30': impossible value \('2019-02-30' at "
                                          r"line 1 is not a date \(day is out of range for month\)\)"):
        parse_overrides(["simulate.seed=2019-02-30"])  # was a traceback
    for items in (["train.epochs=3", 3], "train.epochs=3", [None]):  # from Python callers: a TypeError, or a
        with pytest.raises(ConfigError, match=r"^overrides must be a list of 'section\.key=value' strings, got "):
            parse_overrides(items)  # string read character by character
    profile = read_yaml_mapping(Path(__file__).resolve().parent.parent / "lai" / "profiles" / "quick.yaml", "profile file")
    assert profile["splits"]["held_out_areas"] == profile["simulate"]["unique_regions"]  # ordinary aliases still work


def test_impossible_dates_in_a_manifest_are_one_line(tmp_path):
    from lai.errors import SceneError
    from lai.manifest import manifest_date
    from lai.records import read_yaml_mapping

    bad = tmp_path / "m.yaml"
    bad.write_text("s2:\n  - {date: 2019-02-30}\n")
    with pytest.raises(SceneError, match=r"m\.yaml holds an impossible value: '2019-02-30' at line 2 is not a date "
                                         r"\(day is out of range for month\)"):
        read_yaml_mapping(bad, "scene manifest", error=SceneError)
    import datetime as dt

    with pytest.raises(SceneError, match=r"s2\[0\]\.date '2019-02-03 10:00:00' is a date and time; expected a YYYY-MM-DD"):
        manifest_date(dt.datetime(2019, 2, 3, 10), "s2[0].date")


def test_a_patch_index_out_of_range_names_the_parameter(tmp_path):
    """Notebook 00's parameter patch: an index past the bundled patches was an IndexError in a late cell."""
    from lai.errors import ConfigError
    from lai.run_folder import RunContext

    ctx = RunContext.open(tmp_path / "run", "tiny")
    n = len(ctx.real_patches())
    assert ctx.real_patch(n - 1).name == ctx.real_patches()[-1].name
    for bad in (n, -1, -n - 1, "0", True, 1.0):  # -1 too: the message promises 0 to N-1
        with pytest.raises(ConfigError, match=rf"^the parameter patch must be the index of one of the {n} real patches "
                                              rf"\(0 to {n - 1}\), got "):
            ctx.real_patch(bad)


@pytest.mark.parametrize("override, message", [
    ("model=", r"model must be a mapping of its keys \(e\.g\. model\.key=value\), got null"),  # reset to the paper preset
    ("train=0", r"train must be a mapping of its keys \(e\.g\. train\.key=value\), got 0"),
    ("train={1: 2}", r"configuration key 1 in train is not a name; expected one of: alpha, "),  # a TypeError before
    ("figures_samples=-3", r"figures_samples must be 1 to 16 \(maps shown in a figure, a row each\), got -3"),
    ("figures_samples=1000", r"figures_samples must be 1 to 16"),  # notebook 01 failed late on both
    ("train.batch_size=1180591620717411303424", r"train\.batch_size must be an integer of at most 2\^53 in size"),
    ("model.encoder_widths=[1099511627776, 8]", r"model\.encoder_widths must be a non-empty list of positive integers "
                                                r"of at most 65536 channels"),  # torch's sizes overflowed
    ("name=no", r"name must be text, got false \(YAML reads yes, no, on, off, true and false as a boolean\): quote it"),
])
def test_overrides_that_would_reset_a_section_or_overflow_are_refused_by_name(override, message):
    from lai.config import load_profile
    from lai.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        load_profile("tiny", [override])


def test_a_switch_takes_yamls_booleans_as_on_and_off():
    """train.bf16, channels_last, resident (auto / on / off): YAML 1.1's off is false, read as "off"; a run named
    "no" must be quoted (it became a run folder named off)."""
    from lai.config import load_profile

    p = load_profile("tiny", ["train.bf16=off", "train.channels_last=on", "train.resident=false", "name='no'"])
    assert (p.train.bf16, p.train.channels_last, p.train.resident, p.name) == ("off", "on", "off", "no")


def test_a_run_folder_refuses_data_other_than_its_results_came_from(tmp_path, monkeypatch):
    """Its data changed (another data root, a source folder edited): the data step refuses before data.json or any
    table is rewritten, naming both fingerprints and the way out, and a notebook's evaluation refuses the other cube
    too (they used to rewrite data.json and mix tables of two datasets, refused only stage by stage later)."""
    import json

    import lai.cube
    import lai.evaluate
    import lai.simulate
    from lai.cube import CubeSummary
    from lai.errors import RunFolderError
    from lai.run_folder import RunContext

    ctx = RunContext.open(tmp_path / "run", "tiny", data_root=tmp_path / "data")
    fingerprint = {"now": "a" * 64}
    monkeypatch.setattr(lai.simulate, "simulate", lambda *a, **k: None)
    monkeypatch.setattr(lai.cube, "build_cube", lambda *a, **k: CubeSummary(
        "cube.nc", 30, 64, 64, True, {"train": 20, "val": 10}, fingerprint=fingerprint["now"]))
    ctx.ensure_data()
    recorded = (ctx.run_dir / "data.json").read_text()
    assert json.loads(recorded)["fingerprint"] == "a" * 64
    ctx.ensure_data()  # the same data again: fine
    fingerprint["now"] = "b" * 64
    with pytest.raises(RunFolderError, match=r"fingerprint aaaaaaaaaaaaaaaa .*fingerprint bbbbbbbbbbbbbbbb.*--name NEW"):
        ctx.ensure_data()
    assert (ctx.run_dir / "data.json").read_text() == recorded
    other = {"fingerprint": "b" * 64, "splits": "s", "lai_code": "c"}
    monkeypatch.setattr(lai.evaluate, "evaluation_identity", lambda path: other)  # read at each call, so patched here
    with pytest.raises(RunFolderError, match="now holds other data"):
        ctx.evaluate("final")


def test_a_changed_simulated_folder_says_it_is_lais_to_simulate_again(tmp_path, monkeypatch):
    """A file removed from lai's own simulated folder stopped the data step naming the file, but not the way out."""
    import lai.cube
    import lai.simulate
    from lai.errors import LNBError
    from lai.run_folder import RunContext

    ctx = RunContext.open(tmp_path / "run", "tiny", data_root=tmp_path / "data")

    def missing(*args, **kwargs):
        raise LNBError(ctx.lnb_dir / "s1" / "x.tiff", "file named in image_series.csv is missing")

    monkeypatch.setattr(lai.simulate, "simulate", lambda *a, **k: None)
    monkeypatch.setattr(lai.cube, "build_cube", missing)
    with pytest.raises(LNBError, match=r"x\.tiff: file named in image_series\.csv is missing \(the simulated folder "
                                       r".*sim-\w+ is lai's: delete it to simulate it again\)"):
        ctx.ensure_data()


@pytest.mark.parametrize("name", ["run_dir", "profile", "data", "data_root"])
def test_a_notebook_parameter_of_the_wrong_type_is_refused_by_name(tmp_path, name):
    """papermill's `-p run_dir 20261207` passes an int: it gave a bare TypeError (expected str, bytes or os.PathLike)."""
    from lai.config import load_profile
    from lai.errors import ConfigError
    from lai.run_folder import RunContext

    with pytest.raises(ConfigError, match=rf"the parameter {name} must be .*got 20261207 \(int\).*-r {name} 20261207"):
        RunContext.open(**{"run_dir": tmp_path / "run", name: 20261207})
    if name != "profile":  # a Profile is a profile, never a path
        with pytest.raises(ConfigError, match=rf"^the parameter {name} must be a path \(text\), got .* \(Profile\)"):
            RunContext.open(**{"run_dir": tmp_path / "run", name: load_profile("tiny")})
    assert not (tmp_path / "run").exists()


def test_a_run_on_a_real_folder_with_a_bad_triplet_says_how_to_list_them(tmp_path):
    """`lai run --data` stopped at the first bad triplet with the reader's message alone; it has no --skip-bad, so
    it now says how to list every bad triplet and what to do."""
    from lai.errors import LNBError
    from lai.lnb import S1_DIR
    from lai.run_folder import RunContext
    from tests.helpers import make_lnb

    lnb = make_lnb(tmp_path / "lnb", n_triplets=3)
    next((lnb / S1_DIR).iterdir()).unlink()
    ctx = RunContext.open(tmp_path / "run", "tiny", data=lnb, data_root=tmp_path / "data")
    with pytest.raises(LNBError, match=rf"is missing \(a run stops at a bad triplet .*`lai validate {lnb} --skip-bad`"
                                       r".* or leave them out: `lai run --skip-bad`, a new run name\)"):
        ctx.ensure_data(progress=False)
    assert not (ctx.run_dir / "data.json").exists()


def test_a_run_with_skip_bad_leaves_the_bad_triplets_out_and_lists_them(tmp_path, monkeypatch):
    """`lai run --skip-bad` (the profile's skip_bad): the cube is built without the bad triplet, which data.json lists
    with its file and problem; the cube is another file than the run without skip_bad would build."""
    import lai.pipeline
    from lai.cli import main
    from lai.lnb import S1_DIR
    from lai.run_folder import RunContext
    from tests.helpers import make_lnb

    lnb = make_lnb(tmp_path / "lnb", n_triplets=6)
    missing = sorted((lnb / S1_DIR).iterdir())[0]
    missing.unlink()
    ctx = RunContext.open(tmp_path / "run", "tiny", ["skip_bad=true", "splits.val_fraction=0.3"], data=lnb,
                          data_root=tmp_path / "data")
    summary = ctx.ensure_data(progress=False)
    data = json.loads((ctx.run_dir / "data.json").read_text())
    assert summary.n_triplets == data["triplets"] == 5
    assert [(s["file"], "is missing" in s["problem"]) for s in data["skipped"]] == [(str(missing), True)]
    other = RunContext.open(tmp_path / "other", "tiny", ["splits.val_fraction=0.3"], data=lnb, data_root=tmp_path / "data")
    assert ctx.cube_path != other.cube_path

    seen = {}
    monkeypatch.setattr(lai.pipeline, "run_pipeline", lambda **k: seen.update(k) or tmp_path / "report.pdf")
    assert main(["run", "--profile", "tiny", "--data", str(lnb), "--skip-bad", "--set", "train.epochs=1"]) == 0
    assert seen["overrides"] == ["train.epochs=1", "skip_bad=true"]


def test_a_profile_without_extra_rows_trains_and_writes_none(tmp_path):
    """ctx.extras (notebook 04's last cell, once logic in the notebook): nothing trained or written with extras off;
    the tiny pipeline (tests/test_reliability.py) and notebook 04 under nbval run it with extras on."""
    from lai.run_folder import RunContext

    ctx = RunContext.open(tmp_path / "run", "quick", data_root=tmp_path / "data")
    assert ctx.profile.extras is False and ctx.extras(None, None) is None
    assert not (ctx.run_dir / "tables" / "extras.csv").exists() and not any((ctx.run_dir / "runs").iterdir())


def test_a_run_waits_for_another_building_the_same_data(tmp_path, monkeypatch, capsys):
    """Two `lai run`s of other names on one data root: the second failed at once on the cube's (or simulation's) lock
    ("being written by another lai process"); it now waits, says so once, and then reuses what the other wrote."""
    import lai.cube
    import lai.run_folder
    import lai.simulate
    from lai.cube import CubeSummary
    from lai.io import OutputLockedError
    from lai.run_folder import RunContext

    ctx = RunContext.open(tmp_path / "run", "tiny", data_root=tmp_path / "data")
    calls = {"cube": 0}

    def build(*a, **k):
        calls["cube"] += 1
        if calls["cube"] < 3:
            raise OutputLockedError(f"{ctx.cube_path} is being written by another lai process (pid 1 on host h)")
        return CubeSummary("cube.nc", 30, 64, 64, True, {"train": 20, "val": 10}, fingerprint="a" * 64)

    monkeypatch.setattr(lai.simulate, "simulate", lambda *a, **k: None)
    monkeypatch.setattr(lai.cube, "build_cube", build)
    monkeypatch.setattr(lai.run_folder, "DATA_LOCK_POLL_S", 0.01)
    assert ctx.ensure_data().fingerprint == "a" * 64 and calls["cube"] == 3
    assert capsys.readouterr().err.count("lai: waiting: ") == 1


def test_the_paper_preset_on_a_cpu_is_announced_with_its_cost(tmp_path, monkeypatch, capsys):
    """`lai run` of a profile sized for a GPU, on a machine without one (train.device auto), says so before any work,
    with the training time projected from the measured CPU step; not for a CPU profile, the CPU named, or a GPU."""
    import torch

    from lai import pipeline
    from lai.distributed import cpu_cost_warning
    from lai.run_profile import resolve_profile

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    paper = cpu_cost_warning(resolve_profile("paper", [], None))
    # 1.6 s x 7,635 triplets x 100 epochs
    assert paper.startswith("profile 'paper' trains the paper preset, sized for a GPU") and "up to 14.1 days" in paper
    assert paper.endswith("run --profile quick or standard (or set train.device=cpu to train here anyway)")
    assert "0.4 s per 128x128 training sample" in cpu_cost_warning(resolve_profile("gpu", [], None))  # 4.3 hours
    assert "up to 4.3 hours" in cpu_cost_warning(resolve_profile("gpu", [], None))
    assert cpu_cost_warning(resolve_profile("quick", [], None)) is None
    assert cpu_cost_warning(resolve_profile("paper", ["train.device=cpu"], None)) is None

    def stop(*args, **kwargs):
        raise RuntimeError("stopped before the run folder")

    monkeypatch.setattr(pipeline, "open_run_folder", stop)
    with pytest.raises(RuntimeError, match="stopped before the run folder"):
        pipeline.run_pipeline("paper", reports_root=tmp_path / "reports", data_root=tmp_path / "data", progress=False)
    assert capsys.readouterr().out == f"[lai run] warning: {paper}\n"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert cpu_cost_warning(resolve_profile("paper", [], None)) is None
    with pytest.raises(RuntimeError, match="stopped before the run folder"):
        pipeline.run_pipeline("paper", reports_root=tmp_path / "reports", data_root=tmp_path / "data", progress=False)
    assert capsys.readouterr().out == ""
