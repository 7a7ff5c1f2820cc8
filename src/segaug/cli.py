"""Shared command-line plumbing for the scripts in ``scripts/``.

``run(main)`` turns a :class:`~segaug.errors.SegaugError` into one line on stderr and exit
status 2, so a user error never ends in a stack trace; ``setup_logging`` sends log lines to
stderr (which the Snakemake rule redirects into its ``log:`` file).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from segaug.errors import SegaugError


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s: %(message)s", stream=sys.stderr)


def json_arg(value: str):
    """argparse type: a JSON document given inline or as ``@path/to/file.json``."""
    try:
        if value.startswith("@"):
            return json.loads(Path(value[1:]).read_text())
        return json.loads(value)
    except (OSError, json.JSONDecodeError) as e:
        raise SegaugError(f"cannot parse JSON argument {value[:60]!r}: {e}") from None


def run(main: Callable[[list[str] | None], object], argv: list[str] | None = None) -> None:
    """Call ``main(argv)``; a SegaugError becomes ``error: <message>`` and exit status 2."""
    setup_logging()
    try:
        main(argv)
    except SegaugError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
