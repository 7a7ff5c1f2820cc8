"""The paste methods: one declarative registry line each.

A :class:`PasteMethod` says everything the workflow needs to know about a method without
importing it: its name (the key under ``paste`` in the config), the config sections it reads
besides its own block (``context``, ``vlm``, ...), its options and their defaults
(:mod:`segaug.paste.options`), and the ``"module:function"`` that pastes, imported only in the
paste job. The config schema's ``paste`` block is made from these entries
(:func:`paste_schema`), the config checks ask each method for its sections, the rule helpers
pass those sections, and ``scripts/paste.py`` runs the function. No rule, script or workflow
module compares a method's name. Standard library only: the Snakemake process imports this
module.

The registered methods:

- ``random``  :class:`~segaug.paste.placement.RandomPlacer` (no context)
- ``context`` :class:`~segaug.paste.context.ContextPlacer`: surface rules (``context`` section)
- ``vlm``     :class:`~segaug.paste.context.VLMPlacer`: a VLM proposes points, the surface rule
  filters them, rule-based fallback (``context`` and ``vlm`` sections)
- ``sigtor``  SIGtor-style packing (:mod:`segaug.paste.sigtor`), which builds whole images
  itself rather than placing one object at a time.

To add a method: a module with its ``paste(job) -> summary`` and one :func:`register_method`
line at the end of this file (see docs/extending.md).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from segaug.errors import SegaugError
from segaug.paste.options import SHARED_OPTIONS, Option, PasteOptions, options_class, parse_options


@dataclass
class PasteJob:
    """Everything a paste method gets: the split, the pool, the seed, where to write, its
    options, and the config sections it asked for (``sections``: {name: config block})."""

    dataset_root: Path
    ids: Sequence[str]
    pool: Sequence
    seed: int
    out: Path
    table: Any  # segaug.data.canonical.ClassTable
    options: PasteOptions
    sections: dict
    surfaces_dir: Path | None = None
    workers: int = 1

    def output(self):
        from segaug.paste.output import OutputOptions

        return OutputOptions(self.options.image_format, self.options.compress_level)


@dataclass(frozen=True)
class PasteMethod:
    """One registry entry. ``options``: the method's own options (an :class:`Option` each),
    and shared options whose default it changes (an :class:`Option`, or just the new default)."""

    name: str
    paste: str  # "module:function": function(PasteJob) -> summary dict, imported in the job only
    sections: tuple[str, ...] = ()  # config sections it reads besides paste.<name>
    options: Mapping[str, Option | object] = field(default_factory=dict)
    description: str = ""

    @cached_property
    def option_specs(self) -> dict[str, Option]:
        """Every option of the method: the shared ones (with its defaults), then its own."""
        specs = dict(SHARED_OPTIONS)
        for key, value in self.options.items():
            if isinstance(value, Option):
                specs[key] = value
            elif key in SHARED_OPTIONS:
                specs[key] = SHARED_OPTIONS[key].with_default(value)
            else:
                raise SegaugError(f"paste method {self.name}: option {key!r} needs an Option(default, type)")
        return specs

    @cached_property
    def options_class(self) -> type[PasteOptions]:
        return options_class(self.option_specs, f"{self.name.capitalize()}Options")

    def parse_options(self, block: Mapping | None) -> PasteOptions:
        """The options object of the config block ``paste.<name>`` (checked, defaults filled)."""
        return parse_options(self.option_specs, self.options_class, block, f"paste.{self.name}")

    def defaults(self) -> PasteOptions:
        return self.options_class()

    def schema(self) -> dict:
        """The JSON schema of the block ``paste.<name>``, made from the options."""
        return {
            "type": "object",
            "additionalProperties": False,
            **({"description": self.description} if self.description else {}),
            "properties": {k: s.schema() for k, s in self.option_specs.items()},
        }

    def paste_function(self) -> Callable[[PasteJob], dict]:
        module, _, func = self.paste.partition(":")
        return getattr(importlib.import_module(module), func)


REGISTRY: dict[str, PasteMethod] = {}


def register_method(method: PasteMethod) -> PasteMethod:
    REGISTRY[method.name] = method
    return method


def get_method(name: str) -> PasteMethod:
    try:
        return REGISTRY[name]
    except KeyError:
        raise SegaugError(f"unknown paste method {name!r}; known: {', '.join(REGISTRY)}") from None


def paste_schema() -> dict:
    """The config schema's ``paste`` block: one property per registered method."""
    return {
        "type": "object",
        "additionalProperties": False,
        "description": "pasted sets, one per method; the method is the key",
        "properties": {name: m.schema() for name, m in REGISTRY.items()},
    }


# ---------------------------------------------------------------- the registry

register_method(PasteMethod("random", "segaug.paste.placers:paste_random", description="uniform positions"))
register_method(
    PasteMethod(
        "context", "segaug.paste.placers:paste_context", ("context",), description="surface rules (cars on roads)"
    )
)
register_method(
    PasteMethod(
        "vlm",
        "segaug.paste.placers:paste_vlm",
        ("context", "vlm"),
        description="a VLM proposes points, the surface rule filters them, rule-based fallback",
    )
)
register_method(
    PasteMethod(
        "sigtor",
        "segaug.paste.sigtor:paste",
        options={
            "objects_per_image": (2, 4),
            "scale_range": (0.5, 2.0),
            "blend": "poisson",
            "jitter": Option(0.2, "number", minimum=0, description="colour jitter strength per object"),
            "blur_prob": Option(0.2, "number", minimum=0, maximum=1, description="probability of blurring an object"),
            "min_area": Option(20, "integer", minimum=1, description="smallest object kept after clean-up (pixels)"),
        },
        description="SIGtor-style packing (SIGtor's own defaults: 2-4 objects, scale 0.5-2, Poisson blending)",
    )
)
