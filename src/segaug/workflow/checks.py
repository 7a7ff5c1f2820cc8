"""Config checks that need the datasets' class tables, run when the workflow starts.

Every config key that names a class is checked against the class table of each dataset it
applies to (pool classes: the datasets whose splits are pasted; surface rules: those pasted with
the ``context`` section; class prompts: those with generated sets), before the DAG is built, so
one config can hold PASCAL VOC and a dataset of one's own with other classes: a misspelt class is one line naming the key and the index
(``pool.classes[1]: unknown class 'baot' in dataset 'mine'; known: ...``), not a job failing
minutes later. Standard library only.
"""

from __future__ import annotations

from segaug.data.kinds import dataset_class_table
from segaug.errors import SegaugError


def used_datasets(cfg: dict) -> list[str]:
    """Datasets some split uses, in config order (others are never read)."""
    used = {s["dataset"] for s in cfg["splits"].values()}
    return [d for d in cfg["datasets"] if d in used]


def class_tables(cfg: dict) -> tuple[dict[str, dict], list[str]]:
    """({dataset: class table}, problems) for the datasets the splits use."""
    tables, problems = {}, []
    for name in used_datasets(cfg):
        try:
            tables[name] = dataset_class_table(name, cfg["datasets"][name])
        except SegaugError as e:
            msg = str(e)
            problems.append(msg if msg.startswith(f"datasets.{name}") else f"datasets.{name}: {msg}")
    return tables, problems


def trained_sets(cfg: dict) -> list[tuple[str, str]]:
    """(split, training set) of every training some table or figure asks for."""
    t1 = cfg.get("table1") or {}
    out = []
    if t1:
        out += [(split, t1["d_final"]) for split in t1["splits"]]
        split = (cfg.get("figures") or {}).get("split", t1["splits"][0])
        out.append((split, t1["d_final"]))
    th = cfg.get("thesis") or {}
    if th:
        out += [(th["split"], r["trainset"]) for r in th["rows"]] + [(th["split"], e) for e in th.get("examples", [])]
    ab = cfg.get("ablations") or {}
    if ab:
        out += [(ab["split"], ts) for t in ("table3", "table4", "table5", "table6") for ts in ab.get(t, [])]
        if ab.get("table7"):
            out.append((ab["split"], "gen-table7"))
    return out


def datasets_where(cfg: dict, wanted) -> list[str]:
    """Datasets of the splits trained on a training set for which ``wanted(trainset)`` holds."""
    splits = cfg.get("splits") or {}
    found = {splits[s]["dataset"] for s, ts in trained_sets(cfg) if s in splits and wanted(ts)}
    return [d for d in used_datasets(cfg) if d in found]


def class_keys(cfg: dict) -> list[tuple[str, str, list[str]]]:
    """(config key, class name, datasets it applies to) of every class named in the config:
    pool classes apply to the datasets of the pasted splits, surface rules to those pasted by a
    method that reads the ``context`` section, class prompts and balance exclusions to those
    with a generated set; a key used by no training is checked against every dataset."""
    from segaug.paste.methods import REGISTRY

    def method_of(ts: str) -> str | None:
        return ts.removeprefix("paste-") if ts.startswith("paste-") else None

    pasted = datasets_where(cfg, lambda ts: method_of(ts) is not None)
    in_context = datasets_where(
        cfg, lambda ts: method_of(ts) in REGISTRY and "context" in REGISTRY[method_of(ts)].sections
    )
    generated = datasets_where(cfg, lambda ts: ts.startswith("gen-"))
    every = used_datasets(cfg)
    keys = [(f"pool.classes[{k}]", c, pasted or every) for k, c in enumerate(cfg["pool"].get("classes") or [])]
    ctx = cfg.get("context") or {}
    if ctx:
        keys += [(f"context.rules.{c}", c, in_context or every) for c in ctx.get("rules", {})]
        if ctx.get("surfaces", {}).get("source") == "label":
            names = ctx["surfaces"].get("names", [])
            keys += [(f"context.surfaces.names[{k}]", c, in_context or every) for k, c in enumerate(names)]
    gen = cfg.get("generative") or {}
    keys += [(f"generative.class_prompts.{c}", c, generated or every) for c in gen.get("class_prompts") or {}]
    excluded = enumerate(gen.get("balance_exclude") or [])
    keys += [(f"generative.balance_exclude[{k}]", c, generated or every) for k, c in excluded]
    return keys


def class_problems(cfg: dict, tables: dict[str, dict]) -> list[str]:
    """One line per class name that the table of a dataset it applies to does not have."""
    problems = []
    for key, name, datasets in class_keys(cfg):
        for ds in datasets:
            table = tables.get(ds)
            if table is not None and name not in table["names"]:
                where = f" in dataset '{ds}'" if len(tables) > 1 else ""
                problems.append(
                    f"{key}: unknown class {name!r}{where}; known: {', '.join(table['names'])} "
                    f"(class table from {table['source']})"
                )
    return problems
