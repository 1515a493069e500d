"""The report's result sections: Table 1 next to the paper, the baselines and their reading, the noise
floor, the extra rows, the final model's scores and the calibration of its predicted spread, each built from the
run folder by one function."""
from __future__ import annotations

import math
from functools import partial

import numpy as np
import pandas as pd

from lai.facts import (
    BASELINES,
    BETTER,
    CLOUDY,
    FINAL,
    LARGE_ERROR_LAI,
    LARGE_ERROR_TRIPLETS,
    MLR,
    N_PIXELS,
    NON_CLOUDY,
    NOT_RESOLVED,
    ORACLE_GAP_ALL,
    PAPER_BASELINES_R2,
    PAPER_LAI_SCALE,
    PAPER_TABLE1,
    PERSISTENCE,
    RF,
    RMSE,
    RMSE_NORM,
    ROWS,
    SET_PROSE,
    SET_TITLES,
    TABLE,
    TEST_SETS,
    VERDICTS,
    WORSE,
    chosen_title,
    row_columns,
    row_title,
)
from lai.report.inputs import (
    Run,
    baseline_metric,
    ci,
    comparisons_on,
    diff_text,
    metric,
    no_interval_reason,
    num,
    other_name,
    shared_no_interval,
    with_ci,
)
from lai.report.text import RULE, cell, emph, fmt, fmt_count, fmt_share, join, mono, rich, strong, table, unavailable
from lai.uncertainty import NOMINAL

PAPER_FINAL = PAPER_TABLE1[FINAL]
NORM_UNIT = f"LAI/{PAPER_LAI_SCALE:g}"  # the paper's normalised LAI, Table 1's RMSE unit (lai.facts.RMSE_NORM)


def _row_label(t1: pd.DataFrame, row: str) -> tuple[str, str]:
    sub = t1[t1["row"] == row]
    if len(sub) and "input" in sub and "architecture" in sub:
        return str(sub["input"].iloc[0]), str(sub["architecture"].iloc[0])
    return row_columns(row)


def _table1(run: Run) -> dict:
    """Table 1 four times: RMSE (LAI/5) and R² next to the paper’s, then RMSE (LAI) and R² each with intervals."""
    t1 = run.tables[TABLE.table1]
    if t1 is None or not len(t1):
        return run.lacking(TABLE.table1, "Table 1", " (no Table 1 row was evaluated)")
    out = {}
    rows_present = [r for r in ROWS if r in set(t1["row"])] + [r for r in dict.fromkeys(t1["row"]) if r not in ROWS]
    for key, col, paper_col, better, cap in (
        ("rmse", RMSE_NORM, "paper_rmse", "min", f"Table 1, RMSE in {NORM_UNIT} units (lower is better): this run next to the paper."),
        ("r2", "r2", "paper_r2", "max", "Table 1, R² (higher is better): this run next to the paper."),
    ):
        header1 = [cell("Input", rowspan=2), cell("Architecture", rowspan=2)]
        header1 += [cell(SET_TITLES[s], colspan=2, align="center") for s in TEST_SETS]
        header2 = [h for _ in TEST_SETS for h in ("this run", "paper")]
        best = {}
        for s in TEST_SETS:
            vals = pd.to_numeric(t1.loc[t1["set"] == s, col], errors="coerce") if col in t1 else pd.Series(dtype=float)
            if vals.notna().any():
                best[s] = vals.min() if better == "min" else vals.max()
        rows = []
        for r in rows_present:
            sub = t1[t1["row"] == r]
            line = list(_row_label(t1, r))
            for s in TEST_SETS:
                ours, paper = metric(sub, "set", s, col), metric(sub, "set", s, paper_col)
                # the best as printed: every value that shows the best's digits is bold (0.1395 and 0.1400 both read 0.140)
                line += [cell(fmt(ours), bold=math.isfinite(ours) and s in best and fmt(ours) == fmt(best[s])), fmt(paper)]
            rows.append(line)
        out[key] = table([header1, header2], rows, 8, caption=cap)
    pixels = ", ".join(f"{SET_PROSE[s]} {fmt_count(metric(t1[t1['row'] == 'final'], 'set', s, N_PIXELS))}"
                       for s in TEST_SETS)
    for key, col, title, note in (
        ("intervals", "rmse", "RMSE (LAI) [95% interval]",
         "RMSE of this run in LAI units (m²/m²)"),
        ("intervals_r2", "r2", "R² [95% interval]", "R² of this run"),
    ):  # one table per metric: three "value [low, high]" columns fit the page without wrapping
        header1 = [cell("Input", rowspan=2), cell("Architecture", rowspan=2), cell(title, colspan=3, align="center")]
        rows = [list(_row_label(t1, r)) + [with_ci(t1[t1["row"] == r], "set", s, col) for s in TEST_SETS]
                for r in rows_present]
        caption = (f"Table 1, {note}, each with its 95% bootstrap interval over the triplets of the test set (resampling "
                   f"whole tiles, not pixels). Clear pixels scored: {pixels}."
                   + (" The paper gives no RMSE in LAI units." if col == "rmse" else ""))
        out[key] = table([header1, [SET_TITLES[s] for s in TEST_SETS]], rows, 5, caption=caption)
    return out


