#!/usr/bin/env python
r"""Generation plan of a split: the paper's Algorithm 1 (class balancing), or no balancing.

    python scripts/plan.py --dataset-root results/voc2007/dataset \
        --split-list results/voc2007/voc7/splits/train.txt --plan balance-auto \
        --exclude background --out results/voc2007/voc7/gen/plans/balance-auto.json

--plan: balance-auto (n_balance so that |D_gen| ~ |D_origin|), balance-<n> (Table 4: 27, 41,
55, 69) or uniform-<copies> (no balancing: copies synthetic images per real image).
The JSON holds the entries (class, source image, copy), n_balance, images per class and the
class entropy / class imbalance ratio of D_origin and D_final (see segaug.generative.balance).
"""

import argparse
import logging
from pathlib import Path

from segaug.cli import run
from segaug.data.canonical import ClassTable, read_split
from segaug.errors import SegaugError
from segaug.generative.balance import image_classes, make_plan
from segaug.io import write_json

log = logging.getLogger("plan")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset-root", required=True, type=Path)
    ap.add_argument("--split-list", required=True, type=Path)
    ap.add_argument("--plan", required=True, help="balance-auto | balance-<n> | uniform-<copies>")
    ap.add_argument("--exclude", nargs="*", default=["background"], help="class names not balanced")
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args(argv)
    table = ClassTable.load(args.dataset_root / "classes.json")
    for name in args.exclude:
        if name not in table.names:
            raise SegaugError(
                f"--exclude: unknown class {name!r} in {args.dataset_root / 'classes.json'} "
                f"(known: {', '.join(table.names)}); fix generative.balance_exclude in the config"
            )
    ids = read_split(args.split_list)
    plan = make_plan(image_classes(args.dataset_root, ids), args.plan, table.names, args.exclude)
    log.info(
        "%s: |D_origin| = %d, |D_gen| = %d (n_balance %s); entropy %.3f -> %.3f, CIR %.3f -> %.3f",
        args.plan,
        plan["num_origin"],
        plan["num_generated"],
        plan["n_balance"],
        plan["entropy_origin"],
        plan["entropy_final"],
        plan["cir_origin"],
        plan["cir_final"],
    )
    write_json(args.out, plan)


if __name__ == "__main__":
    run(main)
