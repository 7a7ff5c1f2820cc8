"""Shared command-line plumbing for the scripts in ``scripts/``, and the ``segaug`` command.

``segaug estimate`` prints the cost sheet of a config (nothing runs); ``segaug calibrate`` times
a few steps of its models on this machine for that sheet. ``run(main)`` turns a :class:`~segaug.errors.SegaugError` into one line on stderr and exit
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


# `segaug <command>`: the module that implements each command (``add_arguments(parser)`` and
# ``command(args)``), imported only when that command runs, so the scripts that import this
# module for ``run`` do not pull in what the commands need.
COMMANDS = {
    "estimate": "segaug.estimate",
    "calibrate": "segaug.estimate_calibrate",
}


def main(argv: list[str] | None = None) -> None:
    """The ``segaug`` console command (``python -m segaug.cli`` works too)."""
    import argparse
    import importlib

    ap = argparse.ArgumentParser(prog="segaug", description="segaug: the cost sheet of a workflow config")
    sub = ap.add_subparsers(dest="command", required=True)
    ap_of = {}
    for name, module in COMMANDS.items():
        doc = {
            "estimate": "print jobs, GPU-hours, CPU-hours, peak GPU memory and disk of a config (runs no job)",
            "calibrate": "time a few training steps of each model and a few images of each generator of a config",
        }[name]
        ap_of[name] = (sub.add_parser(name, help=doc, description=doc), module)
    args_list = sys.argv[1:] if argv is None else argv
    name = next((a for a in args_list if not a.startswith("-")), None)
    if name in ap_of:
        parser, module = ap_of[name]
        importlib.import_module(module).add_arguments(parser)

    def go(argv):
        args = ap.parse_args(argv)
        importlib.import_module(COMMANDS[args.command]).command(args)

    run(go, argv)


if __name__ == "__main__":
    main()
