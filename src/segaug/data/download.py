"""Downloads with checksums, and safe tar extraction.

A download streams to a temporary file beside its destination, hashing as it goes; only a
verified file is renamed into place, so a wrong checksum or a killed job leaves nothing behind.
Extraction goes into a temporary directory renamed at the end, and refuses members that would
land outside it.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import posixpath
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path

from segaug.errors import SegaugError
from segaug.io import atomic_path
from segaug.progress import Progress

log = logging.getLogger(__name__)
CHUNK = 1 << 20
# HTTP statuses worth asking again for; every other 4xx is final (a wrong url does not heal).
RETRY_STATUS = {408, 425, 429}
USER_AGENT = "segaug-download/1"


def parse_checksum(checksum: str) -> tuple[str, str]:
    """``"md5:<hex>"`` or ``"sha256:<hex>"`` -> (algorithm, lower-case hex digest)."""
    algo, _, digest = str(checksum).strip().partition(":")
    algo, digest = algo.lower(), digest.strip().lower()
    size = {"md5": 32, "sha256": 64}.get(algo)
    if size is None or len(digest) != size or any(c not in "0123456789abcdef" for c in digest):
        raise SegaugError(f"checksum {checksum!r}: expected 'md5:<32 hex digits>' or 'sha256:<64 hex digits>'")
    return algo, digest


def file_digest(path: str | Path, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_checksum(path: str | Path, checksum: str) -> bool:
    """True when the file at ``path`` has the given ``"md5:..."`` / ``"sha256:..."`` digest."""
    algo, digest = parse_checksum(checksum)
    if not Path(path).is_file():
        raise SegaugError(f"{path}: file not found, cannot verify its checksum")
    return file_digest(path, algo) == digest


class _Retry(Exception):
    """A transient failure: worth another attempt."""


def download(url: str, dest: str | Path, checksum: str, timeout: float = 60, retries: int = 3) -> Path:
    """Download ``url`` to ``dest`` and verify it against ``checksum`` (md5:/sha256:).

    A file already at ``dest`` with the right digest is kept (nothing is fetched); one with
    another digest is not ours to overwrite and is a clear error. Connection errors, timeouts,
    truncated bodies and HTTP 5xx (and 408/429) are retried ``retries`` times with exponential
    backoff (1, 2, 4, ... s); any other HTTP error (404, 403, ...) fails at once.
    """
    dest = Path(dest)
    algo, expected = parse_checksum(checksum)
    if dest.exists():
        actual = file_digest(dest, algo)
        if actual == expected:
            log.info("%s already present and verified (%s)", dest, algo)
            return dest
        raise SegaugError(
            f"{dest}: exists but its {algo} is {actual}, not the expected {expected}; "
            "it is not ours to overwrite: delete it to download again, or fix the checksum in config"
        )
    for attempt in range(retries + 1):
        try:
            return _fetch(url, dest, algo, expected, timeout)
        except _Retry as e:
            why = str(e)
        if attempt == retries:
            raise SegaugError(
                f"{url}: download failed after {retries + 1} attempts ({why}); check the network "
                "and the url in config, or put the file on disk and point the config at it"
            )
        wait = 2**attempt
        log.warning("%s: %s; retrying in %d s (%d/%d)", url, why, wait, attempt + 1, retries)
        time.sleep(wait)
    raise AssertionError("unreachable")


def _fetch(url: str, dest: Path, algo: str, expected: str, timeout: float) -> Path:
    h = hashlib.new(algo)
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with atomic_path(dest) as tmp:
            with urllib.request.urlopen(request, timeout=timeout) as r, open(tmp, "wb") as f:
                length = r.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                done = 0
                with Progress(total and total / 1e6, desc=f"download {dest.name}", unit="MB") as bar:
                    for chunk in iter(lambda: r.read(CHUNK), b""):
                        f.write(chunk)
                        h.update(chunk)
                        done += len(chunk)
                        bar.update(len(chunk) / 1e6)
                if total is not None and done != total:
                    raise _Retry(f"connection closed after {done} of {total} bytes")
            actual = h.hexdigest()
            if actual != expected:
                raise SegaugError(
                    f"{url}: {algo} mismatch (expected {expected}, got {actual}); check the "
                    "checksum in config, or the mirror serves a different or corrupt file: "
                    "pick another mirror or delete a corrupt local copy"
                )
    except urllib.error.HTTPError as e:
        if e.code >= 500 or e.code in RETRY_STATUS:
            raise _Retry(f"HTTP {e.code} {e.reason}") from None
        raise SegaugError(
            f"{url}: HTTP {e.code} {e.reason}; check the url in config"
            + (" (the file is not at this address)" if e.code == 404 else "")
        ) from None
    except urllib.error.URLError as e:
        raise _Retry(f"cannot connect: {e.reason}") from None
    except (http.client.HTTPException, ConnectionError, TimeoutError) as e:
        raise _Retry(f"{type(e).__name__}: {e}") from None
    except ValueError as e:  # urlopen on something that is not a url
        raise SegaugError(f"{url!r}: not a valid url ({e}); check the url in config") from None
    log.info("%s: downloaded and verified (%s %s)", dest, algo, expected)
    return dest


# ---------------------------------------------------------------- tar archives


def _unsafe_reason(member: tarfile.TarInfo) -> str | None:
    """Why a member would escape the extraction directory (None if it is safe)."""
    name = member.name.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    if ".." in name.split("/"):
        return "'..' in path"
    if member.issym() or member.islnk():
        target = member.linkname.replace("\\", "/")
        base = posixpath.dirname(name) if member.issym() else ""
        resolved = posixpath.normpath(posixpath.join(base, target))
        if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
            return f"link to {member.linkname!r} outside the archive"
    if member.isdev():
        return "device file"
    return None


def extract_tar(
    tar_path: str | Path,
    dest_dir: str | Path,
    members: Iterable[str] | Callable[[list[str]], Iterable[str]] | None = None,
) -> Path:
    """Extract a tarball into ``dest_dir`` atomically (a temp dir renamed at the end).

    ``members``: None for everything, the member names to extract, or a function from the
    list of all names to those to extract (so a large archive is scanned once). Members with
    absolute paths, ``..`` or links leaving the tree are refused with a clear error, and
    extraction also uses tarfile's ``filter="data"`` where this Python has it.
    """
    tar_path = Path(tar_path)
    if not tar_path.is_file():
        raise SegaugError(f"{tar_path}: archive not found")
    try:
        with tarfile.open(tar_path) as tar:
            all_members = tar.getmembers()
            if members is None:
                selected = all_members
            else:
                names = [m.name for m in all_members]
                wanted = set(members(names) if callable(members) else members)
                selected = [m for m in all_members if m.name in wanted]
                missing = wanted - {m.name for m in selected}
                if missing:
                    raise SegaugError(
                        f"{tar_path}: {len(missing)} requested members are not in the archive, "
                        f"e.g. {sorted(missing)[:3]}; is it the right archive?"
                    )
            for m in selected:
                why = _unsafe_reason(m)
                if why:
                    raise SegaugError(
                        f"{tar_path}: refusing to extract member {m.name!r} ({why}); "
                        "the archive is corrupt or malicious: delete it"
                    )
            log.info("extracting %d of %d members of %s", len(selected), len(all_members), tar_path)
            with atomic_path(dest_dir) as tmp:
                tmp.mkdir()
                kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                tar.extractall(tmp, members=selected, **kwargs)
    except tarfile.TarError as e:
        raise SegaugError(
            f"{tar_path}: cannot extract ({e}); the archive is corrupt or truncated: delete it and download again"
        ) from None
    except EOFError as e:
        raise SegaugError(f"{tar_path}: archive is truncated ({e}); delete it and download again") from None
    return Path(dest_dir)


def tar_names(tar_path: str | Path) -> list[str]:
    """Member names of a tarball (clear error for a missing or corrupt archive)."""
    try:
        with tarfile.open(tar_path) as tar:
            return tar.getnames()
    except FileNotFoundError:
        raise SegaugError(f"{tar_path}: archive not found") from None
    except (tarfile.TarError, EOFError) as e:
        raise SegaugError(f"{tar_path}: not a readable tar archive ({e})") from None


__all__ = ["download", "verify_checksum", "file_digest", "extract_tar", "tar_names", "parse_checksum"]
