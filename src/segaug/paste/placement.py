"""Where to paste an object: a small strategy interface and its implementations.

A *placer* gets the target image and label (with any earlier pastes already applied), a
:class:`Candidate` -- the pool object after scaling and flipping -- and the per-image random
generator, and answers with a :class:`Placement` (top-left corner, final size and scale, and
a human-readable ``reason`` it was accepted) or ``None`` to skip the object.

Only :class:`RandomPlacer` lives here so far. Later placers plug in the same way and register
in :data:`PLACERS`:

- context-aware: sample positions, accept one whose footprint lies on an allowed surface
  (surface rules such as "car on road"), reason e.g. ``"surface: road 83%"``;
- VLM-guided: ask a vision-language model for points, parse, filter with the surface rule;
- SIGtor-style packing: overlap-free placement of groups of objects.

A placer may change the scale (e.g. shrink an object that does not fit): it then returns a
Placement with the new ``scale`` and size, obtained from :meth:`Candidate.rescaled`, and the
caller pastes ``candidate.rescaled(placement.scale)``.
"""

from __future__ import annotations

from collections.abc import Callable
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


PLACERS: dict[str, Callable[..., Placer]] = {
    "random": RandomPlacer,
}


def make_placer(method: str, **kwargs) -> Placer:
    """Build a placer by name; an unknown name or option is a clear error listing the known ones."""
    try:
        factory = PLACERS[method]
    except KeyError:
        raise SegaugError(f"unknown paste method {method!r}; known methods: {', '.join(sorted(PLACERS))}") from None
    try:
        return factory(**kwargs)
    except TypeError as e:
        raise SegaugError(f"paste method {method!r}: bad options {kwargs} ({e})") from None
