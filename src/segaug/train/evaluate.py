"""Evaluate a trained model file on a list of samples (whole-image inference)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from segaug.data.canonical import ClassTable, Sample
from segaug.errors import SegaugError
from segaug.metrics import ConfusionMeter, scores

log = logging.getLogger("segaug.evaluate")


def read_model_file(path: str | Path) -> dict:
    """The dict of a model file, as :func:`segaug.train.loop.train` writes it::

        {"format", "model_cfg", "num_classes", "class_names", "state_dict", "run", "steps",
         "best", "seed", "train_cfg", "loss_cfg", "test_scale", "history"}

    Loaded with ``weights_only=True`` (plain containers and tensors only).
    """
    path = Path(path)
    if not path.exists():
        raise SegaugError(f"{path}: model file not found; train it first")
    try:
        meta = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise SegaugError(f"{path}: cannot read model file ({e}); retrain it") from None
    if not isinstance(meta, dict) or "state_dict" not in meta or "model_cfg" not in meta:
        raise SegaugError(f"{path}: not a segaug model file (no state_dict/model_cfg)")
    return meta


def load_model(path: str | Path, device: str = "cpu") -> tuple[torch.nn.Module, dict]:
    """Rebuild the model of a model file (no weight download); returns (model in eval mode, dict)."""
    from segaug.train.models import create_model

    meta = read_model_file(path)
    if meta.get("backend") == "mmseg":
        from segaug.train import mmseg_backend

        return mmseg_backend.load_model(meta).to(device).eval(), meta
    cfg = {**meta["model_cfg"], "encoder_weights": None}  # the trained weights replace them
    model = create_model(cfg, int(meta["num_classes"]))
    model.load_state_dict(meta["state_dict"])
    return model.to(device).eval(), meta


@torch.no_grad()
def evaluate(
    model_path: str | Path,
    samples: Sequence[Sample],
    class_table: ClassTable,
    device: str = "auto",
    test_scale: Sequence[int] | None | str = "model",
    num_workers: int = 0,
) -> tuple[np.ndarray, dict]:
    """Confusion matrix and :func:`segaug.metrics.scores` of a model file on ``samples``.

    ``test_scale="model"`` uses the test scale the model was trained with (None = original
    image size); pass None or a (long, short) pair to override it.
    """
    from torch.utils.data import DataLoader

    from segaug.train.data import SegDataset
    from segaug.train.models import pad_multiple, predict_whole, resolve_device
    from segaug.train.transforms import ValTransform

    dev = resolve_device(device)
    model, meta = load_model(model_path, dev)
    names = list(meta.get("class_names", []))
    if names != list(class_table.names):
        raise SegaugError(
            f"{model_path}: model classes {names} differ from the dataset's class table "
            f"{list(class_table.names)}"
        )
    if test_scale == "model":
        test_scale = meta.get("test_scale")
    ds = SegDataset(samples, class_table.num_classes, ValTransform(test_scale))
    loader = DataLoader(ds, batch_size=1, num_workers=num_workers)
    multiple = pad_multiple(model)
    meter = ConfusionMeter(class_table.num_classes, class_table.ignore_index)
    for x, y, _ in loader:
        logits = predict_whole(model, x.to(dev), multiple, out_size=y.shape[-2:])
        meter.update(logits.argmax(1).cpu().numpy(), y.numpy())
    sc = scores(meter.conf, class_table.names)
    log.info(
        "%s on %d images: mIoU %.4f, pixel acc %.4f",
        model_path,
        len(ds),
        sc["miou"],
        sc["pixel_acc"],
    )
    return meter.conf.copy(), sc