def _baselines(run: Run) -> dict:
    bl, fm = run.tables[TABLE.baselines], run.final_metrics()
    out = {"paper_mlr_r2": fmt(PAPER_BASELINES_R2[MLR], 4), "paper_rf_r2": fmt(PAPER_BASELINES_R2[RF], 4),
           "paper_final_r2": fmt(PAPER_FINAL[NON_CLOUDY][1]), "reading": _baseline_reading(run, bl, fm)}
    if bl is None or not len(bl):
        out["table"] = run.lacking(TABLE.baselines, "Baseline table")
        return out
    has_truth = "truth_rmse_cloudy" in bl and bl["truth_rmse_cloudy"].notna().any()
    header = ["Test set", "Model", "Triplets", "RMSE (LAI) [95%]", f"RMSE ({NORM_UNIT})", "R² [95%]", "Pixels"]
    if has_truth:
        header.append("RMSE under clouds (LAI)")
    rows: list = []
    names = [b for b in BASELINES if b in set(bl["baseline"])] + [b for b in dict.fromkeys(bl["baseline"]) if b not in BASELINES]
    for s in TEST_SETS:
        part = bl[bl["set"] == s]
        entries = []
        if fm is not None:
            f = fm[fm["set"] == s]
            if len(f):
                entries.append(("final U-Net", f.iloc[0], True))
                chosen = _chosen_record(run, s, f.iloc[0])
                if chosen is not None:
                    entries.append((chosen_title(run.chosen).removeprefix("the "), chosen, True))
        for b in names:
            p = part[part["baseline"] == b]
            if len(p):
                entries.append((b, p.iloc[0], False))
        if rows and entries:
            rows.append(RULE)
        for k, (name, rec, is_model) in enumerate(entries):
            line = [cell(SET_TITLES.get(s, s), rowspan=len(entries))] if k == 0 else []
            one = pd.DataFrame([rec])
            line += [cell(name, bold=is_model), fmt_count(rec.get("triplets", float("nan"))), with_ci(one, "set", s, "rmse"),
                     fmt(rec.get(RMSE_NORM)), with_ci(one, "set", s, "r2"), fmt_count(rec.get(N_PIXELS, float("nan")))]
            if has_truth:
                line.append(fmt(rec.get("truth_rmse_cloudy")))
            rows.append(line)
    out["table"] = table([header], rows, len(header), caption=rich(
        "Baselines next to the final U-Net (bold), per test set. RMSE and R² on pixels clear at ", emph("t"),
        ", with 95% bootstrap intervals over triplets.",
        f" The chosen model, {chosen_title(run.chosen)} (bold, second): the mean of its seeds’ RMSE and R², without "
        "intervals (its paired differences to the baselines are in the text)." if run.chosen != FINAL else None,
        [" Last column: RMSE against the simulation’s true LAI on the pixels ", strong("not"), " clear at ", emph("t"),
         " (clouds, shadows, no data), which real data cannot score."] if has_truth else None))
    return out


def _chosen_record(run: Run, s: str, final: pd.Series) -> dict | None:
    """The baselines table's line of the chosen model where it is not the final U-Net: the mean of its seeds
    (tables/seeds.csv) on test set ``s``, on the final U-Net's triplets and pixels; None where there is none."""
    seeds = run.tables[TABLE.seeds]
    rmse = metric(seeds, "set", s, "rmse_mean")
    if run.chosen == FINAL or not math.isfinite(rmse):
        return None
    return {"set": s, "triplets": final.get("triplets"), RMSE: rmse, RMSE_NORM: rmse / PAPER_LAI_SCALE,
            "r2": metric(seeds, "set", s, "r2_mean"), N_PIXELS: final.get(N_PIXELS), "truth_rmse_cloudy": math.nan}


