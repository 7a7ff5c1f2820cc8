"""ISPRS Vaihingen 2D semantic labeling to the canonical layout.

The dataset cannot be downloaded automatically (ISPRS hands it out on request); the user
extracts the zips and gives the path. Expected files (``N`` = area number)::

    top/top_mosaic_09cm_area{N}.tif                       3-band IRRG orthophoto, 8-bit
    gts_for_participants/top_mosaic_09cm_area{N}.tif      colour-coded labels (training areas)
    ISPRS_semantic_labeling_Vaihingen_ground_truth_COMPLETE/top_mosaic_09cm_area{N}.tif
                                                          colour-coded labels (all 33 areas)
    ISPRS_semantic_labeling_Vaihingen_ground_truth_eroded_COMPLETE/
        top_mosaic_09cm_area{N}_noBoundary.tif            the same, class boundaries eroded

These folders may sit directly in the given root or in ``ISPRS_semantic_labeling_Vaihingen/``
inside it; ``.tif`` and ``.tiff`` are both accepted. In the eroded labels the removed boundary
pixels are black, which becomes 255 (ignore).

Each tile (about 2000 x 2500 px) is cut into square patches (see :func:`patch_grid`) written
as ``images/area{N}_y{y}_x{x}.png`` (the IRRG bands unchanged, stored as an RGB PNG) and
``labels/area{N}_y{y}_x{x}.png`` (class indices). ``sets/{train,val,test}.txt`` list the
patch ids of the tiles of each split (default: the thesis split below).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

import numpy as np
from PIL import Image, UnidentifiedImageError

from segaug.data.canonical import CanonicalWriter, ClassTable, canonical_writer
from segaug.data.class_tables import VAIHINGEN_PALETTE
from segaug.data.classnames import VAIHINGEN_CLASSES
from segaug.data.layout import IGNORE_INDEX
from segaug.errors import SegaugError

log = logging.getLogger(__name__)

# ---------------------------------------------------------------- classes and the split


VAIHINGEN_COLOURS = VAIHINGEN_PALETTE  # the official ground-truth colours (segaug.data.class_tables)
IGNORE_COLOUR = (0, 0, 0)  # pixels removed by the boundary erosion

TRAIN_TILES = (1, 3, 5, 11, 13, 17, 21, 23, 26, 30, 32, 34, 37)
VAL_TILES = (7, 15, 28)
TEST_TILES = (2, 4, 6, 8, 10, 12, 14, 16, 20, 22, 24, 27, 29, 31, 33, 35, 38)
ALL_TILES = tuple(sorted(TRAIN_TILES + VAL_TILES + TEST_TILES))  # the 33 areas
THESIS_SPLITS: Mapping[str, Sequence[int]] = MappingProxyType(
    {"train": TRAIN_TILES, "val": VAL_TILES, "test": TEST_TILES}
)

# ---------------------------------------------------------------- where the files are

BASE_DIRS = (".", "ISPRS_semantic_labeling_Vaihingen")
IMAGE_DIRS = ("top",)
LABEL_DIRS = ("gts_for_participants", "ISPRS_semantic_labeling_Vaihingen_ground_truth_COMPLETE")
ERODED_DIRS = (
    "gts_eroded_for_participants",
    "ISPRS_semantic_labeling_Vaihingen_ground_truth_eroded_for_participants",
    "ISPRS_semantic_labeing_Vaihingen_ground_truth_eroded_for_participants",  # sic, as shipped
    "ISPRS_semantic_labeling_Vaihingen_ground_truth_eroded_COMPLETE",
)
TIF_EXTS = (".tif", ".tiff")


def class_table() -> ClassTable:
    """The six Vaihingen classes, with the official ground-truth colours as palette."""
    return ClassTable(VAIHINGEN_CLASSES, VAIHINGEN_COLOURS)


def _image_name(tile: int) -> str:
    return f"top_mosaic_09cm_area{tile}"


def _label_name(tile: int, eroded: bool) -> str:
    return f"top_mosaic_09cm_area{tile}" + ("_noBoundary" if eroded else "")


def _candidate_dirs(root: Path, names: Sequence[str]) -> list[Path]:
    return [root / base / name for name in names for base in BASE_DIRS]  # pathlib drops "."


def _find_file(dirs: Sequence[Path], stem: str) -> Path | None:
    for d in dirs:
        for ext in TIF_EXTS:
            p = d / f"{stem}{ext}"
            if p.is_file():
                return p
    return None


def _missing_error(root: Path, what: str, missing: list[int], stem: str, dirs: list[Path], hint: str) -> SegaugError:
    unknown = [t for t in missing if t not in ALL_TILES]
    note = f" ({unknown} not among the 33 Vaihingen areas {list(ALL_TILES)})" if unknown else ""
    return SegaugError(
        f"{root}: no {what} for Vaihingen area(s) {missing}{note}; expected {stem}.tif "
        f"(or .tiff) in one of: {', '.join(str(d) for d in dirs)}; {hint}"
    )


def find_tiles(root: str | Path, tiles: Sequence[int], eroded: bool = False) -> dict[int, tuple[Path, Path]]:
    """Find the image and ground-truth TIFF of each tile: ``{N: (image_path, label_path)}``.

    Images are looked up in ``top/``; labels in ``gts_for_participants/`` and then in the
    ``..._ground_truth_COMPLETE/`` folder (with ``eroded``: the ``_noBoundary`` files of the
    eroded folders), each directly in ``root`` or in ``root/ISPRS_semantic_labeling_Vaihingen/``.
    Missing files are one SegaugError naming the area numbers, the folders searched and the
    file name expected.
    """
    root = Path(root)
    if not root.is_dir():
        raise SegaugError(f"{root}: Vaihingen directory not found; check the dataset path in config")
    image_dirs = _candidate_dirs(root, IMAGE_DIRS)
    label_dirs = _candidate_dirs(root, ERODED_DIRS if eroded else LABEL_DIRS)
    images = {t: _find_file(image_dirs, _image_name(t)) for t in tiles}
    labels = {t: _find_file(label_dirs, _label_name(t, eroded)) for t in tiles}
    missing = [t for t in tiles if images[t] is None]
    if missing:
        raise _missing_error(
            root,
            "image",
            missing,
            _image_name(missing[0]),
            image_dirs,
            "extract ISPRS_semantic_labeling_Vaihingen.zip there",
        )
    missing = [t for t in tiles if labels[t] is None]
    if missing:
        zip_name = "ISPRS_semantic_labeling_Vaihingen_ground_truth_" + ("eroded_COMPLETE" if eroded else "COMPLETE")
        raise _missing_error(
            root,
            "eroded ground truth" if eroded else "ground truth",
            missing,
            _label_name(missing[0], eroded),
            label_dirs,
            f"labels of the test areas are only in {zip_name}.zip: extract it there",
        )
    return {t: (images[t], labels[t]) for t in tiles}


# ---------------------------------------------------------------- reading and converting tiles


def read_tif_rgb(path: str | Path, what: str = "tile") -> np.ndarray:
    """Read a 3-band 8-bit TIFF as HxWx3 uint8, bands unchanged (IRRG stays IRRG).

    Pillow reads the ISPRS TIFFs; if it cannot (an unusual compression), tifffile is tried
    when installed. Anything but 3 bands of 8 bits is a clear error naming the file.
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            if im.mode != "RGB":
                raise SegaugError(
                    f"{path}: {what} must be a 3-band 8-bit TIFF, got Pillow mode {im.mode}; is this the right file?"
                )
            return np.asarray(im)
    except FileNotFoundError:
        raise SegaugError(f"{path}: {what} not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        return _read_tif_fallback(path, what, e)


def _read_tif_fallback(path: Path, what: str, pil_error: Exception) -> np.ndarray:
    try:
        import tifffile
    except ImportError:
        tifffile = None
    if tifffile is not None:
        try:
            arr = tifffile.imread(path)
        except Exception as e:  # tifffile raises many kinds; any means "unreadable"
            log.debug("tifffile cannot read %s either: %s", path, e)
        else:
            if arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3:
                return np.ascontiguousarray(arr)
            raise SegaugError(f"{path}: {what} must be a 3-band 8-bit TIFF, got {arr.dtype} of shape {arr.shape}")
    raise SegaugError(f"{path}: cannot read {what} ({pil_error}); re-extract or replace it")


def rgb_to_index(label_rgb: np.ndarray, source: str | Path = "label") -> np.ndarray:
    """Colour-coded ground truth (HxWx3 uint8) to class indices (HxW uint8), exact match.

    The six class colours give 0..5, black (0, 0, 0), the pixels removed by the boundary
    erosion, gives 255 (ignore). Any other colour is a SegaugError naming ``source``, the
    colour(s) and how many pixels have them.
    """
    if label_rgb.dtype != np.uint8 or label_rgb.ndim != 3 or label_rgb.shape[2] != 3:
        raise SegaugError(f"{source}: expected an HxWx3 uint8 colour label, got {label_rgb.dtype} {label_rgb.shape}")
    code = _colour_code(label_rgb)
    unknown = np.uint8(254)  # never a class here (6 classes), marks pixels not yet matched
    out = np.full(code.shape, unknown, dtype=np.uint8)
    for index, colour in enumerate(VAIHINGEN_COLOURS):
        out[code == _colour_code(np.array(colour, dtype=np.uint8))] = index
    out[code == _colour_code(np.array(IGNORE_COLOUR, dtype=np.uint8))] = IGNORE_INDEX
    bad = out == unknown
    if bad.any():
        raise SegaugError(f"{source}: {_describe_unknown(code[bad])}")
    return out


def _colour_code(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.uint32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def _describe_unknown(codes: np.ndarray) -> str:
    values, counts = np.unique(codes, return_counts=True)
    order = np.argsort(-counts, kind="stable")[:5]
    listed = ", ".join(
        f"{(int(v) >> 16, (int(v) >> 8) & 255, int(v) & 255)} in {int(c)} pixels"
        for v, c in zip(values[order], counts[order])
    )
    more = f" (and {len(values) - len(order)} more colours)" if len(values) > len(order) else ""
    known = ", ".join(f"{n} {c}" for n, c in zip(VAIHINGEN_CLASSES, VAIHINGEN_COLOURS))
    return (
        f"{int(codes.size)} pixels have a colour that is not a Vaihingen class: {listed}{more}; "
        f"expected {known} or black {IGNORE_COLOUR} (ignore); is this a colour-coded ISPRS "
        "ground truth saved without lossy compression?"
    )


def _axis_starts(n: int, size: int, stride: int) -> list[int]:
    if n <= size:
        return [0]
    starts = list(range(0, n - size + 1, stride))
    if starts[-1] + size < n:
        starts.append(n - size)
    return starts


def patch_grid(h: int, w: int, size: int, stride: int) -> list[tuple[int, int]]:
    """Top-left corners ``(y, x)`` of the patches cut from an ``h`` x ``w`` tile, row by row.

    The rule, per axis (rows with ``h``, columns with ``w``):

    * starts ``0, stride, 2*stride, ...`` as long as a whole patch of ``size`` fits;
    * if that leaves pixels uncovered at the end, one more start at ``n - size``: the last
      patch is aligned to the bottom/right border (it overlaps its neighbour), so every
      pixel is covered and every patch is ``size`` x ``size``;
    * if the tile is not larger than ``size`` along an axis, one start at 0 and that patch
      is the whole extent of the tile (smaller than ``size``; patches are never padded).

    E.g. ``n = 300, size = stride = 128`` gives starts 0, 128 and 172. ``stride`` must be
    between 1 and ``size`` (a larger stride would skip pixels).
    """
    if size < 1 or not 1 <= stride <= size:
        raise SegaugError(
            f"patch size {size} / stride {stride}: need size >= 1 and 1 <= stride <= size "
            "(a stride larger than the patch size would leave pixels out)"
        )
    if h < 1 or w < 1:
        raise SegaugError(f"cannot cut patches from an empty {w}x{h} tile")
    return [(y, x) for y in _axis_starts(h, size, stride) for x in _axis_starts(w, size, stride)]


def patch_id(tile: int, y: int, x: int) -> str:
    """The canonical id of a patch: ``area{N}_y{y}_x{x}``."""
    return f"area{tile}_y{y}_x{x}"


def _check_splits(splits: Mapping[str, Sequence[int]]) -> dict[str, list[int]]:
    if not splits:
        raise SegaugError("convert_vaihingen: no splits given; e.g. {'train': [1, 3], 'val': [7]}")
    out, seen = {}, {}
    for name, tiles in splits.items():
        tiles = [int(t) for t in tiles]
        if not tiles:
            raise SegaugError(f"convert_vaihingen: split {name!r} lists no tiles; give it at least one area")
        for t in tiles:
            if t in seen:
                raise SegaugError(
                    f"convert_vaihingen: area {t} is in both split {seen[t]!r} and {name!r}; "
                    "a tile may belong to one split only"
                )
            seen[t] = name
        out[name] = tiles
    return out


def _convert_tile(
    tile: int, image_path: Path, label_path: Path, writer: CanonicalWriter, size: int, stride: int
) -> tuple[list[str], np.ndarray]:
    """Cut one tile into patches written by ``writer``; returns the patch ids and the tile's
    per-class pixel counts (index 6 counts ignore pixels)."""
    image = read_tif_rgb(image_path, "image")
    label = rgb_to_index(read_tif_rgb(label_path, "ground truth"), label_path)
    if image.shape[:2] != label.shape:
        raise SegaugError(
            f"{label_path}: ground truth size {label.shape[1]}x{label.shape[0]} does not match "
            f"image {image_path} size {image.shape[1]}x{image.shape[0]}; is it the label of another area?"
        )
    ids = []
    for y, x in patch_grid(label.shape[0], label.shape[1], size, stride):
        pid = patch_id(tile, y, x)
        writer.add(pid, image[y : y + size, x : x + size], label[y : y + size, x : x + size])
        ids.append(pid)
    counts = np.bincount(label.ravel(), minlength=256)
    return ids, np.append(counts[: len(VAIHINGEN_CLASSES)], counts[IGNORE_INDEX])


def _shares(counts: np.ndarray) -> dict:
    labelled = int(counts[:-1].sum())
    total = int(counts.sum())
    shares = {n: round(int(c) / labelled, 6) if labelled else 0.0 for n, c in zip(VAIHINGEN_CLASSES, counts)}
    return {"classes": shares, "ignore": round(int(counts[-1]) / total, 6) if total else 0.0}


def convert_vaihingen(
    root: str | Path,
    out_root: str | Path,
    patch_size: int = 512,
    stride: int = 512,
    eroded: bool = False,
    splits: Mapping[str, Sequence[int]] = THESIS_SPLITS,
) -> dict:
    """Write the canonical dataset of Vaihingen patches to ``out_root``; returns a summary.

    ``splits`` maps a split name to its area numbers (default: the thesis split, written to
    ``sets/train.txt``, ``sets/val.txt``, ``sets/test.txt``); a tile may be in one split only.
    With ``eroded`` the ``_noBoundary`` ground truth is used (boundaries become 255, ignore).
    All files are found before anything is read; each tile is read once and cut with
    :func:`patch_grid`. Built in a temporary directory renamed onto ``out_root`` at the end,
    so an error leaves nothing behind.

    The summary: ``tiles`` (areas per split), ``patches`` (patch count per split), and
    ``class_shares`` per split: each class's share of the labelled pixels of the split's
    tiles (whole tiles, so pixels in overlapping patches count once) and the ignored share.
    """
    splits = _check_splits(splits)
    patch_grid(1, 1, patch_size, stride)  # check size and stride before any work
    paths = find_tiles(root, [t for tiles in splits.values() for t in tiles], eroded)
    summary = {
        "tiles": splits,
        "patch_size": patch_size,
        "stride": stride,
        "eroded": eroded,
        "patches": {},
        "class_shares": {},
    }
    with canonical_writer(out_root, class_table()) as out:
        for name, tiles in splits.items():
            ids, counts = [], np.zeros(len(VAIHINGEN_CLASSES) + 1, dtype=np.int64)
            for tile in tiles:
                log.info("Vaihingen area %d (%s) -> patches", tile, name)
                tile_ids, tile_counts = _convert_tile(tile, *paths[tile], out, patch_size, stride)
                ids += tile_ids
                counts += tile_counts
            out.add_set(name, ids)
            summary["patches"][name] = len(ids)
            summary["class_shares"][name] = _shares(counts)
    log.info("converted Vaihingen %s -> %s: %s patches", root, out_root, summary["patches"])
    return summary


def prepare(cfg: dict, out: str | Path, *, table: dict | None = None, tar=None, threads: int = 1) -> dict:
    """The ``vaihingen`` dataset kind: patches of the ISPRS download at ``path``."""
    summary = convert_vaihingen(
        cfg["path"], out, cfg.get("patch_size", 512), cfg.get("stride", 512), bool(cfg.get("eroded"))
    )
    summary["images"] = sum(summary["patches"].values())
    return summary
