"""Command line: one subcommand per stage (``lai <command> --help``)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lai.config import PROFILE_DIR, PreprocessConfig
from lai.facts import DATA_FOLDER, FINAL, PREDICT_BATCH, PREDICT_CONTEXT, REPORTS_FOLDER, ROWS, SCENE_OVERLAP, SCENE_WINDOW

PROFILE_HELP = (f"built-in profile ({', '.join(sorted(p.stem for p in PROFILE_DIR.glob('*.yaml')))}) "
                "or a YAML configuration file")
SET_HELP = "override one parameter, e.g. --set train.epochs=3 (repeatable; values in YAML syntax)"


def _profile_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default="quick", help=PROFILE_HELP + " (default: quick)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=SET_HELP)


def _load(args):
    from lai.config import load_profile

    return load_profile(args.profile, args.overrides)


def _dask_args(args) -> dict | None:
    """{"workers": N} or {"scheduler": ADDRESS} when the command was asked to run on dask (checked before any work)."""
    from lai.parallel import check_dask_options

    if args.workers is None and args.scheduler is None:
        return None
    check_dask_options(args.workers, args.scheduler)
    return {"workers": args.workers, "scheduler": args.scheduler}


def _say(*lines) -> None:
    """Print ``lines`` on stdout, each :func:`lai.errors.escaped` (a newline or control character in a path or an
    attribute read from the data printed as an escape, never sent to the terminal)."""
    from lai.errors import escaped

    print("\n".join(escaped(line) for line in lines))


def _warn(command: str, text: str) -> None:
    """Print ``text`` on stderr as ``command``'s warning, as its errors are printed (escaped as :func:`_say` does); the
    command goes on."""
    from lai.errors import escaped

    print(f"lai {command}: warning: {escaped(text)}", file=sys.stderr)


def _sizes(pixel_sizes: list) -> str:
    """Pixel sizes ``[[x, y], ...]`` (summary.json's ``training_pixel_sizes``) as a warning prints them: "10 x 10"."""
    return " or ".join(f"{x:g} x {y:g}" for x, y in pixel_sizes)


def _dask_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, default=None, help="run on a local dask cluster of this many processes")
    p.add_argument("--scheduler", default=None, help="run on an existing dask.distributed cluster (scheduler address; "
                   "its workers must see the same file system)")


def cmd_simulate(args) -> int:
    from lai.simulate import simulate

    profile = _load(args)
    summary = simulate(profile.simulate, args.out, progress=not args.quiet, dask=_dask_args(args))
    print(json.dumps(summary, indent=2, default=str))
    return 0


def cmd_validate(args) -> int:
    from collections import Counter

    import numpy as np

    from lai.lnb import SERIES_CSV, LNBError, index_folder, iter_triplets, no_radar, no_usable_lai, usable_lai
    from lai.pixels import pixel_fix_lines, scl_lookup

    on_error = "skip" if args.skip_bad else "raise"
    classes = _load(args).encoding.valid_classes  # the pixels `lai cube` with the same profile checks
    index = index_folder(args.folder, on_error=on_error, progress=not args.quiet)
    valid, fixes, missing_radar, empty, no_lai, usable, valid_lut = 0, Counter(), 0, [], {}, False, scl_lookup(classes)
    for triplet, data in iter_triplets(index, on_error, classes, index.skipped, progress=not args.quiet):
        valid += 1
        usable = usable or usable_lai(data, valid_lut)
        fixes.update(data.fixes)
        missing_radar += int(np.isnan(data.s1).any(axis=1).sum())  # NaN (nodata) is missing radar: allowed, but said
        empty += [name for name, s1 in zip(triplet.names, data.s1) if not np.isfinite(s1).any()]
        no_lai.update((name, None) for name, lai in zip(triplet.names, data.lai) if not np.isfinite(lai).any())
    if not valid:
        raise LNBError(Path(args.folder) / SERIES_CSV, f"no valid triplet left ({len(index.skipped)} skipped)")
    if len(empty) == 3 * valid:  # as lai cube refuses it
        raise no_radar(args.folder, len(empty))
    if not usable:
        raise no_usable_lai(args.folder, 3 * valid, classes)
    _say(f"{args.folder}: {valid} valid triplets of {index.height}x{index.width} pixels"
         f"{', true LAI present' if index.has_truth else ''}")
    _say(*pixel_fix_lines(fixes, "  ") or ["  no pixel value out of range in the valid triplets"])
    if missing_radar:
        _say(f"  {missing_radar} S1 pixels without a backscatter value (NaN or nodata): missing radar"
             + (f"; {len(empty)} S1 file(s) hold none at all, e.g. {Path(args.folder) / 's1' / empty[0]}" if empty else ""))
    if no_lai:  # allowed (a missing acquisition), but a failed export looks the same
        _say(f"  {len(no_lai)} S2 LAI file(s) hold no LAI value at all (NaN or out of range: a missing acquisition, "
             "allowed, or a failed export), e.g. "
             f"{Path(args.folder) / 's2' / next(iter(no_lai))}")
    for s in index.skipped:
        _say(f"  skipped CSV row {s.row + 1}: {s.file}: {s.problem}")
    return 0


