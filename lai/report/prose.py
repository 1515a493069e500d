"""The report's prose sections: title, warnings, abstract, conclusions, the data, training, provenance
and the figures, each built from the run folder by one function."""
from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd

from lai.facts import (
    BETTER,
    BUFFER,
    CLOUDY,
    EXTRA_BASELINES,
    EXTRA_ROWS,
    FIGURE_NAMES,
    FINAL,
    MLR,
    NO_HISTORY,
    NON_CLOUDY,
    NOT_RESOLVED,
    ORACLE,
    PAPER_AUTHORS,
    PAPER_LAI_SCALE,
    PAPER_TITLE,
    PERSISTENCE,
    PRETRAINED_FROM,
    RF,
    ROWS,
    S2_ENCODER,
    SET_PROSE,
    SET_TITLES,
    TABLE,
    TEST_SETS,
    TRAIN,
    UNIQUE,
    VAL,
    VERDICTS,
    WORSE,
    chosen_title,
    row_columns,
    row_title,
    stage_label,
)
from lai.pixels import CLOUD_CLASSES
from lai.report.inputs import (
    Run,
    baseline_metric,
    comparisons_on,
    diff_text,
    metric,
    num,
    other_name,
    png_size,
    shared_no_interval,
)
from lai.report.results import PAPER_FINAL
from lai.report.text import emph, fmt, fmt_count, join, mono, rich, strong, table


def _title(run: Run) -> dict:
    changed = run.changed_settings()  # an overridden profile is not the built-in one of its name: every page says so
    name = f"{run.name}, {len(changed)} setting{'s' if len(changed) != 1 else ''} changed" if changed else run.name
    return {"run": run.name, "folder": run.dir.name if run.dir.name != run.name else None,
            "paper_title": PAPER_TITLE, "paper_authors": PAPER_AUTHORS,
            "lai_version": str((run.prov or {}).get("lai_version", "")), "date": dt.date.today().isoformat(),
            "header": f"lai run report: {name} ({run.kind} data)", "document": f"LAI run report: {name}",
            "changed": changed}


def _warnings(run: Run) -> list:
    """Sentences the reader must see first: test sets without triplets and exactly perfect scores."""
    out = []
    empty = run.empty_sets()
    if empty:
        names = [SET_PROSE[s] for s in empty]
        out.append(rich(strong("Empty test sets. "),
                        f"The {_and(names)} test set{'s' if len(names) > 1 else ''} "
                        f"{'have' if len(names) > 1 else 'has'} no triplets in this run, so no model is scored on "
                        f"{'them' if len(names) > 1 else 'it'}: "
                        "the tables below show dashes or no line for them. The split settings in the configuration "
                        "(Provenance) decide which triplets each test set gets."))
    missing = [t for t in (TABLE.training, TABLE.table1, TABLE.comparisons) if run.tables[t] is None]
    if missing:  # a report of a run folder whose notebooks 02-04 have not all run reads as partial, not as the profile's
        out.append(rich(strong("Incomplete run. "), "This run folder holds no ", join(
            [mono(f"tables/{t}.csv") for t in missing]), ": notebooks 02-04 have not all run here (or one failed), so "
            "the sections that need them are missing or say so; what this profile runs is read from its configuration "
            "(Provenance). Run `lai run` on the folder to finish it."))
    for model, s, what in _perfect_scores(run, set(empty)):
        out.append(rich(strong("Suspicious perfect score. "),
                        f"{model[:1].upper()}{model[1:]} on the {SET_PROSE.get(s, s)} set scores {what} exactly. A perfect score usually "
                        "means that the inputs and the target are identical (the same image given as a past date and "
                        "as the date to predict), not a perfect model: check the data before trusting this run."))
    return out


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _perfect_scores(run: Run, empty: set[str]) -> list[tuple[str, str, str]]:
    """(model, set, "RMSE 0.000 LAI" / "R² = 1.000") of every exactly perfect score on a non-empty set."""
    found: dict[tuple[str, str], str] = {}
    sources = []
    t1, bl, extras, fm = run.tables[TABLE.table1], run.tables[TABLE.baselines], run.tables[TABLE.extras], run.final_metrics()
    if fm is not None:
        sources.append(("the final U-Net", fm))
    if t1 is not None:
        sources += [(row_title(r), t1[t1["row"] == r]) for r in dict.fromkeys(t1["row"])]
    if bl is not None:
        sources += [(str(b), bl[bl["baseline"] == b]) for b in dict.fromkeys(bl["baseline"])]
    if extras is not None:
        sources += [(str(t), extras[extras["title"] == t]) for t in dict.fromkeys(extras["title"])]
    for model, part in sources:
        model = "the final U-Net" if model == row_title(FINAL) else model
        for rec in part.to_dict("records"):
            s = str(rec["set"])
            rmse, r2 = num(rec.get("rmse")), num(rec.get("r2"))
            what = [w for w, hit in ((f"RMSE {fmt(rmse)} LAI", rmse == 0), (f"R² = {fmt(r2)}", r2 == 1)) if hit]
            if what and s not in empty:
                found.setdefault((model, s), " and ".join(what))
    return [(m, s, w) for (m, s), w in found.items()]


