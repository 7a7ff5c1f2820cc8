#!/usr/bin/env python
r"""Write a split's train and val lists after checking every id exists in the dataset.

    python scripts/make_split.py --dataset-root DIR --train-list DIR/sets/train.txt \
        --val-list u2pl_val.txt --out-train splits/train.txt --out-val splits/val.txt
"""

import argparse
from pathlib import Path

from segaug.cli import run
from segaug.data.canonical import read_split, write_split
from segaug.errors import SegaugError


def checked(path: Path, root: Path) -> list[str]:
    ids = read_split(path)
    labels = root / "labels"
    missing = [i for i in ids if not (labels / f"{i}.png").exists()]
    if missing:
        raise SegaugError(
            f"{path}: {len(missing)} of {len(ids)} ids are not in the dataset {root}, "
            f"e.g. {missing[:5]}; is this list meant for another dataset?"
        )
    return ids


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset-root", required=True, type=Path)
    ap.add_argument("--train-list", required=True, type=Path)
    ap.add_argument("--val-list", required=True, type=Path)
    ap.add_argument("--out-train", required=True, type=Path)
    ap.add_argument("--out-val", required=True, type=Path)
    args = ap.parse_args(argv)
    train = checked(args.train_list, args.dataset_root)
    val = checked(args.val_list, args.dataset_root)
    both = sorted(set(train) & set(val))
    if both:
        raise SegaugError(
            f"{args.train_list} and {args.val_list} share {len(both)} ids, e.g. {both[:5]}; "
            "a split's train and val lists must be disjoint"
        )
    write_split(args.out_train, train)
    write_split(args.out_val, val)


if __name__ == "__main__":
    run(main)
