"""Datasets that are not PASCAL VOC, made by the tests: six classes of their own, their own
palette, odd image sizes, grayscale JPEGs, 255 borders; as a VOC-layout export (the layout CVAT
writes) and in the canonical layout."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

NAMES = ("background", "road", "building", "tree", "car", "boat")
PALETTE = ((0, 0, 0), (128, 64, 128), (70, 70, 70), (107, 142, 35), (0, 0, 142), (0, 80, 100))
VOID = (224, 224, 192)  # VOC's void colour in colour-coded masks (index 255)
SIZES = ((97, 61), (130, 88), (64, 77), (151, 50), (88, 88), (73, 101))  # (w, h), odd on purpose

# CVAT's labelmap.txt, in the format of its documentation (docs.cvat.ai, "Segmentation Mask"
# format): "# label : color (RGB) : 'body' parts : actions" then "name:r,g,b::" per class.
LABELMAP = "# label:color_rgb:parts:actions\n" + "".join(f"{n}:{r},{g},{b}::\n" for n, (r, g, b) in zip(NAMES, PALETTE))


def index_label(k: int, w: int, h: int) -> np.ndarray:
    """Road band, a building, a tree, one car on the road and a boat, a 255 border round the car."""
    lab = np.zeros((h, w), np.uint8)
    lab[h // 2 :, :] = 1
    lab[: h // 3, : w // 3] = 2
    lab[: h // 4, w // 2 : w // 2 + 8] = 3
    y, x = h // 2 + 4, 5 + (k * 7) % max(1, w - 20)
    lab[y - 1 : y + 7, x - 1 : x + 13] = 255
    lab[y : y + 6, x : x + 12] = 4
    lab[2:6, w - 10 : w - 3] = 5
    return lab


def image_for(lab: np.ndarray, k: int) -> np.ndarray:
    rng = np.random.default_rng(k)
    lut = np.array(PALETTE + ((200, 200, 200),) * 250, np.uint8)
    img = lut[np.minimum(lab, 6)].astype(np.int16) + rng.integers(-20, 20, lab.shape + (3,))
    return np.clip(img, 0, 255).astype(np.uint8)


def jpeg_bytes(img: np.ndarray, grey: bool = False) -> bytes:
    buf = io.BytesIO()
    im = Image.fromarray(img).convert("L") if grey else Image.fromarray(img)
    im.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def rgb_png(lab: np.ndarray) -> bytes:
    """A colour-coded mask as CVAT/Datumaro export it: 3-channel PNG, one colour per class."""
    lut = np.zeros((256, 3), np.uint8)
    lut[: len(PALETTE)] = PALETTE
    lut[255] = VOID
    buf = io.BytesIO()
    Image.fromarray(lut[lab]).save(buf, format="PNG")
    return buf.getvalue()


def palette_png(lab: np.ndarray) -> bytes:
    im = Image.fromarray(lab, mode="P")
    im.putpalette([v for c in PALETTE for v in c] + list(VOID) * 250)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def ids(n: int = 6) -> list[str]:
    return [f"frame_{k:04d}" for k in range(n)]


def make_voc_export(root: Path, n: int = 6, split: bool = True) -> list[str]:
    """A VOC-layout export as CVAT writes it: labelmap.txt, JPEGImages/, colour-coded
    SegmentationClass/ (one mask palette-indexed, the rest RGB), ImageSets/Segmentation/ lists;
    every other image grayscale."""
    names = ids(n)
    (root / "JPEGImages").mkdir(parents=True)
    (root / "SegmentationClass").mkdir()
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    (root / "labelmap.txt").write_text(LABELMAP)
    for k, i in enumerate(names):
        w, h = SIZES[k % len(SIZES)]
        lab = index_label(k, w, h)
        (root / "JPEGImages" / f"{i}.jpg").write_bytes(jpeg_bytes(image_for(lab, k), grey=k % 2 == 1))
        (root / "SegmentationClass" / f"{i}.png").write_bytes(palette_png(lab) if k == 0 else rgb_png(lab))
    seg = root / "ImageSets" / "Segmentation"
    if split:
        (seg / "train.txt").write_text("".join(f"{i}\n" for i in names[: n * 2 // 3]))
        (seg / "val.txt").write_text("".join(f"{i}\n" for i in names[n * 2 // 3 :]))
    else:
        (seg / "default.txt").write_text("".join(f"{i}\n" for i in names))
    return names


def make_canonical(root: Path, n: int = 6) -> list[str]:
    """The same data in the canonical layout: classes.json, images/, index labels/, sets/."""
    import json

    names = ids(n)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "sets").mkdir()
    (root / "classes.json").write_text(
        json.dumps({"names": list(NAMES), "palette": [list(c) for c in PALETTE], "ignore_index": 255})
    )
    for k, i in enumerate(names):
        w, h = SIZES[k % len(SIZES)]
        lab = index_label(k, w, h)
        (root / "images" / f"{i}.jpg").write_bytes(jpeg_bytes(image_for(lab, k), grey=k % 2 == 1))
        Image.fromarray(lab, mode="L").save(root / "labels" / f"{i}.png")
    (root / "sets" / "train.txt").write_text("".join(f"{i}\n" for i in names[: n * 2 // 3]))
    (root / "sets" / "val.txt").write_text("".join(f"{i}\n" for i in names[n * 2 // 3 :]))
    return names


def layout(root: Path, kind: str) -> dict:
    """Where a test finds the image, the label and a list of each layout."""
    if kind == "voc":
        return {
            "images": root / "JPEGImages",
            "labels": root / "SegmentationClass",
            "train": root / "ImageSets/Segmentation/train.txt",
        }
    return {"images": root / "images", "labels": root / "labels", "train": root / "sets/train.txt"}