def _abstract(run: Run) -> list:
    d = run.data or {}
    n, tile = d.get("triplets"), d.get("tile_size")
    pieces: list = []
    if run.kind == "simulated":
        pieces.append(rich("The run used ", strong("simulated"), f" data: {fmt_count(n)} triplets of {tile}×{tile} pixels."))
    elif run.kind == "real":
        pieces.append(rich("The run used ", strong("real"), f" data: {fmt_count(n)} triplets of {tile}×{tile} pixels from "
                           f"{d.get('source', '?')}."))
    fm = run.final_metrics()
    bits = []
    for s in TEST_SETS:
        r, q = metric(fm, "set", s, "rmse"), metric(fm, "set", s, "r2")
        if math.isfinite(r):
            pr, pq = PAPER_FINAL[s]
            bits.append(f"{SET_TITLES[s].lower()}: RMSE {fmt(r)} LAI ({fmt(r / PAPER_LAI_SCALE)} in LAI/{PAPER_LAI_SCALE:g} units; "
                        f"paper {fmt(pr)}), R² {fmt(q)} (paper {fmt(pq)})")
    pieces.append("The final model reaches, per test set, " + "; ".join(bits) + "." if bits else
                  "No metrics of the final model are available in this run folder.")
    seeds = run.tables[TABLE.seeds]
    chosen = [(s, metric(seeds, "set", s, "rmse_mean"), metric(seeds, "set", s, "r2_mean")) for s in TEST_SETS]
    if run.chosen != FINAL and any(math.isfinite(r) for _, r, _ in chosen):
        n = run.n_seeds
        pieces.append(f"The model chosen on validation, {chosen_title(run.chosen)}, reaches "
                      + "; ".join(f"{SET_TITLES[s].lower()}: RMSE {fmt(r)} LAI, R² {fmt(q)}" for s, r, q in chosen
                                  if math.isfinite(r))
                      + (f" (the mean of its {n} seeds)." if n > 1 else "."))
    pers = baseline_metric(run.tables[TABLE.baselines], PERSISTENCE, NON_CLOUDY, "r2")
    if math.isfinite(pers):
        pieces.append(f"Persisting the last clear LAI reaches R² {fmt(pers)} on the non-cloudy set.")
    return join(pieces, " ")


# What the final model is compared with, in this order: the baselines and the S2 encoder (Table 1's row 5).
COMPARED = (PERSISTENCE, MLR, RF, S2_ENCODER)


def _conclusions(run: Run) -> list:
    """What the run shows, read from the intervals: which model was chosen, then every test set against every
    baseline and the S2 encoder (against the observation, and on simulated data against the true LAI and the
    oracle), how training stopped, seeds and the extra rows."""
    who = chosen_title(run.chosen)
    items = [_choice(run, who)]
    empty = run.empty_sets()
    for s in TEST_SETS:
        if s in empty:
            items.append(rich(f"{SET_TITLES[s]}: nothing compared, the test set has no triplets."))
            continue
        items.append(_against_observation(run, s, who))
        if run.kind == "simulated":
            truth, oracle = _against_truth(run, s, who), _against_oracle(run, s, who)
            items.append(rich(truth, " ", oracle) if oracle else truth)
    ensemble = _ensemble(run, who)
    if ensemble:
        items.append(ensemble)
    items += _stopping(run)
    extras = run.tables[TABLE.extras]
    sel = run.tables[TABLE.selection]
    candidates = [] if extras is not None or sel is None else [m for m in sel["model"].astype(str) if m in EXTRA_ROWS]
    rows = [EXTRA_ROWS[m].variant for m in EXTRA_ROWS if m not in candidates] + [f"baselines {NO_HISTORY}"]
    items.append(rich("Extra rows beyond the paper (", ", ".join(rows), "): ", "see their table." if extras is not None else
                      [strong("not run yet"), ": this profile runs them (", mono("extras: true"), ") in notebook 04, "
                       "which has not written their table."] if extras_pending(run) else
                      [strong("not run"), " in this profile (", mono("extras: false"), "); the ", mono("paper"),
                       " profile runs them."],
                      [" The ", ", ".join(EXTRA_ROWS[m].variant for m in candidates),
                       " was trained as a candidate for the chosen model (above)."] if candidates else None))
    return items


