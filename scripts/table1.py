#!/usr/bin/env python
"""Table 1 (models x splits x D_origin/D_final, mean and std over seeds) from metrics files.

    python scripts/table1.py --metrics results/*/*/eval/*/*/*/seed*/metrics.json \
        --d-final paste-random --out-csv table1.csv --out-md table1.md
    python scripts/table1.py --metrics ... --out-runs seed1.csv   # one row per run
"""

import argparse

from segaug.cli import run
from segaug.errors import SegaugError
from segaug.report.tables import load_runs, runs_table, table1, write_table


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--metrics", nargs="+", required=True, help="metrics.json files")
    ap.add_argument("--d-final", default="paste-random", help="trainset that plays D_final")
    ap.add_argument("--out-csv")
    ap.add_argument("--out-md")
    ap.add_argument("--out-runs", help="write one row per run instead of Table 1")
    args = ap.parse_args(argv)
    runs = load_runs(args.metrics)
    if args.out_runs:
        write_table(runs_table(runs), csv_path=args.out_runs)
    if args.out_csv or args.out_md:
        rows = table1(runs, args.d_final)
        write_table(rows, args.out_csv, args.out_md, title="Table 1: val mIoU (%), mean ± std over seeds")
    if not (args.out_runs or args.out_csv or args.out_md):
        raise SegaugError("nothing to write: give --out-csv/--out-md or --out-runs")


if __name__ == "__main__":
    run(main)
