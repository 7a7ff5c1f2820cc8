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


def main(argv: list[str] | None = None) -> None:
    """The ``segaug`` console command (``python -m segaug.cli`` works too)."""
    import argparse

    ap = argparse.ArgumentParser(prog="segaug", description="segaug: cost sheet and calibration of a workflow config")
    sub = ap.add_subparsers(dest="command", required=True)
    est = sub.add_parser(
        "estimate",
        help="print jobs, GPU-hours, CPU-hours, peak GPU memory and disk of a config (runs no job)",
        description="Cost sheet of a config, per rule family and in total, from the dry run's job list "
        "(snakemake -n, run in the current directory: the repository root) and per-job cost models; "
        "every figure with its source. Run `segaug calibrate` once on your GPU for measured figures.",
    )
    est.add_argument("--configfile", required=True, help="the workflow config, e.g. config/config.yaml")
    est.add_argument("targets", nargs="*", help="targets of the dry run (default: the workflow's default target)")
    est.add_argument(
        "--calibration", default="calibration.json", help="calibration file (default: %(default)s, if present)"
    )
    est.add_argument("--gpu", help="GPU type of the published figures: A100 (default), H100, A10, V100")
    est.add_argument("--forceall", action="store_true", help="count every job, also those whose outputs exist")
    est.add_argument("--json", action="store_true", help="machine-readable output")
    cal = sub.add_parser(
        "calibrate",
        help="time a few training steps of each model and a few images of each generator of a config",
        description="Writes the calibration file `segaug estimate` reads. Run it on the GPU type of your cluster.",
    )
    cal.add_argument("--configfile", required=True)
    cal.add_argument("--out", default="calibration.json")
    cal.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    cal.add_argument("--steps", type=int, default=5, help="timed training steps per model (after one warm-up)")
    cal.add_argument("--images", type=int, default=3, help="timed images per generator and val images per model")
    cal.add_argument("--tiny", action="store_true", help="batch 2, 64 px crops, tiny random SDXL: a CPU check")

    def go(argv):
        args = ap.parse_args(argv)
        from segaug.estimate import load_config, run_estimate

        if args.command == "estimate":
            sys.stdout.write(
                run_estimate(args.configfile, args.targets, args.calibration, args.gpu, args.forceall, args.json)
            )
        else:
            from segaug.estimate_calibrate import calibrate

            calibrate(load_config(args.configfile), args.out, args.device, args.steps, args.images, args.tiny)
            print(f"calibration written to {args.out}")

    run(go, argv)


if __name__ == "__main__":
    main()
