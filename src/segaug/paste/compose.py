"""Compositing one RGBA object into an image and its label.

The object's *binary mask* is ``alpha >= 128``. Whatever the blending, the label takes the
object's class on exactly that mask and is untouched elsewhere. Blending only changes how the
RGB is mixed *inside* the mask:

- ``hard``: object pixels replace the image on the mask.
- ``feather``: the blending weight rises from ~0 at the mask edge to 1 over ``feather_px``
  pixels inward (weight = clip(d / (feather_px + 1), 0, 1), d = Euclidean distance to the
  nearest pixel off the mask), so the seam fades while nothing outside the mask changes.

Everything works on the overlapping window only, with NumPy/OpenCV array ops.
"""

from __future__ import annotations

import cv2
import numpy as np

from segaug.paste.options import BLENDS  # poisson: OpenCV seamlessClone (segaug.paste.blend)


def binary_mask(rgba: np.ndarray) -> np.ndarray:
    """The object's mask (bool h x w): alpha >= 128."""
    return rgba[..., 3] >= 128


def feather_alpha(mask: np.ndarray, feather_px: float) -> np.ndarray:
    """Blend weight in [0, 1] (float32): 0 off the mask, ramping to 1 over ``feather_px`` inward.

    The crop's own edges count as off the mask, so an object cut by its box still fades.
    """
    if feather_px <= 0:
        return mask.astype(np.float32)
    padded = np.pad(mask, 1).astype(np.uint8)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    return np.clip(dist / np.float32(feather_px + 1), 0.0, 1.0).astype(np.float32, copy=False)


def paste_object(
    image: np.ndarray,
    label: np.ndarray,
    rgba: np.ndarray,
    class_index: int,
    x: int,
    y: int,
    blend: str = "hard",
    feather_px: float = 2,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Composite ``rgba`` with its top-left corner at (x, y); parts beyond the image are clipped.

    Returns new ``(image, label, mask)``; ``mask`` (bool H x W) marks the pixels that took the
    object's class (empty if the object lies wholly outside the image). Inputs are not modified.
    """
    if blend not in BLENDS:
        raise ValueError(f"unknown blend {blend!r}; known: {', '.join(BLENDS)}")
    H, W = label.shape
    h, w = rgba.shape[:2]
    x, y = int(x), int(y)
    out_img = image.copy()
    out_lab = label.copy()
    full = np.zeros((H, W), dtype=bool)
    # overlap of [x, x+w) x [y, y+h) with the image
    ix0, iy0, ix1, iy1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    if ix0 >= ix1 or iy0 >= iy1:
        return out_img, out_lab, full
    ox0, oy0 = ix0 - x, iy0 - y  # same window in object coordinates
    ox1, oy1 = ox0 + (ix1 - ix0), oy0 + (iy1 - iy0)

    mask = binary_mask(rgba)
    sub_mask = mask[oy0:oy1, ox0:ox1]
    obj = rgba[oy0:oy1, ox0:ox1, :3]
    dst = out_img[iy0:iy1, ix0:ix1]
    if blend == "poisson":
        from segaug.paste.blend import blend_object

        out_img = blend_object(image, rgba, x, y, "poisson")[0]
    elif blend == "hard":
        dst[sub_mask] = obj[sub_mask]
    else:
        a = feather_alpha(mask, feather_px)[oy0:oy1, ox0:ox1, None]  # of the whole object
        bg = dst.astype(np.float32)
        mixed = bg + a * (obj.astype(np.float32) - bg)
        np.rint(mixed, out=mixed)
        dst[sub_mask] = mixed[sub_mask].astype(np.uint8)
    out_lab[iy0:iy1, ix0:ix1][sub_mask] = class_index
    full[iy0:iy1, ix0:ix1] = sub_mask
    return out_img, out_lab, full


def transform_object(rgba: np.ndarray, scale: float = 1.0, flip: bool = False) -> np.ndarray:
    """Resize an RGBA object by ``scale`` and optionally mirror it left-right.

    RGB is resized bilinearly with premultiplied alpha (so pixels off the mask never bleed a
    dark fringe into the edge); alpha is resized bilinearly and thresholded at 0.5, giving a
    binary (0/255) mask. New size: round(w * scale) x round(h * scale), at least 1 x 1.
    """
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    h, w = rgba.shape[:2]
    nw, nh = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    if (nw, nh) == (w, h):
        out = rgba.copy()
    else:
        a = (rgba[..., 3] >= 128).astype(np.float32)
        premul = rgba[..., :3].astype(np.float32) * a[..., None]
        a_r = cv2.resize(a, (nw, nh), interpolation=cv2.INTER_LINEAR)
        rgb_r = cv2.resize(premul, (nw, nh), interpolation=cv2.INTER_LINEAR)
        if rgb_r.ndim == 2:  # cv2 drops a singleton channel axis; keep h x w x 3
            rgb_r = rgb_r.reshape(nh, nw, 3)
        keep = a_r >= 0.5
        rgb = np.zeros((nh, nw, 3), dtype=np.uint8)
        rgb[keep] = np.clip(np.rint(rgb_r[keep] / a_r[keep, None]), 0, 255).astype(np.uint8)
        out = np.empty((nh, nw, 4), dtype=np.uint8)
        out[..., :3] = rgb
        out[..., 3] = keep.astype(np.uint8) * 255
    if flip:
        out = np.ascontiguousarray(out[:, ::-1])
    return out
