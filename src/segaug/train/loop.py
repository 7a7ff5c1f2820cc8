"""Training with a Lightning Trainer: deterministic stream, epoch-end checkpoints, exact resume.

A Lightning "epoch" here is ``val_interval`` optimizer steps; each ends with a validation pass
over the whole val set (one point of the training curve) and ``state_dir/last.ckpt``. When
``state_dir/last.ckpt`` exists, :func:`train` resumes from it. Because batch ``k`` is a pure
function of (seed, k) (see :mod:`segaug.train.data`), dropout is re-seeded from (seed, step)
and the checkpoint holds model, optimizer (momentum), scheduler, AMP scaler, loop counters and
the curve so far, a resumed run ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Sequence
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


def _fingerprint(model_cfg, class_table, cfg, loss_cfg, seed, train_samples, val_samples) -> dict:
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


def _check_resume(ckpt: Path, fingerprint: dict) -> Path | None:
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


def _precision(amp, device: str) -> str:
    if not amp:
        return "32-true"
    if device != "cuda":
        log.info("amp requested but training on CPU: using 32-bit precision")
        return "32-true"
    return "bf16-mixed" if amp == "bf16" else "16-mixed"


def _single_lightning_log() -> None:
    """``import lightning`` adds its own console handler *and* propagates to the root logger,
    so with logging configured (segaug.cli.setup_logging) each Lightning line would appear
    twice. Keep only the root's handler then."""
    lg = logging.getLogger("lightning")
    if logging.getLogger().handlers:
        for h in list(lg.handlers):
            if isinstance(h, logging.StreamHandler):
                lg.removeHandler(h)


def _progress_callback(steps: int, log_every: int):
    import lightning as L

    class ProgressLog(L.Callback):
        """One log line every ``log_every`` steps (log files, not a terminal progress bar)."""

        def __init__(self):
            self.t0 = None
            self.losses = []

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if self.t0 is None:
                self.t0, self.k0 = time.perf_counter(), trainer.global_step

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            loss = outputs["loss"] if isinstance(outputs, dict) else outputs
            self.losses.append(loss.detach())  # no host sync until a line is logged
            k = trainer.global_step
            if k % log_every == 0 or k == steps:
                dt = (time.perf_counter() - self.t0) / max(k - self.k0, 1)
                mean = float(torch.stack(self.losses).float().mean())
                log.info("step %d/%d: loss %.4f, lr %.3g, %.3f s/step", k, steps, mean, pl_module._lr, dt)
                self.losses = []
                self.t0, self.k0 = time.perf_counter(), k

    return ProgressLog()


