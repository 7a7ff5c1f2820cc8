#!/usr/bin/env python
"""Seconds per training step of the paper models on each backend, and their parameter counts.

One step = forward + loss (+ the auxiliary head's) + backward + optimizer step on a random batch
at the paper's crop, random initialisation (no downloads). Run it in each backend's env:

    python benchmarks/bench_backends.py --backend smp                    # envs/train.yaml / .venv
    .venv-mmseg/bin/python benchmarks/bench_backends.py --backend mmseg  # envs/mmseg.yaml

Defaults: crop 512x512, batch 2 (mmseg's recipe is 4 per GPU), 1 thread, CPU, 1 warm-up step,
2 timed steps, 21 classes (VOC).
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]


def paper_models(backend):
    models = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["models"]
    names = ["deeplabv3plus_r50", "pspnet_r50", "mask2former_r50"]
    if backend == "mmseg":
        names = [n + "_mmseg" for n in names]
    out = {}
    for n in names:
        cfg = {k: v for k, v in models[n].items() if k != "train"}
        for k in ("encoder_weights", "backbone_weights"):
            if k in cfg:
                cfg[k] = None
        out[n] = (cfg, models[n].get("train", {}))
    return out


def nparams(m):
    return sum(p.numel() for p in m.parameters())


def smp_step_fn(cfg, num_classes):
    from segaug.train.losses import create_loss
    from segaug.train.models import aux_loss, create_model, has_own_loss

    model = create_model(cfg, num_classes).train()
    ce = create_loss("ce", num_classes)

    def loss_fn(x, y):
        if has_own_loss(cfg):
            return model.loss(x, y)
        out = model(x)
        return aux_loss(ce, out, y, model.aux_weight) if isinstance(out, tuple) else ce(out, y)

    parts = {"total": nparams(model)}
    if hasattr(model, "encoder"):
        parts["encoder"] = nparams(model.encoder)
    if hasattr(model, "aux_head"):
        parts["aux_head"] = nparams(model.aux_head)
    return model, loss_fn, parts


def mmseg_step_fn(cfg, num_classes, crop):
    from segaug.train import mmseg_backend as mb

    m = mb.mmseg_config(cfg, num_classes, None, crop).model.to_dict()
    model = mb.build_segmentor(m, init_weights=True).train()

    def loss_fn(x, y):
        data = model.data_preprocessor(mb.collate([(a, b, i) for i, (a, b) in enumerate(zip(x, y))]), True)
        losses = model(**data, mode="loss")
        return sum(v for k, v in losses.items() if "loss" in k)

    parts = {
        k: nparams(getattr(model, k))
        for k in ("backbone", "decode_head", "auxiliary_head")
        if getattr(model, k, None) is not None
    }
    parts["total"] = nparams(model)
    return model, loss_fn, parts


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--backend", choices=["smp", "mmseg"], required=True)
    ap.add_argument("--crop", type=int, default=512)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--only", help="comma-separated model names")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    nc, crop = 21, (args.crop, args.crop)
    results = {}
    for name, (cfg, train) in paper_models(args.backend).items():
        if args.only and name not in args.only.split(","):
            continue
        torch.manual_seed(0)
        if args.backend == "mmseg":
            model, loss_fn, parts = mmseg_step_fn(cfg, nc, crop)
        else:
            model, loss_fn, parts = smp_step_fn(cfg, nc)
        model.to(args.device)
        if train.get("optimizer") == "adamw":
            opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
        else:
            opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        x = torch.randn(args.batch, 3, *crop, device=args.device)
        y = torch.randint(0, nc, (args.batch, *crop), device=args.device)
        times = []
        for _ in range(1 + args.steps):
            if args.device == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss_fn(x, y).backward()
            opt.step()
            if args.device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
        results[name] = {"params": parts, "s_per_step": sum(times[1:]) / args.steps}
        print(
            f"{args.backend} {name}: {results[name]['s_per_step']:.2f} s/step "
            f"(batch {args.batch}, crop {args.crop}, {args.threads} thread(s), {args.device}); "
            f"params {parts}",
            flush=True,
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
