"""Check a dataset's files once, when the dataset is made.

Every kind goes through these checks before the workflow uses a dataset: each image decodes
completely (a truncated JPEG is an error naming the file), each label is read as class indices
(palette/grey PNGs as they are, colour-coded PNGs through the class table's palette), label and
image sizes match, label values are classes or 255, split ids are plain names that resolve
inside the dataset, and no id is listed twice. All problems of a dataset are gathered and
reported together in one :class:`SegaugError` (the first 20, then a count).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from segaug.data.canonical import label_value_problem
from segaug.data.class_tables import VOC_VOID_COLOUR
from segaug.data.layout import IGNORE_INDEX
from segaug.data.sources import id_problem
from segaug.errors import SegaugError
from segaug.progress import progress

MAX_LISTED = 20
ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file must fail, not decode to grey


class Problems:
    """Gathers the problems of one dataset; :meth:`raise_if_any` reports them together."""

    def __init__(self, what: str):
        self.what = what
        self.items: list[str] = []

    def add(self, message: str | None) -> None:
        if message:
            self.items.append(message)

    def extend(self, messages: Iterable[str]) -> None:
        self.items.extend(m for m in messages if m)

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self) -> None:
        n = len(self.items)
        if not n:
            return
        listed = "; ".join(self.items[:MAX_LISTED])
        more = f"; ... and {n - MAX_LISTED} more" if n > MAX_LISTED else ""
        head = f"{self.what}: {n} problem{'s' if n > 1 else ''}" + (f" (first {MAX_LISTED})" if n > MAX_LISTED else "")
        raise SegaugError(f"{head}: {listed}{more}; nothing was written")


# ---------------------------------------------------------------- ids and paths


def check_ids(ids: Sequence[str], source) -> tuple[list[str], list[str]]:
    """(the plain, first-seen ids; the problems) of one id list read from ``source``."""
    problems, good, seen, dup = [], [], set(), []
    for i in ids:
        why = id_problem(i)
        if why:
            problems.append(f"{source}: {why}")
        elif i in seen:
            dup.append(i)
        else:
            seen.add(i)
            good.append(i)
    if dup:
        problems.append(f"{source}: {len(dup)} duplicate ids, e.g. {sorted(set(dup))[:5]}")
    return good, problems


def inside(root: Path, path: Path) -> bool:
    """Whether ``path`` resolves (symlinks followed) to a place under ``root``."""
    real_root = os.path.realpath(root)
    return os.path.realpath(path).startswith(real_root.rstrip(os.sep) + os.sep)


# ---------------------------------------------------------------- images and labels


def decode_image(path: Path) -> tuple[tuple[int, int] | None, str | None]:
    """((width, height), None) once the whole image has decoded, or (None, the problem)."""
    try:
        with Image.open(path) as im:
            im.load()  # decodes every byte: truncated files raise here
            return im.size, None
    except FileNotFoundError:
        return None, f"{path}: image not found"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        return None, f"{path}: cannot read image ({e}); replace it"


class ColourMap:
    """Colour-coded label -> class indices through a class table's palette."""

    def __init__(self, palette: Sequence[Sequence[int]], ignore_colour=VOC_VOID_COLOUR):
        codes = [(int(r) << 16) | (int(g) << 8) | int(b) for r, g, b in palette]
        self.problem = None
        if len(set(codes)) != len(codes):
            self.problem = "colour-coded label, but the class table gives two classes the same colour"
        self.codes = np.array(codes, dtype=np.uint32)
        self.index = np.arange(len(codes), dtype=np.uint8)
        if ignore_colour is not None:
            code = (ignore_colour[0] << 16) | (ignore_colour[1] << 8) | ignore_colour[2]
            if code not in codes:
                self.codes = np.append(self.codes, np.uint32(code))
                self.index = np.append(self.index, np.uint8(IGNORE_INDEX))
        order = np.argsort(self.codes)
        self.codes, self.index = self.codes[order], self.index[order]

    def __call__(self, rgb: np.ndarray, source) -> tuple[np.ndarray | None, str | None]:
        if self.problem:
            return None, f"{source}: {self.problem}"
        rgb = rgb[..., :3].astype(np.uint32)
        code = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
        pos = np.clip(np.searchsorted(self.codes, code), 0, len(self.codes) - 1)
        known = self.codes[pos] == code
        if not known.all():
            values, counts = np.unique(code[~known], return_counts=True)
            top = np.argsort(-counts, kind="stable")[:5]
            listed = ", ".join(
                f"{[int(v) >> 16, (int(v) >> 8) & 255, int(v) & 255]} in {int(c)} pixels"
                for v, c in zip(values[top], counts[top])
            )
            more = f" (and {len(values) - len(top)} more colours)" if len(values) > len(top) else ""
            return None, f"{source}: colours not in the class table's palette: {listed}{more}"
        return self.index[pos], None