def _baseline_reading(run: Run, bl: pd.DataFrame | None, fm: pd.DataFrame | None) -> list:
    """An honest paragraph generated from the numbers: where the U-Net beats the baselines and where not."""
    if bl is None or not len(bl) or "rmse" not in bl:
        return rich("No baseline was evaluated in this run, so the U-Nets cannot be put in perspective here.")
    out: list = []
    who = chosen_title(run.chosen)
    for s in TEST_SETS:
        where = f"On the {SET_PROSE[s]} set"
        verdicts = comparisons_on(run, s)
        if s in run.empty_sets():
            out.append(f"{where} there is no triplet, so nothing is compared.")
            continue
        if not verdicts:
            out.append(f"{where} no paired comparison of {who} was made, so no difference is resolved.")
            continue
        groups = {v: [c for c in verdicts if c["verdict"] == v] for v in VERDICTS}
        shared = shared_no_interval(verdicts)  # too few scored triplets for any interval: said once

        def listed(rows: list[dict], reason: bool = shared is None) -> str:
            return ", ".join(f"{other_name(c['other'])} ({diff_text(c, reason=reason)})" for c in rows)

        said = []
        if groups[BETTER]:
            said.append(f"{who} beats " + listed(groups[BETTER]))
        if groups[WORSE]:
            said.append(rich(strong("it loses to"), " " + listed(groups[WORSE])))
        if groups[NOT_RESOLVED]:
            said.append(rich("its difference to " + listed(groups[NOT_RESOLVED]) + " is ", strong("not resolved"),
                             f" (no interval: {shared})" if shared else " (the interval includes 0)"
                             if all(no_interval_reason(c) is None for c in groups[NOT_RESOLVED]) else ""))
        out.append(rich(f"{where} ({verdicts[0]['triplets']} triplets) ", join(said, "; "), "."))
    seeds = run.n_seeds
    out.append(f"Differences are the RMSE of {who} (chosen from validation scores; "
               f"{f'its {seeds} seeds pooled' if seeds > 1 else 'one training seed'}) minus the other "
               "model’s on the same triplets, with 95% paired-bootstrap intervals"
               f"{' (triplets and seeds drawn)' if seeds > 1 and run.seeds_drawn else ''}; negative means the U-Net "
               "is better.")
    mlr, rf = baseline_metric(bl, MLR, NON_CLOUDY, "r2"), baseline_metric(bl, RF, NON_CLOUDY, "r2")
    if math.isfinite(mlr) or math.isfinite(rf):
        ours = f"R² = {fmt(mlr)} (MLR) and {fmt(rf)} (RF)"
        paper = f"{fmt(PAPER_BASELINES_R2['MLR'], 4)} and {fmt(PAPER_BASELINES_R2['RF'], 4)}"
        gaps = {MLR: mlr - PAPER_BASELINES_R2[MLR], RF: rf - PAPER_BASELINES_R2[RF]}
        far = [m for m, g in gaps.items() if g > 0.2]  # each model judged on its own, not by the larger gap
        gap = float(np.nanmax(list(gaps.values())))
        if far:
            why = ([" The simulator may make the link between a pixel’s past LAI and its LAI at ", emph("t"),
                    " simpler than in real data."] if run.kind == "simulated" else None)
            which = "both far above" if len(far) == 2 else f"{far[0]} far above"
            out.append(rich(f"The per-pixel models reach {ours} on non-cloudy data against the paper’s {paper}, {which} "
                            "it: here a pixel’s own inputs already explain much of its LAI at ", emph("t"), ".", why,
                            " A negative R² means worse than predicting the test set’s mean LAI, which would be "
                            "surprising from inputs that include the same pixel’s past LAI; the paper’s baselines may "
                            "have used other features or another evaluation, and its description is too short to tell."))
        elif gap < -0.2:
            out.append(f"The per-pixel models reach {ours} on non-cloudy data, below even the paper’s {paper}.")
        else:
            out.append(rich(f"The per-pixel models reach {ours} on non-cloudy data, close to the paper’s {paper}: "
                            "single pixels carry little information about LAI at ", emph("t"), ", here as there."))
    if "truth_rmse_cloudy" in bl and fm is not None and "truth_rmse_cloudy" in fm:
        u = metric(fm, "set", CLOUDY, "truth_rmse_cloudy")
        p = baseline_metric(bl, PERSISTENCE, CLOUDY, "truth_rmse_cloudy")
        if math.isfinite(u) and math.isfinite(p):
            unet = "the U-Net’s" if run.chosen == FINAL else "the final U-Net’s (the paper’s model, not the chosen one)"
            out.append(rich("Under the clouds at ", emph("t"), " of the cloudy set, which only the simulation can score, "
                            f"{unet} RMSE against the true LAI is {fmt(u)} LAI, persistence’s {fmt(p)} LAI."))
    return join(out, " ")


