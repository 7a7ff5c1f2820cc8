#!/usr/bin/env python
r"""Open-vocabulary surface maps of a split's training images (where a pasted object may stand).

    HF_HUB_OFFLINE=1 python scripts/surfaces.py --dataset-root results/voc2007/dataset \
        --split-list results/voc2007/voc7/splits/train.txt \
        --surfaces-json '{"source": "sam_clip", "names": ["road", "water", "grass"]}' \
        --out results/voc2007/voc7/surfaces

One map per image (OUT/{id}.png, uint8: k = names[k], 255 = none, plus {id}.json with the
names). Only the surfaces that are not classes of the dataset are predicted; the others come
from the label at paste time. Sources: clipseg (CLIPSeg, light) or sam_clip (SAM 2 masks scored
against the surface prompts with CLIP, as in the open-vocabulary segmentation thesis); see segaug.openvocab.
"""

import argparse
import logging
from pathlib import Path

from segaug.cli import json_arg, run
from segaug.data.canonical import ClassTable, read_split
from segaug.errors import SegaugError
from segaug.io import atomic_path

log = logging.getLogger("surfaces")
KEYS = ("source", "names", "model", "clip_model", "threshold")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset-root", required=True, type=Path)
    ap.add_argument("--split-list", required=True, type=Path)
    ap.add_argument("--surfaces-json", required=True, type=json_arg, help="config section context.surfaces")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args(argv)
    cfg = args.surfaces_json
    unknown = sorted(set(cfg) - set(KEYS))
    if unknown:
        raise SegaugError(f"context.surfaces: unknown key(s) {unknown}; known: {list(KEYS)}")

    from segaug.openvocab.surfaces import split_surfaces, surface_maps

    table = ClassTable.load(args.dataset_root / "classes.json")
    _, open_vocab = split_surfaces(table, cfg["names"])
    if cfg["source"] == "clipseg":
        from segaug.openvocab.clipseg import ClipSegSurfaces

        kw = {k: cfg[k] for k in ("model", "threshold") if k in cfg}
        source = ClipSegSurfaces(device=args.device, **kw)
    elif cfg["source"] == "sam_clip":
        from segaug.openvocab.sam_clip import SamClipSurfaces

        kw = {"sam_model": cfg["model"]} if "model" in cfg else {}
        kw.update({k: cfg[k] for k in ("clip_model",) if k in cfg})
        source = SamClipSurfaces(device=args.device, **kw)
    else:
        raise SegaugError(f"context.surfaces.source: {cfg['source']!r} needs no maps (label) or is unknown")
    ids = read_split(args.split_list)
    with atomic_path(args.out) as tmp:
        tmp.mkdir()
        surface_maps(source, args.dataset_root, ids, open_vocab, tmp)
    log.info("surface maps of %d images (%s) -> %s", len(ids), ", ".join(open_vocab), args.out)


if __name__ == "__main__":
    run(main)