def train(
    train_samples: Sequence[Sample],
    val_samples: Sequence[Sample],
    class_table: ClassTable,
    model_cfg: dict,
    train_cfg: dict,
    loss_cfg: dict | None,
    seed: int,
    out_model: str | Path,
    out_curve: str | Path,
    state_dir: str | Path,
    device: str = "auto",
    run_info: dict | None = None,
    callbacks: Sequence = (),
    keep_state: bool = False,
) -> dict:
    """Train a model; resume from ``state_dir/last.ckpt`` if present; write model and curve.

    Once the model file is written the checkpoint has done its job and is removed (unless
    ``keep_state``), so a forced rerun trains from scratch instead of re-exporting old state
    (which would hide a code change).

    A model config with ``backend: mmseg`` is trained by :func:`segaug.train.mmseg_backend.train`
    (mmengine's Runner) instead, with the same outputs.

    ``callbacks`` are extra Lightning callbacks (tests use one to simulate a kill). Returns a
    summary dict ``{"steps", "best", "history", "resumed_from"}``.
    """
    from segaug.train import mmseg_backend

    if mmseg_backend.is_mmseg(model_cfg):  # mmengine's Runner, same artifacts (no Lightning)
        return mmseg_backend.train(
            train_samples,
            val_samples,
            class_table,
            model_cfg,
            train_cfg,
            loss_cfg,
            seed,
            out_model,
            out_curve,
            state_dir,
            device=device,
            run_info=run_info,
            keep_state=keep_state,
        )
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.plugins.environments import SLURMEnvironment
    from torch.utils.data import DataLoader

    from segaug.train.data import SegDataset, StreamSampler
    from segaug.train.models import resolve_device
    from segaug.train.module import SegModule
    from segaug.train.transforms import TrainTransform, ValTransform

    _single_lightning_log()
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
    steps, val_interval, batch = cfg["steps"], cfg["val_interval"], cfg["batch_size"]

    train_tf = TrainTransform(
        crop_size=cfg["crop_size"],
        base_size=cfg["base_size"],
        ratio_range=cfg["ratio_range"],
        cat_max_ratio=cfg["cat_max_ratio"],
        flip_prob=cfg["flip_prob"],
        photometric=cfg["photometric"],
    )
    val_tf = ValTransform(cfg["test_scale"])

    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    fingerprint = _fingerprint(model_cfg, class_table, cfg, loss_cfg, seed, train_samples, val_samples)
    ckpt_path = _check_resume(state_dir / "last.ckpt", fingerprint)

    L.seed_everything(int(seed), workers=False, verbose=False)  # model initialisation
    optim_cfg = {
        k: cfg[k] for k in ("lr", "momentum", "weight_decay", "poly_power", "min_lr", "optimizer", "backbone_lr_mult")
    }
    module_loss = {k: v for k, v in loss_cfg.items() if k != "class_weights_mode"}
    module = SegModule(
        model_cfg,
        num_classes,
        class_table.names,
        module_loss,
        {**optim_cfg, "max_steps": steps},
        seed=int(seed),
        fingerprint=fingerprint,
        perf={k: cfg[k] for k in ("channels_last", "compile")},
    )

    # Workers are forked (PyTorch's default; DataLoader gives each one torch thread). They must
    # not call cv2.setNumThreads: after the parent has used OpenCV's thread pool that call
    # hangs in a forked child (seen with opencv 5.0 when pool/paste code ran first).
    nw = cfg["num_workers"]
    loader_kw = dict(num_workers=nw, persistent_workers=nw > 0, pin_memory=device == "cuda")
    train_loader = DataLoader(
        SegDataset(train_samples, num_classes, train_tf, seed=int(seed)),
        batch_size=batch,
        sampler=StreamSampler(val_interval, batch, lambda: module.global_step),
        drop_last=True,
        **loader_kw,
    )
    val_loader = DataLoader(SegDataset(val_samples, num_classes, val_tf), batch_size=1, **loader_kw)

    checkpoint = ModelCheckpoint(
        dirpath=state_dir,
        filename="last",
        monitor=None,
        save_top_k=1,
        every_n_epochs=1,
        save_on_train_epoch_end=True,
        enable_version_counter=False,
    )
    log_every = max(1, min(50, val_interval // 4))
    with warnings.catch_warnings():
        # expected here: few workers in tests, srun present but Snakemake owns the job, the
        # state dir holding the checkpoint we resume from, a Lightning-internal deprecation
        for msg in (
            "does not have many workers",
            "The `srun` command",
            "Checkpoint directory",
            "`isinstance.treespec, LeafSpec.`",
        ):
            warnings.filterwarnings("ignore", message=f".*{msg}")
        # Snakemake decides about reruns: no Lightning auto-requeue of SLURM jobs
        plugins = [SLURMEnvironment(auto_requeue=False)] if SLURMEnvironment.detect() else None
        trainer = L.Trainer(
            accelerator="gpu" if device == "cuda" else "cpu",
            devices=1,
            precision=_precision(cfg["amp"], device),
            gradient_clip_val=cfg["grad_clip"],  # None: no clipping (the Trainer's default)
            gradient_clip_algorithm="norm" if cfg["grad_clip"] else None,
            max_epochs=-1,  # max_steps alone decides; epoch counters are not trusted on resume
            max_steps=steps,
            limit_train_batches=val_interval,
            check_val_every_n_epoch=1,
            num_sanity_val_steps=0,
            callbacks=[checkpoint, _progress_callback(steps, log_every), *callbacks],
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=True,
            default_root_dir=state_dir,
            deterministic="warn",
            benchmark=False,
            use_distributed_sampler=False,
            plugins=plugins,
        )
        t0 = time.perf_counter()
        trainer.fit(module, train_loader, val_loader, ckpt_path=ckpt_path)
    if trainer.global_step != steps:
        raise SegaugError(
            f"training stopped at step {trainer.global_step} of {steps}; run it again to resume "
            f"from {state_dir / 'last.ckpt'}"
        )
    log.info("trained %d steps in %.1f s", steps, time.perf_counter() - t0)

    history = list(module.history)
    best = save_model_file(
        out_model,
        module.model,
        history,
        model_cfg=model_cfg,
        num_classes=num_classes,
        class_table=class_table,
        run_info=run_info,
        steps=steps,
        seed=seed,
        train_cfg=cfg,
        loss_cfg=loss_cfg,
    )
    write_text(out_curve, curve_csv(history))
    if not keep_state:
        (state_dir / "last.ckpt").unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # not empty: a .stale checkpoint stays for the user
            state_dir.rmdir()
    return {"steps": steps, "best": best, "history": history, "resumed_from": str(ckpt_path) if ckpt_path else None}


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
