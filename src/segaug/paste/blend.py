"""Blending one RGBA object into an image, and the mask helpers SIGtor-style pasting needs.

:func:`blend_object` composites an RGBA crop (as the object pool stores it: RGB on the object,
alpha 255 on it and 0 elsewhere; the object's *mask* is ``alpha >= 128``) with its top-left
corner at (x, y) and returns the new image plus the boolean H x W mask of the pixels that now
show the object (clipped to the image). That mask is what a caller labels. Three modes:

``hard``
    Object pixels replace the image on the mask. Nothing else changes.
``feather``
    Gaussian-feathered alpha *inside* the mask: with ``g`` the mask blurred by a Gaussian of
    sigma ``feather_px / 2``, the weight is ``clip(2 g - 1, 0, 1)`` on the mask and 0 off it.
    It rises to ~1 about ``1.5 * feather_px`` pixels inward (for ``feather_px=2``: 0.40,
    0.88, 0.99 on the first three rows inside a straight edge), so the seam fades while --
    as for ``hard`` -- no pixel outside the mask changes. The crop's own edges count as
    "off the mask", so an object cut by its box fades there too. (``paste_object`` in
    :mod:`segaug.paste.compose` feathers with a linear distance ramp instead.)
``poisson``
    Poisson image editing (Pérez et al. 2003) via OpenCV's ``cv2.seamlessClone`` with
    ``NORMAL_CLONE``: inside the clone region the result keeps the *gradients* of the object
    while matching the surrounding image at the region's boundary, so the object takes on
    the local colour and brightness of the target. We clone a patch in which the object is
    already hard-pasted over the target, with the object mask dilated by
    :data:`POISSON_RING` pixels as clone region; the ring around the object then keeps the
    target's own gradients (it stays background-like) and the object's outline stays sharp.
    OpenCV solves over the clone region's bounding rectangle, so pixels outside the object
    mask but inside *its box grown by* ``POISSON_RING`` pixels may change (a few grey levels
    in the ring, less beyond; a smooth harmonic correction); pixels outside that grown box
    never change.

How the Poisson mode stays robust (``seamlessClone`` asserts that its region lies inside
the destination, and ignores the outermost pixels of its mask):

- it works on a patch = object box + ``POISSON_RING + 2`` pixels on every side, cut from the
  image with edge replication where the patch leaves the image, so objects touching or
  crossing the image border clone fine; only the part inside the image is written back;
- the centre passed to OpenCV is computed from the clone mask's own bounding rectangle, so
  OpenCV's "centre minus half size" arithmetic lands exactly on the patch (no off-by-one);
- ``seamlessClone`` *writes into its mask argument* (seen with OpenCV 5.0: the mask is
  changed in place): reusing one mask array across calls silently alternates between a
  cloned and an almost unchanged result. We always hand it a fresh copy;
- if OpenCV still refuses (``cv2.error``), the object is feathered instead and the reason
  is logged at WARNING; :func:`blend_object_mode` tells the caller which mode was used.

Mask clean-up for labels: :func:`clean_mask` (morphological opening, dropping small
connected components, hole filling) and :func:`tight_box` (the mask's exact extent).
"""

from __future__ import annotations

import logging

import cv2
import numpy as np
from scipy import ndimage

log = logging.getLogger("segaug.paste.blend")

BLEND_MODES = ("hard", "feather", "poisson")
POISSON_RING = 3  # clone region = object mask dilated by this many pixels


# ---------------------------------------------------------------- small helpers


def object_mask(rgba: np.ndarray) -> np.ndarray:
    """The object's mask (bool h x w): alpha >= 128."""
    return rgba[..., 3] >= 128


def disk(radius: int) -> np.ndarray:
    """Elliptical (disk) structuring element of the given radius, (2r+1) x (2r+1) uint8."""
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def overlap_window(H: int, W: int, h: int, w: int, x: int, y: int):
    """Overlap of an h x w object at (x, y) with an H x W image.

    Returns ``((iy0, iy1, ix0, ix1), (oy0, oy1, ox0, ox1))`` -- the same window in image and
    in object coordinates -- or None when they do not overlap.
    """
    ix0, iy0, ix1, iy1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    if ix0 >= ix1 or iy0 >= iy1:
        return None
    ox0, oy0 = ix0 - x, iy0 - y
    return (iy0, iy1, ix0, ix1), (oy0, oy0 + iy1 - iy0, ox0, ox0 + ix1 - ix0)


