#!/usr/bin/env python
"""Table 1 (models x splits x D_origin/D_final, mean and std over seeds) from metrics files.

    python scripts/table1.py --metrics results/*/*/eval/*/*/*/seed*/metrics.json \
        --d-final paste-random --out-csv table1.csv --out-md table1.md
    python scripts/table1.py --metrics ... --out-runs seed1.csv   # one row per run
"""

import argparse

from segaug.cli import json_arg, run
from segaug.errors import SegaugError
from segaug.io import write_text
from segaug.report.latex import to_latex
from segaug.report.provenance import check_spec, write_sidecars
from segaug.report.tables import load_runs, runs_table, table1, write_table


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--metrics", nargs="+", required=True, help="metrics.json files")
    ap.add_argument("--d-final", default="paste-random", help="trainset that plays D_final")
    ap.add_argument("--out-csv")
    ap.add_argument("--out-md")
    ap.add_argument("--out-tex", help="Table 1 as a LaTeX (booktabs) table")
    ap.add_argument("--out-runs", help="write one row per run instead of Table 1")
    ap.add_argument(
        "--provenance-json",
        type=json_arg,
        default=None,
        help="config, seeds, model ids: a .provenance.json sidecar beside each output",
    )
    args = ap.parse_args(argv)
    check_spec(args.provenance_json)
    runs = load_runs(args.metrics)
    outputs = []
    if args.out_runs:
        write_table(runs_table(runs), csv_path=args.out_runs)
        outputs.append(args.out_runs)
    if args.out_csv or args.out_md or args.out_tex:
        rows = table1(runs, args.d_final)
        title = "Table 1: val mIoU (%), mean ± std over seeds"
        write_table(rows, args.out_csv, args.out_md, title=title)
        if args.out_tex:
            write_text(args.out_tex, to_latex(rows, caption=title, label="tab:table1"))
        outputs += [p for p in (args.out_csv, args.out_md, args.out_tex) if p]
    if not outputs:
        raise SegaugError("nothing to write: give --out-csv/--out-md/--out-tex or --out-runs")
    write_sidecars(args.provenance_json, outputs, args.metrics, what="scripts/table1.py")


if __name__ == "__main__":
    run(main)
