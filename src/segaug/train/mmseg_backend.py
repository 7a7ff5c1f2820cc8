"""``backend: mmseg``: the paper's MMSegmentation configs trained by mmengine's Runner.

A model config with ``backend: mmseg`` (in ``models:``)::

    deeplabv3plus_r50_mmseg:
      arch: DeepLabV3Plus          # DeepLabV3Plus, PSPNet or Mask2Former
      backend: mmseg
      config: deeplabv3plus_r50-d8  # optional: a name of MMSEG_CONFIGS (the default for the arch),
                                    # an "mmseg::<dir>/<file>.py" or a config file path
      backbone_weights: imagenet    # the config's own ImageNet init (open-mmlab://resnet50_v1c,
                                    # torchvision://resnet50 for Mask2Former); null = random

builds the model of MMSegmentation's own config (``_base_`` inheritance as in mmseg's
``configs/``) with our number of classes, and trains it with mmengine's ``Runner`` on *our*
data: the same deterministic stream (:mod:`segaug.train.data`: batch ``k`` is a function of
(seed, k)), the same MMSegmentation VOC pipeline (:mod:`segaug.train.transforms`), crop,
schedule (``steps``, ``lr``, poly power, ``min_lr``), optimizer (SGD, or AdamW with the
config's parameter-wise rules for Mask2Former and ``backbone_lr_mult``), gradient clipping and
seed as the smp backend (:func:`segaug.train.loop.train`). The losses are the config's own
(cross-entropy, and the auxiliary FCN head's at 0.4; Mask2Former's matching losses); loss
``ce`` may carry ``class_weights`` and ``avg_non_ignore`` (set on every cross-entropy head),
other losses are an error.

Artifacts are those of the smp backend: the model file (``format`` segaug-model/1 with
``backend: mmseg``, the built model config ``mmseg_model`` and the state dict), ``curve.csv``
every ``val_interval`` steps, scored by our own whole-image inference and confusion matrix
(:func:`validate`; ``scripts/evaluate.py`` uses the same code, so both backends are scored
identically). Checkpoints are mmengine's (``state_dir/iter_K.pth``, every ``val_interval``),
with the curve and the run's fingerprint inside; a rerun resumes from the last one exactly
(the data stream restarts at the restored iteration; dropout is re-seeded from (seed, step)).
Training runs on one device: the configs' SyncBN layers run as BN (mmengine reverts them when
not distributed). Several GPUs (SyncBN under a distributed launcher) are not wired: the data
stream would have to be sharded across ranks.

mmseg is imported lazily (only this backend needs it; ``envs/mmseg.yaml``); with mmcv-lite the
stand-in of :mod:`segaug.train.mmcv_standin` replaces the compiled ops, which none of these
models calls on CPU.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from segaug.errors import SegaugError
from segaug.train.models import predict_whole
from segaug.train.run import RunSetup, check_resume, finish_run, setup_run

log = logging.getLogger("segaug.train")

# the paper's configs (mmseg 1.2.2 configs/): VOC 512x512 recipes for R50-D8; Mask2Former R50
# has no VOC config in mmseg, its ADE20K 512x512 one is the closest (crop 512)
MMSEG_CONFIGS = {
    "deeplabv3plus_r50-d8": "mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb4-20k_voc12aug-512x512.py",
    "pspnet_r50-d8": "mmseg::pspnet/pspnet_r50-d8_4xb4-20k_voc12aug-512x512.py",
    "mask2former_r50": "mmseg::mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py",
}
DEFAULT_CONFIG = {
    "deeplabv3plus": "deeplabv3plus_r50-d8",
    "pspnet": "pspnet_r50-d8",
    "mask2former": "mask2former_r50",
}
MODEL_KEYS = ("arch", "backend", "config", "backbone_weights")


def config_path(model_cfg: dict) -> str:
    """The mmseg config file a model config names (checked; no mmseg import)."""
    unknown = sorted(set(model_cfg) - set(MODEL_KEYS))
    if unknown:
        raise SegaugError(f"model config (backend: mmseg): unknown key(s) {unknown}; known: {list(MODEL_KEYS)}")
    arch = str(model_cfg.get("arch", "")).lower()
    name = model_cfg.get("config") or DEFAULT_CONFIG.get(arch)
    if not name:
        raise SegaugError(
            f"model config (backend: mmseg): arch {model_cfg.get('arch')!r} has no default "
            f"config; give `config:` (one of {', '.join(MMSEG_CONFIGS)}, an mmseg::... path "
            "or a config file)"
        )
    weights = model_cfg.get("backbone_weights", "imagenet")
    if weights not in ("imagenet", None):
        raise SegaugError(
            f"model config (backend: mmseg): backbone_weights must be imagenet (the config's "
            f"own pretrained backbone) or null (random init), got {weights!r}"
        )
    if name in MMSEG_CONFIGS:
        if arch in DEFAULT_CONFIG and DEFAULT_CONFIG[arch] != name:
            raise SegaugError(
                f"model config (backend: mmseg): config {name!r} is not a "
                f"{model_cfg.get('arch')} (that is {DEFAULT_CONFIG[arch]!r})"
            )
        return MMSEG_CONFIGS[name]
    if name.startswith("mmseg::") or Path(name).is_file():
        return name
    raise SegaugError(
        f"model config (backend: mmseg): config {name!r} is not one of "
        f"{', '.join(MMSEG_CONFIGS)}, an mmseg::<dir>/<file>.py or an existing file"
    )


@functools.cache
def import_mmseg():
    """Import mmseg (registering its modules), with the mmcv-lite stand-in if needed."""
    from segaug.train import mmcv_standin

    try:
        import mmcv  # noqa: F401

        mmcv_standin.install()
        import mmseg
        from mmseg.utils import register_all_modules
    except ImportError as e:
        raise SegaugError(
            f"backend: mmseg needs mmsegmentation ({e}); run it in envs/mmseg.yaml "
            "(snakemake --sdm conda) or in .venv-mmseg (`make mmseg-env`)"
        ) from None
    register_all_modules(init_default_scope=True)
    import mmseg

    return mmseg


def _ce_options(loss_cfg: dict | None, arch: str) -> dict:
    """The loss config as options of mmseg's ``CrossEntropyLoss`` heads: ``class_weight`` and
    ``avg_non_ignore`` (segaug's default True, as on the smp backend; the paper's ``ce`` sets
    false, mmseg's default). Mask2Former keeps its own losses (options unused, as on smp)."""
    loss_cfg = dict(loss_cfg or {"name": "ce"})
    name = loss_cfg.pop("name", "ce")
    weights = loss_cfg.pop("class_weights", None)
    loss_cfg.pop("class_weights_mode", None)
    avg = loss_cfg.pop("avg_non_ignore", True)
    if name != "ce" or loss_cfg or (weights is not None and arch == "mask2former"):
        raise SegaugError(
            f"loss config: backend: mmseg trains with the config's own losses; use the loss "
            f"'ce' (options: avg_non_ignore, class_weights except for Mask2Former), got {name!r}"
            + (f" with options {sorted(loss_cfg)}" if loss_cfg else "")
        )
    if arch == "mask2former":
        return {}
    out = {"avg_non_ignore": bool(avg)}
    if weights is not None:
        out["class_weight"] = [float(w) for w in weights]
    return out


def mmseg_config(model_cfg: dict, num_classes: int, loss_cfg: dict | None = None, crop_size=None):
    """The mmengine Config of a model config: mmseg's config with our classes, no input
    normalisation in the model (our transforms normalise, as mmseg's pre-processor does),
    the backbone's pretrained init kept or dropped, whole-image test mode."""
    path = config_path(model_cfg)
    import_mmseg()
    from mmengine.config import Config

    if path.startswith("mmseg::"):  # mmseg's own configs, shipped in the package (.mim)
        import mmseg

        path = os.path.join(os.path.dirname(mmseg.__file__), ".mim", "configs", path[len("mmseg::") :])
    try:
        cfg = Config.fromfile(path)
    except Exception as e:  # a missing file, or mmseg:: without setuptools' pkg_resources
        raise SegaugError(f"model config: cannot load mmseg config {path!r} ({e})") from None
    m = cfg.model
    m.data_preprocessor = dict(
        type="SegDataPreProcessor",
        mean=None,
        std=None,
        bgr_to_rgb=False,
        pad_val=0,
        seg_pad_val=255,
        size=tuple(crop_size) if crop_size else None,
    )
    if not model_cfg.get("backbone_weights", "imagenet"):
        if "pretrained" in m:
            m.pretrained = None
        m.backbone.init_cfg = None
    arch = str(model_cfg.get("arch", "")).lower()
    ce = _ce_options(loss_cfg, arch)
    heads = [m.decode_head] + ([m.auxiliary_head] if m.get("auxiliary_head") else [])
    for h in heads:
        h.num_classes = int(num_classes)
        if h.get("loss_decode", {}).get("type") == "CrossEntropyLoss":
            h.loss_decode.update(ce)
    if m.decode_head.get("loss_cls") is not None:  # Mask2Former: no-object class last
        m.decode_head.loss_cls.class_weight = [1.0] * int(num_classes) + [0.1]
    m.test_cfg = dict(mode="whole")
    return cfg


def _output_stride(model_dict: dict) -> int:
    b = model_dict.get("backbone", {})
    strides = b.get("strides", (1, 2, 2, 2))
    return int(4 * np.prod(strides))


class MMSegLogits(torch.nn.Module):
    """An mmseg segmentor as a plain ``x -> logits`` module (whole-image, N x C x H x W)."""

    def __init__(self, segmentor: torch.nn.Module, output_stride: int):
        super().__init__()
        self.model = segmentor
        self.output_stride = int(output_stride)

    def forward(self, x):
        h, w = x.shape[-2:]
        metas = [dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w))] * x.shape[0]
        return self.model.encode_decode(x, metas)


