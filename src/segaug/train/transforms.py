"""The MMSegmentation PASCAL VOC pipeline, in numpy/OpenCV with an explicit random generator.

MMSegmentation's ``configs/_base_/datasets/pascal_voc12.py`` trains with::

    RandomResize(scale=(2048, 512), ratio_range=(0.5, 2.0), keep_ratio=True)
    RandomCrop(crop_size=(512, 512), cat_max_ratio=0.75)
    RandomFlip(prob=0.5)
    PhotoMetricDistortion()
    SegDataPreProcessor(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                        bgr_to_rgb=True, pad_val=0, seg_pad_val=255, size=crop_size)

and tests with ``Resize(scale=(2048, 512), keep_ratio=True)`` (predictions resized back to the
label's size). Every step below draws from the ``numpy.random.Generator`` it is given, in the
same order MMSegmentation draws from its global RNG, so an augmentation is a pure function of
(image, label, generator state). Images are RGB uint8 HxWx3, labels uint8 HxW (255 = ignore).

The transforms hand out uint8 (as MMSegmentation's workers do): an RGB HxWx3 image padded to
the crop size, the uint8 label padded with 255 and the (h, w) of the unpadded content.
:func:`to_model_input` then converts on the device, inside the step: float, normalise, CHW and
the padded area set to 0 (i.e. the mean colour), which is what MMSegmentation's data
pre-processor does (pad *after* normalisation) and gives the same float32 values to the bit as
normalising in the worker did. A quarter of the bytes cross the worker queue and the bus.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from segaug.data.layout import IGNORE_INDEX
from segaug.errors import SegaugError

MEAN = np.array([123.675, 116.28, 103.53], dtype=np.float32)  # ImageNet, RGB order
STD = np.array([58.395, 57.12, 57.375], dtype=np.float32)


def rescale_size(w: int, h: int, scale: Sequence[float]) -> tuple[int, int]:
    """``mmcv.rescale_size`` with keep_ratio: the largest size that fits in ``scale``.

    The long image side is bounded by ``max(scale)`` and the short side by ``min(scale)``.
    Returns ``(new_w, new_h)``.
    """
    long_edge, short_edge = max(scale), min(scale)
    factor = min(long_edge / max(h, w), short_edge / min(h, w))
    return max(1, int(w * factor + 0.5)), max(1, int(h * factor + 0.5))


def resize_keep_ratio(image, label, scale):
    """Resize image (bilinear) and label (nearest) to fit ``scale`` keeping the aspect ratio."""
    h, w = image.shape[:2]
    new_w, new_h = rescale_size(w, h, scale)
    if (new_w, new_h) != (w, h):
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        if label is not None:
            label = cv2.resize(label, (new_w, new_h), interpolation=cv2.INTER_NEAREST)
    return image, label


def random_resize(image, label, rng: np.random.Generator, base_size=(2048, 512), ratio_range=(0.5, 2.0)):
    """mmseg ``RandomResize(scale=base_size, ratio_range, keep_ratio=True)``."""
    lo, hi = ratio_range
    ratio = rng.random() * (hi - lo) + lo
    scale = (int(base_size[0] * ratio), int(base_size[1] * ratio))
    return resize_keep_ratio(image, label, scale)


def _crop_bbox(shape, crop_size, rng):
    ch, cw = crop_size
    margin_h = max(shape[0] - ch, 0)
    margin_w = max(shape[1] - cw, 0)
    y = int(rng.integers(0, margin_h + 1))
    x = int(rng.integers(0, margin_w + 1))
    return y, y + ch, x, x + cw


def random_crop(
    image, label, rng: np.random.Generator, crop_size=(512, 512), cat_max_ratio=0.75, ignore_index=IGNORE_INDEX
):
    """mmseg ``RandomCrop(crop_size=(h, w), cat_max_ratio)``.

    With ``cat_max_ratio < 1`` up to 10 crops are tried until one holds at least two classes
    and its most frequent class (ignore excluded) covers less than ``cat_max_ratio`` of the
    labelled pixels; failing that the last drawn crop is taken (exactly as mmseg does).
    A crop larger than the image is clipped to it (padding comes later).
    """
    bbox = _crop_bbox(label.shape, crop_size, rng)
    if cat_max_ratio < 1.0:
        for _ in range(10):
            y1, y2, x1, x2 = bbox
            # the counts np.unique gave, without its sort: bincount over the crop window
            cnt = np.bincount(label[y1:y2, x1:x2].ravel(), minlength=256)
            cnt[ignore_index] = 0
            cnt = cnt[cnt > 0]
            if len(cnt) > 1 and cnt.max() / cnt.sum() < cat_max_ratio:
                break
            bbox = _crop_bbox(label.shape, crop_size, rng)
    y1, y2, x1, x2 = bbox
    return image[y1:y2, x1:x2], label[y1:y2, x1:x2]


def random_flip(image, label, rng: np.random.Generator, prob=0.5):
    """Horizontal flip with probability ``prob``."""
    if rng.random() < prob:
        image, label = image[:, ::-1], label[:, ::-1]
    return image, label


_LEVELS = np.arange(256, dtype=np.float32)


def _convert_lut(alpha=1.0, beta=0.0) -> np.ndarray:
    """``clip(float32(v) * alpha + beta, 0, 255)`` truncated to uint8 for every value ``v``:
    the same float32 arithmetic as converting the whole image, done on 256 values."""
    return np.clip(_LEVELS * alpha + beta, 0, 255).astype(np.uint8)


def _convert(img, alpha=1.0, beta=0.0):
    """mmseg's ``convert`` on a uint8 image, as a lookup table (same values, no float image)."""
    return cv2.LUT(img, _convert_lut(alpha, beta))


