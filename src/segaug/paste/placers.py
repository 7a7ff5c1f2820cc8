"""The placer-based paste methods (random, context, vlm): build the placer, run the pipeline.

A *placer* puts one object at a time (:mod:`segaug.paste.placement` documents the interface);
:func:`paste_with_placer` turns a :class:`~segaug.paste.methods.PasteJob` and a placer into a
pasted set (:func:`segaug.paste.pipeline.paste_dataset`). A new placer-based method is a module
with its placer and a ``paste(job)`` that calls :func:`paste_with_placer`.

Surface maps come from the label for surfaces that are classes of the dataset, and from the
open-vocabulary maps cached in ``surfaces_dir`` for the others
(:func:`segaug.openvocab.surfaces.surface_lookup`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from segaug.data.canonical import ClassTable
from segaug.errors import SegaugError
from segaug.paste.context import ContextPlacer, SurfaceContext, VLMPlacer, parse_rules
from segaug.paste.methods import PasteJob
from segaug.paste.placement import RandomPlacer

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


def context_placer(table: ClassTable, context_cfg: Mapping | None, surfaces_dir: str | Path | None = None):
    """The rule-based placer of a ``context`` section (surface rules)."""
    ctx = surface_context(context_cfg, table, surfaces_dir)
    return ContextPlacer(ctx, max_tries=int((context_cfg or {}).get("max_tries", 50)))


def vlm_placer(
    table: ClassTable,
    context_cfg: Mapping | None,
    vlm_cfg: Mapping | None,
    surfaces_dir: str | Path | None = None,
):
    """The VLM placer of a ``vlm`` section, with the ``context`` section's rules as filter
    and fallback."""
    rule_based = context_placer(table, context_cfg, surfaces_dir)
    ctx = rule_based.context
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


def paste_with_placer(job: PasteJob, placer) -> dict:
    """A pasted set made by ``placer``, one object at a time (segaug.paste.pipeline), with the
    job's options; the method's own options are recorded in summary.json beside the shared ones."""
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
        own_options=o.own(),
    )


def paste_random(job: PasteJob) -> dict:
    return paste_with_placer(job, RandomPlacer())


def paste_context(job: PasteJob) -> dict:
    return paste_with_placer(job, context_placer(job.table, job.sections["context"], job.surfaces_dir))


def paste_vlm(job: PasteJob) -> dict:
    s = job.sections
    return paste_with_placer(job, vlm_placer(job.table, s["context"], s["vlm"], job.surfaces_dir))
