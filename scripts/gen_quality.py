#!/usr/bin/env python
r"""Quality of a synthetic set: CLIP score of each image against its prompt, FID vs real images.

    HF_HUB_OFFLINE=1 python scripts/gen_quality.py --dataset-root results/voc2007/dataset \
        --split-list results/voc2007/voc7/splits/train.txt \
        --set results/voc2007/voc7/gen/default/seed0/set \
        --clip-model openai/clip-vit-large-patch14 --fid-feature inception \
        --out results/voc2007/voc7/gen/default/seed0/quality.json

CLIP score = 100 * max(cos(image, text), 0) (torchmetrics' definition), mean and std over the
set. FID: torchmetrics' FrechetInceptionDistance between the split's real training images and
the synthetic set (Inception-v3 pool features, 2048-d; `tiny` = a random-weight CNN, for the
demo and tests only: its values are not comparable with published FIDs).
"""

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from segaug.cli import json_arg, run
from segaug.data.canonical import image_path, read_image, read_split
from segaug.io import read_json, write_json

log = logging.getLogger("gen_quality")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset-root", required=True, type=Path)
    ap.add_argument("--split-list", required=True, type=Path)
    ap.add_argument("--set", required=True, type=Path, help="synthetic set directory")
    ap.add_argument("--clip-model", required=True)
    ap.add_argument("--fid-feature", default="inception", choices=("inception", "tiny"))
    ap.add_argument("--info-json", type=json_arg, default={}, help="dataset/split/variant/seed")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args(argv)

    from segaug.generative.clip import ClipScorer, fid, tiny_feature_extractor
    from segaug.generative.synth import read_manifest

    manifest = read_manifest(args.set)
    scorer = ClipScorer(args.clip_model, device=args.device)
    scores = []
    for i in range(0, len(manifest), args.batch_size):
        chunk = manifest[i : i + args.batch_size]
        images = [read_image(image_path(args.set, m["output_id"])) for m in chunk]
        scores += list(scorer.score(images, [m["prompt"] for m in chunk]))
    real = (read_image(image_path(args.dataset_root, i)) for i in read_split(args.split_list))
    fake = (read_image(image_path(args.set, m["output_id"])) for m in manifest)
    feature = "inception" if args.fid_feature == "inception" else tiny_feature_extractor()
    value = fid(real, fake, feature=feature, device=args.device, batch_size=args.batch_size)
    summary = read_json(args.set / "summary.json")
    out = {
        **args.info_json,
        **summary,
        "clip_model": args.clip_model,
        "clip_score_mean": round(float(np.mean(scores)), 4),
        "clip_score_std": round(float(np.std(scores)), 4),
        "fid": round(float(value), 4),
        "fid_feature": args.fid_feature,
    }
    log.info("%s", json.dumps({k: out[k] for k in ("images", "clip_score_mean", "fid")}))
    write_json(args.out, out)


if __name__ == "__main__":
    run(main)
