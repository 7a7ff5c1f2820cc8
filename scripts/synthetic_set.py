#!/usr/bin/env python
r"""Gather the generated shards of a synthetic set into one canonical dataset (D_gen).

    python scripts/synthetic_set.py --dataset-root results/voc2007/dataset \
        --plan results/voc2007/voc7/gen/plans/balance-auto.json \
        --shards results/voc2007/voc7/gen/default/seed0/shards/{0,1,2,3} \
        --out results/voc2007/voc7/gen/default/seed0/set

Training on "gen-<variant>" reads OUT/sets/all.txt beside the split's real images: D_final.
"""

import argparse
import logging
from pathlib import Path

from segaug.cli import run

log = logging.getLogger("synthetic_set")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset-root", required=True, type=Path)
    ap.add_argument("--plan", required=True, type=Path)
    ap.add_argument("--shards", required=True, nargs="+", type=Path)
    ap.add_argument("--exclude", nargs="*", default=[], help="(recorded in the plan; accepted for symmetry)")
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args(argv)

    from segaug.generative.synth import merge_shards, read_plan

    summary = merge_shards(args.dataset_root, read_plan(args.plan), args.shards, args.out)
    log.info(
        "%d synthetic images from %d real ones (%d regenerated after a NaN/black output); "
        "entropy %.3f -> %.3f, CIR %.3f -> %.3f",
        summary["images"],
        summary["source_images"],
        summary["regenerated_images"],
        summary["entropy_origin"],
        summary["entropy_final"],
        summary["cir_origin"],
        summary["cir_final"],
    )


if __name__ == "__main__":
    run(main)
