"""SIGtor-style copy-paste: grouped, augmented objects packed without overlap.

SIGtor ("Synthetic Image GeneraTOR", S. Tesema) builds new training images from cut-out
objects. The ideas we follow, and where we deviate:

1. **Objects that overlap in their source image travel together** (SIGtor's "expand
   annotation" step). A person sitting on a chair is cut, moved and scaled as one unit so
   their occlusion stays realistic. :func:`group_objects` joins objects whose boxes overlap
   -- IoU above ``iou_thr`` or intersection-over-the-smaller-box above ``ios_thr`` --
   *transitively* into groups; a group is placed by its union box and its members keep
   their relative layout. Deviation: SIGtor writes one (non-transitive) annotation line per
   box; we take the transitive closure, so two lines never split one cluster. When drawing
   from the pool, :func:`annotation_lines` mirrors SIGtor's rule for which objects come
   along: an object fully inside another object's box may appear alone (B inside A); any
   other object brings its whole group (A brings B and C).

2. **Per-object augmentation** (:func:`augment_object`): horizontal flip, a *size-dependent*
   rescale, colour jitter and an occasional blur. SIGtor uses three COCO size bands (small
   objects x1.5-3, medium x0.75-2, large x0.5-1.5); we use a continuous version of the same
   rule, see :func:`size_dependent_scale`. A group draws one parameter set for all members.
   Deviation: no vertical flip (street and indoor scenes have an up), no grey-scale or
   sharpness change.

3. **Overlap-free packing** (:func:`pack`): every unit gets a rectangle that overlaps no
   other rectangle. Deviations: SIGtor packs onto an empty background canvas from the top
   left corner (a vertex pool) and may grow the canvas; we paste into an existing training
   image of fixed size, so positions are drawn uniformly at random among all feasible ones
   and must also avoid an ``occupied`` mask -- the image's existing minority-class objects
   (``keep_existing``), which pasting must not hide.

4. **Blending and exact labels** (:mod:`segaug.paste.blend`): hard, Gaussian-feathered or
   Poisson (seamless) blending; the label takes the object's class under the cleaned pasted
   mask (pixels blended but dropped by the clean-up become ignore), and each object's tight
   box is recomputed from the pixels it finally owns.

Randomness: everything is drawn from the ``np.random.Generator`` passed in, in a fixed
order (per group: 7 augmentation draws; then the packer), so equal generators give equal
outputs. :func:`sigtor_dataset` seeds one generator per output image exactly like
:func:`segaug.paste.pipeline.paste_dataset`: ``default_rng([seed, image_index, copy])``.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from segaug.data.canonical import ClassTable, load_pair, samples
from segaug.errors import SegaugError
from segaug.io import atomic_path
from segaug.paste.blend import (
    BLEND_MODES,
    POISSON_RING,
    blend_object_mode,
    clean_mask,
    object_mask,
    tight_box,
)
from segaug.paste.compose import transform_object
from segaug.paste.output import OutputOptions, map_images, write_into_staging
from segaug.paste.pipeline import BalancedObjectSampler, check_options, check_pool, write_pasted_set
from segaug.pool import PoolObject
from segaug.progress import progress

log = logging.getLogger("segaug.paste.sigtor")

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 with x1, y1 exclusive (as the pool's boxes)
SCALE_SPREAD = 1.25  # the size-dependent scale interval is widened by this factor both ways


# ================================================================ objects and groups


@dataclass
class SigtorObject:
    """One object to paste: its RGBA crop, class, id, and (optionally) where it came from.

    ``source_id`` and ``source_box`` (its box in the source image) are what grouping needs;
    objects without them are always pasted alone.
    """

    rgba: np.ndarray
    class_index: int
    object_id: str
    source_id: str | None = None
    source_box: Box | None = None
    class_name: str | None = None


def as_sigtor_object(obj) -> SigtorObject:
    """Accept a SigtorObject, a pool object, a Candidate-like object or a tuple.

    Tuples are ``(rgba, class_index, object_id)`` or ``(rgba, class_index, object_id,
    source_id, source_box)``. Candidate-like means attributes ``rgba`` (array),
    ``class_index`` and ``object_id``; ``source_id``/``source_box``/``bbox``/``class_name``
    are used when present.
    """
    if isinstance(obj, SigtorObject):
        return obj
    if isinstance(obj, PoolObject):
        return SigtorObject(obj.rgba(), obj.class_index, obj.crop, obj.source_id, tuple(obj.bbox), obj.class_name)
    if isinstance(obj, (tuple, list)):
        if len(obj) not in (3, 5):
            raise ValueError(
                f"object tuples are (rgba, class_index, object_id[, source_id, source_box]), got {len(obj)} items"
            )
        rgba, cls, oid, *src = obj
        sid, box = src if src else (None, None)
        return SigtorObject(
            np.asarray(rgba), int(cls), str(oid), sid, None if box is None else tuple(int(v) for v in box)
        )
    rgba = getattr(obj, "rgba", None)
    if isinstance(rgba, np.ndarray):
        box = getattr(obj, "source_box", None) or getattr(obj, "bbox", None)
        return SigtorObject(
            rgba,
            int(obj.class_index),
            str(obj.object_id),
            getattr(obj, "source_id", None),
            None if box is None else tuple(int(v) for v in box),
            getattr(obj, "class_name", None),
        )
    raise TypeError(f"cannot paste object of type {type(obj).__name__}")


def box_overlap(a: Box, b: Box) -> tuple[float, float]:
    """``(IoU, intersection over the smaller box's area)`` of two boxes (0 for empty boxes)."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0, 0.0
    inter = iw * ih
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area_a + area_b - inter), inter / min(area_a, area_b)


