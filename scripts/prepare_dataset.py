#!/usr/bin/env python
r"""Prepare a dataset in the canonical layout (images/, labels/, classes.json, sets/).

    python scripts/prepare_dataset.py --kind voc --year 2007 --voc-tar VOCtrainval_06-Nov-2007.tar --out DIR
    python scripts/prepare_dataset.py --kind voc --year 2012 --voc-root /data/VOCdevkit --out DIR
    python scripts/prepare_dataset.py --kind demo --num-train 48 --num-val 24 --seed 0 --out DIR
"""

import argparse
import logging
import tempfile
from pathlib import Path

from segaug.cli import run
from segaug.data.demo import generate_demo
from segaug.data.download import extract_tar, tar_names
from segaug.data.voc import convert_voc, find_voc_year_dir, voc_members
from segaug.errors import SegaugError

log = logging.getLogger("prepare_dataset")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", required=True, choices=["voc", "demo"])
    ap.add_argument("--out", required=True, type=Path)
    voc = ap.add_argument_group("voc")
    voc.add_argument("--year", choices=["2007", "2012"])
    voc.add_argument("--voc-tar", type=Path, help="the VOCtrainval tarball")
    voc.add_argument("--voc-root", type=Path, help="an extracted devkit already on disk (used in place)")
    demo = ap.add_argument_group("demo")
    demo.add_argument("--num-train", type=int, default=48)
    demo.add_argument("--num-val", type=int, default=24)
    demo.add_argument("--width", type=int, default=160)
    demo.add_argument("--height", type=int, default=120)
    demo.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    if args.kind == "demo":
        summary = generate_demo(args.out, args.num_train, args.num_val, args.width, args.height, args.seed)
    else:
        if not args.year or not (args.voc_tar or args.voc_root):
            raise SegaugError("--kind voc needs --year and one of --voc-tar / --voc-root")
        if args.voc_root:
            summary = convert_voc(find_voc_year_dir(args.voc_root, args.year), args.out)
        else:
            members = voc_members(tar_names(args.voc_tar), args.year)
            if not members:
                raise SegaugError(f"{args.voc_tar}: holds no VOC{args.year} segmentation data")
            with tempfile.TemporaryDirectory(dir=args.out.parent, prefix=".extract.") as tmp:
                log.info("extracting %d members of %s", len(members), args.voc_tar)
                extract_tar(args.voc_tar, Path(tmp) / "x", members)
                summary = convert_voc(find_voc_year_dir(Path(tmp) / "x", args.year), args.out)
    log.info("prepared %s: %s", args.out, summary)


if __name__ == "__main__":
    run(main)
