"""A dataset's class table, fixed before any job runs.

The workflow reads it when it starts, so every config key that names a class (pool classes,
context rules, class prompts, balance exclusions) is checked against the dataset's own classes
before the DAG is built. Standard library only: the Snakemake process imports this module.

Where a table comes from, first match wins:

1. the config: ``datasets.NAME.classes`` (names in index order) and optionally
   ``datasets.NAME.palette`` (one ``[r, g, b]`` per class; default: the VOC colour map);
2. ``datasets.NAME.classes_file``: a ``classes.json`` (our canonical format) or a
   ``labelmap.txt`` (the file CVAT / Datumaro write into a Pascal VOC or Segmentation Mask
   export: ``name:r,g,b:parts:actions`` per line, ``#`` comments);
3. a ``classes.json`` or ``labelmap.txt`` found in the dataset directory (``path``);
4. the kind's own table: PASCAL VOC's 21 classes for ``kind: voc`` with a ``year`` (PASCAL VOC
   itself), the demo's 7, Vaihingen's 6. A ``kind: canonical`` dataset has its
   ``classes.json``; a VOC-layout dataset without a ``year`` must bring a table; a kind that
   names no lookup of its own (segaug.data.kinds) uses a table file in its ``path``.
"""

from __future__ import annotations

import json
from pathlib import Path

from segaug.data.classnames import DEMO_CLASSES, VAIHINGEN_CLASSES, VOC_CLASSES
from segaug.data.layout import IGNORE_INDEX
from segaug.errors import SegaugError

# The colour of VOC's "void" border (index 255) in the VOC colour map, which is also what
# Datumaro/CVAT paint for it in colour-coded masks.
VOC_VOID_COLOUR = (224, 224, 192)
TABLE_FILES = ("classes.json", "labelmap.txt")

DEMO_PALETTE = (
    (60, 160, 60),  # grass
    (128, 128, 128),  # road
    (40, 90, 200),  # water
    (200, 120, 60),  # building
    (20, 90, 30),  # tree
    (230, 30, 30),  # car
    (250, 230, 40),  # boat
)
VAIHINGEN_PALETTE = ((255, 255, 255), (0, 0, 255), (0, 255, 255), (0, 255, 0), (255, 255, 0), (255, 0, 0))


def voc_palette(n: int = 256) -> list[tuple[int, int, int]]:
    """The PASCAL VOC colour map (bit-interleaved), as used by the VOC devkit and CVAT."""
    out = []
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        out.append((r, g, b))
    return out


def table_dict(names, palette, source: str, ignore_index: int = IGNORE_INDEX) -> dict:
    """A checked class table as a plain dict {names, palette, ignore_index}; ``source`` names
    where it came from in every error."""
    names = [str(n) for n in names]
    try:
        palette = [tuple(int(v) for v in c) for c in palette]
    except (TypeError, ValueError):
        raise SegaugError(f"{source}: the palette must be a list of [r, g, b] colours") from None
    if not 0 < len(names) < 255:
        raise SegaugError(f"{source}: a class table needs between 1 and 254 classes, got {len(names)}")
    if len(palette) != len(names):
        raise SegaugError(f"{source}: {len(names)} class names but {len(palette)} palette colours; give one per class")
    for k, n in enumerate(names):
        if not n.strip():
            raise SegaugError(f"{source}: class {k} has an empty name")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise SegaugError(f"{source}: duplicate class names {dup}; each class needs its own name")
    for k, c in enumerate(palette):
        if len(c) != 3 or not all(0 <= v <= 255 for v in c):
            raise SegaugError(f"{source}: colour of class {k} ({names[k]}) is {list(c)}; expected [r, g, b] in 0..255")
    return {"names": names, "palette": [list(c) for c in palette], "ignore_index": int(ignore_index)}