def group_objects(boxes: Sequence[Box], iou_thr: float = 0.1, ios_thr: float = 0.5) -> list[list[int]]:
    """Partition box indices into groups moved together.

    Boxes i and j are linked when IoU > ``iou_thr`` or intersection-over-smaller >
    ``ios_thr`` (so a small box mostly inside a big one is linked even at tiny IoU); groups
    are the connected components of that relation -- transitive: if A-B and B-C are linked,
    A, B and C form one group even when A and C do not touch. Groups come ordered by their
    smallest index, members ascending.
    """
    n = len(boxes)
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(n):
        for j in range(i + 1, n):
            iou, ios = box_overlap(boxes[i], boxes[j])
            if iou > iou_thr or ios > ios_thr:
                ri, rj = root(i), root(j)
                if ri != rj:
                    parent[max(ri, rj)] = min(ri, rj)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(root(i), []).append(i)
    return sorted(groups.values(), key=lambda g: g[0])


def _contained(inner: Box, outer: Box) -> bool:
    return (
        outer[0] <= inner[0]
        and outer[1] <= inner[1]
        and inner[2] <= outer[2]
        and inner[3] <= outer[3]
        and inner != outer
    )


def annotation_lines(
    pool_objects: Sequence[PoolObject], iou_thr: float = 0.1, ios_thr: float = 0.5
) -> dict[str, list[PoolObject]]:
    """For each pool object (by crop name), the objects pasted with it -- SIGtor's step 1.

    An object whose box lies completely inside another box of the same source image stands
    alone (like B inside A in SIGtor's README); any other object brings its whole
    :func:`group_objects` group from that image, itself included, in pool order.
    """
    by_source: dict[str, list[PoolObject]] = {}
    for o in pool_objects:
        by_source.setdefault(o.source_id, []).append(o)
    lines: dict[str, list[PoolObject]] = {}
    for objs in by_source.values():
        boxes = [tuple(o.bbox) for o in objs]
        for members in group_objects(boxes, iou_thr, ios_thr):
            for i in members:
                inside = any(_contained(boxes[i], boxes[j]) for j in members if j != i)
                lines[objs[i].crop] = [objs[i]] if inside else [objs[j] for j in members]
    return lines


# ================================================================ per-object augmentation


@dataclass(frozen=True)
class AugParams:
    """One draw of the per-object augmentation (shared by all members of a group)."""

    flip: bool
    scale: float
    brightness: float  # RGB multiplied by this
    contrast: float  # distance from the object's mean grey multiplied by this
    saturation: float  # distance from each pixel's grey multiplied by this
    blur_sigma: float  # Gaussian blur sigma in pixels; 0 = no blur

    def to_dict(self) -> dict:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def size_dependent_scale(u: float, size: float, size_ref: float, scale_range: tuple[float, float]) -> float:
    """The rescale factor for an object of ``size`` pixels (sqrt of its box area).

    The rule (a continuous form of SIGtor's small/medium/large bands): the new size is
    log-uniform between the object's own size and the reference size ``size_ref``, with
    that interval widened by :data:`SCALE_SPREAD` (x1.25) both ways and clipped to
    ``scale_range``. So an object half the reference size is scaled by 0.8-2.5 (it mostly
    grows), one twice the reference by 0.4-1.25 (it mostly shrinks), one at the reference
    by 0.8-1.25; ``scale_range`` caps both (default 0.5-2). ``u`` in [0, 1) picks the point
    in the interval (log scale).
    """
    lo, hi = scale_range
    r = math.log(size_ref / max(size, 1e-6))
    a = max(min(0.0, r) - math.log(SCALE_SPREAD), math.log(lo))
    b = min(max(0.0, r) + math.log(SCALE_SPREAD), math.log(hi))
    if a > b:  # scale_range excludes the whole interval: take the nearest bound
        return float(lo if b < math.log(lo) else hi)
    return float(math.exp(a + u * (b - a)))


