#!/usr/bin/env python
r"""Generate one shard of a synthetic set (a GPU job: the models load once per shard).

    HF_HUB_OFFLINE=1 python scripts/generate.py --dataset-root results/voc2007/dataset \
        --plan results/voc2007/voc7/gen/plans/balance-auto.json --shard 0 --shard-size 64 \
        --seed 0 --variant-json '{"generator": "adapter_lineart", "prompt": "appended", ...}' \
        --generator-json '{"pipeline": "sdxl_adapter", "base": "stabilityai/...", ...}' \
        --captions results/voc2007/voc7/gen/captions.json \
        --priors results/voc2007/voc7/gen/priors/lineart \
        --out results/voc2007/voc7/gen/default/seed0/shards/0

OUT holds images/, labels/ (the source labels), priors/ (the blended priors used),
manifest.jsonl and summary.json; see segaug.generative.synth.
"""

import argparse
import logging
from pathlib import Path

from segaug.cli import json_arg, run
from segaug.io import read_json

log = logging.getLogger("generate")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset-root", required=True, type=Path)
    ap.add_argument("--plan", required=True, type=Path)
    ap.add_argument("--shard", required=True, type=int)
    ap.add_argument("--shard-size", required=True, type=int)
    ap.add_argument("--seed", required=True, type=int)
    ap.add_argument("--variant-json", required=True, type=json_arg)
    ap.add_argument("--generator-json", required=True, type=json_arg)
    ap.add_argument("--class-prompts-json", type=json_arg, default={})
    ap.add_argument("--captions", type=Path, help="captions.json (prompt modes caption/appended)")
    ap.add_argument("--priors", type=Path, help="priors directory of the variant's prior")
    ap.add_argument("--clip-model", help="CLIP model for the post-filter (candidates > 1)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args(argv)

    from segaug.generative.pipelines import Generator
    from segaug.generative.synth import generate_shard, read_plan, shard_entries

    plan = read_plan(args.plan)
    entries = shard_entries(plan["entries"], args.shard, args.shard_size)
    captions = read_json(args.captions) if args.captions else None
    scorer = None
    if args.variant_json.get("candidates", 1) > 1:
        from segaug.generative.clip import ClipScorer

        scorer = ClipScorer(args.clip_model, device=args.device)
    generator = Generator(args.generator_json, device=args.device)
    summary = generate_shard(
        args.dataset_root,
        entries,
        plan["image_classes"],
        generator,
        args.seed,
        args.variant_json,
        args.out,
        captions=captions,
        priors_dir=args.priors,
        class_prompts=args.class_prompts_json,
        exclude=plan.get("exclude", []),
        scorer=scorer,
    )
    log.info("shard %d: %d images, %d regenerated", args.shard, summary["images"], summary["regenerated"])


if __name__ == "__main__":
    run(main)