def build_segmentor(model_dict: dict, init_weights: bool = False) -> torch.nn.Module:
    """The mmseg segmentor of a built config's ``model`` dict (BN, not SyncBN)."""
    import_mmseg()
    from mmengine.config import ConfigDict
    from mmengine.model import revert_sync_batchnorm
    from mmseg.registry import MODELS

    model = MODELS.build(ConfigDict(model_dict))
    if init_weights:
        model.init_weights()
    return revert_sync_batchnorm(model)


def create_model(model_cfg: dict, num_classes: int) -> MMSegLogits:
    """The model of a ``backend: mmseg`` config as an ``x -> logits`` module (initialised,
    so pretrained backbone weights are fetched: scripts/prefetch_weights.py)."""
    m = mmseg_config(model_cfg, num_classes).model.to_dict()
    return MMSegLogits(build_segmentor(m, init_weights=True), _output_stride(m))


def load_model(meta: dict) -> MMSegLogits:
    """The model of an mmseg model file's dict (weights loaded, eval mode not set)."""
    m = meta["mmseg_model"]
    model = MMSegLogits(build_segmentor(m), _output_stride(m))
    model.model.load_state_dict(meta["state_dict"])
    return model


# ---------------------------------------------------------------------------- training


def collate(batch):
    """(uint8 image, label, position, content size) samples -> mmseg's ``{"inputs",
    "data_samples"}``, the images normalised here (what the smp backend does on the device)."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    from segaug.train.transforms import to_model_input

    inputs, samples = [], []
    for image, y, g, hw in batch:
        x = to_model_input(image[None], hw[None])[0]
        h, w = x.shape[-2:]
        ds = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w), position=int(g)))
        ds.gt_sem_seg = PixelData(data=y[None].long())
        inputs.append(x)
        samples.append(ds)
    return {"inputs": inputs, "data_samples": samples}


@torch.no_grad()
def validate(model: torch.nn.Module, loader, num_classes: int, class_names, multiple: int, device) -> dict:
    """Our whole-image validation (the smp backend's): scores over the whole loader."""
    from segaug.metrics import ConfusionMeter, scores

    was_training = model.training
    model.eval()
    meter = ConfusionMeter(num_classes)
    from segaug.train.transforms import to_model_input

    for image, y, _, hw in loader:
        x = to_model_input(image.to(device), hw)
        logits = predict_whole(model, x, multiple, out_size=y.shape[-2:])
        meter.update(logits.argmax(1).cpu().numpy(), y.numpy())
    model.train(was_training)
    return scores(meter.conf, class_names)


@functools.cache
def _runner_parts():
    """mmengine classes defined once mmengine is importable."""
    from mmengine.hooks import Hook
    from mmengine.runner import IterBasedTrainLoop
    from mmengine.runner.loops import _InfiniteDataloaderIterator

    from segaug.train.data import step_seed

    class SegaugIterLoop(IterBasedTrainLoop):
        """mmengine's iteration loop without its fast-forward on resume (it would load every
        batch already trained): segaug's stream sampler starts at the restored iteration, so
        the data iterator is (re)built once the checkpoint is loaded. ``stream["loop"]`` is set
        to the loop before mmengine builds its first data iterator (data-loading workers call
        the sampler's step source then, while the Runner is still building this loop)."""

        def __init__(self, *args, stream: dict, **kwargs):
            stream["loop"] = self
            self._iter = 0
            super().__init__(*args, **kwargs)

        def run(self):
            self.runner.call_hook("before_train")
            self.runner.call_hook("before_train_epoch")
            self.dataloader_iterator = _InfiniteDataloaderIterator(self.dataloader)
            while self._iter < self._max_iters and not self.stop_training:
                self.runner.model.train()
                data_batch = next(self.dataloader_iterator)
                self.run_iter(data_batch)
                self._decide_current_val_interval()
            self.runner.call_hook("after_train_epoch")
            self.runner.call_hook("after_train")
            return self.runner.model

    class SegaugHook(Hook):
        """Re-seeds dropout per step, checks the stream, validates every ``val_interval``
        steps with :func:`validate` (before the checkpoint of that step is written) and keeps
        the curve and the run fingerprint in the checkpoints."""

        priority = "NORMAL"  # before CheckpointHook (VERY_LOW)

        def __init__(
            self,
            seed,
            batch_size,
            val_interval,
            val_loader,
            num_classes,
            class_names,
            fingerprint,
            device,
            stop_at=None,
        ):
            self.seed, self.batch, self.val_interval = int(seed), batch_size, val_interval
            self.val_loader, self.num_classes = val_loader, num_classes
            self.class_names, self.fingerprint, self.device = class_names, fingerprint, device
            self.stop_at = stop_at  # tests: raise before this step (a simulated kill)
            self.history: list[dict] = []
            self.lr = float("nan")

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            k = runner.iter
            if self.stop_at is not None and k == self.stop_at:
                raise RuntimeError("killed")
            g = data_batch["data_samples"][0].metainfo["position"]
            if g != k * self.batch:
                raise RuntimeError(
                    f"training stream out of step: step {k} got sample position {g}, expected {k * self.batch}"
                )
            torch.manual_seed(step_seed(self.seed, k))
            self.lr = float(runner.optim_wrapper.get_lr()["lr"][0])

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            k = runner.iter + 1
            if k % self.val_interval:
                return
            seg = getattr(runner.model, "module", runner.model)
            model = MMSegLogits(seg, self.output_stride)
            device = next(seg.parameters()).device  # where mmengine put it
            sc = validate(model, self.val_loader, self.num_classes, self.class_names, self.output_stride, device)
            entry = {"step": k, "val_miou": float(sc["miou"]), "val_pixel_acc": float(sc["pixel_acc"]), "lr": self.lr}
            self.history.append(entry)
            self.last_scores = sc  # per-class IoU for the tracking hook (segaug.train.tracking)
            log.info(
                "step %d: val mIoU %.4f, pixel acc %.4f (lr %.3g)",
                k,
                entry["val_miou"],
                entry["val_pixel_acc"],
                entry["lr"],
            )

        def before_save_checkpoint(self, runner, checkpoint):
            checkpoint["segaug"] = {"history": list(self.history), "fingerprint": self.fingerprint}

        def after_load_checkpoint(self, runner, checkpoint):
            self.history = list((checkpoint.get("segaug") or {}).get("history", []))

    return SegaugIterLoop, SegaugHook


class _Shared(dict):
    """A dict that mmengine's deep copies of loop configs share instead of copying."""

    def __deepcopy__(self, memo):
        return self


def _optim_wrapper(cfg: dict, mm_cfg, device: str) -> dict:
    if cfg["optimizer"] == "adamw":
        opt = dict(type="AdamW", lr=cfg["lr"], weight_decay=cfg["weight_decay"], betas=(0.9, 0.999), eps=1e-8)
    else:
        opt = dict(type="SGD", lr=cfg["lr"], momentum=cfg["momentum"], weight_decay=cfg["weight_decay"])
    ow = dict(type="OptimWrapper", optimizer=opt, clip_grad=None)
    if cfg["grad_clip"]:
        ow["clip_grad"] = dict(max_norm=float(cfg["grad_clip"]), norm_type=2)
    paramwise = (mm_cfg.get("optim_wrapper") or {}).get("paramwise_cfg")
    if paramwise:  # Mask2Former: backbone lr multiplier, no decay on norms and embeddings
        paramwise = paramwise.to_dict()
        keys = paramwise.get("custom_keys", {})
        if "backbone" in keys:
            keys["backbone"]["lr_mult"] = float(cfg["backbone_lr_mult"])
        ow["paramwise_cfg"] = paramwise
    if cfg["amp"] and device == "cuda":
        ow["type"] = "AmpOptimWrapper"
        ow["dtype"] = "bfloat16" if cfg["amp"] == "bf16" else "float16"
    return ow


def _last_checkpoint(state_dir: Path) -> Path | None:
    marker = state_dir / "last_checkpoint"
    if not marker.exists():
        return None
    path = Path(marker.read_text().strip())
    return path if path.exists() else None


def train(
    train_samples: Sequence,
    val_samples: Sequence,
    class_table,
    model_cfg: dict,
    train_cfg: dict,
    loss_cfg: dict | None,
    seed: int,
    out_model,
    out_curve,
    state_dir,
    device: str = "auto",
    run_info: dict | None = None,
    keep_state: bool = False,
    stop_at: int | None = None,
    logger: str = "tensorboard",
) -> dict:
    """The mmseg backend of :func:`segaug.train.loop.train` (same arguments and outputs;
    ``stop_at`` makes the run fail before that step, as a kill would)."""
    # mmengine's checkpoints hold more than tensors (its message hub, config): not loadable
    # with torch.load(weights_only=True), torch's default since 2.6
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    run = setup_run(train_samples, val_samples, class_table, model_cfg, train_cfg, loss_cfg, seed, state_dir, device)
    _check_device(run.device)
    mm_cfg = mmseg_config(model_cfg, run.num_classes, run.loss_cfg, run.cfg["crop_size"])
    resume = _resume_checkpoint(run)
    stream = _Shared()  # {"loop": the train loop}: the stream restarts at its iteration
    train_loader, val_loader = _loaders(run, train_samples, val_samples, seed, stream)
    hook = _seg_hook(run, mm_cfg, val_loader, class_table, seed, stop_at)
    tracking_parts = _tracking(logger, hook, Path(out_curve).parent, run_info)
    runner = _runner(run, mm_cfg, train_loader, stream, hook, seed, resume, tracking_parts)
    _fit(run, runner)
    history = list(hook.history)
    best = finish_run(
        run,
        getattr(runner.model, "module", runner.model),
        history,
        out_model,
        out_curve,
        model_cfg=model_cfg,
        class_table=class_table,
        run_info=run_info,
        seed=seed,
        extra={"backend": "mmseg", "mmseg_model": mm_cfg.model.to_dict()},
    )
    if not keep_state:
        _remove_state(run.state_dir)
    steps = run.cfg["steps"]
    return {"steps": steps, "best": best, "history": history, "resumed_from": str(resume) if resume else None}


def _check_device(device: str) -> None:
    if device == "cpu" and torch.cuda.is_available():
        raise SegaugError(
            "backend: mmseg: mmengine trains on the GPU whenever one is visible; to train on "
            "CPU hide it (CUDA_VISIBLE_DEVICES=) or use --device auto"
        )


def _resume_checkpoint(run: RunSetup) -> Path | None:
    last = _last_checkpoint(run.state_dir)
    resume = check_resume(last, run.fingerprint) if last else None
    if last and not resume:
        (run.state_dir / "last_checkpoint").unlink(missing_ok=True)
    return resume


def _loaders(run: RunSetup, train_samples, val_samples, seed: int, stream):
    from torch.utils.data import DataLoader

    from segaug.train.data import SegDataset, StreamSampler

    cfg, nc = run.cfg, run.num_classes
    nw = cfg["num_workers"]
    train_loader = DataLoader(
        SegDataset(train_samples, nc, run.train_transform, seed=int(seed)),
        batch_size=cfg["batch_size"],
        sampler=StreamSampler(cfg["val_interval"], cfg["batch_size"], lambda: stream["loop"].iter),
        drop_last=True,
        num_workers=nw,
        collate_fn=collate,
        pin_memory=run.device == "cuda",
    )
    val_loader = DataLoader(SegDataset(val_samples, nc, run.val_transform), batch_size=1, num_workers=nw)
    return train_loader, val_loader


def _seg_hook(run: RunSetup, mm_cfg, val_loader, class_table, seed: int, stop_at):
    _, SegHook = _runner_parts()
    cfg = run.cfg
    hook = SegHook(
        int(seed),
        cfg["batch_size"],
        cfg["val_interval"],
        val_loader,
        run.num_classes,
        list(class_table.names),
        run.fingerprint,
        run.device,
        stop_at,
    )
    hook.output_stride = _output_stride(mm_cfg.model)
    return hook


def _tracking(logger: str, hook, out_dir: Path, run_info: dict | None) -> dict:
    """The Runner's visualizer and extra hooks that write TensorBoard (and W&B) beside the curve."""
    from segaug.train import tracking

    return {
        "custom_hooks": tracking.mmengine_hooks(logger, hook),
        "visualizer": tracking.mmengine_visualizer(logger, out_dir, run_info),
    }


def _runner(run: RunSetup, mm_cfg, train_loader, stream, hook, seed: int, resume, tracking_parts: dict):
    from mmengine.runner import Runner

    Loop, _ = _runner_parts()
    cfg = run.cfg
    steps, val_interval = cfg["steps"], cfg["val_interval"]
    log_every = max(1, min(50, val_interval // 4))
    return Runner(
        model=mm_cfg.model,
        work_dir=str(run.state_dir),
        train_dataloader=train_loader,
        train_cfg=dict(type=Loop, max_iters=steps, val_interval=steps + 1, stream=stream),
        optim_wrapper=_optim_wrapper(cfg, mm_cfg, run.device),
        param_scheduler=[
            dict(type="PolyLR", eta_min=cfg["min_lr"], power=cfg["poly_power"], begin=0, end=steps, by_epoch=False)
        ],
        default_hooks=dict(
            timer=dict(type="IterTimerHook"),
            logger=dict(type="LoggerHook", interval=log_every, log_metric_by_epoch=False),
            param_scheduler=dict(type="ParamSchedulerHook"),
            checkpoint=dict(type="CheckpointHook", by_epoch=False, interval=val_interval, max_keep_ckpts=1),
        ),
        custom_hooks=[hook, *tracking_parts["custom_hooks"]],
        visualizer=tracking_parts["visualizer"],
        randomness=dict(seed=int(seed), deterministic=False, diff_rank_seed=False),
        log_processor=dict(by_epoch=False),
        load_from=str(resume) if resume else None,
        resume=bool(resume),
        default_scope="mmseg",
        env_cfg=dict(cudnn_benchmark=False, dist_cfg=dict(backend="nccl")),
        launcher="none",  # one device (the stream is not sharded across ranks)
    )


def _fit(run: RunSetup, runner) -> None:
    steps = run.cfg["steps"]
    t0 = time.perf_counter()
    runner.train()
    if runner.iter != steps:
        raise SegaugError(
            f"training stopped at step {runner.iter} of {steps}; run it again to resume from {run.state_dir}"
        )
    log.info("trained %d steps in %.1f s (mmseg backend)", steps, time.perf_counter() - t0)


def _remove_state(state_dir: Path) -> None:
    for p in state_dir.iterdir():  # mmengine's checkpoints, marker, config dump, logs
        if p.is_dir() and p.name[:8].isdigit():  # <timestamp>/ log folders
            shutil.rmtree(p)
        elif p.suffix == ".pth" or p.name == "last_checkpoint" or p.name[:8].isdigit():
            p.unlink()
    with contextlib.suppress(OSError):  # a .stale checkpoint stays for the user
        state_dir.rmdir()