def draw_augmentation(
    rng: np.random.Generator,
    size: float,
    flip_prob: float = 0.5,
    scale_range: tuple[float, float] = (0.5, 2.0),
    size_ref: float = 96.0,
    jitter: float = 0.2,
    blur_prob: float = 0.2,
    max_scale: float = math.inf,
) -> AugParams:
    """Draw augmentation parameters: always exactly 7 draws, whatever the outcome.

    ``jitter`` j draws brightness, contrast and saturation factors from U(1 - j, 1 + j); with
    probability ``blur_prob`` a blur of sigma U(0.5, 1.5). ``max_scale`` caps the scale (to
    make an object fit the image), even below ``scale_range``.
    """
    flip = bool(rng.random() < flip_prob)
    u = float(rng.random())
    b, c, s = (float(v) for v in rng.uniform(1.0 - jitter, 1.0 + jitter, 3))
    blur = bool(rng.random() < blur_prob)
    sigma = float(rng.uniform(0.5, 1.5))
    scale = min(size_dependent_scale(u, size, size_ref, scale_range), max_scale)
    return AugParams(flip, scale, b, c, s, sigma if blur else 0.0)


_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def color_jitter(rgba: np.ndarray, brightness: float, contrast: float, saturation: float):
    """Brightness, contrast and saturation change of the RGB on the object mask.

    Alpha is untouched and RGB off the mask stays as it was. Contrast pivots on the mean
    grey of the object's pixels; saturation on each pixel's grey (ITU-R 601 luma).
    """
    out = rgba.copy()
    m = object_mask(rgba)
    if not m.any() or (brightness, contrast, saturation) == (1.0, 1.0, 1.0):
        return out
    rgb = rgba[..., :3][m].astype(np.float32) * brightness
    mean_grey = float((rgb @ _LUMA).mean())
    rgb = (rgb - mean_grey) * contrast + mean_grey
    grey = (rgb @ _LUMA)[:, None]
    rgb = grey + (rgb - grey) * saturation
    out[..., :3][m] = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    return out


