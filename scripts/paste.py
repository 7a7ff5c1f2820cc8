#!/usr/bin/env python
r"""Paste stage: paste pool objects into a split and write a new canonical dataset.

    python scripts/paste.py --method random --dataset-root results/voc7/data \
        --split-list train.txt --pool results/voc7/train/pool --seed 0 \
        --out results/voc7/train/paste/random/seed0 \
        [--options-json '{"copies": 1, "objects_per_image": [1, 3], "blend": "feather"}']
    python scripts/paste.py --method context --sections-json '{"context": {...}}' [--surfaces DIR] ...
    python scripts/paste.py --method vlm --sections-json @sections.json ...   # context and vlm
    python scripts/paste.py --method sigtor --options-json '{"blend": "poisson", "jitter": 0.2}' ...

The methods and what each needs come from one registry (segaug.paste.methods): --method is one
of its names; --options-json is the method's config block (paste.<method>), keys left out take
the method's defaults; --sections-json holds the config sections the method names (random and
sigtor: none; context: `context`, the surface rules; vlm: `context` and `vlm`).
--surfaces: the cached open-vocabulary surface maps of the split, for surfaces that are not
classes of the dataset (VOC has no road). --threads: worker processes over the images; the
output is byte-identical for any number.
OUT holds images/, labels/, classes.json, sets/all.txt, manifest.jsonl (one line per paste,
with the reason it was accepted) and summary.json (counts, and every option of the method).
Objects are drawn with the class uniform over the pool's classes, then uniform within it.
"""

import argparse
from pathlib import Path

from segaug.cli import json_arg, run
from segaug.data.canonical import ClassTable, read_split
from segaug.errors import SegaugError
from segaug.paste.methods import REGISTRY, PasteJob, get_method


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--method", required=True, choices=sorted(REGISTRY))
    ap.add_argument("--dataset-root", required=True, type=Path)
    ap.add_argument("--split-list", required=True, type=Path)
    ap.add_argument("--pool", required=True, type=Path, help="pool directory from scripts/pool.py")
    ap.add_argument("--seed", required=True, type=int)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument(
        "--options-json",
        type=json_arg,
        default={},
        metavar="JSON",
        help="the method's config block paste.<method>, inline JSON or @file.json",
    )
    ap.add_argument(
        "--sections-json",
        type=json_arg,
        default={},
        metavar="JSON",
        help="the config sections the method reads, {name: block}, inline JSON or @file.json",
    )
    ap.add_argument("--surfaces", type=Path, default=None, help="cached surface maps of the split")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="worker processes over the images (the rule's threads); same bytes for any",
    )
    args = ap.parse_args(argv)

    from segaug.pool import load_pool

    method = get_method(args.method)
    if not isinstance(args.options_json, dict):
        raise SegaugError(f"--options-json must be a JSON object, got {args.options_json!r}")
    options = method.parse_options(args.options_json)
    sections = args.sections_json if isinstance(args.sections_json, dict) else {}
    missing = [s for s in method.sections if not sections.get(s)]
    if missing:
        raise SegaugError(
            f"paste method {args.method} needs the config section(s) {missing}: pass them in --sections-json"
        )
    job = PasteJob(
        args.dataset_root,
        read_split(args.split_list),
        load_pool(args.pool),
        args.seed,
        args.out,
        ClassTable.load(args.dataset_root / "classes.json"),
        options,
        {s: sections[s] for s in method.sections},
        args.surfaces,
        args.threads,
    )
    method.paste_function()(job)


if __name__ == "__main__":
    run(main)
