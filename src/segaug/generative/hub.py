"""Model references: Hugging Face hub ids or local directories, checked before a model loads.

Every model of the generative branch is named in config by a hub id (``Salesforce/blip2-opt-2.7b``)
or by a local directory (the demo's tiny random-weight models, or a user's own copy). Jobs run
with ``HF_HUB_OFFLINE=1`` on compute nodes, so a hub id must already be in the Hugging Face cache
(``HF_HOME``): :func:`resolve` checks that up front and turns a miss into one clear error that
names the id and the command that downloads it, instead of a stack trace from deep inside
``from_pretrained``.
"""

from __future__ import annotations

import os
from pathlib import Path

from segaug.errors import SegaugError


def is_local(ref: str) -> bool:
    """A local directory (absolute, ./relative or existing) rather than a hub id."""
    return ref.startswith(("/", "./", "../")) or Path(ref).is_dir()


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")


def missing_message(ref: str, what: str = "model") -> str:
    home = os.environ.get("HF_HOME", "~/.cache/huggingface")
    return (
        f"{what} {ref!r} is not in the Hugging Face cache (HF_HOME={home}) and this job runs "
        f"offline (HF_HUB_OFFLINE=1); download it first on a machine with internet: "
        f"`snakemake prefetch` (every model the config names) or `HF_HOME={home} hf download {ref}`"
    )


def resolve(ref: str, what: str = "model", filename: str | None = None) -> str:
    """Return ``ref`` ready for ``from_pretrained``; raise SegaugError if it cannot load offline.

    A local directory must exist (and hold ``filename`` when given). A hub id is checked
    against the cache when offline (``filename`` or, by default, any snapshot of the repo).
    Online, hub ids are returned unchecked: ``from_pretrained`` downloads them.
    """
    if not isinstance(ref, str) or not ref:
        raise SegaugError(f"{what}: expected a hub id or a local directory, got {ref!r}")
    if is_local(ref):
        p = Path(ref)
        if not p.is_dir():
            raise SegaugError(f"{what}: local model directory {ref} does not exist")
        if filename and not (p / filename).exists():
            raise SegaugError(f"{what}: {p / filename} not found in the local model directory")
        return str(p)
    if not offline():
        return ref
    from huggingface_hub import snapshot_download, try_to_load_from_cache

    if filename:
        hit = try_to_load_from_cache(ref, filename)
        if isinstance(hit, str):
            return ref
    else:
        try:
            snapshot_download(ref, local_files_only=True)
            return ref
        except Exception:
            pass
    raise SegaugError(missing_message(ref, what))


def download(ref: str, allow_patterns: list[str] | None = None) -> str:
    """Fetch a hub id into the cache (the prefetch step); a local directory is left as is."""
    if is_local(ref):
        return resolve(ref)
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(ref, allow_patterns=allow_patterns)
    except Exception as e:
        raise SegaugError(f"cannot download {ref!r} from the Hugging Face hub: {e}") from None
