"""The one canonical dataset layout used inside the workflow.

```
root/
  images/{id}.jpg|png   RGB images (VOC JPEGs are copied unchanged; generated images are PNG)
  labels/{id}.png       single-channel uint8 class indices, 255 = ignore
  classes.json          {"names": [...], "palette": [[r, g, b], ...], "ignore_index": 255}
```
Split lists are plain text files, one image id per line, kept beside the data they select.
Labels hold class indices; palettes are for viewing only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from segaug.data.class_tables import voc_palette
from segaug.data.classnames import VOC_CLASSES
from segaug.data.layout import IGNORE_INDEX, IMAGE_EXTS
from segaug.data.sources import id_problem
from segaug.errors import SegaugError
from segaug.io import atomic_path, write_json


@dataclass(frozen=True)
class ClassTable:
    """Class names and their viewing palette; index i is class i, 255 is ignore."""

    names: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    ignore_index: int = IGNORE_INDEX

    def __post_init__(self):
        if len(self.names) != len(self.palette):
            raise SegaugError(
                f"class table: {len(self.names)} names but {len(self.palette)} palette colours; "
                "give one colour per class"
            )
        if len(set(self.names)) != len(self.names):
            raise SegaugError(f"class table: duplicate class names in {list(self.names)}")
        if not 0 < len(self.names) < 255:
            raise SegaugError("class table: need between 1 and 254 classes")

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        """Index of a class by name; a clear error for an unknown name."""
        try:
            return self.names.index(name)
        except ValueError:
            raise SegaugError(f"unknown class {name!r}; known classes: {', '.join(self.names)}") from None

    def indices(self, names: Iterable[str]) -> list[int]:
        return [self.index(n) for n in names]

    def to_dict(self) -> dict:
        return {
            "names": list(self.names),
            "palette": [list(c) for c in self.palette],
            "ignore_index": self.ignore_index,
        }

    @classmethod
    def from_dict(cls, d: dict, source: str = "class table") -> ClassTable:
        try:
            return cls(
                names=tuple(d["names"]),
                palette=tuple(tuple(int(v) for v in c) for c in d["palette"]),
                ignore_index=int(d.get("ignore_index", IGNORE_INDEX)),
            )
        except (KeyError, TypeError) as e:
            raise SegaugError(f"{source}: expected keys 'names' and 'palette' ({e})") from None

    def save(self, path: str | Path) -> None:
        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> ClassTable:
        path = Path(path)
        if not path.exists():
            raise SegaugError(f"{path}: class table not found; prepare the dataset first")
        try:
            d = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise SegaugError(f"{path}: not valid JSON ({e})") from None
        return cls.from_dict(d, source=str(path))

    def colorize(self, label: np.ndarray) -> np.ndarray:
        """RGB view of an index label (ignore pixels white)."""
        lut = np.full((256, 3), 255, dtype=np.uint8)
        lut[: self.num_classes] = np.asarray(self.palette, dtype=np.uint8)
        return lut[label]


def voc_class_table() -> ClassTable:
    return ClassTable(VOC_CLASSES, tuple(voc_palette(len(VOC_CLASSES))))


# ---------------------------------------------------------------- images and labels


_CV2_FLAGS = None


def _cv2_decode(path) -> np.ndarray | None:
    """OpenCV decode straight to RGB (EXIF orientation ignored, as PIL does); None if it fails."""
    global _CV2_FLAGS
    import cv2

    if _CV2_FLAGS is None:
        _CV2_FLAGS = getattr(cv2, "IMREAD_COLOR_RGB", None) or -1
    try:
        buf = np.fromfile(path, np.uint8)
    except OSError:
        return None
    if not buf.size:
        return None
    prev = cv2.utils.logging.setLogLevel(0)  # a broken file: the PIL path below reports it
    try:
        if _CV2_FLAGS == -1:  # OpenCV < 4.10: BGR then convert
            im = cv2.imdecode(buf, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
            return None if im is None else cv2.cvtColor(im, cv2.COLOR_BGR2RGB)
        return cv2.imdecode(buf, _CV2_FLAGS | cv2.IMREAD_IGNORE_ORIENTATION)
    except cv2.error:
        return None
    finally:
        cv2.utils.logging.setLogLevel(prev)


def read_image(path: str | Path) -> np.ndarray:
    """Read an RGB image as HxWx3 uint8; a corrupt file is a clear error naming it.

    Decoded with OpenCV (the same pixels as PIL's ``convert("RGB")`` for JPEG, PNG, grey,
    palette and RGBA files, in fewer copies); a file OpenCV cannot read goes through PIL, which
    reads it or gives the error.
    """
    im = _cv2_decode(path)
    if im is not None and im.ndim == 3 and im.shape[2] == 3 and im.dtype == np.uint8:
        return im
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except FileNotFoundError:
        raise SegaugError(f"{path}: image not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise SegaugError(f"{path}: cannot read image ({e}); replace or remove it") from None


def read_label(path: str | Path, num_classes: int | None = None) -> np.ndarray:
    """Read a single-channel index label (HxW uint8).

    Palette ('P') PNGs give their indices, as VOC's do. With ``num_classes`` every value must
    be a class index or 255, else a clear error names the file and the offending values.
    """
    try:
        with Image.open(path) as im:
            if im.mode not in ("L", "P"):
                raise SegaugError(
                    f"{path}: label must be a single-channel index PNG (mode L or P), "
                    f"got mode {im.mode}; convert colour masks to class indices"
                )
            label = np.asarray(im).astype(np.uint8, copy=False)
    except FileNotFoundError:
        raise SegaugError(f"{path}: label not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise SegaugError(f"{path}: cannot read label ({e}); replace or remove it") from None
    if num_classes is not None:
        check_label_values(label, num_classes, path)
    return label


def label_value_problem(label: np.ndarray, num_classes: int, source) -> str | None:
    """Why ``label`` is not a label of a table of ``num_classes`` classes (a value that is
    neither a class index nor the ignore index), or None."""
    counts = np.bincount(label.ravel(), minlength=256)
    bad = [int(v) for v in np.flatnonzero(counts) if v >= num_classes and v != IGNORE_INDEX]
    if bad:
        return (
            f"{source}: label values {bad} are outside the class table "
            f"(0..{num_classes - 1}, {IGNORE_INDEX} = ignore); fix the label or the class table"
        )
    return None


def check_label_values(label: np.ndarray, num_classes: int, source) -> None:
    problem = label_value_problem(label, num_classes, source)
    if problem:
        raise SegaugError(problem)


def write_label(path: str | Path, label: np.ndarray) -> None:
    if label.dtype != np.uint8 or label.ndim != 2:
        raise ValueError(f"label must be a 2-D uint8 array, got {label.dtype} {label.shape}")
    with atomic_path(path) as tmp:
        Image.fromarray(label, mode="L").save(tmp, format="PNG")


def write_image(path: str | Path, image: np.ndarray) -> None:
    """Write an RGB (HxWx3) or grey (HxW) uint8 image; the format follows the suffix (PNG
    lossless, JPEG quality 95)."""
    suffix = Path(path).suffix.lower()
    with atomic_path(path) as tmp:
        arr = np.ascontiguousarray(image, dtype=np.uint8)
        im = Image.fromarray(arr, mode="L" if arr.ndim == 2 else "RGB")
        if suffix in (".jpg", ".jpeg"):
            im.save(tmp, format="JPEG", quality=95)
        else:
            im.save(tmp, format="PNG")


# ---------------------------------------------------------------- writing a dataset


class CanonicalWriter:
    """Writes one dataset in the canonical layout inside a staging directory (``root``); see
    :func:`canonical_writer`. Every dataset kind writes through it."""

    def __init__(self, root: Path, table: ClassTable):
        self.root, self.table = root, table
        self.ids: list[str] = []
        self.sets: dict[str, list[str]] = {}
        self.summary: dict | None = None
        (root / "images").mkdir(parents=True)
        (root / "labels").mkdir()

    def add(self, image_id: str, image: np.ndarray | str | Path, label: np.ndarray, suffix: str = ".png") -> None:
        """Image ``image_id``: an array (written as ``suffix``: PNG, or JPEG quality 95) or an
        image file copied unchanged (its own suffix); and its label (class indices, checked)."""
        why = id_problem(image_id)
        if why:
            raise SegaugError(f"{self.root}: {why}")
        label = np.ascontiguousarray(label, dtype=np.uint8)
        check_label_values(label, self.table.num_classes, f"label of {image_id}")
        if isinstance(image, (str, Path)):
            import shutil

            shutil.copyfile(image, self.root / "images" / f"{image_id}{Path(image).suffix.lower()}")
        else:
            write_image(self.root / "images" / f"{image_id}{suffix}", image)
        write_label(self.root / "labels" / f"{image_id}.png", label)
        self.ids.append(image_id)

    def add_set(self, name: str, ids: Sequence[str]) -> None:
        """A split list ``sets/{name}.txt`` (written when the dataset is complete)."""
        self.sets[name] = list(ids)

    def finish(self) -> dict:
        self.table.save(self.root / "classes.json")
        for name, ids in self.sets.items():
            write_split(self.root / "sets" / f"{name}.txt", ids)
        return {"images": len(self.ids), "sets": {name: len(ids) for name, ids in self.sets.items()}}


@contextmanager
def canonical_writer(out_root: str | Path, table: ClassTable) -> Iterator[CanonicalWriter]:
    """``with canonical_writer(out_root, table) as w:`` -- ``w.add(id, image, label)`` per
    image, ``w.add_set(name, ids)`` per split list; when the block ends without an error the
    class table and the lists are written and the directory is renamed onto ``out_root``
    (:func:`segaug.io.atomic_path`: an error leaves nothing behind). ``w.summary`` then holds
    ``{"images": n, "sets": {name: count}}``, what a kind's ``prepare`` returns at least.
    Files of the kind's own (e.g. ``source.json``) go under ``w.root``."""
    with atomic_path(out_root) as root:
        w = CanonicalWriter(root, table)
        yield w
        w.summary = w.finish()


