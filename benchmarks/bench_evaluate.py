#!/usr/bin/env python
"""A whole evaluation (:func:`segaug.train.evaluate.evaluate`: model file, decode, label read,
batches of one image size, inference, confusion matrix) against a bare forward loop over the
same images already decoded and normalised in memory (the upper bound).

* ``bare``: ``model(x).argmax(1)`` over the same batches, tensors prepared beforehand;
* ``segaug``: ``evaluate(..., batch_size=--batch)``, everything included (``--batch`` 1 is
  its default on a CPU, where one image at a time is the fastest; batches pay off on a GPU);
* ``before``: the evaluation before its rework: one image at a time (``batch_size=1``) and the
  model file read a second time for the metrics file, as scripts/evaluate.py did.

One torch thread, no loader workers (one core), CPU time (``time.process_time``), interleaved
``--rounds``; figures are medians, ratios medians of per-round ratios.

    python benchmarks/bench_evaluate.py [--images 16] [--batch 8] [--rounds 2] [--arch ...]
"""

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch
from PIL import Image

from segaug.data.canonical import ClassTable, load_pair, samples, voc_palette, write_label
from segaug.train.evaluate import evaluate, image_size, read_model_file, size_batches
from segaug.train.models import create_model, pad_multiple
from segaug.train.run import MODEL_FORMAT
from segaug.train.transforms import normalize

NC = 7


def dataset(root: Path, n: int) -> list[str]:
    (root / "images").mkdir(parents=True)
    ids = []
    for i in range(n):
        rng = np.random.default_rng(i)
        h, w = (375, 500) if i % 4 else (500, 375)
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(img).save(root / "images" / f"e{i}.jpg", quality=90)
        lab = rng.integers(0, NC, (h // 25 + 1, w // 25 + 1)).repeat(25, 0).repeat(25, 1)[:h, :w]
        write_label(root / "labels" / f"e{i}.png", lab.astype(np.uint8))
        ids.append(f"e{i}")
    return ids


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--batch", type=int, default=1, help="1: evaluate()'s default on a CPU")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--arch", default="DeepLabV3Plus")
    ap.add_argument("--encoder", default="resnet18")
    args = ap.parse_args(argv)
    logging.disable(logging.INFO)
    torch.set_num_threads(1)
    table = ClassTable(tuple(f"c{k}" for k in range(NC)), tuple(voc_palette(NC)))
    cfg = {"arch": args.arch, "encoder": args.encoder, "encoder_weights": None}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ids = dataset(root, args.images)
        torch.manual_seed(0)
        model = create_model(cfg, NC).eval()
        torch.save(
            {
                "format": MODEL_FORMAT,
                "model_cfg": cfg,
                "num_classes": NC,
                "class_names": list(table.names),
                "state_dict": model.state_dict(),
                "test_scale": None,
            },
            root / "model.pt",
        )
        va = samples(root, ids)
        batches = size_batches([image_size(s.image) for s in va], args.batch)
        pairs = [load_pair(s) for s in va]
        xs = [torch.stack([torch.from_numpy(normalize(pairs[i][0])) for i in b]) for b in batches]
        mult = pad_multiple(model)

        def bare():
            c0 = time.process_time()
            with torch.no_grad():
                for x in xs:
                    h, w = x.shape[-2:]
                    xp = torch.nn.functional.pad(x, (0, (-w) % mult, 0, (-h) % mult))
                    model(xp)[..., :h, :w].argmax(1)
            return len(va) / (time.process_time() - c0)

        def ours(batch, reread=False):
            c0 = time.process_time()
            evaluate(root / "model.pt", va, table, device="cpu", batch_size=batch)
            if reread:
                read_model_file(root / "model.pt")
            return len(va) / (time.process_time() - c0)

        def ours_half(batch):
            c0 = time.process_time()
            evaluate(root / "model.pt", va[: len(va) // 2], table, device="cpu", batch_size=batch)
            return time.process_time() - c0

        bare()  # warm-up
        res = {"bare": [], "segaug": [], "before": [], "steady": [], "startup": []}
        n = len(va)
        for _ in range(args.rounds):
            res["bare"].append(bare())
            res["segaug"].append(ours(args.batch))
            res["before"].append(ours(1, reread=True))
            # per image once started (what a 1,449-image VOC val set sees): the marginal rate
            # between half the images and all of them; start-up = what is left over
            half, full = ours_half(args.batch), n / res["segaug"][-1]
            per_image = (full - half) / (n - n // 2)
            res["steady"].append(1 / per_image)
            res["startup"].append(full - n * per_image)

    def med(k):
        return float(np.median(res[k]))

    def ratio(a, b):
        return float(np.median(np.divide(res[a], res[b])))

    print(
        f"evaluation, {args.arch}/{args.encoder}, {args.images} JPEGs 500x375/375x500 at their "
        f"size, one core, {args.rounds} interleaved rounds (images per CPU-second, median):"
    )
    print(f"  bare forward loop          {med('bare'):6.2f} img/CPU-s")
    print(
        f"  segaug evaluate, batch {args.batch:<3d} {med('segaug'):6.2f} img/CPU-s   "
        f"segaug/bare {ratio('segaug', 'bare'):.3f}x"
    )
    print(f"  before (batch 1, re-read)  {med('before'):6.2f} img/CPU-s   before/bare {ratio('before', 'bare'):.3f}x")
    print(
        f"  segaug per image once started (marginal rate; start-up {med('startup'):.2f} s: read "
        f"the model file, build the model): {med('steady'):.2f} img/CPU-s, "
        f"{ratio('steady', 'bare'):.3f}x bare"
    )


if __name__ == "__main__":
    main()
