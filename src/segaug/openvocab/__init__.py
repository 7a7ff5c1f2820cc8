"""Open-vocabulary surfaces for context-aware copy-paste.

A car may be pasted only onto "road"; VOC labels have no road, so surfaces that the label set
lacks are predicted from the image by open-vocabulary segmentation.

- :mod:`segaug.openvocab.surfaces` -- :class:`SurfaceMap` (names + HxW uint8 index, 255 = none),
  :func:`from_label`, :func:`combine`, the :class:`SurfaceSource` protocol, the per-image
  cache :func:`surface_maps` and :func:`surface_lookup` for the placer;
- :mod:`segaug.openvocab.clipseg` -- :class:`ClipSegSurfaces`, CLIPSeg text-prompted dense maps
  (light);
- :mod:`segaug.openvocab.sam_clip` -- :class:`SamClipSurfaces`, SAM 2 automatic masks labelled
  by CLIP mask-text alignment with background suppression (heavier, sharper boundaries);
- :mod:`segaug.openvocab.tiny` -- tiny random-weight CLIPSeg and SAM 2 for the demo and tests.

:func:`build_source` makes a source from its config name and options. The model-backed
modules import torch and transformers; they load only when a source is built.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from segaug.errors import SegaugError
from segaug.openvocab.surfaces import (
    NO_SURFACE,
    SurfaceMap,
    SurfaceSource,
    combine,
    from_label,
    split_surfaces,
    surface_lookup,
    surface_map_path,
    surface_maps,
)

SOURCES = ("clipseg", "sam_clip")


def source_class(name: str) -> type:
    """The class of the surface source named ``name`` (one of :data:`SOURCES`)."""
    if name == "clipseg":
        from segaug.openvocab.clipseg import ClipSegSurfaces

        return ClipSegSurfaces
    if name == "sam_clip":
        from segaug.openvocab.sam_clip import SamClipSurfaces

        return SamClipSurfaces
    raise SegaugError(f"unknown surface source {name!r}; known sources: {', '.join(SOURCES)}")


def build_source(name: str, options: Mapping[str, Any] | None = None, key: str = "surfaces") -> SurfaceSource:
    """Build the source ``name`` with keyword ``options`` (config ``{key}.options``).

    An unknown source or option is a SegaugError naming it and what is known.
    """
    cls = source_class(name)
    options = dict(options or {})
    known = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise SegaugError(f"{key}.options: unknown option(s) {unknown} for source {name}; known: {', '.join(known)}")
    return cls(**options)


__all__ = [
    "NO_SURFACE",
    "SOURCES",
    "SurfaceMap",
    "SurfaceSource",
    "build_source",
    "combine",
    "from_label",
    "source_class",
    "split_surfaces",
    "surface_lookup",
    "surface_map_path",
    "surface_maps",
]