def photometric_distortion(
    image,
    rng: np.random.Generator,
    brightness_delta=32,
    contrast_range=(0.5, 1.5),
    saturation_range=(0.5, 1.5),
    hue_delta=18,
):
    """mmseg ``PhotoMetricDistortion``: each step applied with probability 1/2.

    brightness (+U(-delta, delta)) -> contrast either here or last (coin flip) -> saturation
    (x U(lo, hi) in HSV) -> hue (+randint(-delta, delta) mod 180 in OpenCV's HSV) -> contrast.
    """
    img = np.ascontiguousarray(image)
    if rng.integers(2):
        img = _convert(img, beta=rng.uniform(-brightness_delta, brightness_delta))
    mode = rng.integers(2)

    def contrast(img):
        if rng.integers(2):
            img = _convert(img, alpha=rng.uniform(*contrast_range))
        return img

    if mode == 1:
        img = contrast(img)
    if rng.integers(2):
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
        lut = np.arange(256, dtype=np.uint8).repeat(3).reshape(256, 1, 3)
        lut[:, 0, 1] = _convert_lut(alpha=rng.uniform(*saturation_range))
        img = cv2.cvtColor(cv2.LUT(hsv, lut), cv2.COLOR_HSV2RGB)
    if rng.integers(2):
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
        shift = int(rng.integers(-hue_delta, hue_delta))
        lut = np.arange(256, dtype=np.uint8).repeat(3).reshape(256, 1, 3)
        lut[:, 0, 0] = ((np.arange(256, dtype=np.int32) + shift) % 180).astype(np.uint8)
        img = cv2.cvtColor(cv2.LUT(hsv, lut), cv2.COLOR_HSV2RGB)
    if mode == 0:
        img = contrast(img)
    return img


def normalize(image: np.ndarray) -> np.ndarray:
    """uint8 RGB HxWx3 -> float32 CxHxW, ImageNet mean/std (the reference for
    :func:`to_model_input`, which does the same on the device)."""
    x = (image.astype(np.float32) - MEAN) / STD
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def pad_to(image: np.ndarray, label: np.ndarray, size, label_pad=IGNORE_INDEX):
    """Pad a uint8 HxWx3 image (with 0; :func:`to_model_input` sets the padded area to 0 after
    normalisation) and an HxW label (with 255) at the bottom/right to at least ``size`` = (h, w).
    Both come back C-contiguous (a copy only where they were not)."""
    h, w = label.shape
    ph, pw = max(size[0] - h, 0), max(size[1] - w, 0)
    if ph or pw:
        out = np.zeros((h + ph, w + pw, 3), np.uint8)
        out[:h, :w] = image
        lab = np.full((h + ph, w + pw), label_pad, np.uint8)
        lab[:h, :w] = label
        return out, lab
    return np.ascontiguousarray(image), np.ascontiguousarray(label)