def _noise_floor(run: Run) -> dict | None:
    """None for real data (no true LAI, no floor)."""
    if run.kind != "simulated":
        return None
    floor, t1, bl = run.tables[TABLE.noise_floor], run.tables[TABLE.table1], run.tables[TABLE.baselines]
    if floor is None or not len(floor):
        return {"table": run.lacking(TABLE.noise_floor, "Noise floor"), "verdict": None}
    models = []
    if t1 is not None:
        models += [(row_title(r), t1[t1["row"] == r]) for r in dict.fromkeys(t1["row"])]
    if bl is not None:
        models += [(b, bl[bl["baseline"] == b]) for b in dict.fromkeys(bl["baseline"])]
    header1 = [cell("Model", rowspan=2)] + [cell(SET_TITLES[s], colspan=3, align="center") for s in TEST_SETS]
    header2 = [h for _ in TEST_SETS for h in ("÷ floor", "vs truth", "strict")]
    rows = [[cell("Noise floor (observation vs truth)", bold=True)]
            + [c for s in TEST_SETS for c in ("1" if math.isfinite(metric(floor, "set", s, "floor_rmse")) else "–",
                                              fmt(metric(floor, "set", s, "floor_rmse")),
                                              fmt(metric(floor, "set", s, "floor_rmse_strict")))],
            [cell("Oracle (true LAI at t-1 as the prediction)", bold=True)]
            + [c for s in TEST_SETS for c in (
                fmt(metric(floor, "set", s, "oracle_rmse") / metric(floor, "set", s, "floor_rmse"), 2),
                fmt(metric(floor, "set", s, "true_change_rmse")), "–")]]
    for name, part in models:
        rows.append([str(name)] + [c for s in TEST_SETS for c in (
            fmt(metric(part, "set", s, "floor_ratio"), 2), fmt(metric(part, "set", s, "truth_rmse_clear")),
            fmt(metric(part, "set", s, "rmse_strict")))])
    if run.chosen != FINAL and "model_floor_ratio" in floor:  # the model the verdict below quotes, Table 1 lacks it
        seeds = run.tables[TABLE.seeds]
        rows.append([cell(f"{chosen_title(run.chosen).removeprefix('the ')} (chosen; its seeds' mean)", bold=True)] + [c for s in TEST_SETS for c in (
            fmt(metric(floor, "set", s, "model_floor_ratio"), 2), fmt(metric(seeds, "set", s, "truth_rmse_clear_mean")), "–")])
    out = {"table": table([header1, header2], rows, 10,
                          caption="The noise floor is the observed LAI’s own error against the true LAI on the scored "
                                  "pixels: no model scored against the observation can go below it on average. The oracle "
                                  "is the true LAI at t-1 used as the prediction of t: a perfect copy of the past, so a "
                                  "model below it has forecast part of the change from t-1 to t. Per test set: each "
                                  "model’s RMSE against the observation divided by the noise floor "
                                  "(÷ floor), its RMSE against the true LAI on the same clear pixels (vs truth), and its "
                                  "RMSE against the observation on strictly clear pixels (strict, SCL 4–6). First line: "
                                  "the floor itself, under the reference rule and (strict column) under the strict rule, "
                                  "in LAI. Second line: the oracle’s RMSE over the floor, and the true change from t-1 to t "
                                  "(true LAI at t-1 against the true LAI at t, in LAI)."), "verdict": None}
    # the model the oracle is compared with (the chosen one, its seeds' mean); Table 1's final row where a floor
    # table from before model_floor_ratio lacks it
    ratio, who = metric(floor, "set", NON_CLOUDY, "model_floor_ratio"), chosen_title(run.chosen)
    if not math.isfinite(ratio):
        ratio = metric(t1[t1["row"] == FINAL] if t1 is not None else None, "set", NON_CLOUDY, "floor_ratio")
        who = "the final U-Net"
    if math.isfinite(ratio):
        out["verdict"] = rich(
            f"On the non-cloudy set the RMSE of {who} is {fmt(ratio, 2)} times the noise floor "
            f"({fmt(metric(floor, 'set', NON_CLOUDY, 'floor_rmse'))} LAI).")
    oracle, diff = metric(floor, "set", NON_CLOUDY, "oracle_rmse"), metric(floor, "set", NON_CLOUDY, "oracle_diff")
    if math.isfinite(oracle) and math.isfinite(diff):
        lo, hi = metric(floor, "set", NON_CLOUDY, "oracle_diff_lo"), metric(floor, "set", NON_CLOUDY, "oracle_diff_hi")
        out["verdict"] = rich(out["verdict"], " " if out["verdict"] else None,
                              f"The oracle scores {fmt(oracle)} LAI there ({fmt(oracle / metric(floor, 'set', NON_CLOUDY, 'floor_rmse'), 2)}× "
                              f"the floor); {chosen_title(run.chosen)} − oracle: "
                              f"{diff_text({'diff': diff, 'diff_lo': lo, 'diff_hi': hi})}, ",
                              strong("below the oracle") if hi < 0 else strong("above the oracle") if lo > 0 else
                              ["not resolved (the interval includes 0)"] if math.isfinite(lo) and math.isfinite(hi)
                              else ["not resolved"], ".")
    out["gap"], why = _oracle_gap(run)
    for sentence in (why, _past_estimators(run)):
        if sentence is not None:
            out["verdict"] = rich(out["verdict"], " " if out["verdict"] else None, sentence)
    return out


