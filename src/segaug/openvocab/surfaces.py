"""Surface maps: which *surface* (road, water, grass...) each pixel of an image shows.

Context-aware copy-paste puts an object only on an allowed surface (a car on "road"). A
:class:`SurfaceMap` answers "which surface is under this pixel" for one image:

- ``names``: the surface names, e.g. ``["road", "grass"]``;
- ``index``: an HxW ``uint8`` array; value ``k`` means surface ``names[k]``, :data:`NO_SURFACE`
  (255) means "no known surface here".

Where the surfaces come from:

- **From the label** (:func:`from_label`) when the surfaces are classes of the label set
  (Vaihingen's "impervious surfaces" and "low vegetation", the demo's "road" and "water").
- **From open-vocabulary segmentation** when the label set lacks them (PASCAL VOC has no
  road): a :class:`SurfaceSource` -- :class:`segaug.openvocab.clipseg.ClipSegSurfaces` (light)
  or :class:`segaug.openvocab.sam_clip.SamClipSurfaces` (SAM 2 masks + CLIP) -- predicts them
  from the image. :func:`surface_maps` runs a source over a dataset and caches one map per
  image; :func:`combine` merges label-derived and predicted maps (the label wins where it
  defines a surface); :func:`surface_lookup` does all of this per image for the placer.

On disk (:meth:`SurfaceMap.save` / :meth:`SurfaceMap.load`) a map is **two files**:

- ``{id}.png``  single-channel 8-bit PNG of ``index`` (lossless, viewable, same format as the
  dataset's labels);
- ``{id}.json`` its sidecar, ``{"names": [...], "height": H, "width": W}``.

The sidecar is written first and the PNG last, each atomically, so an existing PNG always
has a complete sidecar beside it (the workflow declares the PNGs as its outputs).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image, UnidentifiedImageError

from segaug.data.canonical import IGNORE_INDEX, ClassTable, image_path, read_image
from segaug.errors import SegaugError
from segaug.io import atomic_path, read_json, write_json

log = logging.getLogger(__name__)

NO_SURFACE = 255  # index value of pixels on no known surface (same value as the label's ignore)
MAX_SURFACES = 255  # values 0..254 name surfaces, 255 is NO_SURFACE


def _check_names(names: Sequence[str], what: str = "surface map") -> list[str]:
    names = [str(n) for n in names]
    if len(set(names)) != len(names):
        raise SegaugError(f"{what}: duplicate surface names in {names}")
    if len(names) > MAX_SURFACES:
        raise SegaugError(f"{what}: at most {MAX_SURFACES} surfaces, got {len(names)}")
    return names


@dataclass
class SurfaceMap:
    """The surface under each pixel of one image.

    Attributes:
        names: surface names; ``names[k]`` is the surface of pixels whose index is ``k``.
        index: HxW ``uint8``; ``k < len(names)`` for a surface, :data:`NO_SURFACE` (255) for none.
    """

    names: list[str]
    index: np.ndarray = field(repr=False)

    def __post_init__(self):
        self.names = _check_names(self.names)
        index = np.asarray(self.index)
        if index.ndim != 2 or index.dtype != np.uint8:
            raise ValueError(f"surface map index must be a 2-D uint8 array, got {index.dtype} {index.shape}")
        bad = sorted(int(v) for v in np.unique(index) if v >= len(self.names) and v != NO_SURFACE)
        if bad:
            raise SegaugError(f"surface map: index values {bad} name no surface (surfaces: {self.names}, 255 = none)")
        self.index = index

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)`` of the image the map belongs to."""
        return tuple(self.index.shape)  # type: ignore[return-value]

    @classmethod
    def empty(cls, names: Sequence[str], shape: tuple[int, int]) -> SurfaceMap:
        """A map of ``shape`` where no pixel is on any surface."""
        return cls(list(names), np.full(shape, NO_SURFACE, np.uint8))

    def mask(self, name: str) -> np.ndarray:
        """Boolean HxW mask of the pixels on surface ``name``."""
        if name not in self.names:
            raise SegaugError(f"surface map: unknown surface {name!r}; it has {', '.join(self.names) or 'none'}")
        return self.index == self.names.index(name)

    def share(self, name: str) -> float:
        """Fraction of the image's pixels on surface ``name``."""
        return float(self.mask(name).mean()) if self.index.size else 0.0

    # ------------------------------------------------------------------------------ disk

    def save(self, path: str | Path) -> Path:
        """Write ``path`` (a ``.png``) and its ``.json`` sidecar; see the module docstring."""
        path = Path(path)
        if path.suffix.lower() != ".png":
            raise SegaugError(f"{path}: a surface map is saved as a .png (plus a .json sidecar)")
        h, w = self.shape
        write_json(sidecar(path), {"names": self.names, "height": h, "width": w})
        with atomic_path(path) as tmp:
            Image.fromarray(self.index, mode="L").save(tmp, format="PNG")
        return path

    @classmethod
    def load(cls, path: str | Path) -> SurfaceMap:
        """Read a map written by :meth:`save`; a missing or corrupt file is a clear error."""
        path, meta_path = Path(path), sidecar(Path(path))
        if not path.exists():
            raise SegaugError(f"{path}: surface map not found; build the surface maps first (surface_maps)")
        if not meta_path.exists():
            raise SegaugError(f"{meta_path}: sidecar of surface map {path.name} not found; rebuild the surface maps")
        try:
            meta = read_json(meta_path)
            names = meta["names"]
        except (ValueError, KeyError, TypeError) as e:
            raise SegaugError(f"{meta_path}: not a surface map sidecar ({e}); rebuild the surface maps") from None
        try:
            with Image.open(path) as im:
                if im.mode != "L":
                    raise SegaugError(f"{path}: surface map must be a mode L PNG, got {im.mode}; rebuild it")
                index = np.array(im, dtype=np.uint8)
        except (UnidentifiedImageError, OSError) as e:
            raise SegaugError(f"{path}: cannot read surface map ({e}); rebuild the surface maps") from None
        if list(index.shape) != [meta.get("height"), meta.get("width")]:
            raise SegaugError(f"{path}: size {index.shape} does not match its sidecar {meta_path.name}; rebuild it")
        return cls(names, index)


