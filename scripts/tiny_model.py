#!/usr/bin/env python
r"""Build a tiny random-weight model from a config and save it like a hub snapshot.

    python scripts/tiny_model.py --kind sdxl-adapter --out results/demo/tiny/sdxl-adapter

The demo and the tests point the config's model ids at these directories, so the generative
branch runs on a CPU with no download and through the same from_pretrained code as the real
models. Kinds: segaug.generative.tiny.TINY_KINDS, plus qwen-vl (segaug.vlm.tiny), clipseg and
sam (segaug.openvocab.tiny).
"""

import argparse
from pathlib import Path

from segaug.cli import run
from segaug.errors import SegaugError


def builders():
    from segaug.generative.tiny import TINY_KINDS, build_tiny
    from segaug.openvocab.tiny import build_tiny_clipseg, build_tiny_sam
    from segaug.vlm.tiny import build_tiny_qwen

    out = {k: (lambda out, seed, k=k: build_tiny(k, out, seed=seed)) for k in TINY_KINDS}
    out.update({"qwen-vl": build_tiny_qwen, "clipseg": build_tiny_clipseg, "sam": build_tiny_sam})
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", required=True, help="blip2, clip, annotators, sdxl-*, qwen-vl, clipseg, sam")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    known = builders()
    if args.kind not in known:
        raise SegaugError(f"unknown tiny model kind {args.kind!r}; known: {', '.join(known)}")
    known[args.kind](args.out, seed=args.seed)


if __name__ == "__main__":
    run(main)