# ---------------------------------------------------------------- splits and pairs


def read_split(path: str | Path) -> list[str]:
    """Read a split list (one id per line). An empty or missing list is a clear error."""
    path = Path(path)
    if not path.exists():
        raise SegaugError(f"{path}: split list not found")
    ids = [line.strip().split()[0] for line in path.read_text().splitlines() if line.strip()]
    if not ids:
        raise SegaugError(f"{path}: split list is empty; it must name at least one image id")
    bad = [why for why in map(id_problem, ids) if why]
    if bad:
        raise SegaugError(f"{path}: {len(bad)} ids are not plain image names, e.g. {bad[0]}; list ids, not paths")
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        dup = sorted({i for i in ids if i in seen or seen.add(i)})[:5]
        raise SegaugError(f"{path}: duplicate ids in split list, e.g. {dup}")
    return ids


def write_split(path: str | Path, ids: Sequence[str]) -> None:
    if not ids:
        raise SegaugError(f"{path}: refusing to write an empty split list")
    from segaug.io import write_text

    write_text(path, "".join(f"{i}\n" for i in ids))


def check_split(root: str | Path, train_list: str | Path, val_list: str | Path) -> tuple[list[str], list[str]]:
    """Read a split's two source lists and check them against the dataset at ``root``.

    Every id must have an image and a label there, and train and val must be disjoint; each
    problem is one SegaugError naming the list file and the first offending ids.
    """
    root = Path(root)
    labels = {p.stem for p in (root / "labels").glob("*.png")}
    images = {p.stem for ext in IMAGE_EXTS for p in (root / "images").glob(f"*{ext}")}
    lists = []
    for path in (train_list, val_list):
        ids = read_split(path)
        missing = [i for i in ids if i not in labels or i not in images]
        if missing:
            raise SegaugError(
                f"{path}: {len(missing)} of {len(ids)} ids are not in the dataset {root} "
                f"(no image or label), e.g. {missing[:5]}; is this list meant for another dataset?"
            )
        lists.append(ids)
    both = sorted(set(lists[0]) & set(lists[1]))
    if both:
        raise SegaugError(
            f"{train_list} and {val_list} share {len(both)} ids, e.g. {both[:5]}; "
            "a split's train and val lists must be disjoint"
        )
    return lists[0], lists[1]


