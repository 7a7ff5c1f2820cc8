#!/usr/bin/env python
r"""Write a split's train and val lists after checking every id exists in the dataset.

    python scripts/make_split.py --dataset-root DIR --train-list DIR/sets/train.txt \
        --val-list u2pl_val.txt --out-train splits/train.txt --out-val splits/val.txt

Source lists are one id per line; extra columns are ignored and a missing final newline is
fine (the U2PL lists have none). The lists must be non-empty, free of duplicates, name only
images of the dataset, and not share ids.
"""

import argparse
import logging
from pathlib import Path

from segaug.cli import run
from segaug.data.canonical import check_split, write_split
from segaug.errors import SegaugError

log = logging.getLogger("make_split")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset-root", required=True, type=Path, help="a canonical dataset")
    ap.add_argument("--train-list", required=True, type=Path, help="source list of training ids")
    ap.add_argument("--val-list", required=True, type=Path, help="source list of validation ids")
    ap.add_argument("--out-train", required=True, type=Path)
    ap.add_argument("--out-val", required=True, type=Path)
    args = ap.parse_args(argv)
    if not (args.dataset_root / "labels").is_dir():
        raise SegaugError(f"{args.dataset_root}: not a canonical dataset (no labels/); prepare it first")
    train, val = check_split(args.dataset_root, args.train_list, args.val_list)
    write_split(args.out_train, train)
    write_split(args.out_val, val)
    log.info("split: %d train ids -> %s, %d val ids -> %s", len(train), args.out_train, len(val), args.out_val)


if __name__ == "__main__":
    run(main)