def gaussian_feather(mask: np.ndarray, feather_px: float) -> np.ndarray:
    """Blend weight in [0, 1] (float32 h x w): ``clip(2 g - 1, 0, 1)`` on the mask, 0 off it.

    ``g`` is the mask blurred with a Gaussian of sigma ``feather_px / 2`` (zero padding, so
    the crop's edges count as off the mask). ``feather_px <= 0`` gives the mask itself.
    """
    m = mask.astype(np.float32)
    if feather_px <= 0:
        return m
    sigma = feather_px / 2.0
    pad = int(np.ceil(4 * sigma)) + 1
    g = cv2.GaussianBlur(np.pad(m, pad), (0, 0), sigmaX=sigma, sigmaY=sigma)[pad:-pad, pad:-pad]
    return np.clip(2.0 * g - 1.0, 0.0, 1.0) * m


# ---------------------------------------------------------------- the three modes


def _blend_weighted(image, rgba, x, y, weight):
    """Mix object into a copy of ``image`` with per-pixel ``weight`` (object coordinates)."""
    H, W = image.shape[:2]
    out = image.copy()
    full = np.zeros((H, W), dtype=bool)
    win = overlap_window(H, W, rgba.shape[0], rgba.shape[1], x, y)
    if win is None:
        return out, full
    (iy0, iy1, ix0, ix1), (oy0, oy1, ox0, ox1) = win
    sub = object_mask(rgba)[oy0:oy1, ox0:ox1]
    dst = out[iy0:iy1, ix0:ix1]
    obj = rgba[oy0:oy1, ox0:ox1, :3]
    if weight is None:  # hard
        dst[sub] = obj[sub]
    else:
        a = weight[oy0:oy1, ox0:ox1, None]
        bg = dst.astype(np.float32)
        mixed = np.rint(bg + a * (obj.astype(np.float32) - bg))
        dst[sub] = mixed[sub].astype(np.uint8)
    full[iy0:iy1, ix0:ix1] = sub
    return out, full


def _patch(image: np.ndarray, x0: int, y0: int, pw: int, ph: int) -> np.ndarray:
    """The ph x pw window of ``image`` at (x0, y0), edge-replicated where it leaves the image."""
    H, W = image.shape[:2]
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x0 + pw, W), min(y0 + ph, H)
    sub = image[cy0:cy1, cx0:cx1]
    return cv2.copyMakeBorder(
        np.ascontiguousarray(sub),
        cy0 - y0,
        y0 + ph - cy1,
        cx0 - x0,
        x0 + pw - cx1,
        cv2.BORDER_REPLICATE,
    )


