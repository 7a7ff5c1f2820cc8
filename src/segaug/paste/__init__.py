"""Crop-and-paste augmentation: compositing, placement strategies and the dataset pipeline.

- :mod:`segaug.paste.methods`   -- the registry of paste methods (random, context, vlm,
  sigtor): options class, config sections, ``paste(job)``; what ``scripts/paste.py`` runs
- :mod:`segaug.paste.options`   -- ``PasteOptions`` / ``SigtorOptions``: every option's default
- :mod:`segaug.paste.compose`   -- ``paste_object`` (hard / feathered) and ``transform_object``
- :mod:`segaug.paste.blend`     -- hard, feathered and Poisson blending, mask clean-up
- :mod:`segaug.paste.placement` -- ``Placement``, the ``Placer`` protocol, ``RandomPlacer``,
  the ``PLACERS`` registry and ``make_placer``
- :mod:`segaug.paste.context`   -- surface rules (``ContextPlacer``) and VLM placement (``VLMPlacer``)
- :mod:`segaug.paste.sigtor`    -- SIGtor-style grouping, overlap-free packing, augmentation
- :mod:`segaug.paste.pipeline`  -- ``paste_dataset``: a pasted split as a canonical dataset
- :mod:`segaug.paste.output`    -- image format, PNG level, staging and worker processes
"""

from segaug.paste.compose import BLENDS, feather_alpha, paste_object, transform_object
from segaug.paste.pipeline import BalancedObjectSampler, paste_dataset, paste_image
from segaug.paste.placement import (
    PLACERS,
    Candidate,
    Placement,
    Placer,
    RandomPlacer,
    make_placer,
)

__all__ = [
    "BLENDS",
    "PLACERS",
    "BalancedObjectSampler",
    "Candidate",
    "Placement",
    "Placer",
    "RandomPlacer",
    "feather_alpha",
    "make_placer",
    "paste_dataset",
    "paste_image",
    "paste_object",
    "transform_object",
]