def _choice(run: Run, who: str) -> list:
    """Which model the comparisons are about, how it was chosen and how many seeds they pool."""
    sel, n = run.tables[TABLE.selection], run.n_seeds
    drawn = ("draws the triplets and the seeds (a two-stage bootstrap: an interval says what trainings of this kind "
             "score, not only these)" if run.seeds_drawn else "of the triplets is applied to every seed")
    pooled = (f"; its {n} trainings (seeds) are pooled: its RMSE is their mean, and each bootstrap resample {drawn}"
              if n > 1 else "; one training seed: each interval draws the test triplets for this one training, not "
              "the variation between trainings, which another seed or another CPU's rounding shows and which can be "
              "larger (the standard profile pools three seeds)")
    candidates = run.profile.get("candidates") if isinstance(run.profile.get("candidates"), list) else []
    if sel is None and candidates:  # the profile has candidates: the choice is pending, not absent
        return rich("Model compared below: ", strong(who), f" (the choice among it and {len(candidates)} candidate"
                    f"{'s' if len(candidates) > 1 else ''} is not made yet: notebook 02 has not written ",
                    mono("tables/selection.csv"), f"){pooled}.")
    if sel is None or len(sel) < 2:
        return rich("Model compared below: ", strong(who), f" (no other candidate in this profile){pooled}.")
    scores = ", ".join(f"{stage_label(str(r['model']))[1]} {fmt(num(r['best_val_rmse']))}" for r in sel.to_dict("records"))
    return rich("Model compared below: ", strong(who), ", chosen from validation scores only (best validation RMSE, "
                f"LAI: {scores}; test sets unseen){pooled}.")


def _against_observation(run: Run, s: str, who: str) -> list:
    """One sentence per test set: the chosen model against every comparator, grouped by verdict, each with its
    RMSE difference against the observation and the 95 % paired interval."""
    return rich(f"{SET_TITLES[s]}, RMSE difference against the observation (LAI, 95 % paired interval): {who} ",
                _verdicts({c["other"]: c for c in comparisons_on(run, s)}), ".")


def _ensemble(run: Run, who: str) -> list | None:
    """The mean of the chosen model's seeds (tables/ensemble.csv), where the run has one: against its seeds on
    validation and on every test set against the comparators and the oracle; None without the table."""
    table = run.tables[TABLE.ensemble]
    if table is None or not len(table):
        return None
    rows = [c for c in table.to_dict("records") if c["verdict"] in VERDICTS]
    n = max((int(num(c["seeds"])) for c in rows if "seeds" in c and num(c["seeds"]) > 1), default=None)
    said: list = [f"The mean prediction of {who}'s {f'{n} ' if n else ''}seeds (an ensemble, ",
                  mono("tables/ensemble.csv"), "; no extra training): on validation "]
    val = [c for c in rows if c["set"] == VAL]
    said += ([f"{fmt(num(val[0]['rmse_model']))} LAI against the seeds' {fmt(num(val[0]['rmse_other']))} "
              f"({diff_text(val[0])}; a mean of models nearly always scores below its members' mean)"]
             if val else ["not scored"])
    for s in TEST_SETS:
        here = {c["other"]: c for c in rows if c["set"] == s}
        if not here:
            continue
        said += [f". {SET_TITLES[s]}: {fmt(num(next(iter(here.values()))['rmse_model']))} LAI; it ",
                 _verdicts(here, (*COMPARED, ORACLE))]
    return rich(said, ". Table 1 keeps single trainings, and the comparisons above pool the seeds' RMSEs.")


