#!/usr/bin/env python
r"""Prepare a dataset in the canonical layout (images/, labels/, classes.json, sets/).

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
dataset's class table (default: PASCAL VOC's 21 classes). Every file is verified on the way.

--kind canonical checks a dataset already in the canonical layout in place and writes the
summary and the manifest of its files to --out (a JSON file): the dataset itself is not copied.
"""

import argparse
import logging
import shutil
import tempfile
from pathlib import Path

from segaug.cli import json_arg, run
from segaug.data.canonical import ClassTable
from segaug.data.demo import generate_demo
from segaug.data.verify import verify_canonical
from segaug.data.voc import YEARS, convert_voc, extract_voc, find_voc_year_dir
from segaug.errors import SegaugError
from segaug.io import write_json

log = logging.getLogger("prepare_dataset")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", required=True, choices=["voc", "demo", "vaihingen", "canonical"])
    ap.add_argument("--out", required=True, type=Path, help="the canonical dataset directory to write")
    ap.add_argument("--threads", type=int, default=1, help="decode in this many threads")
    voc = ap.add_argument_group("voc")
    voc.add_argument("--year", choices=YEARS, help="PASCAL VOC's year; leave out for another VOC-layout export")
    voc.add_argument("--classes-json", type=json_arg, help="the class table {names, palette} (JSON or @file)")
    voc.add_argument("--ignore-color", type=int, nargs=3, default=[224, 224, 192],
                     help="colour of ignore (255) in colour-coded labels (default: VOC's void)")
    src = voc.add_mutually_exclusive_group()
    src.add_argument("--voc-tar", type=Path, help="the VOCtrainval tarball")
    src.add_argument("--voc-root", type=Path, help="an extracted devkit already on disk (used in place)")
    vh = ap.add_argument_group("vaihingen (ISPRS 2D semantic labeling; sets train/val/test = the thesis tiles)")
    vh.add_argument("--root", type=Path, help="the Vaihingen download (top/, ...), or the canonical dataset to check")
    vh.add_argument("--patch-size", type=int, default=512)
    vh.add_argument("--stride", type=int, default=512)
    vh.add_argument("--eroded", action="store_true", help="use the _noBoundary labels (boundaries ignored)")
    demo = ap.add_argument_group("demo")
    demo.add_argument("--num-train", type=int, default=48)
    demo.add_argument("--num-val", type=int, default=24)
    demo.add_argument("--width", type=int, default=160)
    demo.add_argument("--height", type=int, default=120)
    demo.add_argument("--seed", type=int, default=0)
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.kind == "demo":
        summary = generate_demo(args.out, args.num_train, args.num_val, args.width, args.height, args.seed)
    elif args.kind == "canonical":
        if not args.root:
            raise SegaugError("--kind canonical needs --root, the canonical dataset to check")
        summary = verify_canonical(args.root, workers=args.threads)
        write_json(args.out, summary)
    elif args.kind == "vaihingen":
        from segaug.data.vaihingen import convert_vaihingen

        if not args.root:
            raise SegaugError("--kind vaihingen needs --root, the directory of the Vaihingen download")
        summary = convert_vaihingen(args.root, args.out, args.patch_size, args.stride, args.eroded)
        summary["images"] = sum(summary["patches"].values())
    elif not (args.voc_tar or args.voc_root) or not (args.year or (args.voc_root and args.classes_json)):
        raise SegaugError(
            "--kind voc needs --year and one of --voc-tar / --voc-root (PASCAL VOC), "
            "or --voc-root and --classes-json (another VOC-layout dataset)"
        )
    else:
        table = ClassTable.from_dict(args.classes_json, "--classes-json") if args.classes_json else None
        opts = dict(table=table, pascal=bool(args.year), workers=args.threads, ignore_colour=tuple(args.ignore_color))
        if args.voc_root:
            summary = convert_voc(find_voc_year_dir(args.voc_root, args.year), args.out, **opts)
        else:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{args.out.name}.extract.", dir=args.out.parent))
            try:
                year_dir = extract_voc(args.voc_tar, tmp / "voc", args.year)
                summary = convert_voc(year_dir, args.out, **opts)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    log.info("prepared %s (%d images)", args.out, summary["images"])


if __name__ == "__main__":
    run(main)
