#!/usr/bin/env python
"""Training data pipeline throughput, as the training job runs it, against MMSegmentation's.

Times what a data-loader worker does per training sample: decode the JPEG, read the label PNG,
the VOC train transform with its crop retries (RandomResize 2048x512 ratio 0.5-2.0, RandomCrop
512 cat_max_ratio 0.75, flip, PhotoMetricDistortion), pad, hand out tensors. On one core
(torch, OpenCV and OMP threads 1), in images per CPU-second (``time.process_time``), on the
same VOC-sized JPEGs (500x375 and 375x500, objects with 255 boundaries, like VOC's labels):

* ``segaug``: :class:`segaug.train.data.SegDataset` (uint8 out; the normalisation is done on the
  device in the training step, timed separately below as ``to_model_input``);
* ``before``: the pipeline as it was before its rework (PIL decode, per-read label check with
  np.unique, np.unique crop check, float photometric steps, float32 CHW normalised in the worker);
* ``mmseg``: MMSegmentation 1.2.2's own VOC train pipeline (LoadImageFromFile, LoadAnnotations,
  ..., PackSegInputs), run by ``benchmarks/_mmseg_voc_pipeline.py`` with the reference venv's
  python (``--mmseg-python``, default /work/venv-mmseg/bin/python); "reference not installed"
  when it is absent.

The three run interleaved, ``--rounds`` times; each figure is the median over rounds and each
ratio the median of the per-round ratios (the machine may be shared: noise cancels in ratios).

    python benchmarks/bench_train_data.py [--images 64] [--rounds 3] [--mmseg-python PATH]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2
import numpy as np
import torch
from PIL import Image

from segaug.data.canonical import check_label_values, samples, write_label
from segaug.train.data import SegDataset
from segaug.train.transforms import TrainTransform, to_model_input

HERE = Path(__file__).resolve().parent
MMSEG_PY = "/work/venv-mmseg/bin/python"
NUM_CLASSES = 21


def voc_like(root: Path, n: int) -> list[str]:
    """n VOC-sized JPEGs (textured, quality 90) and labels: background, 1-3 objects of random
    classes, a 5-pixel 255 boundary around each object (as VOC's SegmentationClass has)."""
    (root / "images").mkdir(parents=True)
    ids = []
    for i in range(n):
        rng = np.random.default_rng(i)
        h, w = (375, 500) if i % 4 else (500, 375)
        yy, xx = np.mgrid[:h, :w]
        noise = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (0, 0), 3)
        img = (np.stack([xx * 0.3, yy * 0.4, (xx + yy) * 0.15], -1) + noise).astype(np.uint8)
        lab = np.zeros((h, w), np.uint8)
        for _ in range(rng.integers(1, 4)):
            cy, cx = rng.integers(60, h - 60), rng.integers(60, w - 60)
            ry, rx = rng.integers(20, 110), rng.integers(20, 130)
            m = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
            ring = (((yy - cy) / (ry + 5)) ** 2 + ((xx - cx) / (rx + 5)) ** 2 <= 1) & ~m
            lab[ring] = 255
            lab[m] = rng.integers(1, NUM_CLASSES)
            img[m] = (img[m] * 0.5 + rng.integers(0, 128, 3)).astype(np.uint8)
        Image.fromarray(img).save(root / "images" / f"v{i:04d}.jpg", quality=90)
        write_label(root / "labels" / f"v{i:04d}.png", lab)
        ids.append(f"v{i:04d}")
    (root / "ids.txt").write_text("\n".join(ids) + "\n")
    return ids


