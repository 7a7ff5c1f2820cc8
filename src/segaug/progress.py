"""Progress of long jobs as log lines a log file can hold (not a terminal progress bar).

A job's stderr is its rule's log file; tqdm's bar there is one line rewritten with carriage
returns many times a second. Instead, :func:`progress` logs one line every ``every_s`` seconds
(default 30, or ``SEGAUG_PROGRESS_SECONDS``) and one at the end::

    2026-12-04 10:00:30 segaug.progress INFO: paste (random): 412/1464 img (28%), 13.7 img/s, eta 77 s
    2026-12-04 10:01:47 segaug.progress INFO: paste (random): done, 1464 img in 107 s (13.7 img/s)
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator

log = logging.getLogger("segaug.progress")


def _interval() -> float:
    try:
        return float(os.environ.get("SEGAUG_PROGRESS_SECONDS", 30))
    except ValueError:
        return 30.0


class Progress:
    """Count work with :meth:`update`; a log line every ``every_s`` seconds and at :meth:`close`."""

    def __init__(self, total: int | None = None, desc: str = "", unit: str = "img", every_s: float | None = None):
        self.total, self.desc, self.unit = total, desc, unit
        self.every_s = _interval() if every_s is None else every_s
        self.n = 0
        self.t0 = self.t_last = time.monotonic()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.t_last >= self.every_s:
            self.t_last = now
            rate = self.n / max(now - self.t0, 1e-9)
            if self.total:
                eta = (self.total - self.n) / rate if rate else float("inf")
                log.info(
                    "%s: %d/%d %s (%d%%), %.3g %s/s, eta %.0f s",
                    self.desc, self.n, self.total, self.unit, 100 * self.n // self.total, rate, self.unit, eta,
                )  # fmt: skip
            else:
                log.info("%s: %d %s, %.3g %s/s", self.desc, self.n, self.unit, rate, self.unit)

    def close(self) -> None:
        dt = time.monotonic() - self.t0
        log.info(
            "%s: done, %d %s in %.0f s (%.3g %s/s)", self.desc, self.n, self.unit, dt, self.n / max(dt, 1e-9), self.unit
        )

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            self.close()


def progress(iterable: Iterable, total: int | None = None, desc: str = "", unit: str = "img", every_s=None) -> Iterator:
    """Iterate over ``iterable``, logging progress (drop-in for ``tqdm(iterable, ...)``)."""
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)
    p = Progress(total, desc, unit, every_s)
    for x in iterable:
        yield x
        p.update()
    p.close()
