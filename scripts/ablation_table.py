#!/usr/bin/env python
r"""The paper's ablation tables (3-7) and the synthetic-set table, from metrics and quality files.

    python scripts/ablation_table.py --table table5 --rows '["gen-prompt_caption", "gen-default"]' \
        --metrics results/voc2007/voc7/eval/deeplabv3plus_r50/*/ce/seed*/metrics.json \
        --out-csv results/tables/table5.csv --out-md results/tables/table5.md
    python scripts/ablation_table.py --table table4 --rows ... --metrics ... \
        --plans results/voc2007/voc7/gen/plans/*.json --quality .../quality.json ...
    python scripts/ablation_table.py --table synthetic_sets --quality .../quality.json ...
"""

import argparse
from pathlib import Path

from segaug.cli import json_arg, run
from segaug.errors import SegaugError
from segaug.io import read_json
from segaug.report.ablations import TITLES, ablation_rows, synthetic_set_rows, table4_rows, table7_rows
from segaug.report.provenance import check_spec, write_sidecars
from segaug.report.tables import load_runs, write_table


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--table", required=True, choices=sorted(TITLES))
    ap.add_argument("--rows", type=json_arg, default=[], help="training sets in row order (JSON list)")
    ap.add_argument("--metrics", nargs="*", default=[])
    ap.add_argument("--plans", nargs="*", default=[], type=Path)
    ap.add_argument("--quality", nargs="*", default=[], type=Path)
    ap.add_argument("--out-csv", required=True)
    ap.add_argument("--out-md", required=True)
    ap.add_argument(
        "--provenance-json",
        type=json_arg,
        default=None,
        help="config, seeds, model ids: a .provenance.json sidecar beside each output",
    )
    args = ap.parse_args(argv)
    check_spec(args.provenance_json)
    quality = [read_json(p) for p in args.quality]
    if args.table == "synthetic_sets":
        rows = synthetic_set_rows(quality)
    else:
        runs = load_runs(args.metrics)
        if args.table == "table7":
            rows = table7_rows(runs)
        elif args.table == "table4":
            plans = {p.stem: read_json(p) for p in args.plans}
            if "balance-auto" not in plans:
                raise SegaugError("table4 needs the balance-auto plan (D_origin statistics) in --plans")
            variant_plans = {q["variant"]: q["plan"] for q in quality}
            rows = table4_rows(args.rows, runs, plans, quality, variant_plans)
        else:
            rows = ablation_rows(args.table, args.rows, runs)
    write_table(rows, args.out_csv, args.out_md, TITLES[args.table])
    inputs = [*args.metrics, *args.plans, *args.quality]
    write_sidecars(
        args.provenance_json, [args.out_csv, args.out_md], inputs, what=f"scripts/ablation_table.py {args.table}"
    )


if __name__ == "__main__":
    run(main)
