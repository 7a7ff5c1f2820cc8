"""Atomic file writing: a killed job never leaves a half-written output behind."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    Works for files and for directories (the caller creates whichever it needs at the
    yielded path). On an exception the temporary is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    target = tmp / path.name  # keeps the suffix, so writers can infer the format
    try:
        yield target
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(target, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike):
    with open(path) as f:
        return json.load(f)


def read_jsonl(path: str | os.PathLike, what: str = "JSON lines file") -> list:
    """One JSON value per non-empty line; a missing file is a SegaugError naming it."""
    from segaug.errors import SegaugError

    p = Path(path)
    if not p.exists():
        raise SegaugError(f"{p} not found: expected a {what}")
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
