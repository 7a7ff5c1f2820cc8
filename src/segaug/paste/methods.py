"""Paste methods: one registry line each (:data:`PASTE_METHODS`).

A method is its options class (:mod:`segaug.paste.options`, defaults in one place), the config
sections it reads besides its own block, and a ``paste(job)`` function that writes the pasted
set. ``scripts/paste.py`` dispatches through the registry. To add a method: a module with its
``paste(job)``, its block under ``paste`` in ``config/schema.yaml``, and a
:func:`register_method` line at the end of this module.

- ``random``  :class:`~segaug.paste.placement.RandomPlacer` (no context)
- ``context`` :class:`~segaug.paste.context.ContextPlacer`: surface rules (``context`` section)
- ``vlm``     :class:`~segaug.paste.context.VLMPlacer`: a VLM proposes points, the surface rule
  filters them, rule-based fallback (``context`` and ``vlm`` sections)
- ``sigtor``  SIGtor-style packing (:mod:`segaug.paste.sigtor`), which builds whole images
  itself rather than placing one object at a time; it has no placer.

Surface maps come from the label for surfaces that are classes of the dataset, and from the
open-vocabulary maps cached in ``surfaces_dir`` for the others
(:func:`segaug.openvocab.surfaces.surface_lookup`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from segaug.data.canonical import ClassTable
from segaug.errors import SegaugError
from segaug.paste.context import ContextPlacer, SurfaceContext, VLMPlacer, parse_rules
from segaug.paste.options import PasteOptions, SigtorOptions
from segaug.paste.placement import make_placer

VLM_KEYS = (
    "provider",
    "model",
    "base_url",
    "api_key_env",
    "timeout_s",
    "max_retries",
    "budget",
    "n_points",
    "cache_dir",
    "max_new_tokens",
    "max_tokens",
    "structured",
    "answer_format",
    "coordinates",
    "min_pixels",
    "max_pixels",
    "min_vlm_share",
    "allow_all_fallback",
)
MIN_VLM_SHARE = 0.2  # default of vlm.min_vlm_share


def surface_context(context_cfg: Mapping, table: ClassTable, surfaces_dir: str | Path | None = None) -> SurfaceContext:
    from segaug.openvocab.surfaces import surface_lookup

    if not context_cfg or "rules" not in context_cfg or "surfaces" not in context_cfg:
        raise SegaugError("context and vlm paste need a 'context' section with 'surfaces' and 'rules' in the config")
    rules = parse_rules(context_cfg["rules"])
    names = list(context_cfg["surfaces"]["names"])
    for cls, rule in rules.items():
        missing = [s for s in rule.surfaces if s not in names]
        if missing:
            raise SegaugError(
                f"context.rules.{cls}.surfaces: {missing} not in context.surfaces.names ({', '.join(names)})"
            )
    open_on = ["background"] if "background" in table.names else None
    lookup = surface_lookup(table, names, surfaces_dir, open_on=open_on)
    return SurfaceContext(rules, table.names, lookup)


def vlm_client(vlm_cfg: Mapping):
    """The VLM placement client of a ``vlm`` config section (provider, cache, request budget)."""
    from segaug.vlm import OpenAICompatibleProvider, RequestBudget, ResponseCache, VLMPlacementClient

    cfg = dict(vlm_cfg or {})
    unknown = sorted(set(cfg) - set(VLM_KEYS))
    if unknown:
        raise SegaugError(f"vlm: unknown key(s) {unknown}; known: {', '.join(VLM_KEYS)}")
    answer_format = cfg.get("answer_format", "auto")
    structured = cfg.get("structured")
    if structured and answer_format in ("qwen", "gemini"):
        raise SegaugError(
            f"vlm.structured: true asks for our answer schema, but vlm.answer_format is {answer_format}; "
            "set structured: false (or answer_format: auto)"
        )
    if cfg.get("provider") == "openai":
        provider = OpenAICompatibleProvider(
            cfg.get("base_url", "https://api.openai.com/v1"),
            cfg["model"],
            api_key_env=cfg.get("api_key_env", "OPENAI_API_KEY"),
            timeout_s=cfg.get("timeout_s", 60),
            max_retries=cfg.get("max_retries", 4),
            max_tokens=cfg.get("max_tokens", 256),
            structured=answer_format in ("auto", "segaug") if structured is None else bool(structured),
            min_pixels=cfg.get("min_pixels"),
            max_pixels=cfg.get("max_pixels"),
        )
    elif cfg.get("provider") == "local":
        from segaug.vlm.providers import LocalQwenProvider

        if structured:
            raise SegaugError("vlm.structured: the local provider has no structured outputs; remove the key")
        provider = LocalQwenProvider(
            cfg["model"],
            device="auto",
            max_new_tokens=cfg.get("max_new_tokens", cfg.get("max_tokens", 128)),
            min_pixels=cfg.get("min_pixels"),
            max_pixels=cfg.get("max_pixels"),
        )
    else:
        raise SegaugError(f"vlm.provider: {cfg.get('provider')!r}; use openai (any compatible endpoint) or local")
    cache = ResponseCache(Path(cfg.get("cache_dir", "resources/vlm_cache")))
    budget = RequestBudget(int(cfg["budget"])) if cfg.get("budget") is not None else None
    return VLMPlacementClient(
        provider,
        cache=cache,
        budget=budget,
        n_points=int(cfg.get("n_points", 5)),
        answer_format=answer_format,
        coordinates=cfg.get("coordinates"),
    )


def build_placer(
    method: str,
    table: ClassTable,
    context_cfg: Mapping | None = None,
    vlm_cfg: Mapping | None = None,
    surfaces_dir: str | Path | None = None,
    placer_args: Mapping | None = None,
):
    """The placer of paste ``method`` (see the module docstring)."""
    placer_args = dict(placer_args or {})
    if method == "random":
        return make_placer("random", **placer_args)
    if method not in ("context", "vlm"):
        raise SegaugError(f"paste method {method!r} has no placer; placers: random, context, vlm")
    ctx = surface_context(context_cfg, table, surfaces_dir)
    rule_based = ContextPlacer(ctx, max_tries=int((context_cfg or {}).get("max_tries", 50)), **placer_args)
    if method == "context":
        return rule_based
    legend = {name: tuple(int(v) for v in table.palette[k]) for k, name in enumerate(table.names)}
    vlm_cfg = dict(vlm_cfg or {})
    return VLMPlacer(
        ctx,
        vlm_client(vlm_cfg),
        legend,
        table.colorize,
        fallback=rule_based,
        min_vlm_share=float(vlm_cfg.get("min_vlm_share", MIN_VLM_SHARE)),
        allow_all_fallback=bool(vlm_cfg.get("allow_all_fallback", False)),
    )


# ---------------------------------------------------------------- the registry


@dataclass
class PasteJob:
    """Everything a paste method gets: the split, the pool, the seed, where to write, its
    options, and the config sections it asked for (``sections``)."""

    dataset_root: Path
    ids: Sequence[str]
    pool: Sequence
    seed: int
    out: Path
    table: ClassTable
    options: PasteOptions
    sections: dict
    surfaces_dir: Path | None = None
    workers: int = 1

    def output(self):
        from segaug.paste.output import OutputOptions

        return OutputOptions(self.options.image_format, self.options.compress_level)


@dataclass(frozen=True)
class PasteMethod:
    name: str
    paste: Callable[[PasteJob], dict]
    options: type[PasteOptions] = PasteOptions
    sections: tuple[str, ...] = ()  # config sections it reads besides paste.<name>


PASTE_METHODS: dict[str, PasteMethod] = {}


def register_method(method: PasteMethod) -> PasteMethod:
    PASTE_METHODS[method.name] = method
    return method


def get_method(name: str) -> PasteMethod:
    try:
        return PASTE_METHODS[name]
    except KeyError:
        raise SegaugError(f"unknown paste method {name!r}; known: {', '.join(PASTE_METHODS)}") from None


def paste_with_placer(job: PasteJob, placer) -> dict:
    """random, context and vlm: one placer puts objects one at a time (segaug.paste.pipeline)."""
    from segaug.paste.pipeline import paste_dataset

    o = job.options
    return paste_dataset(
        job.dataset_root,
        job.ids,
        job.pool,
        placer,
        job.seed,
        job.out,
        copies_per_image=o.copies,
        objects_per_image=o.objects_per_image,
        scale_range=o.scale_range,
        flip_prob=o.flip_prob,
        blend=o.blend,
        feather_px=o.feather_px,
        class_table=job.table,
        output=job.output(),
        workers=job.workers,
    )


def _placer(name: str) -> Callable[[PasteJob], dict]:
    def paste(job: PasteJob) -> dict:
        s = job.sections
        return paste_with_placer(job, build_placer(name, job.table, s.get("context"), s.get("vlm"), job.surfaces_dir))

    return paste


def paste_sigtor(job: PasteJob) -> dict:
    """SIGtor-style packing builds whole images itself (segaug.paste.sigtor)."""
    from segaug.paste.sigtor import sigtor_dataset

    o = job.options
    return sigtor_dataset(
        job.dataset_root,
        job.ids,
        job.pool,
        job.seed,
        job.out,
        objects_per_image=o.objects_per_image,
        blend=o.blend,
        copies_per_image=o.copies,
        feather_px=o.feather_px,
        flip_prob=o.flip_prob,
        scale_range=o.scale_range,
        jitter=o.jitter,
        blur_prob=o.blur_prob,
        min_area=o.min_area,
        class_table=job.table,
        output=job.output(),
        workers=job.workers,
    )


register_method(PasteMethod("random", _placer("random")))
register_method(PasteMethod("context", _placer("context"), sections=("context",)))
register_method(PasteMethod("vlm", _placer("vlm"), sections=("context", "vlm")))
register_method(PasteMethod("sigtor", paste_sigtor, SigtorOptions))
METHODS = tuple(PASTE_METHODS)
