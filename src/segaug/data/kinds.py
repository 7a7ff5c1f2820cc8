"""Dataset kinds: one registry line each.

A kind says how a ``datasets:`` entry of the config becomes the canonical dataset the workflow
uses: its class table when the workflow starts, the source files whose change makes Snakemake
convert it again, whether it is downloaded first, and the ``prepare`` function the
``prepare_dataset`` job calls (imported only in that job). To add a kind: a module with its
``prepare(cfg, out, *, table, tar, threads) -> summary``, its block in ``config/schema.yaml``,
and a :func:`register` line below. Standard library only at import: the Snakemake process
reads this registry.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from segaug.data import class_tables, sources
from segaug.errors import SegaugError


def _nothing(d: dict) -> None:
    return None


@dataclass(frozen=True)
class DatasetKind:
    name: str
    prepare: str  # "module:function", called by scripts/prepare_dataset.py
    class_table: Callable[[str, dict], dict]  # (dataset name, config block) -> table, at start-up
    source_files: Callable[[dict], tuple[Path, list[Path]] | None] = _nothing
    in_place: bool = False  # used where it is: prepare only checks it and writes a record
    downloads: Callable[[dict], bool] = lambda d: False  # prepare needs the downloaded tarball

    def prepare_function(self) -> Callable:
        module, _, func = self.prepare.partition(":")
        return getattr(importlib.import_module(module), func)


KINDS: dict[str, DatasetKind] = {}


def register(kind: DatasetKind) -> DatasetKind:
    KINDS[kind.name] = kind
    return kind


def get_kind(name: str) -> DatasetKind:
    try:
        return KINDS[name]
    except KeyError:
        raise SegaugError(f"unknown dataset kind {name!r}; known: {', '.join(sorted(KINDS))}") from None


register(
    DatasetKind(
        "voc",
        "segaug.data.voc:prepare",
        class_tables.voc_table,
        sources.voc_sources,
        downloads=lambda d: not d.get("path"),
    )
)
register(DatasetKind("demo", "segaug.data.demo:prepare", class_tables.demo_table))
register(
    DatasetKind(
        "canonical",
        "segaug.data.verify:prepare",
        class_tables.canonical_table,
        sources.canonical_sources,
        in_place=True,
    )
)
register(DatasetKind("vaihingen", "segaug.data.vaihingen:prepare", class_tables.vaihingen_table, sources.tree_sources))
