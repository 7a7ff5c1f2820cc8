"""A procedurally generated VOC-format dataset for the laptop demo and the tests.

"shapes": aerial-style scenes on a grass background, with

- surfaces a context rule can refer to: **water** (a lake or a shore, blue with wave stripes)
  and a **road** (a grey band, straight or bent, with lane dashes);
- majority objects: **buildings** (rectangles with a window grid) and **trees** (round,
  shaded crowns), on grass;
- two minority classes with distinct shapes, each well under 5 % of labelled pixels (about
  1-3 % over a train set) and absent from some images:
  **car** (a small red rounded rectangle with windows, ON the road, oriented along it) and
  **boat** (a yellow trapezoid hull with a white triangular sail, ON the water).

Like VOC's object borders, cars and boats get a 1-pixel ignore (255) band around their
outline, lying on the surface they sit on. Classes differ in colour and texture, with mild
lighting variation and sensor noise, so a small CNN can learn them. Every image comes from
its own generator ``default_rng([seed, index])``: the same seed gives the same bytes, whatever
else is generated; images are written as lossless PNG.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from segaug.data.canonical import ClassTable, canonical_writer
from segaug.data.class_tables import DEMO_PALETTE
from segaug.data.classnames import DEMO_CLASSES
from segaug.data.layout import IGNORE_INDEX
from segaug.errors import SegaugError

log = logging.getLogger(__name__)

GRASS, ROAD, WATER, BUILDING, TREE, CAR, BOAT = range(7)
PALETTE = DEMO_PALETTE  # one home: segaug.data.class_tables (the workflow reads it at start-up)
MINORITY = (CAR, BOAT)

_CAR_COLOURS = ((205, 30, 30), (230, 55, 40), (185, 20, 55), (220, 35, 80))
_HULL_COLOURS = ((240, 215, 60), (230, 190, 45), (245, 230, 90))
_ROOF_COLOURS = ((190, 110, 70), (175, 95, 75), (205, 130, 85))
_BIG = 1e4  # half-length of road segments: longer than any image


def class_table() -> ClassTable:
    """The demo's class table: grass, road, water, building, tree, car, boat."""
    return ClassTable(DEMO_CLASSES, PALETTE)


# ---------------------------------------------------------------- drawing helpers


# Pure numpy on purpose: the bytes of the demo must not depend on an OpenCV version, and the
# data environment needs nothing beyond numpy and Pillow.


