#!/usr/bin/env python
r"""Paste stage: paste pool objects into a split and write a new canonical dataset.

    python scripts/paste.py --method random --dataset-root results/voc7/data \
        --split-list train.txt --pool results/voc7/train/pool --seed 0 \
        --out results/voc7/train/paste/random/seed0 [--copies 1] [--objects-per-image 1 3] \
        [--scale-range 0.75 1.25] [--flip-prob 0.5] [--blend feather] [--feather-px 2]
    python scripts/paste.py --method context --context-json @context.json [--surfaces DIR] ...
    python scripts/paste.py --method vlm --context-json @context.json --vlm-json @vlm.json ...
    python scripts/paste.py --method sigtor --sigtor-json '{"blend": "poisson"}' ...

Methods (segaug.paste.methods): random; context (surface rules, config section `context`);
vlm (a vision-language model proposes points, the surface rule filters them, rule-based
fallback recorded in the manifest; config section `vlm`); sigtor (SIGtor-style grouping,
overlap-free packing, per-object augmentation, hard / feathered / Poisson blending).
--surfaces: the cached open-vocabulary surface maps of the split, for surfaces that are not
classes of the dataset (VOC has no road).

--image-format / --compress-level: pasted images keep their source format (PNG or JPEG) unless
told otherwise; PNGs (labels always) at zlib level 1. --threads: worker processes over the
images; the output is byte-identical for any number.
OUT holds images/, labels/, classes.json, sets/all.txt, manifest.jsonl (one line per paste,
with the reason it was accepted) and summary.json (see segaug.paste.pipeline / .sigtor).
Objects are drawn with the class uniform over the pool's classes, then uniform within it.
"""

import argparse
from pathlib import Path

from segaug.cli import json_arg, run
from segaug.data.canonical import ClassTable, read_split
from segaug.errors import SegaugError
from segaug.paste.methods import METHODS, build_placer

SIGTOR_KEYS = ("blend", "feather_px", "scale_range", "flip_prob", "jitter", "blur_prob", "min_area")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--method", required=True, choices=METHODS)
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
    ap.add_argument("--blend", default="feather", choices=("hard", "feather", "poisson"))
    ap.add_argument("--feather-px", type=float, default=2)
    ap.add_argument("--placer-args", type=json_arg, default={}, metavar="JSON",
                    help="options for the placer, inline JSON or @file.json")  # fmt: skip
    ap.add_argument("--context-json", type=json_arg, default=None, help="config section `context`")
    ap.add_argument("--vlm-json", type=json_arg, default=None, help="config section `vlm`")
    ap.add_argument("--surfaces", type=Path, default=None, help="cached surface maps of the split")
    ap.add_argument("--image-format", default="source", choices=("source", "png", "jpg"),
                    help="format of the pasted images (default: that of each source image)")
    ap.add_argument("--compress-level", type=int, default=1,
                    help="PNG zlib level 0-9 of images and labels (default 1: fast)")
    ap.add_argument("--threads", type=int, default=1,
                    help="worker processes over the images (the rule's threads); same bytes for any")
    args = ap.parse_args(argv)

    from segaug.paste.output import OutputOptions
    from segaug.pool import load_pool

    output = OutputOptions(args.image_format, args.compress_level)

    if not isinstance(args.placer_args, dict):
        raise SegaugError(f"--placer-args must be a JSON object, got {args.placer_args!r}")
    table = ClassTable.load(args.dataset_root / "classes.json")
    ids, pool = read_split(args.split_list), load_pool(args.pool)
    if args.method == "sigtor":
        from segaug.paste.sigtor import sigtor_dataset

        sigtor_dataset(
            args.dataset_root, ids, pool, args.seed, args.out,
            objects_per_image=tuple(args.objects_per_image), blend=args.blend,
            copies_per_image=args.copies, feather_px=args.feather_px, flip_prob=args.flip_prob,
            scale_range=tuple(args.scale_range), class_table=table, output=output,
            workers=args.threads, **args.placer_args,
        )  # fmt: skip
        return
    from segaug.paste.pipeline import paste_dataset

    placer = build_placer(args.method, table, args.context_json, args.vlm_json, args.surfaces, args.placer_args)
    paste_dataset(
        args.dataset_root, ids, pool, placer, args.seed,
        args.out, copies_per_image=args.copies, objects_per_image=tuple(args.objects_per_image),
        scale_range=tuple(args.scale_range), flip_prob=args.flip_prob, blend=args.blend,
        feather_px=args.feather_px, class_table=table, output=output, workers=args.threads,
    )  # fmt: skip


if __name__ == "__main__":
    run(main)