def _by_change(frame: pd.DataFrame, s: str, change: str, col: str) -> float:
    """The value of ``col`` on the line of test set ``s`` and class of the true change ``change`` of a table split by
    the true change (tables/oracle_gap.csv, past_estimators.csv); NaN where there is none."""
    part = frame[(frame["set"] == s) & (frame["change"] == change)]
    return num(part.iloc[0][col]) if len(part) and col in part else float("nan")


def _oracle_gap(run: Run) -> tuple[dict | None, list | None]:
    """Table and sentence of tables/oracle_gap.csv: the chosen model against the oracle per class of the true change
    from t-1 to t, against the true LAI; (None, None) without the table (a run of lai before 2026-12-07)."""
    gap = run.tables[TABLE.oracle_gap]
    if gap is None or not len(gap):
        return None, None
    classes = list(dict.fromkeys(gap["change"]))
    sets = [s for s in TEST_SETS if s in set(gap["set"])]
    value = partial(_by_change, gap)  # (set, change, column)
    header1 = [cell("True change t-1 → t (LAI)", rowspan=2)] + [cell(SET_TITLES[s], colspan=3, align="center") for s in sets]
    header2 = [h for _ in sets for h in ("pixels", "model", "oracle")]
    rows = [[cell(c, bold=c == ORACLE_GAP_ALL)] + [x for s in sets for x in (
        fmt_share(value(s, c, "share")), fmt(value(s, c, "model_rmse")), fmt(value(s, c, "oracle_rmse")))] for c in classes]
    who = chosen_title(run.chosen)
    seeds = int(gap["seeds"].max()) if "seeds" in gap else 1
    over = f", its squared errors averaged over its {seeds} seeds," if seeds > 1 else ""
    caption = (f"Against the true LAI at t, on the pixels clear at t: the RMSE of {who}{over} and of the "
               "oracle (the true LAI at t-1, so its error is the true change itself) per class of how much the true LAI "
               "changed from t-1 to t, with the class's share of the pixels (tables/oracle_gap.csv).")
    gap_table = table([header1, header2], rows, 1 + 3 * len(sets), caption=caption)
    steady, large = classes[0], classes[-2] if classes[-1] == ORACLE_GAP_ALL else classes[-1]
    s = NON_CLOUDY if NON_CLOUDY in sets else sets[0]
    numbers = {k: value(s, c, col) for k, c, col in (
        ("steady", steady, "share"), ("steady_model", steady, "model_rmse"), ("steady_oracle", steady, "oracle_rmse"),
        ("large", large, "share"), ("large_model", large, "model_rmse"), ("large_oracle", large, "oracle_rmse"),
        ("slope", ORACLE_GAP_ALL, "change_slope"))}
    if not all(math.isfinite(v) for v in numbers.values()):
        return gap_table, None
    why = (f"Where it wins and loses, against the true LAI on the {SET_TITLES[s].lower()} set: where the true LAI changed by {steady} LAI from "
           f"t-1 to t ({fmt_share(numbers['steady'])} of the pixels) the oracle is almost exact (RMSE "
           f"{fmt(numbers['steady_oracle'])} LAI) and {who} is not ({fmt(numbers['steady_model'])} LAI: the retrieval "
           f"noise of the past dates it could not remove); where it changed by {large} LAI "
           f"({fmt_share(numbers['large'])}) {who} scores {fmt(numbers['large_model'])} against the oracle’s "
           f"{fmt(numbers['large_oracle'])} LAI. Its change from the true LAI of t-1 follows the true change with a slope "
           f"of {fmt(numbers['slope'], 2)} (1: every change forecast).")
    return gap_table, rich(why)


