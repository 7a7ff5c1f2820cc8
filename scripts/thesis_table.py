#!/usr/bin/env python
r"""The thesis comparison table and its figures, from metrics files and pasted sets.

    python scripts/thesis_table.py --rows '[{"name": "baseline", "trainset": "origin", "loss": "ce"}, ...]' \
        --metrics results/vaihingen/thesis/eval/*/*/*/seed*/metrics.json \
        --examples random=results/.../paste/random/seed0 context=results/.../paste/context/seed0 \
        --out-csv results/tables/thesis.csv --out-md results/tables/thesis.md \
        --out-bars results/figures/thesis_iou.png --out-examples results/figures/paste_examples.png

Rows: methods (config thesis.rows), columns: per-class IoU and mIoU as mean ± std over seeds;
with --vlm-sets, a vlm_placed column gives the share of objects the VLM placed in the VLM row.
"""

import argparse
from pathlib import Path

from segaug.cli import json_arg, run
from segaug.errors import SegaugError
from segaug.report.provenance import check_spec, write_sidecars
from segaug.report.tables import write_table
from segaug.report.thesis import (
    iou_bar_figure,
    load_class_runs,
    paste_examples_figure,
    public,
    thesis_rows,
    vlm_placed_label,
)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", required=True, type=json_arg, help="config thesis.rows (JSON)")
    ap.add_argument("--metrics", required=True, nargs="+")
    ap.add_argument("--examples", nargs="*", default=[], metavar="METHOD=DIR")
    ap.add_argument(
        "--vlm-sets",
        nargs="*",
        default=[],
        metavar="DIR",
        help="pasted sets of methods that ask a VLM (paste/METHOD/seedN, all seeds): the row of "
        "paste-METHOD gets the share of objects the VLM placed",
    )
    ap.add_argument("--out-csv", required=True)
    ap.add_argument("--out-md", required=True)
    ap.add_argument("--out-bars", required=True)
    ap.add_argument("--out-examples")
    ap.add_argument(
        "--provenance-json",
        type=json_arg,
        default=None,
        help="config, seeds, model ids: a .provenance.json sidecar beside each output",
    )
    args = ap.parse_args(argv)
    check_spec(args.provenance_json)
    by_set: dict[str, list[str]] = {}  # paste/<method>/seed<N>: the row of training set paste-<method>
    for d in args.vlm_sets:
        by_set.setdefault(f"paste-{Path(d).parent.name}", []).append(d)
    vlm_placed = {ts: vlm_placed_label(dirs) for ts, dirs in by_set.items()} or None
    rows = thesis_rows(args.rows, load_class_runs(args.metrics), vlm_placed)
    write_table(public(rows), args.out_csv, args.out_md, "Thesis comparison: per-class IoU (%), mean ± std over seeds")
    iou_bar_figure(rows, args.out_bars)
    if args.out_examples:
        sets = {}
        for item in args.examples:
            name, sep, d = item.partition("=")
            if not sep:
                raise SegaugError(f"--examples: expected METHOD=DIR, got {item!r}")
            sets[name] = d
        if not sets:
            raise SegaugError("--out-examples needs at least one --examples METHOD=DIR")
        paste_examples_figure(sets, args.out_examples)
    outputs = [p for p in (args.out_csv, args.out_md, args.out_bars, args.out_examples) if p]
    write_sidecars(args.provenance_json, outputs, args.metrics, what="scripts/thesis_table.py")


if __name__ == "__main__":
    run(main)
