"""PASCAL VOC (2007, 2012) to the canonical layout.

VOC's ``SegmentationClass`` PNGs are palette images whose indices are the class indices
(0 = background, 1..20 the classes, 255 = the "void" border): they become single-channel
index labels unchanged. JPEGs are copied byte for byte.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Sequence

from PIL import Image
from tqdm import tqdm

from segaug.data.canonical import check_label_values, read_label, voc_class_table, write_label, write_split
from segaug.errors import SegaugError
from segaug.io import atomic_path

SETS = ("train", "val")


def find_voc_year_dir(root: str | Path, year: str) -> Path:
    """Accept the year dir itself, its parent ``VOCdevkit``, or a dir holding ``VOCdevkit``."""
    root = Path(root)
    candidates = [root, root / f"VOC{year}", root / "VOCdevkit" / f"VOC{year}"]
    for c in candidates:
        if (c / "ImageSets" / "Segmentation").is_dir() and (c / "JPEGImages").is_dir():
            return c
    raise SegaugError(
        f"{root}: no VOC{year} devkit found; looked for ImageSets/Segmentation and JPEGImages in "
        + ", ".join(str(c) for c in candidates)
    )


def official_sets(year_dir: str | Path) -> dict[str, list[str]]:
    """The official segmentation lists (VOC2007: 209 train / 213 val; VOC2012: 1464 / 1449)."""
    out = {}
    for name in SETS:
        p = Path(year_dir) / "ImageSets" / "Segmentation" / f"{name}.txt"
        if not p.exists():
            raise SegaugError(f"{p}: official split list missing from the VOC devkit")
        out[name] = [line.split()[0] for line in p.read_text().splitlines() if line.strip()]
    return out


def convert_voc(year_dir: str | Path, out_root: str | Path, ids: Sequence[str] | None = None) -> dict:
    """Write the canonical dataset for ``ids`` (default: official train + val) to out_root."""
    year_dir = Path(year_dir)
    sets = official_sets(year_dir)
    if ids is None:
        ids = list(dict.fromkeys(sets["train"] + sets["val"]))
    table = voc_class_table()
    with atomic_path(out_root) as root:
        (root / "images").mkdir(parents=True)
        for image_id in tqdm(ids, desc="VOC -> canonical", unit="img"):
            src_img = year_dir / "JPEGImages" / f"{image_id}.jpg"
            src_lab = year_dir / "SegmentationClass" / f"{image_id}.png"
            if not src_img.exists():
                raise SegaugError(f"{src_img}: image missing from the VOC devkit")
            label = read_label(src_lab)
            check_label_values(label, table.num_classes, src_lab)
            with Image.open(src_img) as im:
                if im.size != (label.shape[1], label.shape[0]):
                    raise SegaugError(
                        f"{src_lab}: label size {label.shape[1]}x{label.shape[0]} does not match "
                        f"image {src_img} size {im.size[0]}x{im.size[1]}"
                    )
            shutil.copyfile(src_img, root / "images" / f"{image_id}.jpg")
            write_label(root / "labels" / f"{image_id}.png", label)
        table.save(root / "classes.json")
        for name, lst in sets.items():
            write_split(root / "sets" / f"{name}.txt", lst)
    return {"images": len(ids), "sets": {k: len(v) for k, v in sets.items()}}


def voc_members(names: Sequence[str], year: str) -> list[str]:
    """Tar members a conversion needs: the segmentation lists, their JPEGs and labels."""
    keep = []
    for n in names:
        parts = n.split("/")
        if f"VOC{year}" not in parts:
            continue
        if "ImageSets/Segmentation/" in n or "/SegmentationClass/" in n:
            keep.append(n)
    seg_ids = {Path(n).stem for n in keep if "/SegmentationClass/" in n}
    keep += [n for n in names if "/JPEGImages/" in n and Path(n).stem in seg_ids and f"VOC{year}" in n]
    return keep