def cmd_cube(args) -> int:
    from lai.cube import build_cube

    profile = _load(args)
    summary = build_cube(
        args.folder, args.out, profile.splits, profile.encoding,
        on_error="skip" if args.skip_bad else "raise", overwrite=args.overwrite, progress=not args.quiet,
        cube_float=profile.cube_float, dask=_dask_args(args),
    )
    _say(*str(summary).splitlines())
    _warn_empty_sets("cube", args.out)
    return 0


def _warn_empty_sets(command: str, cube: Path) -> None:
    """Name, on stderr, the cube's empty splits and the split parameters that would fill them."""
    from lai.cube import open_cube
    from lai.distributed import main_process
    from lai.splits import cube_split_warning

    with open_cube(cube) as ds:
        warning = cube_split_warning(ds)
    if warning and main_process():
        print("\n".join(f"lai {command}: {line}" for line in warning.splitlines()), file=sys.stderr, flush=True)


def cmd_info(args) -> int:
    from lai.cube import describe, open_cube

    ds = open_cube(args.cube)
    _say(*str(ds).splitlines(), "", *describe(ds).round(3).to_string().splitlines())
    return 0


def cmd_train(args) -> int:
    from lai.train import seed_runs, train_rows, train_variant

    profile = _load(args)
    rows = list(ROWS) if args.row == "all" else [args.row]
    _warn_empty_sets("train", args.cube)  # before training, which takes a while
    try:
        results = train_rows(profile, args.cube, args.runs, rows, resume=args.resume, progress=not args.quiet)
        if FINAL in rows:  # the final model's further seeds (train.seeds)
            for run, seed in list(seed_runs(FINAL, profile.train).items())[1:]:
                results[run] = train_variant(profile, FINAL, args.cube, args.runs, seed, run, resume=args.resume,
                                             progress=not args.quiet)
    finally:
        import torch.distributed as dist

        if dist.is_initialized():  # started by torchrun: leave the process group cleanly
            dist.destroy_process_group()
    from lai.distributed import main_process

    if not main_process():
        return 0  # rank 0 reports for all
    for row, res in results.items():
        last = res.history.iloc[-1]
        _say(f"{row}: {'reused' if res.reused else 'trained'} in {res.run_dir}, val RMSE {last['val_rmse']:.3f} LAI")
    return 0


