"""A procedurally generated VOC-format dataset for the laptop demo and the tests.

"shapes": aerial-style scenes of grass, a road and water (the surfaces a context rule can
refer to: a car on a road, a boat on water), majority objects (buildings, trees) and two
minority classes with distinct shapes, each well under 5 % of labelled pixels:

- car:  a small rounded rectangle with a windscreen, on the road, oriented along it;
- boat: a pointed hull with a cabin, on the water.

Like VOC, minority objects get a 1-pixel ignore (255) band around their outline. Every image
comes from its own generator ``default_rng([seed, index])``: the same seed gives the same
bytes, whatever else is generated.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from segaug.data.canonical import IGNORE_INDEX, ClassTable, write_image, write_label, write_split
from segaug.data.classnames import DEMO_CLASSES
from segaug.errors import SegaugError
from segaug.io import atomic_path

GRASS, ROAD, WATER, BUILDING, TREE, CAR, BOAT = range(7)
PALETTE = (
    (60, 160, 60),    # grass
    (128, 128, 128),  # road
    (40, 90, 200),    # water
    (200, 120, 60),   # building
    (20, 90, 30),     # tree
    (230, 30, 30),    # car
    (250, 230, 40),   # boat
)  # fmt: skip


def class_table() -> ClassTable:
    return ClassTable(DEMO_CLASSES, PALETTE)


def _noise(rng, h, w, scale):
    """Smooth texture: upsampled uniform noise in [-1, 1]."""
    small = rng.uniform(-1, 1, (max(2, h // scale), max(2, w // scale))).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def _fill(img, mask, base, rng, texture, scale=6):
    h, w = mask.shape
    t = _noise(rng, h, w, scale)[..., None] * texture
    fine = rng.normal(0, 4, (h, w, 1)).astype(np.float32)
    colour = np.clip(np.asarray(base, np.float32) + t + fine, 0, 255)
    img[mask] = colour[mask]


def _rotated_rect(cx, cy, length, width, angle):
    return cv2.boxPoints(((float(cx), float(cy)), (float(length), float(width)), float(angle)))


def _poly_mask(shape, pts):
    m = np.zeros(shape, np.uint8)
    cv2.fillPoly(m, [np.round(pts).astype(np.int32)], 1)
    return m.astype(bool)


def generate_image(rng: np.random.Generator, width: int, height: int):
    """One scene: returns (RGB uint8 image, uint8 label)."""
    h, w = height, width
    label = np.full((h, w), GRASS, np.uint8)
    img = np.zeros((h, w, 3), np.float32)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)

    # water: a lake (ellipse) or a river band along one side
    if rng.random() < 0.5:
        cx, cy = rng.uniform(0.15, 0.85) * w, rng.uniform(0.15, 0.85) * h
        ax, ay = rng.uniform(0.15, 0.3) * w, rng.uniform(0.15, 0.3) * h
        water = ((xs - cx) / ax) ** 2 + ((ys - cy) / ay) ** 2 <= 1
    else:
        edge = rng.uniform(0.65, 0.8) * h + 4 * np.sin(xs / rng.uniform(8, 16))
        water = ys >= edge
    label[water] = WATER

    # road: a straight band at an angle, with lane dashes drawn later
    angle = rng.uniform(-35, 35) if rng.random() < 0.5 else rng.uniform(55, 125)
    theta = np.deg2rad(angle)
    px, py = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h
    dist = -(xs - px) * np.sin(theta) + (ys - py) * np.cos(theta)
    road_half = rng.uniform(0.09, 0.12) * min(h, w)
    road = (np.abs(dist) <= road_half) & ~water
    label[road] = ROAD

    # buildings: rectangles on grass
    for _ in range(rng.integers(1, 4)):
        bw, bh = rng.integers(w // 10, w // 5), rng.integers(h // 10, h // 5)
        x0, y0 = rng.integers(0, w - bw), rng.integers(0, h - bh)
        region = label[y0 : y0 + bh, x0 : x0 + bw]
        if (region == GRASS).mean() > 0.9:
            region[region == GRASS] = BUILDING
    # trees: round crowns on grass
    for _ in range(rng.integers(2, 7)):
        r = rng.uniform(0.03, 0.06) * min(h, w)
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        crown = ((xs - cx) ** 2 + (ys - cy) ** 2 <= r * r) & (label == GRASS)
        label[crown] = TREE

    _fill(img, label == GRASS, (70, 150, 60), rng, 25)
    _fill(img, label == WATER, (40, 85, 185), rng, 12, scale=3)
    img[label == WATER] += (6 * np.sin(ys / 2.0))[label == WATER][:, None]  # waves
    _fill(img, label == ROAD, (125, 125, 128), rng, 10)
    dashes = road & (np.abs(dist) < 0.8) & (((xs * np.cos(theta) + ys * np.sin(theta)) // 5) % 2 == 0)
    img[dashes] = (235, 235, 235)
    _fill(img, label == BUILDING, (190, 110, 70), rng, 20, scale=3)
    img[(label == BUILDING) & (xs % 5 < 2) & (ys % 5 < 2)] *= 0.6  # windows
    _fill(img, label == TREE, (25, 85, 35), rng, 20, scale=2)

    # minority objects: cars on the road (along it), boats on the water
    objects = np.zeros((h, w), bool)
    if road.any() and rng.random() < 0.8:
        for _ in range(rng.integers(1, 4)):
            cand = np.argwhere(road & (np.abs(dist) < road_half * 0.5))
            if not len(cand):
                break
            cy, cx = cand[rng.integers(len(cand))]
            length, width_ = rng.uniform(0.1, 0.14) * w, rng.uniform(0.055, 0.075) * w
            body = _poly_mask((h, w), _rotated_rect(cx, cy, length, width_, angle))
            if (label[body] != ROAD).any() or (objects & body).any():
                continue
            label[body] = CAR
            objects |= body
            _fill(img, body, rng.choice([(210, 30, 30), (230, 60, 40), (190, 20, 60)]), rng, 10, 2)
            ux, uy = np.cos(theta), np.sin(theta)
            glass = _poly_mask((h, w), _rotated_rect(cx + ux * length * 0.2, cy + uy * length * 0.2,
                                                     length * 0.25, width_ * 0.7, angle))  # fmt: skip
            img[glass & body] = (40, 50, 70)
    if water.any() and rng.random() < 0.7:
        for _ in range(rng.integers(1, 3)):
            cand = np.argwhere(water)
            cy, cx = cand[rng.integers(len(cand))]
            length = rng.uniform(0.12, 0.17) * w
            beam = length * 0.4
            a = rng.uniform(0, 180)
            ux, uy = np.cos(np.deg2rad(a)), np.sin(np.deg2rad(a))
            nx, ny = -uy, ux
            hull = np.array([
                (cx - ux * length / 2 + nx * beam / 2, cy - uy * length / 2 + ny * beam / 2),
                (cx + ux * length / 4 + nx * beam / 2, cy + uy * length / 4 + ny * beam / 2),
                (cx + ux * length / 2, cy + uy * length / 2),  # the bow
                (cx + ux * length / 4 - nx * beam / 2, cy + uy * length / 4 - ny * beam / 2),
                (cx - ux * length / 2 - nx * beam / 2, cy - uy * length / 2 - ny * beam / 2),
            ])  # fmt: skip
            body = _poly_mask((h, w), hull)
            if not body.any() or (label[body] != WATER).any() or (objects & body).any():
                continue
            label[body] = BOAT
            objects |= body
            _fill(img, body, (245, 235, 60), rng, 8, 2)
            cabin = _poly_mask((h, w), _rotated_rect(cx - ux * length * 0.1, cy - uy * length * 0.1,
                                                     length * 0.3, beam * 0.5, a))  # fmt: skip
            img[cabin & body] = (250, 250, 250)

    # lighting and sensor noise, then the VOC-style ignore band around minority objects
    img = img * rng.uniform(0.85, 1.15) + rng.normal(0, 3, img.shape)
    image = np.clip(img, 0, 255).astype(np.uint8)
    if objects.any():
        ring = cv2.dilate(objects.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & ~objects
        label[ring] = IGNORE_INDEX
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

    Returns a summary with the pixel share of every class over the train set.
    """
    if num_train < 1 or num_val < 1:
        raise SegaugError("demo dataset: num_train and num_val must be at least 1")
    if width < 32 or height < 32:
        raise SegaugError("demo dataset: width and height must be at least 32 pixels")
    table = class_table()
    ids = [f"shapes_{i:05d}" for i in range(num_train + num_val)]
    counts = np.zeros(table.num_classes, np.int64)
    with atomic_path(out_root) as root:
        for i, image_id in enumerate(tqdm(ids, desc="demo images", unit="img")):
            image, label = generate_image(np.random.default_rng([seed, i]), width, height)
            write_image(root / "images" / f"{image_id}.png", image)
            write_label(root / "labels" / f"{image_id}.png", label)
            if i < num_train:
                counts += np.bincount(label[label != IGNORE_INDEX].ravel(), minlength=256)[:7]
        table.save(root / "classes.json")
        write_split(root / "sets" / "train.txt", ids[:num_train])
        write_split(root / "sets" / "val.txt", ids[num_train:])
    fractions = counts / max(1, counts.sum())
    return {"images": len(ids), "train_pixel_fraction": dict(zip(table.names, fractions.round(4).tolist()))}
