#!/usr/bin/env python
"""Paste throughput at 500x375 with 2 objects per image, feathered and hard blending.

Builds a synthetic canonical dataset and object pool in a temp dir, then reports
- compose: pasted images/s in memory (sample, transform, place, composite; no file IO), and
- end to end: images/s of paste_dataset (read PNGs, paste, write image + label PNGs, manifest).

    python benchmarks/bench_paste.py [--images 60] [--repeats 3]
"""

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TQDM_DISABLE", "1")  # keep the figures readable

from segaug.data.canonical import ClassTable, load_pair, samples, write_image, write_label
from segaug.paste import BalancedObjectSampler, RandomPlacer, paste_dataset, paste_image
from segaug.pool import build_pool, load_pool

H, W = 375, 500
TABLE = ClassTable(("background", "bottle", "chair", "road"), ((0, 0, 0), (128, 0, 0), (0, 128, 0), (90, 90, 90)))


def synthetic_dataset(root: Path, n: int) -> list[str]:
    """Smooth textured images with a road band and a few ellipse objects of two minority classes."""
    TABLE.save(root / "classes.json")
    yy, xx = np.mgrid[:H, :W]
    ids = []
    for i in range(n):
        rng = np.random.default_rng(i)
        base = (np.stack([xx * 0.4, yy * 0.5, (xx + yy) * 0.2], -1) + rng.integers(0, 255, 3)) % 256
        img = np.clip(base + rng.normal(0, 12, (H, W, 3)), 0, 255).astype(np.uint8)
        lab = np.zeros((H, W), np.uint8)
        lab[H * 2 // 3 :] = 3
        for _ in range(3):
            cy, cx = rng.integers(40, H - 40), rng.integers(40, W - 40)
            ry, rx = rng.integers(15, 60), rng.integers(15, 60)
            m = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
            lab[m] = rng.integers(1, 3)
            img[m] = rng.integers(0, 256, 3)
        write_image(root / "images" / f"s{i:04d}.png", img)
        write_label(root / "labels" / f"s{i:04d}.png", lab)
        ids.append(f"s{i:04d}")
    return ids


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--images", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    logging.disable(logging.INFO)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ids = synthetic_dataset(tmp / "data", args.images)
        build_pool(tmp / "data", ids, TABLE, ["bottle", "chair"], 0.05, 100, True, tmp / "pool")
        pool = load_pool(tmp / "pool", eager=True)
        pairs = [load_pair(s) for s in samples(tmp / "data", ids)]
        sizes = np.array([o.area for o in pool])
        print(
            f"{args.images} images {W}x{H}, pool of {len(pool)} objects "
            f"(median area {int(np.median(sizes))} px), 2 objects per image, scale 0.75-1.25"
        )
        sampler, placer = BalancedObjectSampler(pool), RandomPlacer()
        for blend in ("feather", "hard"):
            best = float("inf")
            for r in range(args.repeats):
                t0 = time.perf_counter()
                for i, (img, lab) in enumerate(pairs):
                    rng = np.random.default_rng([r, i])
                    paste_image(rng, img, lab, sampler, placer, (2, 2), (0.75, 1.25), 0.5, blend, 2)
                best = min(best, time.perf_counter() - t0)
            print(f"compose    {blend:7s}: {len(pairs) / best:8.1f} images/s  ({1e3 * best / len(pairs):.2f} ms/image)")
        for blend in ("feather", "hard"):
            best = float("inf")
            for r in range(args.repeats):
                t0 = time.perf_counter()
                paste_dataset(
                    tmp / "data",
                    ids,
                    pool,
                    placer,
                    r,
                    tmp / f"out_{blend}",
                    objects_per_image=(2, 2),
                    blend=blend,
                    feather_px=2,
                    class_table=TABLE,
                )
                best = min(best, time.perf_counter() - t0)
            print(
                f"end to end {blend:7s}: {len(ids) / best:8.1f} images/s  ({1e3 * best / len(ids):.2f} ms/image, "
                "read + paste + write PNGs)"
            )


if __name__ == "__main__":
    main()
