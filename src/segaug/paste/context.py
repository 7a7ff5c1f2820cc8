"""Context-aware placement: surface rules, and the VLM placer that proposes points for them.

A **surface rule** (config ``context.rules``) says, for one pasteable class, which surfaces it
may stand on, the minimum share of its footprint that must lie on them, and how its size is set::

    car:  {surfaces: [road], min_share: 0.6, size: same_class}
    boat: {surfaces: [water], min_share: 0.8, size: surface, surface_fraction: 0.3}

``size`` modes: ``pool`` keeps the scale the sampler drew; ``same_class`` rescales the object so
its height matches the median height of the same-class objects already in the image (falls back
to ``pool`` when there are none); ``surface`` caps the object's larger side at
``surface_fraction`` of the extent (larger bbox side) of the surface region under the chosen
point.

The *surface map* of an image (:class:`segaug.openvocab.surfaces.SurfaceMap`-like: ``names`` and
an index array, 255 = none) comes from the label when the class table has the surfaces
(Vaihingen's impervious surfaces, the demo's road and water), or from open-vocabulary
segmentation cached per image (VOC has no road). Placers receive it through
``set_image(image_id, image, label)`` before the objects of an image are placed.

:class:`ContextPlacer` samples object centres uniformly over the allowed surface pixels and
accepts the first whose footprint share passes the rule (reason ``"surface: road 83%"``).
:class:`VLMPlacer` asks a vision-language model for candidate centres, drops those outside the
image and those failing the surface rule, and takes the first survivor (``"vlm: road 91%"``);
when nothing survives (or the VLM failed, its answer did not parse, or the request budget is
spent) it falls back to :class:`ContextPlacer` and says so in the reason
(``"fallback (vlm: no valid point): surface: road 80%"``, ``"fallback (vlm: HTTP 500): ..."``),
which the manifest records, with how each VLM answer was read (``vlm_answer``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from segaug.errors import SegaugError
from segaug.paste.compose import binary_mask
from segaug.paste.placement import Candidate, Placement, fit_inside

log = logging.getLogger(__name__)

SIZE_MODES = ("pool", "same_class", "surface")
NO_SURFACE = 255


@dataclass(frozen=True)
class SurfaceRule:
    surfaces: tuple[str, ...]
    min_share: float = 0.6
    size: str = "pool"
    surface_fraction: float = 0.3

    @classmethod
    def from_config(cls, class_name: str, cfg: Mapping) -> SurfaceRule:
        key = f"context.rules.{class_name}"
        unknown = sorted(set(cfg) - {"surfaces", "min_share", "size", "surface_fraction"})
        if unknown:
            raise SegaugError(f"{key}: unknown key(s) {unknown}; known: surfaces, min_share, size, surface_fraction")
        if not cfg.get("surfaces"):
            raise SegaugError(f"{key}.surfaces: give at least one surface the class may stand on")
        rule = cls(
            tuple(cfg["surfaces"]),
            float(cfg.get("min_share", 0.6)),
            str(cfg.get("size", "pool")),
            float(cfg.get("surface_fraction", 0.3)),
        )
        if not 0 < rule.min_share <= 1:
            raise SegaugError(f"{key}.min_share must be in (0, 1], got {rule.min_share}")
        if rule.size not in SIZE_MODES:
            raise SegaugError(f"{key}.size: unknown mode {rule.size!r}; known: {', '.join(SIZE_MODES)}")
        return rule


def parse_rules(cfg: Mapping[str, Mapping]) -> dict[str, SurfaceRule]:
    return {name: SurfaceRule.from_config(name, c) for name, c in cfg.items()}


def allowed_mask(surface_names: Sequence[str], surface_index: np.ndarray, rule: SurfaceRule) -> np.ndarray:
    ids = [k for k, n in enumerate(surface_names) if n in rule.surfaces]
    return np.isin(surface_index, ids)


def footprint_share(allowed: np.ndarray, mask: np.ndarray, x: int, y: int) -> float:
    """Share of the object's mask pixels (top-left at x, y) that fall on ``allowed`` pixels.

    Pixels outside the image count as not allowed.
    """
    h, w = mask.shape
    H, W = allowed.shape
    total = int(mask.sum())
    if total == 0:
        return 0.0
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    if x0 >= x1 or y0 >= y1:
        return 0.0
    sub = mask[y0 - y : y1 - y, x0 - x : x1 - x]
    return float((sub & allowed[y0:y1, x0:x1]).sum()) / total


def median_class_height(label: np.ndarray, class_index: int, min_area: int = 4) -> float | None:
    """Median bbox height of the connected components of ``class_index`` in ``label``."""
    n, _, stats, _ = cv2.connectedComponentsWithStats((label == class_index).astype(np.uint8), connectivity=8)
    heights = [stats[i, cv2.CC_STAT_HEIGHT] for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= min_area]
    return float(np.median(heights)) if heights else None


def region_extent(allowed: np.ndarray, cx: int, cy: int) -> int:
    """Larger bbox side of the allowed connected region containing (cx, cy) (0 if none)."""
    if not allowed[cy, cx]:
        return 0
    _, labels, stats, _ = cv2.connectedComponentsWithStats(allowed.astype(np.uint8), connectivity=8)
    k = labels[cy, cx]
    return int(max(stats[k, cv2.CC_STAT_WIDTH], stats[k, cv2.CC_STAT_HEIGHT]))


class SurfaceContext:
    """Per-image state shared by the context placers: the surface map and the label.

    ``surfaces_for(image_id, image, label) -> (names, index)`` supplies the surface map (from the
    label, or a cached open-vocabulary prediction).
    """

    def __init__(
        self,
        rules: Mapping[str, SurfaceRule],
        class_names: Sequence[str],
        surfaces_for: Callable[[str, np.ndarray, np.ndarray], tuple[Sequence[str], np.ndarray]],
    ):
        unknown = sorted(set(rules) - set(class_names))
        if unknown:
            raise SegaugError(f"context.rules: unknown class(es) {unknown}; known: {', '.join(class_names)}")
        self.rules = dict(rules)
        self.class_names = list(class_names)
        self.surfaces_for = surfaces_for
        self.names: Sequence[str] = ()
        self.index: np.ndarray | None = None
        self.label: np.ndarray | None = None

    def set_image(self, image_id: str, image: np.ndarray, label: np.ndarray) -> None:
        self.names, self.index = self.surfaces_for(image_id, image, label)
        if self.index.shape != label.shape:
            raise SegaugError(
                f"surface map of {image_id} is {self.index.shape[1]}x{self.index.shape[0]}, "
                f"the label {label.shape[1]}x{label.shape[0]}; rebuild the surface maps"
            )
        self.label = label

    def rule(self, obj: Candidate) -> SurfaceRule:
        try:
            return self.rules[obj.class_name]
        except KeyError:
            raise SegaugError(
                f"no surface rule for class {obj.class_name!r}: add it under context.rules "
                f"(rules exist for {', '.join(sorted(self.rules)) or 'no class'})"
            ) from None

    def allowed(self, rule: SurfaceRule) -> np.ndarray:
        if self.index is None:
            raise RuntimeError("set_image() must be called before placing objects")
        return allowed_mask(self.names, self.index, rule)

    def sized(self, obj: Candidate, rule: SurfaceRule, allowed: np.ndarray, cx: int, cy: int) -> Candidate:
        """Apply the rule's size mode (``same_class`` / ``surface``) to the candidate."""
        if rule.size == "same_class":
            h = median_class_height(self.label, obj.class_index)
            if h:
                return obj.rescaled(max(h / obj.base_rgba.shape[0], 1e-3))
        elif rule.size == "surface":
            extent = region_extent(allowed, cx, cy)
            side = max(obj.height, obj.width)
            if extent and side > rule.surface_fraction * extent:
                return obj.rescaled(obj.scale * rule.surface_fraction * extent / side)
        return obj


