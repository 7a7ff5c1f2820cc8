#!/usr/bin/env python
r"""Prepare a dataset in the canonical layout (images/, labels/, classes.json, sets/).

The workflow passes the dataset's config block; its kind (segaug.data.kinds) does the work:

    python scripts/prepare_dataset.py --config-json '{"kind": "voc", "path": "/data/export"}' \
        --classes-json '{"names": [...], "palette": [...]}' --threads 4 --out DIR

By hand, the same with flags:

    python scripts/prepare_dataset.py --kind voc --year 2007 --voc-tar VOCtrainval_06-Nov-2007.tar --out DIR
    python scripts/prepare_dataset.py --kind voc --year 2012 --voc-root /data/VOCdevkit --out DIR
    python scripts/prepare_dataset.py --kind voc --voc-root /data/cvat_export \
        --classes-json '{"names": [...], "palette": [[r, g, b], ...]}' --threads 4 --out DIR
    python scripts/prepare_dataset.py --kind canonical --root /data/mine --out verified.json
    python scripts/prepare_dataset.py --kind demo --num-train 48 --num-val 24 --seed 0 --out DIR
    python scripts/prepare_dataset.py --kind vaihingen --root /data/Vaihingen --patch-size 512 \
        --stride 512 [--eroded] --out DIR

--voc-root uses a devkit already extracted on disk (the VOC{year} dir, VOCdevkit, or the dir
holding VOCdevkit), or without --year the folder of a VOC-layout export such as CVAT's (the
one holding JPEGImages/); --voc-tar extracts only the segmentation lists, labels and their JPEGs
to a temporary directory beside --out, converts, and removes it. --classes-json is the
dataset's class table (default: the one the workflow would find: a labelmap.txt / classes.json
in the export, or PASCAL VOC's 21 classes with --year). Every file is verified on the way.

--kind canonical checks a dataset already in the canonical layout in place and writes the
summary and the manifest of its files to --out (a JSON file): the dataset itself is not copied.
"""

import argparse
import logging
from pathlib import Path

from segaug.cli import json_arg, run
from segaug.data.kinds import REGISTRY, dataset_class_table, get_kind
from segaug.data.voc import YEARS
from segaug.errors import SegaugError

log = logging.getLogger("prepare_dataset")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--config-json", type=json_arg, help="the dataset's config block (datasets.NAME), as the workflow passes it"
    )
    ap.add_argument("--kind", choices=sorted(REGISTRY), help="by hand: the kind (with the flags below)")
    ap.add_argument(
        "--out",
        required=True,
        type=Path,
        help="the canonical dataset directory to write (canonical: the record of the check)",
    )
    ap.add_argument("--threads", type=int, default=1, help="decode in this many threads")
    ap.add_argument("--classes-json", type=json_arg, help="the class table {names, palette} (JSON or @file)")
    ap.add_argument("--tar", type=Path, help="the downloaded archive (voc without a path)")
    voc = ap.add_argument_group("voc")
    voc.add_argument("--year", choices=YEARS, help="PASCAL VOC's year; leave out for another VOC-layout export")
    voc.add_argument("--ignore-color", type=int, nargs=3, help="colour of ignore (255) in colour-coded labels")
    src = voc.add_mutually_exclusive_group()
    src.add_argument("--voc-tar", type=Path, help="the VOCtrainval tarball")
    src.add_argument("--voc-root", type=Path, help="an extracted devkit already on disk (used in place)")
    vh = ap.add_argument_group("vaihingen (ISPRS 2D semantic labeling; sets train/val/test = the thesis tiles)")
    ap.add_argument("--root", type=Path, help="the dataset on disk (config key path), for any kind that has one")
    vh.add_argument("--patch-size", type=int, help="default 512")
    vh.add_argument("--stride", type=int, help="default 512")
    vh.add_argument("--eroded", action="store_true", help="use the _noBoundary labels (boundaries ignored)")
    demo = ap.add_argument_group("demo")
    demo.add_argument("--num-train", type=int, help="default 48")
    demo.add_argument("--num-val", type=int, help="default 24")
    demo.add_argument("--width", type=int, help="default 160")
    demo.add_argument("--height", type=int, help="default 120")
    demo.add_argument("--seed", type=int, help="default 0")
    return ap.parse_args(argv)


# hand flag -> config key; each kind keeps the keys its registry entry declares
FLAG_KEYS = {
    "root": "path",
    "voc_root": "path",
    "year": "year",
    "ignore_color": "ignore_color",
    "patch_size": "patch_size",
    "stride": "stride",
    "eroded": "eroded",
    "num_train": "num_train",
    "num_val": "num_val",
    "width": "width",
    "height": "height",
    "seed": "seed",
}


def config_from_flags(args) -> dict:
    """The config block the hand flags stand for (what the workflow passes as --config-json):
    the flags given whose keys the kind declares (segaug.data.kinds)."""
    if args.kind is None:
        raise SegaugError("give --config-json (a datasets: block) or --kind with its flags")
    kind = get_kind(args.kind)
    cfg = {"kind": kind.name}
    for dest, key in FLAG_KEYS.items():
        value = getattr(args, dest)
        if value is not None and value is not False and key in kind.keys:
            cfg[key] = str(value) if isinstance(value, Path) else value
    args.tar = args.tar or args.voc_tar
    if args.tar and "path" in cfg:
        raise SegaugError("give the dataset on disk (--root / --voc-root) or the archive (--tar), not both")
    if not args.tar:
        problem = kind.missing_keys(cfg)
        if problem:
            raise SegaugError(f"--kind {kind.name}: {problem} (flags: --root for path, --year, ...)")
    return cfg


def main(argv=None):
    args = parse_args(argv)
    cfg = args.config_json or config_from_flags(args)
    kind = get_kind(cfg.get("kind"))
    table = args.classes_json or dataset_class_table("(command line)", cfg)
    summary = kind.prepare_function()(cfg, args.out, table=table, tar=args.tar, threads=args.threads)
    log.info("prepared %s (%s images)", args.out, summary.get("images", "?"))


if __name__ == "__main__":
    run(main)
