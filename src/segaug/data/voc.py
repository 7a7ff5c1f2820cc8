"""VOC-layout datasets (PASCAL VOC 2007 / 2012, and exports such as CVAT's) to the canonical layout.

VOC's ``SegmentationClass`` PNGs are palette images whose indices are the class indices
(0 = background, 1..20 the classes, 255 = the "void" border): they become single-channel
index labels unchanged. Colour-coded (RGB) masks, as CVAT / Datumaro export them with a
``labelmap.txt``, are converted through the class table's palette (VOC's void colour
224,224,192 is ignore). Images are copied byte for byte. PASCAL VOC's segmentation lists
(``ImageSets/Segmentation/{train,val}.txt``: VOC2007 209 / 213, VOC2012 1464 / 1449) become
``sets/train.txt`` and ``sets/val.txt``; another export's lists (CVAT: ``default.txt``) keep
their names.

Every file is checked once, here (:mod:`segaug.data.verify`), and all problems of the dataset
are reported together; nothing is written unless every file is good.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from segaug.data.canonical import ClassTable, canonical_writer, voc_class_table
from segaug.data.class_tables import VOC_VOID_COLOUR, find_voc_dir
from segaug.data.sources import image_names, list_ids, manifest, voc_list_files, voc_source_files
from segaug.data.verify import ColourMap, Pair, Problems, check_ids, check_pairs, inside
from segaug.errors import SegaugError
from segaug.io import write_json

log = logging.getLogger(__name__)
YEARS = ("2007", "2012")


def find_voc_year_dir(root: str | Path, year: str | int | None) -> Path:
    """The ``VOC{year}`` directory of a devkit: ``root`` may be that directory itself, a
    directory holding ``VOC{year}`` (i.e. ``VOCdevkit``), or one holding ``VOCdevkit/VOC{year}``.
    Without a year: the folder of a VOC-layout export (the one holding ``JPEGImages/``)."""
    return find_voc_dir(root, None if year is None else str(year))


def official_sets(voc_year_dir: str | Path, pascal: bool = True) -> dict[str, list[str]]:
    """The id lists {"train": [...], "val": [...]} in file order (VOC2007: 209 train / 213 val;
    VOC2012: 1464 / 1449); with ``pascal=False`` every list of ``ImageSets/Segmentation``.
    Ids are returned as listed: :func:`convert_voc` checks them."""
    out = {}
    files = voc_list_files(Path(voc_year_dir), pascal)
    if not files:
        raise SegaugError(
            f"{Path(voc_year_dir) / 'ImageSets' / 'Segmentation'}: no id list (*.txt); "
            "a VOC-layout dataset lists its images there"
        )
    for name, p in files.items():
        if not p.is_file():
            raise SegaugError(f"{p}: official split list missing from the VOC devkit; re-extract it")
        ids = list_ids(p)
        if not ids:
            raise SegaugError(f"{p}: split list is empty; it must name at least one image id")
        out[name] = ids
    return out


def convert_voc(
    voc_year_dir: str | Path,
    out_root: str | Path,
    ids: Sequence[str] | None = None,
    table: ClassTable | None = None,
    pascal: bool = True,
    workers: int = 1,
    ignore_colour=VOC_VOID_COLOUR,
) -> dict:
    """Write the canonical dataset for ``ids`` (default: every listed id) to ``out_root``.

    ``table`` is the dataset's class table (default: PASCAL VOC's 21 classes); ``pascal``
    selects PASCAL VOC's train/val lists rather than every list of the export. Every list id
    must be a plain name; every image must decode completely; every label must be class
    indices of the table (or 255), or colours of its palette (or ``ignore_colour``), and the
    size of its image. All problems are reported together in one SegaugError and nothing is
    written; otherwise the dataset is built in a temporary directory renamed onto ``out_root``,
    with ``source.json`` listing the source files read (path, size, mtime). ``workers``
    threads decode in parallel. Returns a summary.
    """
    voc_dir = Path(voc_year_dir)
    table = table or voc_class_table()
    problems = Problems(f"VOC-layout dataset {voc_dir}")
    sets = {}
    for name, raw in official_sets(voc_dir, pascal).items():
        good, found = check_ids(raw, voc_list_files(voc_dir, pascal)[name])
        problems.extend(found)
        sets[name] = good
    if ids is None:
        ids = list(dict.fromkeys(i for lst in sets.values() for i in lst))
    else:
        ids, found = check_ids(list(ids), "convert_voc ids")
        problems.extend(found)
        if not ids and not found:
            raise SegaugError("convert_voc: no image ids to convert")
    images = image_names(voc_dir / "JPEGImages")
    pairs = []
    for i in ids:
        label = voc_dir / "SegmentationClass" / f"{i}.png"
        image = voc_dir / "JPEGImages" / images.get(i, f"{i}.jpg")
        outside = [p for p in (image, label) if (p.exists() or p.is_symlink()) and not inside(voc_dir, p)]
        if outside:
            problems.extend(f"{p}: resolves outside the dataset ({os.path.realpath(p)}); copy it in" for p in outside)
        elif i not in images:
            problems.add(f"{image}: image missing (no {i}.jpg/.jpeg/.png in JPEGImages)")
        else:
            pairs.append(Pair(i, image, label))
    colours = ColourMap(table.palette, ignore_colour)
    written = {}
    with canonical_writer(out_root, table) as w:

        def write(pair: Pair, label: np.ndarray) -> None:
            w.add(pair.id, pair.image, label)

        check_pairs(pairs, table.num_classes, colours, problems, on_good=write, workers=workers)
        problems.raise_if_any()
        chosen = set(ids)
        for name, lst in sets.items():
            kept = [i for i in lst if i in chosen]
            if kept:
                w.add_set(name, kept)
            else:
                log.warning("list %s shares no id with the converted ids: not written", name)
            written[name] = len(kept)
        write_json(
            w.root / "source.json",
            {"root": str(voc_dir), "files": manifest(voc_dir, voc_source_files(voc_dir, pascal))},
        )
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
        if (
            sub == ["ImageSets", "Segmentation"]
            and n.endswith(".txt")
            or sub == ["SegmentationClass"]
            and n.endswith(".png")
        ):
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


def prepare(
    cfg: dict, out: str | Path, *, table: dict | None = None, tar: str | Path | None = None, threads: int = 1
) -> dict:
    """The ``voc`` dataset kind: ``cfg`` is its config block (``path`` of a devkit or export on
    disk, or ``year`` with the downloaded ``tar``), ``table`` its class table."""
    opts = dict(
        table=ClassTable.from_dict(table, "class table") if table else None,
        pascal=bool(cfg.get("year")),
        workers=threads,
        ignore_colour=tuple(cfg.get("ignore_color") or VOC_VOID_COLOUR),
    )
    if cfg.get("path"):
        return convert_voc(find_voc_year_dir(cfg["path"], cfg.get("year")), out, **opts)
    if not tar or not cfg.get("year"):
        raise SegaugError("a VOC dataset needs `path` (on disk) or `year` and the downloaded tarball")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.extract.", dir=out.parent))
    try:
        return convert_voc(extract_voc(tar, tmp / "voc", cfg["year"]), out, **opts)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
