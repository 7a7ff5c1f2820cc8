"""Pixel-wise losses for segmentation, all ignoring label 255.

``create_loss(name, num_classes, class_weights=None, ignore_index=255, **kw)`` builds a loss of
the registry :data:`LOSSES` (a new loss: a :class:`LossSpec` and one :func:`register_loss` line):

* ``"ce"``           cross-entropy (class weights allowed but optional)
* ``"weighted_ce"``  cross-entropy with per-class weights (required)
* ``"focal"``        multi-class (softmax) focal loss ``-(1 - p_t)^gamma log p_t``, optionally
                     weighted per class (``alpha_t`` = class weight); gamma=0 is cross-entropy

Normalisation: by default the loss is the (weighted) mean over the non-ignored pixels, as
PyTorch's ``cross_entropy`` does: ``sum(w_t * l) / sum(w_t)``. With ``avg_non_ignore=False``
it is ``sum(w_t * l) / (number of pixels, ignored ones included)``, which is what
MMSegmentation's ``CrossEntropyLoss`` does by default (``avg_non_ignore=False``). A batch with
no valid pixel gives a loss of 0 (not NaN).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from segaug.errors import SegaugError


class SegLoss(nn.Module):
    def __init__(
        self,
        num_classes: int,
        gamma: float = 0.0,
        class_weights: Sequence[float] | None = None,
        ignore_index: int = 255,
        avg_non_ignore: bool = True,
    ):
        super().__init__()
        self.num_classes = num_classes
        self.gamma = float(gamma)
        self.ignore_index = ignore_index
        self.avg_non_ignore = avg_non_ignore
        if class_weights is not None:
            w = torch.as_tensor(np.asarray(class_weights, dtype=np.float32))
            if w.shape != (num_classes,):
                raise SegaugError(f"loss: {w.numel()} class weights given for {num_classes} classes")
            if bool((w < 0).any()) or not bool(torch.isfinite(w).all()):
                raise SegaugError("loss: class weights must be finite and non-negative")
            self.register_buffer("weight", w)
        else:
            self.weight = None

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = target.long()
        valid = target != self.ignore_index
        safe_t = torch.where(valid, target, torch.zeros_like(target))
        logp = F.log_softmax(logits.float(), dim=1)
        logp_t = logp.gather(1, safe_t.unsqueeze(1)).squeeze(1)
        loss = -logp_t
        if self.gamma:
            loss = loss * (1.0 - logp_t.exp()).clamp(min=0).pow(self.gamma)
        w = valid.to(loss.dtype)
        if self.weight is not None:
            w = w * self.weight.to(loss.dtype)[safe_t]
        total = (loss * w).sum()
        if self.avg_non_ignore:
            den = w.sum()
        else:
            den = torch.tensor(float(target.numel()), device=loss.device)
        # no valid pixel: total is 0 too, and the loss is 0 (no host sync needed)
        return torch.where(den > 0, total / den.clamp(min=1e-12), total * 0.0)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, weighted={self.weight is not None}, ignore={self.ignore_index}"


@dataclass(frozen=True)
class LossSpec:
    """A loss of the registry: its options with their defaults, whether it needs class
    weights, and how to build it: ``build(num_classes, class_weights, ignore_index, **options)``."""

    name: str
    options: dict
    build: Callable[..., nn.Module]
    needs_weights: bool = False


LOSSES: dict[str, LossSpec] = {}


def register_loss(spec: LossSpec) -> LossSpec:
    LOSSES[spec.name] = spec
    return spec


def _seg_loss(num_classes, class_weights, ignore_index, gamma=0.0, avg_non_ignore=True):
    gamma = float(gamma)
    if gamma < 0:
        raise SegaugError(f"loss 'focal': gamma must be >= 0, got {gamma}")
    return SegLoss(num_classes, gamma, class_weights, ignore_index, bool(avg_non_ignore))


register_loss(LossSpec("ce", {"avg_non_ignore": True}, _seg_loss))
register_loss(LossSpec("weighted_ce", {"avg_non_ignore": True}, _seg_loss, needs_weights=True))
register_loss(LossSpec("focal", {"gamma": 2.0, "avg_non_ignore": True}, _seg_loss))


def create_loss(
    name: str,
    num_classes: int,
    class_weights: Sequence[float] | None = None,
    ignore_index: int = 255,
    **kw,
) -> nn.Module:
    """Build a registered loss by name; unknown names or options are a SegaugError."""
    spec = LOSSES.get(name)
    if spec is None:
        raise SegaugError(f"loss: unknown name {name!r}; choose one of {', '.join(LOSSES)}")
    unknown = sorted(set(kw) - set(spec.options))
    if unknown:
        raise SegaugError(f"loss {name!r}: unknown option(s) {unknown}; known: {sorted(spec.options)}")
    if spec.needs_weights and class_weights is None:
        raise SegaugError(f"loss {name!r} needs class_weights (a list, 'inverse' or 'median')")
    return spec.build(num_classes, class_weights, ignore_index, **{**spec.options, **kw})


def class_weights_from_counts(counts: Sequence[int], mode: str = "inverse") -> np.ndarray:
    """Per-class loss weights from per-class pixel counts.

    * ``"inverse"``: ``w_c = N / (K * n_c)`` (``N`` all counted pixels, ``K`` classes present),
      so equal counts give weights 1.
    * ``"median"``: median-frequency balancing (Eigen & Fergus 2015),
      ``w_c = median_k(f_k) / f_c`` with ``f_c = n_c / N`` and the median over present classes.

    A class with no pixels gets weight 1.0: it never occurs as a target, so its weight has no
    effect on a loss that weights by the target class.
    """
    n = np.asarray(counts, dtype=np.float64)
    if n.ndim != 1 or n.size == 0 or (n < 0).any():
        raise SegaugError("class weights: counts must be a non-empty list of non-negative numbers")
    present = n > 0
    if not present.any():
        raise SegaugError("class weights: no labelled pixels to count")
    w = np.ones_like(n)
    freq = n / n.sum()
    if mode == "inverse":
        w[present] = 1.0 / (present.sum() * freq[present])
    elif mode == "median":
        w[present] = np.median(freq[present]) / freq[present]
    else:
        raise SegaugError(f"class weights: unknown mode {mode!r}; use 'inverse' or 'median'")
    return w
