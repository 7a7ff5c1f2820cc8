#!/usr/bin/env python
"""Images/s of the tiny SDXL + T2I-Adapter generator on CPU (the demo's generation cost).

Builds the tiny random-weight ``sdxl-adapter`` (segaug.generative.tiny_sdxl) in a temp dir,
then, for each resolution x batch size, times ``Generator.generate`` on N jobs made from
VOC-sized 375x500 sources (so resizing the prior in and the output back is included). One
batch is generated first as a warm-up and not timed. Figures are for the tiny model only: the
real SDXL cost is measured by benchmarks/bench_sdxl_gpu.py.

    python benchmarks/bench_generate.py                       # 16 images, 30 steps, 64/128 px
    python benchmarks/bench_generate.py --n 32 --resolution 128 256 --batch-size 1 4 --threads 2
"""

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")  # keep the figures readable

import numpy as np
import torch

from segaug.generative import tiny_sdxl
from segaug.generative.pipelines import Generator, GenJob, generation_size

H, W = 375, 500


def jobs(n: int, seed0: int = 0) -> list[GenJob]:
    """N jobs with a gradient source image and a random line prior (content does not matter)."""
    yy, xx = np.mgrid[:H, :W]
    image = np.stack([xx * 255 // W, yy * 255 // H, np.full_like(xx, 90)], -1).astype(np.uint8)
    out = []
    for i in range(n):
        rng = np.random.default_rng(i)
        prior = np.zeros((H, W), np.uint8)
        prior[rng.integers(0, H, 6), :] = 255
        prior[:, rng.integers(0, W, 6)] = 255
        out.append(GenJob(image=image, prompt=f"a photo of a dog and a chair, number {i}", seed=seed0 + i, prior=prior))
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=16, help="images timed per setting")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--resolution", type=int, nargs="+", default=[64, 128], help="long side(s), px")
    ap.add_argument("--batch-size", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--multiple-of", type=int, default=16, help="16: the adapter's pixel-unshuffle factor")
    ap.add_argument("--repeats", type=int, default=2, help="timed runs per row; the best is shown")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = ap.parse_args(argv)
    logging.disable(logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        base = tiny_sdxl.build("sdxl-adapter", Path(tmp) / "tiny")
        print(
            f"tiny SDXL + T2I-Adapter-XL on CPU ({torch.get_num_threads()} threads), {args.steps} steps, "
            f"guidance 7.5 (UNet batch 2 x batch size), sources {W}x{H}, {args.n} images per row, best of {args.repeats}"
        )
        print(f"{'resolution':>10} {'gen size':>9} {'batch':>5} {'images/s':>9} {'s/image':>8}")
        for res in args.resolution:
            for bs in args.batch_size:
                cfg = dict(
                    pipeline="sdxl_adapter",
                    base=str(base),
                    adapter=str(base / "adapter"),
                    resolution=res,
                    multiple_of=args.multiple_of,
                    steps=args.steps,
                    batch_size=bs,
                )
                gen = Generator(cfg, device="cpu")
                gen.generate(jobs(bs, seed0=10_000))  # warm-up, not timed
                todo, dt = jobs(args.n), float("inf")
                for _ in range(args.repeats):  # best of: the figures are noisy on a shared CPU
                    t0 = time.perf_counter()
                    gen.generate(todo)
                    dt = min(dt, time.perf_counter() - t0)
                gh, gw = generation_size(H, W, res, args.multiple_of)
                print(f"{res:>10} {f'{gw}x{gh}':>9} {bs:>5} {args.n / dt:>9.2f} {dt / args.n:>8.3f}")


if __name__ == "__main__":
    main()
