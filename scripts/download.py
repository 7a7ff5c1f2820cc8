#!/usr/bin/env python
r"""Download a file and verify its checksum; nothing is left behind on a mismatch.

    python scripts/download.py --url URL --checksum md5:HEX --out resources/raw/voc2007.tar

A file already at --out with the right checksum is kept; connection errors and HTTP 5xx are
retried with backoff, a 404 fails at once.
"""

import argparse
from pathlib import Path

from segaug.cli import run
from segaug.data.download import download


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--checksum", required=True, help="md5:<hex> or sha256:<hex>")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--timeout", type=float, default=60, help="seconds per connection attempt")
    ap.add_argument("--retries", type=int, default=3, help="extra attempts on transient errors")
    args = ap.parse_args(argv)
    download(args.url, args.out, args.checksum, timeout=args.timeout, retries=args.retries)


if __name__ == "__main__":
    run(main)