def to_model_input(image, hw=None, channels_last: bool = False):
    """The model's float input from a batch of uint8 images, on whatever device they are.

    ``image``: N x H x W x 3 uint8 (RGB); ``hw``: N x 2 heights and widths of the unpadded
    content (None: no padding). Returns N x 3 x H x W float32, normalised with the ImageNet
    mean/std, 0 in the padded area -- to the bit what :func:`normalize` and the old
    worker-side padding gave. Contiguous NCHW unless ``channels_last`` (then the NHWC layout
    the uint8 batch already has is kept: no transpose copy at all).
    """
    import torch

    if channels_last:  # NHWC in memory: the channel arithmetic broadcasts over the last axis
        x, shape = image.float(), (1, 1, 1, 3)
    else:  # transpose the uint8 (a quarter of the bytes), then convert
        x, shape = image.permute(0, 3, 1, 2).contiguous().float(), (1, 3, 1, 1)
    mean = torch.as_tensor(MEAN, device=x.device).view(shape)
    std = torch.as_tensor(STD, device=x.device).view(shape)
    x.sub_(mean).div_(std)
    if hw is not None:
        h, w = image.shape[1:3]
        hw = hw.to(x.device)
        rows = torch.arange(h, device=x.device).view(1, h, 1) >= hw[:, 0].view(-1, 1, 1)
        cols = torch.arange(w, device=x.device).view(1, 1, w) >= hw[:, 1].view(-1, 1, 1)
        pad = rows | cols  # N x H x W
        x.masked_fill_(pad.unsqueeze(-1) if channels_last else pad.unsqueeze(1), 0.0)
    return x.permute(0, 3, 1, 2) if channels_last else x


def _pair(v, name) -> tuple:
    if isinstance(v, (int, float)):
        return (v, v)
    try:
        a, b = v
    except (TypeError, ValueError):
        raise SegaugError(f"{name} must be a number or a pair, got {v!r}") from None
    return (a, b)


@dataclass(frozen=True)
class TrainTransform:
    """The VOC train pipeline: resize, crop, flip, photometric distortion, pad (uint8; the
    normalisation is :func:`to_model_input`'s, on the device).

    ``crop_size`` is (h, w); ``base_size`` is MMSegmentation's ``scale`` (long, short) side
    bound, e.g. (2048, 512) for VOC or (160, 120) for the small demo images.
    """

    crop_size: tuple = (512, 512)
    base_size: tuple = (2048, 512)
    ratio_range: tuple = (0.5, 2.0)
    cat_max_ratio: float = 0.75
    flip_prob: float = 0.5
    photometric: bool = True
    random = True  # indexes are global stream positions (see data.SegDataset)

    def __post_init__(self):
        object.__setattr__(self, "crop_size", tuple(int(v) for v in _pair(self.crop_size, "crop_size")))
        object.__setattr__(self, "base_size", tuple(int(v) for v in _pair(self.base_size, "base_size")))
        object.__setattr__(self, "ratio_range", tuple(float(v) for v in _pair(self.ratio_range, "ratio_range")))
        if min(self.crop_size) < 1 or min(self.base_size) < 1:
            raise SegaugError(f"crop_size {self.crop_size} / base_size {self.base_size} must be positive")
        if not 0 < self.ratio_range[0] <= self.ratio_range[1]:
            raise SegaugError(f"ratio_range {self.ratio_range} must satisfy 0 < low <= high")

    def __call__(self, image: np.ndarray, label: np.ndarray, rng: np.random.Generator):
        """(uint8 HxWx3 image, uint8 HxW label, (h, w) of the content before padding)."""
        image, label = random_resize(image, label, rng, self.base_size, self.ratio_range)
        image, label = random_crop(image, label, rng, self.crop_size, self.cat_max_ratio)
        image, label = random_flip(image, label, rng, self.flip_prob)
        if self.photometric:
            image = photometric_distortion(image, rng)
        hw = label.shape
        image, label = pad_to(image, label, self.crop_size)
        return image, label, hw


@dataclass(frozen=True)
class ValTransform:
    """Whole-image evaluation: optionally resize keep-ratio to ``test_scale`` (uint8; the
    normalisation is :func:`to_model_input`'s).

    The label keeps its original size; the model's logits are resized back to it.
    """

    test_scale: tuple | None = None
    random = False

    def __post_init__(self):
        if self.test_scale is not None:
            object.__setattr__(self, "test_scale", tuple(int(v) for v in _pair(self.test_scale, "test_scale")))

    def __call__(self, image: np.ndarray, label: np.ndarray, rng=None):
        """(uint8 HxWx3 image, uint8 label at its own size, (h, w) of the image)."""
        if self.test_scale is not None:
            image, _ = resize_keep_ratio(image, None, self.test_scale)
        return np.ascontiguousarray(image), np.ascontiguousarray(label), image.shape[:2]
