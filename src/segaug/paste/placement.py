"""Where to paste an object: the placer interface, and the random placer.

A *placer* is any object with

- ``name`` (str): recorded in the log and as summary.json's ``method``;
- ``place(rng, image, label, obj) -> Placement | None``: called once per drawn object with the
  copy's random generator, the target image (H x W x 3 uint8) and label (H x W uint8) with the
  earlier pastes of this copy already applied, and the :class:`Candidate` (the pool object
  after scaling and flipping). It answers with ``obj.placement(x, y, reason)`` -- top-left
  corner and a short human-readable ``reason`` the position was accepted, written to the
  manifest -- or ``None`` to skip the object. Draw every random number from ``rng``: that keeps
  a pasted set byte-identical for a seed, whatever the number of worker processes.

A placer may change the scale (e.g. shrink an object that does not fit, :func:`fit_inside`):
it then answers with the placement of ``obj.rescaled(scale)``; the pipeline pastes the object
at the placement's scale. Three optional hooks, looked up by name:

- ``set_image(image_id, image, label)``: once per *source* image, before its copies (not per
  copy): per-image state such as a surface map;
- ``finish()``: once, after the last image, before summary.json is written; raise a
  SegaugError to fail the job (the VLM placer does when the VLM placed too few objects);
- ``stats`` (a dict, or None): job-wide counters written to summary.json as
  ``placer_stats``; a placer with stats runs in one process.

Placers here: :class:`RandomPlacer`; the surface-rule and VLM placers are in
:mod:`segaug.paste.context`. A paste method built on a placer calls
:func:`segaug.paste.placers.paste_with_placer` (see docs/extending.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from segaug.errors import SegaugError
from segaug.paste.compose import binary_mask, transform_object


@dataclass(frozen=True)
class Placement:
    """One accepted paste: object, where (top-left x, y), final size and transform, and why."""

    object_id: str  # pool crop name, e.g. "crops/000012.png"
    class_index: int
    x: int
    y: int
    width: int
    height: int
    scale: float
    flip: bool
    reason: str
    vlm_answer: str | None = None  # VLM placements: how the answer was read (segaug.vlm.parse)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Candidate:
    """A pool object ready to place: the original crop and its transformed version."""

    object_id: str
    class_index: int
    class_name: str
    base_rgba: np.ndarray  # the crop as stored in the pool
    scale: float
    flip: bool
    rgba: np.ndarray  # transform_object(base_rgba, scale, flip)

    @classmethod
    def make(cls, object_id, class_index, class_name, base_rgba, scale, flip) -> Candidate:
        rgba = transform_object(base_rgba, scale, flip)
        return cls(object_id, class_index, class_name, base_rgba, float(scale), bool(flip), rgba)

    @property
    def height(self) -> int:
        return self.rgba.shape[0]

    @property
    def width(self) -> int:
        return self.rgba.shape[1]

    def rescaled(self, scale: float) -> Candidate:
        return Candidate.make(self.object_id, self.class_index, self.class_name, self.base_rgba, scale, self.flip)

    def placement(self, x: int, y: int, reason: str) -> Placement:
        return Placement(
            self.object_id,
            self.class_index,
            int(x),
            int(y),
            self.width,
            self.height,
            self.scale,
            self.flip,
            reason,
        )


@runtime_checkable
class Placer(Protocol):
    """Strategy: choose where (and possibly at which scale) an object goes, or None to skip."""

    name: str

    def place(
        self,
        rng: np.random.Generator,
        image: np.ndarray,
        label: np.ndarray,
        obj: Candidate,
    ) -> Placement | None: ...


def fit_inside(obj: Candidate, H: int, W: int, min_scale: float) -> Candidate | None:
    """``obj``, shrunk if needed so it fits in an H x W image; None if below ``min_scale``.

    The shrink keeps the aspect ratio; rounding is corrected by stepping the scale down.
    """
    if obj.height <= H and obj.width <= W:
        return obj
    bh, bw = obj.base_rgba.shape[:2]
    scale = min(W / bw, H / bh)
    for _ in range(8):
        if scale < min_scale:
            return None
        cand = obj.rescaled(scale)
        if cand.height <= H and cand.width <= W:
            return cand
        scale *= 0.99
    return None


class RandomPlacer:
    """Uniform top-left corner such that the whole object lies inside the image.

    An object larger than the image is first shrunk to fit (aspect kept); if that needs a
    scale below ``min_scale`` (of the pool crop) or leaves an empty mask, the object is skipped.
    Reason: ``"random"`` or ``"random (shrunk to fit)"``.
    """

    name = "random"

    def __init__(self, min_scale: float = 0.25):
        if min_scale <= 0:
            raise SegaugError(f"random placer: min_scale must be positive, got {min_scale}")
        self.min_scale = float(min_scale)

    def place(self, rng, image, label, obj):
        H, W = label.shape
        fitted = fit_inside(obj, H, W, self.min_scale)
        if fitted is None or not binary_mask(fitted.rgba).any():
            return None
        x = int(rng.integers(0, W - fitted.width + 1))
        y = int(rng.integers(0, H - fitted.height + 1))
        reason = "random" if fitted is obj else "random (shrunk to fit)"
        return fitted.placement(x, y, reason)
