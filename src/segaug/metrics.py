"""Segmentation metrics from a confusion matrix.

``conf[i, j]`` counts pixels of ground-truth class ``i`` predicted as class ``j``; pixels whose
ground truth is the ignore index (255) are left out. Everything else is derived from it:

* IoU_c       = TP / (TP + FP + FN)
* precision_c = TP / (TP + FP)        (of the pixels predicted c, how many are c)
* recall_c    = TP / (TP + FN)        (= per-class accuracy, MMSegmentation's "Acc")
* F1_c        = 2 TP / (2 TP + FP + FN)
* support_c   = TP + FN               (ground-truth pixels of class c)

NaN handling: a per-class value whose denominator is 0 is NaN, and class means (mIoU, mean
accuracy, mean precision/recall/F1) are taken over the non-NaN classes only (``nanmean``), as
MMSegmentation does. So a class absent from both the prediction and the ground truth is NaN in
IoU and F1 and does not count in mIoU; a class present in the ground truth but never predicted
has IoU 0 and recall 0 (it counts) and NaN precision; a class predicted but absent from the
ground truth has IoU 0 and precision 0 (it counts, as a false-positive class) and NaN recall.
Pixel accuracy is ``trace(conf) / conf.sum()``.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence

import numpy as np

from segaug.data.layout import IGNORE_INDEX
from segaug.errors import SegaugError


def confusion_matrix(
    pred: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int = IGNORE_INDEX
) -> np.ndarray:
    """``num_classes x num_classes`` int64 confusion matrix (rows = ground truth, cols = prediction).

    Pixels whose target is ``ignore_index`` are skipped. Predictions must be class indices in
    ``[0, num_classes)``; target values other than those and ``ignore_index`` are an error.
    """
    pred = np.asarray(pred)
    target = np.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {pred.shape} != target shape {target.shape}")
    valid = target != ignore_index
    t = target[valid].astype(np.int64, copy=False)
    p = pred[valid].astype(np.int64, copy=False)
    if t.size and (t.min() < 0 or t.max() >= num_classes):
        bad = sorted({int(v) for v in np.unique(t) if v < 0 or v >= num_classes})
        raise SegaugError(
            f"label values {bad} are outside the class table (0..{num_classes - 1}, {ignore_index} = ignore)"
        )
    if p.size and (p.min() < 0 or p.max() >= num_classes):
        raise ValueError(f"predictions outside 0..{num_classes - 1}")
    return (
        np.bincount(t * num_classes + p, minlength=num_classes * num_classes)
        .reshape(num_classes, num_classes)
        .astype(np.int64, copy=False)
    )


class ConfusionMeter:
    """Accumulates a confusion matrix over many images."""

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX):
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.conf = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(self, pred: np.ndarray, target: np.ndarray) -> None:
        self.conf += confusion_matrix(pred, target, self.num_classes, self.ignore_index)

    def add(self, conf: np.ndarray) -> None:
        """Add an already computed confusion matrix (e.g. one built on the GPU)."""
        conf = np.asarray(conf, dtype=np.int64)
        if conf.shape != self.conf.shape:
            raise ValueError(f"confusion shape {conf.shape} != {self.conf.shape}")
        self.conf += conf

    def reset(self) -> None:
        self.conf[:] = 0


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = num.astype(np.float64)
    den = den.astype(np.float64)
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _nanmean(a: np.ndarray) -> float:
    a = a[~np.isnan(a)]
    return float(a.mean()) if a.size else math.nan


def scores(conf: np.ndarray, class_names: Sequence[str]) -> dict:
    """Scores from a confusion matrix (fractions in [0, 1]; see the module doc for NaNs).

    Returns ``{"miou", "mean_acc", "pixel_acc", "mean_precision", "mean_recall", "mean_f1",
    "num_pixels", "class_names", "iou", "precision", "recall", "f1", "support"}`` where the
    per-class entries are dicts keyed by class name (``support`` = ground-truth pixel count).
    """
    conf = np.asarray(conf, dtype=np.int64)
    n = len(class_names)
    if conf.shape != (n, n):
        raise SegaugError(f"confusion matrix {conf.shape} does not match {n} class names")
    tp = np.diag(conf)
    gt = conf.sum(axis=1)
    pr = conf.sum(axis=0)
    fp = pr - tp
    fn = gt - tp
    iou = _div(tp, tp + fp + fn)
    precision = _div(tp, pr)
    recall = _div(tp, gt)
    f1 = _div(2 * tp, 2 * tp + fp + fn)
    total = int(conf.sum())
    names = list(class_names)

    def per_class(a):
        return {name: float(v) for name, v in zip(names, a)}

    return {
        "miou": _nanmean(iou),
        "mean_acc": _nanmean(recall),
        "pixel_acc": float(tp.sum() / total) if total else math.nan,
        "mean_precision": _nanmean(precision),
        "mean_recall": _nanmean(recall),
        "mean_f1": _nanmean(f1),
        "num_pixels": total,
        "class_names": names,
        "iou": per_class(iou),
        "precision": per_class(precision),
        "recall": per_class(recall),
        "f1": per_class(f1),
        "support": {name: int(v) for name, v in zip(names, gt)},
    }


def jsonable(obj):
    """Replace NaN/inf floats by None (JSON has no NaN), recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    return obj


def confusion_csv(conf: np.ndarray, class_names: Sequence[str]) -> str:
    """The confusion matrix as CSV: header ``gt\\pred,<names>``, one row per ground-truth class."""
    conf = np.asarray(conf, dtype=np.int64)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["gt\\pred", *class_names])
    for name, row in zip(class_names, conf):
        w.writerow([name, *(int(v) for v in row)])
    return buf.getvalue()


# ---------------------------------------------------------------- data balance (Table 4)
def class_entropy(counts: Sequence[float]) -> float:
    """Class entropy in bits: ``H = -sum_c p_c log2 p_c`` with ``p_c = n_c / sum n``.

    ``n_c`` = number of images that contain class ``c`` (background and ignore left out by the
    caller). Higher is more balanced; the maximum is ``log2 K`` for ``K`` classes (4.32 for
    VOC's 20 object classes). Classes with ``n_c = 0`` contribute 0.
    """
    n = np.asarray(counts, dtype=np.float64)
    if n.size == 0 or n.sum() <= 0:
        raise SegaugError("class entropy needs at least one class with a non-zero count")
    p = n[n > 0] / n.sum()
    return float(-(p * np.log2(p)).sum())


def class_imbalance_ratio(counts: Sequence[float]) -> float:
    """Class imbalance ratio (CIR): ``min_c n_c / max_c n_c`` over the same counts as entropy.

    1 = every class in as many images as every other; near 0 = one class dominates. (It can
    fall while entropy rises: balancing a rare class adds its co-occurring frequent classes
    too, raising the maximum.)
    """
    n = np.asarray(counts, dtype=np.float64)
    if n.size == 0 or n.max() <= 0:
        raise SegaugError("class imbalance ratio needs at least one class with a non-zero count")
    return float(n.min() / n.max())
