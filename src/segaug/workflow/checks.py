"""Config checks that need the datasets' class tables, run when the workflow starts.

Every config key that names a class is checked against the class table of every dataset it
applies to, before the DAG is built: a misspelt class is one line naming the key and the index
(``pool.classes[1]: unknown class 'baot' in dataset 'mine'; known: ...``), not a job failing
minutes later. Standard library only.
"""

from __future__ import annotations

from segaug.data.class_tables import dataset_class_table
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


def class_keys(cfg: dict) -> list[tuple[str, str]]:
    """(config key, class name) of every class named in the config."""
    keys = [(f"pool.classes[{k}]", c) for k, c in enumerate(cfg["pool"].get("classes") or [])]
    ctx = cfg.get("context") or {}
    if ctx:
        keys += [(f"context.rules.{c}", c) for c in ctx.get("rules", {})]
        if ctx.get("surfaces", {}).get("source") == "label":
            keys += [(f"context.surfaces.names[{k}]", c) for k, c in enumerate(ctx["surfaces"].get("names", []))]
    gen = cfg.get("generative") or {}
    keys += [(f"generative.class_prompts.{c}", c) for c in gen.get("class_prompts") or {}]
    keys += [(f"generative.balance_exclude[{k}]", c) for k, c in enumerate(gen.get("balance_exclude") or [])]
    return keys


def class_problems(cfg: dict, tables: dict[str, dict]) -> list[str]:
    """One line per class name that a dataset's table does not have."""
    problems = []
    for key, name in class_keys(cfg):
        for ds, table in tables.items():
            if name not in table["names"]:
                where = f" in dataset '{ds}'" if len(tables) > 1 else ""
                problems.append(
                    f"{key}: unknown class {name!r}{where}; known: {', '.join(table['names'])} "
                    f"(class table from {table['source']})"
                )
    return problems