def image_path(root: str | Path, image_id: str) -> Path:
    """Path of an image in a canonical dataset, whatever its extension."""
    root = Path(root)
    for ext in IMAGE_EXTS:
        p = root / "images" / f"{image_id}{ext}"
        if p.exists():
            return p
    raise SegaugError(f"{root / 'images'}: no image for id {image_id!r} (.jpg or .png)")


def label_path(root: str | Path, image_id: str) -> Path:
    p = Path(root) / "labels" / f"{image_id}.png"
    if not p.exists():
        raise SegaugError(f"{p}: label not found for id {image_id!r}")
    return p


@dataclass
class Sample:
    """One image/label pair of a canonical dataset."""

    id: str
    image: Path
    label: Path


def samples(root: str | Path, ids: Sequence[str]) -> list[Sample]:
    """Resolve ids to image/label paths in a canonical dataset (clear error if missing)."""
    return [Sample(i, image_path(root, i), label_path(root, i)) for i in ids]


def load_pair(sample: Sample, num_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read an image and its label, checking that their sizes agree."""
    image = read_image(sample.image)
    label = read_label(sample.label, num_classes)
    if image.shape[:2] != label.shape:
        raise SegaugError(
            f"{sample.label}: label size {label.shape[1]}x{label.shape[0]} does not match "
            f"image {sample.image} size {image.shape[1]}x{image.shape[0]}"
        )
    return image, label


def class_pixel_counts(labels: Iterable[np.ndarray], num_classes: int) -> np.ndarray:
    """Pixel count per class over labels (ignore excluded)."""
    counts = np.zeros(num_classes, dtype=np.int64)
    for lab in labels:
        counts += np.bincount(lab[lab != IGNORE_INDEX].ravel(), minlength=256)[:num_classes]
    return counts