def _verdicts(verdicts: dict[str, dict], compared=COMPARED) -> list:
    """The comparators of ``compared`` found in ``verdicts`` (other -> comparison row), grouped by verdict: "beats
    A (diff [lo, hi]) and B (...); it loses to C (...); it is not resolved against D (...)"."""
    groups = {verdict: [o for o in compared if o in verdicts and verdicts[o]["verdict"] == verdict]
              for verdict in (BETTER, WORSE, NOT_RESOLVED)}
    verbs = {BETTER: strong("beats"), WORSE: strong("loses to"), NOT_RESOLVED: ["is ", strong("not resolved"), " against"]}
    shared = shared_no_interval([verdicts[o] for o in compared if o in verdicts])  # said once, not per comparator
    clauses = []
    for verdict, others in groups.items():
        if others:
            named = [f"{other_name(o)} ({diff_text(verdicts[o], reason=shared is None)})" for o in others]
            listed = named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]
            clauses.append([verbs[verdict], " ", listed])
    if shared and clauses:
        clauses[-1] = clauses[-1] + [f" (no interval: {shared})"]
    missing = [other_name(o) for o in compared if o not in verdicts and o != ORACLE]
    if missing:
        clauses.append([f"was not compared with {', '.join(missing)} in this run"])
    joined: list = []
    for k, clause in enumerate(clauses):
        joined += ([] if k == 0 else ["; it "]) + clause
    return joined


def _against_truth(run: Run, s: str, who: str) -> list:
    """Set ``s`` scored against the true LAI on the same clear pixels: point values (no per-triplet truth sums
    are kept, so no paired interval)."""
    t1, bl, fm, seeds = run.tables[TABLE.table1], run.tables[TABLE.baselines], run.final_metrics(), run.tables[TABLE.seeds]
    model = metric(seeds, "set", s, "truth_rmse_clear_mean")
    if not math.isfinite(model) and run.chosen == FINAL:
        model = metric(fm, "set", s, "truth_rmse_clear")
        if not math.isfinite(model):
            model = metric(t1[t1["row"] == FINAL] if t1 is not None else None, "set", s, "truth_rmse_clear")
    values = [(who.removeprefix("the "), model)]
    for other in COMPARED:
        value = (metric(t1[t1["row"] == other] if t1 is not None else None, "set", s, "truth_rmse_clear") if other in ROWS
                 else baseline_metric(bl, other, s, "truth_rmse_clear"))
        values.append((other_name(other), value))
    oracle = metric(run.tables[TABLE.noise_floor], "set", s, "true_change_rmse")  # the true LAI of t-1, simulated data
    if math.isfinite(oracle):
        values.append(("the oracle (true LAI at t-1)", oracle))
    if not any(math.isfinite(v) for _, v in values):
        return rich(f"{SET_TITLES[s]}, against the true LAI: not scored in this run.")
    return rich(f"{SET_TITLES[s]}, against the true LAI on the same clear pixels (RMSE, LAI; point values, no interval: "
                "the run keeps per-triplet sums against the observation only): "
                + ", ".join(f"{name} {fmt(v)}" for name, v in values) + ".")


def _against_oracle(run: Run, s: str, who: str) -> list | None:
    """The chosen model beside the noise floor and the oracle bound of set ``s`` (tables/noise_floor.csv), a sentence
    that follows :func:`_against_truth`'s."""
    floor = run.tables[TABLE.noise_floor]
    oracle, model = metric(floor, "set", s, "oracle_rmse"), metric(floor, "set", s, "model_rmse")
    if not math.isfinite(oracle):
        return None
    base = (f"Against the observation at t: noise floor {fmt(metric(floor, 'set', s, 'floor_rmse'))} LAI, oracle "
            f"bound {fmt(oracle)} LAI")
    if not math.isfinite(model):
        return rich(base + f"; {who} was not put beside them in this run.")
    base += f", {who.removeprefix('the ')} {fmt(model)} LAI"
    d = {k: metric(floor, "set", s, f"oracle_{k}") for k in ("diff", "diff_lo", "diff_hi")}
    verdict = str((floor[floor["set"] == s]["oracle_verdict"].iloc[0]) if "oracle_verdict" in floor else "")
    said = {BETTER: ["it is ", strong("below the oracle")], WORSE: ["it is ", strong("above the oracle")],
            NOT_RESOLVED: ["it is ", strong("not resolved"), " against the oracle"]}.get(verdict, ["it"])
    return rich(base + f"; its RMSE is {fmt(metric(floor, 'set', s, 'model_floor_ratio'), 2)}× the floor and "
                f"{fmt(metric(floor, 'set', s, 'model_oracle_ratio'), 2)}× the oracle: ", said,
                f", model − oracle {diff_text(d)}.")


