#!/usr/bin/env python
r"""Prepare a dataset in the canonical layout (images/, labels/, classes.json, sets/).

    python scripts/prepare_dataset.py --kind voc --year 2007 --voc-tar VOCtrainval_06-Nov-2007.tar --out DIR
    python scripts/prepare_dataset.py --kind voc --year 2012 --voc-root /data/VOCdevkit --out DIR
    python scripts/prepare_dataset.py --kind demo --num-train 48 --num-val 24 --seed 0 --out DIR
    python scripts/prepare_dataset.py --kind vaihingen --root /data/Vaihingen --patch-size 512 \
        --stride 512 [--eroded] --out DIR

--voc-root uses a devkit already extracted on disk (the VOC{year} dir, VOCdevkit, or the dir
holding VOCdevkit); --voc-tar extracts only the segmentation lists, labels and their JPEGs to a
temporary directory beside --out, converts, and removes it.
"""

import argparse
import logging
import shutil
import tempfile
from pathlib import Path

from segaug.cli import run
from segaug.data.demo import generate_demo
from segaug.data.voc import YEARS, convert_voc, extract_voc, find_voc_year_dir
from segaug.errors import SegaugError

log = logging.getLogger("prepare_dataset")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", required=True, choices=["voc", "demo", "vaihingen"])
    ap.add_argument("--out", required=True, type=Path, help="the canonical dataset directory to write")
    voc = ap.add_argument_group("voc")
    voc.add_argument("--year", choices=YEARS)
    src = voc.add_mutually_exclusive_group()
    src.add_argument("--voc-tar", type=Path, help="the VOCtrainval tarball")
    src.add_argument("--voc-root", type=Path, help="an extracted devkit already on disk (used in place)")
    vh = ap.add_argument_group("vaihingen (ISPRS 2D semantic labeling; sets train/val/test = the thesis tiles)")
    vh.add_argument("--root", type=Path, help="the Vaihingen download (top/, gts_for_participants/, ...)")
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
    elif args.kind == "vaihingen":
        from segaug.data.vaihingen import convert_vaihingen

        if not args.root:
            raise SegaugError("--kind vaihingen needs --root, the directory of the Vaihingen download")
        summary = convert_vaihingen(args.root, args.out, args.patch_size, args.stride, args.eroded)
        summary["images"] = sum(summary["patches"].values())
    elif not args.year or not (args.voc_tar or args.voc_root):
        raise SegaugError("--kind voc needs --year and one of --voc-tar / --voc-root")
    elif args.voc_root:
        summary = convert_voc(find_voc_year_dir(args.voc_root, args.year), args.out)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{args.out.name}.extract.", dir=args.out.parent))
        try:
            year_dir = extract_voc(args.voc_tar, tmp / "voc", args.year)
            summary = convert_voc(year_dir, args.out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    log.info("prepared %s (%d images)", args.out, summary["images"])


if __name__ == "__main__":
    run(main)