def sidecar(path: Path) -> Path:
    """The ``.json`` file holding the surface names of the map at ``path``."""
    return Path(path).with_suffix(".json")


# ------------------------------------------------------------------------------ sources


@runtime_checkable
class SurfaceSource(Protocol):
    """Anything that predicts a :class:`SurfaceMap` from an image.

    ``name`` identifies the source in logs and manifests (``"clipseg"``, ``"sam_clip"``).
    ``predict(image, surfaces)`` takes an HxWx3 ``uint8`` RGB image and the surface names to
    look for, and returns a map with exactly those ``names`` (in that order) and the image's HxW.
    """

    name: str

    def predict(self, image: np.ndarray, surfaces: list[str]) -> SurfaceMap: ...


def check_image(image: np.ndarray) -> np.ndarray:
    """An HxWx3 uint8 RGB image (a writable one), or a ValueError saying what was passed instead."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or 0 in image.shape:
        raise ValueError(f"expected an HxWx3 uint8 RGB image, got {image.dtype} {image.shape}")
    return image if image.flags.writeable else image.copy()  # torch warns on read-only arrays


def check_surfaces(surfaces: Sequence[str]) -> list[str]:
    """Surface names for a prediction: non-empty strings, no duplicates."""
    if isinstance(surfaces, str):
        raise SegaugError(f"surfaces: expected a list of names, got the string {surfaces!r}")
    names = _check_names(surfaces, "surfaces")
    if any(not n.strip() for n in names):
        raise SegaugError(f"surfaces: empty surface name in {names}")
    return names


def assign_by_threshold(probs: np.ndarray, threshold: float) -> np.ndarray:
    """Per-pixel surface from per-surface probabilities: the rule of the dense sources.

    ``probs`` is ``(S, H, W)``. A pixel gets ``argmax_s probs[s]`` (the first surface on ties)
    when that probability is ``>= threshold``, else :data:`NO_SURFACE`. Returns HxW uint8.
    """
    probs = np.asarray(probs)
    if probs.ndim != 3:
        raise ValueError(f"probs must be (surfaces, H, W), got shape {probs.shape}")
    if probs.shape[0] == 0:
        return np.full(probs.shape[1:], NO_SURFACE, np.uint8)
    best = probs.argmax(axis=0)
    ok = np.take_along_axis(probs, best[None], axis=0)[0] >= threshold
    return np.where(ok, best, NO_SURFACE).astype(np.uint8)


# --------------------------------------------------------------------------- the label


def split_surfaces(class_table: ClassTable, surfaces: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split surface names into ``(classes of the label set, names it lacks)``, order kept.

    The first come from the label (:func:`from_label`); the second need a :class:`SurfaceSource`.
    """
    names = check_surfaces(surfaces)
    return [n for n in names if n in class_table.names], [n for n in names if n not in class_table.names]


def from_label(label: np.ndarray, class_table: ClassTable, surfaces: Sequence[str]) -> SurfaceMap:
    """Surface map read straight from a label, for surfaces that are classes of its label set.

    Pixel of class ``surfaces[k]`` -> ``k``; every other pixel (other classes, ignore 255) ->
    :data:`NO_SURFACE`. A name that is not a class is a SegaugError naming it and the classes.
    """
    names = check_surfaces(surfaces)
    missing = [n for n in names if n not in class_table.names]
    if missing:
        raise SegaugError(
            f"surface(s) {missing} are not classes of the label set (known classes: "
            f"{', '.join(class_table.names)}); fix the name, or predict them with an open-vocabulary "
            "surface source (clipseg or sam_clip)"
        )
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f"label must be a 2-D class-index array, got shape {label.shape}")
    lut = np.full(256, NO_SURFACE, np.uint8)
    for k, name in enumerate(names):
        lut[class_table.index(name)] = k
    lut[IGNORE_INDEX] = NO_SURFACE
    return SurfaceMap(names, lut[label.astype(np.uint8, copy=False)])


