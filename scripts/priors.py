#!/usr/bin/env python
r"""Visual priors of a split: the image prior V_I and the label prior V_S of every training image.

    HF_HUB_OFFLINE=1 python scripts/priors.py --dataset-root results/voc2007/dataset \
        --split-list results/voc2007/voc7/splits/train.txt --prior lineart \
        --priors-json '{"annotators": "lllyasviel/Annotators", "label_prior": "palette"}' \
        --out results/voc2007/voc7/gen/priors/lineart

OUT/image/{id}.png and OUT/label/{id}.png (uint8 edge maps, 255 = edge, the image's size).
Blending (w1, w2) happens at generation time, so Table 7's grid reuses these.
"""

import argparse
import logging
from pathlib import Path

from segaug.cli import json_arg, run
from segaug.data.canonical import ClassTable, load_pair, read_split, samples, write_image
from segaug.errors import SegaugError
from segaug.io import atomic_path
from segaug.progress import progress

log = logging.getLogger("priors")
KEYS = ("annotators", "detect_resolution", "canny", "label_prior", "edge_width")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset-root", required=True, type=Path)
    ap.add_argument("--split-list", required=True, type=Path)
    ap.add_argument("--prior", required=True, help="lineart | canny | sketch")
    ap.add_argument("--priors-json", type=json_arg, default={}, help="generative.priors")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args(argv)
    cfg = args.priors_json
    unknown = sorted(set(cfg) - set(KEYS))
    if unknown:
        raise SegaugError(f"generative.priors: unknown key(s) {unknown}; known: {list(KEYS)}")

    from segaug.generative.priors import DEFAULT_ANNOTATORS, PriorDetector, label_prior

    low, high = cfg.get("canny", (100, 200))
    detector = PriorDetector(
        args.prior,
        model=cfg.get("annotators", DEFAULT_ANNOTATORS),
        device=args.device,
        detect_resolution=cfg.get("detect_resolution", 512),
        canny_low=low,
        canny_high=high,
    )
    table = ClassTable.load(args.dataset_root / "classes.json")
    pairs = samples(args.dataset_root, read_split(args.split_list))
    with atomic_path(args.out) as tmp:
        (tmp / "image").mkdir(parents=True)
        (tmp / "label").mkdir()
        for s in progress(pairs, desc=f"priors ({args.prior})"):
            image, label = load_pair(s, table.num_classes)
            write_image(tmp / "image" / f"{s.id}.png", detector(image))
            v_label = label_prior(detector, label, table, cfg.get("label_prior", "palette"), cfg.get("edge_width", 2))
            write_image(tmp / "label" / f"{s.id}.png", v_label)
    log.info("%s priors of %d images written to %s", args.prior, len(pairs), args.out)


if __name__ == "__main__":
    run(main)
