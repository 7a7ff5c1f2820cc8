"""Dataset kinds: one declarative registry line each.

A :class:`DatasetKind` says how a ``datasets:`` entry of the config becomes the canonical
dataset the workflow uses: the config keys of its block (the schema's block for the kind is
made from them, :func:`datasets_schema`), the ``"module:function"`` that prepares it (imported
only in the ``prepare_dataset`` job), and optionally how to find its class table when the
workflow starts, which source files make Snakemake convert it again when they change, whether
it is used in place (only checked) and whether it needs a download first. No rule, script or
workflow module compares a kind's name. Standard library only: the Snakemake process imports
this module.

To add a kind: a module with ``prepare(cfg, out, *, table, tar, threads) -> summary`` (write
the layout with :func:`segaug.data.canonical.canonical_writer`) and one :func:`register` line at
the end of this file (see docs/extending.md).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from segaug.data import class_tables, sources
from segaug.errors import SegaugError

# The keys of a class table given in the config (segaug.data.class_tables.config_class_table),
# for a kind whose block takes them.
TABLE_KEYS = {
    "classes": {
        "type": ["array", "null"],
        "items": {"type": "string"},
        "minItems": 1,
        "description": "class names in index order",
    },
    "palette": {
        "type": ["array", "null"],
        "items": {"$ref": "#/definitions/rgb"},
        "description": "one [r, g, b] per class (default: the VOC colour map)",
    },
    "classes_file": {
        "type": ["string", "null"],
        "description": "a classes.json or a labelmap.txt (CVAT) with the class table",
    },
}


def _never(d: dict) -> bool:
    return False


def _load(ref: Callable | str) -> Callable:
    """A function, or the function a ``"module:function"`` string names (imported now)."""
    if callable(ref):
        return ref
    module, _, func = ref.partition(":")
    return getattr(importlib.import_module(module), func)


@dataclass(frozen=True)
class DatasetKind:
    """One registry entry.

    - ``keys``: the JSON schema of each config key of the block besides ``kind`` (add
      :data:`TABLE_KEYS` to take a class table from the config); ``required`` / ``any_of``:
      keys the block must have.
    - ``class_table(name, block) -> {names, palette, ignore_index, source}``: a function run
      at start-up, in the Snakemake process (standard library only), or its
      ``"module:function"`` (that module must import only the standard library at its top); default: a ``classes.json`` / ``labelmap.txt`` in the block's
      ``path`` (a table in the config always wins).
    - ``source_files(block) -> (root, [files]) | None``: default: every file under ``path``
      (none without a ``path``).
    """

    name: str
    prepare: str  # "module:function", called by scripts/prepare_dataset.py
    keys: Mapping[str, dict] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    any_of: tuple[tuple[str, ...], ...] = ()  # at least one of these key sets
    class_table: Callable[[str, dict], dict] | str | None = None  # or "module:function"
    source_files: Callable[[dict], tuple[Path, list[Path]] | None] | str | None = None
    in_place: bool = False  # used where it is: prepare only checks it and writes a record
    downloads: Callable[[dict], bool] = _never  # prepare needs the downloaded archive (--tar)
    description: str = ""

    def prepare_function(self) -> Callable:
        return _load(self.prepare)

    def table(self, name: str, d: dict) -> dict:
        if self.class_table is not None:
            return _load(self.class_table)(name, d)
        return class_tables.table_in_path(name, d)

    def sources(self, d: dict) -> tuple[Path, list[Path]] | None:
        if self.source_files is not None:
            return _load(self.source_files)(d)
        return sources.tree_sources(d) if d.get("path") else None

    def missing_keys(self, d: dict) -> str | None:
        """What the block ``d`` lacks of the required keys, or None."""
        missing = [k for k in self.required if d.get(k) in (None, "")]
        if missing:
            return f"needs {', '.join(missing)}"
        if self.any_of and not any(all(d.get(k) not in (None, "") for k in keys) for keys in self.any_of):
            return "needs one of: " + " | ".join(", ".join(keys) for keys in self.any_of)
        return None

    def schema(self) -> dict:
        """The JSON schema of a ``datasets.NAME`` block of this kind."""
        out = {
            "additionalProperties": False,
            "properties": {"kind": {}, **self.keys},
        }
        if self.required:
            out["required"] = list(self.required)
        if self.any_of:
            out["anyOf"] = [{"required": list(keys)} for keys in self.any_of]
        return out


REGISTRY: dict[str, DatasetKind] = {}


def register(kind: DatasetKind) -> DatasetKind:
    REGISTRY[kind.name] = kind
    return kind


def get_kind(name: str) -> DatasetKind:
    try:
        return REGISTRY[name]
    except KeyError:
        raise SegaugError(f"unknown dataset kind {name!r}; known: {', '.join(sorted(REGISTRY))}") from None


def datasets_schema() -> dict:
    """The config schema's ``datasets`` block: the kinds' names and one block per kind."""
    return {
        "type": "object",
        "minProperties": 1,
        "additionalProperties": {
            "type": "object",
            "required": ["kind"],
            "properties": {"kind": {"enum": list(REGISTRY)}},
            "allOf": [
                {"if": {"properties": {"kind": {"const": name}}}, "then": k.schema()} for name, k in REGISTRY.items()
            ],
        },
    }


def dataset_class_table(name: str, d: dict) -> dict:
    """The class table of ``datasets.NAME`` (a config block), as {names, palette, ignore_index,
    source}: the config's, else the one its kind finds; errors name the key."""
    return class_tables.config_class_table(name, d) or get_kind(d["kind"]).table(name, d)