def _blend_poisson(image, rgba, x, y):
    """Poisson (seamless) clone; raises cv2.error if OpenCV refuses. See the module doc."""
    H, W = image.shape[:2]
    h, w = rgba.shape[:2]
    out = image.copy()
    full = np.zeros((H, W), dtype=bool)
    win = overlap_window(H, W, h, w, x, y)
    mask = object_mask(rgba)
    if win is None or not mask.any():
        return out, full
    b = POISSON_RING + 2  # ring + OpenCV's fixed boundary row + one spare
    px0, py0, pw, ph = x - b, y - b, w + 2 * b, h + 2 * b
    dst = _patch(image, px0, py0, pw, ph)
    src = dst.copy()
    src[b : b + h, b : b + w][mask] = rgba[..., :3][mask]
    clone = np.zeros((ph, pw), np.uint8)
    clone[b : b + h, b : b + w] = mask.astype(np.uint8) * 255
    clone = cv2.dilate(clone, disk(POISSON_RING))
    rx, ry, rw, rh = cv2.boundingRect(clone)
    centre = (rx + rw // 2, ry + rh // 2)  # OpenCV puts the region at centre - size // 2
    # seamlessClone modifies its mask argument in place: always pass a private copy
    res = cv2.seamlessClone(src, dst, clone.copy(), centre, cv2.NORMAL_CLONE)
    (iy0, iy1, ix0, ix1), (oy0, oy1, ox0, ox1) = overlap_window(H, W, ph, pw, px0, py0)
    out[iy0:iy1, ix0:ix1] = res[oy0:oy1, ox0:ox1]
    (iy0, iy1, ix0, ix1), (oy0, oy1, ox0, ox1) = win
    full[iy0:iy1, ix0:ix1] = mask[oy0:oy1, ox0:ox1]
    return out, full


def blend_object_mode(
    image: np.ndarray,
    rgba: np.ndarray,
    x: int,
    y: int,
    mode: str = "hard",
    feather_px: float = 2,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray, str]:
    """Like :func:`blend_object`, also returning the mode actually used.

    That is ``mode`` itself, or ``"feather"`` when a Poisson blend was refused by OpenCV.
    """
    if mode not in BLEND_MODES:
        raise ValueError(f"unknown blend mode {mode!r}; known: {', '.join(BLEND_MODES)}")
    if image.ndim != 3 or image.shape[2] != 3 or rgba.ndim != 3 or rgba.shape[2] != 4:
        raise ValueError(f"need an H x W x 3 image and an h x w x 4 object, got {image.shape}, {rgba.shape}")
    x, y = int(x), int(y)
    if mode == "poisson":
        try:
            out, mask = _blend_poisson(image, rgba, x, y)
            return out, mask, "poisson"
        except cv2.error as e:
            reason = " ".join(str(e).split())[:200]
            log.warning(
                "poisson blend of a %dx%d object at (%d, %d) refused by OpenCV (%s); feathering it instead",
                rgba.shape[1],
                rgba.shape[0],
                x,
                y,
                reason,
            )
            mode = "feather"
    weight = None if mode == "hard" else gaussian_feather(object_mask(rgba), feather_px)
    out, mask = _blend_weighted(image, rgba, x, y, weight)
    return out, mask, mode


def blend_object(
    image: np.ndarray,
    rgba: np.ndarray,
    x: int,
    y: int,
    mode: str = "hard",
    feather_px: float = 2,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Blend ``rgba`` into a copy of ``image`` with its top-left corner at (x, y).

    ``mode`` is ``hard``, ``feather`` or ``poisson`` (module doc); ``feather_px`` only
    matters for ``feather``. Parts of the object outside the image are clipped. ``rng`` is
    accepted for a uniform blender interface; no current mode draws from it (all three are
    deterministic). Returns ``(new image, mask)`` with ``mask`` the bool H x W pixels that now
    show the object (empty if it lies wholly outside). ``image`` is not modified.
    """
    out, mask, _ = blend_object_mode(image, rgba, x, y, mode, feather_px, rng)
    return out, mask


# ---------------------------------------------------------------- masks for labels


def clean_mask(mask: np.ndarray, min_area: int, open_px: int, fill_holes: bool = True) -> np.ndarray:
    """Tidy a pasted mask before it becomes label pixels (bool in, bool out, same shape).

    1. morphological opening with a disk of radius ``open_px`` (0: none) -- removes
       specks and structures thinner than about ``2 * open_px + 1`` pixels (resizing a
       thresholded alpha leaves such jaggies);
    2. drop 8-connected components with fewer than ``min_area`` pixels;
    3. fill holes: background regions the mask fully encloses (4-connected background, not
       reaching the array border) become mask -- annotation slivers inside an object.
    """
    m = np.ascontiguousarray(mask, dtype=np.uint8)
    if open_px > 0:
        m = cv2.morphologyEx(m, cv2.MORPH_OPEN, disk(int(open_px)))
    if min_area > 1 and m.any():
        n, comp, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
        keep = np.zeros(n, dtype=bool)
        keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_area
        out = keep[comp]
    else:
        out = m.astype(bool)
    if fill_holes and out.any():
        out = ndimage.binary_fill_holes(out)
    return out


def tight_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(x0, y0, x1, y1)`` of the mask's pixels, ends exclusive (as the pool's boxes); None
    if the mask is empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1
