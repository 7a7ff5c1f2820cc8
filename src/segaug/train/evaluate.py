"""Evaluate a trained model file on a list of samples (whole-image inference)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

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


def model_from_meta(meta: dict, device: str = "cpu") -> torch.nn.Module:
    """The model of a model file's dict, in eval mode on ``device`` (either backend; no weight
    download: the trained weights replace the pretrained ones)."""
    from segaug.train.models import create_model, model_family

    load = model_family(meta["model_cfg"]).load_function()
    if load is not None:  # a family with its own model files (the mmseg backend)
        return load(meta).to(device).eval()
    model = create_model({**meta["model_cfg"], "encoder_weights": None}, int(meta["num_classes"]))
    model.load_state_dict(meta["state_dict"])
    return model.to(device).eval()


def load_model(path: str | Path, device: str = "cpu") -> tuple[torch.nn.Module, dict]:
    """Rebuild the model of a model file; returns (model in eval mode, the file's dict)."""
    meta = read_model_file(path)
    return model_from_meta(meta, device), meta


def size_batches(sizes: Sequence[tuple[int, int]], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of images of one size (in order of first appearance,
    each group in sample order), at most ``batch_size`` per batch: whole-image inference of a
    batch then equals inference image by image (no padding beyond the model's own)."""
    groups: dict[tuple[int, int], list[int]] = {}
    for i, hw in enumerate(sizes):
        groups.setdefault(tuple(hw), []).append(i)
    return [g[k : k + batch_size] for g in groups.values() for k in range(0, len(g), batch_size)]


def image_size(path) -> tuple[int, int]:
    """(h, w) of an image file from its header (no decode)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size[1], im.size[0]
    except Exception:  # unreadable: the data set reports it when the image is read
        return (-1, -1)


@torch.no_grad()
def evaluate(
    model_path: str | Path,
    samples: Sequence[Sample],
    class_table: ClassTable,
    device: str = "auto",
    test_scale: Sequence[int] | None | str = "model",
    num_workers: int = 0,
    batch_size: int | None = None,
    meta: dict | None = None,
) -> tuple[np.ndarray, dict]:
    """Confusion matrix and :func:`segaug.metrics.scores` of a model file on ``samples``.

    ``test_scale="model"`` uses the test scale the model was trained with (None = original
    image size); pass None or a (long, short) pair to override it. ``meta``: the model file's
    dict when the caller has already read it (the file is then not read again).

    Images are batched by size (``batch_size`` images of the same size; VOC has few sizes;
    None: 8 on a GPU, 1 on a CPU, where a batch costs more per image than single images),
    read by ``num_workers`` worker processes into pinned memory on a GPU, normalised on the
    device, and each batch's predictions come back in one transfer: the confusion matrix
    equals the image-by-image one exactly (batching adds no padding).
    """
    from torch.utils.data import DataLoader

    from segaug.train.data import SegDataset
    from segaug.train.models import pad_multiple, predict_whole, resolve_device
    from segaug.train.transforms import ValTransform, to_model_input

    dev = resolve_device(device)
    if batch_size is None:
        batch_size = 8 if dev == "cuda" else 1
    if batch_size < 1:
        raise SegaugError(f"evaluate: batch_size must be >= 1, got {batch_size}")
    if meta is None:
        meta = read_model_file(model_path)
    names = list(meta.get("class_names", []))
    if names != list(class_table.names):
        raise SegaugError(
            f"{model_path}: model classes {names} differ from the dataset's class table {list(class_table.names)}"
        )
    model = model_from_meta(meta, dev)
    if test_scale == "model":
        test_scale = meta.get("test_scale")
    ds = SegDataset(samples, class_table.num_classes, ValTransform(test_scale))
    batches = size_batches([image_size(s.image) for s in ds.samples], batch_size)
    loader = DataLoader(
        ds,
        batch_sampler=batches,
        num_workers=num_workers,
        pin_memory=dev == "cuda",
        persistent_workers=False,
    )
    multiple = pad_multiple(model)
    meter = ConfusionMeter(class_table.num_classes, class_table.ignore_index)
    for image, y, _, _hw in loader:  # same-size batches: no padding to mask
        x = to_model_input(image.to(dev, non_blocking=True), None)
        logits = predict_whole(model, x, multiple, out_size=y.shape[-2:])
        pred = logits.argmax(1).to(torch.uint8 if logits.shape[1] <= 256 else torch.int64)
        meter.update(pred.cpu().numpy(), y.numpy())  # the batch's one device sync
    sc = scores(meter.conf, class_table.names)
    log.info(
        "%s on %d images: mIoU %.4f, pixel acc %.4f",
        model_path,
        len(ds),
        sc["miou"],
        sc["pixel_acc"],
    )
    return meter.conf.copy(), sc