def combine(label_surfaces: SurfaceMap, predicted: SurfaceMap, where: np.ndarray | None = None) -> SurfaceMap:
    """Merge a label-derived map with a predicted one; the label wins where it defines a surface.

    Names: ``label_surfaces.names`` then the predicted names it lacks. Each pixel takes the
    label's surface where ``label_surfaces`` has one; elsewhere the predicted surface -- only on
    pixels where ``where`` is True when given (e.g. ``label == background`` so that a predicted
    "road" never covers a labelled car); else :data:`NO_SURFACE`.
    """
    if label_surfaces.shape != predicted.shape:
        raise SegaugError(
            f"surface maps differ in size: label {label_surfaces.shape} vs predicted {predicted.shape}; "
            "rebuild the surface maps for these images"
        )
    names = list(label_surfaces.names) + [n for n in predicted.names if n not in label_surfaces.names]
    lut = np.full(256, NO_SURFACE, np.uint8)
    for k, name in enumerate(predicted.names):
        lut[k] = names.index(name)
    index = lut[predicted.index]
    if where is not None:
        where = np.asarray(where, dtype=bool)
        if where.shape != index.shape:
            raise ValueError(f"where must be {index.shape}, got {where.shape}")
        index[~where] = NO_SURFACE
    defined = label_surfaces.index != NO_SURFACE
    index[defined] = label_surfaces.index[defined]  # label names come first: same indices
    return SurfaceMap(names, index)


# ------------------------------------------------------------------------------- the cache


def surface_map_path(out_dir: str | Path, image_id: str) -> Path:
    """Where :func:`surface_maps` writes the map of ``image_id``."""
    return Path(out_dir) / f"{image_id}.png"


def surface_maps(
    source: SurfaceSource, dataset_root: str | Path, ids: Sequence[str], surfaces: Sequence[str], out_dir: str | Path
) -> list[Path]:
    """Predict the surface map of every image ``ids`` of a canonical dataset into ``out_dir``.

    One map per image, ``out_dir/{id}.png`` + ``{id}.json`` (:meth:`SurfaceMap.save`), each
    written atomically. Every id is predicted, none skipped (existing maps are overwritten),
    in the order given; the sources are deterministic, so a rerun gives the same files.
    Returns the PNG paths, in the order of ``ids``.
    """
    names = check_surfaces(surfaces)
    ids = list(ids)
    if len(set(ids)) != len(ids):
        raise SegaugError("surface maps: duplicate image ids; give each image once")
    out = []
    for n, image_id in enumerate(ids, 1):
        image = read_image(image_path(dataset_root, image_id))
        smap = source.predict(image, names)
        if smap.shape != image.shape[:2] or smap.names != names:
            raise RuntimeError(
                f"surface source {source.name} returned a {smap.shape} map of {smap.names} "
                f"for a {image.shape[:2]} image and surfaces {names}"
            )
        out.append(smap.save(surface_map_path(out_dir, image_id)))
        log.info("surface map %d/%d: %s (%s)", n, len(ids), image_id, _coverage(smap))
    return out


def _coverage(smap: SurfaceMap) -> str:
    return ", ".join(f"{n} {100 * smap.share(n):.0f}%" for n in smap.names) or "no surfaces"


def surface_lookup(
    class_table: ClassTable,
    surfaces: Sequence[str],
    cache_dir: str | Path | None = None,
    open_on: Sequence[str] | None = None,
) -> Callable[[str, np.ndarray, np.ndarray], tuple[list[str], np.ndarray]]:
    """A ``surfaces_for(image_id, image, label) -> (names, index)`` for the context placer.

    Surfaces that are classes of ``class_table`` come from the label; the others from the
    maps cached in ``cache_dir`` by :func:`surface_maps` (a SegaugError if some are needed and
    no cache is given, or the cache lacks them). ``open_on``: label classes on which predicted
    surfaces may apply (e.g. ``["background"]`` for VOC); None = wherever the label has no surface.
    """
    in_label, open_vocab = split_surfaces(class_table, surfaces)
    if open_vocab and cache_dir is None:
        raise SegaugError(
            f"surfaces {open_vocab} are not classes of the label set ({', '.join(class_table.names)}); "
            "they need surface maps from an open-vocabulary source: give their cache directory"
        )
    open_ids = class_table.indices(open_on) if open_on is not None else None

    def lookup(image_id: str, image: np.ndarray, label: np.ndarray) -> tuple[list[str], np.ndarray]:
        smap = from_label(label, class_table, in_label)
        if open_vocab:
            path = surface_map_path(cache_dir, image_id)
            predicted = SurfaceMap.load(path)
            lacking = [n for n in open_vocab if n not in predicted.names]
            if lacking:
                raise SegaugError(
                    f"{path}: surface map was built for {predicted.names}, not {lacking}; rebuild the surface maps"
                )
            where = np.isin(label, open_ids) if open_ids is not None else None
            smap = combine(smap, predicted, where)
        return smap.names, smap.index

    return lookup
