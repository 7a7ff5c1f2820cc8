#!/usr/bin/env python
r"""Caption every training image of a split with BLIP-2 (the paper's P_g).

    HF_HUB_OFFLINE=1 python scripts/captions.py --dataset-root results/voc2007/dataset \
        --split-list results/voc2007/voc7/splits/train.txt \
        --captioner-json '{"model": "Salesforce/blip2-opt-2.7b", "batch_size": 16}' \
        --out results/voc2007/voc7/gen/captions.json

Writes {image id: caption} (JSON). The model loads once; images go through in batches, on the
GPU when there is one (fp16 there), float32 on the CPU.
"""

import argparse
import logging
from pathlib import Path

from segaug.cli import json_arg, run
from segaug.data.canonical import read_image, read_split, samples
from segaug.errors import SegaugError
from segaug.io import write_json

log = logging.getLogger("captions")
KEYS = ("model", "batch_size", "max_new_tokens", "dtype")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset-root", required=True, type=Path)
    ap.add_argument("--split-list", required=True, type=Path)
    ap.add_argument("--captioner-json", required=True, type=json_arg, help="generative.captioner")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args(argv)
    cfg = args.captioner_json
    unknown = sorted(set(cfg) - set(KEYS))
    if unknown:
        raise SegaugError(f"generative.captioner: unknown key(s) {unknown}; known: {list(KEYS)}")

    from segaug.generative.captions import Captioner, caption_images

    captioner = Captioner(device=args.device, **cfg)
    items = ((s.id, read_image(s.image)) for s in samples(args.dataset_root, read_split(args.split_list)))
    captions = caption_images(captioner, items)
    empty = sum(not c for c in captions.values())
    log.info("%d captions (%d empty: their prompts fall back to the class names)", len(captions), empty)
    write_json(args.out, captions)


if __name__ == "__main__":
    run(main)
