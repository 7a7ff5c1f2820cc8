#!/usr/bin/env python3
"""Build each envs/*.yaml as a venv from its own pins (its `pip:` section), for hosts without
conda and for the CI check that every rule runs in the env it declares.

    python scripts/build_venvs.py --dest .venvs                # all envs -> .venvs/<name>/
    python scripts/build_venvs.py --dest .venvs mmseg train    # some of them
    SEGAUG_VENVS=$PWD/.venvs snakemake ...                     # every job in its rule's venv

Installs with uv (`pip install uv`): one download and one unpacked copy of each wheel in uv's
cache, hard-linked into every venv, so the six torch envs cost about one torch on disk. Keep
the cache on the same file system as --dest (UV_CACHE_DIR), or uv copies instead of linking.
uv does not read pip's configuration: the extra indexes and find-links pip is configured with
(pip config list, PIP_* variables) are passed to uv explicitly.

A venv is rebuilt only when its yaml changed (the yaml's sha256 is kept in <venv>/.segaug-env).
Standard library only; needs python3.11 (the envs' `python=3.11`) and uv on PATH.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = ".segaug-env"
# The shell a job runs in under SEGAUG_VENVS (rules/common.smk sets it as the job's shell):
# bash with this venv first on PATH, wherever the venv folder is.
SHELL = """#!/bin/bash
VIRTUAL_ENV=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export VIRTUAL_ENV PATH="$VIRTUAL_ENV/bin:$PATH"
unset PYTHONHOME
exec /bin/bash "$@"
"""


def env_spec(path: Path) -> tuple[str, list[str]]:
    """(python version, pip requirements) of an env file: `- python=3.11` and the `pip:` list.

    A tiny reader for the one shape these files have (no PyYAML needed on a bare submit host).
    """
    python, pip, in_pip = None, [], False
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        m = re.match(r"^\s*-\s*python\s*=\s*([\d.]+)\s*$", line)
        if m:
            python = m.group(1)
            continue
        if re.match(r"^\s*-\s*pip:\s*$", line):
            in_pip = True
            continue
        m = re.match(r"^(\s*)-\s*(\S.*)$", line)
        if in_pip and m and len(m.group(1)) >= 6:
            pip.append(m.group(2).strip())
        elif not line.startswith(" "):
            in_pip = False
    if not python or not pip:
        raise SystemExit(f"error: {path}: no `- python=X.Y` or no `pip:` list")
    return python, pip


def pip_sources() -> list[str]:
    """uv flags for the indexes / find-links pip is configured with (uv ignores pip.conf)."""
    try:
        out = subprocess.run(
            [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=60
        ).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    conf = {}
    for line in out.splitlines():
        key, _, value = line.partition("=")
        conf[key.split(".", 1)[-1].strip()] = value.strip().strip("'\"")
    flags = []
    for url in (os.environ.get("PIP_EXTRA_INDEX_URL") or conf.get("extra-index-url", "")).split():
        flags += ["--extra-index-url", url]
    for url in (os.environ.get("PIP_FIND_LINKS") or conf.get("find-links", "")).split():
        flags += ["--find-links", url]
    if flags:  # the same package on PyPI and a local index: take the best version of either
        flags += ["--index-strategy", "unsafe-best-match"]
    return flags


def file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(env_file: Path, dest: Path, uv: str, sources: list[str], force: bool) -> float:
    name = env_file.stem
    venv = dest / name
    sha = file_sha(env_file)
    if not force and (venv / MARKER).is_file() and (venv / MARKER).read_text().strip() == sha:
        print(f"{name}: up to date ({venv})")
        return 0.0
    python, reqs = env_spec(env_file)
    t0 = time.monotonic()
    if venv.exists():
        shutil.rmtree(venv)
    run([uv, "venv", "--quiet", "--python", python, str(venv)])
    (venv / "requirements.txt").write_text("\n".join(reqs) + "\n")
    run(
        [uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), *sources]
        + ["-r", str(venv / "requirements.txt")]
    )
    shell = venv / "bin" / "segaug-shell"
    shell.write_text(SHELL)
    shell.chmod(0o755)
    (venv / MARKER).write_text(sha + "\n")
    took = time.monotonic() - t0
    print(f"{name}: built in {took:.0f} s ({venv})")
    return took


def run(cmd: list[str]) -> None:
    p = subprocess.run(cmd)
    if p.returncode != 0:
        raise SystemExit(f"error: {' '.join(shlex.quote(c) for c in cmd)} failed ({p.returncode})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("envs", nargs="*", help="env names (envs/<name>.yaml); default: all")
    ap.add_argument("--dest", type=Path, default=ROOT / ".venvs", help="folder of the venvs (default .venvs)")
    ap.add_argument("--envs-dir", type=Path, default=ROOT / "envs")
    ap.add_argument("--force", action="store_true", help="rebuild even when up to date")
    ap.add_argument(
        "--print-uv-sources",
        action="store_true",
        help="print the uv flags for pip's configured indexes and exit (the Makefile's setup uses them)",
    )
    args = ap.parse_args(argv)
    if args.print_uv_sources:
        print(shlex.join(pip_sources()))
        return 0

    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    if not Path(uv).exists():
        raise SystemExit("error: uv not found: pip install uv (or put it on PATH)")
    files = sorted(args.envs_dir.glob("*.yaml"))
    if args.envs:
        known = {f.stem: f for f in files}
        unknown = [e for e in args.envs if e not in known]
        if unknown:
            raise SystemExit(f"error: no env {', '.join(unknown)} in {args.envs_dir}; known: {', '.join(known)}")
        files = [known[e] for e in args.envs]
    args.dest.mkdir(parents=True, exist_ok=True)
    sources = pip_sources()
    t0 = time.monotonic()
    for f in files:
        build(f, args.dest.resolve(), uv, sources, args.force)
    print(f"venvs in {args.dest.resolve()} ({time.monotonic() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