def cmd_evaluate(args) -> int:
    from lai.checkpoint import read_trained
    from lai.evaluate import calibrate_run, evaluate_run
    from lai.facts import REPORT_TABLES, TABLE
    from lai.model import predicts_spread

    table = evaluate_run(args.run, args.cube, device=args.device, progress=not args.quiet)
    _say(*table.round(4).to_string(index=False).splitlines())
    if predicts_spread(read_trained(args.run)["config"].model):  # the spread lai predict writes as band lai_std
        spread = calibrate_run(args.run, args.cube, device=args.device, progress=not args.quiet)
        table, transfer = spread.table, spread.transfer
        columns = [*REPORT_TABLES[TABLE.calibration], "against", "n_pixels", "rmse"]  # the report's, and what against
        _say("", f"spread recalibrated on the validation split: {Path(args.run) / 'calibration.json'} (band lai_std of "
                 "lai predict); its calibration on the test sets:",
             *(table[columns].round(3).to_string(index=False).splitlines() if len(table) else ["(no test set)"]),
             "", "fitted on the validation split less one region, the coverage of that region's pixels:",
             *(transfer.round(3).to_string(index=False).splitlines() if len(transfer) else
               ["(the validation split holds fewer than two regions)"]))
    return 0


def _scene_reading_options(p) -> None:
    """How scene rasters are read: shared by ``preprocess`` and ``predict --scene`` (one manifest format); the
    defaults are :class:`lai.config.PreprocessConfig`'s."""
    defaults = PreprocessConfig()
    p.add_argument("--max-s1-gap-days", type=int, default=defaults.max_s1_gap_days,
                   help="largest S1-S2 date difference accepted")
    p.add_argument("--s1-units", choices=("db", "linear"), default=defaults.s1_units, help="linear power is converted to dB")
    p.add_argument("--no-reproject", action="store_true", help="refuse S1 rasters on another grid than S2")
    p.add_argument("--reflectance-scale", type=float, default=defaults.reflectance_scale,
                   help="L2A digital number -> reflectance")
    p.add_argument("--reflectance-offset", type=float, default=defaults.reflectance_offset,
                   help="-0.1 from processing baseline 04.00 on")
    p.add_argument("--snap-auxdata", type=Path, help="SNAP's auxdata folder (e.g. ~/.snap/auxdata): LAI from L2A bands "
                   "by SNAP 3_0's network of each date's platform instead of the built-in 2_1")


def _scene_reading(args, base=None):
    """The :class:`lai.config.PreprocessConfig` of :func:`_scene_reading_options`' options (on ``base``)."""
    import dataclasses

    return dataclasses.replace(base or PreprocessConfig(), max_s1_gap_days=args.max_s1_gap_days, s1_units=args.s1_units,
                               reproject=not args.no_reproject, reflectance_scale=args.reflectance_scale,
                               reflectance_offset=args.reflectance_offset,
                               snap_auxdata=str(args.snap_auxdata) if args.snap_auxdata else None)