# ------------------------------------------------------------------ the pipeline before its rework
def _before_item(tf, sample, rng):
    from segaug.train.transforms import _crop_bbox, normalize, random_flip, random_resize

    def convert(img, alpha=1.0, beta=0.0):
        return np.clip(img.astype(np.float32) * alpha + beta, 0, 255).astype(np.uint8)

    with Image.open(sample.image) as im:
        image = np.asarray(im.convert("RGB"))
    with Image.open(sample.label) as im:
        label = np.asarray(im).astype(np.uint8, copy=False)
    check_label_values(label, NUM_CLASSES, sample.label)
    image, label = random_resize(image, label, rng, tf.base_size, tf.ratio_range)
    bbox = _crop_bbox(label.shape, tf.crop_size, rng)
    for _ in range(10):
        y1, y2, x1, x2 = bbox
        values, cnt = np.unique(label[y1:y2, x1:x2], return_counts=True)
        cnt = cnt[values != 255]
        if len(cnt) > 1 and cnt.max() / cnt.sum() < tf.cat_max_ratio:
            break
        bbox = _crop_bbox(label.shape, tf.crop_size, rng)
    y1, y2, x1, x2 = bbox
    image, label = random_flip(image[y1:y2, x1:x2], label[y1:y2, x1:x2], rng, tf.flip_prob)
    img = np.ascontiguousarray(image)
    if rng.integers(2):
        img = convert(img, beta=rng.uniform(-32, 32))
    mode = rng.integers(2)
    if mode == 1 and rng.integers(2):
        img = convert(img, alpha=rng.uniform(0.5, 1.5))
    if rng.integers(2):
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
        hsv[:, :, 1] = convert(hsv[:, :, 1], alpha=rng.uniform(0.5, 1.5))
        img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if rng.integers(2):
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
        shift = int(rng.integers(-18, 18))
        hsv[:, :, 0] = ((hsv[:, :, 0].astype(np.int32) + shift) % 180).astype(np.uint8)
        img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if mode == 0 and rng.integers(2):
        img = convert(img, alpha=rng.uniform(0.5, 1.5))
    x = normalize(img)
    h, w = label.shape
    ph, pw = max(tf.crop_size[0] - h, 0), max(tf.crop_size[1] - w, 0)
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, ph), (0, pw)), constant_values=0.0)
        label = np.pad(label, ((0, ph), (0, pw)), constant_values=255)
    return torch.from_numpy(x), torch.from_numpy(label.astype(np.int64))


def run_segaug(ds, n_items, offset):
    c0 = time.process_time()
    for g in range(offset, offset + n_items):
        ds[g]
    return n_items / (time.process_time() - c0)


def run_before(ds, tf, n_items, offset):
    c0 = time.process_time()
    for g in range(offset, offset + n_items):
        s = ds.samples[ds.sample_index(g)]
        _before_item(tf, s, np.random.default_rng([ds.seed, 1, g]))
    return n_items / (time.process_time() - c0)


def run_mmseg(py, root, passes):
    p = subprocess.run(
        [py, str(HERE / "_mmseg_voc_pipeline.py"), str(root), str(root / "ids.txt"), "--passes", str(passes)],
        capture_output=True,
        text=True,
    )
    if p.returncode:
        raise RuntimeError(f"mmseg pipeline failed:\n{p.stderr[-2000:]}")
    r = json.loads(p.stdout.strip().splitlines()[-1])
    return r["images"] / r["cpu_s"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--mmseg-python", default=MMSEG_PY)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    have_mmseg = Path(args.mmseg_python).exists()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ids = voc_like(root, args.images)
        tf = TrainTransform(crop_size=(512, 512), base_size=(2048, 512))
        ds = SegDataset(samples(root, ids), NUM_CLASSES, tf, seed=0)
        run_segaug(ds, 4, 10**6)  # warm-up (imports, caches)
        run_before(ds, tf, 4, 10**6)
        rates = {"segaug": [], "before": [], "mmseg": []}
        for r in range(args.rounds):
            off = r * args.images
            rates["segaug"].append(run_segaug(ds, args.images, off))
            rates["before"].append(run_before(ds, tf, args.images, off))
            if have_mmseg:
                rates["mmseg"].append(run_mmseg(args.mmseg_python, root, 1))
        # the on-device half (here: CPU) of a batch of 8 crops, per image
        x = torch.stack([ds[g][0] for g in range(8)])
        hw = torch.stack([ds[g][3] for g in range(8)])
        c0 = time.process_time()
        for _ in range(5):
            to_model_input(x, hw)
        norm_ms = 1000 * (time.process_time() - c0) / 40

    med = {k: float(np.median(v)) for k, v in rates.items() if v}
    print(
        f"training data pipeline, {args.images} VOC-sized JPEGs, 512 crop, one core, "
        f"{args.rounds} interleaved rounds (images per CPU-second, median):"
    )
    print(f"  segaug (uint8 out)       {med['segaug']:7.1f} img/CPU-s")
    print(
        f"  before the rework        {med['before']:7.1f} img/CPU-s   "
        f"segaug/before {np.median(np.divide(rates['segaug'], rates['before'])):.2f}x"
    )
    if have_mmseg:
        ratio = np.median(np.divide(rates["segaug"], rates["mmseg"]))
        before = np.median(np.divide(rates["before"], rates["mmseg"]))
        print(
            f"  MMSegmentation 1.2.2     {med['mmseg']:7.1f} img/CPU-s   "
            f"segaug/mmseg {ratio:.2f}x (before: {before:.2f}x)"
        )
    else:
        print(f"  MMSegmentation: reference not installed ({args.mmseg_python})")
    print(f"  + to_model_input on the device (here CPU), per image: {norm_ms:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
