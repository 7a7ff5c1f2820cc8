"""Provenance sidecars: what produced a table or a figure.

Every report artifact (``table2.csv``, ``figure5.png``, ...) can get a sidecar
``{artifact}.provenance.json`` beside it holding:

- ``config`` and ``config_sha256`` — the config (or the part of it the rule passes) and the
  SHA-256 of its canonical JSON (keys sorted, no whitespace, ASCII; see :func:`config_hash`);
- ``code_version`` — ``git describe --always`` of the repository holding the ``segaug``
  sources, suffixed ``-dirty`` when tracked files differ from HEAD (what ``git describe
  --always --dirty`` prints, computed without writing the git index; see
  :func:`code_version`), or ``segaug <version>`` when there is no git checkout. Never fails;
- ``packages`` — versions of numpy, torch, torchvision, segmentation-models-pytorch,
  transformers, diffusers, lightning, snakemake, matplotlib and pillow (``null`` where not
  installed), read with :mod:`importlib.metadata`;
- ``python`` — the interpreter version;
- ``seeds``, ``model_ids`` (e.g. ``{"generator": "stabilityai/..."}``) and ``extra``;
- ``artifact`` and ``artifact_sha256`` — the artifact's file name and the hash of its bytes
  (added by :func:`write_sidecar`).

No creation time, host name or absolute path is recorded, on purpose: the same inputs (config,
seeds, models, code version, installed packages, artifact bytes) give the same sidecar bytes,
so re-running a rule does not change its sidecar and sidecars can be compared with ``diff``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import subprocess
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path

from segaug.io import write_text

log = logging.getLogger(__name__)

PACKAGES = (
    "numpy",
    "torch",
    "torchvision",
    "segmentation-models-pytorch",
    "transformers",
    "diffusers",
    "lightning",
    "snakemake",
    "matplotlib",
    "pillow",
)
SCHEMA = 1


def canonical_json(obj) -> str:
    """Canonical JSON text: sorted keys, no whitespace, ASCII only; non-JSON values via ``str``."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


def config_hash(config: Mapping) -> str:
    """SHA-256 (hex) of the canonical JSON of ``config``."""
    return hashlib.sha256(canonical_json(config).encode("ascii")).hexdigest()


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution (``None`` when it is not installed)."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _git(args: list[str], cwd: Path) -> str | None:
    """Output of a read-only git command, or None if git is missing or the command fails."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}  # never take the index lock
    try:
        p = subprocess.run(
            ["git", "-C", str(cwd), *args], check=False, capture_output=True, text=True, timeout=20, env=env
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return p.stdout.strip() if p.returncode == 0 else None


def code_version(repo_dir: str | Path | None = None) -> str:
    """``git describe --always`` (+ ``-dirty``) of the checkout holding the sources, else the package version.

    ``git describe --dirty`` itself refreshes and may rewrite the index, which could collide
    with another git command in the same checkout; instead the describe is read-only and
    "dirty" means ``git status --porcelain --untracked-files=no`` lists something — the same
    rule (tracked files only). Any git problem falls back to ``segaug <version>``.
    """
    import segaug

    where = Path(repo_dir) if repo_dir is not None else Path(segaug.__file__).resolve().parent
    described = _git(["describe", "--always"], where)
    if described:
        status = _git(["status", "--porcelain", "--untracked-files=no"], where)
        return described + ("-dirty" if status else "")
    try:
        version = metadata.version("segaug")
    except metadata.PackageNotFoundError:
        version = getattr(segaug, "__version__", "unknown")
    return f"segaug {version}"


def provenance(config: Mapping, seeds: Iterable = (), model_ids: Mapping | None = None, extra=None) -> dict:
    """The provenance record of an artifact (see the module docstring; no timestamps)."""
    return {
        "schema": SCHEMA,
        "config": config,
        "config_sha256": config_hash(config),
        "code_version": code_version(),
        "packages": package_versions(),
        "python": platform.python_version(),
        "seeds": list(seeds),
        "model_ids": dict(model_ids or {}),
        "extra": extra,
    }


def sidecar_path(artifact_path: str | Path) -> Path:
    p = Path(artifact_path)
    return p.with_name(p.name + ".provenance.json")


def write_sidecar(artifact_path: str | Path, prov: Mapping) -> Path:
    """Write ``{artifact}.provenance.json`` atomically beside the artifact; returns its path.

    The artifact must exist: its name and SHA-256 are added to the record, so a sidecar names
    the exact bytes it describes.
    """
    artifact_path = Path(artifact_path)
    record = {**prov, "artifact": artifact_path.name, "artifact_sha256": file_sha256(artifact_path)}
    out = sidecar_path(artifact_path)
    write_text(out, json.dumps(record, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n")
    log.info("provenance of %s written to %s", artifact_path.name, out)
    return out


SPEC_KEYS = ("config", "seeds", "model_ids", "extra")


def check_spec(value) -> dict | None:
    """Validate the ``--provenance-json`` spec a rule passes: ``{"config", "seeds", "model_ids", "extra"}``."""
    from segaug.errors import SegaugError

    if value is None:
        return None
    if not isinstance(value, dict) or "config" not in value:
        raise SegaugError('--provenance-json: expected a JSON object with at least "config"')
    unknown = sorted(set(value) - set(SPEC_KEYS))
    if unknown:
        raise SegaugError(f"--provenance-json: unknown key(s) {unknown}; known: {list(SPEC_KEYS)}")
    return value


def write_sidecars(spec, outputs: Iterable, inputs: Iterable = (), what: str = "") -> None:
    """A sidecar beside every output, from a rule's spec (no-op when ``spec`` is None).

    ``extra`` of the record holds ``what`` made it and the SHA-256 of each input file.
    """
    spec = check_spec(spec)
    if spec is None:
        return
    extra = {"made_by": what, "inputs": {str(p): file_sha256(p) for p in inputs}}
    if spec.get("extra") is not None:
        extra["rule"] = spec["extra"]
    prov = provenance(spec["config"], spec.get("seeds", []), spec.get("model_ids", {}), extra)
    for out in outputs:
        write_sidecar(out, prov)