def _stopping(run: Run) -> list:
    """How each training stage stopped: "stopped at epoch N of at most M; validation flat for P epochs"."""
    tr = run.tables[TABLE.training]
    if tr is None or not len(tr) or "best_epoch" not in tr:
        return []
    train = run.profile.get("train") if isinstance(run.profile.get("train"), dict) else {}
    patience = num(train.get("patience", float("nan")))
    stages, late = [], []
    for r in tr.to_dict("records"):
        stopped = num(r.get("stopped_epoch", r.get("epochs")))
        flat = num(r.get("flat_epochs", stopped - num(r.get("best_epoch"))))
        most = num(r.get("max_epochs", train.get("epochs", float("nan"))))
        stages.append((stage_label(str(r["row"]))[1], stopped, most, flat))
        still = str(r["converged"]) != "True" if "converged" in r else math.isfinite(patience) and flat < patience
        if still:
            late.append(stage_label(str(r["row"]))[1])
    early = not late and all(stopped < most for _, stopped, most, _ in stages)  # every stage stopped by the rule
    if len(stages) > 1 and early and len({(most, flat) for _, _, most, flat in stages}) == 1:  # one sentence for all
        _, _, most, flat = stages[0]
        out = [rich(f"Training. Every stage stopped once validation had been flat for {fmt_count(flat)} "
                    f"epoch{'s' if flat != 1 else ''}, before its cap of {fmt_count(most)} epochs: "
                    + ", ".join(f"{name} at epoch {fmt_count(stopped)}" for name, stopped, _, _ in stages) + ".")]
    else:
        out = [rich("Training. " + " ".join(
            f"{name}: {'ran to its cap of ' if stopped >= most else 'stopped at epoch '}"
            f"{fmt_count(stopped)}{' epochs' if stopped >= most else f' of at most {fmt_count(most)}'}; validation "
            f"flat for {fmt_count(flat)} epoch{'s' if flat != 1 else ''}." for name, stopped, most, flat in stages))]
    if late:
        out.append(rich(strong("Not converged"), f" (the best validation epoch lies within the last {fmt_count(patience)} "
                        f"epochs run: validation had not been flat for {fmt_count(patience)} when training stopped): "
                        + ", ".join(late) + "."))
    return out