def dataset_source_files(d: dict) -> tuple[Path, list[Path]] | None:
    """(root, files) a ``datasets:`` entry is made from, or None where the workflow makes or
    downloads it (the demo, a VOC tarball: Snakemake tracks those as files)."""
    return get_kind(d["kind"]).sources(d)


def dataset_fingerprint(d: dict) -> str:
    """The fingerprint of a dataset's source files ('' for kinds the workflow makes itself)."""
    found = dataset_source_files(d)
    if found is None:
        return ""
    root, files = found
    entries = sources.manifest(root, files)
    return f"{len(entries)} files, sha256 {sources.fingerprint(entries)}"


# ---------------------------------------------------------------- the registry

register(
    DatasetKind(
        "voc",
        "segaug.data.voc:prepare",
        keys={
            **TABLE_KEYS,
            "year": {
                "type": "string",
                "enum": ["2007", "2012"],
                "description": "PASCAL VOC's year; leave out for another VOC-layout dataset (a CVAT export)",
            },
            "url": {"type": "string"},
            "checksum": {"$ref": "#/definitions/checksum"},
            "path": {"type": ["string", "null"], "description": "extracted VOC devkit or VOC-layout export on disk"},
            "ignore_color": {
                "$ref": "#/definitions/rgb",
                "description": "colour of ignore (255) in colour-coded labels (default: VOC's void, [224, 224, 192])",
            },
        },
        any_of=(("year",), ("path",)),
        class_table=class_tables.voc_table,
        source_files=sources.voc_sources,
        downloads=lambda d: not d.get("path"),
        description="PASCAL VOC (downloaded or on disk) or a VOC-layout export such as CVAT's",
    )
)
register(
    DatasetKind(
        "demo",
        "segaug.data.demo:prepare",
        keys={
            "num_train": {"type": "integer", "minimum": 1},
            "num_val": {"type": "integer", "minimum": 1},
            "width": {"type": "integer", "minimum": 32},
            "height": {"type": "integer", "minimum": 32},
            "seed": {"type": "integer"},
        },
        class_table=class_tables.demo_table,
        description="the procedural shapes dataset",
    )
)
register(
    DatasetKind(
        "canonical",
        "segaug.data.verify:prepare",
        keys={"path": {"type": "string", "description": "a dataset already in the canonical layout"}},
        required=("path",),
        class_table=class_tables.canonical_table,
        source_files=sources.canonical_sources,
        in_place=True,
        description="a dataset already in the canonical layout, checked and used in place",
    )
)
register(
    DatasetKind(
        "vaihingen",
        "segaug.data.vaihingen:prepare",
        keys={
            "path": {
                "type": "string",
                "description": "the ISPRS Vaihingen download (top/, gts_for_participants/, ...)",
            },
            "patch_size": {"type": "integer", "minimum": 32},
            "stride": {"type": "integer", "minimum": 1},
            "eroded": {"type": "boolean", "description": "use the _noBoundary labels (boundaries = ignore)"},
        },
        required=("path",),
        class_table=class_tables.vaihingen_table,
        description="ISPRS Vaihingen, cut into patches",
    )
)
