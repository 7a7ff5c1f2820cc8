"""The source files a dataset is made from, and their fingerprint.

The workflow computes the fingerprint (size and modification time of every source file) when
it starts and passes it to the rule that converts or verifies the dataset as a parameter: a
replaced, added or removed source file changes it, and Snakemake plans that rule again
("params changed"). The conversion writes the same list to ``source.json`` in its output.
Standard library only: the Snakemake process imports this module.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from segaug.data.class_tables import TABLE_FILES, find_voc_dir
from segaug.data.layout import IMAGE_EXTS

PASCAL_SETS = ("train", "val")


def id_problem(image_id: str) -> str | None:
    """Why ``image_id`` is not a plain file name (no directories, no '..', no hidden name)."""
    if not image_id:
        return "an empty id"
    if image_id != image_id.strip():
        return f"id {image_id!r} has leading or trailing spaces"
    if "/" in image_id or "\\" in image_id or "\x00" in image_id:
        return f"id {image_id!r} is a path, not a plain name"
    if image_id.startswith("."):
        return f"id {image_id!r} starts with '.' (a path or a hidden file)"
    return None


def list_ids(path: Path) -> list[str]:
    """Ids of a list file, one per line (extra columns ignored, blank lines skipped)."""
    return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]


def voc_list_files(voc_dir: Path, pascal: bool) -> dict[str, Path]:
    """The id lists of a VOC-layout dataset: PASCAL VOC's train and val, or every
    ``ImageSets/Segmentation/*.txt`` of another export (CVAT writes ``default.txt``)."""
    seg = voc_dir / "ImageSets" / "Segmentation"
    if pascal:
        return {name: seg / f"{name}.txt" for name in PASCAL_SETS}
    return {p.stem: p for p in sorted(seg.glob("*.txt"))}


def image_names(folder: Path) -> dict[str, str]:
    """{stem: file name} of the images in ``folder`` (first extension of IMAGE_EXTS wins)."""
    out: dict[str, str] = {}
    try:
        entries = sorted(os.listdir(folder))
    except FileNotFoundError:
        return out
    for name in entries:
        stem, ext = os.path.splitext(name)
        if ext.lower() in IMAGE_EXTS and stem not in out:
            out[stem] = name
    return out


def voc_source_files(voc_dir: Path, pascal: bool) -> list[Path]:
    """Every file a VOC conversion reads: lists, class table files, and the images and labels of
    the listed (plain) ids."""
    files = [voc_dir / f for f in TABLE_FILES] + list(voc_list_files(voc_dir, pascal).values())
    images = image_names(voc_dir / "JPEGImages")
    ids = {}
    for p in voc_list_files(voc_dir, pascal).values():
        if p.is_file():
            ids.update(dict.fromkeys(i for i in list_ids(p) if id_problem(i) is None))
    for i in ids:
        if i in images:
            files.append(voc_dir / "JPEGImages" / images[i])
        files.append(voc_dir / "SegmentationClass" / f"{i}.png")
    return files


def tree_files(root: Path, subdirs=None) -> list[Path]:
    """Files under ``root`` (or under its ``subdirs``), symlinks not followed out of it."""
    out = []
    for top in [root / s for s in subdirs] if subdirs else [root]:
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()
            out += [Path(dirpath) / f for f in sorted(filenames)]
    return out


def voc_sources(d: dict) -> tuple[Path, list[Path]] | None:
    """A VOC-layout dataset on disk; None for a downloaded tarball (Snakemake tracks the file)."""
    if not d.get("path"):
        return None
    voc_dir = find_voc_dir(d["path"], d.get("year"))
    return voc_dir, voc_source_files(voc_dir, pascal=bool(d.get("year")))


def canonical_sources(d: dict) -> tuple[Path, list[Path]]:
    root = Path(d["path"])
    return root, [root / "classes.json"] + tree_files(root, ("sets", "images", "labels"))


def tree_sources(d: dict) -> tuple[Path, list[Path]]:
    """Every file under ``path`` (a download such as Vaihingen's)."""
    root = Path(d["path"])
    return root, tree_files(root)


def manifest(root: Path, files) -> list[list]:
    """[[path relative to root, size, mtime_ns], ...] of the files that exist."""
    out = []
    for f in files:
        try:
            st = os.stat(f)
        except OSError:
            continue
        rel = os.path.relpath(f, root)
        out.append([rel, st.st_size, st.st_mtime_ns])
    return sorted(out)


def fingerprint(entries) -> str:
    h = hashlib.sha256()
    for rel, size, mtime in entries:
        h.update(f"{rel}\0{size}\0{mtime}\n".encode())
    return h.hexdigest()