def _past_estimators(run: Run) -> list | None:
    """The sentence of tables/past_estimators.csv: how much of the past's retrieval noise a predictor that knew which
    pixels did not change could remove, against the oracle; None without the table (a run of lai before 2026-12-07)."""
    past = run.tables[TABLE.past_estimators]
    if past is None or not len(past):
        return None
    sets = [s for s in TEST_SETS if s in set(past["set"])]
    s = NON_CLOUDY if NON_CLOUDY in sets else sets[0]
    steady = next(c for c in dict.fromkeys(past["change"]) if c != ORACLE_GAP_ALL)
    value = partial(_by_change, past, s)  # (change, column)
    two_dates, model_steady = value(steady, "two_date_mean_rmse"), value(steady, "model_rmse")
    known, oracle, model = (value(ORACLE_GAP_ALL, c) for c in ("stability_known_rmse", "oracle_rmse", "model_rmse"))
    if not all(math.isfinite(v) for v in (two_dates, model_steady, known, oracle, model)):
        return None
    who = chosen_title(run.chosen)
    return rich(f"How much of that noise a predictor could remove, on the {SET_TITLES[s].lower()} pixels clear (SCL 4–6) "
                f"at t-2 and t-1: where the true LAI changed by {steady} LAI the mean of the two past observations scores "
                f"{fmt(two_dates)} LAI ({who}: {fmt(model_steady)}); taking it there and {who} elsewhere, which needs "
                f"the truth to know where, scores {fmt(known)} LAI against the oracle’s {fmt(oracle)} ({who}: "
                f"{fmt(model)}): ", strong("still above the oracle") if known > oracle else strong("below the oracle"),
                " (tables/past_estimators.csv).")


def _extras(run: Run) -> dict | None:
    """The extra rows' table; None where the profile did not run them."""
    extras = run.tables[TABLE.extras]
    if extras is None:
        return None
    if not len(extras):
        return run.lacking(TABLE.extras, "Extra rows")
    header = ["Row", "Test set", "RMSE (LAI) [95%]", "R² [95%]", "Final − row (LAI) [95%]", "Final is"]
    rows = []
    for r in extras.to_dict("records"):
        one = pd.DataFrame([r])
        rows.append([str(r["title"]), SET_TITLES.get(r["set"], str(r["set"])), with_ci(one, "set", r["set"], "rmse"),
                     with_ci(one, "set", r["set"], "r2"), ci(*(num(r.get(k)) for k in ("diff", "diff_lo", "diff_hi"))),
                     str(r.get("verdict", "–"))])
    return table([header], rows, len(header), caption=rich(
        "Extra rows per test set, with the paired difference of the final model’s RMSE minus the row’s (negative: the "
        "final model is better); ", emph("better"), " or ", emph("worse"), " only where the interval excludes 0."))


def _results(run: Run) -> dict:
    fm = run.final_metrics()
    if fm is None:
        return unavailable("Final metrics", "tables/final_metrics.csv is missing.")
    truth = "truth_rmse_cloudy" in fm and fm["truth_rmse_cloudy"].notna().any()
    header = ["Test set", "Triplets", "RMSE (LAI)", f"RMSE ({NORM_UNIT})", "R²", "Pixels"] + (["RMSE under clouds (LAI)"] if truth else [])
    empty = set(run.empty_sets())
    rows = []
    for s in [x for x in TEST_SETS if x in set(fm["set"]) or x in empty] + [x for x in dict.fromkeys(fm["set"]) if x not in TEST_SETS]:
        part = fm[fm["set"] == s]
        rec = part.iloc[0].to_dict() if len(part) else {"triplets": 0}
        line = [SET_TITLES.get(s, str(s)), fmt_count(rec.get("triplets", float("nan"))), fmt(rec.get("rmse")),
                fmt(rec.get(RMSE_NORM)), fmt(rec.get("r2")), fmt_count(rec.get(N_PIXELS, float("nan")))]
        if truth:
            line.append(fmt(rec.get("truth_rmse_cloudy")))
        rows.append(line)
    return table([header], rows, len(header), caption=rich(
        "Final model (both encoders and the fusion decoder) per test set, on the pixels clear at ", emph("t"), ".",
        [" Last column: RMSE against the simulation’s true LAI on the pixels not clear at ", emph("t"), "."] if truth else None))