def cmd_predict(args) -> int:
    from lai.errors import ConfigError

    if (args.data is None) == (args.scene is None):
        raise ConfigError("give exactly one of --data (LNB folder or cube) and --scene (scene manifest)")
    if args.data is not None:
        from lai.predict import predict_folder

        if _dask_args(args):
            raise ConfigError("--workers/--scheduler apply to --scene (one scene per task), not to --data")
        if _scene_reading(args) != _scene_reading(build_parser().parse_args(["predict", "--run", ".", "--out", "."])):
            raise ConfigError("--max-s1-gap-days, --s1-units, --no-reproject, --reflectance-scale, --reflectance-offset "
                              "and --snap-auxdata say how scene rasters are read: they apply to --scene, not to --data")
        if args.window is not None or args.overlap is not None:
            raise ConfigError("--window and --overlap cut a scene into windows: they apply to --scene, not to --data")
        summary = predict_folder(args.run, args.data, args.out, PREDICT_BATCH if args.batch_size is None else args.batch_size,
                                 args.device, progress=not args.quiet, context=args.context)
        if summary["maps_without_crs"]:
            _warn("predict", f"{len(summary['maps_without_crs'])} of {summary['triplets']} maps have no CRS, as their input rasters "
                  f"had none (first: {summary['maps_without_crs'][0]}): a GIS cannot place them (summary.json: "
                  "maps_without_crs)")
        if summary["maps_of_other_pixel_size"]:
            _warn("predict", f"{len(summary['maps_of_other_pixel_size'])} of {summary['triplets']} maps are of pixels of "
                  f"another size than the model's training pixels ({_sizes(summary['training_pixel_sizes'])}, in their "
                  f"CRS's units; first: {summary['maps_of_other_pixel_size'][0]}): the model sees fields at another "
                  "scale, its maps are extrapolation (summary.json: maps_of_other_pixel_size)")
        if summary["maps_with_neighbours"] and not summary["context"]:
            _warn("predict", f"{summary['maps_with_neighbours']} of {summary['triplets']} maps have tiles of the same dates "
                  "beside them, and each was predicted from its own tile alone (--context 0): a mosaic of them shows the "
                  "tile edges (summary.json: maps_with_neighbours)")
    else:
        if args.batch_size is not None:
            raise ConfigError("--batch-size applies to --data; a scene is predicted window by window (--window)")
        if args.context is not None:
            raise ConfigError("--context applies to --data; a scene's windows overlap by --overlap instead")
        window = SCENE_WINDOW if args.window is None else args.window
        overlap = SCENE_OVERLAP if args.overlap is None else args.overlap
        if len(args.scene) > 1:
            from lai.scene import predict_scenes

            summary = predict_scenes(args.run, args.scene, args.out, window, overlap, args.device,
                                     progress=not args.quiet, dask=_dask_args(args), preprocess=_scene_reading(args))
        else:
            from lai.scene import predict_scene

            if _dask_args(args):
                raise ConfigError("--workers/--scheduler spread many scenes (one per task): give several --scene manifests")
            summary = predict_scene(args.run, args.scene[0], args.out, window, overlap, args.device,
                                    progress=not args.quiet, preprocess=_scene_reading(args))
        for scene in summary if isinstance(summary, list) else [summary]:
            if scene["other_pixel_size"]:
                _warn("predict", f"{scene['manifest']}: its pixels are of another size than the model's training pixels "
                      f"({_sizes(scene['training_pixel_sizes'])}, in their CRS's units): the model sees fields at "
                      "another scale, its map is extrapolation")
    print(json.dumps(summary, indent=2))
    return 0


def cmd_preprocess(args) -> int:
    from lai.config import PreprocessConfig
    from lai.preprocess import preprocess

    cfg = _scene_reading(args, PreprocessConfig(tile_size=args.tile_size))
    print(json.dumps(preprocess(args.manifest, args.out, cfg, progress=not args.quiet, dask=_dask_args(args)), indent=2))
    return 0


def cmd_run(args) -> int:
    from lai.pipeline import run_pipeline

    report = run_pipeline(
        profile=args.profile, overrides=[*args.overrides, *(["skip_bad=true"] if args.skip_bad else [])],
        data=args.data, run_name=args.name,
        reports_root=args.reports, data_root=args.data_root, force=args.force,
    )
    _say(f"report: {report}")
    return 0


def cmd_publish(args) -> int:
    from lai.report.publish import default_command, publish

    command = args.command_line or default_command(args.run, args.dest)
    _say(f"published {args.run} to {publish(args.run, args.dest, command)}")
    return 0


def cmd_lab(args) -> int:
    """JupyterLab on the project; every other option goes to ``jupyter lab`` (``--no-browser``, ``--port 8899``)."""
    import os
    import subprocess

    from lai.facts import PROJECT_ROOT

    extra = [a for a in args.extra if a != "--"]
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in extra:
        print("lai lab: running as root (a container?): passing --allow-root to jupyter lab", file=sys.stderr)
        extra.append("--allow-root")
    return subprocess.call([sys.executable, "-m", "jupyter", "lab", f"--notebook-dir={PROJECT_ROOT}", *extra])


