"""Crop-and-paste augmentation: compositing, placement strategies and the dataset pipeline.

- :mod:`segaug.paste.methods`   -- the registry of paste methods (random, context, vlm,
  sigtor): name, config sections, options, implementing function; standard library only
- :mod:`segaug.paste.options`   -- ``Option`` declarations and the options objects
- :mod:`segaug.paste.placers`   -- ``paste_with_placer`` and the random / context / vlm methods
- :mod:`segaug.paste.placement` -- the placer interface, ``Placement``, ``Candidate``, ``RandomPlacer``
- :mod:`segaug.paste.context`   -- surface rules (``ContextPlacer``) and VLM placement (``VLMPlacer``)
- :mod:`segaug.paste.sigtor`    -- SIGtor-style grouping, overlap-free packing, augmentation
- :mod:`segaug.paste.compose`   -- ``paste_object`` (hard / feathered) and ``transform_object``
- :mod:`segaug.paste.blend`     -- hard, feathered and Poisson blending, mask clean-up
- :mod:`segaug.paste.pipeline`  -- ``paste_dataset``: a pasted split as a canonical dataset
- :mod:`segaug.paste.output`    -- image format, PNG level, staging and worker processes

The names below are imported on first use, so ``import segaug.paste.methods`` (the Snakemake
process does) needs no numpy.
"""

import importlib

_EXPORTS = {
    "BLENDS": "segaug.paste.options",
    "feather_alpha": "segaug.paste.compose",
    "paste_object": "segaug.paste.compose",
    "transform_object": "segaug.paste.compose",
    "BalancedObjectSampler": "segaug.paste.pipeline",
    "paste_dataset": "segaug.paste.pipeline",
    "paste_image": "segaug.paste.pipeline",
    "Candidate": "segaug.paste.placement",
    "Placement": "segaug.paste.placement",
    "Placer": "segaug.paste.placement",
    "RandomPlacer": "segaug.paste.placement",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'segaug.paste' has no attribute {name!r}")