def _worst(listed) -> str:
    """"N worst triplets" of a large-errors row: the number ``top_triplets`` lists (at most
    :data:`lai.facts.LARGE_ERROR_TRIPLETS`; fewer where fewer triplets hold a large error)."""
    n = LARGE_ERROR_TRIPLETS if pd.isna(listed) else len(str(listed).split())  # one listed: read as a number
    return "worst triplet" if n == 1 else f"{n} worst triplets"


def _large_errors(run: Run) -> list | None:
    """Where the final model misses by more than :data:`lai.facts.LARGE_ERROR_LAI` (read under Fig. 8); None
    without the table."""
    le = run.tables[TABLE.large_errors]
    if le is None or not len(le):
        return None
    parts = []
    for s in [x for x in TEST_SETS if x in set(le["set"])]:
        r = le[le["set"] == s].iloc[0]
        if not r["large"] > 0:
            continue
        parts.append(rich(f"{SET_TITLES[s]}: {fmt_share(r['large_share'], 1)} of the clear pixels (predicted "
                          f"{fmt(r['pred_mean'], 2)} against {fmt(r['obs_mean'], 2)} observed on average, "
                          f"{fmt_share(r['under_share'])} of them too low; {fmt_share(r['no_clear_past_share'])} with no "
                          f"clear past date; {fmt_share(r['top_share'])} in its "
                          f"{_worst(r['top_triplets'])})"))
    if not parts:
        return None
    out = [rich(f"Pixels the final model misses by more than {fmt(LARGE_ERROR_LAI, 0)} LAI (", mono("tables/large_errors.csv"),
                ", which lists the worst triplets): "), join(parts, "; "), "."]
    cloudy = le[le["set"] == CLOUDY]
    if len(cloudy) and cloudy.iloc[0]["large"] > 0 and cloudy.iloc[0]["no_clear_past_share"] > 0.5:
        out.append(" On the cloudy set most of them had neither t-2 nor t-1 clear: the model had only the radar to go on.")
        if cloudy.iloc[0]["under_share"] > 0.6:
            out.append(f" Most of the cloudy set's large errors ({fmt_share(cloudy.iloc[0]['under_share'])}) are too low: "
                       "over dense canopy the radar's backscatter saturates, and the model predicts towards the mean.")
    out.append(" A horizontal streak in a panel is one such triplet: a nearly flat prediction under observations that vary.")
    return rich(*out)


def _uncertainty(run: Run) -> dict | None:
    """The calibration of the chosen model's predicted spread; None where the model predicts none."""
    cal = run.tables[TABLE.calibration]
    if cal is None:
        return None
    if not len(cal):
        return {"against": "the validation split's reference", "verdict": None,
                "table": run.lacking(TABLE.calibration, "Calibration of the predicted spread")}
    truth = (str(cal["against"].iloc[0]) if "against" in cal else "truth") == "truth"
    reference = "the true LAI" if truth else "the observation"
    rms = "rms_sd_ratio" in cal  # tables written before 2026-12-05 have the mean σ only
    header = ["Test set", "Pixels", "Spread", "68 % covers", "95 % covers", "Mean σ ÷ RMSE",
              *(["RMS σ ÷ RMSE"] if rms else []), "Spearman", "RMSE (LAI)"]

    def with_interval(r: dict, col: str, digits: int = 3, nominal: float = 0.0) -> list:
        return ci(r[col], *(float(r.get(f"{col}_{end}", math.nan)) for end in ("lo", "hi")), digits=digits, nominal=nominal)

    rows = [[SET_TITLES.get(r["set"], str(r["set"])), str(r["pixels"]), str(r["sd"]),
             *(with_interval(r, f"coverage_{round(100 * level)}", nominal=level) for level in NOMINAL),
             with_interval(r, "sd_ratio", 2, nominal=1.0), *([with_interval(r, "rms_sd_ratio", 2, nominal=1.0)] if rms else []),
             fmt(r["spearman"], 2), fmt(r["rmse"])]
            for r in cal.to_dict("records")]
    recal = cal[cal["sd"] == "recalibrated"]
    verdict = None
    if len(recal):
        verdict = rich(f"Recalibrated, the 95 % intervals cover {fmt(recal['coverage_95'].min())} to "
                       f"{fmt(recal['coverage_95'].max())} of the pixels and the 68 % intervals "
                       f"{fmt(recal['coverage_68'].min())} to {fmt(recal['coverage_68'].max())}, across test sets and "
                       + ("pixels clear or clouded at " if truth else "their pixels clear at "), emph("t"),
                       ("" if truth else " (the only ones with an observation to score against)") + f"; the predicted σ over the RMSE ranges from "
                       f"{fmt(recal['sd_ratio'].min(), 2)} to {fmt(recal['sd_ratio'].max(), 2)} (mean σ)"
                       + (f" and from {fmt(recal['rms_sd_ratio'].min(), 2)} to {fmt(recal['rms_sd_ratio'].max(), 2)} "
                          "(root mean square σ, which the recalibration makes equal to the RMSE on validation: a σ as "
                          "large as the error reads 1 there, and less on the mean wherever σ varies)" if rms else "")
                       + ".",
                       *_coverage_misses(recal))
    return {"against": reference if truth else f"{reference} (pixels clear at t)",
            "table": table([header], rows, len(header), caption=rich(
                f"Calibration of σ against {reference}, per test set and for pixels "
                + ("clear or clouded at " if truth else "clear at "), emph("t"),
                ": the share of pixels inside the central 68 % and 95 % intervals, the mean σ over the RMSE"
                + (" and its root mean square over the RMSE" if rms else "") + ", and the rank "
                "correlation of σ with the absolute error, in small print the 95 % interval over resampled triplets; ",
                emph("raw"), ": the spread head as trained, ", emph("recalibrated"), ": as above.")),
            "verdict": verdict, "transfer": _calibration_transfer(run)}