def _data(run: Run) -> dict:
    d = run.data
    out: dict = {"items": None, "splits": None}
    if d is not None:
        splits_cfg = run.profile.get("splits") if isinstance(run.profile.get("splits"), dict) else {}
        sampling = d.get("split_sampling", splits_cfg.get("sampling"))
        if sampling == "blocks":
            block = splits_cfg.get("block_size")
            how = rich("by ", strong("tile blocks"), ": whole blocks of neighbouring tiles",
                       f" ({block}×{block} tiles of a scene)" if block else "",
                       ", over all dates, are drawn for testing, validation or training; the 8 neighbours and the other "
                       "dates of every test tile are kept out of training and validation (buffer), so that no test tile "
                       "has a training or validation neighbour or a training copy of itself at another date (stricter "
                       "than the paper)")
        elif sampling == "random":
            how = rich(strong("at random"), " per triplet, like the paper: test tiles may have training neighbours and "
                       "training copies of the same place at other dates, which flatters the scores")
        else:
            how = rich("not recorded")
        items = [
            ("Kind", rich(run.kind)),
            ("Source folder", rich(mono(d.get("source", "–")))),
            ("Data cube", rich(mono(d.get("cube", "–")))),
            ("Triplets", rich(fmt_count(d.get("triplets", float("nan"))))),
            ("Tile size", rich(f"{d.get('tile_size', '–')} × {d.get('tile_size', '–')} pixels")),
            ("True LAI available", rich(("yes (simulation)" if run.kind == "simulated" else "yes") if d.get("has_truth") else "no")),
            ("Test-set sampling", how),
        ]
        splits = d.get("splits") or {}
        if splits:
            items.append(("Split counts", rich(", ".join(f"{SET_TITLES.get(k, k)} {fmt_count(v)}" for k, v in splits.items()))))
            items.append(("Used for fitting", rich(
                f"{fmt_count(splits.get(TRAIN, 0))} training and {fmt_count(splits.get(VAL, 0))} validation triplets; "
                f"{fmt_count(splits.get(BUFFER, 0))} buffer triplets (around and under the test tiles) are used for "
                "nothing")))
        skipped = d.get("skipped") or []
        items.append(("Skipped triplets", rich(f"{len(skipped)}" + (" (invalid input files, see data.json)" if skipped else ""))))
        out["items"] = [[k, v] for k, v in items]
    sp = run.tables[TABLE.splits]
    if sp is None or not len(sp):
        out["splits"] = run.lacking(TABLE.splits, "Splits table")
    else:
        if "split" not in sp.columns:
            sp = sp.rename(columns={sp.columns[0]: "split"})
        cols = [c for c in ("split", "triplets", "regions", "clear_past", "cloud_past", "clear_t") if c in sp]
        names = {"split": "Split", "triplets": "Triplets", "regions": "Regions", "clear_past": "Clear, t-2 & t-1",
                 "cloud_past": "Cloud, t-2 & t-1", "clear_t": "Clear at t"}
        rows = [[SET_TITLES.get(str(r[c]), str(r[c])) if c == "split" else fmt_count(r[c]) if c in ("triplets", "regions") else fmt(r[c]) for c in cols]
                for r in sp.to_dict("records")]
        out["splits"] = table([[names[c] for c in cols]], rows, len(cols),
                              caption=["Splits of the cube: triplets, regions and mean fractions of each tile that are "
                                       "clear (valid SCL and finite LAI) or cloudy (SCL "
                                       f"{', '.join(map(str, CLOUD_CLASSES))}). ", emph(SET_TITLES[NON_CLOUDY]),
                                       " and ", emph(SET_TITLES[CLOUDY]), " are the paper’s two cloud-stratified test sets, ",
                                       emph(SET_TITLES[UNIQUE]), " the held-out areas; ", emph(BUFFER),
                                       " tiles are kept out of training and testing."])
    return out


