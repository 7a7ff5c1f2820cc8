#!/usr/bin/env python
"""Whole paste jobs (read, paste, write, manifest) against the original SIGtor's fast mode.

On the same 200 synthetic 500x375 images with two minority classes (benchmarks/bench_paste.py's
data) and their object pool, one SIGtor-style job (:func:`segaug.paste.sigtor.sigtor_dataset`,
2-4 draws per image, feathered blending) is timed end to end:

* ``segaug``: as the job runs now (OpenCV PNG at compress level 1, one staging directory);
* ``before``: the writer before its rework (PIL PNG at level 6, a temporary directory per file);
* ``segaug xN``: the same job over N worker processes (``--workers``, default: the cores);
* ``SIGtor fast``: the original SIGtor (github.com/solufast/SIGtor; ``--sigtor DIR``, a
  checkout; "reference not installed" without it) generating as many images from the same
  images and masks (one annotation line per object), with its simple soft-mask paste and no
  post-processing, via ``benchmarks/_sigtor_fast.py``. SIGtor composes onto background
  pictures of 400-600 px and writes JPEG images and RGB mask PNGs.

Variants run interleaved ``--rounds`` times; figures are medians, ratios medians of per-round
ratios. Images/s is wall-clock; "per core" divides by the CPU seconds of the job's processes.

    python benchmarks/bench_paste_job.py [--images 200] [--rounds 2] [--workers N] [--sigtor DIR]
"""

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from bench_paste import TABLE, synthetic_dataset  # noqa: E402

import segaug.paste.sigtor as sigtor_mod  # noqa: E402
from segaug.data.canonical import read_label, write_image, write_label  # noqa: E402
from segaug.pool import build_pool, load_pool  # noqa: E402

SIGTOR_DIR = os.environ.get("SIGTOR_DIR", "/work/sigtor")


def _cpu():
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def _old_writer(path, image, compress_level):
    """The writer before its rework: PIL at its default level 6, via a temp dir per file."""
    (write_label if image.ndim == 2 else write_image)(path, image)


def run_job(root, ids, pool, out, workers=1, before=False):
    kw = dict(objects_per_image=(2, 4), blend="feather", class_table=TABLE, workers=workers)
    saved = sigtor_mod.write_into_staging
    if before:
        sigtor_mod.write_into_staging = _old_writer
    try:
        c0, t0 = _cpu(), time.perf_counter()
        sigtor_mod.sigtor_dataset(root, ids, pool, 0, out, **kw)
        wall, cpu = time.perf_counter() - t0, _cpu() - c0
    finally:
        sigtor_mod.write_into_staging = saved
    return len(ids) / wall, len(ids) / cpu


def sigtor_inputs(root: Path, ids, work: Path) -> tuple[Path, Path]:
    """SIGtor's inputs for the same images: one YOLO-style line per object (box, class) and an
    instance mask per image (object pixels non-zero)."""
    masks = work / "sigtor_masks"
    masks.mkdir(parents=True)
    lines = []
    for i in ids:
        lab = read_label(root / "labels" / f"{i}.png")
        obj = np.isin(lab, (1, 2)).astype(np.uint8)
        n, inst, stats, _ = cv2.connectedComponentsWithStats(obj, connectivity=8)
        cv2.imwrite(str(masks / f"{i}.png"), inst.astype(np.uint8))
        for k in range(1, n):
            x, y, w, h, area = stats[k]
            if area < 100:
                continue
            cls = int(np.bincount(lab[inst == k]).argmax())
            lines.append(f"{root / 'images' / f'{i}.png'} {x},{y},{x + w},{y + h},{cls}")
    ann = work / "sigtor_ann.txt"
    ann.write_text("\n".join(lines) + "\n")
    return ann, masks


def run_sigtor(sigtor_dir, ann, masks, out, n):
    p = subprocess.run(
        [sys.executable, str(HERE / "_sigtor_fast.py"), str(sigtor_dir), str(ann), str(masks), str(out), str(n)],
        capture_output=True,
        text=True,
    )
    if p.returncode:
        raise RuntimeError(f"SIGtor failed:\n{p.stderr[-2000:]}")
    r = json.loads(p.stdout.strip().splitlines()[-1])
    return r["images"] / r["wall_s"], r["images"] / r["cpu_s"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--sigtor", default=SIGTOR_DIR, help="a checkout of SIGtor")
    args = ap.parse_args(argv)
    logging.disable(logging.INFO)
    cv2.setNumThreads(1)
    have_sigtor = (Path(args.sigtor) / "synthetic_image_generator.py").exists()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ids = synthetic_dataset(tmp / "data", args.images)
        build_pool(tmp / "data", ids, TABLE, ["bottle", "chair"], 0.05, 100, True, tmp / "pool")
        pool = load_pool(tmp / "pool", eager=True)
        if have_sigtor:
            ann, masks = sigtor_inputs(tmp / "data", ids, tmp)
        res = {k: [] for k in ("segaug", "before", "workers", "sigtor")}
        for r in range(args.rounds):
            res["segaug"].append(run_job(tmp / "data", ids, pool, tmp / f"a{r}"))
            res["before"].append(run_job(tmp / "data", ids, pool, tmp / f"b{r}", before=True))
            if args.workers > 1:
                res["workers"].append(run_job(tmp / "data", ids, pool, tmp / f"w{r}", args.workers))
            if have_sigtor:
                res["sigtor"].append(run_sigtor(args.sigtor, ann, masks, tmp / f"s{r}", len(ids)))
        same = (
            all(
                (tmp / "a0" / d / f).read_bytes() == (tmp / "w0" / d / f).read_bytes()
                for d in ("images", "labels")
                for f in os.listdir(tmp / "a0" / d)
            )
            if args.workers > 1
            else None
        )

    def med(k, j):
        return float(np.median([v[j] for v in res[k]]))

    def ratio(a, b, j):
        return float(np.median([x[j] / y[j] for x, y in zip(res[a], res[b])]))

    print(
        f"paste job (sigtor, feather, 2-4 draws), {args.images} images 500x375, "
        f"{args.rounds} interleaved rounds; images/s wall, and per core (per CPU-second):"
    )
    print(f"  segaug, 1 process          {med('segaug', 0):6.1f} img/s  {med('segaug', 1):6.1f} per core")
    print(
        f"  before rework, 1 process   {med('before', 0):6.1f} img/s  {med('before', 1):6.1f} per core"
        f"   segaug/before {ratio('segaug', 'before', 0):.2f}x"
    )
    if res["workers"]:
        print(
            f"  segaug, {args.workers} workers"
            f"{' ' * max(1, 19 - len(str(args.workers)))}{med('workers', 0):6.1f} img/s"
            f"  {med('workers', 1):6.1f} per core   speed-up {ratio('workers', 'segaug', 0):.2f}x "
            f"on {args.workers} processes ({os.cpu_count()} cores here); same bytes: {same}"
        )
    if res["sigtor"]:
        print(
            f"  SIGtor fast (SP, no post)  {med('sigtor', 0):6.1f} img/s  {med('sigtor', 1):6.1f} per core"
            f"   segaug/SIGtor {ratio('segaug', 'sigtor', 0):.2f}x single-process"
            f" (before: {ratio('before', 'sigtor', 0):.2f}x)"
        )
    else:
        print(f"  SIGtor: reference not installed ({args.sigtor}; set --sigtor or SIGTOR_DIR)")


if __name__ == "__main__":
    main()
