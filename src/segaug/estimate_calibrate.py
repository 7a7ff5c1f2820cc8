"""Calibration for `segaug estimate`: a few timed steps of each model a config trains and a few
images of each SDXL generator it uses, on this machine's GPU (or CPU), written to a JSON file
the estimate reads in place of its default figures.

    segaug calibrate --configfile config/config.yaml --out calibration.json      # on a GPU node
    segaug calibrate --configfile config/demo.yaml --tiny --out cal.json          # CPU, seconds

Weights do not change the cost: models are built with random weights (no download), at the
config's batch size and crop (``--tiny``: batch 2, crop 64, 2 diffusion steps at 64 px, tiny
random SDXL pipelines). Peak GPU memory is ``torch.cuda.max_memory_allocated`` of the steps.
SDXL generators load from the Hugging Face cache (``hf_home``, as the jobs do); one that is not
cached is skipped with the reason (its default figure stays in use).
"""

from __future__ import annotations

import datetime
import logging
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from segaug.io import write_text

log = logging.getLogger("segaug.calibrate")


def used_models(cfg: dict) -> list[str]:
    names = list(cfg["table1"]["models"])
    for section in ("ablations", "figures", "thesis"):
        m = (cfg.get(section) or {}).get("model") if isinstance(cfg.get(section), dict) else None
        if m and m not in names:
            names.append(m)
    return [m for m in names if m in cfg["models"]]


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def time_training(model_cfg: dict, train_cfg: dict, device: str, steps: int, images: int, tiny: bool) -> dict:
    """s/step of SGD steps at the recipe's batch and crop, s per val image, peak GPU memory."""
    import torch

    from segaug.train.models import aux_loss, create_model, has_own_loss

    cfg = {k: v for k, v in model_cfg.items() if k != "train"}
    for k in ("encoder_weights", "backbone_weights"):
        if k in cfg:
            cfg[k] = None
    batch, crop = int(train_cfg["batch_size"]), list(train_cfg["crop_size"])
    if tiny:
        batch, crop = 2, [64, 64]
    num_classes = 21
    torch.manual_seed(0)
    model = create_model(cfg, num_classes).to(device)
    params_m = sum(p.numel() for p in model.parameters()) / 1e6
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    ce = torch.nn.CrossEntropyLoss(ignore_index=255)
    amp = bool(train_cfg.get("amp")) and device == "cuda"
    own = has_own_loss(cfg)
    x = torch.randn(batch, 3, *crop, device=device)
    y = torch.randint(0, num_classes, (batch, *crop), device=device)
    scaler = torch.amp.GradScaler(device, enabled=amp)

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device, enabled=amp, dtype=torch.float16 if device == "cuda" else torch.bfloat16):
            if own:
                loss = model.loss(x, y)
            else:
                out = model(x)
                loss = aux_loss(ce, out, y, model.aux_weight) if isinstance(out, tuple) else ce(out, y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    model.train()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    step()  # warm-up (cudnn autotuning, allocator)
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    s_step = (time.perf_counter() - t0) / steps
    mem = torch.cuda.max_memory_allocated() / 1e9 if device == "cuda" else None
    # validation: whole image at the VOC test scale (500x375 -> 683x512, padded to a multiple
    # of 32 as predict_whole does), batch 1
    hw = (64, 96) if tiny else (512, 704)
    model.eval()
    xv = torch.randn(1, 3, *hw, device=device)
    with torch.no_grad(), torch.autocast(device, enabled=amp):
        model(xv)
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(images):
            model(xv)
        _sync(device)
    s_val = (time.perf_counter() - t0) / images
    return {
        "s_per_step": s_step,
        "batch_size": batch,
        "crop_size": crop,
        "amp": amp,
        "gpu_mem_gb": mem,
        "s_per_val_image": s_val,
        "val_size": list(hw),
        "params_m": round(params_m, 2),
        "steps_timed": steps,
    }


_TINY_KIND = {"sdxl_adapter": "sdxl-adapter", "sdxl_controlnet": "sdxl-controlnet", "sdxl_inpaint": "sdxl-inpaint"}


def time_generator(gen_cfg: dict, device: str, images: int, tiny: bool, workdir: Path) -> dict:
    """s per image (and pipeline load time) of one generator at its steps and resolution."""
    import torch

    from segaug.generative.pipelines import Generator, GenJob

    cfg = dict(gen_cfg)
    if tiny:
        from segaug.generative import tiny_sdxl

        kind = _TINY_KIND[cfg["pipeline"]]
        d = workdir / kind
        if not d.exists():
            tiny_sdxl.build(kind, d)
        cfg.update(base=str(d), vae=None, steps=2, resolution=64, dtype="float32", batch_size=1)
        if cfg["pipeline"] == "sdxl_adapter":
            cfg["adapter"] = str(d / "adapter")
        if cfg["pipeline"] == "sdxl_controlnet":
            cfg["controlnet"] = str(d / "controlnet")
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    gen = Generator(cfg, device=device)
    load_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    h, w = 375, 500
    image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    prior = (rng.random((h, w)) > 0.9).astype(np.uint8) * 255
    mask = rng.random((h, w)) > 0.5

    def job(k):
        if cfg["pipeline"] == "sdxl_inpaint":
            return GenJob(image, "a photo of a car on a road", k, mask=mask)
        return GenJob(image, "a photo of a car on a road", k, prior=prior)

    gen.generate([job(0)])  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    gen.generate([job(k + 1) for k in range(images)])
    _sync(device)
    s = (time.perf_counter() - t0) / images
    return {
        "s_per_image": s,
        "steps": int(cfg.get("steps", 30)),
        "resolution": int(cfg.get("resolution", 1024)),
        "load_s": load_s,
        "gpu_mem_gb": torch.cuda.max_memory_allocated() / 1e9 if device == "cuda" else None,
        "images_timed": images,
    }


def calibrate(cfg: dict, out: str | Path, device: str = "auto", steps: int = 5, images: int = 3, tiny: bool = False):
    """Time every trained model and every generator of ``cfg``; write ``out`` (JSON)."""
    import json
    import os

    import torch

    from segaug.device import resolve_device
    from segaug.estimate import config_variants, train_cfg_of

    device = resolve_device(device)
    if cfg.get("hf_home"):
        os.environ.setdefault("HF_HOME", str(Path(cfg["hf_home"]).resolve()))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    result = {
        "format": "segaug-calibration/1",
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "host": platform.node(),
        "device": device,
        "device_name": torch.cuda.get_device_name()
        if device == "cuda"
        else f"CPU ({platform.processor() or 'cpu'}, {torch.get_num_threads()} threads)",
        "tiny": tiny,
        "path": str(out),
        "train": {},
        "generate": {},
        "skipped": {},
    }
    for m in used_models(cfg):
        log.info("timing %d training steps of %s", steps, m)
        try:
            result["train"][m] = time_training(cfg["models"][m], train_cfg_of(cfg, m), device, steps, images, tiny)
            log.info("%s: %s", m, result["train"][m])
        except Exception as e:  # an mmseg-backend model outside its env, a missing package
            result["skipped"][m] = f"{type(e).__name__}: {e}"[:300]
            log.warning("%s not calibrated: %s", m, result["skipped"][m])
    gen = cfg.get("generative") or {}
    names = sorted({v["generator"] for v in config_variants(cfg).values()})
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            g = {**gen.get("generator_defaults", {}), **gen["generators"][name]}
            log.info("timing %d images of generator %s", images, name)
            try:
                result["generate"][name] = time_generator(g, device, images, tiny, Path(tmp))
                log.info("%s: %s", name, result["generate"][name])
            except Exception as e:  # not in the cache, no GPU memory for it, ...
                result["skipped"][f"generate {name}"] = f"{type(e).__name__}: {e}"[:300]
                log.warning("generator %s not calibrated: %s", name, result["skipped"][f"generate {name}"])
    write_text(out, json.dumps(result, indent=1) + "\n")
    return result


# ------------------------------------------------------------------ `segaug calibrate`
def add_arguments(ap) -> None:
    ap.description = "Writes the calibration file `segaug estimate` reads. Run it on the GPU type of your cluster."
    ap.add_argument("--configfile", required=True)
    ap.add_argument("--out", default="calibration.json")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--steps", type=int, default=5, help="timed training steps per model (after one warm-up)")
    ap.add_argument("--images", type=int, default=3, help="timed images per generator and val images per model")
    ap.add_argument("--tiny", action="store_true", help="batch 2, 64 px crops, tiny random SDXL: a CPU check")


def command(args) -> None:
    from segaug.estimate import load_config

    calibrate(load_config(args.configfile), args.out, args.device, args.steps, args.images, args.tiny)
    print(f"calibration written to {args.out}")