def _calibration_transfer(run: Run) -> list | None:
    """A sentence: the coverage of each validation region's pixels under the calibration fitted on the other regions
    (tables/calibration_transfer.csv); None without the table (a run of lai before 2026-12-07) or its rows."""
    transfer = run.tables[TABLE.calibration_transfer]
    if transfer is None or not len(transfer):
        return None
    if "n_pixels" in transfer:
        transfer = transfer[transfer["n_pixels"] > 0]
    c68, c95 = transfer["coverage_68"], transfer["coverage_95"]
    if not len(transfer) or c68.isna().all() or c95.isna().all():
        return None
    return rich(f"How far these factors carry over to another area: fitted on validation less one of its "
                f"{transfer['held_out'].nunique()} regions, the intervals cover {fmt(c68.min())} to {fmt(c68.max())} "
                f"(68 %) and {fmt(c95.min())} to {fmt(c95.max())} (95 %) of that region's pixels clear or clouded at ",
                emph("t"), " (tables/calibration_transfer.csv): a test set of other scenes may land anywhere in about "
                "that range.")


def _coverage_misses(recal: pd.DataFrame) -> list:
    """A sentence: in how many strata the coverage's interval over resampled triplets excludes its nominal level
    (nothing where the table has no intervals)."""
    counts = []
    for level in NOMINAL:
        col = f"coverage_{round(100 * level)}"
        lo, hi = recal.get(f"{col}_lo"), recal.get(f"{col}_hi")
        if lo is None or hi is None or not (np.isfinite(lo) & np.isfinite(hi)).all():
            return []
        counts.append(f"{round(100 * level)} % in {int(((lo > level) | (hi < level)).sum())}")
    return [f" Over resampled triplets (95 % intervals), the coverage differs from its nominal level at "
            f"{' and '.join(counts)} of the {len(recal)} strata."]


def _real_patches(run: Run) -> dict | None:
    """Notebook 00's table of the real patches (SNAP LAI and S1 ranges); None where it did not run."""
    snap = run.tables[TABLE.preprocessing_snap_lai]
    if snap is None or not len(snap):
        return None
    cols = list(snap.columns)
    rows = [[fmt(v, 2) if isinstance(v, float) else str(v) for v in r.values()] for r in snap.to_dict("records")]
    return table([cols], rows, len(cols), caption=rich(
        "The six real Sentinel-1 + Sentinel-2 L2A patches (bigearthnet-common, 120 × 120 pixels, one date each) through ",
        emph("lai preprocess"), ": LAI from the L2A bands by the SNAP network, percentiles over the patch, values clipped "
        "to the network’s domain, and Sentinel-1 VV values outside the training range."))


SECTIONS = {"table1": _table1, "baselines": _baselines, "noise_floor": _noise_floor, "extras": _extras, "results": _results,
            "large_errors": _large_errors,
            "uncertainty": _uncertainty, "real_patches": _real_patches}
