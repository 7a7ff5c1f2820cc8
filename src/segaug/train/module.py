"""The LightningModule: a model, a loss, SGD (or AdamW) with the MMSegmentation poly schedule.

* optimizer: SGD(lr=0.01, momentum=0.9, weight_decay=5e-4) over all parameters (mmseg's VOC
  configs use no parameter-wise rules); ``optimizer: adamw`` in the train config gives AdamW(lr,
  weight_decay, betas 0.9/0.999, eps 1e-8) instead (``momentum`` unused). A model with a
  ``param_groups(lr, weight_decay, backbone_lr_mult)`` method (Mask2Former) gets its groups with
  either optimizer: backbone at lr x ``backbone_lr_mult``, no decay on norms and embeddings;
* loss: a pixel-wise loss from :mod:`segaug.train.losses`, except for models that compute their
  own (:func:`segaug.train.models.has_own_loss`: Mask2Former's matching losses), which accept only
  the ``ce`` loss config (its options are for pixel-wise losses and are not used);
* auxiliary head (``aux_head`` in the model config, :class:`segaug.train.models.WithAuxHead`):
  the same pixel-wise loss on its upsampled logits, added with its weight (mmseg: 0.4);
* gradient clipping (``grad_clip``, max L2 norm) is the Trainer's, see :mod:`segaug.train.loop`;
* schedule: ``lr(k) = (lr - min_lr) * (1 - k / max_steps) ** power + min_lr`` at step ``k``,
  stepped every optimizer step (mmseg ``PolyLR(eta_min=1e-4, power=0.9, by_epoch=False)``);
  with param groups every group follows the same factor, so a group at 0.1 x lr ends at
  0.1 x min_lr (mmseg's eta_min is absolute; the same with min_lr 0, the Mask2Former recipe);
* validation: whole-image inference (pad to the model's stride multiple, crop back, resize
  to the label when a test scale was used), a confusion matrix over the whole val set,
  ``val_miou`` logged, and a history of ``{step, val_miou, val_pixel_acc, lr}`` kept in the
  checkpoint so the curve survives a resume;
* dropout randomness: the global torch RNG is re-seeded from (seed, step) before every
  training step, so a step's dropout masks do not depend on what ran before (resume-exact);
* inputs: batches arrive as uint8 images and labels (:class:`segaug.train.data.SegDataset`);
  the float conversion and normalisation happen here, on the device
  (:func:`segaug.train.transforms.to_model_input`);
* speed options (``perf``): ``channels_last`` (NHWC memory for the model and its inputs: faster
  convolutions on GPUs with tensor cores) and ``compile`` (``torch.compile`` of the model's
  forward, in place, so the state dict keeps its keys). Both are off by default: on a CPU they
  gain little and compile costs minutes of start-up.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import lightning as L
import torch

from segaug.errors import SegaugError
from segaug.metrics import ConfusionMeter, scores
from segaug.train.data import step_seed
from segaug.train.losses import create_loss
from segaug.train.models import aux_loss, create_model, has_own_loss, pad_multiple, predict_whole
from segaug.train.transforms import to_model_input

log = logging.getLogger("segaug.train")

OPTIM_DEFAULTS = {
    "lr": 0.01,
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "poly_power": 0.9,
    "min_lr": 1e-4,
    "max_steps": 1000,
    "optimizer": "sgd",
    "backbone_lr_mult": 0.1,  # only for models with param_groups (Mask2Former)
}
OPTIMIZERS = ("sgd", "adamw")


def poly_lr(step: int, max_steps: int, base_lr: float, min_lr: float = 1e-4, power: float = 0.9) -> float:
    """MMSegmentation's PolyLR at (0-based) step ``step``."""
    t = min(max(step, 0), max_steps) / max_steps
    return (base_lr - min_lr) * (1.0 - t) ** power + min_lr


class PolyFactor:
    """``LambdaLR`` factor for :func:`poly_lr` (an object, so its state goes into checkpoints)."""

    def __init__(self, max_steps: int, base_lr: float, min_lr: float, power: float):
        self.max_steps, self.base_lr, self.min_lr, self.power = max_steps, base_lr, min_lr, power

    def __call__(self, step: int) -> float:
        return poly_lr(step, self.max_steps, self.base_lr, self.min_lr, self.power) / self.base_lr


def _check_own_loss(model_cfg: dict, name: str, weights, options: dict) -> None:
    """A model with its own loss trains with that loss: only the plain ``ce`` config is valid."""
    if name != "ce" or weights is not None:
        raise SegaugError(
            f"loss config: {model_cfg.get('arch')} trains with its own fixed losses (matching, "
            f"class CE, mask BCE, dice); use the loss 'ce' without class_weights, got {name!r}"
            + (" with class_weights" if weights is not None else "")
        )
    if options:
        log.info("%s: loss options %s not used (the model's own loss)", model_cfg.get("arch"), options)


