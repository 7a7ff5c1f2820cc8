#!/usr/bin/env python
r"""Build a tiny random-weight model from a config and save it like a hub snapshot.

    python scripts/tiny_model.py --kind sdxl-adapter --out results/demo/tiny/sdxl-adapter

The demo and the tests point the config's model ids at these directories, so the generative
branch runs on a CPU with no download and through the same from_pretrained code as the real
models. Kinds: see segaug.generative.tiny.TINY_KINDS.
"""

import argparse
from pathlib import Path

from segaug.cli import run


def main(argv=None):
    from segaug.generative.tiny import TINY_KINDS, build_tiny

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", required=True, help=f"one of {', '.join(TINY_KINDS)}")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    build_tiny(args.kind, args.out, seed=args.seed)


if __name__ == "__main__":
    run(main)
