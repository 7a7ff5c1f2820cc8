"""Runs you can watch: TensorBoard event files (and, optionally, Weights & Biases) for every
training, beside its ``curve.csv``.

Both backends write the same scalars into ``<run dir>/tb/`` (``tensorboard --logdir results/``):

* ``train/loss`` and ``train/lr`` every few steps (the smp backend; the mmseg backend writes
  mmengine's own ``loss``, ``lr``, per-head losses, ``time`` and ``memory`` at its log interval),
* ``val/miou``, ``val/pixel_acc`` and ``val/iou/<class>`` at every validation (every
  ``val_interval`` steps, the points of ``curve.csv``).

``logger`` (the config's top-level ``logger`` key): ``tensorboard`` (default), ``wandb``
(TensorBoard plus a W&B run named after the run's path; ``WANDB_MODE=offline`` writes it under
``<run dir>/wandb/`` for ``wandb sync``), ``none``. W&B is never required: with ``logger: wandb``
and no ``wandb`` package a training stops with one error line before it starts.

Tracking only observes: the model file and ``curve.csv`` are the same bytes with or without it.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

from segaug.errors import SegaugError

log = logging.getLogger("segaug.train")

LOGGERS = ("tensorboard", "wandb", "none")
TB_DIR = "tb"


def check_logger(logger: str | None) -> str:
    logger = logger or "tensorboard"
    if logger not in LOGGERS:
        raise SegaugError(f"logger: {logger!r} is not one of {', '.join(LOGGERS)}")
    if logger == "wandb":
        try:
            import wandb  # noqa: F401
        except ImportError:
            raise SegaugError(
                "logger: wandb needs the wandb package (pip install wandb==0.31.0, or `pip install "
                "segaug[wandb]`); or set logger: tensorboard"
            ) from None
    return logger


def run_name(run_info: dict | None, out_dir: Path) -> str:
    """A readable run name: dataset/split/model/trainset/loss/seedN, else the directory."""
    r = run_info or {}
    keys = ("dataset", "split", "model", "trainset", "loss")
    if all(k in r for k in keys) and "seed" in r:
        return "/".join(str(r[k]) for k in keys) + f"/seed{r['seed']}"
    return str(out_dir)


def _wandb_kwargs(out_dir: Path, name: str, run_info: dict | None) -> dict:
    return {
        "project": os.environ.get("WANDB_PROJECT", "segaug"),
        "name": name,
        "config": dict(run_info or {}),
        "dir": str(out_dir),
    }


# ------------------------------------------------------------------ smp backend (Lightning)
def lightning_loggers(logger: str | None, out_dir: str | Path, run_info: dict | None = None) -> list:
    """Lightning loggers for ``Trainer(logger=...)``: TensorBoard into ``out_dir/tb`` (+ W&B)."""
    logger, out_dir = check_logger(logger), Path(out_dir)
    if logger == "none":
        return []
    from lightning.pytorch.loggers import TensorBoardLogger

    out = [TensorBoardLogger(save_dir=str(out_dir), name=TB_DIR, version="", default_hp_metric=False)]
    if logger == "wandb":
        from lightning.pytorch.loggers import WandbLogger

        kw = _wandb_kwargs(out_dir, run_name(run_info, out_dir), run_info)
        out.append(WandbLogger(save_dir=kw.pop("dir"), **kw))
    return out


def lightning_callbacks(loggers: list, log_every: int) -> list:
    """The callback that writes the scalars above into ``loggers`` (none without loggers)."""
    if not loggers:
        return []
    import lightning as L
    import torch

    from segaug.metrics import scores

    class Tracking(L.Callback):
        def __init__(self):
            self.losses = []

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            loss = outputs["loss"] if isinstance(outputs, dict) else outputs
            self.losses.append(loss.detach())
            k = trainer.global_step
            if k % log_every == 0:
                mean = float(torch.stack(self.losses).float().mean())
                self.losses = []
                for lg in trainer.loggers:
                    lg.log_metrics({"train/loss": mean, "train/lr": float(pl_module._lr)}, step=k)

        def on_validation_epoch_end(self, trainer, pl_module):
            if trainer.sanity_checking:
                return
            sc = scores(pl_module._meter.conf, pl_module.class_names)
            for lg in trainer.loggers:
                lg.log_metrics(val_scalars(sc), step=trainer.global_step)

    return [Tracking()]


def close_lightning_loggers(loggers: list) -> None:
    """Flush the event files and end a W&B run (Lightning leaves it open)."""
    for lg in loggers:
        lg.finalize("success")
        if type(lg).__name__ == "WandbLogger":
            import wandb

            wandb.finish()


def val_scalars(sc: dict) -> dict:
    """``val/miou``, ``val/pixel_acc``, ``val/iou/<class>`` of a :func:`segaug.metrics.scores`
    result (NaN: a class absent from both prediction and labels, left out)."""
    out = {"val/miou": sc["miou"], "val/pixel_acc": sc["pixel_acc"]}
    out.update({f"val/iou/{name}": v for name, v in sc["iou"].items()})
    return {k: float(v) for k, v in out.items() if not math.isnan(v)}


# ------------------------------------------------------------------ mmseg backend (mmengine)
def mmengine_visualizer(logger: str | None, out_dir: str | Path, run_info: dict | None = None) -> dict | None:
    """``Runner(visualizer=...)``: mmengine's local backend (its default) plus its
    TensorboardVisBackend into ``out_dir/tb`` (+ WandbVisBackend); None: mmengine's default."""
    logger, out_dir = check_logger(logger), Path(out_dir)
    if logger == "none":
        return None
    backends = [dict(type="LocalVisBackend"), dict(type="TensorboardVisBackend", save_dir=str(out_dir / TB_DIR))]
    if logger == "wandb":
        kw = _wandb_kwargs(out_dir, run_name(run_info, out_dir), run_info)
        backends.append(dict(type="WandbVisBackend", save_dir=kw.pop("dir"), init_kwargs=kw))
    return dict(type="Visualizer", vis_backends=backends)


def mmengine_hooks(logger: str | None, seg_hook) -> list:
    """A hook that writes each validation of ``seg_hook`` (segaug's hook: its ``history`` and
    ``last_scores``) into the visualizer, after it validated and before the checkpoint."""
    if check_logger(logger) == "none":
        return []
    from mmengine.hooks import Hook

    class ValScalars(Hook):
        priority = "LOW"  # after segaug's hook (NORMAL), before CheckpointHook (VERY_LOW)

        def __init__(self):
            self.seen = None

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            h = seg_hook.history
            if not h or h[-1]["step"] == self.seen or getattr(seg_hook, "last_scores", None) is None:
                return
            self.seen = h[-1]["step"]
            runner.visualizer.add_scalars(val_scalars(seg_hook.last_scores), step=self.seen)

        def after_run(self, runner):
            if logger == "wandb":
                import wandb

                wandb.finish()

    return [ValScalars()]