def build_parser() -> argparse.ArgumentParser:
    from lai import __version__

    parser = argparse.ArgumentParser(prog="lai", description="LAI at t from Sentinel-1 and Sentinel-2 time series with U-Nets.")
    parser.add_argument("--version", action="version", version=f"lai {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("simulate", help="simulate a dataset in the real LNB layout (+ true LAI)")
    _profile_args(p)
    p.add_argument("--out", required=True, type=Path, help="output LNB folder (must not hold anything else)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _dask_options(p)
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("validate", help="check an LNB folder: CSV, names, files, bands, dtypes, sizes, values")
    p.add_argument("folder", type=Path, help="LNB folder with s1/, s2/, s2-mask/, image_series.csv")
    p.add_argument("--skip-bad", action="store_true", help="list bad triplets (a bad file or CSV row) and go on instead of stopping")
    _profile_args(p)  # encoding.valid_classes: the SCL classes whose LAI is checked, as `lai cube` checks them
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("cube", help="validate an LNB folder and build its data cube (netCDF4)")
    p.add_argument("folder", type=Path, help="LNB folder")
    p.add_argument("--out", required=True, type=Path, help="cube file to write (.nc)")
    _profile_args(p)
    p.add_argument("--skip-bad", action="store_true", help="skip bad triplets (a bad file or CSV row), listing them, instead of stopping")
    p.add_argument("--overwrite", action="store_true", help="replace an existing cube built otherwise")
    p.add_argument("--quiet", action="store_true")
    _dask_options(p)
    p.set_defaults(func=cmd_cube)

    p = sub.add_parser("info", help="print a cube's variables, coordinates and split statistics")
    p.add_argument("cube", type=Path)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("train", help="train Table 1 rows (the final model pre-trains its two encoders first)")
    _profile_args(p)
    p.add_argument("--cube", required=True, type=Path)
    p.add_argument("--runs", required=True, type=Path, help="folder holding one run folder per row")
    p.add_argument("--row", default=FINAL, choices=(*ROWS, "all"), help="a Table 1 row, or all (default: final)")
    p.add_argument("--resume", action="store_true", help="continue unfinished runs from their last checkpoint")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="metrics of a trained row on the test sets; saves predictions; a model that "
                       "predicts its spread is also recalibrated on the validation split (calibration.json)")
    p.add_argument("--run", required=True, type=Path, help="run folder of one row (holds model.pt)")
    p.add_argument("--cube", required=True, type=Path)
    p.add_argument("--device", default="auto")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "predict", help="LAI maps at t from a trained row: one GeoTIFF per triplet, or one per scene",
        description="With --data: one georeferenced GeoTIFF per triplet of an LNB folder or cube, plus "
        "predictions.nc and summary.json in --out (a new folder). With --scene: one tiled GeoTIFF (--out, a new "
        "file) for the t date of a scene manifest, by sliding windows blended over their overlap; with several "
        "manifests, one <manifest name>.tif each in --out (a new folder), on dask with --workers/--scheduler.",
    )
    p.add_argument("--run", required=True, type=Path, help="run folder of one row (holds model.pt)")
    p.add_argument("--data", type=Path, help="LNB folder or cube (.nc)")
    p.add_argument("--scene", type=Path, nargs="+", help="scene manifest(s) (YAML, docs/manifest.md: S2 and S1 dates as "
                   "for preprocess, optional target date); with several, --out is a new folder receiving <manifest "
                   "name>.tif for each")
    p.add_argument("--out", required=True, type=Path,
                   help="output folder (--data, several --scene) or GeoTIFF (one --scene: .tif or .tiff); must be new")
    p.add_argument("--batch-size", type=int, default=None, help=f"triplets per model call (--data; default {PREDICT_BATCH})")
    p.add_argument("--context", type=int, default=None,
                   help="pixels of the tiles beside each tile (the same dates, placed beside it by its georeferencing) "
                   f"that frame it while it is predicted, so that a mosaic of the maps has no seams at the tile edges "
                   f"(--data; at most the tile size; default {PREDICT_CONTEXT}, or the tile size if smaller; 0: each "
                   "tile alone)")
    p.add_argument("--window", type=int, default=None, help=f"window size in pixels (--scene; at least 32; default {SCENE_WINDOW})")
    p.add_argument("--overlap", type=int, default=None,
                   help=f"overlap of neighbouring windows in pixels, blended (--scene; at most half the window; default "
                   f"{SCENE_OVERLAP}; 0: windows side by side, with seams at their edges)")
    _scene_reading_options(p)
    p.add_argument("--device", default="auto")
    p.add_argument("--quiet", action="store_true")
    _dask_options(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("preprocess", help="scene rasters (S1 + S2 LAI or L2A bands) -> an LNB folder of named tiles")
    p.add_argument("manifest", type=Path, help="YAML listing country, area, S2 dates (lai or bands) and S1 dates "
                   "(docs/manifest.md)")
    p.add_argument("--out", required=True, type=Path, help="LNB folder to write (must be new or empty)")
    p.add_argument("--tile-size", type=int, default=PreprocessConfig().tile_size)
    _scene_reading_options(p)
    p.add_argument("--quiet", action="store_true")
    _dask_options(p)
    p.set_defaults(func=cmd_preprocess)

    from lai.pipeline import NOTEBOOKS

    p = sub.add_parser(
        "run", help="the main job: every notebook in order through papermill, then the PDF report",
        description=f"Run every notebook ({', '.join(nb.removesuffix('.ipynb') for nb in NOTEBOOKS)}, in that order) "
        "with one profile, resolved once and saved as <reports>/<name>/profile.yaml "
        "(the notebooks get only the run folder). Rerunning the same run continues it: finished stages are reused, an "
        "interrupted training resumes from its last checkpoint. A run folder holding another configuration, or being "
        "written by another `lai run`, is refused.",
    )
    _profile_args(p)
    p.add_argument("--data", default=None, help="a real LNB folder instead of simulated data")
    p.add_argument("--skip-bad", action="store_true", help="leave out the LNB folder's bad triplets (a bad file or CSV "
                   "row), listed in data.json and notebook 01, instead of stopping at the first (the profile's skip_bad)")
    p.add_argument("--name", default=None, help="run name: results go to <reports>/<name> (default: the profile name)")
    p.add_argument("--reports", default=REPORTS_FOLDER, type=Path, help=f"reports root (default: {REPORTS_FOLDER})")
    p.add_argument("--data-root", default=DATA_FOLDER, type=Path,
                   help=f"where simulated data and cubes go (default: {DATA_FOLDER})")
    p.add_argument("--force", action="store_true", help="execute every notebook again, even those whose inputs did "
                   "not change since their last run here")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("publish", help="copy a finished run's report, tables, figures and configuration (no cubes, weights "
                       "or notebooks) to a folder kept in git, e.g. reports/reference")
    p.add_argument("run", type=Path, help="the run folder (reports/<name>)")
    p.add_argument("dest", type=Path, help="the folder to fill: new, empty, or one lai published into before")
    p.add_argument("--command-line", default=None, help="the command that regenerates it, for its README.md (default: "
                   "the lai run of the run's profile, data and name, then this publish; `make reference` passes its own)")
    p.set_defaults(func=cmd_publish)

    p = sub.add_parser("lab", help="open JupyterLab on the project; every other option goes to jupyter lab "
                       "(lai lab --no-browser --port 8899)")
    p.add_argument("extra", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_lab)
    return parser


def _terminate(signum, frame):
    """SIGTERM unwinds like Ctrl-C, so temporary outputs are removed and locks released."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    import signal
    import threading

    from lai.errors import USER_ERRORS, LaiError, describe_os_error, one_line

    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and getattr(args, "command", None) == "lab":
        args.extra = unknown + args.extra  # jupyter lab's own options pass through
    elif unknown:
        parser.parse_args(argv)  # the usual one-line error naming the unrecognised arguments (exit 2)
    if callable(getattr(sys.stdout, "reconfigure", None)):  # a path this stdout cannot encode is printed escaped
        sys.stdout.reconfigure(errors="backslashreplace")
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.func(args)
    except USER_ERRORS as err:
        message = str(err) if isinstance(err, LaiError) else describe_os_error(err)
        print(f"lai {args.command}: error: {one_line(message)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lai {args.command}: interrupted", file=sys.stderr)
        return 130