def read_label_any(path: Path, colours: ColourMap | None) -> tuple[np.ndarray | None, str | None]:
    """A label as HxW uint8 class indices: 'L'/'P' PNGs as they are, RGB(A) through ``colours``."""
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode in ("L", "P"):
                return np.asarray(im), None
            if mode in ("RGB", "RGBA"):
                if colours is None:
                    return None, (
                        f"{path}: colour-coded label (mode {mode}); a canonical dataset holds class "
                        "indices (mode L or P): convert it, or use kind: voc, which converts colours"
                    )
                return colours(np.asarray(im), path)
            return None, f"{path}: label mode {mode} is neither class indices (L, P) nor colours (RGB)"
    except FileNotFoundError:
        return None, f"{path}: label not found"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        return None, f"{path}: cannot read label ({e}); replace it"


@dataclass
class Pair:
    id: str
    image: Path
    label: Path


def check_pair(pair: Pair, num_classes: int, colours: ColourMap | None) -> tuple[np.ndarray | None, list[str]]:
    """(the label as indices, or None; the problems) of one image/label pair."""
    problems = []
    size, why = decode_image(pair.image)
    problems.append(why)
    label, why = read_label_any(pair.label, colours)
    problems.append(why)
    if label is not None:
        problems.append(label_value_problem(label, num_classes, pair.label))
        if size is not None and size != (label.shape[1], label.shape[0]):
            problems.append(
                f"{pair.label}: label size {label.shape[1]}x{label.shape[0]} does not match "
                f"image {pair.image} size {size[0]}x{size[1]}"
            )
    problems = [p for p in problems if p]
    return (None if problems else label), problems


def check_pairs(
    pairs: Sequence[Pair],
    num_classes: int,
    colours: ColourMap | None,
    problems: Problems,
    on_good: Callable[[Pair, np.ndarray], None] | None = None,
    workers: int = 1,
) -> int:
    """Check every pair (``workers`` threads: decoding releases the GIL); ``on_good`` gets each
    good pair with its index label (e.g. to write it). Returns the number of good pairs."""

    def one(pair):
        label, found = check_pair(pair, num_classes, colours)
        if label is not None and on_good is not None and not problems:
            on_good(pair, label)
        return found

    good = 0
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for found in progress(pool.map(one, pairs), total=len(pairs), desc="check and convert"):
            problems.extend(found)
            good += not found
    return good


def verify_canonical(root: str | Path, workers: int = 1) -> dict:
    """Check a dataset already in the canonical layout, in place (nothing is written there).

    Every id of ``sets/*.txt`` must be a plain name with an image and a label; every
    image/label pair (``images/{id}.*`` with ``labels/{id}.png``) must decode, agree in size
    and hold only classes of ``classes.json`` or 255; no file may resolve outside ``root``.
    All problems are reported together. Returns a summary with the manifest of the files.
    """
    from segaug.data.canonical import ClassTable
    from segaug.data.sources import canonical_sources, image_names, list_ids, manifest

    root = Path(root)
    table = ClassTable.load(root / "classes.json")
    problems = Problems(f"canonical dataset {root}")
    images = image_names(root / "images")
    labels = {p.stem for p in (root / "labels").glob("*.png")}
    sets = {}
    for p in sorted((root / "sets").glob("*.txt")):
        good, found = check_ids(list_ids(p), p)
        problems.extend(found)
        missing = [i for i in good if i not in images or i not in labels]
        if missing:
            problems.add(f"{p}: {len(missing)} ids have no image or label, e.g. {missing[:5]}")
        if not good and not found:
            problems.add(f"{p}: split list is empty")
        sets[p.stem] = len(good)
    pairs = []
    for i in sorted(set(images) & labels):
        pair = Pair(i, root / "images" / images[i], root / "labels" / f"{i}.png")
        outside = [f for f in (pair.image, pair.label) if not inside(root, f)]
        problems.extend(f"{f}: resolves outside the dataset ({os.path.realpath(f)}); copy it in" for f in outside)
        if not outside:
            pairs.append(pair)
    problems.raise_if_any()
    check_pairs(pairs, table.num_classes, None, problems, workers=workers)
    problems.raise_if_any()
    _, files = canonical_sources({"path": str(root)})
    return {"images": len(pairs), "sets": sets, "classes": list(table.names), "files": manifest(root, files)}


def prepare(cfg: dict, out: str | Path, *, table: dict | None = None, tar=None, threads: int = 1) -> dict:
    """The ``canonical`` dataset kind: used in place at ``path``; checked, and the record of
    what was checked written to ``out`` (a JSON file)."""
    from segaug.io import write_json

    summary = verify_canonical(cfg["path"], workers=threads)
    write_json(out, summary)
    return summary