def _training(run: Run) -> dict:
    train = run.profile.get("train") if isinstance(run.profile.get("train"), dict) else {}
    out: dict = {"text": None}
    if train:
        if train.get("schedule") == "plateau":
            lr_patience = num(train.get("lr_patience", float("nan")))  # PyTorch decays on the epoch after these
            schedule = (f"at most {train.get('epochs', '?')} epochs: the learning rate is multiplied by "
                        f"{train.get('lr_decay', '?')} once {fmt_count(lr_patience + 1)} epochs have passed without a "
                        f"better validation score, and the stage stops after {train.get('patience', '?')}")
        else:
            which = {"paper": "at a third and two thirds of the epochs: the paper’s protocol",
                     "reference": "once, at half the epochs: the reference code’s schedule"}
            schedule = (f"{train.get('epochs', '?')} epochs, the learning rate multiplied by "
                        f"{train.get('lr_decay', '?')} at fixed epochs "
                        f"({which.get(str(train.get('milestones')), str(train.get('milestones', '?')) + ' milestones')})")
        rows = list(ROWS)
        pretrained = " and ".join(str(rows.index(src) + 1) for src in PRETRAINED_FROM[FINAL].values())
        out["text"] = rich(
            f"Each stage trains with Adam for {schedule}; batch size {train.get('batch_size', '?')}, initial "
            f"learning rate {train.get('lr', '?')}, loss weights α = {train.get('alpha', '?')} (encoder 1) and "
            f"β = {train.get('beta', '?')} (encoder 2) for the final model, which starts from the pre-trained "
            f"encoders of rows {pretrained}. Training batches are ",
            "randomly rotated by multiples of 90° and flipped. " if train.get("augment", True) else [strong("not"), " augmented. "],
            "Each stage keeps the weights of its best validation epoch. A stage whose best epoch lies within its last "
            f"{train.get('patience', '?')} epochs was still improving: it is marked ", strong("not converged"),
            ", and its scores understate what longer training would give.")
    tr = run.tables[TABLE.training]
    if tr is None or not len(tr):
        out["table"] = run.lacking(TABLE.training, "Training time table")
        out["seeds"] = None
        return out
    names = {"row": "Stage", "epochs": "Epochs", "seconds": "Time (s)", "samples_per_s": "Samples/s",
             "val_rmse": "Last val.", "final_val_rmse": "Final val.", "best_epoch": "Best epoch",
             "best_val_rmse": "Best val.", "converged": "Converged", "parameters": "Parameters", "reused": "Reused",
             "flat_epochs": "Flat"}  # short headers leave the width to the stage's names (the caption explains them)
    # the same as epochs, the epochs run; "at most" goes beside epochs; the stage as Table 1's two columns (no wrapping)
    cols = [c for c in tr.columns if c not in ("stopped_epoch", "max_epochs")]
    rows = []
    for r in tr.to_dict("records"):
        line = []
        for c in cols:
            v = r[c]
            if c == "row":  # no-break spaces: a stage's name stays on one line
                line += [label.replace(" ", "\u00a0") for label in row_columns(str(v))]
            elif c == "converged":
                line.append("yes" if str(v) == "True" else rich(strong("not converged")))
            elif c in ("seconds", "samples_per_s"):
                line.append(fmt(v, 1))
            elif c == "epochs" and "max_epochs" in r:
                line.append(f"{fmt_count(v)} of {fmt_count(r['max_epochs'])}")
            elif c in ("epochs", "parameters", "flat_epochs"):
                line.append(fmt_count(v))
            elif isinstance(v, (float, np.floating)):
                line.append(fmt(v))
            else:
                line.append(str(v))
        rows.append(line)
    header = [h for c in cols for h in (("Input", "Architecture") if c == "row" else (names.get(c, c.replace("_", " ")),))]
    total = pd.to_numeric(tr["seconds"], errors="coerce").sum() if "seconds" in tr else float("nan")
    # the machine that trained the stages (their result.json, reused across later runs), not the report's
    machines = {machine for _, machine, _ in run.trained_by if not machine.startswith("?")}
    device = (next(iter(machines)) if len(machines) == 1 else f"{len(machines)} machines (stages trained by: Provenance)"
              if machines else (run.prov or {}).get("device"))
    out["table"] = table([header], rows, len(header),
                         caption="Training time per stage" + (f" on {device}" if device else "")
                         + (f"; {fmt(total / 60, 1)} minutes in all" if math.isfinite(total) else "")
                         + ". Val.: validation RMSE (LAI) at the last and at the best epoch; flat: epochs since the best.")
    out["seeds"] = _seeds(run, train)
    return out


def _seeds(run: Run, train: dict) -> dict:
    """The spread over training seeds: a table, or why there is none ({"one_seed": true} or unavailable)."""
    seeds = run.tables[TABLE.seeds]
    n = train.get("seeds", 1)
    if seeds is None or not len(seeds):
        return run.lacking(TABLE.seeds, "Seed table")
    if n == 1:
        return {"one_seed": True}
    rows = [[SET_TITLES.get(r["set"], str(r["set"])), fmt_count(r["seeds"]), fmt(r.get("rmse_mean")), fmt(r.get("rmse_std")),
             f"{fmt(r.get('rmse_min'))} – {fmt(r.get('rmse_max'))}", fmt(r.get("r2_mean"))] for r in seeds.to_dict("records")]
    return table([["Test set", "Seeds", "RMSE mean", "RMSE s.d.", "RMSE range", "R² mean"]], rows, 6,
                 caption=f"{chosen_title(run.chosen)[:1].upper()}{chosen_title(run.chosen)[1:]} (the run's chosen model) "
                         f"fine-tuned with {n} training seeds from the same pre-trained encoders, trained once and shared: "
                         "spread of its test scores (LAI). Table 1 shows the final model's first seed.")


_PROVENANCE_LABELS = {"lai_version": "lai version", "git_revision": "git revision (this report)",
                      "git_dirty": "uncommitted changes", "data_fingerprint": "data fingerprint"}


