"""Training: :func:`train` runs the backend of the model's family (segaug.train.models); the
smp / Mask2Former backend, :func:`train_lightning`, is a Lightning Trainer with a deterministic
stream, epoch-end checkpoints and exact resume (what it shares with the mmseg backend is in
:mod:`segaug.train.run`).

A Lightning "epoch" here is ``val_interval`` optimizer steps; each ends with a validation pass
over the whole val set (one point of the training curve) and ``state_dir/last.ckpt``. When
``state_dir/last.ckpt`` exists, :func:`train` resumes from it. Because batch ``k`` is a pure
function of (seed, k) (see :mod:`segaug.train.data`), dropout is re-seeded from (seed, step)
and the checkpoint holds model, optimizer (momentum), scheduler, AMP scaler, loop counters and
the curve so far, a resumed run ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

from segaug.data.canonical import ClassTable, Sample
from segaug.errors import SegaugError
from segaug.train import tracking
from segaug.train.models import model_family
from segaug.train.run import (  # noqa: F401  (TRAIN_DEFAULTS, MODEL_FORMAT: re-exported)
    MODEL_FORMAT,
    TRAIN_DEFAULTS,
    RunSetup,
    check_resume,
    finish_run,
    setup_run,
)

log = logging.getLogger("segaug.train")


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
    logger: str = "tensorboard",
) -> dict:
    """Train a model; resume from the checkpoint in ``state_dir`` if present; write the model
    file and the curve. The model's family (segaug.train.models) names its backend: Lightning
    (:func:`train_lightning`) or mmengine (:func:`segaug.train.mmseg_backend.train`), same
    arguments and outputs.

    Once the model file is written the checkpoint has done its job and is removed (unless
    ``keep_state``), so a forced rerun trains from scratch instead of re-exporting old state
    (which would hide a code change). ``callbacks``: extra Lightning callbacks (tests use one to
    simulate a kill). ``logger``: what watches the run (segaug.train.tracking: TensorBoard event
    files beside the curve, optionally W&B). Returns ``{"steps", "best", "history", "resumed_from"}``.
    """
    backend_train = model_family(model_cfg).train_function()
    kw = {"callbacks": callbacks} if callbacks else {}
    return backend_train(
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
        logger=logger,
        **kw,
    )


def train_lightning(
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
    logger: str = "tensorboard",
) -> dict:
    """The Lightning backend of :func:`train` (smp models, Mask2Former)."""
    import lightning as L

    _single_lightning_log()
    run = setup_run(train_samples, val_samples, class_table, model_cfg, train_cfg, loss_cfg, seed, state_dir, device)
    ckpt_path = check_resume(run.state_dir / "last.ckpt", run.fingerprint)
    L.seed_everything(int(seed), workers=False, verbose=False)  # model initialisation
    module = _module(run, model_cfg, class_table, seed)
    train_loader, val_loader = _loaders(run, train_samples, val_samples, seed, lambda: module.global_step)
    loggers = tracking.lightning_loggers(logger, Path(out_curve).parent, run_info)  # tb/ beside curve.csv
    trainer = _trainer(run, callbacks, loggers)
    _fit(run, trainer, module, train_loader, val_loader, ckpt_path)
    tracking.close_lightning_loggers(loggers)
    history = list(module.history)
    best = finish_run(
        run,
        module.model,
        history,
        out_model,
        out_curve,
        model_cfg=model_cfg,
        class_table=class_table,
        run_info=run_info,
        seed=seed,
    )
    if not keep_state:
        _remove_state(run.state_dir)
    steps = run.cfg["steps"]
    return {"steps": steps, "best": best, "history": history, "resumed_from": str(ckpt_path) if ckpt_path else None}


def _module(run: RunSetup, model_cfg: dict, class_table: ClassTable, seed: int):
    from segaug.train.module import SegModule

    cfg = run.cfg
    optim_cfg = {
        k: cfg[k] for k in ("lr", "momentum", "weight_decay", "poly_power", "min_lr", "optimizer", "backbone_lr_mult")
    }
    module_loss = {k: v for k, v in run.loss_cfg.items() if k != "class_weights_mode"}
    return SegModule(
        model_cfg,
        run.num_classes,
        class_table.names,
        module_loss,
        {**optim_cfg, "max_steps": cfg["steps"]},
        seed=int(seed),
        fingerprint=run.fingerprint,
        perf={k: cfg[k] for k in ("channels_last", "compile")},
    )


def _loaders(run: RunSetup, train_samples, val_samples, seed: int, global_step):
    """The training stream and the validation loader.

    Workers are forked (PyTorch's default; DataLoader gives each one torch thread). They must
    not call cv2.setNumThreads: after the parent has used OpenCV's thread pool that call hangs
    in a forked child (seen with opencv 5.0 when pool/paste code ran first)."""
    from torch.utils.data import DataLoader

    from segaug.train.data import SegDataset, StreamSampler

    cfg, nc = run.cfg, run.num_classes
    nw = cfg["num_workers"]
    loader_kw = dict(num_workers=nw, persistent_workers=nw > 0, pin_memory=run.device == "cuda")
    train_loader = DataLoader(
        SegDataset(train_samples, nc, run.train_transform, seed=int(seed)),
        batch_size=cfg["batch_size"],
        sampler=StreamSampler(cfg["val_interval"], cfg["batch_size"], global_step),
        drop_last=True,
        **loader_kw,
    )
    val_loader = DataLoader(SegDataset(val_samples, nc, run.val_transform), batch_size=1, **loader_kw)
    return train_loader, val_loader


def _trainer(run: RunSetup, callbacks: Sequence, loggers: list):
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.plugins.environments import SLURMEnvironment

    cfg = run.cfg
    steps, val_interval = cfg["steps"], cfg["val_interval"]
    checkpoint = ModelCheckpoint(
        dirpath=run.state_dir,
        filename="last",
        monitor=None,
        save_top_k=1,
        every_n_epochs=1,
        save_on_train_epoch_end=True,
        enable_version_counter=False,
    )
    log_every = max(1, min(50, val_interval // 4))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*The `srun` command")
        # Snakemake decides about reruns: no Lightning auto-requeue of SLURM jobs
        plugins = [SLURMEnvironment(auto_requeue=False)] if SLURMEnvironment.detect() else None
        return L.Trainer(
            accelerator="gpu" if run.device == "cuda" else "cpu",
            devices=1,
            precision=_precision(cfg["amp"], run.device),
            gradient_clip_val=cfg["grad_clip"],  # None: no clipping (the Trainer's default)
            gradient_clip_algorithm="norm" if cfg["grad_clip"] else None,
            max_epochs=-1,  # max_steps alone decides; epoch counters are not trusted on resume
            max_steps=steps,
            limit_train_batches=val_interval,
            check_val_every_n_epoch=1,
            num_sanity_val_steps=0,
            callbacks=[
                checkpoint,
                _progress_callback(steps, log_every),
                *tracking.lightning_callbacks(loggers, log_every),
                *callbacks,
            ],
            logger=loggers or False,
            log_every_n_steps=log_every,
            enable_progress_bar=False,
            enable_model_summary=True,
            default_root_dir=run.state_dir,
            deterministic="warn",
            benchmark=False,
            use_distributed_sampler=False,
            plugins=plugins,
        )


def _fit(run: RunSetup, trainer, module, train_loader, val_loader, ckpt_path) -> None:
    steps = run.cfg["steps"]
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
        t0 = time.perf_counter()
        trainer.fit(module, train_loader, val_loader, ckpt_path=ckpt_path)
    if trainer.global_step != steps:
        raise SegaugError(
            f"training stopped at step {trainer.global_step} of {steps}; run it again to resume "
            f"from {run.state_dir / 'last.ckpt'}"
        )
    log.info("trained %d steps in %.1f s", steps, time.perf_counter() - t0)


def _remove_state(state_dir: Path) -> None:
    (state_dir / "last.ckpt").unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # not empty: a .stale checkpoint stays for the user
        state_dir.rmdir()