def _describe(rule: SurfaceRule, share: float) -> str:
    return f"surface: {'/'.join(rule.surfaces)} {round(100 * share)}%"


class ContextPlacer:
    """Rule-based context placement (see the module docstring)."""

    name = "context"

    def __init__(self, context: SurfaceContext, max_tries: int = 50, min_scale: float = 0.25):
        self.context = context
        self.max_tries = int(max_tries)
        self.min_scale = float(min_scale)

    def set_image(self, image_id, image, label):
        self.context.set_image(image_id, image, label)

    def try_point(
        self, obj: Candidate, rule: SurfaceRule, allowed: np.ndarray, cx: int, cy: int
    ) -> tuple[Placement | None, float]:
        """The placement centred at (cx, cy) if it passes the rule, and its footprint share."""
        H, W = allowed.shape
        cand = fit_inside(self.context.sized(obj, rule, allowed, cx, cy), H, W, self.min_scale)
        if cand is None:
            return None, 0.0
        mask = binary_mask(cand.rgba)
        x = int(np.clip(cx - cand.width // 2, 0, W - cand.width))
        y = int(np.clip(cy - cand.height // 2, 0, H - cand.height))
        share = footprint_share(allowed, mask, x, y)
        if not mask.any() or share < rule.min_share:
            return None, share
        return cand.placement(x, y, _describe(rule, share)), share

    def place(self, rng, image, label, obj):
        rule = self.context.rule(obj)
        allowed = self.context.allowed(rule)
        ys, xs = np.nonzero(allowed)
        if len(xs) == 0:
            return None
        for _ in range(self.max_tries):
            k = int(rng.integers(len(xs)))
            pl, _ = self.try_point(obj, rule, allowed, int(xs[k]), int(ys[k]))
            if pl is not None:
                return pl
        return None


class VLMPlacer:
    """VLM-proposed centres filtered by the surface rule; rule-based fallback (module docstring).

    ``client`` follows :class:`segaug.vlm.client.VLMPlacementClient` (``propose(image, mask_rgb,
    legend, class_name, size, surfaces) -> Proposal``); ``colorize(label)`` gives the colour-coded
    mask and ``legend`` the colour of each class shown to the model. ``stats`` counts accepted
    VLM points, fallbacks by cause (``HTTP 404``, ``timeout``, ``parse error``, ``no valid
    point``, ...), requests, cache hits and the answer conventions read, for the summary.

    :meth:`finish` (called by the paste pipeline before the set is kept) records ``vlm_share``,
    the share of objects the VLM placed, and raises :class:`SegaugError` with the share and the
    top reasons when it is below ``min_vlm_share`` -- unless ``allow_all_fallback``.
    """

    name = "vlm"

    def __init__(
        self,
        context: SurfaceContext,
        client,
        legend: Mapping[str, tuple[int, int, int]],
        colorize: Callable[[np.ndarray], np.ndarray],
        fallback: ContextPlacer | None = None,
        min_vlm_share: float = 0.0,
        allow_all_fallback: bool = True,
    ):
        self.context = context
        self.client = client
        self.legend = dict(legend)
        self.colorize = colorize
        self.fallback = fallback or ContextPlacer(context)
        self.min_vlm_share = float(min_vlm_share)
        self.allow_all_fallback = bool(allow_all_fallback)
        self.stats = {
            "vlm_accepted": 0,
            "fallback": 0,
            "fallback_reasons": {},
            "requests": 0,
            "cache_hits": 0,
            "dropped_outside": 0,
            "answer_conventions": {},
        }

    def set_image(self, image_id, image, label):
        self.context.set_image(image_id, image, label)

    def _fallback(self, rng, image, label, obj, why: str):
        self.stats["fallback"] += 1
        self.stats["fallback_reasons"][why] = self.stats["fallback_reasons"].get(why, 0) + 1
        pl = self.fallback.place(rng, image, label, obj)
        if pl is None:
            return None
        return Placement(**{**pl.to_dict(), "reason": f"fallback (vlm: {why}): {pl.reason}"})

    def place(self, rng, image, label, obj):
        rule = self.context.rule(obj)
        allowed = self.context.allowed(rule)
        prop = self.client.propose(
            image,
            self.colorize(label),
            self.legend,
            obj.class_name,
            (obj.width, obj.height),
            surfaces=list(rule.surfaces),
        )
        self.stats["requests"] += prop.requests
        self.stats["cache_hits"] += int(prop.cached)
        self.stats["dropped_outside"] += prop.dropped_outside
        convention = getattr(prop, "convention", None)
        if convention:
            conv = self.stats["answer_conventions"]
            conv[convention] = conv.get(convention, 0) + 1
        if prop.error:
            why = getattr(prop, "cause", None) or prop.error.split(":")[0]
            return self._fallback(rng, image, label, obj, why[:60])
        for cx, cy in prop.points:
            pl, share = self.fallback.try_point(obj, rule, allowed, int(cx), int(cy))
            if pl is not None:
                self.stats["vlm_accepted"] += 1
                reason = f"vlm: {_describe(rule, share).split(': ', 1)[1]}"
                return Placement(**{**pl.to_dict(), "reason": reason, "vlm_answer": convention})
        return self._fallback(rng, image, label, obj, "no valid point" if prop.points else "no point")

    def finish(self) -> None:
        """Record ``vlm_share``; raise if the VLM placed too few objects (class docstring)."""
        asked = self.stats["vlm_accepted"] + self.stats["fallback"]
        share = self.stats["vlm_accepted"] / asked if asked else 0.0
        self.stats["vlm_share"] = round(share, 4)
        if not asked or self.allow_all_fallback or share >= self.min_vlm_share:
            return
        reasons = sorted(self.stats["fallback_reasons"].items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        top = ", ".join(f"{why} x{n}" for why, n in reasons)
        raise SegaugError(
            f"vlm paste: the VLM placed {self.stats['vlm_accepted']} of {asked} objects ({share:.0%}), below "
            f"vlm.min_vlm_share {self.min_vlm_share:.0%}; the others fell back ({top}). Check the "
            "model's answers in the log (vlm.answer_format, vlm.coordinates, vlm.max_tokens), or set "
            "vlm.allow_all_fallback: true to keep such a set"
        )