def _provenance_label(key: str) -> str:
    """How the report names provenance.json's ``key``."""
    return _PROVENANCE_LABELS.get(key, key.replace("_", " "))


def printed_provenance(report: dict, key: str) -> str | None:
    """The value of provenance.json's ``key`` that ``report`` (a report.json) printed, None where it printed none."""
    items = (report.get("provenance") or {}).get("items") if isinstance(report, dict) else None
    return next((value for label, value in items or [] if label == _provenance_label(key)), None)


def _provenance(run: Run) -> dict:
    prov = run.prov
    out: dict = {"items": None, "packages": None, "config": None}
    if prov is not None:
        items = [[_provenance_label(k), ("yes" if v else "no") if isinstance(v, bool) else str(v)]
                 for k, v in prov.items() if not isinstance(v, (dict, list))]
        # stages are reused across later code: which code and machine trained them (tables/training.csv)
        items += [["stages trained by", f"{at} on {on}: {n} stage{'s' if n != 1 else ''}"] for at, on, n in run.trained_by]
        fp = (run.data or {}).get("fingerprint")
        if fp and "data_fingerprint" not in prov:
            items.append(["data fingerprint", str(fp)])
        out["items"] = items
        packages = prov.get("packages") or {}
        if isinstance(packages, dict) and packages:
            pairs = sorted(packages.items())
            half = math.ceil(len(pairs) / 2)
            left, right = pairs[:half], pairs[half:]
            rows = [[left[i][0], str(left[i][1])] + ([right[i][0], str(right[i][1])] if i < len(right) else ["", ""])
                    for i in range(half)]
            out["packages"] = table([["Package", "Version", "Package", "Version"]], rows, 4,
                                    caption="Package versions of the run.")
    if run.profile_text is not None:
        out["config"] = list(_yaml_columns(run.profile, run.profile_text))
    return out


def _yaml_columns(profile: dict, text: str) -> tuple[str, str]:
    """The configuration as YAML (lists of scalars inline), cut in two at a top-level key near the middle."""
    if profile:
        import yaml

        class _Dumper(yaml.SafeDumper):
            pass

        def _list(dumper, data):
            flow = all(not isinstance(v, (dict, list)) for v in data) and len(", ".join(map(str, data))) < 40
            return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)

        _Dumper.add_representer(list, _list)
        text = yaml.dump(profile, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=50)
    lines = text.rstrip().splitlines()
    tops = [i for i, line in enumerate(lines) if line and not line[0].isspace() and i > 0]
    if not tops or len(lines) < 20:
        return "\n".join(lines), ""
    cut = min(tops, key=lambda i: abs(i - len(lines) / 2))
    return "\n".join(lines[:cut]), "\n".join(lines[cut:])


def extras_pending(run: Run) -> bool:
    """Whether the profile runs the extra rows (``extras: true``) and notebook 04 has not written their table yet."""
    return run.tables[TABLE.extras] is None and run.profile.get("extras") is True


def _extras_rows(run: Run) -> str:
    """What the rows beyond the paper are, whether or not this run trained them: each variant's title
    (``lai.facts.EXTRA_ROWS``) and the baselines without the LAI history (``lai.facts.EXTRA_BASELINES``)."""
    baselines = " and ".join(dict.fromkeys(EXTRA_BASELINES.values()))
    return "; ".join([*(row.title for row in EXTRA_ROWS.values()),
                      f"{baselines} {NO_HISTORY} (Sentinel-1, masks and seasonality only)"])


def _figures(run: Run) -> dict:
    """Per figure name: its file and aspect ratio, or why it is not available (the run did not write it)."""
    out = {}
    for name in FIGURE_NAMES:
        path = run.dir / "figures" / f"{name}.png"
        if path.is_file():
            w, h = png_size(path)
            out[name] = {"available": True, "file": f"/figures/{name}.png", "aspect": w / h}
        else:
            out[name] = {"available": False, "reason": f"figures/{name}.png was not produced by this run."}
    return out


# Sections of report.json, each built from the run folder by one function; the template lays them out.


SECTIONS = {"title": _title, "warnings": _warnings, "abstract": _abstract, "conclusions": _conclusions, "data": _data,
            "training": _training, "provenance": _provenance, "figures": _figures, "extras_rows": _extras_rows,
            "extras_pending": extras_pending}