def masked_blur(rgba: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of the object's RGB that ignores off-mask pixels (no dark fringe).

    Normalised convolution: blur(rgb * mask) / blur(mask), written on the mask only.
    """
    out = rgba.copy()
    m = object_mask(rgba)
    if sigma <= 0 or not m.any():
        return out
    a = m.astype(np.float32)
    num = cv2.GaussianBlur(rgba[..., :3].astype(np.float32) * a[..., None], (0, 0), sigma)
    den = cv2.GaussianBlur(a, (0, 0), sigma)
    if num.ndim == 2:  # cv2 drops a singleton channel axis on 1-pixel-wide inputs
        num = num.reshape(*a.shape, 3)
    vals = num[m] / np.maximum(den[m], 1e-6)[:, None]
    out[..., :3][m] = np.clip(np.rint(vals), 0, 255).astype(np.uint8)
    return out


def apply_augmentation(rgba: np.ndarray, params: AugParams) -> np.ndarray:
    """Flip + rescale (:func:`segaug.paste.compose.transform_object`; alpha stays binary),
    then colour jitter and blur on the RGB."""
    out = transform_object(rgba, params.scale, params.flip)
    out = color_jitter(out, params.brightness, params.contrast, params.saturation)
    return masked_blur(out, params.blur_sigma)


def augment_object(
    rgba: np.ndarray,
    rng: np.random.Generator,
    flip_prob: float = 0.5,
    scale_range: tuple[float, float] = (0.5, 2.0),
    size_ref: float = 96.0,
    jitter: float = 0.2,
    blur_prob: float = 0.2,
) -> tuple[np.ndarray, AugParams]:
    """Augment one RGBA object; returns ``(new rgba, parameters)``. Deterministic in ``rng``.

    Horizontal flip with ``flip_prob``; rescale by :func:`size_dependent_scale` of the
    crop's size (sqrt(w * h)) against ``size_ref``; colour jitter of strength ``jitter`` on
    RGB only; Gaussian blur with ``blur_prob``. See :func:`draw_augmentation`.
    """
    h, w = rgba.shape[:2]
    params = draw_augmentation(rng, math.sqrt(w * h), flip_prob, scale_range, size_ref, jitter, blur_prob)
    return apply_augmentation(rgba, params), params


# ================================================================ packing


def _integral(occupied: np.ndarray) -> np.ndarray:
    """Summed-area table, (H + 1) x (W + 1): s[y, x] = occupied pixels above-left of (x, y)."""
    return cv2.integral(occupied.astype(np.uint8), sdepth=cv2.CV_32S)


def _is_free(x, y, w, h, W, H, integral, placed, margin) -> bool:
    """No occupied pixel in the rectangle grown by ``margin``, and ``margin`` free pixels
    between it and every placed rectangle."""
    if integral is not None:
        x0, y0 = max(x - margin, 0), max(y - margin, 0)
        x1, y1 = min(x + w + margin, W), min(y + h + margin, H)
        if integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]:
            return False
    for px, py, pw, ph in placed:
        if not (x + w + margin <= px or px + pw + margin <= x or y + h + margin <= py or py + ph + margin <= y):
            return False
    return True


def _feasible(w, h, W, H, integral, placed, margin) -> np.ndarray:
    """Bool (H - h + 1) x (W - w + 1) map: True where a top-left corner is free."""
    xs, ys = np.arange(W - w + 1), np.arange(H - h + 1)
    ok = np.ones((ys.size, xs.size), dtype=bool)
    if integral is not None:
        x0, x1 = np.maximum(xs - margin, 0), np.minimum(xs + w + margin, W)
        y0, y1 = np.maximum(ys - margin, 0), np.minimum(ys + h + margin, H)
        s = integral[np.ix_(y1, x1)] - integral[np.ix_(y0, x1)] - integral[np.ix_(y1, x0)] + integral[np.ix_(y0, x0)]
        ok &= s == 0
    for px, py, pw, ph in placed:  # corners whose rectangle comes too close to this one
        bx0, bx1 = max(px - margin - w + 1, 0), max(px + pw + margin, 0)
        by0, by1 = max(py - margin - h + 1, 0), max(py + ph + margin, 0)
        ok[by0:by1, bx0:bx1] = False
    return ok


def pack(
    sizes: Sequence[tuple[int, int]],
    W: int,
    H: int,
    rng: np.random.Generator,
    occupied: np.ndarray | None = None,
    margin: int = 1,
    max_tries: int = 64,
) -> list[tuple[int, int] | None]:
    """Overlap-free top-left corners for rectangles ``sizes`` = [(w, h), ...] in a W x H image.

    Guarantees, for every returned corner (x, y): the rectangle lies inside the image; it is
    at least ``margin`` pixels away from every other returned rectangle (0: they may touch,
    never overlap) and from every True pixel of ``occupied`` (bool H x W). It may touch the
    image border. Items that cannot be placed get None -- only when, given the items placed
    before them, *no* free position exists.

    Method: items go largest area first (ties: input order). Each takes a position drawn
    uniformly among all free positions: up to ``max_tries`` uniform random corners are
    tested (O(1) each with an integral image of ``occupied``); if none is free, the exact
    map of free corners is computed (vectorised, O(W * H)) and one is drawn from it.
    Rejection sampling and the exact draw are both uniform over the free set, so the result
    is as well. The result is in input order.
    """
    if occupied is not None and occupied.shape != (H, W):
        raise ValueError(f"occupied mask {occupied.shape} does not match image {H}x{W}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    integral = None if occupied is None or not occupied.any() else _integral(occupied.astype(bool))
    order = sorted(range(len(sizes)), key=lambda i: (-sizes[i][0] * sizes[i][1], i))
    out: list[tuple[int, int] | None] = [None] * len(sizes)
    placed: list[tuple[int, int, int, int]] = []
    for i in order:
        w, h = (int(v) for v in sizes[i])
        if w < 1 or h < 1:
            raise ValueError(f"item {i}: size must be at least 1x1, got {w}x{h}")
        if w > W or h > H:
            continue
        spot = None
        for _ in range(max_tries):
            x, y = int(rng.integers(0, W - w + 1)), int(rng.integers(0, H - h + 1))
            if _is_free(x, y, w, h, W, H, integral, placed, margin):
                spot = (x, y)
                break
        if spot is None:
            free = np.flatnonzero(_feasible(w, h, W, H, integral, placed, margin))
            if free.size == 0:
                continue
            k = int(free[rng.integers(free.size)])
            spot = (k % (W - w + 1), k // (W - w + 1))
        out[i] = spot
        placed.append((spot[0], spot[1], w, h))
    return out


# ================================================================ one image


@dataclass
class _Member:
    """A group member after augmentation: its crop and offset inside the group's box."""

    index: int  # position in the caller's object list
    obj: SigtorObject
    rgba: np.ndarray
    dx: int
    dy: int


@dataclass
class _Group:
    gid: int
    params: AugParams
    members: list[_Member]
    width: int
    height: int


def _groups_of(objs: Sequence[SigtorObject], iou_thr, ios_thr) -> list[list[int]]:
    """Objects grouped by :func:`group_objects` within each source image; the rest alone."""
    by_source: dict[str, list[int]] = {}
    for i, o in enumerate(objs):
        if o.source_id is not None and o.source_box is not None:
            by_source.setdefault(o.source_id, []).append(i)
    grouped: list[list[int]] = []
    seen: set[int] = set()
    for idx in by_source.values():
        for g in group_objects([objs[i].source_box for i in idx], iou_thr, ios_thr):
            grouped.append([idx[k] for k in g])
            seen.update(idx[k] for k in g)
    grouped += [[i] for i in range(len(objs)) if i not in seen]
    return sorted(grouped, key=lambda g: g[0])


def _build_group(gid, idx, objs, rng, aug, room_w, room_h) -> _Group:
    """Draw one augmentation for the group, apply it to every member, lay members out."""
    if len(idx) > 1:
        boxes = [objs[i].source_box for i in idx]
        ux0, uy0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
        uw = max(b[2] for b in boxes) - ux0
        uh = max(b[3] for b in boxes) - uy0
        offsets = [(b[0] - ux0, b[1] - uy0) for b in boxes]
    else:
        uh, uw = objs[idx[0]].rgba.shape[:2]
        offsets = [(0, 0)]
    max_scale = min(room_w / uw, room_h / uh) if room_w > 0 and room_h > 0 else 1e-6
    params = draw_augmentation(rng, math.sqrt(uw * uh), max_scale=max_scale, **aug)
    members = []
    for i, (ox, oy) in zip(idx, offsets):
        o = objs[i]
        rgba = apply_augmentation(o.rgba, params)
        if params.flip:
            ox = uw - (ox + o.rgba.shape[1])
        members.append(_Member(i, o, rgba, int(round(ox * params.scale)), int(round(oy * params.scale))))
    width = max(m.dx + m.rgba.shape[1] for m in members)
    height = max(m.dy + m.rgba.shape[0] for m in members)
    return _Group(gid, params, members, width, height)


def _record(m: _Member, g: _Group, reason: str, x=None, y=None, blend=None) -> dict:
    return {
        "object_id": m.obj.object_id,
        "class_index": m.obj.class_index,
        "class_name": m.obj.class_name,
        "source_id": m.obj.source_id,
        "group": g.gid,
        "group_size": len(g.members),
        "x": x,
        "y": y,
        "width": m.rgba.shape[1],
        "height": m.rgba.shape[0],
        "box": None,
        "pixels": 0,
        "blend": blend,
        "augment": g.params.to_dict(),
        "reason": reason,
    }


def _paste_member(image, label, owner, m, x, y, blend, feather_px, min_area, open_px, ignore):
    """Blend one member at (x, y); label it under its cleaned mask; returns (image, used mode).

    Pixels blended but dropped by the clean-up (specks, slivers) show object colours with no
    trustworthy class: they get ``ignore``. ``owner`` records which object holds each pixel.
    """
    image, pasted, used = blend_object_mode(image, m.rgba, x, y, blend, feather_px)
    box = tight_box(pasted)
    if box is None:
        return image, used
    H, W = label.shape
    x0, y0, x1, y1 = max(box[0] - 1, 0), max(box[1] - 1, 0), min(box[2] + 1, W), min(box[3] + 1, H)
    win = pasted[y0:y1, x0:x1]
    kept = clean_mask(win, min_area, open_px)
    lab, own = label[y0:y1, x0:x1], owner[y0:y1, x0:x1]
    dropped = win & ~kept
    lab[kept], own[kept] = m.obj.class_index, m.index
    lab[dropped], own[dropped] = ignore, -1
    return image, used


def sigtor_image(
    rng: np.random.Generator,
    image: np.ndarray,
    label: np.ndarray,
    objects: Sequence,
    *,
    blend: str = "poisson",
    feather_px: float = 2,
    ignore_index: int = 255,
    min_area: int = 20,
    open_px: int = 1,
    keep_existing: bool = True,
    protect_classes: Sequence[int] | None = None,
    margin: int = 1,
    flip_prob: float = 0.5,
    scale_range: tuple[float, float] = (0.5, 2.0),
    size_ref: float | None = None,
    jitter: float = 0.2,
    blur_prob: float = 0.2,
    iou_thr: float = 0.1,
    ios_thr: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, list[dict], int]:
    """Paste ``objects`` into one image SIGtor-style: group, augment, pack, blend, label.

    ``objects``: SigtorObjects, pool objects, Candidate-likes or ``(rgba, class_index,
    object_id[, source_id, source_box])`` tuples (see :func:`as_sigtor_object`).

    Steps: objects of one source image whose source boxes overlap form a group
    (``iou_thr``, ``ios_thr``); each group draws one augmentation (``flip_prob``,
    ``scale_range``, ``size_ref`` -- default a quarter of sqrt(H * W), about 108 px at
    500x375 -- ``jitter``, ``blur_prob``; shrunk further if it would not fit the image);
    :func:`pack` gives each group a free rectangle (its box plus a :data:`POISSON_RING` pixel
    border for ``poisson``, so the Poisson ring stays inside) ``margin`` pixels from the
    others and, with ``keep_existing``, from existing pixels of ``protect_classes`` (default:
    the classes being pasted); members are blended largest first (smaller, often embedded
    objects end on top). Each member's pasted mask is cleaned (:func:`clean_mask` with
    ``min_area``, ``open_px``); the label takes its class there, and ``ignore_index`` on
    pixels blended but dropped by the clean-up.

    Returns ``(image, label, placements, skipped)``; inputs are not modified. ``placements``
    has one dict per input object, in input order: object_id, class_index, class_name,
    source_id, group, group_size, x, y (top-left of the object's crop; None if not pasted),
    width, height (crop size after augmentation), box (tight [x0, y0, x1, y1], ends
    exclusive, of the label pixels the object finally owns), pixels, blend (mode used),
    augment (the group's parameters), reason: ``"packed"``, ``"no room"`` (the packer found
    no free rectangle) or ``"empty after clean-up"``. ``skipped`` counts the objects not
    packed or left empty.
    """
    if blend not in BLEND_MODES:
        raise SegaugError(f"unknown blend {blend!r}; known: {', '.join(BLEND_MODES)}")
    if image.shape[:2] != label.shape:
        raise ValueError(f"image {image.shape} and label {label.shape} sizes differ")
    objs = [as_sigtor_object(o) for o in objects]
    H, W = label.shape
    pad = POISSON_RING if blend == "poisson" else 0
    aug = {
        "flip_prob": flip_prob,
        "scale_range": tuple(scale_range),
        "jitter": jitter,
        "blur_prob": blur_prob,
        "size_ref": float(size_ref) if size_ref else 0.25 * math.sqrt(H * W),
    }
    groups = [
        _build_group(gid, idx, objs, rng, aug, W - 2 * pad, H - 2 * pad)
        for gid, idx in enumerate(_groups_of(objs, iou_thr, ios_thr))
    ]
    occupied = None
    if keep_existing:
        protect = {o.class_index for o in objs} if protect_classes is None else protect_classes
        occupied = np.isin(label, sorted(protect)) if protect else None
    spots = pack([(g.width + 2 * pad, g.height + 2 * pad) for g in groups], W, H, rng, occupied, margin)

    label = label.copy()
    owner = np.full((H, W), -1, dtype=np.int32)
    records: list[dict | None] = [None] * len(objs)
    for g, spot in zip(groups, spots):
        if spot is None:
            for m in g.members:
                records[m.index] = _record(m, g, "no room")
            continue
        gx, gy = spot[0] + pad, spot[1] + pad
        for m in sorted(g.members, key=lambda m: (-int(object_mask(m.rgba).sum()), m.index)):
            x, y = gx + m.dx, gy + m.dy
            image, used = _paste_member(
                image, label, owner, m, x, y, blend, feather_px, min_area, open_px, ignore_index
            )
            records[m.index] = _record(m, g, "packed", x, y, used)
    skipped = _finish_records(records, owner)
    return image, label, records, skipped


def _finish_records(records: list[dict], owner: np.ndarray) -> int:
    """Fill each pasted record's box and pixels from the final owner map; count skips."""
    skipped = 0
    for i, r in enumerate(records):
        if r["reason"] == "packed":
            # search only the object's crop window: packing keeps other groups away
            x0, y0 = max(r["x"], 0), max(r["y"], 0)
            win = owner[y0 : r["y"] + r["height"], x0 : r["x"] + r["width"]] == i
            box = tight_box(win)
            if box is None:
                r["reason"] = "empty after clean-up"
            else:
                r["box"] = [box[0] + x0, box[1] + y0, box[2] + x0, box[3] + y0]
                r["pixels"] = int(win.sum())
        skipped += r["reason"] != "packed"
    return skipped


# ================================================================ a dataset


def _check_options(
    objects_per_image,
    copies_per_image,
    blend,
    feather_px,
    seed,
    scale_range,
    flip_prob,
    jitter,
    blur_prob,
    margin,
    min_area,
    open_px,
):
    check_options(copies_per_image, objects_per_image, scale_range, flip_prob, blend, feather_px, seed)
    if not 0.0 <= blur_prob <= 1.0:
        raise SegaugError(f"blur_prob must be in [0, 1], got {blur_prob}")
    if not 0.0 <= jitter < 1.0:
        raise SegaugError(f"jitter must be in [0, 1), got {jitter}")
    if margin < 0 or min_area < 0 or open_px < 0:
        raise SegaugError(f"margin, min_area and open_px must be >= 0, got {margin}, {min_area}, {open_px}")


def _draw_objects(rng, sampler, lines, objects_per_image) -> list[PoolObject]:
    """Draw n objects class-uniformly; each brings its annotation line; no object twice."""
    n = int(rng.integers(objects_per_image[0], objects_per_image[1] + 1))
    chosen: dict[str, PoolObject] = {}
    for _ in range(n):
        o = sampler.draw(rng)
        for p in lines.get(o.crop, [o]) if lines is not None else [o]:
            chosen.setdefault(p.crop, p)
    return list(chosen.values())


@dataclass
class _SigtorJob:
    pairs: list
    num_classes: int
    sampler: BalancedObjectSampler
    lines: dict | None
    seed: int
    copies: int
    objects_per_image: tuple
    feather_px: float
    opts: dict
    tmp: Path
    output: OutputOptions


def _sigtor_source(job: _SigtorJob, i: int) -> list:
    """The SIGtor copies of source image ``i``, written into the staging directory; returns
    per copy (output id, manifest lines, skipped, [(class, pixels) per paste])."""
    s = job.pairs[i]
    image0, label0 = load_pair(s, job.num_classes)
    suffix, level = job.output.image_suffix(s.image), job.output.compress_level
    out = []
    for c in range(job.copies):
        rng = np.random.default_rng([job.seed, i, c])
        drawn = _draw_objects(rng, job.sampler, job.lines, job.objects_per_image)
        image, label, recs, sk = sigtor_image(rng, image0, label0, drawn, **job.opts)
        out_id = f"{s.id}_s{c}"
        write_into_staging(job.tmp / "images" / f"{out_id}{suffix}", image, level)
        write_into_staging(job.tmp / "labels" / f"{out_id}.png", label, level)
        pasted = [r for r in recs if r["reason"] == "packed"]
        lines, stats = [], []
        for k, r in enumerate(pasted):
            stats.append((r["class_index"], r["pixels"]))
            line = {
                "target_id": s.id,
                "output_id": out_id,
                "copy": c,
                "order": k,
                "crop": r.pop("object_id"),
                **r,
                "feather_px": job.feather_px if r["blend"] == "feather" else 0,
            }
            lines.append(json.dumps(line, sort_keys=True))
        out.append((out_id, lines, sk, stats))
    return out


def sigtor_dataset(
    dataset_root: str | Path,
    ids: Sequence[str],
    pool_objects: Sequence[PoolObject],
    seed: int,
    out_dir: str | Path,
    objects_per_image: tuple[int, int] = (2, 4),
    blend: str = "poisson",
    *,
    copies_per_image: int = 1,
    feather_px: float = 2,
    with_companions: bool = True,
    min_area: int = 20,
    open_px: int = 1,
    keep_existing: bool = True,
    margin: int = 1,
    flip_prob: float = 0.5,
    scale_range: tuple[float, float] = (0.5, 2.0),
    size_ref: float | None = None,
    jitter: float = 0.2,
    blur_prob: float = 0.2,
    iou_thr: float = 0.1,
    ios_thr: float = 0.5,
    class_table: ClassTable | None = None,
    output: OutputOptions | None = None,
    workers: int = 1,
) -> dict:
    """Write SIGtor-style pasted copies of every image of ``ids`` to ``out_dir``.

    ``output`` (image format, PNG compression) and ``workers`` (processes over the images,
    byte-identical output for any number) as in :func:`segaug.paste.pipeline.paste_dataset`.

    Output layout as :func:`segaug.paste.pipeline.paste_dataset`, built beside ``out_dir``
    and renamed into place: ``images/{id}_s{c}.png``, ``labels/{id}_s{c}.png``,
    ``classes.json``, ``sets/all.txt``, ``manifest.jsonl`` (one line per pasted object),
    ``summary.json``. Copy c of the i-th id uses ``default_rng([seed, i, c])``: it draws how
    many objects (``objects_per_image``), which (:class:`BalancedObjectSampler`: class
    uniformly among the pool's classes, then an object of it; with ``with_companions``
    each drawn object brings the objects of its :func:`annotation_lines` entry), then
    everything :func:`sigtor_image` draws. Same seed, split and pool: byte-identical files.

    ``keep_existing`` protects the image's existing pixels of *all* pool classes. Each
    manifest line: target_id, output_id, copy, order, crop, source_id, class_index,
    class_name, group, group_size, x, y, width, height, box, pixels, blend, feather_px,
    augment, reason. Returns the summary.json dict.
    """
    _check_options(
        objects_per_image,
        copies_per_image,
        blend,
        feather_px,
        seed,
        scale_range,
        flip_prob,
        jitter,
        blur_prob,
        margin,
        min_area,
        open_px,
    )
    output = output or OutputOptions()
    dataset_root, out_dir = Path(dataset_root), Path(out_dir)
    if class_table is None:
        class_table = ClassTable.load(dataset_root / "classes.json")
    check_pool(pool_objects, class_table, dataset_root)
    sampler = BalancedObjectSampler(pool_objects)
    lines = annotation_lines(pool_objects, iou_thr, ios_thr) if with_companions else None
    pairs = samples(dataset_root, ids)
    names, nc = class_table.names, class_table.num_classes
    opts = dict(
        blend=blend,
        feather_px=feather_px,
        ignore_index=class_table.ignore_index,
        min_area=min_area,
        open_px=open_px,
        keep_existing=keep_existing,
        protect_classes=sampler.classes,
        margin=margin,
        flip_prob=flip_prob,
        scale_range=tuple(scale_range),
        size_ref=size_ref,
        jitter=jitter,
        blur_prob=blur_prob,
        iou_thr=iou_thr,
        ios_thr=ios_thr,
    )
    log.info(
        "sigtor: %d-%d draws into %d images x %d copies (blend %s, seed %d, classes: %s)",
        objects_per_image[0],
        objects_per_image[1],
        len(pairs),
        copies_per_image,
        blend,
        seed,
        ", ".join(names[c] for c in sampler.classes),
    )

    new_ids: list[str] = []
    manifest: list[str] = []
    per_class = {c: [0, 0] for c in sampler.classes}  # pastes, pixels
    skipped = without = 0
    with atomic_path(out_dir) as tmp:
        for sub in ("images", "labels", "sets"):
            (tmp / sub).mkdir(parents=True)
        job = _SigtorJob(
            pairs,
            nc,
            sampler,
            lines,
            int(seed),
            copies_per_image,
            tuple(objects_per_image),
            feather_px,
            opts,
            tmp,
            output,
        )
        results = map_images(_sigtor_source, job, len(pairs), workers)
        for res in progress(results, total=len(pairs), desc="paste (sigtor)"):
            for out_id, pasted_lines, sk, stats in res:
                new_ids.append(out_id)
                manifest.extend(pasted_lines)
                skipped += sk
                without += not pasted_lines
                for c, px in stats:
                    per_class[c][0] += 1
                    per_class[c][1] += px
        options = {
            "copies_per_image": copies_per_image,
            "objects_per_image": list(objects_per_image),
            "with_companions": with_companions,
            **{k: (list(v) if isinstance(v, tuple) else v) for k, v in opts.items() if k != "protect_classes"},
        }
        summary = write_pasted_set(
            tmp,
            class_table,
            new_ids,
            manifest,
            method="sigtor",
            seed=seed,
            source_images=len(pairs),
            skipped=skipped,
            without=without,
            options=options,
            pool_classes=sampler.classes,
            per_class_pastes={c: v[0] for c, v in per_class.items()},
            per_class_pixels={c: v[1] for c, v in per_class.items()},
            output=output.to_dict(),
        )
    if without:
        log.warning("%d of %d images got no paste (no room or nothing drawn)", without, len(new_ids))
    log.info("sigtor: wrote %d images, %d pastes -> %s", len(new_ids), len(manifest), out_dir)
    return summary


def paste(job) -> dict:
    """The ``sigtor`` paste method (segaug.paste.methods): a PasteJob's pasted set."""
    o = job.options
    return sigtor_dataset(
        job.dataset_root,
        job.ids,
        job.pool,
        job.seed,
        job.out,
        objects_per_image=o.objects_per_image,
        blend=o.blend,
        copies_per_image=o.copies,
        feather_px=o.feather_px,
        flip_prob=o.flip_prob,
        scale_range=o.scale_range,
        jitter=o.jitter,
        blur_prob=o.blur_prob,
        min_area=o.min_area,
        class_table=job.table,
        output=job.output(),
        workers=job.workers,
    )
