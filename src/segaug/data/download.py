"""Downloads with checksums, and safe tar extraction.

A download streams to a temporary file beside its destination, hashing as it goes; only a
verified file is renamed into place, so a wrong checksum or a killed job leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import logging
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterable

from segaug.errors import SegaugError
from segaug.io import atomic_path

log = logging.getLogger(__name__)
CHUNK = 1 << 20


def parse_checksum(checksum: str) -> tuple[str, str]:
    algo, _, digest = checksum.partition(":")
    if algo not in ("md5", "sha256") or not digest:
        raise SegaugError(f"checksum {checksum!r}: expected 'md5:<hex>' or 'sha256:<hex>'")
    return algo, digest.lower()


def file_digest(path: str | Path, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_checksum(path: str | Path, checksum: str) -> bool:
    algo, digest = parse_checksum(checksum)
    return file_digest(path, algo) == digest


def download(url: str, dest: str | Path, checksum: str, timeout: float = 60, retries: int = 3) -> Path:
    """Download ``url`` to ``dest`` and verify it; a file already there and valid is kept.

    Connection errors and HTTP 5xx are retried with exponential backoff; a 4xx fails at once.
    """
    dest = Path(dest)
    algo, expected = parse_checksum(checksum)
    if dest.exists():
        if file_digest(dest, algo) == expected:
            log.info("%s already present and verified", dest)
            return dest
        raise SegaugError(
            f"{dest}: exists but its {algo} does not match {expected}; "
            "it is not ours to overwrite: delete it to download again"
        )
    for attempt in range(retries + 1):
        try:
            return _fetch(url, dest, algo, expected, timeout)
        except urllib.error.HTTPError as e:
            if e.code < 500 or attempt == retries:
                raise SegaugError(f"{url}: HTTP {e.code} {e.reason}; check the url in config") from None
            why = f"HTTP {e.code}"
        except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
            if attempt == retries:
                raise SegaugError(
                    f"{url}: cannot download ({getattr(e, 'reason', e)}); check the network or "
                    "put the file on disk and point the config's 'path' at it"
                ) from None
            why = str(getattr(e, "reason", e))
        wait = 2**attempt
        log.warning("%s: %s, retrying in %d s (%d/%d)", url, why, wait, attempt + 1, retries)
        time.sleep(wait)
    raise AssertionError("unreachable")


def _fetch(url, dest, algo, expected, timeout) -> Path:
    h = hashlib.new(algo)
    with atomic_path(dest) as tmp:
        with urllib.request.urlopen(url, timeout=timeout) as r, open(tmp, "wb") as f:
            total = int(r.headers.get("Content-Length") or 0)
            done = 0
            for chunk in iter(lambda: r.read(CHUNK), b""):
                f.write(chunk)
                h.update(chunk)
                done += len(chunk)
                if total and done % (256 * CHUNK) < CHUNK:
                    log.info("%s: %.0f %%", dest.name, 100 * done / total)
        actual = h.hexdigest()
        if actual != expected:
            raise SegaugError(
                f"{url}: {algo} mismatch (expected {expected}, got {actual}); check the checksum "
                "in config, or the mirror serves a different or corrupt file"
            )
    log.info("%s: downloaded and verified (%s)", dest, algo)
    return dest


def extract_tar(tar_path: str | Path, dest_dir: str | Path, members: Iterable[str] | None = None) -> Path:
    """Extract a tarball (only ``members`` if given) into ``dest_dir``, atomically.

    Uses tarfile's "data" filter: absolute paths, ``..`` and links leaving the tree are refused.
    """
    wanted = set(members) if members is not None else None
    try:
        with tarfile.open(tar_path) as tar, atomic_path(dest_dir) as tmp:
            tmp.mkdir()
            selected = [m for m in tar.getmembers() if wanted is None or m.name in wanted]
            tar.extractall(tmp, members=selected, filter="data")
    except tarfile.TarError as e:
        raise SegaugError(f"{tar_path}: not a readable tar archive ({e}); delete it and download again") from None
    return Path(dest_dir)


def tar_names(tar_path: str | Path) -> list[str]:
    try:
        with tarfile.open(tar_path) as tar:
            return tar.getnames()
    except tarfile.TarError as e:
        raise SegaugError(f"{tar_path}: not a readable tar archive ({e})") from None


__all__ = ["download", "verify_checksum", "file_digest", "extract_tar", "tar_names", "parse_checksum"]
