"""The crop stage: cut minority-class objects out of ground-truth masks into an object pool.

An *object* is one connected component of one class's mask. It is saved as an RGBA crop of its
bounding box: RGB = the image inside the component (0 outside it), alpha = the component
mask (255 inside, 0 outside). Pixels of other components of the same class inside the box
are not part of the object, so each crop holds exactly one instance.

Pool layout (``out_dir``)::

    crops/{n:06d}.png   RGBA crops, n = 0, 1, ... in (split order, class, component) order
    index.csv           one row per crop: crop, class_index, class_name, area, x0, y0, x1, y1,
                        width, height, source_id, touches_border   (boxes: x1, y1 exclusive)
    pool.json           summary: which classes, why (config or frequency), counts per class

Which classes: the ones named in config, or else the *minority classes by frequency* -- the
classes whose share of labelled pixels (ignore excluded) over the split is below
``max_fraction``; classes absent from the split are never minority (nothing to crop).
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from segaug.data.canonical import (
    ClassTable,
    class_pixel_counts,
    load_pair,
    read_label,
    samples,
)
from segaug.errors import SegaugError
from segaug.io import atomic_path, write_json
from segaug.progress import progress

log = logging.getLogger("segaug.pool")

INDEX_COLUMNS = (
    "crop",
    "class_index",
    "class_name",
    "area",
    "x0",
    "y0",
    "x1",
    "y1",
    "width",
    "height",
    "source_id",
    "touches_border",
)


# ---------------------------------------------------------------- which classes


def minority_classes_by_frequency(counts: Sequence[int] | np.ndarray, max_fraction: float) -> list[int]:
    """Indices of classes whose pixel share is below ``max_fraction``.

    ``counts[i]`` is the pixel count of class i (ignore pixels excluded, as
    :func:`segaug.data.canonical.class_pixel_counts` gives). The share is over all counted
    pixels. Classes with zero pixels are skipped: there is nothing of them to crop.
    """
    counts = np.asarray(counts, dtype=np.int64)
    if not 0.0 < max_fraction <= 1.0:
        raise SegaugError(f"max_fraction must be in (0, 1], got {max_fraction}")
    total = int(counts.sum())
    if total == 0:
        return []
    frac = counts / total
    return [int(i) for i in np.flatnonzero((counts > 0) & (frac < max_fraction))]


# ---------------------------------------------------------------- extraction


@dataclass
class ExtractedObject:
    """One connected component of one class, cut out of an image."""

    rgba: np.ndarray  # h x w x 4 uint8, alpha 255 on the component, RGB 0 off it
    class_index: int
    area: int  # pixels in the component
    bbox: tuple[int, int, int, int]  # x0, y0, x1, y1 (x1, y1 exclusive)
    touches_border: bool  # the box reaches an image edge

    @property
    def width(self) -> int:
        return self.bbox[2] - self.bbox[0]

    @property
    def height(self) -> int:
        return self.bbox[3] - self.bbox[1]


def extract_objects(
    image: np.ndarray,
    label: np.ndarray,
    class_ids: Sequence[int],
    min_area: int,
    drop_border: bool = False,
    connectivity: int = 8,
) -> list[ExtractedObject]:
    """Connected components of each class in ``class_ids`` as RGBA objects.

    Components with fewer than ``min_area`` pixels are dropped; with ``drop_border`` so are
    components touching the image border (likely cut off by the frame). Objects come in
    ``class_ids`` order, then in OpenCV's component order (raster order of first pixel).
    """
    if connectivity not in (4, 8):
        raise SegaugError(f"connectivity must be 4 or 8, got {connectivity}")
    if image.shape[:2] != label.shape:
        raise ValueError(f"image {image.shape} and label {label.shape} sizes differ")
    H, W = label.shape
    out: list[ExtractedObject] = []
    present = set(np.unique(label).tolist())
    for c in class_ids:
        if int(c) not in present:
            continue
        mask = (label == c).astype(np.uint8)
        n, comp, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=connectivity)
        for k in range(1, n):
            x0, y0, w, h, area = (int(v) for v in stats[k])
            if area < min_area:
                continue
            x1, y1 = x0 + w, y0 + h
            border = x0 == 0 or y0 == 0 or x1 == W or y1 == H
            if drop_border and border:
                continue
            inside = comp[y0:y1, x0:x1] == k
            rgba = np.zeros((h, w, 4), dtype=np.uint8)
            rgba[..., :3][inside] = image[y0:y1, x0:x1][inside]
            rgba[..., 3] = inside.astype(np.uint8) * 255
            out.append(ExtractedObject(rgba, int(c), area, (x0, y0, x1, y1), border))
    return out


# ---------------------------------------------------------------- the pool on disk


def build_pool(
    dataset_root: str | Path,
    ids: Sequence[str],
    class_table: ClassTable,
    class_names: Sequence[str] | None,
    max_fraction: float,
    min_area: int,
    drop_border: bool,
    out_dir: str | Path,
    connectivity: int = 8,
) -> dict:
    """Crop every object of the chosen classes over ``ids`` into a pool at ``out_dir``.

    Classes: ``class_names`` (validated against the class table) or, when None, the minority
    classes by pixel frequency over ``ids`` (:func:`minority_classes_by_frequency`). The pool
    directory is built beside ``out_dir`` and renamed into place. Returns the pool.json dict.
    """
    if min_area < 1:
        raise SegaugError(f"min_area must be at least 1, got {min_area}")
    out_dir = Path(out_dir)
    pairs = samples(dataset_root, ids)
    nc = class_table.num_classes

    counts = None
    if class_names:
        class_ids = class_table.indices(class_names)
        source = "config"
    else:
        log.info("counting class pixels over %d images", len(pairs))
        counts = class_pixel_counts((read_label(s.label, nc) for s in progress(pairs, desc="class counts")), nc)
        class_ids = minority_classes_by_frequency(counts, max_fraction)
        source = "frequency"
        if not class_ids:
            raise SegaugError(
                f"no class has a pixel share below max_fraction={max_fraction} over the "
                f"{len(pairs)} images of the split; raise max_fraction or name the classes"
            )
    log.info("pool classes (%s): %s", source, ", ".join(class_table.names[c] for c in class_ids))

    rows: list[dict] = []
    per_class = {c: {"objects": 0, "pixels": 0, "images": 0} for c in class_ids}
    with atomic_path(out_dir) as tmp:
        (tmp / "crops").mkdir(parents=True)
        for s in progress(pairs, desc="crop"):
            label = read_label(s.label, nc)
            if not np.isin(label, class_ids).any():
                continue  # skip decoding the image
            image, label = load_pair(s, nc)
            objs = extract_objects(image, label, class_ids, min_area, drop_border, connectivity)
            for c in {o.class_index for o in objs}:
                per_class[c]["images"] += 1
            for o in objs:
                name = f"crops/{len(rows):06d}.png"
                Image.fromarray(o.rgba, mode="RGBA").save(tmp / name, format="PNG")
                x0, y0, x1, y1 = o.bbox
                rows.append(
                    {
                        "crop": name,
                        "class_index": o.class_index,
                        "class_name": class_table.names[o.class_index],
                        "area": o.area,
                        "x0": x0,
                        "y0": y0,
                        "x1": x1,
                        "y1": y1,
                        "width": o.width,
                        "height": o.height,
                        "source_id": s.id,
                        "touches_border": int(o.touches_border),
                    }
                )
                per_class[o.class_index]["objects"] += 1
                per_class[o.class_index]["pixels"] += o.area
        if not rows:
            looked = ", ".join(class_table.names[c] for c in class_ids)
            raise SegaugError(
                f"{out_dir}: empty object pool: no connected component of [{looked}] "
                f"({source}) with at least min_area={min_area} pixels"
                + (" away from the image border" if drop_border else "")
                + f" in {len(pairs)} images; lower min_area"
                + (", turn off drop_border" if drop_border else "")
                + " or choose other classes"
            )
        with open(tmp / "index.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=INDEX_COLUMNS, lineterminator="\n")
            w.writeheader()
            w.writerows(rows)
        total = int(counts.sum()) if counts is not None else None
        summary = {
            "class_source": source,
            "max_fraction": max_fraction if source == "frequency" else None,
            "min_area": min_area,
            "drop_border": bool(drop_border),
            "connectivity": connectivity,
            "num_images": len(pairs),
            "num_objects": len(rows),
            "classes": [
                {
                    "index": c,
                    "name": class_table.names[c],
                    "reason": (
                        f"pixel share {counts[c] / total:.6f} < max_fraction {max_fraction}"
                        if counts is not None
                        else "named in config"
                    ),
                    "pixel_fraction": (float(counts[c] / total) if counts is not None else None),
                    **per_class[c],
                }
                for c in class_ids
            ],
        }
        if counts is not None:
            summary["class_pixel_fractions"] = {class_table.names[i]: float(counts[i] / total) for i in range(nc)}
        write_json(tmp / "pool.json", summary)
    empty = [class_table.names[c] for c in class_ids if per_class[c]["objects"] == 0]
    if empty:
        log.warning("no objects kept for classes: %s", ", ".join(empty))
    log.info("pool: %d objects from %d images -> %s", len(rows), len(pairs), out_dir)
    return summary


@dataclass
class PoolObject:
    """One row of a pool's index.csv; the RGBA crop is read on first use of :meth:`rgba`."""

    crop: str  # path relative to the pool directory, e.g. "crops/000012.png"
    path: Path
    class_index: int
    class_name: str
    area: int
    bbox: tuple[int, int, int, int]
    source_id: str
    touches_border: bool
    _rgba: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def width(self) -> int:
        return self.bbox[2] - self.bbox[0]

    @property
    def height(self) -> int:
        return self.bbox[3] - self.bbox[1]

    def rgba(self) -> np.ndarray:
        if self._rgba is None:
            try:
                with Image.open(self.path) as im:
                    if im.mode != "RGBA":
                        raise SegaugError(f"{self.path}: pool crop must be RGBA, got {im.mode}")
                    a = np.asarray(im)
            except FileNotFoundError:
                raise SegaugError(f"{self.path}: pool crop missing; rebuild the pool") from None
            except OSError as e:
                raise SegaugError(f"{self.path}: cannot read pool crop ({e}); rebuild the pool") from None
            if a.shape[:2] != (self.height, self.width):
                raise SegaugError(
                    f"{self.path}: crop is {a.shape[1]}x{a.shape[0]} but index.csv says "
                    f"{self.width}x{self.height}; rebuild the pool"
                )
            self._rgba = a
        return self._rgba


