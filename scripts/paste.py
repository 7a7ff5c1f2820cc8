#!/usr/bin/env python
r"""Paste stage: paste pool objects into a split and write a new canonical dataset.

    python scripts/paste.py --method random --dataset-root results/voc7/data \
        --split-list train.txt --pool results/voc7/train/pool --seed 0 \
        --out results/voc7/train/paste/random/seed0 [--copies 1] [--objects-per-image 1 3] \
        [--scale-range 0.75 1.25] [--flip-prob 0.5] [--blend feather] [--feather-px 2]

OUT holds images/, labels/ ({id}_p{copy}.png), classes.json, sets/all.txt, manifest.jsonl
(one line per paste) and summary.json (see segaug.paste.pipeline). Objects are drawn with the
class uniform over the pool's classes, then the object uniform within the class.
--placer-args passes method options as JSON (e.g. '{"min_scale": 0.5}' for random).
"""

import argparse
from pathlib import Path

from segaug.cli import json_arg, run
from segaug.data.canonical import ClassTable, read_split
from segaug.errors import SegaugError
from segaug.paste.placement import PLACERS, make_placer


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--method", required=True, help=f"placement method (known: {', '.join(sorted(PLACERS))})"
    )
    ap.add_argument("--dataset-root", required=True, type=Path)
    ap.add_argument("--split-list", required=True, type=Path)
    ap.add_argument("--pool", required=True, type=Path, help="pool directory from scripts/pool.py")
    ap.add_argument("--seed", required=True, type=int)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--copies", type=int, default=1, help="pasted copies per image (default 1)")
    ap.add_argument(
        "--objects-per-image", type=int, nargs=2, default=(1, 3), metavar=("MIN", "MAX")
    )
    ap.add_argument(
        "--scale-range", type=float, nargs=2, default=(0.75, 1.25), metavar=("MIN", "MAX")
    )
    ap.add_argument("--flip-prob", type=float, default=0.5)
    ap.add_argument("--blend", default="feather", choices=("hard", "feather"))
    ap.add_argument("--feather-px", type=float, default=2)
    ap.add_argument(
        "--placer-args",
        type=json_arg,
        default={},
        metavar="JSON",
        help="options for the placement method, inline JSON or @file.json",
    )
    args = ap.parse_args(argv)

    from segaug.paste.pipeline import paste_dataset
    from segaug.pool import load_pool

    if not isinstance(args.placer_args, dict):
        raise SegaugError(f"--placer-args must be a JSON object, got {args.placer_args!r}")
    placer = make_placer(args.method, **args.placer_args)
    table = ClassTable.load(args.dataset_root / "classes.json")
    paste_dataset(
        args.dataset_root, read_split(args.split_list), load_pool(args.pool), placer, args.seed,
        args.out, copies_per_image=args.copies, objects_per_image=tuple(args.objects_per_image),
        scale_range=tuple(args.scale_range), flip_prob=args.flip_prob, blend=args.blend,
        feather_px=args.feather_px, class_table=table,
    )  # fmt: skip


if __name__ == "__main__":
    run(main)
