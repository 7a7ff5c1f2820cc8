#!/usr/bin/env python
"""Placements/s of rule-based context placement (surface rules) on a VOC-sized image.

A 500x375 label with a road band (30 % of the image) and a few parked cars; objects of 20-60 px
are placed with ContextPlacer (min_share 0.8) under each size mode. Prints a small table.

    python benchmarks/bench_context.py [--n 2000]
"""

import argparse
import time

import numpy as np

from segaug.data.canonical import ClassTable
from segaug.openvocab.surfaces import surface_lookup
from segaug.paste.context import ContextPlacer, SurfaceContext, parse_rules
from segaug.paste.placement import Candidate

TABLE = ClassTable(("grass", "road", "car"), ((0, 128, 0), (128, 128, 128), (255, 0, 0)))


def scene(H=375, W=500):
    label = np.zeros((H, W), np.uint8)
    label[150:262] = 1
    for x in range(20, 480, 90):
        label[170:190, x : x + 40] = 2
    return np.zeros((H, W, 3), np.uint8), label


def objects(rng, n):
    out = []
    for _ in range(n):
        h, w = int(rng.integers(20, 40)), int(rng.integers(30, 60))
        rgba = np.full((h, w, 4), 255, np.uint8)
        out.append(Candidate.make("crops/x.png", 2, "car", rgba, 1.0, False))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=2000)
    args = ap.parse_args()
    image, label = scene()
    rng = np.random.default_rng(0)
    objs = objects(rng, args.n)
    print(f"{'size mode':<12} {'placements/s':>13} {'placed':>8}")
    for size in ("pool", "same_class", "surface"):
        rules = parse_rules({"car": {"surfaces": ["road"], "min_share": 0.8, "size": size}})
        placer = ContextPlacer(SurfaceContext(rules, TABLE.names, surface_lookup(TABLE, ["road"])))
        placer.set_image("bench", image, label)
        t = time.perf_counter()
        placed = sum(placer.place(rng, image, label, o) is not None for o in objs)
        dt = time.perf_counter() - t
        print(f"{size:<12} {args.n / dt:>13.0f} {placed / args.n:>8.0%}")


if __name__ == "__main__":
    main()
