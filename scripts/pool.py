#!/usr/bin/env python
r"""Crop stage: cut minority-class objects (connected components of the ground truth) into a pool.

    python scripts/pool.py --dataset-root results/voc7/data --split-list train.txt \
        --out results/voc7/train/pool --min-area 400 [--classes bottle chair] [--drop-border]

Classes: --classes names them (from the dataset's classes.json); otherwise every class whose
share of labelled pixels over the split is below --max-fraction. Writes OUT/crops/*.png (RGBA,
alpha = the object's mask), OUT/index.csv and OUT/pool.json (see segaug.pool).
"""

import argparse
from pathlib import Path

from segaug.cli import run
from segaug.data.canonical import ClassTable, read_split


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--dataset-root", required=True, type=Path, help="canonical dataset directory")
    ap.add_argument("--split-list", required=True, type=Path, help="ids to crop from, one a line")
    ap.add_argument("--out", required=True, type=Path, help="pool directory to write")
    ap.add_argument(
        "--classes",
        nargs="+",
        metavar="NAME",
        default=None,
        help="class names to crop (default: minority classes by pixel frequency)",
    )
    ap.add_argument(
        "--max-fraction",
        type=float,
        default=0.05,
        help="minority = pixel share below this (used without --classes; default 0.05)",
    )
    ap.add_argument("--min-area", required=True, type=int, help="drop components smaller than N pixels")
    ap.add_argument("--drop-border", action="store_true", help="drop components touching the image border")
    ap.add_argument("--connectivity", type=int, choices=(4, 8), default=8)
    args = ap.parse_args(argv)

    from segaug.pool import build_pool

    table = ClassTable.load(args.dataset_root / "classes.json")
    ids = read_split(args.split_list)
    build_pool(
        args.dataset_root,
        ids,
        table,
        args.classes,
        args.max_fraction,
        args.min_area,
        args.drop_border,
        args.out,
        connectivity=args.connectivity,
    )


if __name__ == "__main__":
    run(main)
