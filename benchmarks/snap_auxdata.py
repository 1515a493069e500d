"""lai.snap against SNAP's own LAI test cases: the 3_0 networks read from a SNAP auxdata folder, and the built-in 2_1.

SNAP's numbers are GPL-3.0 and do not ship with lai, so this check needs SNAP's auxdata beside it: either a
SNAP installation (``~/.snap/auxdata``) or s2tbx's sources, e.g.::

    git clone https://github.com/senbox-org/s2tbx   # commit 33f36f1 or later
    python benchmarks/snap_auxdata.py --auxdata s2tbx/s2tbx-biophysical/src/main/resources/auxdata

Per network it prints the test cases' count, the largest difference between lai's output (thresholds
applied as SNAP does) and SNAP's value, and how that compares with what the test cases' rounding allows:
their inputs and outputs carry 5 significant digits, so each row's bound is the first-order effect of
half a unit in the last digit of every input (numerical gradient) plus half a unit of the output. It also
checks that the rows SNAP leaves empty (NaN) are those lai flags ``output_too_high``, and counts the rows
lai flags ``input_out_of_range`` by SNAP's definition-domain rule, on the test cases and on the six real
L2A patches of bigearthnet-common (a development dependency of lai). Writes JSON (``--out``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import report_header, write_report  # noqa: E402

from lai import snap  # noqa: E402


def half_unit(values: np.ndarray) -> np.ndarray:
    """Half a unit in the 5th significant digit of each value (0 is taken as written to 5 decimals)."""
    v = np.abs(values)
    exponent = np.floor(np.log10(np.where(v > 0, v, 1))) - 4
    return np.where(v > 0, 0.5 * 10.0 ** exponent, 0.5e-5)


def check(network: snap.Network, cases: Path) -> dict:
    table = np.loadtxt(cases, delimiter=",")
    x, want = table[:, :11].T, table[:, 11]
    lai, flags = snap.network_product(x, network)
    raw = snap._forward(x, network)
    step = 1e-7
    gradient = np.stack([(snap._forward(x + step * np.eye(11)[:, [i]], network) - raw) / step for i in range(11)])
    bound = (np.abs(gradient) * half_unit(x)).sum(axis=0) + half_unit(want)
    given = ~np.isnan(want)
    diff = np.abs(lai - want)[given]
    too_high = (flags & (1 << snap.FLAGS.index("output_too_high"))) > 0
    return {
        "network": network.name, "test_cases": str(cases), "rows": int(len(want)),
        "max_abs_difference": float(diff.max()), "median_abs_difference": float(np.median(diff)),
        "rows_over_1e-4": int((diff > 1e-4).sum()),
        "max_difference_over_rounding_bound": float((diff / bound[given]).max()),
        "rows_over_rounding_bound": int((diff > bound[given]).sum()),
        "snap_nan_rows": int((~given).sum()), "nan_rows_flagged_too_high": int(too_high[~given].sum()),
        "flagged_too_high_elsewhere": int(too_high[given].sum()),
        "flag_counts": snap.flag_counts(flags),
    }


def real_patches(auxdata: Path) -> list[dict]:
    """Share of each real patch's pixels that SNAP 3_0 (the patch's platform) flags as outside its domain."""
    import tempfile

    from lai import examples
    from lai.preprocess import L2A_NODATA, grid_of, read_on_grid

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for p in examples.extract(Path(tmp)):
            grid = grid_of(p.bands["B03"])
            refl = np.concatenate([read_on_grid(p.bands[b], grid, "bilinear", nodata=L2A_NODATA) for b in snap.BANDS]) * 1e-4
            _, flags = snap.snap_product(refl, p.angles, snap.read_auxdata(auxdata, p.name[:3]))
            out.append({"patch": p.name, "input_out_of_range_share": float((flags & 1).mean())})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--auxdata", type=Path, required=True, help="SNAP's auxdata folder (see the docstring)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "snap-auxdata.json")
    args = parser.parse_args()
    report = report_header(__file__)
    report["checks"] = []
    if not args.auxdata.is_dir():
        raise SystemExit(f"--auxdata {args.auxdata}: no such folder; give SNAP's auxdata folder (e.g. ~/.snap/auxdata)")
    for platform in ("S2A", "S2B"):
        try:
            folder = snap.auxdata_folder(args.auxdata, platform)
        except FileNotFoundError as err:  # lai's message, which names lai's option --snap-auxdata
            raise SystemExit(f"--auxdata: {err}") from None
        report["checks"].append(check(snap.read_auxdata(args.auxdata, platform), folder / "LAI_TestCases"))
    builtin_cases = next((p for p in (args.auxdata / "2_1" / "LAI" / "LAI_TestCases",
                                      args.auxdata / "s2tbx" / "biophysical" / "2_1" / "LAI" / "LAI_TestCases") if p.is_file()),
                         None)
    if builtin_cases is not None:  # the built-in network against SNAP's 2_1 test cases, when the folder has them
        report["checks"].append(check(snap.BUILTIN, builtin_cases))
    for c in report["checks"]:
        print(f"{c['network']}: {c['rows']} test cases, max |lai - SNAP| {c['max_abs_difference']:.2g} "
              f"(median {c['median_abs_difference']:.2g}; {c['rows_over_1e-4']} rows over 1e-4), "
              f"max difference / rounding bound {c['max_difference_over_rounding_bound']:.2f} "
              f"({c['rows_over_rounding_bound']} rows over it); SNAP NaN rows {c['snap_nan_rows']}, "
              f"of which flagged too high {c['nan_rows_flagged_too_high']}; flags {c['flag_counts']}")
    report["real_patches"] = real_patches(args.auxdata)
    for r in report["real_patches"]:
        print(f"{r['patch']}: {r['input_out_of_range_share']:.0%} of pixels outside SNAP 3_0's definition domain")
    write_report(args.out, report)


if __name__ == "__main__":
    main()
