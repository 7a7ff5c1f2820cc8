"""On-disk cache of raw VLM answers, so that a rerun makes no requests.

A cache entry is one JSON file ``{root}/{key[:2]}/{key}.json``::

    {"key": "...", "response": "<the model's raw answer text>", "meta": {...}, "created": "..."}

written atomically (:func:`segaug.io.write_json`), so a killed job never leaves half a file.
The key (:func:`cache_key`) is the sha256 of everything that determines the answer: the
provider's name and model id, the prompt text, the digest of the pixels sent and the generation
parameters. It does not include the endpoint URL or anything secret.

The cache never stores credentials: ``meta`` entries whose name looks like one
(``authorization``, ``api_key``, ``headers``, ``secret``, ``password``, ``token`` - but not
``max_tokens``) are removed before writing, at any depth, with a warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from segaug.io import read_json, write_json

log = logging.getLogger(__name__)

_KEY = re.compile(r"\A[0-9a-f]{64}\Z")
_SECRET_NAME = re.compile(
    r"(authori[sz]ation|api[_-]?key|headers?|secret|password|passwd|credential|(^|_)token)$", re.IGNORECASE
)


def cache_key(provider: str, model: str, prompt: str, image_digest: str, params: Mapping[str, Any]) -> str:
    """sha256 (hex) of the provider name, model id, prompt text, image digest and generation params."""
    payload = json.dumps(
        {"provider": provider, "model": model, "prompt": prompt, "images": image_digest, "params": dict(params)},
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def scrub(meta: Any, where: str = "meta") -> Any:
    """A copy of ``meta`` without entries whose name looks like a credential (warns for each)."""
    if isinstance(meta, Mapping):
        out = {}
        for k, v in meta.items():
            if _SECRET_NAME.search(str(k)):
                log.warning("not caching %s.%s: it may hold a credential", where, k)
                continue
            out[str(k)] = scrub(v, f"{where}.{k}")
        return out
    if isinstance(meta, (list, tuple)):
        return [scrub(v, where) for v in meta]
    return meta


class ResponseCache:
    """Raw answers under ``root``, one JSON file per key (module docstring)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        """``{root}/{key[:2]}/{key}.json``; ``key`` must be 64 lowercase hex digits."""
        if not isinstance(key, str) or not _KEY.match(key):
            raise ValueError(f"cache key must be 64 lowercase hex digits (a sha256), got {key!r}")
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> str | None:
        """The cached answer text, or None on a miss (an unreadable entry counts as a miss)."""
        path = self.path(key)
        if not path.exists():
            return None
        try:
            entry = read_json(path)
            response = entry["response"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.warning("ignoring unreadable VLM cache entry %s (%s); it will be rewritten", path, e)
            return None
        return response if isinstance(response, str) else None

    def put(self, key: str, response_text: str, meta: Mapping[str, Any] | None = None) -> Path:
        """Store ``response_text`` (and credential-free ``meta``) under ``key``; return the file."""
        if not isinstance(response_text, str):
            raise TypeError(f"response_text must be str, got {type(response_text).__name__}")
        path = self.path(key)
        entry = {
            "key": key,
            "response": response_text,
            "meta": scrub(dict(meta or {})),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        write_json(path, entry)
        return path

    def __contains__(self, key: str) -> bool:
        return self.path(key).exists()