def read_labelmap(path: str | Path) -> dict:
    """A CVAT / Datumaro ``labelmap.txt``: ``name:r,g,b:parts:actions`` per line.

    CVAT's documentation (Segmentation Mask / Pascal VOC export) shows::

        # label : color (RGB) : 'body' parts : actions
        background:0,128,0::
        aeroplane:10,10,128::

    Line order is class index order. A class without a colour gets the VOC colour of its index.
    """
    path = Path(path)
    names, palette = [], []
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise SegaugError(f"{path}: label map not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SegaugError(f"{path}: cannot read label map ({e})") from None
    for lineno, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split(":")
        name, colour = fields[0].strip(), fields[1].strip() if len(fields) > 1 else ""
        if not name:
            raise SegaugError(f"{path}:{lineno}: no class name in {line!r}; expected name:r,g,b::")
        if colour:
            try:
                rgb = tuple(int(v) for v in colour.split(","))
            except ValueError:
                rgb = ()
            if len(rgb) != 3:
                raise SegaugError(f"{path}:{lineno}: colour {colour!r} of class {name!r} is not r,g,b")
        else:
            rgb = voc_palette(len(names) + 1)[len(names)]
        names.append(name)
        palette.append(rgb)
    if not names:
        raise SegaugError(f"{path}: label map lists no class")
    return table_dict(names, palette, str(path))


def read_classes_json(path: str | Path) -> dict:
    """Our ``classes.json``: {"names": [...], "palette": [[r, g, b], ...], "ignore_index": 255}."""
    path = Path(path)
    try:
        d = json.loads(path.read_text())
    except FileNotFoundError:
        raise SegaugError(f"{path}: class table not found") from None
    except (OSError, ValueError) as e:
        raise SegaugError(f"{path}: not a readable JSON class table ({e})") from None
    if not isinstance(d, dict) or not isinstance(d.get("names"), list):
        raise SegaugError(f'{path}: expected {{"names": [...], "palette": [[r, g, b], ...]}}')
    palette = d.get("palette") or voc_palette(len(d["names"]))
    return table_dict(d["names"], palette, str(path), d.get("ignore_index", IGNORE_INDEX))


def read_table_file(path: str | Path) -> dict:
    path = Path(path)
    return read_labelmap(path) if path.suffix == ".txt" else read_classes_json(path)


# ---------------------------------------------------------------- VOC layout on disk


def _is_voc_dir(d: Path) -> bool:
    return (d / "ImageSets" / "Segmentation").is_dir() and (d / "JPEGImages").is_dir()


def find_voc_dir(root: str | Path, year: str | int | None = None) -> Path:
    """The directory holding ``ImageSets/Segmentation`` and ``JPEGImages``.

    With a ``year`` (PASCAL VOC): ``root`` may be ``VOC{year}`` itself, ``VOCdevkit`` or the
    directory holding ``VOCdevkit``. Without one (a VOC-layout export such as CVAT's): ``root``
    itself, or the only ``VOC*`` directory in ``root`` or ``root/VOCdevkit``.
    """
    root = Path(root)
    if year is not None:
        candidates = [root, root / f"VOC{year}", root / "VOCdevkit" / f"VOC{year}"]
    else:
        candidates = [root]
        for parent in (root, root / "VOCdevkit"):
            if parent.is_dir():
                candidates += sorted(p for p in parent.iterdir() if p.name.startswith("VOC") and p.is_dir())
    found = [c for c in candidates if _is_voc_dir(c)]
    if found:
        return found[0]
    if not root.exists():
        raise SegaugError(f"{root}: VOC devkit directory not found; check the dataset path in config")
    what = f"VOC{year} devkit" if year is not None else "VOC-layout dataset"
    raise SegaugError(
        f"{root}: no {what} found; looked for ImageSets/Segmentation/ and JPEGImages/ in "
        + ", ".join(str(c) for c in dict.fromkeys(candidates))
        + (
            f"; point the path at the extracted VOCtrainval tarball (the dir holding VOCdevkit/VOC{year})"
            if year is not None
            else "; point the path at the folder of the export (the one holding JPEGImages/)"
        )
    )


# ---------------------------------------------------------------- a dataset's table


def config_class_table(name: str, d: dict) -> dict | None:
    """The table the config gives for ``datasets.NAME`` (``classes`` + ``palette``, or
    ``classes_file``), or None; any kind may be given one."""
    key = f"datasets.{name}"
    if d.get("classes"):
        palette = d.get("palette") or voc_palette(len(d["classes"]))
        t = table_dict(d["classes"], palette, f"{key}.classes / {key}.palette")
        return {**t, "source": f"config {key}.classes"}
    if d.get("palette"):
        raise SegaugError(f"{key}.palette: give the class names too ({key}.classes)")
    if d.get("classes_file"):
        p = Path(d["classes_file"])
        if not p.is_file():
            raise SegaugError(f"{key}.classes_file: {p} not found")
        return {**read_table_file(p), "source": str(p)}
    return None


def demo_table(name: str, d: dict) -> dict:
    return {**table_dict(DEMO_CLASSES, DEMO_PALETTE, "demo"), "source": "the demo's classes"}


def vaihingen_table(name: str, d: dict) -> dict:
    return {**table_dict(VAIHINGEN_CLASSES, VAIHINGEN_PALETTE, "vaihingen"), "source": "ISPRS Vaihingen"}


def canonical_table(name: str, d: dict) -> dict:
    p = Path(d["path"]) / "classes.json"
    if not p.is_file():
        raise SegaugError(
            f"datasets.{name}.path: {p} not found; a canonical dataset brings its classes.json "
            '({"names": [...], "palette": [[r, g, b], ...]})'
        )
    return {**read_classes_json(p), "source": str(p)}


def voc_table(name: str, d: dict) -> dict:
    """A table file in the export (labelmap.txt / classes.json), else PASCAL VOC's own 21
    classes when ``year`` says it is PASCAL VOC, else an error."""
    key = f"datasets.{name}"
    if d.get("path"):
        year_dir = find_voc_dir(d["path"], d.get("year"))
        for where in dict.fromkeys((year_dir, Path(d["path"]))):
            for fname in TABLE_FILES:
                if (where / fname).is_file():
                    return {**read_table_file(where / fname), "source": str(where / fname)}
    if d.get("year"):
        return {**table_dict(VOC_CLASSES, voc_palette(len(VOC_CLASSES)), "voc"), "source": "PASCAL VOC"}
    raise SegaugError(
        f"{key}: a VOC-layout dataset that is not PASCAL VOC (no 'year') needs its class table: "
        f"put a labelmap.txt (as CVAT exports it) or classes.json in {d.get('path')}, "
        f"or set {key}.classes (and {key}.palette)"
    )


def table_in_path(name: str, d: dict) -> dict:
    """A ``classes.json`` or ``labelmap.txt`` in the dataset's ``path``: the class table of a kind
    that brings none of its own."""
    key = f"datasets.{name}"
    root = Path(d["path"]) if d.get("path") else None
    for fname in TABLE_FILES if root else ():
        if (root / fname).is_file():
            return {**read_table_file(root / fname), "source": str(root / fname)}
    raise SegaugError(
        f"{key}: no class table; put a classes.json or labelmap.txt in {d.get('path') or 'its path'}"
        f" or set {key}.classes (and {key}.palette)"
    )
