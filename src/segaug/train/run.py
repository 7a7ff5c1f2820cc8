"""What both training backends share (smp on Lightning, :mod:`segaug.train.loop`; mmseg on
mmengine, :mod:`segaug.train.mmseg_backend`): the training defaults and their check, the loss
config, the run's fingerprint and the resume check, the set-up every run starts with, and the
model file and curve every run ends with. Neither backend imports the other.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from segaug.data.canonical import ClassTable, Sample, class_pixel_counts, read_label
from segaug.errors import SegaugError
from segaug.io import atomic_path, write_text
from segaug.train.losses import LOSSES, class_weights_from_counts, create_loss

log = logging.getLogger("segaug.train")

MODEL_FORMAT = "segaug-model/1"

TRAIN_DEFAULTS = {
    "steps": 20000,
    "batch_size": 16,
    "val_interval": 2000,
    "crop_size": [512, 512],
    "base_size": [2048, 512],
    "ratio_range": [0.5, 2.0],
    "cat_max_ratio": 0.75,
    "flip_prob": 0.5,
    "photometric": True,
    "test_scale": None,
    "lr": 0.01,
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "poly_power": 0.9,
    "min_lr": 1e-4,
    "amp": False,
    "num_workers": 4,
    "threads": None,
    # MMSeg's Mask2Former recipe sets optimizer: adamw, lr: 1e-4, weight_decay: 0.05,
    # grad_clip: 0.01, min_lr: 0 (backbone_lr_mult applies to models with param_groups only)
    "optimizer": "sgd",
    "grad_clip": None,  # max L2 norm of all gradients (Lightning gradient_clip_val); None = off
    "backbone_lr_mult": 0.1,
    # speed options, off by default (see segaug.train.module): NHWC memory layout and
    # torch.compile of the forward; for GPUs (on a CPU they gain little, compile costs minutes)
    "channels_last": False,
    "compile": False,
}
# keys that change how fast a run goes but not what it computes
NON_SEMANTIC_KEYS = ("num_workers", "threads")
# keys added after runs were already checkpointed: left out of the resume fingerprint while at
# their default, so a run checkpointed before they existed still resumes (channels_last and
# compile change float rounding, so a run resumes only with the same setting)
LATER_KEYS = ("optimizer", "grad_clip", "backbone_lr_mult", "channels_last", "compile")


def resolve_train_cfg(train_cfg: dict | None) -> dict:
    """Defaults + given keys; unknown keys and bad values are a SegaugError naming them."""
    train_cfg = dict(train_cfg or {})
    unknown = sorted(set(train_cfg) - set(TRAIN_DEFAULTS))
    if unknown:
        raise SegaugError(f"train config: unknown key(s) {unknown}; known keys: {', '.join(TRAIN_DEFAULTS)}")
    cfg = {**TRAIN_DEFAULTS, **train_cfg}
    for k in ("steps", "batch_size", "val_interval"):
        if not isinstance(cfg[k], int) or cfg[k] < 1:
            raise SegaugError(f"train config: {k} must be a positive integer, got {cfg[k]!r}")
    if cfg["steps"] % cfg["val_interval"]:
        raise SegaugError(
            f"train config: steps ({cfg['steps']}) must be a multiple of val_interval "
            f"({cfg['val_interval']}): validation and checkpoints happen every val_interval steps"
        )
    if cfg["batch_size"] < 2:
        raise SegaugError("train config: batch_size must be >= 2 (BatchNorm needs two samples)")
    if not cfg["lr"] > 0 or not 0 <= cfg["min_lr"] <= cfg["lr"]:
        raise SegaugError(f"train config: need lr > 0 and 0 <= min_lr <= lr, got {cfg['lr']}, {cfg['min_lr']}")
    if cfg["amp"] not in (True, False, "fp16", "bf16"):
        raise SegaugError(f"train config: amp must be true, false, 'fp16' or 'bf16', got {cfg['amp']!r}")
    if not isinstance(cfg["num_workers"], int) or cfg["num_workers"] < 0:
        raise SegaugError(f"train config: num_workers must be an integer >= 0, got {cfg['num_workers']!r}")
    if cfg["optimizer"] not in ("sgd", "adamw"):
        raise SegaugError(f"train config: optimizer must be sgd or adamw, got {cfg['optimizer']!r}")
    clip = cfg["grad_clip"]
    if clip is not None and (isinstance(clip, bool) or not isinstance(clip, (int, float)) or clip <= 0):
        raise SegaugError(f"train config: grad_clip must be a number > 0 or null, got {clip!r}")
    for k in ("channels_last", "compile"):
        if not isinstance(cfg[k], bool):
            raise SegaugError(f"train config: {k} must be true or false, got {cfg[k]!r}")
    mult = cfg["backbone_lr_mult"]
    if isinstance(mult, bool) or not isinstance(mult, (int, float)) or mult < 0:
        raise SegaugError(f"train config: backbone_lr_mult must be a number >= 0, got {mult!r}")
    return cfg


def resolve_loss_cfg(loss_cfg: dict | None, train_samples: Sequence[Sample], num_classes: int) -> dict:
    """Loss config with class weights as numbers (a mode 'inverse'/'median' is counted here)."""
    cfg = dict(loss_cfg or {"name": "ce"})
    cfg.setdefault("name", "ce")
    if cfg["name"] not in LOSSES:
        raise SegaugError(f"loss config: unknown name {cfg['name']!r}; choose one of {', '.join(LOSSES)}")
    weights = cfg.get("class_weights")
    if isinstance(weights, str):
        log.info("counting class pixels over %d training labels for %s class weights", len(train_samples), weights)
        counts = class_pixel_counts((read_label(s.label) for s in train_samples), num_classes)
        cfg["class_weights"] = [float(w) for w in class_weights_from_counts(counts, weights)]
        cfg["class_weights_mode"] = weights
        log.info("class weights (%s): %s", weights, np.round(cfg["class_weights"], 3).tolist())
    elif weights is not None:
        cfg["class_weights"] = [float(w) for w in weights]
    # fail early on a bad loss config, before any data or model is touched
    kw = {k: v for k, v in cfg.items() if k not in ("name", "class_weights", "class_weights_mode")}
    create_loss(cfg["name"], num_classes, class_weights=cfg.get("class_weights"), **kw)
    return cfg


def _digest(samples: Sequence[Sample]) -> str:
    h = hashlib.sha256()
    for s in samples:
        h.update(f"{s.id}\t{Path(s.image).parent.parent.name}/{Path(s.image).name}\n".encode())
    return f"{len(samples)}:{h.hexdigest()[:16]}"


def fingerprint(model_cfg, class_table, cfg, loss_cfg, seed, train_samples, val_samples) -> dict:
    """What makes a run this run: a checkpoint resumes only under the same fingerprint."""
    return json.loads(
        json.dumps(
            {
                "format": MODEL_FORMAT,
                "model": model_cfg,
                "classes": list(class_table.names),
                "train": {
                    k: v
                    for k, v in cfg.items()
                    if k not in NON_SEMANTIC_KEYS and not (k in LATER_KEYS and v == TRAIN_DEFAULTS[k])
                },
                "loss": {k: v for k, v in loss_cfg.items() if k != "class_weights_mode"},
                "seed": int(seed),
                "train_samples": _digest(train_samples),
                "val_samples": _digest(val_samples),
            }
        )
    )


def check_resume(ckpt: Path, fingerprint: dict) -> Path | None:
    """The checkpoint to resume from, or None (a stale one of another run is set aside)."""
    if not ckpt.exists():
        return None
    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
    except Exception as e:  # a corrupt checkpoint: start over rather than fail forever
        log.warning("%s: cannot read checkpoint (%s); starting from scratch", ckpt, e)
        os.replace(ckpt, ckpt.with_suffix(".corrupt"))
        return None
    old = (state.get("segaug") or {}).get("fingerprint")
    if old != fingerprint:
        diff = sorted(k for k in set(fingerprint) | set(old or {}) if (old or {}).get(k) != fingerprint.get(k))
        log.warning(
            "%s belongs to a different run (differs in %s); moving it to %s and starting from scratch",
            ckpt,
            diff,
            ckpt.with_suffix(".stale"),
        )
        os.replace(ckpt, ckpt.with_suffix(".stale"))
        return None
    log.info(
        "resuming from %s at step %d (epoch %d)",
        ckpt,
        state.get("global_step", -1),
        state.get("epoch", -1),
    )
    return ckpt


@dataclass
class RunSetup:
    """What every run starts with (:func:`setup_run`)."""

    cfg: dict  # the training config with defaults, checked
    device: str
    num_classes: int
    loss_cfg: dict  # class weights as numbers
    state_dir: Path
    fingerprint: dict
    train_transform: object
    val_transform: object


def setup_run(
    train_samples, val_samples, class_table: ClassTable, model_cfg, train_cfg, loss_cfg, seed, state_dir, device
) -> RunSetup:
    """The first steps of every run: check the configs and the sets, pick the device and
    threads, resolve the loss, make the state directory and the fingerprint, build the
    transforms."""
    from segaug.device import resolve_device
    from segaug.train.transforms import TrainTransform, ValTransform

    cfg = resolve_train_cfg(train_cfg)
    if not train_samples:
        raise SegaugError("training set is empty")
    if not val_samples:
        raise SegaugError("validation set is empty")
    device = resolve_device(device)
    if cfg["threads"]:
        torch.set_num_threads(int(cfg["threads"]))
    num_classes = class_table.num_classes
    loss_cfg = resolve_loss_cfg(loss_cfg, train_samples, num_classes)
    train_tf = TrainTransform(
        crop_size=cfg["crop_size"],
        base_size=cfg["base_size"],
        ratio_range=cfg["ratio_range"],
        cat_max_ratio=cfg["cat_max_ratio"],
        flip_prob=cfg["flip_prob"],
        photometric=cfg["photometric"],
    )
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    fp = fingerprint(model_cfg, class_table, cfg, loss_cfg, seed, train_samples, val_samples)
    return RunSetup(cfg, device, num_classes, loss_cfg, state_dir, fp, train_tf, ValTransform(cfg["test_scale"]))


def finish_run(
    run: RunSetup, model, history, out_model, out_curve, *, model_cfg, class_table, run_info, seed, extra=None
) -> dict:
    """The last steps of every run: the model file and the curve; returns the best step."""
    best = save_model_file(
        out_model,
        model,
        history,
        model_cfg=model_cfg,
        num_classes=run.num_classes,
        class_table=class_table,
        run_info=run_info,
        steps=run.cfg["steps"],
        seed=seed,
        train_cfg=run.cfg,
        loss_cfg=run.loss_cfg,
        extra=extra,
    )
    write_text(out_curve, curve_csv(history))
    return best


def save_model_file(
    out_model,
    model,
    history,
    *,
    model_cfg,
    num_classes,
    class_table,
    run_info,
    steps,
    seed,
    train_cfg,
    loss_cfg,
    extra=None,
) -> dict:
    """Write the model file both backends end with (weights, configs, run, curve history);
    ``extra``: backend fields after ``model_cfg``. Returns the best step {"step", "miou"}."""
    valid = [h for h in history if not np.isnan(h["val_miou"])]
    best = max(valid, key=lambda h: h["val_miou"]) if valid else None
    best = {"step": best["step"], "miou": best["val_miou"]} if best else {"step": None, "miou": None}
    state_dict = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    payload = {
        "format": MODEL_FORMAT,
        "model_cfg": dict(model_cfg),
        **(extra or {}),
        "num_classes": num_classes,
        "class_names": list(class_table.names),
        "state_dict": state_dict,
        "run": dict(run_info or {}),
        "steps": steps,
        "best": best,
        "seed": int(seed),
        "train_cfg": dict(train_cfg),
        "loss_cfg": dict(loss_cfg),
        "test_scale": train_cfg["test_scale"],
        # keys as the interned strings of the code: a history restored from a checkpoint then
        # pickles to the same bytes as one built in this process (pickle shares equal objects
        # by identity), so a resumed run's model file equals an uninterrupted run's
        "history": [{sys.intern(k): v for k, v in h.items()} for h in history],
    }
    with atomic_path(out_model) as tmp:
        torch.save(payload, tmp)
    return best


def curve_csv(history: Sequence[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["step", "val_miou", "val_pixel_acc", "lr"])
    for h in history:
        w.writerow([h["step"], f"{h['val_miou']:.6f}", f"{h['val_pixel_acc']:.6f}", f"{h['lr']:.6g}"])
    return buf.getvalue()