class SegModule(L.LightningModule):
    def __init__(
        self,
        model_cfg: dict,
        num_classes: int,
        class_names: Sequence[str],
        loss_cfg: dict | None = None,
        optim_cfg: dict | None = None,
        seed: int = 0,
        fingerprint: dict | None = None,
        perf: dict | None = None,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.model_cfg = dict(model_cfg)
        self.num_classes = int(num_classes)
        self.class_names = list(class_names)
        loss_cfg = dict(loss_cfg or {"name": "ce"})
        name = loss_cfg.pop("name", "ce")
        weights = loss_cfg.pop("class_weights", None)
        if has_own_loss(self.model_cfg):
            _check_own_loss(self.model_cfg, name, weights, loss_cfg)
            self.criterion = None  # the model's loss() is used
        else:
            self.criterion = create_loss(name, self.num_classes, class_weights=weights, **loss_cfg)
        self.optim_cfg = {**OPTIM_DEFAULTS, **(optim_cfg or {})}
        if self.optim_cfg["optimizer"] not in OPTIMIZERS:
            raise SegaugError(
                f"train config: optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optim_cfg['optimizer']!r}"
            )
        self.seed = int(seed)
        self.fingerprint = fingerprint
        self.model = create_model(self.model_cfg, self.num_classes)
        self.multiple = pad_multiple(self.model)
        perf = dict(perf or {})
        self.channels_last = bool(perf.get("channels_last", False))
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if perf.get("compile", False):
            self.model.compile()  # in place: parameters and state-dict keys unchanged
        self.history: list[dict] = []
        self._meter = ConfusionMeter(self.num_classes)
        self._lr = float("nan")

    def forward(self, x):
        return self.model(x)

    # ------------------------------------------------------------------ training
    def on_before_batch_transfer(self, batch, dataloader_idx):
        trainer = self._trainer
        if trainer is not None and trainer.training:
            g = batch[2]
            expected = self.global_step * len(g)
            if int(g[0]) != expected:  # the stream must follow the optimizer step exactly
                raise RuntimeError(
                    f"training stream out of step: step {self.global_step} got sample position "
                    f"{int(g[0])}, expected {expected}"
                )
        return batch

    def on_train_batch_start(self, batch, batch_idx):
        torch.manual_seed(step_seed(self.seed, self.global_step))
        self._lr = float(self.trainer.optimizers[0].param_groups[0]["lr"])

    def inputs(self, batch):
        """(normalised float input, int64 label) of a uint8 batch, on the batch's device."""
        image, label, _, hw = batch
        return to_model_input(image, hw, self.channels_last), label.long()

    def training_step(self, batch, batch_idx):
        x, y = self.inputs(batch)
        if self.criterion is None:
            loss = self.model.loss(x, y)
        else:
            out = self.model(x)
            if isinstance(out, tuple):  # main + auxiliary logits (models.WithAuxHead)
                loss = aux_loss(self.criterion, out, y, self.model.aux_weight)
            else:
                loss = self.criterion(out, y)
        self.log("train_loss", loss, prog_bar=True, on_step=True, on_epoch=False)
        return loss

    def configure_optimizers(self):
        c = self.optim_cfg
        params = self.parameters()
        if callable(getattr(self.model, "param_groups", None)):
            params = self.model.param_groups(float(c["lr"]), float(c["weight_decay"]), float(c["backbone_lr_mult"]))
        if c["optimizer"] == "adamw":
            opt = torch.optim.AdamW(params, lr=c["lr"], weight_decay=c["weight_decay"], betas=(0.9, 0.999), eps=1e-8)
        else:
            opt = torch.optim.SGD(params, lr=c["lr"], momentum=c["momentum"], weight_decay=c["weight_decay"])
        factor = PolyFactor(int(c["max_steps"]), float(c["lr"]), float(c["min_lr"]), float(c["poly_power"]))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {
            "optimizer": opt,
            "lr_scheduler": {"scheduler": sched, "interval": "step", "frequency": 1},
        }

    # ------------------------------------------------------------------ validation
    def on_validation_epoch_start(self):
        self._meter.reset()

    def validation_step(self, batch, batch_idx):
        x, y = self.inputs(batch)
        logits = predict_whole(self.model, x, self.multiple, out_size=y.shape[-2:])
        pred = logits.argmax(1)
        self._meter.update(pred.cpu().numpy(), y.cpu().numpy())

    def on_validation_epoch_end(self):
        sc = scores(self._meter.conf, self.class_names)
        miou = sc["miou"]
        self.log("val_miou", 0.0 if math.isnan(miou) else miou, prog_bar=True)
        if self.trainer.sanity_checking:
            return
        entry = {
            "step": int(self.global_step),
            "val_miou": float(miou),
            "val_pixel_acc": float(sc["pixel_acc"]),
            "lr": float(self._lr),
        }
        self.history.append(entry)
        log.info(
            "step %d: val mIoU %.4f, pixel acc %.4f (lr %.3g)",
            entry["step"],
            entry["val_miou"],
            entry["val_pixel_acc"],
            entry["lr"],
        )

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint):
        checkpoint["segaug"] = {"history": list(self.history), "fingerprint": self.fingerprint}

    def on_load_checkpoint(self, checkpoint):
        self.history = list(checkpoint.get("segaug", {}).get("history", []))
