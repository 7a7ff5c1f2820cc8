#!/usr/bin/env python
"""Training throughput of the demo models (and optionally a paper-sized one); prints figures.

One training step = forward + loss + backward + SGD step on a random batch. Random
initialisation, no downloads. The data pipeline as the job runs it (decode, label read, crop
retries, side by side with MMSegmentation's) is benchmarks/bench_train_data.py.

    python benchmarks/bench_train.py                 # demo models, 1 thread, CPU
    python benchmarks/bench_train.py --threads 2 --big   # + DeepLabV3+/PSPNet R50, 512 crop, batch 2
    python benchmarks/bench_train.py --e2e           # + the whole train() loop per demo model
"""

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch

from segaug.train.losses import create_loss
from segaug.train.models import create_model, resolve_device

DEMO = [
    ("DeepLabV3+ resnet18", {"arch": "DeepLabV3Plus", "encoder": "resnet18"}),
    ("DeepLabV3+ mobilenet_v2", {"arch": "DeepLabV3Plus", "encoder": "mobilenet_v2"}),
    ("PSPNet resnet18", {"arch": "PSPNet", "encoder": "resnet18"}),
]
BIG = [
    ("DeepLabV3+ resnet50", {"arch": "DeepLabV3Plus", "encoder": "resnet50"}),
    ("PSPNet resnet50", {"arch": "PSPNet", "encoder": "resnet50"}),
]


def step_time(cfg, num_classes, batch, crop, steps, device, warmup=2):
    model = create_model({**cfg, "encoder_weights": None}, num_classes).to(device).train()
    loss_fn = create_loss("ce", num_classes).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, crop, crop, generator=g).to(device)
    y = torch.randint(0, num_classes, (batch, crop, crop), generator=g).to(device)
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return float(np.median(times))


def e2e_time(cfg, num_classes, batch, crop, steps, threads):
    """Seconds per step of the whole train() (Lightning, data pipeline, one validation)."""
    import logging
    import tempfile
    from pathlib import Path

    from segaug.data.canonical import ClassTable, samples, voc_palette, write_image, write_label
    from segaug.train.loop import train

    logging.disable(logging.INFO)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rng = np.random.default_rng(0)
        for i in range(16):
            lab = rng.integers(0, num_classes, (4, 4)).repeat(30, 0).repeat(40, 1).astype(np.uint8)
            write_image(root / "images" / f"{i}.png", rng.integers(0, 256, (120, 160, 3), dtype=np.uint8))
            write_label(root / "labels" / f"{i}.png", lab)
        table = ClassTable(tuple(f"c{k}" for k in range(num_classes)), tuple(voc_palette(num_classes)))
        tr, va = samples(root, [str(i) for i in range(14)]), samples(root, ["14", "15"])
        tcfg = {
            "steps": steps,
            "val_interval": steps,
            "batch_size": batch,
            "crop_size": [crop, crop],
            "base_size": [160, 120],
            "threads": threads,
            "num_workers": 0,
        }
        t0 = time.perf_counter()
        train(
            tr,
            va,
            table,
            {**cfg, "encoder_weights": None},
            tcfg,
            {"name": "ce"},
            0,
            root / "m.pt",
            root / "c.csv",
            root / "state",
            device="cpu",
        )
        return (time.perf_counter() - t0) / steps


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=96)
    ap.add_argument("--classes", type=int, default=7)
    ap.add_argument("--big", action="store_true", help="also R50 models at 512 crop, batch 2")
    ap.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--e2e", action="store_true", help="also the whole train() loop (Lightning + data pipeline) on CPU")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} thread(s)")
    runs = [(n, c, args.batch, args.crop) for n, c in DEMO]
    if args.big:
        runs += [(n, c, 2, 512) for n, c in BIG]
    for name, cfg, batch, crop in runs:
        s = step_time(cfg, args.classes, batch, crop, args.steps, device)
        print(f"{name:26s} batch {batch} crop {crop}: {s:.3f} s/step, {batch / s:.1f} images/s")
    if args.e2e:
        for name, cfg in DEMO:
            s = e2e_time(cfg, args.classes, args.batch, args.crop, 10, args.threads)
            print(
                f"train() {name:18s} batch {args.batch} crop {args.crop}: {s:.3f} s/step "
                f"(10 steps incl. startup, data, one validation)"
            )


if __name__ == "__main__":
    main()