def _noise(rng, h, w, scale):
    """Smooth texture: uniform noise in [-1, 1] on a coarse grid, bilinearly upsampled."""
    gh, gw = max(2, h // scale), max(2, w // scale)
    small = rng.uniform(-1, 1, (gh, gw)).astype(np.float32)
    y = (np.arange(h, dtype=np.float32) + 0.5) * gh / h - 0.5
    x = (np.arange(w, dtype=np.float32) + 0.5) * gw / w - 0.5
    y0 = np.clip(np.floor(y).astype(int), 0, gh - 2)
    x0 = np.clip(np.floor(x).astype(int), 0, gw - 2)
    fy = np.clip(y - y0, 0, 1)[:, None]
    fx = np.clip(x - x0, 0, 1)[None, :]
    a, b = small[y0][:, x0], small[y0][:, x0 + 1]
    c, d = small[y0 + 1][:, x0], small[y0 + 1][:, x0 + 1]
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy


def _fill(img, mask, base, rng, texture, scale=6, grain=4.0):
    """Paint ``mask`` with ``base`` colour plus smooth texture and fine grain."""
    if not mask.any():
        return
    h, w = mask.shape
    t = _noise(rng, h, w, scale)[..., None] * texture
    fine = rng.normal(0, grain, (h, w, 1)).astype(np.float32)
    colour = np.clip(np.asarray(base, np.float32) + t + fine, 0, 255)
    img[mask] = colour[mask]


def _poly_mask(shape, pts):
    """Pixels whose centres lie inside a convex polygon (vertices in either order)."""
    pts = np.asarray(pts, np.float64)
    h, w = shape
    x0, y0 = (max(0, int(np.floor(v))) for v in pts.min(0))
    x1, y1 = (int(np.ceil(v)) + 1 for v in pts.max(0))
    mask = np.zeros(shape, bool)
    if x0 >= w or y0 >= h or x1 <= 0 or y1 <= 0:
        return mask
    ys, xs = np.mgrid[y0 : min(h, y1), x0 : min(w, x1)]
    area = np.sum(pts[:, 0] * np.roll(pts[:, 1], -1) - np.roll(pts[:, 0], -1) * pts[:, 1])
    inside = np.ones(xs.shape, bool)
    for (ax, ay), (bx, by) in zip(pts, np.roll(pts, -1, axis=0)):
        cross = (bx - ax) * (ys - ay) - (by - ay) * (xs - ax)
        inside &= cross * np.sign(area) >= -0.5 * np.hypot(bx - ax, by - ay)  # half-pixel tolerance
    mask[y0 : min(h, y1), x0 : min(w, x1)] = inside
    return mask


def _local(xs, ys, cx, cy, angle):
    """Pixel coordinates in a frame centred at (cx, cy), u along ``angle`` (radians)."""
    c, s = np.cos(angle), np.sin(angle)
    dx, dy = xs - cx, ys - cy
    return dx * c + dy * s, -dx * s + dy * c


def _to_image(cx, cy, angle, pts):
    """Local (u, v) points -> image (x, y) points."""
    c, s = np.cos(angle), np.sin(angle)
    pts = np.asarray(pts, np.float64)
    return np.stack([cx + pts[:, 0] * c - pts[:, 1] * s, cy + pts[:, 0] * s + pts[:, 1] * c], 1)


def _shift_or(mask, r, axis):
    """OR of ``mask`` shifted by -r..r along ``axis`` (a 1-D dilation)."""
    out = mask.copy()
    n = mask.shape[axis]
    for d in range(1, min(r, n - 1) + 1):
        lo = [slice(None)] * 2
        hi = [slice(None)] * 2
        lo[axis], hi[axis] = slice(0, n - d), slice(d, n)
        out[tuple(hi)] |= mask[tuple(lo)]
        out[tuple(lo)] |= mask[tuple(hi)]
    return out


def _dilate(mask, k=3):
    """Dilation by a k x k square (k odd)."""
    r = k // 2
    return _shift_or(_shift_or(mask.astype(bool), r, 0), r, 1)


def _erode(mask, r):
    """Erosion by a (2r+1) x (2r+1) square: pixels at least r+1 pixels (Chebyshev) from outside."""
    return ~_dilate(~mask.astype(bool), 2 * r + 1)


# ---------------------------------------------------------------- scene parts


def _water(rng, xs, ys, h, w, s):
    """A lake (ellipse with a wobbly shore) or a shore along one image edge."""
    if rng.random() < 0.5:
        cx, cy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
        ax, ay = rng.uniform(0.18, 0.32) * w, rng.uniform(0.2, 0.35) * h
        r = ((xs - cx) / ax) ** 2 + ((ys - cy) / ay) ** 2
        return r <= 1 + 0.25 * _noise(rng, h, w, max(4, s // 6))
    side = rng.integers(4)
    depth = rng.uniform(0.22, 0.35)
    coord, along, size = [(ys, xs, h), (h - 1 - ys, xs, h), (xs, ys, w), (w - 1 - xs, ys, w)][side]
    shore = depth * size + 0.04 * s * np.sin(along / rng.uniform(6, 14) + rng.uniform(0, 6.3))
    return coord <= shore


def _road(rng, xs, ys, h, w, s):
    """A road centre line of two segments meeting at a bend point (bend 0 = straight).

    Returns per-pixel arrays (distance to the centre line; signed offset across it; position
    along it; direction in radians of the nearer segment) and the road's half width."""
    bx, by = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h
    a1 = rng.uniform(0, 2 * np.pi)
    bend = 0.0 if rng.random() < 0.5 else rng.choice([-1, 1]) * rng.uniform(np.pi / 7, np.pi / 3)
    a2 = a1 + bend
    best = np.full((h, w), np.inf, np.float32)
    offset = np.zeros((h, w), np.float32)
    pos = np.zeros((h, w), np.float32)
    direction = np.zeros((h, w), np.float32)
    # segment 1 runs from far away to the bend point, segment 2 from the bend point on
    for a, sign in ((a1, -1), (a2, 1)):
        u, v = _local(xs, ys, bx, by, a)
        t = np.clip(u * sign, 0, _BIG)  # distance along the segment from the bend point
        d = np.hypot(u - sign * t, v)
        nearer = d < best
        best[nearer] = d[nearer]
        offset[nearer] = v[nearer]
        pos[nearer] = (sign * t)[nearer]
        direction[nearer] = a
    half = rng.uniform(0.1, 0.13) * s
    return best, offset, pos, direction, half


def _shaded_crown(xs, ys, cx, cy, r):
    """Darken a crown towards its lower-right edge: round trees read as round."""
    d = np.hypot(xs - cx + 0.3 * r, ys - cy + 0.3 * r) / (1.6 * r)
    return np.clip(1.15 - 0.45 * d, 0.6, 1.15)


def _car(xs, ys, cx, cy, angle, length, width):
    """A rounded rectangle (body) and its windows, in image coordinates."""
    u, v = _local(xs, ys, cx, cy, angle)
    r = 0.35 * width
    qx = np.maximum(np.abs(u) - (length / 2 - r), 0)
    qy = np.maximum(np.abs(v) - (width / 2 - r), 0)
    body = (np.abs(u) <= length / 2) & (np.abs(v) <= width / 2) & (qx**2 + qy**2 <= r * r)
    windscreen = (u > 0.08 * length) & (u < 0.28 * length) & (np.abs(v) < 0.36 * width)
    rear = (u < -0.24 * length) & (u > -0.38 * length) & (np.abs(v) < 0.32 * width)
    return body, (windscreen | rear) & body


def _boat(cx, cy, angle, length, beam, sail_side):
    """A trapezoid hull (wide stern, narrow bow) and a triangular sail off one side."""
    hull = [(-length / 2, -beam / 2), (length / 2, -beam * 0.15), (length / 2, beam * 0.15), (-length / 2, beam / 2)]
    sail = [(0.18 * length, 0), (-0.32 * length, 0), (-0.26 * length, sail_side * 0.85 * beam)]
    return _to_image(cx, cy, angle, hull), _to_image(cx, cy, angle, sail)


def generate_image(rng: np.random.Generator, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """One scene: returns (RGB uint8 image HxWx3, uint8 label HxW)."""
    h, w = height, width
    s = min(h, w)
    label = np.full((h, w), GRASS, np.uint8)
    img = np.zeros((h, w, 3), np.float32)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)

    water = _water(rng, xs, ys, h, w, s) if rng.random() < 0.85 else np.zeros((h, w), bool)
    label[water] = WATER
    has_road = rng.random() < 0.9
    if has_road:
        dist, offset, pos, direction, half = _road(rng, xs, ys, h, w, s)
        road = dist <= half  # a road crossing water is a bridge
        label[road] = ROAD
    else:
        road = np.zeros((h, w), bool)

    # buildings: rectangles on grass (with a margin), a few tries each
    buildings = []
    for _ in range(rng.integers(2, 6)):
        for _try in range(6):
            bw, bh = (int(rng.uniform(0.14, 0.28) * s) for _ in range(2))
            x0, y0 = rng.integers(0, max(1, w - bw)), rng.integers(0, max(1, h - bh))
            y1, x1 = max(0, y0 - 2), max(0, x0 - 2)
            if (label[y1 : y0 + bh + 2, x1 : x0 + bw + 2] == GRASS).all():
                label[y0 : y0 + bh, x0 : x0 + bw] = BUILDING
                buildings.append((x0, y0, bw, bh))
                break
    # trees: round crowns on grass, some in small clusters
    crowns = []
    for _ in range(rng.integers(6, 14)):
        r = rng.uniform(0.045, 0.085) * s
        if crowns and rng.random() < 0.4:
            px, py, pr = crowns[rng.integers(len(crowns))]
            a = rng.uniform(0, 2 * np.pi)
            cx, cy = px + np.cos(a) * (pr + r) * 0.8, py + np.sin(a) * (pr + r) * 0.8
        else:
            cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        crown = ((xs - cx) ** 2 + (ys - cy) ** 2 <= r * r) & (label == GRASS)
        if crown.any():
            label[crown] = TREE
            crowns.append((cx, cy, r))

    # textures of the surfaces and majority objects
    _fill(img, label == GRASS, (70, 150, 60), rng, 25, grain=6)
    _fill(img, label == WATER, (40, 85, 185), rng, 10, scale=4)
    wave_dir = rng.uniform(0, np.pi)
    waves = np.sin((xs * np.cos(wave_dir) + ys * np.sin(wave_dir)) / rng.uniform(1.6, 2.4))
    img[label == WATER] += (8 * waves)[label == WATER][:, None] * np.array([0.6, 0.8, 1.0], np.float32)
    if has_road:
        _fill(img, road, (122, 122, 126), rng, 8, grain=3)
        edge = road & (dist > half - 1.2)
        img[edge] *= 0.8
        dashes = road & (np.abs(offset) < 0.9) & ((np.floor(pos / 5) % 2) == 0)
        img[dashes] = (232, 232, 225)
    for x0, y0, bw, bh in buildings:
        m = np.zeros((h, w), bool)
        m[y0 : y0 + bh, x0 : x0 + bw] = True
        _fill(img, m, _ROOF_COLOURS[rng.integers(len(_ROOF_COLOURS))], rng, 15, scale=3)
        k = int(rng.integers(4, 7))
        win = m & ((xs - x0) % k >= 1) & ((xs - x0) % k < 3) & ((ys - y0) % k >= 1) & ((ys - y0) % k < 3)
        win &= (xs > x0) & (xs < x0 + bw - 1) & (ys > y0) & (ys < y0 + bh - 1)
        img[win] = img[win] * 0.45 + np.array([20, 25, 45], np.float32)
    tree = label == TREE
    _fill(img, tree, (30, 95, 35), rng, 12, scale=2, grain=9)
    for cx, cy, r in crowns:
        m = tree & ((xs - cx) ** 2 + (ys - cy) ** 2 <= r * r)
        img[m] *= _shaded_crown(xs, ys, cx, cy, r)[m][:, None]

    # minority objects: each with its whole ignore ring on its surface, apart from the others
    objects = np.zeros((h, w), bool)
    if has_road and rng.random() < 0.8:
        lane = road & (np.abs(offset) > 0.2 * half) & (np.abs(offset) < 0.6 * half)
        cand = np.argwhere(lane)
        for _ in range(rng.integers(1, 5)):
            if not len(cand):
                break
            for _try in range(4):
                cy, cx = cand[rng.integers(len(cand))]
                angle = float(direction[cy, cx]) + (np.pi if offset[cy, cx] < 0 else 0.0)
                length = rng.uniform(0.13, 0.17) * s
                body, windows = _car(xs, ys, cx, cy, angle, length, length * rng.uniform(0.5, 0.58))
                ring = _dilate(body, 5)  # a 2-px margin: the ignore band and one more on the surface
                if body.sum() > 4 and (label[ring] == ROAD).all() and not (_dilate(objects) & ring).any():
                    label[body] = CAR
                    objects |= body
                    _fill(img, body, _CAR_COLOURS[rng.integers(len(_CAR_COLOURS))], rng, 10, scale=2)
                    img[windows] = (45, 55, 75)
                    break
    if water.any() and rng.random() < 0.75:
        for _ in range(rng.integers(1, 4)):
            length = rng.uniform(0.17, 0.23) * s
            cand = np.argwhere(_erode(label == WATER, int(0.35 * length)))
            if not len(cand):
                break
            for _try in range(4):
                cy, cx = cand[rng.integers(len(cand))]
                angle = rng.uniform(0, 2 * np.pi)
                hull_pts, sail_pts = _boat(cx, cy, angle, length, 0.4 * length, rng.choice([-1, 1]))
                hull, sail = _poly_mask((h, w), hull_pts), _poly_mask((h, w), sail_pts)
                body = hull | sail
                ring = _dilate(body, 5)  # a 2-px margin: the ignore band and one more on the surface
                if body.sum() > 4 and (label[ring] == WATER).all() and not (_dilate(objects) & ring).any():
                    label[body] = BOAT
                    objects |= body
                    _fill(img, hull, _HULL_COLOURS[rng.integers(len(_HULL_COLOURS))], rng, 8, scale=2)
                    _fill(img, sail, (245, 245, 238), rng, 4, scale=2, grain=3)
                    break

    # lighting (gain, gradient, tint) and sensor noise
    gx, gy = rng.uniform(-1, 1, 2)
    gradient = 1 + 0.08 * (gx * (xs / w - 0.5) + gy * (ys / h - 0.5)) * 2
    tint = rng.uniform(0.96, 1.04, 3).astype(np.float32)
    img = img * rng.uniform(0.85, 1.12) * gradient[..., None] * tint + rng.normal(0, 3, img.shape)
    image = np.clip(np.round(img), 0, 255).astype(np.uint8)
    # the VOC-style ignore band: 1 px around every minority object's outline
    label[_dilate(objects) & ~objects] = IGNORE_INDEX
    return image, label


def generate_demo(
    out_root: str | Path,
    num_train: int = 48,
    num_val: int = 24,
    width: int = 160,
    height: int = 120,
    seed: int = 0,
) -> dict:
    """Write the demo dataset in the canonical layout (images as lossless PNG), atomically.

    Ids are ``shapes_00000`` ...; the first ``num_train`` form ``sets/train.txt``, the rest
    ``sets/val.txt``. Image ``i`` comes from ``default_rng([seed, i])``. Returns a summary
    with the pixel share of every class over the train set (ignore excluded).
    """
    if num_train < 1 or num_val < 1:
        raise SegaugError(f"demo dataset: num_train ({num_train}) and num_val ({num_val}) must be at least 1")
    if width < 48 or height < 48:
        raise SegaugError(f"demo dataset: width and height must be at least 48 pixels, got {width}x{height}")
    if seed < 0:
        raise SegaugError(f"demo dataset: seed must be >= 0, got {seed}")
    table = class_table()
    ids = [f"shapes_{i:05d}" for i in range(num_train + num_val)]
    counts = np.zeros(table.num_classes, np.int64)
    with_minority = np.zeros(table.num_classes, np.int64)
    with canonical_writer(out_root, table) as root:
        for i, image_id in enumerate(tqdm(ids, desc="demo images", unit="img", mininterval=5)):
            image, label = generate_image(np.random.default_rng([seed, i]), width, height)
            root.add(image_id, image, label)
            if i < num_train:
                c = np.bincount(label.ravel(), minlength=256)[: table.num_classes]
                counts += c
                with_minority += c > 0
        root.add_set("train", ids[:num_train])
        root.add_set("val", ids[num_train:])
    fractions = counts / max(1, counts.sum())
    summary = {
        "images": len(ids),
        "train_pixel_fraction": dict(zip(table.names, fractions.round(4).tolist())),
        "train_images_with": {table.names[c]: int(with_minority[c]) for c in MINORITY},
    }
    log.info("demo dataset %s: %s", out_root, summary)
    return summary


def prepare(cfg: dict, out: str | Path, *, table: dict | None = None, tar=None, threads: int = 1) -> dict:
    """The ``demo`` dataset kind: generated from its config block (sizes, counts, seed)."""
    keys = ("num_train", "num_val", "width", "height", "seed")
    return generate_demo(out, **{k: cfg[k] for k in keys if k in cfg})
