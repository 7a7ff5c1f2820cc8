"""PASCAL VOC (2007, 2012) to the canonical layout.

VOC's ``SegmentationClass`` PNGs are palette images whose indices are the class indices
(0 = background, 1..20 the classes, 255 = the "void" border): they become single-channel
index labels unchanged. JPEGs are copied byte for byte. The official segmentation lists
(``ImageSets/Segmentation/{train,val}.txt``: VOC2007 209 / 213, VOC2012 1464 / 1449) become
``sets/train.txt`` and ``sets/val.txt``.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Sequence

from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from segaug.data.canonical import check_label_values, read_label, voc_class_table, write_label, write_split
from segaug.errors import SegaugError
from segaug.io import atomic_path

log = logging.getLogger(__name__)
SETS = ("train", "val")
YEARS = ("2007", "2012")


def _is_year_dir(d: Path) -> bool:
    return (d / "ImageSets" / "Segmentation").is_dir() and (d / "JPEGImages").is_dir()


def find_voc_year_dir(root: str | Path, year: str | int) -> Path:
    """The ``VOC{year}`` directory of a devkit: ``root`` may be that directory itself, a
    directory holding ``VOC{year}`` (i.e. ``VOCdevkit``), or one holding ``VOCdevkit/VOC{year}``."""
    root, year = Path(root), str(year)
    candidates = [root, root / f"VOC{year}", root / "VOCdevkit" / f"VOC{year}"]
    for c in candidates:
        if _is_year_dir(c):
            return c
    if not root.exists():
        raise SegaugError(f"{root}: VOC devkit directory not found; check the dataset path in config")
    raise SegaugError(
        f"{root}: no VOC{year} devkit found; looked for ImageSets/Segmentation/ and JPEGImages/ in "
        + ", ".join(str(c) for c in candidates)
        + f"; point the path at the extracted VOCtrainval tarball (the dir holding VOCdevkit/VOC{year})"
    )


def official_sets(voc_year_dir: str | Path) -> dict[str, list[str]]:
    """The official segmentation lists {"train": [...], "val": [...]}, in file order
    (VOC2007: 209 train / 213 val; VOC2012: 1464 / 1449)."""
    out = {}
    for name in SETS:
        p = Path(voc_year_dir) / "ImageSets" / "Segmentation" / f"{name}.txt"
        if not p.is_file():
            raise SegaugError(f"{p}: official split list missing from the VOC devkit; re-extract it")
        ids = [line.split()[0] for line in p.read_text().splitlines() if line.strip()]
        if not ids:
            raise SegaugError(f"{p}: official split list is empty; re-extract the VOC devkit")
        out[name] = list(dict.fromkeys(ids))
    return out


def _image_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as im:
            im.verify()
            return im.size
    except FileNotFoundError:
        raise SegaugError(f"{path}: image missing from the VOC devkit; re-extract it") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise SegaugError(f"{path}: cannot read image ({e}); re-extract or replace it") from None


def convert_voc(voc_year_dir: str | Path, out_root: str | Path, ids: Sequence[str] | None = None) -> dict:
    """Write the canonical dataset for ``ids`` (default: official train + val) to ``out_root``.

    Built in a temporary directory renamed onto ``out_root`` at the end. Every label is checked:
    values 0..20 or 255, and the same size as its image (else a clear error naming both).
    ``sets/train.txt`` and ``sets/val.txt`` are the official lists restricted to ``ids`` (a list
    left empty by the restriction is not written). Returns a summary.
    """
    voc_year_dir = Path(voc_year_dir)
    sets = official_sets(voc_year_dir)
    if ids is None:
        ids = list(dict.fromkeys(sets["train"] + sets["val"]))
    else:
        ids = list(dict.fromkeys(ids))
        if not ids:
            raise SegaugError("convert_voc: no image ids to convert")
    table = voc_class_table()
    with atomic_path(out_root) as root:
        (root / "images").mkdir(parents=True)
        (root / "labels").mkdir()
        for image_id in tqdm(ids, desc="VOC -> canonical", unit="img", mininterval=5):
            src_img = voc_year_dir / "JPEGImages" / f"{image_id}.jpg"
            src_lab = voc_year_dir / "SegmentationClass" / f"{image_id}.png"
            size = _image_size(src_img)
            label = read_label(src_lab)
            check_label_values(label, table.num_classes, src_lab)
            if size != (label.shape[1], label.shape[0]):
                raise SegaugError(
                    f"{src_lab}: label size {label.shape[1]}x{label.shape[0]} does not match "
                    f"image {src_img} size {size[0]}x{size[1]}; re-extract the VOC devkit"
                )
            shutil.copyfile(src_img, root / "images" / f"{image_id}.jpg")
            write_label(root / "labels" / f"{image_id}.png", label)
        table.save(root / "classes.json")
        chosen = set(ids)
        written = {}
        for name, lst in sets.items():
            kept = [i for i in lst if i in chosen]
            if kept:
                write_split(root / "sets" / f"{name}.txt", kept)
            else:
                log.warning("official %s list shares no id with the converted ids: not written", name)
            written[name] = len(kept)
    summary = {"images": len(ids), "sets": written}
    log.info("converted %s -> %s: %s", voc_year_dir, out_root, summary)
    return summary


def voc_members(names: Sequence[str], year: str | int) -> list[str]:
    """Tar members a conversion needs: the segmentation lists, their labels and JPEGs.

    Takes all member names of a VOCtrainval tarball (``VOCdevkit/VOC{year}/...``); the JPEGs
    kept are those with a ``SegmentationClass`` label (the segmentation train + val images).
    """
    year = str(year)
    keep, jpegs = [], {}
    for n in names:
        parts = n.split("/")
        if f"VOC{year}" not in parts[:-1] or not parts[-1]:
            continue
        i = parts.index(f"VOC{year}")
        sub = parts[i + 1 : -1]
        if sub == ["ImageSets", "Segmentation"] and n.endswith(".txt"):
            keep.append(n)
        elif sub == ["SegmentationClass"] and n.endswith(".png"):
            keep.append(n)
        elif sub == ["JPEGImages"] and n.endswith(".jpg"):
            jpegs[parts[-1][:-4]] = n
    seg_ids = [Path(n).stem for n in keep if n.endswith(".png")]
    keep += [jpegs[i] for i in seg_ids if i in jpegs]
    return keep


def extract_voc(tar_path: str | Path, dest_dir: str | Path, year: str | int) -> Path:
    """Extract only what a conversion needs from a VOCtrainval tarball; returns the year dir."""
    from segaug.data.download import extract_tar

    def select(names):
        members = voc_members(names, year)
        if not any("/ImageSets/Segmentation/" in n for n in members):
            raise SegaugError(
                f"{tar_path}: holds no VOC{year} segmentation data (VOCdevkit/VOC{year}/ImageSets/"
                f"Segmentation); is it the VOCtrainval tarball of {year}?"
            )
        return members

    extract_tar(tar_path, dest_dir, select)
    return find_voc_year_dir(dest_dir, year)
