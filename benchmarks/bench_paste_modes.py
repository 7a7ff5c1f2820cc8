#!/usr/bin/env python
"""SIGtor-style pasting throughput at 500x375 on synthetic data (no disk IO).

Reports
- pack:    placements/s of :func:`segaug.paste.sigtor.pack` -- 4 rectangles of 40-120 px
           sides in a 500x375 image whose existing minority objects (about 6% of the
           pixels) are marked occupied; and a crowded case, 10 rectangles of 60-160 px, where
           random tries fail often and the exact free-position search runs;
- blend:   objects/s of :func:`segaug.paste.blend.blend_object` alone, per mode
           (one 60-110 px object into a 500x375 image);
- compose: pasted images/s of :func:`segaug.paste.sigtor.sigtor_image` per blend mode
           (hard / feather / poisson) with 3 objects per image: grouping, augmentation,
           packing, blending, mask clean-up and labelling -- everything but file IO.

    python benchmarks/bench_paste_modes.py [--images 200] [--repeats 3] [--threads 1]

OpenCV runs with ``--threads`` threads (default 1: figures per core, steadier on a busy box).
"""

import argparse
import logging
import time

import cv2
import numpy as np

from segaug.paste.blend import BLEND_MODES, blend_object
from segaug.paste.sigtor import pack, sigtor_image

H, W = 375, 500


def synthetic_scene(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Smooth textured image with noise; label: road band and three minority ellipses."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:H, :W]
    base = (np.stack([xx * 0.4, yy * 0.5, (xx + yy) * 0.2], -1) + rng.integers(0, 255, 3)) % 256
    img = np.clip(base + rng.normal(0, 12, (H, W, 3)), 0, 255).astype(np.uint8)
    lab = np.zeros((H, W), np.uint8)
    lab[H * 2 // 3 :] = 3
    for _ in range(3):
        cy, cx = rng.integers(40, H - 40), rng.integers(40, W - 40)
        ry, rx = rng.integers(20, 50), rng.integers(20, 50)
        lab[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = rng.integers(1, 3)
    return img, lab


def synthetic_object(seed: int) -> np.ndarray:
    """A textured ellipse crop of 60-110 px sides, RGB 0 off the mask (as the pool stores it)."""
    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(60, 111, 2))
    yy, xx = np.mgrid[:h, :w]
    m = ((yy - (h - 1) / 2) / (h / 2)) ** 2 + ((xx - (w - 1) / 2) / (w / 2)) ** 2 <= 1
    rgba = np.zeros((h, w, 4), np.uint8)
    tex = rng.integers(0, 256, 3) + 40 * np.sin(xx / 5.0)[..., None] + rng.normal(0, 8, (h, w, 3))
    rgba[..., :3] = np.clip(tex, 0, 255).astype(np.uint8)
    rgba[~m, :3] = 0
    rgba[..., 3] = m * 255
    return rgba


def best_time(fn, repeats: int) -> float:
    best = float("inf")
    for r in range(repeats):
        t0 = time.perf_counter()
        fn(r)
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--images", type=int, default=200, help="images (and pack calls) per repeat")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="OpenCV threads")
    args = ap.parse_args(argv)
    cv2.setNumThreads(args.threads)
    logging.disable(logging.WARNING)
    n = args.images
    scenes = [synthetic_scene(s) for s in range(8)]
    objects = [synthetic_object(100 + s) for s in range(12)]
    occupied = [np.isin(lab, [1, 2]) for _, lab in scenes]
    print(
        f"{W}x{H}, {n} images per repeat, best of {args.repeats}, "
        f"{args.threads} OpenCV thread(s); "
        f"occupied {100 * np.mean([o.mean() for o in occupied]):.1f}% of pixels"
    )

    # ---- pack
    for label, k, lo, hi in (("pack", 4, 40, 120), ("pack crowded", 10, 60, 160)):
        placed = [0]

        def run_pack(r, k=k, lo=lo, hi=hi):
            placed[0] = 0
            for i in range(n):
                rng = np.random.default_rng([r, i])
                sizes = [tuple(int(v) for v in rng.integers(lo, hi + 1, 2)) for _ in range(k)]
                out = pack(sizes, W, H, rng, occupied[i % len(occupied)], margin=1)
                placed[0] += sum(p is not None for p in out)

        t = best_time(run_pack, args.repeats)
        print(
            f"{label:17s}: {placed[0] / t:9.1f} placements/s  ({n / t:.1f} calls/s of {k} "
            f"items of {lo}-{hi} px, {100 * placed[0] / (k * n):.1f}% placed)"
        )

    # ---- blend_object alone
    for mode in BLEND_MODES:

        def run_blend(r, mode=mode):
            for i in range(n):
                img = scenes[i % len(scenes)][0]
                obj = objects[i % len(objects)]
                blend_object(img, obj, 50 + (i * 37) % 300, 40 + (i * 53) % 200, mode, 2)

        t = best_time(run_blend, args.repeats)
        print(f"blend  {mode:8s}  : {n / t:9.1f} objects/s     ({1e3 * t / n:.2f} ms/object)")

    # ---- sigtor_image (compose only)
    for mode in BLEND_MODES:
        pasted = [0]

        def run_compose(r, mode=mode):
            pasted[0] = 0
            for i in range(n):
                img, lab = scenes[i % len(scenes)]
                objs = [(objects[(i + k) % len(objects)], 1 + k % 2, f"o{k}") for k in range(3)]
                rng = np.random.default_rng([r, i])
                _, _, recs, _ = sigtor_image(rng, img, lab, objs, blend=mode, protect_classes=[1, 2])
                pasted[0] += sum(rec["reason"] == "packed" for rec in recs)

        t = best_time(run_compose, args.repeats)
        print(
            f"compose {mode:8s} : {n / t:9.1f} images/s      ({1e3 * t / n:.2f} ms/image, "
            f"3 objects, {pasted[0] / n:.2f} pasted per image)"
        )


if __name__ == "__main__":
    main()