def load_pool(out_dir: str | Path, eager: bool = False) -> list[PoolObject]:
    """Read a pool written by :func:`build_pool` (crops load lazily unless ``eager``)."""
    out_dir = Path(out_dir)
    index = out_dir / "index.csv"
    if not index.exists():
        raise SegaugError(f"{index}: pool index not found; run the crop stage (scripts/pool.py) first")
    with open(index, newline="") as f:
        reader = csv.DictReader(f)
        missing = set(INDEX_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise SegaugError(f"{index}: missing columns {sorted(missing)}; rebuild the pool")
        objs = []
        for n, r in enumerate(reader, start=2):
            try:
                objs.append(
                    PoolObject(
                        crop=r["crop"],
                        path=out_dir / r["crop"],
                        class_index=int(r["class_index"]),
                        class_name=r["class_name"],
                        area=int(r["area"]),
                        bbox=(int(r["x0"]), int(r["y0"]), int(r["x1"]), int(r["y1"])),
                        source_id=r["source_id"],
                        touches_border=bool(int(r["touches_border"])),
                    )
                )
            except (TypeError, ValueError) as e:
                raise SegaugError(f"{index}: line {n}: bad value ({e}); rebuild the pool") from None
    if not objs:
        raise SegaugError(f"{index}: the pool holds no objects; rebuild it with other settings")
    if eager:
        for o in objs:
            o.rgba()
    return objs
